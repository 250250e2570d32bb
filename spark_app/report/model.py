"""The values a report shows, and the arithmetic on them (medians, drops, gaps); no I/O here."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Dict, List, Optional


def window_days(day: date, days: int) -> List[date]:
    """The `days` consecutive days ending on `day`, oldest first."""
    return [day - timedelta(days=days - 1 - i) for i in range(days)]


def rate(matched: Optional[int], total: Optional[int]) -> Optional[float]:
    """matched / total, or None when there were no views (undefined, not zero)."""
    if not total:
        return None
    return (matched or 0) / total


def date_ranges(days: List[date]) -> str:
    """Sorted days as runs of consecutive days: 2026-03-04..2026-03-05, 2026-03-09."""
    runs: List[List[date]] = []
    for d in days:
        if runs and d - runs[-1][-1] == timedelta(days=1):
            runs[-1].append(d)
        else:
            runs.append([d])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}..{r[-1]}" for r in runs)


def median_or_none(values: List[Optional[float]]) -> Optional[float]:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


@dataclass(frozen=True)
class RunInfo:
    """One row of `pipeline_runs`."""

    run_id: str
    day: date
    status: str
    rows_in: Optional[int]
    rows_out: Optional[int]
    rows_rejected: Optional[int]
    started_at: Any
    finished_at: Any
    error: Optional[str]
    stats: Dict[str, Any]

    @property
    def counts(self) -> Dict[str, int]:
        return dict(self.stats.get("counts") or {})

    @property
    def quarantine_path(self) -> Optional[str]:
        return self.stats.get("quarantine_path")  # set by runs that rejected lines

    @property
    def quality_warnings(self) -> List[str]:
        """The warning texts the run stored; for older runs, only how many there were."""
        texts = self.stats.get("quality_warnings")
        if texts is not None:
            return [str(t) for t in texts]
        n = ((self.stats.get("stages") or {}).get("quality") or {}).get("warnings") or 0
        return [f"{n} warning(s) (texts not recorded by this run)"] if n else []


@dataclass(frozen=True)
class DayTotal:
    """The whole day over all advertisers, or None values for a day with no successful run."""

    day: date
    published: bool  # a successful run exists for the day
    advertisers: Optional[int] = None
    total_views: Optional[int] = None
    matched_views: Optional[int] = None

    @property
    def match_rate(self) -> Optional[float]:
        return rate(self.matched_views, self.total_views) if self.published else None


@dataclass(frozen=True)
class Product:
    product_id: str
    views: int  # views on the report's day, all unmatched
    unmatched_days: int  # days of the window on which it was viewed and not in the catalog


@dataclass
class Advertiser:
    """An advertiser in trouble on the report's day."""

    advertiser_id: int
    total_views: int
    matched_views: int
    total_products: int
    matched_products: int
    median: Optional[float]  # trailing median of its match rate over the window before the day
    history_days: int  # days of the window before the day with views
    below_threshold: bool
    dropped: bool
    series: List[Optional[float]] = field(default_factory=list)  # match rate per window day; None: gap
    products: List[Product] = field(default_factory=list)

    @property
    def match_rate(self) -> float:
        return self.matched_views / self.total_views

    @property
    def unmatched_views(self) -> int:
        return self.total_views - self.matched_views

    @property
    def drop_points(self) -> Optional[float]:
        return None if self.median is None else (self.median - self.match_rate) * 100

    @property
    def reasons(self) -> List[str]:
        out = []
        if self.below_threshold:
            out.append("below threshold")
        if self.dropped:
            out.append(f"{self.drop_points:.1f} pts below its median")
        if self.history_days == 0:
            out.append("new: no history")
        return out


@dataclass(frozen=True)
class QualityMetric:
    table: str
    name: str
    instance: str
    value: Optional[float]
    trailing_mean: Optional[float]  # mean over the window's earlier days


@dataclass
class Report:
    pipeline: str
    day: date
    days: List[date]  # the window, oldest first
    settings: Any  # spark_app.config.ReportConfig
    totals: List[DayTotal]
    run: RunInfo  # the run that published the day
    latest_run: RunInfo  # the newest run of the day (may be a failed re-run)
    troubled: List[Advertiser]  # the top N, ranked by unmatched views
    troubled_count: int  # all advertisers in trouble
    troubled_unmatched_views: int  # views lost by all of them
    quality: List[QualityMetric]

    @property
    def today(self) -> DayTotal:
        return self.totals[-1]

    @property
    def trailing_median(self) -> Optional[float]:
        """Median of the overall match rate over the window's earlier published days."""
        return median_or_none([t.match_rate for t in self.totals[:-1]])

    @property
    def gaps(self) -> List[date]:
        return [t.day for t in self.totals if not t.published]
