"""The local stack CLI: `up` starts and fills the services, `down` stops them, the report reads back."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Optional

import boto3
import psycopg2
import pytest
import yaml

from spark_app.config import load_config
from spark_app.local.cli import Stack, main
from spark_app.local.results import format_rates, print_report
from spark_app.local.servers import free_port, port_open
from tests.support.paths import ROOT

DAY = date(2026, 11, 19)
NEXT_DAY = DAY + timedelta(days=1)


def write_conf(tmp: Path, pg_port: int, moto_port: int, state: Optional[Path] = None) -> Path:
    """A local stack's config; `state` (the PostgreSQL data dir's parent) defaults to tmp/state."""
    state = state or tmp / "state"
    conf = {
        "source": "events",
        "spark": {"master": "local[2]"},
        "events": {"path": str(tmp / "events"), "format": "json", "quarantine_path": str(tmp / "quarantine")},
        "dynamodb": {
            "table": "product_catalog",
            "region": "us-east-1",
            "endpoint_url": f"http://127.0.0.1:{moto_port}",
        },
        "postgres": {"url": f"postgresql://postgres@127.0.0.1:{pg_port}/catalog"},
        "local_services": {
            "dynamodb_port": moto_port,
            "postgres": {"port": pg_port, "data_dir": str(state / "pg"), "database": "catalog"},
            "sample": {"events": 3000, "advertisers": 3, "products_per_advertiser": 50, "seed": 4},
        },
    }
    path = tmp / "local.yaml"
    path.write_text(yaml.safe_dump(conf))
    return path


def new_state_dir() -> Path:
    # Not under pytest's basetemp: a concurrent pytest run resets its permissions (0700), which
    # locks out the PostgreSQL server's own user (pgserver runs it as `pgserver` under root).
    return Path(tempfile.mkdtemp(prefix="catalog-test-stack-"))


@pytest.fixture()
def state():
    path = new_state_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def stack_up(tmp_path_factory):
    tmp, state = tmp_path_factory.mktemp("stack"), new_state_dir()
    conf = write_conf(tmp, free_port(), free_port(), state)
    assert main(["up", "--conf", str(conf), "--date", str(DAY)]) == 0
    stack = Stack(load_config(conf), conf)
    yield stack
    main(["down", "--conf", str(conf)])
    shutil.rmtree(state, ignore_errors=True)


def test_up_starts_postgres_and_a_detached_moto(stack_up):
    pid = int(stack_up.moto_pid_file.read_text())
    assert b"moto.server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert stack_up.moto_pid_file.parent == stack_up.pg.data_dir.parent
    conn = psycopg2.connect(stack_up.cfg.postgres.url)
    with conn.cursor() as cur:
        cur.execute("SELECT current_database()")
        assert cur.fetchone() == ("catalog",)
    conn.close()


def test_up_writes_the_sample_day_and_loads_the_catalog(stack_up):
    day_dir = stack_up.events_root / "dt=2026-11-19"
    assert (day_dir / "_SUCCESS").exists()
    assert len(list(day_dir.glob("part-*.json.gz"))) == 4
    client = boto3.client(
        "dynamodb", endpoint_url=stack_up.cfg.dynamodb.endpoint_url, region_name="us-east-1"
    )
    items = client.scan(TableName="product_catalog", Select="COUNT")
    assert items["Count"] == 120  # 80% of 3 advertisers x 50 products


def test_a_second_up_reuses_what_runs(stack_up, capsys):
    pid = stack_up.moto_pid_file.read_text()
    assert main(["up", "--conf", str(stack_up.conf_path), "--date", str(DAY)]) == 0
    out = capsys.readouterr().out
    assert "PostgreSQL   already running" in out
    assert "(moto) already running" in out
    assert "dt=2026-11-19 already present" in out
    assert stack_up.moto_pid_file.read_text() == pid


def test_report_compares_the_published_rates_with_the_truth(stack_up):
    from spark_app.local.results import expected_rates

    truth = expected_rates(stack_up, DAY)
    assert len(truth) == 3
    first, second, third = sorted(truth)
    conn = psycopg2.connect(stack_up.cfg.postgres.url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE advertiser_match_rates (day date, advertiser_id bigint, total_products bigint, "
            "matched_products bigint, total_views bigint, matched_views bigint, match_rate double precision)"
        )
        cur.execute(
            "CREATE TABLE pipeline_runs (pipeline text, day date, status text, error text, started_at int)"
        )
        cur.execute(
            "INSERT INTO pipeline_runs VALUES ('catalog_match_rate', %s, 'succeeded', NULL, 1)", (DAY,)
        )
        for adv, views_delta in ((first, 0), (second, 1)):
            t = truth[adv]
            cur.execute(
                "INSERT INTO advertiser_match_rates VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (DAY, adv, t["total_products"], t["matched_products"], t["total_views"] + views_delta,
                 t["matched_views"], t["match_rate"]),
            )  # fmt: skip
    lines = []
    print_report(stack_up, DAY, say=lines.append)
    text = "\n".join(lines)
    conn.close()
    assert "last run of 2026-11-19: succeeded" in text
    row = {line.split()[0]: line for line in text.splitlines() if line.strip()[:1].isdigit()}
    assert row[str(first)].endswith(" ok")
    assert "expected" in row[str(second)]
    assert row[str(third)].endswith("MISSING")
    assert "2 row(s) differ from the truth" in text
    assert f"quarantine    {stack_up.cfg.events.quarantine_path}" in text


def test_format_rates_without_a_truth_has_no_check_column():
    text = format_rates([(12, 4, 3, 10, 7, 0.7)], None)
    header, rule, row = text.splitlines()
    assert header.split() == ["advertiser_id", "products", "matched", "views", "matched_views", "match_rate"]
    assert row.split() == ["12", "4", "3", "10", "7", "0.7000"]


def test_down_stops_both_services(tmp_path, state, capsys):
    pg_port, moto_port = free_port(), free_port()
    conf = write_conf(tmp_path, pg_port, moto_port, state)
    assert main(["up", "--conf", str(conf), "--date", str(DAY)]) == 0
    assert port_open(pg_port) and port_open(moto_port)
    pid = int((state / "moto.pid").read_text())
    assert main(["down", "--conf", str(conf)]) == 0
    assert not port_open(pg_port) and not port_open(moto_port)
    assert not (state / "moto.pid").exists()
    assert not os.path.exists(f"/proc/{pid}")
    assert "stopped" in capsys.readouterr().out
    assert main(["down", "--conf", str(conf)]) == 0  # nothing running: still fine


def test_a_config_without_local_services_is_refused(tmp_path, capsys):
    conf = write_conf(tmp_path, free_port(), free_port())
    data = yaml.safe_load(conf.read_text())
    del data["local_services"]
    conf.write_text(yaml.safe_dump(data))
    assert main(["up", "--conf", str(conf)]) == 2
    assert "local_services: required" in capsys.readouterr().err


def s3_stack(tmp_path, moto_server, bucket: str) -> Stack:
    """A local stack whose events live in `bucket` on moto's S3, the sample under tmp_path/sample."""
    from spark_app.config import config_from_mapping

    data = yaml.safe_load(write_conf(tmp_path, free_port(), free_port()).read_text())
    data["events"] = {"path": f"s3://{bucket}/events", "quarantine_path": f"s3://{bucket}/quarantine"}
    data["s3"] = {"endpoint_url": moto_server.endpoint_url, "path_style_access": True}
    data["local_services"]["sample_dir"] = str(tmp_path / "sample")
    return Stack(config_from_mapping(data, "local.yaml"), tmp_path / "local.yaml")


