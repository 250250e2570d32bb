"""Bounded history: product_views partitions past postgres.retention_days go, everything else stays."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta

from spark_app.config import ReportConfig
from spark_app.postgres.publish import DayRun
from spark_app.postgres.retention import day_partitions, prune
from spark_app.report.build import read_report
from tests.support.paths import ROOT
from tests.support.postgres import AGG, DETAIL, sql
from tests.support.report_data import write_conf

PIPELINE = "catalog_match_rate"
RETENTION = 366
OLD = [date(2025, 1, 1), date(2025, 1, 2)]
RECENT = [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)]  # 2026-01-03 - 365 days = 2025-01-03


def stored_days(spec, table):
    return [r[0] for r in sql(spec, f"SELECT DISTINCT day FROM {table} ORDER BY day")]


def partition_days(spec):
    engine = spec.engine()
    try:
        with engine.connect() as conn:
            return [d for _, d in day_partitions(conn, "public")]
    finally:
        engine.dispose()


def publish(spark, spec, day):
    detail = spark.createDataFrame([(day, 7, "p-1", 10, False), (day, 7, "p-2", 30, True)], DETAIL)
    agg = spark.createDataFrame([(day, 7, 2, 1, 40, 30, 0.75)], AGG)
    with DayRun(spec, PIPELINE, day, retention_days=RETENTION) as run:
        run.stage(detail, "product_views")
        run.stage(agg, "advertiser_match_rates")
        run.publish(rows_in=2, rows_out=2, rows_rejected=0, stats={"counts": {"lines_read": 2}})


def test_publishing_across_the_limit_drops_old_partitions_and_keeps_aggregates_and_runs(spark, spec):
    for day in OLD + RECENT[:1]:
        publish(spark, spec, day)
    assert partition_days(spec) == OLD + RECENT[:1]  # 2026-01-01 - 365 days = 2025-01-01: all kept
    for day in RECENT[1:]:
        publish(spark, spec, day)
    assert partition_days(spec) == RECENT  # 2025-01-01 went with 01-02's publish, 2025-01-02 with 01-03's
    assert stored_days(spec, "product_views") == RECENT
    assert stored_days(spec, "advertiser_match_rates") == OLD + RECENT
    assert stored_days(spec, "pipeline_runs") == OLD + RECENT


def test_the_report_still_works_over_a_window_reaching_past_the_pruned_days(spec):
    report = read_report(spec, "public", PIPELINE, RECENT[-1], 366, ReportConfig(min_match_rate=0.9))
    assert [a.advertiser_id for a in report.troubled] == [7]
    assert [(p.product_id, p.unmatched_days) for p in report.troubled[0].products] == [("p-1", 3)]
    assert report.gaps == [d for d in report.days if d not in RECENT]


def test_publishing_an_old_day_again_does_not_drop_recent_history(spark, spec):
    publish(spark, spec, OLD[0])  # a backfill: the cut-off counts back from the newest day
    assert partition_days(spec) == RECENT


def test_prune_dry_run_lists_and_keeps_then_prune_drops(spec, tmp_path):
    sql(spec, "CREATE TABLE product_views_d20241201 PARTITION OF product_views FOR VALUES IN ('2024-12-01')")
    conf = write_conf(tmp_path, spec.url, retention_days=RETENTION)
    cmd = [sys.executable, "process_data.py", "prune", "--conf", str(conf)]
    dry = subprocess.run([*cmd, "--dry-run"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert "would drop 1 partition(s) (2024-12-01)" in dry.stdout
    assert partition_days(spec)[0] == date(2024, 12, 1)
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "dropped 1 partition(s) (2024-12-01); 3 kept" in done.stdout
    assert partition_days(spec) == RECENT


def test_retention_never_reaches_into_the_longest_report_window(spec):
    result = prune(spec, "public", RETENTION, dry_run=True)
    assert result.cutoff == RECENT[-1] - timedelta(days=RETENTION - 1)
    assert result.dropped == []


def test_a_retention_shorter_than_the_longest_report_window_is_refused(tmp_path):
    conf = write_conf(tmp_path, "postgresql://etl@127.0.0.1:5432/db", retention_days=365)
    cmd = [sys.executable, "process_data.py", "prune", "--conf", str(conf)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "postgres.retention_days: must be at least 366" in done.stderr
