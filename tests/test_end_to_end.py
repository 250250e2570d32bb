"""`process_data.py` on a small hand-made day, checked row by row against hand-computed tables.

The day (2026-11-19) has 17 lines over two folders:

dt=2026-11-19 (plain JSON)                         outcome
  e1  view  adv 1 sku-1       08:00Z               kept
  e2  view  adv 1 sku-1       09:30+02:00 = 07:30Z kept
  e2  (same line again)                            duplicate
  e3  view  adv 1 sku-2       epoch ms 08:00Z      kept
  e4  add_to_cart adv 1 sku-1                      other event type
  e5  view  adv 2 sku-9       23:59:59Z            kept
  e6  view  adv 2 'weird, "quoted"<TAB>sku\\x'     kept (byte-exact)
  e7  view  adv 1 sku-1       2026-11-18 23:00Z    outside the day
  e8  view  adv 2 sku-10      01:00+05:00 = 18th   outside the day
  bad1 truncated JSON                              rejected
  bad2 no product_id                               rejected
  bad3 advertiser_id "abc"                         rejected
  bad4 ts "yesterday"                              rejected
dt=2026-11-20 (gzipped)
  e10 view  adv 1 sku-2       22:00Z on the 19th   kept (late arrival)
  e2  (redelivered)                                duplicate
  e11 view  adv 2 sku-9       2026-11-20 03:00Z    outside the day
  e12 view  adv 2 é-produit   12:00-05:00 = 17:00Z kept

Catalog: (1, sku-1), (2, sku-9), (2, weird...). So:
  product_views: (1, sku-1, 2, T) (1, sku-2, 2, F) (2, sku-9, 1, T) (2, weird, 1, T) (2, é-produit, 1, F)
  advertiser_match_rates: adv 1: 2 products, 1 matched, 4 views, 2 matched, 0.5
                          adv 2: 3 products, 2 matched, 3 views, 2 matched, 2/3
  counts: 17 read = 4 rejected + 3 outside + 2 duplicates + 1 other type + 7 views
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import uuid
from datetime import date

import psycopg2
import pytest
import yaml

from tests.support.paths import ROOT

DAY = "2026-11-19"
WEIRD = 'weird, "quoted"\tsku\\x'


def view(event_id, adv, product, ts, event_type="product_view"):
    return json.dumps(
        {
            "event_id": event_id,
            "event_type": event_type,
            "ts": ts,
            "advertiser_id": adv,
            "product_id": product,
            "user_agent": "ignored",
        },
        ensure_ascii=False,
    )


DAY_LINES = [
    view("e1", 1, "sku-1", "2026-11-19T08:00:00Z"),
    view("e2", 1, "sku-1", "2026-11-19T09:30:00+02:00"),
    view("e2", 1, "sku-1", "2026-11-19T09:30:00+02:00"),
    view("e3", 1, "sku-2", 1795075200000),
    view("e4", 1, "sku-1", "2026-11-19T10:00:00Z", event_type="add_to_cart"),
    view("e5", 2, "sku-9", "2026-11-19T23:59:59Z"),
    view("e6", 2, WEIRD, "2026-11-19T11:00:00Z"),
    view("e7", 1, "sku-1", "2026-11-18T23:00:00Z"),
    view("e8", 2, "sku-10", "2026-11-19T01:00:00+05:00"),
    '{"event_id": "bad1", "event_type": "product_view"',
    json.dumps(
        {"event_id": "bad2", "event_type": "product_view", "ts": "2026-11-19T10:00:00Z", "advertiser_id": 1}
    ),
    view("bad3", "abc", "sku-1", "2026-11-19T10:00:00Z"),
    view("bad4", 1, "sku-1", "yesterday"),
]
LATE_LINES = [
    view("e10", 1, "sku-2", "2026-11-19T22:00:00Z"),
    view("e2", 1, "sku-1", "2026-11-19T09:30:00+02:00"),
    view("e11", 2, "sku-9", "2026-11-20T03:00:00Z"),
    view("e12", 2, "é-produit", "2026-11-19T12:00:00-05:00"),
]
CATALOG = [(1, "sku-1"), (2, "sku-9"), (2, WEIRD), (3, "never-viewed")]

EXPECTED_DETAIL = [
    (date(2026, 11, 19), 1, "sku-1", 2, True),
    (date(2026, 11, 19), 1, "sku-2", 2, False),
    (date(2026, 11, 19), 2, WEIRD, 1, True),
    (date(2026, 11, 19), 2, "sku-9", 1, True),
    (date(2026, 11, 19), 2, "é-produit", 1, False),
]
EXPECTED_RATES = [
    (date(2026, 11, 19), 1, 2, 1, 4, 2, 0.5),
    (date(2026, 11, 19), 2, 3, 2, 3, 2, 2 / 3),
]


@pytest.fixture(scope="module")
def job(tmp_path_factory, pg_url, moto_server):
    """A hand-made day on disk, its catalog in DynamoDB, and a config pointing at both."""
    import boto3

    from spark_app.dynamo.catalog import create_catalog_table

    tmp_path = tmp_path_factory.mktemp("e2e")
    events = tmp_path / "events"
    (events / f"dt={DAY}").mkdir(parents=True)
    (events / f"dt={DAY}" / "part-00000.json").write_text("\n".join(DAY_LINES) + "\n", encoding="utf-8")
    (events / "dt=2026-11-20").mkdir()
    with gzip.open(events / "dt=2026-11-20" / "part-00000.json.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(LATE_LINES) + "\n")
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    table = "e2e_catalog"
    create_catalog_table(dynamodb, table)
    for adv, product in CATALOG:
        dynamodb.put_item(
            TableName=table, Item={"advertiser_id": {"N": str(adv)}, "product_id": {"S": product}}
        )
    conf = {
        "spark": {"master": "local[2]", "conf": {"spark.sql.shuffle.partitions": "2"}},
        "events": {
            "path": str(events),
            "quarantine_path": str(tmp_path / "quarantine"),
            "max_bad_share": 0.5,
        },
        "dynamodb": {"table": table, "region": "us-east-1", "endpoint_url": moto_server.endpoint_url},
        "postgres": {"url": pg_url},
    }
    yield write_conf(tmp_path / "job.yaml", conf), tmp_path, conf
    dynamodb.delete_table(TableName=table)


def write_conf(path, conf):
    path.write_text(yaml.safe_dump(conf))
    return path


def run_job(conf_path, *extra, day=DAY, env=None):
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable, **(env or {})}
    command = list(extra[:1]) if extra[:1] in (("quality",), ("suggest",)) else []
    extra = extra[len(command) :]
    args = [
        sys.executable,
        str(ROOT / "process_data.py"),
        *command,
        "--pipeline",
        "catalog_match_rate",
        "--conf",
        str(conf_path),
        *extra,
    ]
    if day:
        args += ["--date", day]
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def fetch(pg_url, sql):
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def tables(pg_url):
    detail = fetch(
        pg_url,
        "SELECT day, advertiser_id, product_id, view_count, matched FROM product_views "
        "ORDER BY advertiser_id, product_id",
    )
    rates = fetch(
        pg_url,
        "SELECT day, advertiser_id, total_products, matched_products, total_views, "
        "matched_views, match_rate FROM advertiser_match_rates ORDER BY advertiser_id",
    )
    return detail, rates


def test_the_day_lands_as_computed_by_hand_and_a_rerun_changes_nothing(job, pg_url):
    conf_path, tmp_path, _ = job
    first = run_job(conf_path)
    assert first.returncode == 0, first.stderr[-4000:]

    detail, rates = tables(pg_url)
    assert detail == sorted(EXPECTED_DETAIL, key=lambda r: (r[1], r[2]))
    assert [r[:6] for r in rates] == [r[:6] for r in EXPECTED_RATES]
    assert [r[6] for r in rates] == pytest.approx([r[6] for r in EXPECTED_RATES])

    runs = fetch(pg_url, "SELECT status, rows_in, rows_out, rows_rejected, stats FROM pipeline_runs")
    assert [(s, i, o, r) for s, i, o, r, _ in runs] == [("succeeded", 17, 5, 4)]
    counts = runs[0][4]["counts"]
    assert counts["lines_read"] == 17
    assert counts["rejected"] == 4
    assert counts["outside_day"] == 3
    assert counts["duplicate_events"] == 2
    assert counts["other_event_types"] == 1
    assert counts["product_view_events"] == 7
    assert set(runs[0][4]["stages"]) == {
        "migrate",
        "extract",
        "enrich",
        "aggregate",
        "load",
        "quality",
        "publish",
    }
    assert "lines_read" in first.stdout and "slowest" in first.stdout
    assert runs[0][4]["quarantine_path"].startswith(str(tmp_path / "quarantine"))  # read by the report
    assert isinstance(runs[0][4]["quality_warnings"], list)

    quarantined = [
        json.loads(line)
        for f in (tmp_path / "quarantine").rglob("*")
        if f.is_file() and not f.name.startswith((".", "_"))
        for line in (gzip.open(f, "rt") if f.suffix == ".gz" else open(f, encoding="utf-8"))
        if line.strip()
    ]
    assert len(quarantined) == 4

    second = run_job(conf_path)
    assert second.returncode == 0, second.stderr[-4000:]
    assert tables(pg_url) == (detail, rates)
    statuses = fetch(pg_url, "SELECT status FROM pipeline_runs ORDER BY started_at")
    assert statuses == [("succeeded",), ("succeeded",)]

    page = tmp_path / "report.html"
    args = ["report", "--pipeline", "catalog_match_rate", "--date", DAY, "--days", "1"]
    args += ["--conf", str(conf_path)]
    report = subprocess.run([sys.executable, str(ROOT / "process_data.py"), *args, "--out", str(page)],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    assert "rejected 4" in report.stdout and str(tmp_path / "quarantine") in page.read_text()


def test_an_error_level_check_that_fails_publishes_nothing(job, pg_url):
    conf_path, tmp_path, conf = job
    before = tables(pg_url)
    strict = {**conf, "quality": {"checks": {"product_views": [{"check": "hasSize", "min": 1000}]}}}
    result = run_job(write_conf(tmp_path / "strict.yaml", strict))
    assert result.returncode == 4, result.stderr[-3000:]
    assert "hasSize" in result.stderr
    assert tables(pg_url) == before
    status, error = fetch(pg_url, "SELECT status, error FROM pipeline_runs ORDER BY started_at DESC LIMIT 1")[
        0
    ]
    assert status == "failed"
    assert "hasSize" in error and "5" in error


def test_a_catalog_that_throttles_every_request_fails_the_day_and_changes_no_table(job, pg_url):
    conf_path, tmp_path, conf = job
    before = tables(pg_url)
    dynamodb = {
        **conf["dynamodb"],
        "faults": {"throttle_all": True},
        "max_unprocessed_retries": 2,
        "backoff_base_seconds": 0.001,
        "max_attempts": 1,
    }
    result = run_job(write_conf(tmp_path / "throttled.yaml", {**conf, "dynamodb": dynamodb}))
    assert result.returncode == 6, result.stderr[-3000:]
    assert "LookupFailed" in result.stderr and conf["dynamodb"]["table"] in result.stderr
    assert tables(pg_url) == before
    assert fetch(pg_url, "SELECT status FROM pipeline_runs ORDER BY started_at DESC LIMIT 1") == [("failed",)]


def test_a_day_whose_folder_is_missing_is_not_ready_rather_than_empty(job, pg_url):
    conf_path, _, _ = job
    before = tables(pg_url)
    result = run_job(conf_path, day="2026-11-25")
    assert result.returncode == 3, result.stderr[-3000:]
    assert "dt=2026-11-25" in result.stderr
    assert tables(pg_url) == before


def test_quality_and_suggest_report_on_the_day_and_publish_nothing(job, pg_url):
    conf_path, _, _ = job
    runs_before = fetch(pg_url, "SELECT count(*) FROM pipeline_runs")
    before = tables(pg_url)

    quality = run_job(conf_path, "quality")
    suggest = run_job(conf_path, "suggest")

    assert quality.returncode == 0, quality.stderr[-3000:]
    assert "quality gate PASSED" in quality.stdout
    assert "isUnique(day,advertiser_id,product_id)" in quality.stdout
    assert suggest.returncode == 0, suggest.stderr[-3000:]
    assert '.isComplete("product_id")' in suggest.stdout
    assert tables(pg_url) == before
    assert fetch(pg_url, "SELECT count(*) FROM pipeline_runs") == runs_before


# Presto reads the very same files: the session's Trino (tests/support/trino.py) sees the event
# folder as an external table partitioned by dt, and a view keeps the valid events by the
# event-log path's rules. Presto counts the views itself, so the counts of bad lines are not known.
def presto_conf(trino, tmp_path, conf, mode, **overrides):
    from tests.support.trino import create_event_tables

    create_event_tables(trino, tmp_path / "events", raw="raw_e2e_events", view="e2e_events")
    presto = {
        "host": "127.0.0.1",
        "port": trino.port,
        "http_scheme": "http",
        "table": "e2e_events",
        "mode": mode,
        "buckets": 3,
        "page_size": 2,
        "staging_dir": str(tmp_path / f"presto-staging-{mode}"),
        **overrides,
    }
    return write_conf(tmp_path / f"presto-{mode}.yaml", {**conf, "source": "presto", "presto": presto})


def tables_if_any(pg_url):
    """The two tables' rows, or empty ones before the first run created them."""
    if fetch(pg_url, "SELECT to_regclass('product_views') IS NULL")[0][0]:
        return [], []
    return tables(pg_url)


