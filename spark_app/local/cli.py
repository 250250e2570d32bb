"""The local stack behind `make run`, `make services` and `make stop`.

    python -m spark_app.local.cli up   --conf conf/local.yaml [--date D]
    python -m spark_app.local.cli run  --conf conf/local.yaml --date D
    python -m spark_app.local.cli down --conf conf/local.yaml

`up` starts the embedded PostgreSQL (a daemon that outlives this process) and moto's server
for DynamoDB and S3 (started detached, its pid in `<state dir>/moto.pid`; the state dir is the
parent of the PostgreSQL data dir, `.local` by default), writes the sample days if they are
missing (`local_services.sample.days` days ending on the day, two advertisers' match rates
dropping over the last of them; once, under `local_services.sample_dir` when `events.path` is
`s3://`, else under `events.path`), uploads them to the bucket of `events.path` when that is
`s3://`, and loads the catalog into DynamoDB (moto keeps both in memory only, so every fresh
`up` loads them). `run` does `up`, runs `process_data.py` over those days as a child process,
prints the day's `advertiser_match_rates` next to what the sample data says they must be, writes
the day's catalog health report under the state dir and prints its path, then stops what it
started. Services that
were already up before `run` (`make services`) are left running.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
import urllib.request
import warnings
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from spark_app.config import Config, LocalServicesConfig, SampleConfig, load_config, resolve_path
from spark_app.errors import ConfigError, PipelineError
from spark_app.local.catalog import load_catalog
from spark_app.local.results import PIPELINE, print_report
from spark_app.local.s3_upload import ensure_bucket, upload_tree
from spark_app.local.sample_data import SampleSpec, catalog_keys, read_spec, write_day
from spark_app.local.servers import LocalPostgres, port_open
from spark_app.s3_uri import is_s3_uri, split_s3_uri
from spark_app.session import fake_aws_credentials


@dataclass
class Stack:
    """Where the local services of a config live."""

    cfg: Config
    conf_path: Path

    @property
    def services(self) -> LocalServicesConfig:
        if self.cfg.local_services is None:
            raise ConfigError(
                f"{self.conf_path}: local_services: required for the local stack (see conf/local.yaml)"
            )
        return self.cfg.local_services

    @property
    def pg(self) -> LocalPostgres:
        p = self.services.postgres
        return LocalPostgres(resolve_path(p.data_dir), p.port, p.database)

    @property
    def state_dir(self) -> Path:
        return Path(resolve_path(self.services.postgres.data_dir)).parent

    @property
    def moto_pid_file(self) -> Path:
        return self.state_dir / "moto.pid"

    @property
    def moto_port(self) -> int:
        return self.services.dynamodb_port

    @property
    def events_in_s3(self) -> bool:
        return self.cfg.events is not None and is_s3_uri(self.cfg.events.path)

    @property
    def events_root(self) -> Path:
        """The local folder of the generated day: events.path, or sample_dir when that is s3://."""
        if self.cfg.events is None:
            raise ConfigError(
                f"{self.conf_path}: events: the local stack generates event files; set events.path"
            )
        if self.events_in_s3:
            return Path(resolve_path(self.services.sample_dir))
        return Path(resolve_path(self.cfg.events.path))


def sample_spec(sample: SampleConfig, day: Optional[date] = None) -> SampleSpec:
    """The generator's spec: the config's names; the drop starts the day before `day`."""
    fields = {k: v for k, v in dataclasses.asdict(sample).items() if k != "days"}
    if day is not None and sample.drop_advertisers:
        fields["drop_from"] = (day - timedelta(days=1)).isoformat()
    return SampleSpec(**fields)  # the rest keeps its defaults


def window(day: date, days: int) -> List[date]:
    return [day - timedelta(days=days - 1 - i) for i in range(max(days, 1))]


# --------------------------------------------------------------------------- up / down


