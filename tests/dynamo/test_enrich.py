"""`enrich_with_catalog` on real Spark against moto's DynamoDB over HTTP."""

from __future__ import annotations

import math

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, LongType, StringType, StructField, StructType

from spark_app.config import FaultConfig
from spark_app.dynamo.counters import LookupCounters
from spark_app.dynamo.enrich import enrich_with_catalog
from tests.support.dynamo import catalog_config, load_catalog

INPUT = StructType([StructField("advertiser_id", LongType()), StructField("product_id", StringType())])
OUTPUT = StructType(INPUT.fields + [StructField("matched", BooleanType(), nullable=False)])


def two_partitions(spark, first, second):
    """A DataFrame whose partition 0 holds exactly `first` and partition 1 exactly `second`."""
    rows = first + second
    rdd = spark.sparkContext.parallelize(rows, 2)  # slices are contiguous: len(first) == len(second)
    assert len(first) == len(second)
    return spark.createDataFrame(rdd, INPUT)


def expected(spark, rows, present):
    present = set(present)
    return spark.createDataFrame([(a, p, (a, p) in present) for a, p in rows], OUTPUT)


@pytest.fixture()
def scenario(spark, dynamodb, catalog_table):
    """Partition 0: 230 distinct keys (each twice); partition 1: 40 distinct keys (460 rows)."""
    first = [(1, f"p{i}") for i in range(230)] * 2
    second = [(2, f"q{i % 40}") for i in range(460)]
    present = [(1, f"p{i}") for i in range(0, 230, 3)] + [(2, f"q{i}") for i in range(0, 40, 2)]
    load_catalog(dynamodb, catalog_table, present)
    return two_partitions(spark, first, second), first + second, present


def test_requests_are_one_per_hundred_distinct_keys_of_each_partition(
    spark, moto_server, catalog_table, scenario
):
    df, rows, present = scenario
    distinct_per_partition = df.rdd.glom().map(lambda part: len(set(part))).collect()
    assert distinct_per_partition == [230, 40]
    counters = LookupCounters(spark.sparkContext)

    enriched = enrich_with_catalog(df, catalog_config(moto_server.endpoint_url, catalog_table), counters)
    enriched.persist()
    assert enriched.count() == 920

    after_count = counters.snapshot()
    assert after_count["requests"] == math.ceil(230 / 100) + math.ceil(40 / 100) == 4
    assert after_count["keys_asked"] == 270
    assert after_count["keys_found"] == len(present) == 77 + 20

    by_flag = {
        r["matched"]: r["n"] for r in enriched.groupBy("matched").agg(F.count("*").alias("n")).collect()
    }
    # p0, p3, .. p228 twice each; q0, q2, .. q38: the first ten 12 times, the next ten 11 times
    assert by_flag == {True: 77 * 2 + 10 * 12 + 10 * 11, False: 920 - 384}
    assert counters.snapshot()["requests"] == 4  # the aggregate read the persisted rows
    assert_df_equality(enriched, expected(spark, rows, present), ignore_row_order=True)
    enriched.unpersist()


def test_many_arrow_batches_in_a_partition_cost_no_extra_requests(
    spark, moto_server, dynamodb, catalog_table
):
    rows = [(8, f"s{i % 250}") for i in range(1000)]  # 250 distinct keys, each four times
    present = [(8, f"s{i}") for i in range(0, 250, 4)]
    load_catalog(dynamodb, catalog_table, present)
    df = spark.createDataFrame(rows, INPUT).coalesce(1)
    counters = LookupCounters(spark.sparkContext)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "90")  # 12 batches
    try:
        enriched = enrich_with_catalog(df, catalog_config(moto_server.endpoint_url, catalog_table), counters)
        enriched = enriched.persist()
        enriched.count()
    finally:
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "10000")

    assert counters.snapshot()["requests"] == 3  # ceil(250 / 100)
    assert_df_equality(enriched, expected(spark, rows, present), ignore_row_order=True)
    enriched.unpersist()


@pytest.mark.parametrize(
    "faults",
    [FaultConfig(unprocessed_share=0.5), FaultConfig(throttle_first=3)],
    ids=["half-of-every-answer-unprocessed", "first-three-requests-throttled"],
)
def test_recoverable_faults_give_the_same_flags(spark, moto_server, catalog_table, scenario, faults):
    df, rows, present = scenario
    counters = LookupCounters(spark.sparkContext)
    cfg = catalog_config(moto_server.endpoint_url, catalog_table, faults=faults)

    enriched = enrich_with_catalog(df, cfg, counters).persist()
    enriched.count()

    counts = counters.snapshot()
    assert_df_equality(enriched, expected(spark, rows, present), ignore_row_order=True)
    enriched.unpersist()
    if faults.throttle_first:
        assert counts["throttles"] == 3 * 2  # three per client, one client per partition
    else:
        assert counts["unprocessed_retried"] > 0 and counts["throttles"] == 0


def test_every_request_throttled_fails_the_task_naming_table_and_keys_left(spark, moto_server, catalog_table):
    df = spark.createDataFrame([(5, f"k{i}") for i in range(150)], INPUT).coalesce(1)
    cfg = catalog_config(
        moto_server.endpoint_url,
        catalog_table,
        max_unprocessed_retries=2,
        faults=FaultConfig(throttle_all=True),
    )

    with pytest.raises(Exception) as failure:
        enrich_with_catalog(df, cfg).count()

    # The full request of 100 keys goes out first and fails; the other 50 are never asked.
    assert (
        f"LookupFailed: DynamoDB table {catalog_table}: 100 keys left unprocessed after 2 retry rounds"
        in str(failure.value)
    )


def test_unreachable_endpoint_fails_the_task_naming_the_endpoint(spark, refused_endpoint):
    endpoint = refused_endpoint
    df = spark.createDataFrame([(5, "k")], INPUT)

    with pytest.raises(Exception) as failure:
        enrich_with_catalog(df, catalog_config(endpoint, "catalog")).collect()

    assert f"LookupFailed: DynamoDB table catalog: cannot reach {endpoint}" in str(failure.value)


def test_unusual_product_ids_round_trip(spark, moto_server, dynamodb, catalog_table):
    stored = ["café ☕", 'say "hi"', "it's", "tab\there", "emoji 🚀🚀", "x" * 1000, "ü" * 512, "a,b;c"]
    absent = ["cafe ☕", "say 'hi'", "x" * 999, "ü" * 511, "🚀"]
    load_catalog(dynamodb, catalog_table, [(42, p) for p in stored])
    rows = [(42, p) for p in stored + absent] + [(42, "ü" * 513), (42, None), (None, "café ☕"), (42, "")]
    df = spark.createDataFrame(rows, INPUT)

    enriched = enrich_with_catalog(df, catalog_config(moto_server.endpoint_url, catalog_table))

    assert_df_equality(enriched, expected(spark, rows, [(42, p) for p in stored]), ignore_row_order=True)


def test_an_existing_matched_column_is_replaced(spark, moto_server, dynamodb, catalog_table):
    load_catalog(dynamodb, catalog_table, [(1, "a")])
    df = spark.createDataFrame(
        [(1, "a", False), (1, "b", True)], "advertiser_id long, product_id string, matched boolean"
    )

    enriched = enrich_with_catalog(df, catalog_config(moto_server.endpoint_url, catalog_table))

    assert sorted(tuple(r) for r in enriched.collect()) == [(1, "a", True), (1, "b", False)]
