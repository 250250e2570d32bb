"""The Presto source reads the same product views as a plain Spark count over the same events.

One hand-made day (2026-11-19) is written as event-log folders (gzipped JSON lines under
dt=... folders) and read by the session's real Trino server through its hive catalog
(`trino` fixture, tests/support/trino.py); Spark counts the same events for the reference.
"""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from spark_app.config import PrestoConfig
from spark_app.presto.query import PrestoEndpoint, connect, views_query
from spark_app.presto.read import read_presto_views
from tests.support.presto_server import PrestoTestServer
from tests.support.trino import load_event_day

DAY = date(2026, 11, 19)
PV = "product_view"
NAMES = ["event_id", "event_type", "ts", "advertiser_id", "product_id", "dt"]

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


def _lines_by_dt(events):
    by_dt = {}
    for e in events:
        record = dict(zip(NAMES[:-1], e[:-1]))
        by_dt.setdefault(e[-1], []).append(json.dumps(record, ensure_ascii=False))
    return by_dt


@pytest.fixture(scope="module")
def events_path(tmp_path_factory):
    """The day as one flat JSON lines file with its dt column, for Spark's reference count."""
    path = tmp_path_factory.mktemp("presto") / "events.jsonl"
    path.write_text("".join(json.dumps(dict(zip(NAMES, e))) + "\n" for e in HAND_EVENTS + FILLER))
    return str(path)


@pytest.fixture(scope="module")
def day_table(trino, tmp_path_factory):
    """The day as event-log folders, readable in Trino as hive.default.read_day."""
    folder = tmp_path_factory.mktemp("read_day")
    return load_event_day(trino, folder, "read_day", _lines_by_dt(HAND_EVENTS + FILLER))


def presto_config(trino, table, **overrides) -> PrestoConfig:
    settings = dict(host="127.0.0.1", port=trino.port, http_scheme="http", page_size=PAGE_SIZE, buckets=4,
                    table=table)
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


def rows_of(trino, sql, params):
    ep = PrestoEndpoint(host="127.0.0.1", port=trino.port, http_scheme="http", user="test", catalog="hive",
                        schema="default", verify=True, request_timeout=60)
    conn = connect(ep)
    try:
        cursor = conn.cursor()
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        conn.close()


def our_queries(trino, table):
    """(query text) of the source's queries on `table`, from the server's own query history."""
    rows = trino.query(
        "SELECT query FROM system.runtime.queries "
        "WHERE source = 'catalog-match-rate' AND strpos(query, ?) > 0",
        [f'"{table}"'],
    )
    return [r[0] for r in rows]


def test_reference_count_matches_the_hand_count(spark, events_path):
    rows = {tuple(r) for r in spark_count(spark, events_path).where("advertiser_id < 4").collect()}
    assert rows == set(HAND_COUNTS)


@pytest.mark.parametrize("mode", ["driver", "parallel"])
def test_mode_gives_the_spark_count(spark, trino, day_table, events_path, mode):
    df = read_presto_views(spark, presto_config(trino, day_table, mode=mode), DAY)

    assert df.columns == ["advertiser_id", "product_id", "view_count"]
    assert df.count() == TOTAL_KEYS
    assert_df_equality(df, spark_count(spark, events_path), ignore_row_order=True, ignore_nullable=True)


@pytest.mark.parametrize("mode", ["driver", "parallel"])
def test_a_day_without_views_gives_an_empty_frame(spark, trino, day_table, mode):
    df = read_presto_views(spark, presto_config(trino, day_table, mode=mode), date(2026, 11, 1))
    assert df.columns == ["advertiser_id", "product_id", "view_count"]
    assert df.count() == 0