def up(stack: Stack, day: Optional[date], say=print, days: int = 1) -> Dict[str, bool]:
    """Start what is not running, write the sample days ending on `day` if missing, load the catalog.

    Returns which services this call started (False: it was already running).
    """
    fake_aws_credentials()
    started = {"postgres": not stack.pg.is_running()}
    stack.state_dir.mkdir(parents=True, exist_ok=True)
    pg = stack.pg.start()
    say(f"PostgreSQL   {'started' if started['postgres'] else 'already running'} at {pg.url}")
    started["moto"] = start_moto(stack)
    say(
        f"DynamoDB, S3 (moto) {'started' if started['moto'] else 'already running'} "
        f"at http://127.0.0.1:{stack.moto_port}"
    )
    _warn_on_mismatched_endpoints(stack, say)
    spec = sample_spec(stack.services.sample, day)
    for d in window(day, days) if day is not None else []:
        ensure_sample_day(stack, d, spec, say)
        if stack.events_in_s3:
            upload_sample_day(stack, d, say)
    loaded, seconds = _load_catalog(stack, spec)
    say(f"catalog      {loaded:,} keys put into DynamoDB table {stack.cfg.dynamodb.table} ({seconds:.1f} s)")
    return started


def ensure_sample_day(stack: Stack, day: date, spec: SampleSpec, say=print) -> None:
    root = stack.events_root
    if (root / f"dt={day}" / "_SUCCESS").exists() and read_spec(root, day) == spec:
        say(f"events       dt={day} already present under {root}")
        return
    fmt = stack.cfg.events.format if stack.cfg.events else "json"
    start = time.perf_counter()
    sample = write_day(root, day, spec, fmt=fmt)
    say(
        f"events       wrote {spec.events:,} events of {day} "
        f"({sample.counts['product_views']:,} product views) to {root} in {time.perf_counter() - start:.1f} s"
    )


def upload_sample_day(stack: Stack, day: date, say=print) -> None:
    """dt=D and dt=D+1 of the sample into the bucket of events.path, each folder unless S3
    already holds every one of its files (dt=D+1 is the late events of D: never skipped with D)."""
    from spark_app.events.files import day_folders, s3_client

    client = s3_client(stack.cfg.s3)
    this_day, next_day = day_folders(stack.cfg.events.path, day)
    bucket, _ = split_s3_uri(this_day)
    ensure_bucket(client, bucket)
    start = time.perf_counter()
    keys = []
    for folder in (this_day, next_day):
        local = stack.events_root / folder.rsplit("/", 1)[1]
        if not local.is_dir():
            continue
        if {p.name for p in local.iterdir() if p.is_file()} <= _names_in(client, folder):
            say(f"events       {folder} already in S3")
            continue
        keys += upload_tree(client, local, folder)
    if keys:
        seconds = time.perf_counter() - start
        say(f"events       uploaded {len(keys)} objects to {this_day} and the next day in {seconds:.1f} s")


def _names_in(client, folder: str) -> set:
    bucket, prefix = split_s3_uri(folder.rstrip("/") + "/")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {obj["Key"][len(prefix) :] for page in pages for obj in page.get("Contents", [])}


def _load_catalog(stack: Stack, spec: SampleSpec):
    import boto3

    d = stack.cfg.dynamodb
    client = boto3.client("dynamodb", endpoint_url=d.endpoint_url, region_name=d.region)
    start = time.perf_counter()
    loaded = load_catalog(client, d.table, catalog_keys(spec))
    return loaded, time.perf_counter() - start


def _warn_on_mismatched_endpoints(stack: Stack, say) -> None:
    expected = f"127.0.0.1:{stack.moto_port}"
    if stack.cfg.dynamodb.endpoint_url and expected not in stack.cfg.dynamodb.endpoint_url:
        say(f"WARNING      dynamodb.endpoint_url {stack.cfg.dynamodb.endpoint_url} is not moto's {expected}")
    s3_endpoint = stack.cfg.s3.endpoint_url if stack.cfg.s3 else None
    if stack.events_in_s3 and (s3_endpoint is None or expected not in s3_endpoint):
        say(f"WARNING      events.path is on S3 but s3.endpoint_url {s3_endpoint} is not moto's {expected}")


