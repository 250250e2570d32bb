"""Metrics history in PostgreSQL: a day's metrics are replaced on re-run; anomalies against it."""

from __future__ import annotations

import datetime as dt

import pytest

from spark_app.config import AnomalyConfig, CheckConfig, QualityConfig
from spark_app.postgres.connect import ConnectionSpec
from spark_app.postgres.schema import upgrade_schema
from spark_app.quality.gate import run_gate
from spark_app.quality.results import FAILURE, SUCCESS, Metric
from spark_app.quality.store import check_anomalies, load_history, load_metrics, save_metrics

DAY = dt.date(2024, 5, 8)
VIEWS = AnomalyConfig(
    metric="Sum", table="product_views", column="view_count", max_relative_change=0.5, days=7
)


@pytest.fixture(scope="module")
def store(pg_url):
    spec = ConnectionSpec(pg_url)
    upgrade_schema(spec, "public")  # 0001 and this area's 0002
    return spec


def sum_views(value, table="product_views"):
    return Metric("Column", "view_count", "Sum", value, table)


def test_rerunning_a_day_replaces_its_metrics(store):
    first = [Metric("Dataset", "*", "Size", 10.0), sum_views(100.0)]
    assert save_metrics(store, "p", "product_views", DAY, first, run_id="run-1") == 2
    assert (
        save_metrics(store, "p", "product_views", DAY, [Metric("Dataset", "*", "Size", 12.0)], "run-2") == 1
    )
    assert load_metrics(store, "p", "product_views", DAY) == [
        Metric("Dataset", "*", "Size", 12.0, "product_views")
    ]


def test_days_and_tables_are_kept_apart(store):
    save_metrics(store, "q", "a", "2024-05-01", [Metric("Dataset", "*", "Size", 1.0)])
    save_metrics(store, "q", "a", "2024-05-02", [Metric("Dataset", "*", "Size", 2.0)])
    save_metrics(store, "q", "b", "2024-05-02", [Metric("Dataset", "*", "Size", 3.0)])
    save_metrics(store, "q", "a", "2024-05-02", [Metric("Dataset", "*", "Size", 4.0)])  # re-run of a, 05-02
    assert load_history(store, "q", "a", "Size", "*", before="2024-05-03", days=7) == [
        (dt.date(2024, 5, 1), 1.0),
        (dt.date(2024, 5, 2), 4.0),
    ]
    assert load_history(store, "q", "a", "Size", "*", before="2024-05-02", days=7) == [
        (dt.date(2024, 5, 1), 1.0)
    ]


def seed(store, pipeline, values):
    """One Sum(view_count) per day, ending the day before DAY."""
    for back, value in enumerate(reversed(values), start=1):
        save_metrics(store, pipeline, "product_views", DAY - dt.timedelta(days=back), [sum_views(value)])


def test_a_jump_against_the_seven_day_mean_is_flagged(store):
    seed(store, "jump", [100.0, 110.0, 90.0, 100.0, 95.0, 105.0, 100.0])  # mean 100
    (result,) = check_anomalies(store, "jump", DAY, [sum_views(175.0)], [VIEWS])
    assert (result.status, result.level, result.value) == (FAILURE, "Warning", 175.0)
    assert result.message == "Value: 175 is 75.0% above the mean 100 of 7 day(s) (allowed +/-50%)"
    (drop,) = check_anomalies(store, "jump", DAY, [sum_views(40.0)], [VIEWS])
    assert drop.status == FAILURE and "60.0% below the mean 100" in drop.message


def test_a_steady_series_passes(store):
    seed(store, "steady", [100.0, 110.0, 90.0, 100.0, 95.0, 105.0, 100.0])
    (result,) = check_anomalies(store, "steady", DAY, [sum_views(120.0)], [VIEWS])
    assert (result.status, result.message) == (SUCCESS, "20.0% above the mean 100 of 7 day(s)")


def test_only_the_configured_window_counts(store):
    seed(store, "window", [1000.0, 1000.0, 100.0, 100.0])  # the old 1000s fall outside a 2-day window
    two_days = AnomalyConfig(metric="Sum", table="product_views", column="view_count", days=2)
    (result,) = check_anomalies(store, "window", DAY, [sum_views(110.0)], [two_days])
    assert result.status == SUCCESS and "mean 100 of 2 day(s)" in result.message


def test_no_history_passes_with_a_note(store):
    (result,) = check_anomalies(store, "fresh", DAY, [sum_views(5.0)], [VIEWS])
    assert (result.status, result.message) == (SUCCESS, "passed: no history in the previous 7 day(s)")


@pytest.mark.parametrize("engine", ["native", "deequ"])
def test_gate_checks_anomalies_then_records_the_days_metrics(spark, store, engine):
    pipeline = f"gate-{engine}"
    seed(store, pipeline, [10.0, 10.0, 10.0])
    views = spark.createDataFrame(
        [(1, "p1", 20), (1, "p2", 20)], "advertiser_id bigint, product_id string, view_count bigint"
    )
    cfg = QualityConfig(
        engine=engine,
        checks={"product_views": [CheckConfig("isUnique", columns=("advertiser_id", "product_id"))]},
        anomalies=[VIEWS, AnomalyConfig(metric="Size", table="product_views", level="Error")],
    )
    tables = {"product_views": views}
    gate = run_gate(spark, tables, cfg, store=store, pipeline=pipeline, day=DAY, run_id="r1")
    assert gate.engine == engine
    sum_result, size_result = gate.anomalies
    assert (sum_result.status, sum_result.value) == (FAILURE, 40.0)  # 300% above 10: a Warning
    assert size_result.message == "passed: no history in the previous 7 day(s)"
    assert gate.passed and [w.check for w in gate.warnings] == [sum_result.check]
    assert sorted((m.name, m.value) for m in load_metrics(store, pipeline, "product_views", DAY)) == [
        ("Size", 2.0),
        ("Sum", 40.0),
        ("Uniqueness", 1.0),
    ]
