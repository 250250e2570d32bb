"""Exactly-once publication of a day: replace, isolate days, refuse concurrent runs, record failures."""

from __future__ import annotations

from datetime import date

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from spark_app.errors import ConfigError, SinkError
from spark_app.postgres.connect import ConnectionSpec
from spark_app.postgres.publish import DayRun
from tests.support.postgres import AGG, DETAIL, sql

PIPELINE = "catalog_match_rate"
D1, D2 = date(2026, 11, 18), date(2026, 11, 19)



def detail(spark, day, rows):
    return spark.createDataFrame([(day, *r) for r in rows], DETAIL)


def stored_detail(spark, spec, day):
    rows = sql(
        spec,
        "SELECT day, advertiser_id, product_id, view_count, matched FROM product_views WHERE day = :d",
        d=day,
    )
    return spark.createDataFrame([tuple(r) for r in rows], DETAIL)


def publish_detail(spark, spec, day, rows):
    with DayRun(spec, PIPELINE, day) as run:
        result = run.stage(detail(spark, day, rows), "product_views")
        run.publish(rows_in=len(rows), rows_out=result.rows_loaded, rows_rejected=result.rows_rejected)
    return run, result


def staging_tables(spec):
    return sql(spec, "SELECT tablename FROM pg_tables WHERE tablename LIKE '\\_stg\\_%'")


def test_a_day_loads_and_a_rerun_replaces_it_without_touching_other_days(spark, spec):
    publish_detail(spark, spec, D1, [(1, "a", 3, True), (1, "b", 1, False)])
    publish_detail(spark, spec, D2, [(1, "a", 10, True), (2, "z", 2, True)])
    run, result = publish_detail(spark, spec, D2, [(1, "a", 11, True), (3, "new", 1, False)])

    assert result.rows_loaded == 2 and result.rows_rejected == 0
    assert_df_equality(
        stored_detail(spark, spec, D2),
        detail(spark, D2, [(1, "a", 11, True), (3, "new", 1, False)]),
        ignore_row_order=True,
    )
    assert_df_equality(
        stored_detail(spark, spec, D1),
        detail(spark, D1, [(1, "a", 3, True), (1, "b", 1, False)]),
        ignore_row_order=True,
    )
    status = sql(spec, "SELECT status, rows_in, rows_out, finished_at IS NOT NULL FROM pipeline_runs "
                 "WHERE run_id = :r", r=run.run_id)
    assert [tuple(s) for s in status] == [("succeeded", 2, 2, True)]
    assert staging_tables(spec) == []


def test_detail_and_aggregate_publish_together_with_stats(spark, spec):
    agg = spark.createDataFrame([(D1, 1, 2, 1, 4, 3, 0.75)], AGG).select(
        "match_rate", "advertiser_id", "day", "total_views", "matched_views", "total_products",
        "matched_products",
    )
    with DayRun(spec, PIPELINE, D1) as run:
        run.stage(detail(spark, D1, [(1, "a", 3, True), (1, "b", 1, False)]), "product_views")
        run.stage(agg, "advertiser_match_rates")
        run.publish(rows_in=4, rows_out=2, rows_rejected=0, stats={"quality": {"passed": True}})

    assert [tuple(r) for r in sql(spec, "SELECT * FROM advertiser_match_rates WHERE day = :d", d=D1)] == [
        (D1, 1, 2, 1, 4, 3, 0.75)
    ]
    (stats,) = sql(spec, "SELECT stats FROM pipeline_runs WHERE run_id = :r", r=run.run_id)[0]
    assert stats == {
        "quality": {"passed": True},
        "sink": {
            "product_views": {"rows_loaded": 2, "rows_rejected": 0},
            "advertiser_match_rates": {"rows_loaded": 1, "rows_rejected": 0},
        },
    }


