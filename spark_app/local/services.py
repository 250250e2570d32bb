"""Starting and stopping the local stack's servers: the embedded PostgreSQL and a detached moto.

moto is started detached (it must outlive the command), its pid in `<state dir>/moto.pid`.
A port held by something else is reported before anything starts, naming every config key
that uses the port; a start that fails stops what this call had started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Dict, Optional

from spark_app.errors import PipelineError
from spark_app.local.servers import port_open
from spark_app.local.stack import Stack

MOTO = "DynamoDB, S3, SNS, SQS, CloudWatch, EventBridge (moto)"  # one server, one port


def start_services(stack: Stack, say=print) -> Dict[str, bool]:
    """Start PostgreSQL and moto unless they run; which ones this call started."""
    pg = stack.pg
    started = {"postgres": not pg.is_running(), "moto": False}
    if started["postgres"] and port_open(pg.port):
        raise _port_taken(stack, pg.port, f"this project's PostgreSQL (data dir {pg.data_dir})")
    if port_open(stack.moto_port) and not _moto_answers(stack.moto_port):
        raise _port_taken(stack, stack.moto_port, "moto")
    stack.state_dir.mkdir(parents=True, exist_ok=True)
    try:
        pg.start()
        say(f"PostgreSQL   {'started' if started['postgres'] else 'already running'} at {pg.url}")
        started["moto"] = start_moto(stack)
    except BaseException:
        stop_services(stack, say, postgres=started["postgres"], moto=False)
        raise
    say(f"{MOTO} {'started' if started['moto'] else 'already running'} at http://127.0.0.1:{stack.moto_port}")
    return started


def _port_taken(stack: Stack, port: int, wanted: str) -> PipelineError:
    keys = ", ".join(stack.keys_using_port(port))
    return PipelineError(
        f"port {port} is in use by something that is not {wanted}; "
        f"choose another port for every key that uses it in {stack.conf_path}: {keys}"
    )


def start_moto(stack: Stack, timeout: float = 30.0) -> bool:
    """Start moto detached (it must outlive this process); False when it already runs."""
    port = stack.moto_port
    if port_open(port):
        if _moto_answers(port):
            return False
        raise _port_taken(stack, port, "moto")
    with open(stack.state_dir / "moto.log", "ab") as logfile:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=logfile,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=str(stack.state_dir),
        )
    stack.moto_pid_file.write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stack.moto_pid_file.unlink(missing_ok=True)
            raise PipelineError(
                f"moto exited with code {proc.returncode}; see {stack.state_dir / 'moto.log'}"
            )
        if _moto_answers(port):
            return True
        time.sleep(0.1)
    _stop_pid(proc.pid)
    stack.moto_pid_file.unlink(missing_ok=True)
    raise PipelineError(f"moto did not answer on 127.0.0.1:{port} within {timeout:.0f} s")


def _moto_answers(port: int) -> bool:
    with contextlib.suppress(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).close()
        return True
    return False


def stop_services(stack: Stack, say=print, postgres: bool = True, moto: bool = True) -> None:
    """Stop moto (by its pid file) and PostgreSQL (pg_ctl stop); quiet when they are not running."""
    if moto:
        pid = _read_pid(stack.moto_pid_file)
        if pid is not None and _is_moto(pid):
            _stop_pid(pid)
            say(f"{MOTO} stopped (pid {pid})")
        elif port_open(stack.moto_port):
            say(f"DynamoDB, S3 port {stack.moto_port} is answering but was not started here; left alone")
        stack.moto_pid_file.unlink(missing_ok=True)
    if postgres:
        pg = stack.pg
        if pg.is_running():
            pg.stop()
            say(f"PostgreSQL   stopped ({pg.data_dir})")


def _read_pid(path: Path) -> Optional[int]:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_moto(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return b"moto.server" in cmdline


def _stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, wait, SIGKILL; reaps the process when it is our child."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