def clear_tables(pg_url):
    if fetch(pg_url, "SELECT to_regclass('product_views') IS NOT NULL")[0][0]:
        with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM product_views; DELETE FROM advertiser_match_rates")


@pytest.mark.parametrize("mode", ["driver", "parallel"])
def test_the_day_from_presto_lands_the_same_tables(job, pg_url, trino, mode):
    conf_path, tmp_path, conf = job
    clear_tables(pg_url)
    result = run_job(presto_conf(trino, tmp_path, conf, mode))
    assert result.returncode == 0, result.stderr[-4000:]

    detail, rates = tables(pg_url)
    assert detail == sorted(EXPECTED_DETAIL, key=lambda r: (r[1], r[2]))
    assert [r[:6] for r in rates] == [r[:6] for r in EXPECTED_RATES]
    stats = fetch(pg_url, "SELECT stats FROM pipeline_runs ORDER BY started_at DESC LIMIT 1")[0][0]
    assert stats["counts"]["presto_rows"] == 5
    assert stats["counts"]["product_view_events"] == 7


# --------------------------------------------------------------------------- the same day on S3


@pytest.fixture(scope="module")
def s3_job(job, moto_server):
    """The job's day uploaded to a bucket of moto's S3, and a config reading it like on EMR."""
    from spark_app.local.s3_upload import ensure_bucket, upload_tree
    from tests.support.s3 import client

    conf_path, tmp_path, conf = job
    bucket = f"e2e-{uuid.uuid4().hex[:10]}"
    s3 = client(moto_server.endpoint_url)
    ensure_bucket(s3, bucket)
    upload_tree(s3, tmp_path / "events", f"s3://{bucket}/events")
    events = {
        **conf["events"],
        "path": f"s3://{bucket}/events",
        "quarantine_path": f"s3://{bucket}/quarantine",
    }
    s3_conf = {
        **conf,
        "events": events,
        "s3": {"endpoint_url": moto_server.endpoint_url, "path_style_access": True},
    }
    return write_conf(tmp_path / "s3.yaml", s3_conf), s3_conf, s3, bucket


