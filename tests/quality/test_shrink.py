"""The shrink guard: a day far smaller than its history, or than the day it would replace, fails
at Error level unless an operator allows it, and then the result says it was overridden."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import text

from spark_app.config import CheckConfig, QualityConfig, ShrinkConfig
from spark_app.postgres.connect import ConnectionSpec
from spark_app.postgres.schema import upgrade_schema
from spark_app.quality.gate import run_gate
from spark_app.quality.results import Metric
from spark_app.quality.shrink import ShrinkTarget, overridden
from tests.support.postgres import DETAIL

DAY = dt.date(2024, 6, 20)
TARGET = ShrinkTarget("product_views", "view_count")
ONLY_SIZE = {"product_views": [CheckConfig("hasSize", min=1)]}


@pytest.fixture(scope="module")
def store(pg_url):
    spec = ConnectionSpec(pg_url)
    upgrade_schema(spec, "public")
    return spec


def a_pipeline():
    return f"p_{uuid.uuid4().hex[:8]}"


def seed_history(store, pipeline, days, size, views):
    from spark_app.quality.store import save_metrics

    for back in range(1, days + 1):
        metrics = [Metric("Dataset", "*", "Size", size), Metric("Column", "view_count", "Sum", views)]
        save_metrics(store, pipeline, "product_views", DAY - dt.timedelta(days=back), metrics)


def day_of(spark, rows, views_each=1, day=DAY):
    return spark.createDataFrame([(day, 1, f"p{i}", views_each, True) for i in range(rows)], DETAIL)


def gate(spark, store, pipeline, df, shrink=None):
    cfg = QualityConfig(engine="native", shrink=shrink or ShrinkConfig())
    return run_gate(spark, {"product_views": df}, cfg, ONLY_SIZE, pipeline=pipeline, day=DAY,
                    store=store, shrink_target=TARGET)


def guard_failures(result):
    return [r for r in result.errors if r.check.startswith("shrink guard")]


def test_a_day_far_smaller_than_its_history_fails_at_error_level(spark, store):
    pipeline = a_pipeline()
    seed_history(store, pipeline, days=5, size=100, views=1400)

    result = gate(spark, store, pipeline, day_of(spark, 26, views_each=14))  # -74% rows and views

    failures = guard_failures(result)
    assert [(f.metric, f.value) for f in failures] == [("Size", 26.0), ("Sum", 364.0)]
    assert "74.0% below the median 100 of 5 stored day(s)" in failures[0].message
    assert not result.passed


def test_a_day_within_the_threshold_of_its_history_passes(spark, store):
    pipeline = a_pipeline()
    seed_history(store, pipeline, days=5, size=100, views=1400)

    result = gate(spark, store, pipeline, day_of(spark, 60, views_each=20))  # -40% rows, -14% views

    assert guard_failures(result) == [] and result.passed


def test_too_little_history_passes_with_a_note(spark, store):
    pipeline = a_pipeline()
    seed_history(store, pipeline, days=2, size=100, views=1400)

    result = gate(spark, store, pipeline, day_of(spark, 5))

    assert guard_failures(result) == []
    assert any("2 stored day(s), fewer than 3" in r.message for r in result.anomalies)


def publish_rows(store, rows, views_each):
    engine = store.engine()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS product_views_d20240620 PARTITION OF product_views "
                          "FOR VALUES IN ('2024-06-20')"))
        conn.execute(text("DELETE FROM product_views WHERE day = :d"), {"d": DAY})
        conn.execute(text("INSERT INTO product_views SELECT :d, 1, 'p' || i, :v, true "
                          "FROM generate_series(1, :n) i"), {"d": DAY, "v": views_each, "n": rows})
    engine.dispose()


def test_replacing_a_published_day_with_a_far_smaller_one_fails(spark, store):
    publish_rows(store, rows=40, views_each=10)  # no history at all for this pipeline

    result = gate(spark, store, a_pipeline(), day_of(spark, 10, views_each=10))

    failures = guard_failures(result)
    assert [(f.metric, f.value) for f in failures] == [("Size", 10.0), ("Sum", 100.0)]
    assert "75.0% below the published day's 40" in failures[0].message


def test_an_operator_may_allow_a_small_day_and_the_result_says_so(spark, store):
    pipeline = a_pipeline()
    seed_history(store, pipeline, days=5, size=100, views=1400)

    result = gate(spark, store, pipeline, day_of(spark, 26, views_each=14), ShrinkConfig(allow=True))

    assert result.passed and guard_failures(result) == []
    notes = overridden(result.results)
    assert [n.level for n in notes] == ["Warning", "Warning"]
    assert all("overridden (allow_shrink)" in n.message for n in notes)


def test_the_threshold_comes_from_the_config(spark, store):
    pipeline = a_pipeline()
    seed_history(store, pipeline, days=5, size=100, views=1400)

    strict = gate(spark, store, pipeline, day_of(spark, 60, views_each=20), ShrinkConfig(max_drop=0.3))

    assert [f.metric for f in guard_failures(strict)] == ["Size"]
