"""Embedded servers for local runs and tests: a real PostgreSQL and moto's AWS server.

Driver-side only; never imported by executor code. PostgreSQL comes from the `pgserver`
wheel's binaries, started on 127.0.0.1:<port> (TCP, so JDBC works too) and on a Unix socket
in its data folder. moto runs as `python -m moto.server` and is reached by boto3 over HTTP.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator, List, Optional

log = logging.getLogger(__name__)

_PG_SYSTEM_USER = "pgserver"  # PostgreSQL refuses to run as root; pgserver's convention


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


class LocalPostgres:
    """A PostgreSQL 16 server from the pgserver wheel, owned by this project."""

    def __init__(self, data_dir: str | os.PathLike[str], port: int, database: str = "catalog") -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.database = database

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> LocalPostgres:
        if self.is_running():
            log.info("PostgreSQL already running on 127.0.0.1:%s", self.port)
        else:
            self._init_data_dir()
            self._pg_ctl(
                "-w",
                "-t",
                "60",
                "-o",
                f"-h 127.0.0.1 -p {self.port} -k {self.data_dir}",
                "-l",
                str(self.data_dir / "server.log"),
                "start",
            )
        self.create_database(self.database)
        return self

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._pg_ctl("-w", "-m", "fast", "stop")

    def is_running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists() and port_open(self.port)

    def create_database(self, name: str) -> None:
        import psycopg2

        conn = psycopg2.connect(self.admin_url())
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()

    def drop_database(self, name: str) -> None:
        import psycopg2

        conn = psycopg2.connect(self.admin_url())
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()

    # -- internals

    def _bin(self, name: str) -> str:
        from pgserver._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / name)

    def _run_as(self) -> Optional[str]:
        if os.geteuid() != 0:
            return None
        from pgserver._commands import POSTGRES_BIN_PATH
        from pgserver.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(_PG_SYSTEM_USER)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
        shutil.chown(self.data_dir, _PG_SYSTEM_USER, _PG_SYSTEM_USER)
        return _PG_SYSTEM_USER

    def _init_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if (self.data_dir / "PG_VERSION").exists():
            self._run_as()
            return
        initdb = self._bin("initdb")
        self._run([initdb, "-D", str(self.data_dir), "--auth=trust", "--encoding=utf8", "-U", "postgres"])

    def _pg_ctl(self, *args: str) -> None:
        self._run([self._bin("pg_ctl"), "-D", str(self.data_dir), *args])

    def _run(self, cmd: List[str]) -> None:
        user = self._run_as()
        kwargs = {"user": user} if user else {}
        with open(os.devnull, "rb") as devnull:
            res = subprocess.run(
                cmd, stdin=devnull, capture_output=True, text=True, timeout=120, cwd="/", **kwargs
            )
        if res.returncode != 0:
            logfile = self.data_dir / "server.log"
            tail = logfile.read_text()[-2000:] if logfile.exists() else ""
            raise RuntimeError(
                f"{Path(cmd[0]).name} failed ({res.returncode}): {res.stderr.strip()}\n{tail}".strip()
            )


class LocalMoto:
    """moto's server in a child process: DynamoDB, S3, EMR, ... over HTTP on 127.0.0.1."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._proc: Optional[subprocess.Popen] = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalMoto:
        if port_open(self.port):
            log.info("moto already answering on %s", self.endpoint_url)
            return self
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"moto server exited with code {self._proc.returncode}")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1).close()
                return self
            time.sleep(0.1)
        raise RuntimeError(f"moto server did not answer on {self.endpoint_url} within 30 s")

    def reset(self) -> None:
        """Forget every resource (tables, buckets, clusters)."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).close()

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._proc = None


@contextlib.contextmanager
def running(*servers) -> Iterator[None]:
    """Start the servers, yield, stop them again (in reverse order)."""
    started = []
    try:
        for server in servers:
            started.append(server.start())
        yield
    finally:
        for server in reversed(started):
            server.stop()