def test_the_day_from_s3_lands_the_same_tables_and_quarantine_and_no_secret_is_printed(s3_job, pg_url):
    conf_path, _, s3, bucket = s3_job
    secrets = {
        "PGPASSWORD": f"pg-{uuid.uuid4().hex}",  # the test server trusts local clients: unused, unseen
        "AWS_ACCESS_KEY_ID": f"AKIA{uuid.uuid4().hex[:16].upper()}",
        "AWS_SECRET_ACCESS_KEY": f"aws-{uuid.uuid4().hex}",  # moto's S3 without auth accepts any
    }
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:  # the tables exist once a job ran
        cur.execute("SELECT to_regclass('product_views') IS NOT NULL")
        if cur.fetchone()[0]:
            cur.execute("DELETE FROM product_views; DELETE FROM advertiser_match_rates")

    result = run_job(conf_path, env={**secrets, "SPARK_LOG_LEVEL": "INFO"})

    assert result.returncode == 0, result.stderr[-4000:]
    detail, rates = tables(pg_url)
    assert detail == sorted(EXPECTED_DETAIL, key=lambda r: (r[1], r[2]))
    assert [r[:6] for r in rates] == [r[:6] for r in EXPECTED_RATES]
    stats = fetch(pg_url, "SELECT stats FROM pipeline_runs ORDER BY started_at DESC LIMIT 1")[0][0]
    assert (stats["counts"]["lines_read"], stats["counts"]["rejected"]) == (17, 4)
    assert stats["counts"]["product_view_events"] == 7
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="quarantine/")["Contents"]]
    rejected = [
        json.loads(line)
        for key in keys
        if key.rsplit("/", 1)[1].startswith("part-")
        for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8").splitlines()
    ]
    assert sorted(r["raw"] for r in rejected) == sorted(DAY_LINES[9:13])
    assert {r["source_file"] for r in rejected} == {f"s3://{bucket}/events/dt={DAY}/part-00000.json"}
    assert stats["quarantine_path"].startswith(f"s3://{bucket}/quarantine/")
    output = result.stdout + result.stderr
    assert [name for name, secret in secrets.items() if secret in output] == []