def test_awkward_text_is_stored_exactly_and_nul_is_rejected_and_counted(spark, spec):
    awkward = ["a,b", 'say "hi"', "tab\there", "line\nbreak", "back\\slash", "\\N", "", "日本語 ünï 🚀"]
    rows = [(5, pid, i, i % 2 == 0) for i, pid in enumerate(awkward)] + [(5, "bad\x00id", 1, True)]

    _, result = publish_detail(spark, spec, D1, rows)

    assert (result.rows_loaded, result.rows_rejected) == (len(awkward), 1)
    stored = sql(spec, "SELECT product_id FROM product_views WHERE day = :d AND advertiser_id = 5", d=D1)
    assert sorted(r[0] for r in stored) == sorted(awkward)


def test_a_second_run_of_the_same_day_is_refused_while_another_day_may_run(spark, spec):
    with DayRun(spec, PIPELINE, D2) as first:
        refused = f"another run of pipeline {PIPELINE} for day 2026-11-19 .* is in progress"
        with pytest.raises(SinkError, match=refused):
            DayRun(spec, PIPELINE, D2).__enter__()
        with DayRun(spec, PIPELINE, D1) as other_day:
            live = sql(spec, "SELECT status FROM pipeline_runs WHERE run_id = :r", r=first.run_id)
            other_day.fail("not publishing")
        first.fail("done")

    statuses = dict(sql(spec, "SELECT run_id, status FROM pipeline_runs WHERE run_id IN (:a, :b)",
                        a=first.run_id, b=other_day.run_id))
    assert [tuple(r) for r in live] == [("running",)], "a live run of another day must not be abandoned"
    assert statuses == {first.run_id: "failed", other_day.run_id: "failed"}


def test_a_finished_run_gives_its_day_lock_back_before_it_returns(spark, spec):
    """A closed connection's server process drops its locks only as it exits, a moment later:
    without an explicit unlock, a run started right after the last one could be refused."""
    held = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
    with DayRun(spec, PIPELINE, D1) as run:
        during = sql(spec, held)
        run.fail("test over")
    after = sql(spec, held)

    assert during == [(1,)] and after == [(0,)]
    for _ in range(5):  # back to back, as a retried day starts after a failed one
        with DayRun(spec, PIPELINE, D1) as run:
            run.fail("again")


def test_an_exception_inside_the_run_records_failure_and_leaves_targets_untouched(spark, spec):
    publish_detail(spark, spec, D2, [(8, "kept", 1, True)])
    secret = ConnectionSpec(spec.url, password="Sup3r-s3cret")  # trust auth ignores it

    with pytest.raises(ValueError, match="gate said no"):
        with DayRun(secret, PIPELINE, D2) as run:
            run.stage(detail(spark, D2, [(8, "replacement", 1, True)]), "product_views")
            raise ValueError("gate said no; Sup3r-s3cret")

    assert [r[0] for r in sql(spec, "SELECT product_id FROM product_views WHERE day = :d", d=D2)] == ["kept"]
    (status, error) = sql(spec, "SELECT status, error FROM pipeline_runs WHERE run_id = :r", r=run.run_id)[0]
    assert status == "failed"
    assert error == "ValueError: gate said no; ***"
    assert staging_tables(spec) == []


def test_a_constraint_violation_at_publish_is_a_sink_error_naming_table_and_day(spark, spec):
    publish_detail(spark, spec, D2, [(8, "kept", 1, True)])
    duplicated = [(9, "same", 1, True), (9, "same", 2, True)]

    expected = "publishing public.product_views for day 2026-11-19 failed: UniqueViolation"
    with pytest.raises(SinkError, match=expected):
        publish_detail(spark, spec, D2, duplicated)

    assert [r[0] for r in sql(spec, "SELECT product_id FROM product_views WHERE day = :d", d=D2)] == ["kept"]
    (status,) = sql(spec, "SELECT status FROM pipeline_runs ORDER BY started_at DESC LIMIT 1")[0]
    assert status == "failed"
    assert staging_tables(spec) == []


