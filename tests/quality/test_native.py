"""The native engine reads a table once, however many checks and key sets it verifies."""

from __future__ import annotations

import contextlib

import pytest
from pyspark.sql import functions as F

from pipelines.catalog_match_rate_quality import DEFAULT_CHECKS
from spark_app.config import CheckConfig
from spark_app.quality.checks import MetricSpec, plan_metric
from spark_app.quality.gate import verify
from spark_app.quality.native import compute_metrics, metrics_query


@contextlib.contextmanager
def adaptive(spark, enabled: bool):
    before = spark.conf.get("spark.sql.adaptive.enabled")
    spark.conf.set("spark.sql.adaptive.enabled", str(enabled).lower())
    try:
        yield
    finally:
        spark.conf.set("spark.sql.adaptive.enabled", before)


@pytest.fixture(scope="module")
def views(spark, tmp_path_factory):
    """product_views as parquet: 6 rows, one duplicated key, one NULL product_id."""
    rows = [
        ("2024-05-01", 1, "p1", 3, True),
        ("2024-05-01", 1, "p2", 1, False),
        ("2024-05-01", 1, "p2", 2, False),
        ("2024-05-01", 2, "p1", 5, True),
        ("2024-05-01", 2, None, 4, None),
        ("2024-05-01", 3, "p9", 0, False),
    ]
    path = str(tmp_path_factory.mktemp("views") / "product_views")
    spark.createDataFrame(
        rows, "day string, advertiser_id bigint, product_id string, view_count bigint, matched boolean"
    ).withColumn("day", F.col("day").cast("date")).write.parquet(path)
    return spark.read.parquet(path)


def test_all_metrics_of_a_table_come_from_one_scan_of_its_files(spark, views):
    checks = DEFAULT_CHECKS["product_views"] + [CheckConfig("isUnique", column="product_id")]
    specs = [MetricSpec("Size"), MetricSpec("Sum", "view_count", ("view_count",))]
    specs += [plan_metric(c) for c in checks]
    views.createOrReplaceTempView("views_plan")
    plan = spark.sql(metrics_query("views_plan", specs))._jdf.queryExecution().executedPlan().toString()
    assert plan.count("FileScan parquet") == 1  # two key sets share the scan (GROUPING SETS)


def test_job_count_does_not_grow_with_the_number_of_checks(spark, views):
    few = [CheckConfig("isUnique", columns=("day", "advertiser_id", "product_id"))]
    many = DEFAULT_CHECKS["product_views"] + [CheckConfig("isUnique", column="product_id")]
    with adaptive(spark, False):
        assert verify(spark, views, "product_views", few, "native").spark_jobs == 1
        assert verify(spark, views, "product_views", many, "native").spark_jobs == 1
        scan_only = [CheckConfig("hasSize", min=1), CheckConfig("isComplete", column="day")]
        assert verify(spark, views, "product_views", scan_only, "native").spark_jobs == 1
    with adaptive(spark, True):  # adaptive execution runs each shuffle stage as its own job
        jobs_few = verify(spark, views, "product_views", few, "native").spark_jobs
        jobs_many = verify(spark, views, "product_views", many, "native").spark_jobs
        assert jobs_few == jobs_many <= 3


def test_default_checks_on_product_views_find_the_duplicate_key(spark, views):
    report = verify(spark, views, "product_views", DEFAULT_CHECKS["product_views"], "native")
    failed = {(r.check, r.level): r.value for r in report.results if r.status == "Failure"}
    assert failed == {
        ("isComplete(product_id)", "Error"): pytest.approx(5 / 6),
        # (1, p2) twice; every row has a non-null key column: 4 unique of 6
        ("isUnique(day,advertiser_id,product_id)", "Error"): pytest.approx(4 / 6),
        ("isComplete(matched)", "Error"): pytest.approx(5 / 6),
        ("every row counts a view", "Warning"): 0.0,
    }


def test_two_key_sets_get_their_own_uniqueness_and_distinctness(spark, views):
    specs = [
        MetricSpec("Uniqueness", "advertiser_id", ("advertiser_id",)),
        MetricSpec("Distinctness", "advertiser_id", ("advertiser_id",)),
        MetricSpec("CountDistinct", "advertiser_id", ("advertiser_id",)),
        MetricSpec("UniqueValueRatio", "product_id", ("product_id",)),
        MetricSpec("Uniqueness", "product_id", ("product_id",)),
        MetricSpec("Completeness", "matched", ("matched",)),
        MetricSpec("Mean", "view_count", ("view_count",)),
        MetricSpec("Size"),
    ]
    values = [m.value for m in compute_metrics(spark, views, "product_views", specs).metrics]
    # advertiser_id 1,1,1,2,2,3: only 3 is unique; 3 distinct of 6.
    # product_id p1,p2,p2,p1,NULL,p9 over 5 non-null rows: p9 unique; 1 unique of 3 distinct.
    assert values == pytest.approx([1 / 6, 3 / 6, 3.0, 1 / 3, 1 / 5, 5 / 6, 15 / 6, 6.0])
