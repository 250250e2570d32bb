"""The pipeline's transforms, each a pure DataFrame-to-DataFrame function."""

from __future__ import annotations

from datetime import date

import pytest
from chispa import assert_df_equality

from pipelines.catalog_match_rate import (
    _event_counts,
    aggregate_match_rates,
    detail_rows,
)
from spark_app.errors import PipelineError

DAY = date(2026, 11, 19)
def test_detail_rows_carry_the_day_in_table_order(spark):
    enriched = spark.createDataFrame(
        [(7, "p,1", 3, True)], "advertiser_id long, product_id string, view_count long, matched boolean"
    )
    expected = spark.createDataFrame(
        [(DAY, 7, "p,1", 3, True)],
        "day date, advertiser_id long, product_id string, view_count long, matched boolean",
    )
    assert_df_equality(detail_rows(enriched, DAY), expected, ignore_nullable=True)


def test_match_rate_is_matched_views_over_total_views(spark):
    detail = spark.createDataFrame(
        [
            (DAY, 1, "a", 6, True),
            (DAY, 1, "b", 3, False),
            (DAY, 1, "c", 1, True),
            (DAY, 2, "x", 4, False),
        ],
        "day date, advertiser_id long, product_id string, view_count long, matched boolean",
    )
    expected = spark.createDataFrame(
        [(DAY, 1, 3, 2, 10, 7, 0.7), (DAY, 2, 1, 0, 4, 0, 0.0)],
        "day date, advertiser_id long, total_products long, matched_products long, "
        "total_views long, matched_views long, match_rate double",
    )
    assert_df_equality(
        aggregate_match_rates(detail), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_event_counts_account_for_every_line_read():
    source = {"lines_read": 20, "rejected": 3, "rejected_bad_ts": 3, "outside_day": 4, "in_day": 13,
              "distinct_events": 11}
    totals = {"view_events": 8, "other_events": 3, "viewed_products": 5}
    counts = _event_counts(source, totals)
    assert counts["duplicate_events"] == 2
    assert counts["rejected_bad_ts"] == 3
    assert (
        counts["rejected"]
        + counts["outside_day"]
        + counts["duplicate_events"]
        + counts["other_event_types"]
        + counts["product_view_events"]
        == counts["lines_read"]
    )


# The counts below are given directly: a real read cannot produce them (its own check holds the
# lines read to their outcomes), which is what makes each one a case the pipeline must still refuse.


def test_more_distinct_events_than_events_in_the_day_stop_the_run_before_publishing():
    # every line is accounted for (17 = 3 + 4 + 10) and the buckets agree with the per-key sums
    # (15 = 12 + 3), but 15 distinct events out of 10 in the day would be -5 duplicates
    source = {"lines_read": 17, "rejected": 3, "outside_day": 4, "in_day": 10, "distinct_events": 15}
    totals = {"view_events": 12, "other_events": 3, "viewed_products": 5}
    with pytest.raises(PipelineError, match="do not add up: duplicate_events negative") as err:
        _event_counts(source, totals)
    assert err.value.exit_code == 1
    assert "refusing to publish" in str(err.value)


def test_distinct_events_of_the_buckets_must_equal_views_plus_other_events():
    # the lines add up (20 = 3 + 4 + 3 + 2 + 8 with 13 - 10 duplicates), but the buckets kept 11
    # distinct events while the per-key sums hold 10: one was lost between the two
    source = {"lines_read": 20, "rejected": 3, "outside_day": 4, "in_day": 13, "distinct_events": 11}
    totals = {"view_events": 8, "other_events": 2, "viewed_products": 5}
    with pytest.raises(PipelineError, match="kept 11 distinct events but the views per key hold 8 product "
                                            "views and 2 other events") as err:
        _event_counts(source, totals)
    assert err.value.exit_code == 1


def test_event_counts_that_do_not_add_up_stop_the_run():
    # consistent but for one line: 21 read, 20 accounted for (3 + 4 + 2 duplicates + 3 + 8)
    source = {"lines_read": 21, "rejected": 3, "outside_day": 4, "in_day": 13, "distinct_events": 11}
    totals = {"view_events": 8, "other_events": 3, "viewed_products": 5}
    with pytest.raises(PipelineError, match="do not add up: 21 lines read but 20 accounted for"):
        _event_counts(source, totals)


def test_the_publish_expects_one_row_per_viewed_product_and_per_advertiser():
    from pipelines.catalog_match_rate import computed_rows

    counts = {"lines_read": 100, "viewed_products": 2116, "advertisers": 20, "product_view_events": 14032}
    assert computed_rows(counts) == {"product_views": 2116, "advertiser_match_rates": 20}


def test_the_publish_lock_policy_comes_from_the_config():
    from pipelines.catalog_match_rate import lock_policy
    from spark_app.config import config_from_mapping
    from spark_app.postgres.locks import LockPolicy

    cfg = config_from_mapping({
        "events": {"path": "/tmp/events"},
        "dynamodb": {"table": "catalog", "region": "us-east-1"},
        "postgres": {"url": "postgresql://etl@db/catalog", "lock_timeout_seconds": 0.5,
                     "publish_attempts": 3, "publish_backoff_seconds": 0.25},
    })
    assert lock_policy(cfg) == LockPolicy(timeout_seconds=0.5, attempts=3, backoff_seconds=0.25)


def test_an_overridden_shrink_guard_is_noted_in_the_run_summary():
    from pipelines.catalog_match_rate import note_overrides
    from spark_app.progress import Progress
    from spark_app.quality.gate import GateResult
    from spark_app.quality.results import ConstraintResult

    message = ("Value: 3709 is 74.0% below the published day's 14032 (allowed: 50% below); "
               "overridden (allow_shrink)")
    allowed = ConstraintResult("shrink guard: Size(*) vs the published day", "Warning", "Failure", "Size",
                               "*", 3709.0, message, "product_views")
    gate = GateResult(anomalies=[allowed])
    progress = Progress("catalog_match_rate 2026-11-19")

    note_overrides(gate, progress)

    summary = progress.format_summary()
    assert "NOTE: shrink guard overridden: product_views: Value: 3709 is 74.0% below" in summary
    assert progress.as_stats()["notes"] == [f"shrink guard overridden: product_views: {allowed.message}"]