def test_a_day_missing_from_s3_is_not_ready(s3_job, pg_url):
    conf_path, _, _, bucket = s3_job

    result = run_job(conf_path, day="2026-11-25")

    assert result.returncode == 3, result.stderr[-3000:]
    assert f"s3://{bucket}/events/dt=2026-11-25 does not exist yet" in result.stderr
    assert fetch(
        pg_url, "SELECT count(*) FROM pipeline_runs WHERE day = '2026-11-25' AND status = 'succeeded'"
    )[0] == (0,)


def test_a_bucket_that_does_not_exist_is_a_config_error(s3_job, tmp_path):
    _, conf, _, _ = s3_job
    events = {**conf["events"], "path": "s3://no-such-bucket-e2e/events"}

    result = run_job(write_conf(tmp_path / "nobucket.yaml", {**conf, "events": events}))

    assert result.returncode == 2, result.stderr[-3000:]
    assert "events.path: s3://no-such-bucket-e2e/events: bucket no-such-bucket-e2e does not exist" in (
        result.stderr
    )


def test_a_rerun_on_partial_input_is_stopped_by_the_shrink_guard_unless_allowed(job, pg_url):
    conf_path, tmp_path, conf = job
    if tables_if_any(pg_url)[0] != sorted(EXPECTED_DETAIL, key=lambda r: (r[1], r[2])):
        assert run_job(conf_path).returncode == 0  # run alone (or after presto): publish the full day
    before = tables(pg_url)
    partial = tmp_path / "partial-events"
    (partial / f"dt={DAY}").mkdir(parents=True)
    (partial / f"dt={DAY}" / "part-00000.json").write_text("\n".join(DAY_LINES[:4]) + "\n", encoding="utf-8")
    partial_conf = write_conf(tmp_path / "partial.yaml",
                              {**conf, "events": {**conf["events"], "path": str(partial)}})

    refused = run_job(partial_conf)
    allowed = run_job(partial_conf, "--allow-shrink")

    assert refused.returncode == 4, refused.stderr[-3000:]
    assert "shrink guard: Sum(view_count) vs the published day" in refused.stderr
    assert "re-run with --allow-shrink" in refused.stderr
    assert tables(pg_url)[0] != before[0] and allowed.returncode == 0, allowed.stderr[-3000:]
    assert "NOTE: shrink guard overridden: product_views" in allowed.stdout