def test_driver_mode_stages_one_page_at_a_time(spark, trino, day_table):
    pages = []
    cfg = presto_config(trino, day_table, mode="driver")
    df = read_presto_views(spark, cfg, DAY, on_page=lambda number, rows: pages.append(rows))

    assert len(pages) == -(-TOTAL_KEYS // PAGE_SIZE)  # 34 keys in pages of 7: 5 pages
    assert max(pages) == PAGE_SIZE
    assert sum(pages) == TOTAL_KEYS == df.count()


def test_result_is_repartitioned_to_the_configured_count(spark, trino, day_table):
    df = read_presto_views(spark, presto_config(trino, day_table, partitions=3), DAY)
    assert df.rdd.getNumPartitions() == 3


def test_the_day_is_a_bound_parameter_not_sql_text(spark, trino, day_table):
    trino.query("CREATE OR REPLACE VIEW hive.default.read_bound SECURITY INVOKER AS SELECT * FROM read_day")
    read_presto_views(spark, presto_config(trino, "read_bound", mode="driver"), DAY)

    [text] = our_queries(trino, "read_bound")
    statement, using = text.split("USING", 1) if "USING" in text else (text, "")
    assert statement.startswith("EXECUTE IMMEDIATE '")
    assert "2026-11" not in statement
    assert statement.count("?") == 4
    assert using.strip() == "'2026-11-19','2026-11-20','product_view',DATE '2026-11-19'"


def test_buckets_of_the_real_hash_are_disjoint_and_cover_the_day(trino, day_table):
    cfg = presto_config(trino, day_table)
    whole = {(a, p): n for a, p, n in rows_of(trino, *views_query(cfg, DAY))}
    sql, params = views_query(cfg, DAY, buckets=5)
    buckets = [{(a, p): n for a, p, n in rows_of(trino, sql, params + [b])} for b in range(5)]

    seen = {}
    for bucket in buckets:
        assert not seen.keys() & bucket.keys()  # no key in two buckets
        seen.update(bucket)
    assert seen == whole and len(whole) == TOTAL_KEYS  # none missed
    assert sum(1 for bucket in buckets if bucket) >= 3  # xxhash64 spreads the keys


def test_parallel_mode_runs_each_bucket_once_and_the_buckets_partition_the_keys(
    spark, trino, day_table, events_path
):
    trino.query("CREATE OR REPLACE VIEW hive.default.read_buckets SECURITY INVOKER AS SELECT * FROM read_day")
    df = read_presto_views(spark, presto_config(trino, "read_buckets", mode="parallel", buckets=7), DAY)

    bucket_queries = [q for q in our_queries(trino, "read_buckets") if "LIMIT 0" not in q]
    bound = sorted(int(re.search(r",\s*(\d+)\s*$", q).group(1)) for q in bucket_queries)
    assert bound == [0, 1, 2, 3, 4, 5, 6]
    rows = [tuple(r) for r in df.collect()]
    assert len(rows) == len(set(rows)) == TOTAL_KEYS  # no key read by two buckets
    assert set(rows) == {tuple(r) for r in spark_count(spark, events_path).collect()}  # none missed


# Keys a typed events table may hold: the widest bigint, text with every kind of escape.
NASTY = [
    (9223372036854775807, "max-bigint"),
    (7, 'tab\there, "double" and \'single\' quotes'),
    (7, "back\\slash \\n not a newline, \\u0041 not an A"),
    (7, "multi\nline\r\nwith CR"),
    (7, "é-produit, 日本語, emoji 🛒, zero-width \u200b"),
    (7, "  spaces kept  "),
    (7, "semi;colon, comma, -- not a comment, /* nor this */"),
]


@pytest.fixture(scope="module")
def typed_table(trino):
    """An ORC table with the events' column types, keys of nasty text and rows with NULLs."""
    name = "read_typed"
    trino.query(f"DROP TABLE IF EXISTS hive.default.{name}")
    trino.query(
        f"CREATE TABLE hive.default.{name} (event_id varchar, event_type varchar, ts timestamp(3), "
        "advertiser_id bigint, product_id varchar, dt varchar) "
        "WITH (format = 'ORC', partitioned_by = ARRAY['dt'])"
    )
    rows = [(f"n{i}", PV, adv, product) for i, (adv, product) in enumerate(NASTY)]
    rows += [("n-null-product", PV, 7, None), ("n-null-adv", PV, None, "orphan"),
             (None, PV, 7, "no-event-id")]
    values = ", ".join(["(?, ?, TIMESTAMP '2026-11-19 12:00:00', ?, ?, '2026-11-19')"] * len(rows))
    trino.query(f"INSERT INTO hive.default.{name} VALUES {values}", [v for row in rows for v in row])
    return name


@pytest.mark.parametrize("mode", ["driver", "parallel"])
def test_bigint_and_nasty_text_arrive_exactly_and_rows_with_nulls_are_no_keys(
    spark, trino, typed_table, mode
):
    df = read_presto_views(spark, presto_config(trino, typed_table, mode=mode), DAY)

    assert dict(df.dtypes) == {"advertiser_id": "bigint", "product_id": "string", "view_count": "bigint"}
    assert sorted(tuple(r) for r in df.collect()) == sorted((adv, product, 1) for adv, product in NASTY)


def test_legacy_prepared_statements_on_servers_without_execute_immediate(spark, events_path):
    """Stand-in server: a current Trino always has EXECUTE IMMEDIATE, so the client's fallback to
    PREPARE / EXECUTE / DEALLOCATE (older Presto) can only be produced by the imitation."""
    old = PrestoTestServer(page_size=5, execute_immediate=False).start()
    try:
        old.load_json_lines(events_path)
        cfg = PrestoConfig(host="127.0.0.1", port=old.port, http_scheme="http", page_size=PAGE_SIZE,
                           mode="driver")
        df = read_presto_views(spark, cfg, DAY)
        assert_df_equality(df, spark_count(spark, events_path), ignore_row_order=True, ignore_nullable=True)
        ours = [s for s in old.statements if "count(DISTINCT" in s.sql or "PREPARE" in s.text]
        kinds = [s.text.split()[0] for s in ours]
        assert kinds == ["PREPARE", "EXECUTE", "DEALLOCATE"]
    finally:
        old.stop()
