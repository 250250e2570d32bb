"""A wrong `events.path` is refused before Spark starts: exit 2 naming the key and the file, nothing recorded.

`process_data.py run|quality|suggest` as a scheduler calls it, against the run's PostgreSQL and
moto's S3. A root that exists but lacks the day's folder is a late day (exit 3), which the run
itself decides (tests/test_end_to_end.py); here it passes the check.
"""

from __future__ import annotations

import subprocess
import sys

import psycopg2
import pytest
import yaml

from spark_app.config import config_from_mapping
from spark_app.events.root import check_events_root
from tests.support.paths import ROOT
from tests.support.s3 import client

DAY = "2026-11-19"
BUCKET = "events-root-check"


@pytest.fixture(scope="module")
def s3(moto_server):
    s3 = client(moto_server.endpoint_url)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"events/dt={DAY}/part-00000.json", Body=b"{}\n")
    return s3


def mapping(path: str, endpoint_url: str, pg_url: str = "postgresql://postgres@127.0.0.1:1/none") -> dict:
    return {
        "spark": {"master": "local[1]"},
        "events": {"path": path},
        "s3": {"endpoint_url": endpoint_url, "path_style_access": True},
        "dynamodb": {"table": "catalog", "region": "us-east-1", "endpoint_url": endpoint_url},
        "postgres": {"url": pg_url},
    }


def pipeline_runs_table(pg_url: str):
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('pipeline_runs')")
        return cur.fetchone()[0]


ROOTS = {
    "local folder": (lambda tmp: str(tmp / "no-such-folder"), "no such folder"),
    "bucket": (lambda tmp: "s3://no-such-bucket-root/events", "bucket no-such-bucket-root does not exist"),
    "prefix": (lambda tmp: f"s3://{BUCKET}/evnets", "no object under it (no dt=YYYY-MM-DD/ folder)"),
}


@pytest.mark.parametrize("command", ["run", "quality", "suggest"])
@pytest.mark.parametrize("missing", ROOTS)
def test_a_missing_events_root_exits_2_before_spark_and_records_nothing(
    tmp_path, s3, moto_server, pg_url, command, missing
):
    root_of, why = ROOTS[missing]
    path = root_of(tmp_path)
    conf = tmp_path / "job.yaml"
    conf.write_text(yaml.safe_dump(mapping(path, moto_server.endpoint_url, pg_url)))

    done = subprocess.run(
        [sys.executable, "process_data.py", command, "--pipeline", "catalog_match_rate", "--date", DAY,
         "--conf", str(conf)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert done.returncode == 2, done.stderr[-3000:]
    assert f"{conf}: events.path: {path}: {why}" in done.stderr
    assert pipeline_runs_table(pg_url) is None  # not even the schema was migrated


def test_an_existing_root_passes_whether_or_not_it_holds_the_day(tmp_path, s3, moto_server):
    for path in (f"s3://{BUCKET}/events", f"s3://{BUCKET}", str(tmp_path)):
        check_events_root(config_from_mapping(mapping(path, moto_server.endpoint_url)))


def test_the_presto_source_has_no_events_root_to_check(moto_server):
    data = {**mapping("s3://no-such-bucket-root/events", moto_server.endpoint_url),
            "source": "presto", "presto": {"host": "trino.example"}}
    check_events_root(config_from_mapping(data))  # nothing listed, nothing raised