def test_publish_is_all_or_nothing_across_tables(spark, spec):
    publish_detail(spark, spec, D2, [(8, "kept", 1, True)])
    duplicated_agg = spark.createDataFrame([(D2, 1, 2, 1, 4, 3, 0.75), (D2, 1, 2, 1, 4, 3, 0.75)], AGG)

    with pytest.raises(SinkError, match="publishing public.advertiser_match_rates for day 2026-11-19 failed"):
        with DayRun(spec, PIPELINE, D2) as run:
            run.stage(detail(spark, D2, [(8, "replacement", 1, True)]), "product_views")
            run.stage(duplicated_agg, "advertiser_match_rates")
            run.publish(rows_in=1, rows_out=1, rows_rejected=0)

    assert [r[0] for r in sql(spec, "SELECT product_id FROM product_views WHERE day = :d", d=D2)] == ["kept"]
    assert staging_tables(spec) == []


def test_a_failing_spark_job_is_a_sink_error_with_its_python_cause(spark, spec):
    publish_detail(spark, spec, D2, [(8, "kept", 1, True)])

    def explode(view_count):
        raise ValueError(f"bad view count {view_count}")

    broken = detail(spark, D2, [(8, "x", 1, True)]).withColumn(
        "view_count", F.udf(explode, "bigint")("view_count")
    )

    expected = "loading public.product_views for day 2026-11-19 failed: ValueError: bad view count 1"
    with pytest.raises(SinkError, match=expected):
        with DayRun(spec, PIPELINE, D2) as run:
            run.stage(broken, "product_views")

    assert [r[0] for r in sql(spec, "SELECT product_id FROM product_views WHERE day = :d", d=D2)] == ["kept"]
    (status, error) = sql(spec, "SELECT status, error FROM pipeline_runs WHERE run_id = :r", r=run.run_id)[0]
    assert status == "failed" and "ValueError: bad view count 1" in error
    assert staging_tables(spec) == []


def test_rows_of_another_day_are_refused_before_publish(spark, spec):
    with pytest.raises(SinkError, match="1 row.* carry a day other than the run's 2026-11-19"):
        with DayRun(spec, PIPELINE, D2) as run:
            run.stage(detail(spark, D1, [(1, "x", 1, True)]), "product_views")

    assert staging_tables(spec) == []


def test_a_frame_with_wrong_columns_is_refused_naming_table_and_column(spark, spec):
    good = detail(spark, D1, [(1, "a", 1, True)])
    wrong_type = good.withColumn("view_count", F.col("view_count").cast("string"))
    missing = good.drop("matched")

    with DayRun(spec, PIPELINE, D1) as run:
        mismatch = "DataFrame for product_views does not match its columns: missing column.s. matched"
        with pytest.raises(SinkError, match=mismatch):
            run.stage(missing, "product_views")
        with pytest.raises(SinkError, match="column product_views.view_count: DataFrame type string"):
            run.stage(wrong_type, "product_views")
        run.fail("test over")


def partitions(spec):
    """{partition name: (oid, bound, primary key index)} of product_views."""
    rows = sql(
        spec,
        "SELECT c.relname, c.oid, pg_get_expr(c.relpartbound, c.oid), "
        "(SELECT x.indexrelid::regclass::text FROM pg_index x WHERE x.indrelid = c.oid AND x.indisprimary) "
        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'product_views'::regclass",
    )
    return {name: (oid, bound, key) for name, oid, bound, key in rows}


