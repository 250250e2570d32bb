"""Code shipped to the cluster runs under EMR 7's Python 3.9."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import ROOT

SHIPPED = sorted(
    [ROOT / "process_data.py"]
    + [p for p in (ROOT / "spark_app").rglob("*.py")]
    + [p for p in (ROOT / "pipelines").rglob("*.py")]
)


def test_every_shipped_module_postpones_annotations():
    missing = [
        str(p.relative_to(ROOT))
        for p in SHIPPED
        if p.read_text().strip() and "from __future__ import annotations" not in p.read_text()
    ]
    assert missing == []


def find_python39():
    """A Python 3.9 that runs: on PATH, or one of pyenv's installed versions."""
    candidates = [shutil.which("python3.9")] + sorted(
        str(p) for p in Path.home().glob(".pyenv/versions/3.9*/bin/python3.9")
    )
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "--version"], capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.startswith("Python 3.9"):
            return candidate
    return None


def test_every_shipped_module_compiles_under_python_3_9(tmp_path):
    python39 = find_python39()
    if python39 is None:
        pytest.skip("no python3.9 on this machine; ruff's py39 target still checks the syntax")
    script = (
        "import sys, py_compile\n"
        "for path in sys.argv[1:]:\n"
        "    py_compile.compile(path, cfile=path + '.pyc39', doraise=True)\n"
    )
    copies = []
    for p in SHIPPED:
        copy = tmp_path / str(p.relative_to(ROOT)).replace("/", "__")
        copy.write_bytes(p.read_bytes())
        copies.append(str(copy))
    result = subprocess.run([python39, "-c", script, *copies], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