def start_moto(stack: Stack, timeout: float = 30.0) -> bool:
    """Start moto detached (it must outlive this process); False when it already runs."""
    port = stack.moto_port
    if port_open(port):
        if _moto_answers(port):
            return False
        raise PipelineError(
            f"port {port} is in use by something that is not moto; "
            f"change local_services.dynamodb_port (and dynamodb.endpoint_url) in {stack.conf_path}"
        )
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
    raise PipelineError(f"moto did not answer on 127.0.0.1:{port} within {timeout:.0f} s")


def _moto_answers(port: int) -> bool:
    with contextlib.suppress(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).close()
        return True
    return False


def down(stack: Stack, say=print, postgres: bool = True, moto: bool = True) -> None:
    """Stop moto (by its pid file) and PostgreSQL (pg_ctl stop); quiet when they are not running."""
    if moto:
        pid = _read_pid(stack.moto_pid_file)
        if pid is not None and _is_moto(pid):
            _stop_pid(pid)
            say(f"DynamoDB, S3 (moto) stopped (pid {pid})")
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


# --------------------------------------------------------------------------- run


def run(stack: Stack, day: date, say=print) -> int:
    """up, the job as a child process, the day's result next to the truth, then down."""
    say(f"== local stack ({stack.conf_path})")
    days = window(day, stack.services.sample.days)
    started = up(stack, day, say, len(days))
    try:
        when = ["--date", str(day)] if len(days) == 1 else ["--from", str(days[0]), "--to", str(day)]
        cmd = [sys.executable, "process_data.py", "--pipeline", PIPELINE, *when]
        cmd += ["--conf", str(stack.conf_path)]
        say(f"\n== running: {' '.join(cmd[1:])}\n")
        sys.stdout.flush()
        code = subprocess.call(cmd)
        say(f"\n== job exit code {code}{'' if code == 0 else ' (FAILED: see the messages above)'}")
        print_report(stack, day, say)
        write_health_report(stack, day, len(days), say)
    finally:
        say("")
        if any(started.values()):
            down(stack, say, postgres=started["postgres"], moto=started["moto"])
        if not all(started.values()):
            say("services that were already running are left running (make stop stops them)")
    return code


def write_health_report(stack: Stack, day: date, days: int, say=print) -> Optional[Path]:
    """`process_data.py report` of the day over the generated days, under the state dir."""
    out = stack.state_dir / f"report-{day}.html"
    cmd = [sys.executable, "process_data.py", "report", "--pipeline", PIPELINE, "--date", str(day),
           "--days", str(days), "--conf", str(stack.conf_path), "--out", str(out)]
    say(f"\n== catalog health report: {' '.join(cmd[1:])}")
    sys.stdout.flush()
    if subprocess.call(cmd) != 0:
        say("(the report could not be written: see the message above)")
        return None
    say(f"\nreport of {day}: {out.resolve()}   (open it in a browser)")
    return out


# --------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m spark_app.local.cli", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up", "down", "run"])
    parser.add_argument("--conf", default="conf/local.yaml", help="YAML config with a local_services section")
    parser.add_argument(
        "--date", type=date.fromisoformat, help="the day (YYYY-MM-DD); run: default yesterday"
    )
    return parser.parse_args(list(argv))


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")  # pgserver's import, harmless
    try:
        stack = Stack(load_config(args.conf), Path(args.conf))
        stack.services  # noqa: B018  (fails early, naming the file, when the section is missing)
        if args.command == "up":
            up(stack, args.date)
            return 0
        if args.command == "down":
            down(stack)
            return 0
        return run(stack, args.date or date.today() - timedelta(days=1))
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; `make stop` stops the services", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