def test_with_an_s3_events_path_the_day_is_generated_once_and_uploaded_to_moto(tmp_path, moto_server):
    from spark_app.events.files import s3_client
    from spark_app.local.cli import ensure_sample_day, sample_spec, upload_sample_day

    stack = s3_stack(tmp_path, moto_server, "cli-sample")
    said = []

    for _ in range(2):
        ensure_sample_day(stack, DAY, sample_spec(stack.services.sample), said.append)
        upload_sample_day(stack, DAY, said.append)

    assert stack.events_root == tmp_path / "sample"
    listed = s3_client(stack.cfg.s3).list_objects_v2(Bucket="cli-sample", Prefix="events/")["Contents"]
    local = sorted(
        p.relative_to(tmp_path / "sample").as_posix() for p in stack.events_root.rglob("*") if p.is_file()
    )
    assert sorted(o["Key"][len("events/") :] for o in listed) == local
    assert f"dt={DAY}/_SUCCESS" in local and any(k.startswith("dt=2026-11-20/part-") for k in local)
    assert said[2:] == [
        f"events       dt={DAY} already present under {tmp_path / 'sample'}",
        f"events       s3://cli-sample/events/dt={DAY} already in S3",
        f"events       s3://cli-sample/events/dt={NEXT_DAY} already in S3",
    ]


def test_a_day_uploaded_as_the_next_day_of_its_eve_still_gets_its_own_late_events(tmp_path, moto_server):
    # Run from D-1 to D: dt=D goes up complete with D-1; D's late events (dt=D+1) must follow.
    from spark_app.events.files import s3_client
    from spark_app.local.cli import ensure_sample_day, sample_spec, upload_sample_day

    stack = s3_stack(tmp_path, moto_server, "cli-eve")
    eve = DAY - timedelta(days=1)
    for day in (eve, DAY):
        ensure_sample_day(stack, day, sample_spec(stack.services.sample), lambda _: None)
    for day in (eve, DAY):
        upload_sample_day(stack, day, lambda _: None)

    listed = s3_client(stack.cfg.s3).list_objects_v2(Bucket="cli-eve", Prefix=f"events/dt={NEXT_DAY}/")
    assert [o["Key"] for o in listed.get("Contents", []) if "/part-" in o["Key"]]