def test_a_reader_holding_the_table_fails_the_publish_with_exit_5_naming_it_once(job, pg_url):
    conf_path, tmp_path, conf = job
    if fetch(pg_url, "SELECT to_regclass('product_views') IS NULL") == [(True,)]:
        assert run_job(conf_path).returncode == 0  # run alone: publish the day first
    before = tables(pg_url)
    quick = {**conf, "postgres": {**conf["postgres"], "lock_timeout_seconds": 0.3, "publish_attempts": 2,
                                  "publish_backoff_seconds": 0.1}}
    reader = psycopg2.connect(pg_url, application_name="report-left-open")
    try:
        with reader.cursor() as cur:
            cur.execute("SELECT count(*) FROM product_views")
            pid = reader.get_backend_pid()
        result = run_job(write_conf(tmp_path / "quick-locks.yaml", quick))
    finally:
        reader.rollback()
        reader.close()

    assert result.returncode == 5, result.stderr[-3000:]
    named = f"blocked by pid {pid} (application 'report-left-open', idle in transaction)"
    assert result.stderr.count(f"publishing public.product_views for day {DAY} failed: could not take") == 1
    assert named in result.stderr
    assert "needs a running DayRun" not in result.stderr
    assert tables(pg_url) == before


def test_a_presto_query_error_exits_7_and_changes_no_table(job, pg_url, trino):
    conf_path, tmp_path, conf = job
    before = tables_if_any(pg_url)
    result = run_job(presto_conf(trino, tmp_path, conf, "driver", table="no_such_events"))
    assert result.returncode == 7, result.stderr[-3000:]
    assert "query failed (TABLE_NOT_FOUND, USER_ERROR)" in result.stderr
    assert "no_such_events" in result.stderr
    assert tables_if_any(pg_url) == before
