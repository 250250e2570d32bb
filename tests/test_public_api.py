"""The library's public API is importable from the package itself."""

from __future__ import annotations

import subprocess
import sys

import spark_app


def test_every_exported_name_resolves():
    missing = [name for name in spark_app.__all__ if getattr(spark_app, name, None) is None]
    assert missing == []


def test_importing_the_package_does_not_start_or_import_spark():
    code = "import sys, spark_app; print('pyspark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_library_never_imports_the_pipelines():
    from pathlib import Path

    offenders = [
        str(p)
        for p in Path(spark_app.__file__).parent.rglob("*.py")
        if "import pipelines" in p.read_text() or "from pipelines" in p.read_text()
    ]
    assert offenders == []
