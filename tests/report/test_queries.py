"""The report's queries against a hand-made window: a drop, a gap, a new advertiser, zero views."""

from __future__ import annotations

import dataclasses

import pytest

from spark_app.config import ReportConfig
from spark_app.errors import NoPublishedRun
from spark_app.postgres.connect import ConnectionSpec
from spark_app.report.build import read_report
from tests.support import report_data as data


@pytest.fixture(scope="module")
def seeded(pg_url):
    data.seed(pg_url)
    return ConnectionSpec(pg_url)


DEFAULTS = ReportConfig()


def report(spec, settings=DEFAULTS, day=data.DAY, days=7):
    return read_report(spec, "public", "catalog_match_rate", day, days, settings)


def test_the_day_at_a_glance_sums_every_advertiser_and_compares_with_the_trailing_median(seeded):
    r = report(seeded)
    assert r.days == data.DAYS
    assert (r.today.advertisers, r.today.total_views, r.today.matched_views) == (
        5,
        data.EXPECTED_DAY_VIEWS,
        data.EXPECTED_DAY_MATCHED,
    )
    assert r.today.match_rate == pytest.approx(data.EXPECTED_DAY_MATCHED / data.EXPECTED_DAY_VIEWS)
    assert r.trailing_median == pytest.approx(data.EXPECTED_TRAILING_MEDIAN)


def test_days_without_a_successful_run_are_gaps_not_zero(seeded):
    r = report(seeded)
    assert r.gaps == [data.FAILED_ONLY, data.NO_RUN]
    gap = {t.day: t for t in r.totals}[data.FAILED_ONLY]
    assert (gap.published, gap.total_views, gap.match_rate) == (False, None, None)


def test_advertisers_in_trouble_are_ranked_by_the_views_they_lose(seeded):
    r = report(seeded)
    assert [a.advertiser_id for a in r.troubled] == data.EXPECTED_TROUBLED
    assert [a.unmatched_views for a in r.troubled] == [50, 40, 30]
    assert (r.troubled_count, r.troubled_unmatched_views) == (3, data.EXPECTED_UNMATCHED_ALL)


def test_a_drop_below_the_own_median_counts_even_above_the_threshold(seeded):
    drop = {a.advertiser_id: a for a in report(seeded).troubled}[1]
    assert (drop.below_threshold, drop.dropped) == (False, True)
    assert drop.median == pytest.approx(0.95)
    assert drop.history_days == 4  # 03-01, 03-02, 03-03, 03-06: the gaps are not history
    assert drop.drop_points == pytest.approx(15.0)
    assert drop.series == [0.95, 0.95, 0.95, None, None, 0.95, 0.8]


def test_a_new_advertiser_has_no_median_and_is_judged_by_the_threshold(seeded):
    new = {a.advertiser_id: a for a in report(seeded).troubled}[2]
    assert (new.median, new.history_days, new.below_threshold, new.dropped) == (None, 0, True, False)
    assert new.series == [None] * 6 + [0.4]
    assert "new: no history" in new.reasons


def test_a_steadily_low_advertiser_is_below_the_threshold_without_a_drop(seeded):
    low = {a.advertiser_id: a for a in report(seeded).troubled}[5]
    assert (low.below_threshold, low.dropped, low.median) == (True, False, 0.5)


def test_an_advertiser_with_zero_views_is_never_in_trouble(seeded):
    strict = ReportConfig(min_match_rate=1.0, max_drop_points=0.0)
    assert 3 not in [a.advertiser_id for a in report(seeded, strict).troubled]
    assert report(seeded, strict).troubled_count == 4  # everyone with views is below 100%


def test_products_to_add_are_the_days_most_viewed_unmatched_with_their_days_in_the_window(seeded):
    drop = {a.advertiser_id: a for a in report(seeded).troubled}[1]
    assert [(p.product_id, p.views, p.unmatched_days) for p in drop.products] == data.EXPECTED_PRODUCTS_1


def test_top_n_bounds_advertisers_and_products(seeded):
    r = report(seeded, ReportConfig(top_advertisers=2, top_products=1))
    assert [a.advertiser_id for a in r.troubled] == data.EXPECTED_TROUBLED[:2]
    assert r.troubled_count == 3
    assert [[p.product_id for p in a.products] for a in r.troubled] == [["r-2"], ["p-a"]]


def test_a_shorter_window_sees_less_history(seeded):
    r = report(seeded, days=2)  # 03-06 and 03-07
    drop = {a.advertiser_id: a for a in r.troubled}[1]
    assert drop.history_days == 1
    assert [(p.product_id, p.unmatched_days) for p in drop.products] == [("p-a", 2), ("p-b", 1), ("p-c", 1)]


def test_the_run_behind_the_numbers_is_the_publishing_run_even_after_a_failed_rerun(seeded):
    r = report(seeded)
    assert (r.run.run_id, r.run.status, r.latest_run.status) == ("r-0307", "succeeded", "failed")
    assert (r.run.rows_in, r.run.rows_rejected, r.run.quarantine_path) == (1000, 3, data.QUARANTINE)
    assert r.run.quality_warnings == [data.WARNING]


def test_quality_metrics_of_the_day_come_with_their_trailing_mean(seeded):
    [size] = report(seeded).quality
    assert (size.table, size.name, size.value, size.trailing_mean) == ("product_views", "Size", 10.0, 4.0)


@pytest.mark.parametrize("day", [data.FAILED_ONLY, data.NO_RUN])
def test_a_day_without_a_successful_run_has_no_report(seeded, day):
    with pytest.raises(NoPublishedRun, match=f"no published run of catalog_match_rate for {day}"):
        report(seeded, day=day)


def test_settings_are_the_config_defaults_unless_set():
    assert dataclasses.asdict(ReportConfig()) == {
        "days": 28,
        "min_match_rate": 0.6,
        "max_drop_points": 10.0,
        "top_advertisers": 20,
        "top_products": 20,
        "s3_prefix": None,  # the report is delivered to S3 only when set
        "link_hours": 72,
        "topic_arn": None,
    }