def test_republishing_a_day_swaps_its_partition_and_leaves_other_days_partitions_alone(spark, spec):
    publish_detail(spark, spec, D1, [(1, "a", 3, True)])
    publish_detail(spark, spec, D2, [(1, "a", 10, True)])
    before = partitions(spec)

    publish_detail(spark, spec, D2, [(2, "b", 4, False), (3, "c", 5, True)])
    after = partitions(spec)

    assert after["product_views_d20261118"] == before["product_views_d20261118"]
    oid, bound, key = after["product_views_d20261119"]
    assert oid != before["product_views_d20261119"][0], "the day's partition is the new run's table"
    assert (bound, key) == ("FOR VALUES IN ('2026-11-19')", "product_views_d20261119_pkey")
    assert sorted(r[0] for r in sql(spec, "SELECT product_id FROM product_views WHERE day = :d", d=D2)) == [
        "b", "c"]
    assert [r[0] for r in sql(spec, "SELECT product_id FROM product_views WHERE day = :d", d=D1)] == ["a"]
    assert sql(spec, "SELECT count(*) FROM pg_class WHERE relname LIKE '\\_stg\\_%'") == [(0,)]
    with pytest.raises(Exception, match="UniqueViolation"):  # the partition carries the primary key
        sql(spec, "INSERT INTO product_views VALUES (:d, 2, 'b', 1, true)", d=D2)
    with pytest.raises(Exception, match="violates (partition|check) constraint"):  # and only its day
        sql(spec, "INSERT INTO product_views_d20261119 VALUES ('2026-11-20', 2, 'x', 1, true)")


def test_publish_refuses_when_staged_rows_differ_from_the_rows_computed(spark, spec):
    publish_detail(spark, spec, D2, [(8, "kept", 1, True)])

    expected = (r"publishing public.product_views for day 2026-11-19 refused: 2 row\(s\) staged "
                r"but 3 computed")
    with pytest.raises(SinkError, match=expected):
        with DayRun(spec, PIPELINE, D2) as run:
            run.stage(detail(spark, D2, [(8, "a", 1, True), (8, "b", 1, True)]), "product_views")
            run.publish(rows_in=3, rows_out=2, rows_rejected=0, expected_rows={"product_views": 3})

    assert [r[0] for r in sql(spec, "SELECT product_id FROM product_views WHERE day = :d", d=D2)] == ["kept"]
    (status, error) = sql(spec, "SELECT status, error FROM pipeline_runs WHERE run_id = :r", r=run.run_id)[0]
    assert status == "failed" and "2 row(s) staged but 3 computed" in error


def test_a_copy_batch_of_no_rows_is_refused_before_anything_starts(spec):
    with pytest.raises(ConfigError, match="copy_batch_rows must be at least 1, got 0"):
        DayRun(spec, PIPELINE, D2, copy_batch_rows=0)


def test_fail_after_a_failed_publish_keeps_the_publish_error(spark, spec):
    """The pipeline's pattern: any exception -> run.fail(exc) -> re-raise. The publish's own error
    must reach the caller, not a complaint that the run is no longer running."""
    duplicated = [(9, "same", 1, True), (9, "same", 2, True)]

    with pytest.raises(SinkError) as err:
        with DayRun(spec, PIPELINE, D2) as run:
            try:
                run.stage(detail(spark, D2, duplicated), "product_views")
                run.publish(rows_in=2, rows_out=2, rows_rejected=0)
            except Exception as exc:
                run.fail(exc, {"stage": "publish"})
                raise

    assert "publishing public.product_views for day 2026-11-19 failed: UniqueViolation" in str(err.value)
    assert "needs a running DayRun" not in str(err.value)
    (error,) = sql(spec, "SELECT error FROM pipeline_runs WHERE run_id = :r", r=run.run_id)[0]
    assert "UniqueViolation" in error


def test_a_product_id_of_exactly_1024_utf8_bytes_loads_and_publishes_byte_exact(spark, spec):
    # 1,024 bytes is the longest product id the extract keeps (DynamoDB's sort-key limit); the
    # primary key's btree must take it, multi-byte characters included.
    longest = "é" * 511 + "xy"  # 511 x 2 bytes + 2 = 1,024 bytes
    assert len(longest.encode("utf-8")) == 1024

    publish_detail(spark, spec, D2, [(4, longest, 3, True)])

    assert [r[0] for r in sql(spec, "SELECT product_id FROM product_views WHERE day = :d", d=D2)] == [longest]