# --------------------------------------------------------------------------- as a person types it


def local_cli(*args) -> subprocess.CompletedProcess:
    """`python -m spark_app.local.cli ...` from the project root, as the Makefile runs it."""
    cmd = [sys.executable, "-m", "spark_app.local.cli", *map(str, args)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def write_s3_conf(tmp: Path, pg_port: int, moto_port: int, state: Path, bucket: str = "local-bucket") -> Path:
    """conf/local.yaml's shape: events in moto's S3 (same port as DynamoDB), the sample under tmp."""
    path = write_conf(tmp, pg_port, moto_port, state)
    data = yaml.safe_load(path.read_text())
    data["events"] = {"path": f"s3://{bucket}/events", "quarantine_path": f"s3://{bucket}/quarantine",
                      "require_success_marker": True}
    data["s3"] = {"endpoint_url": f"http://127.0.0.1:{moto_port}", "path_style_access": True}
    data["local_services"]["sample_dir"] = str(tmp / "sample")
    path.write_text(yaml.safe_dump(data))
    return path


def test_make_services_prepares_the_day_make_run_runs():
    done = subprocess.run(["make", "-n", "services", "run", "DATE=2030-01-02", "CONF=c.yaml"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    lines = [line for line in done.stdout.splitlines() if "spark_app.local.cli" in line]
    assert [line.split("spark_app.local.cli ")[1] for line in lines] == [
        "up --conf c.yaml --date 2030-01-02",
        "run --conf c.yaml --date 2030-01-02",
    ]


def test_up_leaves_the_world_the_job_reads_and_says_how_to_run_it(tmp_path, state):
    pg_port, moto_port = free_port(), free_port()
    conf = write_s3_conf(tmp_path, pg_port, moto_port, state)
    try:
        done = local_cli("up", "--conf", conf, "--date", DAY)
        assert done.returncode == 0, done.stderr
        endpoint = f"http://127.0.0.1:{moto_port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="local-bucket")
                for o in page.get("Contents", [])]
        days = [DAY - timedelta(days=n) for n in (3, 2, 1, 0)]  # sample.days (4) ending on the day
        for d in days:
            assert f"events/dt={d}/_SUCCESS" in keys
            assert any(k.startswith(f"events/dt={d}/part-") for k in keys)
        assert any(k.startswith(f"events/dt={NEXT_DAY}/part-") for k in keys)  # the last day's late events
        dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        assert dynamodb.scan(TableName="product_catalog", Select="COUNT")["Count"] == 120
        out = done.stdout
        assert (f"process_data.py --pipeline catalog_match_rate --from {days[0]} --to {DAY} --conf {conf}"
                in out)
        assert f"psql postgresql://postgres@127.0.0.1:{pg_port}/catalog" in out
        assert port_open(pg_port) and port_open(moto_port)  # left running for the person
    finally:
        local_cli("down", "--conf", conf)
    assert not port_open(pg_port) and not port_open(moto_port)


@pytest.mark.parametrize("taken", ["moto", "postgres"])
def test_a_port_held_by_something_else_names_every_key_using_it_and_starts_nothing(tmp_path, state, taken):
    pg_port, moto_port = free_port(), free_port()
    conf = write_s3_conf(tmp_path, pg_port, moto_port, state)
    holder = socket.socket()
    holder.bind(("127.0.0.1", moto_port if taken == "moto" else pg_port))
    holder.listen()  # accepts connections, never answers: not moto, not our PostgreSQL
    try:
        done = local_cli("up", "--conf", conf, "--date", DAY)
    finally:
        holder.close()
        local_cli("down", "--conf", conf)  # only needed when the old code left a server behind
    assert done.returncode == 1
    keys = {
        "moto": "local_services.dynamodb_port, dynamodb.endpoint_url, s3.endpoint_url",
        "postgres": "local_services.postgres.port, postgres.url",
    }[taken]
    assert f"in {conf}: {keys}" in done.stderr
    assert "Traceback" not in done.stderr
    assert "started" not in done.stdout
    assert not (state / "pg" / "postmaster.pid").exists()


def test_an_up_that_fails_after_starting_the_servers_stops_them(tmp_path, state):
    pg_port, moto_port = free_port(), free_port()
    conf = write_conf(tmp_path, pg_port, moto_port, state)
    (tmp_path / "blocked").write_text("a file where the events folder's parent should be")
    data = yaml.safe_load(conf.read_text())
    data["events"]["path"] = str(tmp_path / "blocked" / "events")
    conf.write_text(yaml.safe_dump(data))
    try:
        done = local_cli("up", "--conf", conf, "--date", DAY)
        assert done.returncode == 1
        assert "up failed: stopping what it started" in done.stdout
        assert "PostgreSQL   stopped" in done.stdout and "(moto) stopped" in done.stdout
        assert done.stderr.startswith("error: ") and str(tmp_path / "blocked") in done.stderr
        assert not port_open(pg_port) and not port_open(moto_port)
    finally:
        local_cli("down", "--conf", conf)
