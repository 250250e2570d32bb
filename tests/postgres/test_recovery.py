"""Crash safety of the load: a task retried after a partial write, a driver killed before publish.

Both run Spark in a subprocess: the retry needs `local[2,2]` (a task may fail once), the crash
needs a process we can kill with `os._exit`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date

import pytest

from spark_app.postgres.publish import DayRun
from tests.support.paths import ROOT
from tests.support.postgres import sql

DAY = date(2026, 11, 19)
ROWS = 1000

SCRIPT = r'''
import json, os, sys
from datetime import date

from spark_app.config import SparkConfig
from spark_app.postgres.connect import ConnectionSpec
from spark_app.postgres.publish import DayRun
from spark_app.session import build_session

url, marker = sys.argv[1], sys.argv[2]
spark = build_session(SparkConfig(master="local[2,2]", app_name="pg-recovery", conf={
    "spark.sql.execution.arrow.maxRecordsPerBatch": "100", "spark.ui.showConsoleProgress": "false"}))
df = spark.range(0, 1000, numPartitions=2).selectExpr(
    "DATE'2026-11-19' AS day", "id % 7 AS advertiser_id", "concat('p', id) AS product_id",
    "id AS view_count", "id % 2 = 0 AS matched")


def fail_first_attempt_after_300_rows(batches):
    """Test-only wrapper: partition 0's first attempt dies after handing 300 rows to the loader."""
    from pyspark import TaskContext

    ctx, seen = TaskContext.get(), 0
    for batch in batches:
        yield batch
        seen += batch.num_rows
        if ctx.partitionId() == 0 and ctx.attemptNumber() == 0 and seen >= 300:
            open(marker, "w").close()
            raise RuntimeError("injected failure after 300 rows")


spec = ConnectionSpec(url)
with DayRun(spec, "catalog_match_rate", date(2026, 11, 19), copy_batch_rows=100) as first:
    flaky = df.mapInArrow(fail_first_attempt_after_300_rows, df.schema)
    result = first.stage(flaky, "product_views")
    first.publish(rows_in=1000, rows_out=result.rows_loaded, rows_rejected=result.rows_rejected)
print(json.dumps({"retried_run": first.run_id, "loaded": result.rows_loaded}), flush=True)

with DayRun(spec, "catalog_match_rate", date(2026, 11, 19)) as second:
    second.stage(df.where("id < 10"), "product_views")
    print(json.dumps({"killed_run": second.run_id}), flush=True)
    os._exit(9)
'''


@pytest.fixture(scope="module")
def crashed(tmp_path_factory, spec):
    """One subprocess: publish the day through a task retry, then stage a replacement and die."""
    tmp = tmp_path_factory.mktemp("recovery")
    script = tmp / "load_day.py"
    script.write_text(SCRIPT)
    marker = tmp / "failed-once"
    env = dict(os.environ, PYTHONPATH=str(ROOT), SPARK_LOCAL_IP="127.0.0.1")
    proc = subprocess.run(
        [sys.executable, str(script), spec.url, str(marker)],
        capture_output=True, text=True, env=env, cwd=str(tmp), timeout=300,
    )
    out = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            out.update(json.loads(line))
    return proc, out, marker.exists()


def status(spec, run_id):
    return sql(spec, "SELECT status, rows_out FROM pipeline_runs WHERE run_id = :r", r=run_id)[0]


def staging_tables(spec):
    return [r[0] for r in sql(spec, "SELECT tablename FROM pg_tables WHERE left(tablename, 5) = '_stg_'")]


def day_summary(spec):
    return sql(spec, "SELECT count(*), sum(view_count), count(DISTINCT product_id) FROM product_views "
               "WHERE day = :d", d=DAY)[0]


def test_a_task_that_fails_after_a_partial_write_and_succeeds_on_retry_loads_each_row_once(spec, crashed):
    proc, out, failed_once = crashed

    assert proc.returncode == 9, proc.stderr[-3000:]
    assert failed_once, "the first attempt of partition 0 should have failed"
    assert out["loaded"] == ROWS
    assert status(spec, out["retried_run"]) == ("succeeded", ROWS)


def test_a_driver_killed_between_stage_and_publish_leaves_the_published_day_intact(spark, spec, crashed):
    proc, out, _ = crashed

    assert day_summary(spec) == (ROWS, sum(range(ROWS)), ROWS)
    assert status(spec, out["killed_run"]) == ("running", None)
    assert staging_tables(spec) == [f"_stg_{out['killed_run']}_product_views"]

    replacement = spark.createDataFrame(
        [(DAY, 1, "new", 5, True)],
        "day date, advertiser_id long, product_id string, view_count long, matched boolean",
    )
    with DayRun(spec, "catalog_match_rate", DAY) as run:
        run.stage(replacement, "product_views")
        run.publish(rows_in=1, rows_out=1, rows_rejected=0)

    assert sql(spec, "SELECT product_id, view_count FROM product_views WHERE day = :d", d=DAY) == [("new", 5)]
    assert status(spec, out["killed_run"]) == ("abandoned", None)
    assert staging_tables(spec) == []
