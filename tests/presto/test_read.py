"""The Presto source reads the same product views as a plain Spark count over the same events.

One hand-made day (2026-11-19) is written as JSON lines, loaded into the test coordinator
(DuckDB behind the Trino protocol) and read by Spark for the reference count.
"""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from spark_app.config import PrestoConfig
from spark_app.presto.read import read_presto_views
from tests.support.presto_server import PrestoTestServer

DAY = date(2026, 11, 19)
PV = "product_view"

HAND_EVENTS = [
    # event_id, event_type, ts (UTC), advertiser_id, product_id, dt
    ("e1", PV, "2026-11-19 08:00:00", 1, "p1", "2026-11-19"),
    ("e1", PV, "2026-11-19 08:00:00", 1, "p1", "2026-11-19"),  # duplicate delivery: counted once
    ("e2", PV, "2026-11-19 09:00:00", 1, "p1", "2026-11-19"),
    ("e3", PV, "2026-11-19 23:59:59", 1, "p2", "2026-11-20"),  # late: in the next day's folder, counted
    ("e4", PV, "2026-11-18 23:30:00", 1, "p2", "2026-11-19"),  # previous day's view in D's folder
    ("e5", "add_to_cart", "2026-11-19 10:00:00", 1, "p1", "2026-11-19"),
    ("e6", PV, "2026-11-19 12:00:00", 2, "p1", "2026-11-19"),
    ("e7", PV, "2026-11-19 13:00:00", 2, "p9", "2026-11-21"),  # folder D+2 is not read
    ("e8", PV, "2026-11-20 00:00:00", 2, "p1", "2026-11-20"),  # next day's view
    ("e9", PV, "2026-11-19 14:00:00", 3, "p'3", "2026-11-19"),  # a quote in the key
    ("e10", PV, "2026-11-19 14:30:00", 3, None, "2026-11-19"),  # no product: not a key
    ("e11", PV, "2026-11-19 15:00:00", 2, "p1", "2026-11-19"),
    ("e12", "purchase", "2026-11-19 15:30:00", 2, "p1", "2026-11-19"),
]
HAND_COUNTS = [(1, "p1", 2), (1, "p2", 1), (2, "p1", 2), (3, "p'3", 1)]

# Advertiser 4: 30 products viewed 1..3 times, so results span several pages.
FILLER = [
    (f"f{i}-{k}", PV, f"2026-11-19 {10 + k:02d}:00:00", 4, f"q{i:02d}", "2026-11-19")
    for i in range(30)
    for k in range(1 + i % 3)
]
TOTAL_KEYS = len(HAND_COUNTS) + 30
PAGE_SIZE = 7


@pytest.fixture(scope="module")
def events_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("presto") / "events.jsonl"
    names = ["event_id", "event_type", "ts", "advertiser_id", "product_id", "dt"]
    path.write_text("".join(json.dumps(dict(zip(names, e))) + "\n" for e in HAND_EVENTS + FILLER))
    return str(path)


@pytest.fixture(scope="module")
def server(events_path):
    srv = PrestoTestServer(page_size=5).start()
    srv.load_json_lines(events_path)
    yield srv
    srv.stop()


def presto_config(server, **overrides) -> PrestoConfig:
    settings = dict(host="127.0.0.1", port=server.port, http_scheme="http", page_size=PAGE_SIZE, buckets=4)
    settings.update(overrides)
    return PrestoConfig(**settings)


def spark_count(spark, path: str):
    """The reference: the same events counted by Spark with a plain groupBy."""
    raw = spark.read.schema(
        "event_id string, event_type string, ts string, advertiser_id long, product_id string, dt string"
    ).json(path)
    return (
        raw.where(F.col("dt").isin(DAY.isoformat(), "2026-11-20"))
        .where(F.col("event_type") == PV)
        .where(F.to_date(F.to_timestamp("ts")) == F.lit(DAY))
        .where(F.col("advertiser_id").isNotNull() & F.col("product_id").isNotNull())
        .groupBy("advertiser_id", "product_id")
        .agg(F.countDistinct("event_id").alias("view_count"))
    )


def test_reference_count_matches_the_hand_count(spark, events_path):
    rows = {tuple(r) for r in spark_count(spark, events_path).where("advertiser_id < 4").collect()}
    assert rows == set(HAND_COUNTS)


@pytest.mark.parametrize("mode", ["driver", "parallel"])
def test_mode_gives_the_spark_count(spark, server, events_path, mode):
    df = read_presto_views(spark, presto_config(server, mode=mode), DAY)

    assert df.columns == ["advertiser_id", "product_id", "view_count"]
    assert df.count() == TOTAL_KEYS
    assert_df_equality(df, spark_count(spark, events_path), ignore_row_order=True, ignore_nullable=True)


