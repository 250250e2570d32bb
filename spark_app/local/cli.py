"""The local stack behind `make run`, `make services` and `make stop`.

    python -m spark_app.local.cli up   --conf conf/local.yaml [--date D]
    python -m spark_app.local.cli run  --conf conf/local.yaml [--date D]
    python -m spark_app.local.cli down --conf conf/local.yaml

`up` prepares the world the job reads, and `run` starts with the same `up`: it starts what is not
running, the embedded PostgreSQL (a daemon that outlives this process) and moto's server for
DynamoDB and S3 (started detached, its pid in `<state dir>/moto.pid`; the state dir is the parent
of the PostgreSQL data dir, `.local` by default), writes the sample days if they are missing
(`local_services.sample.days` days ending on the day, default yesterday, two advertisers' match
rates dropping over the last of them; once, under `local_services.sample_dir` when `events.path`
is `s3://`, else under `events.path`), uploads them to the bucket of `events.path` when that is
`s3://`, loads the catalog into DynamoDB (moto keeps both in memory only, so every fresh `up`
loads them) and creates the buckets and SNS topics the run's marker, report and trouble summary
go to (spark_app.local.outputs). A step that fails stops what this `up` started. `up` then prints
the job's command and how to open psql, and leaves the services running. `run` runs
`process_data.py` over those days as a child process, prints the day's `advertiser_match_rates`
next to what the sample data says they must be and where the run's metrics, marker, report and
summary went in moto, writes the day's catalog health report under the state dir and prints its
path, then stops what it started. Services that were already up before `run` (`make services`)
are left running.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
import warnings
from datetime import date, timedelta
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from spark_app.config import load_config
from spark_app.errors import PipelineError
from spark_app.local.catalog import load_catalog
from spark_app.local.outputs import prepare as prepare_outputs
from spark_app.local.outputs import where_outputs_went
from spark_app.local.results import PIPELINE, print_report, psql_command, where_things_are
from spark_app.local.s3_upload import ensure_bucket, upload_tree
from spark_app.local.sample_data import SampleSpec, catalog_keys, read_spec, write_day
from spark_app.local.services import start_services, stop_services
from spark_app.local.stack import Stack, sample_spec
from spark_app.s3_uri import split_s3_uri
from spark_app.session import fake_aws_credentials

# --------------------------------------------------------------------------- up / down


def up(stack: Stack, day: date, say=print) -> Dict[str, bool]:
    """The world the job reads: services running, the sample days ending on `day` written (and
    uploaded to moto's S3 when events.path is s3://), the catalog loaded; `run` starts with it.

    Returns which services this call started (False: it was already running). When a step
    fails, what this call started is stopped again before the error goes on.
    """
    fake_aws_credentials()
    started = start_services(stack, say)
    try:
        _warn_on_mismatched_endpoints(stack, say)
        spec = sample_spec(stack.services.sample, day)
        for d in stack.days(day):
            ensure_sample_day(stack, d, spec, say)
            if stack.events_in_s3:
                upload_sample_day(stack, d, say)
        loaded, seconds = _load_catalog(stack, spec)
        table = stack.cfg.dynamodb.table
        say(f"catalog      {loaded:,} keys put into DynamoDB table {table} ({seconds:.1f} s)")
        prepare_outputs(stack, say)  # buckets and topics the run's marker, report and summary go to
    except BaseException:
        if any(started.values()):
            say("up failed: stopping what it started")
            stop_services(stack, say, **started)
        raise
    return started


def down(stack: Stack, say=print) -> None:
    stop_services(stack, say)


def job_command(stack: Stack, day: date) -> List[str]:
    """`process_data.py` over the days `up` prepared, as `run` runs it (the Python of this process)."""
    days = stack.days(day)
    when = ["--date", str(day)] if len(days) == 1 else ["--from", str(days[0]), "--to", str(day)]
    return [sys.executable, "process_data.py", "--pipeline", PIPELINE, *when, "--conf", str(stack.conf_path)]


def print_next_steps(stack: Stack, day: date, say=print) -> None:
    """After `up`: where things are, and the commands to run the job, look around and stop."""
    cmd = job_command(stack, day)
    python = os.path.relpath(cmd[0]) if Path(cmd[0]).is_relative_to(Path.cwd()) else cmd[0]
    days = stack.days(day)
    say(where_things_are(stack))
    say(f"\n== the services stay up with the sample days {days[0]} .. {day} and the catalog loaded")
    say(f"run the job:   {shlex.join([python, *cmd[1:]])}")
    say(f"look around:   {psql_command(stack)}")
    say("stop them:     make stop")


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


# --------------------------------------------------------------------------- run


def run(stack: Stack, day: date, say=print) -> int:
    """up, the job as a child process, the day's result next to the truth, then down."""
    say(f"== local stack ({stack.conf_path})")
    started = up(stack, day, say)
    try:
        cmd = job_command(stack, day)
        say(f"\n== running: {' '.join(cmd[1:])}\n")
        sys.stdout.flush()
        code = subprocess.call(cmd)
        say(f"\n== job exit code {code}{'' if code == 0 else ' (FAILED: see the messages above)'}")
        print_report(stack, day, say)
        say(where_outputs_went(stack, day))
        write_health_report(stack, day, len(stack.days(day)), say)
    finally:
        say("")
        if any(started.values()):
            stop_services(stack, say, **started)
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
        "--date", type=date.fromisoformat, help="the last sample day (YYYY-MM-DD); default yesterday"
    )
    return parser.parse_args(list(argv))


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")  # pgserver's import, harmless
    day = args.date or date.today() - timedelta(days=1)
    try:
        stack = Stack(load_config(args.conf), Path(args.conf))
        stack.services  # noqa: B018  (fails early, naming the file, when the section is missing)
        if args.command == "up":
            up(stack, day)
            print_next_steps(stack, day)
            return 0
        if args.command == "down":
            down(stack)
            return 0
        return run(stack, day)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a folder that cannot be written, a server that cannot be reached
        print(f"error: {exc}", file=sys.stderr)
        return PipelineError.exit_code
    except KeyboardInterrupt:
        print("interrupted; `make stop` stops the services", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