@pytest.mark.parametrize("mode", ["driver", "parallel"])
def test_a_day_without_views_gives_an_empty_frame(spark, server, mode):
    df = read_presto_views(spark, presto_config(server, mode=mode), date(2026, 11, 1))
    assert df.columns == ["advertiser_id", "product_id", "view_count"]
    assert df.count() == 0


def test_driver_mode_stages_one_page_at_a_time(spark, server):
    pages = []
    cfg = presto_config(server, mode="driver")
    df = read_presto_views(spark, cfg, DAY, on_page=lambda number, rows: pages.append(rows))

    assert len(pages) == -(-TOTAL_KEYS // PAGE_SIZE)  # 34 keys in pages of 7: 5 pages
    assert max(pages) == PAGE_SIZE
    assert sum(pages) == TOTAL_KEYS == df.count()


def test_result_is_repartitioned_to_the_configured_count(spark, server):
    df = read_presto_views(spark, presto_config(server, partitions=3), DAY)
    assert df.rdd.getNumPartitions() == 3


def test_the_day_is_a_bound_parameter_not_sql_text(spark, server):
    server.statements.clear()
    read_presto_views(spark, presto_config(server, mode="driver"), DAY)

    [query] = [s for s in server.statements if "count(DISTINCT event_id)" in s.sql]
    assert query.text.startswith("EXECUTE IMMEDIATE '")
    assert "2026-11" not in query.sql
    assert query.sql.count("?") == 4
    assert query.params == "'2026-11-19','2026-11-20','product_view',DATE '2026-11-19'"
    assert '"hive"."default"."events"' in query.sql


def test_parallel_mode_runs_each_bucket_once_and_the_buckets_partition_the_keys(spark, server, events_path):
    server.statements.clear()
    df = read_presto_views(spark, presto_config(server, mode="parallel", buckets=7), DAY)

    bucket_queries = [s for s in server.statements if "mod(mod(" in s.sql and "LIMIT 0" not in s.sql]
    bound = sorted(int(re.search(r",(\d+)$", s.params).group(1)) for s in bucket_queries)
    assert bound == [0, 1, 2, 3, 4, 5, 6]
    rows = [tuple(r) for r in df.collect()]
    assert len(rows) == len(set(rows)) == TOTAL_KEYS  # no key read by two buckets
    assert set(rows) == {tuple(r) for r in spark_count(spark, events_path).collect()}  # none missed


def test_legacy_prepared_statements_on_servers_without_execute_immediate(spark, events_path):
    old = PrestoTestServer(page_size=5, execute_immediate=False).start()
    try:
        old.load_json_lines(events_path)
        df = read_presto_views(spark, presto_config(old, mode="driver"), DAY)
        assert_df_equality(df, spark_count(spark, events_path), ignore_row_order=True, ignore_nullable=True)
        ours = [s for s in old.statements if "count(DISTINCT" in s.sql or "PREPARE" in s.text]
        kinds = [s.text.split()[0] for s in ours]
        assert kinds == ["PREPARE", "EXECUTE", "DEALLOCATE"]
    finally:
        old.stop()


@pytest.mark.parametrize("mode", ["driver", "parallel"])
def test_basic_auth_over_tls_reaches_the_executors_in_the_closure(
    spark, events_path, tmp_path, monkeypatch, mode
):
    secure = PrestoTestServer(page_size=5, users={"etl": "s3cret-pw"}, tls=True, cert_dir=tmp_path).start()
    try:
        secure.load_json_lines(events_path)
        monkeypatch.setenv("PRESTO_TEST_PASSWORD", "s3cret-pw")
        cfg = presto_config(
            secure, mode=mode, http_scheme="https", user="etl",
            password_env="PRESTO_TEST_PASSWORD", verify_tls=False,
        )
        df = read_presto_views(spark, cfg, DAY)
        assert df.count() == TOTAL_KEYS
        conf_values = " ".join(v for _, v in spark.sparkContext.getConf().getAll())
        assert "s3cret-pw" not in conf_values
    finally:
        secure.stop()


def test_jwt_is_sent_as_a_bearer_token(spark, events_path, tmp_path, monkeypatch):
    secure = PrestoTestServer(page_size=5, tokens=["header.payload.sig"], tls=True, cert_dir=tmp_path).start()
    try:
        secure.load_json_lines(events_path)
        monkeypatch.setenv("PRESTO_TEST_JWT", "header.payload.sig")
        cfg = presto_config(secure, http_scheme="https", jwt_env="PRESTO_TEST_JWT", verify_tls=False)
        assert read_presto_views(spark, cfg, DAY).count() == TOTAL_KEYS
    finally:
        secure.stop()
