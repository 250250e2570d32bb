"""Reading a report from PostgreSQL, and writing it: the HTML page, the CSV files, the summary."""

from __future__ import annotations

import csv
import logging
from datetime import date
from pathlib import Path
from typing import Any, List, Optional

from spark_app.config import MAX_REPORT_DAYS, ReportConfig
from spark_app.errors import ConfigError, NoPublishedRun, PipelineError, SinkError
from spark_app.postgres.connect import ConnectionSpec, error_text
from spark_app.report import queries
from spark_app.report.model import Report, date_ranges, window_days

log = logging.getLogger(__name__)


def check_window(days: int) -> None:
    if not 1 <= days <= MAX_REPORT_DAYS:
        raise ConfigError(f"--days {days}: a report covers 1 to {MAX_REPORT_DAYS} days")


def read_report(
    spec: ConnectionSpec, schema: str, pipeline: str, day: date, days: int, settings: ReportConfig
) -> Report:
    """Everything the page shows; NoPublishedRun (exit 3) when the day has no successful run,
    SinkError (exit 5, without the password) when PostgreSQL cannot be read."""
    check_window(days)
    engine = spec.engine()
    try:
        with engine.connect() as conn:
            return _read(conn, schema, pipeline, window_days(day, days), settings)
    except PipelineError:
        raise
    except Exception as exc:
        raise SinkError(
            f"reading the report of {pipeline} for {day} from {spec.describe()} failed: "
            + error_text(exc, spec)
        ) from None
    finally:
        engine.dispose()


def _read(conn: Any, schema: str, pipeline: str, days: List[date], settings: ReportConfig) -> Report:
    day = days[-1]
    runs = queries.fetch_runs(conn, schema, pipeline, days[0], day)
    published = sorted({r.day for r in runs if r.status == "succeeded"})
    of_day = [r for r in runs if r.day == day]
    succeeded = [r for r in of_day if r.status == "succeeded"]
    if not succeeded:
        latest = f"; its latest run {of_day[0].run_id} is {of_day[0].status}" if of_day else ""
        raise NoPublishedRun(f"no published run of {pipeline} for {day}{latest}: nothing to report")
    totals = queries.fetch_day_totals(conn, schema, days, published)
    troubled, count, lost = queries.fetch_troubled(conn, schema, days, published, settings)
    ids = [a.advertiser_id for a in troubled]
    series = queries.fetch_series(conn, schema, days, ids)
    products = queries.fetch_products(conn, schema, days, published, ids, settings.top_products)
    for a in troubled:
        a.series = [series.get(a.advertiser_id, {}).get(d) if d in published else None for d in days]
        a.products = products.get(a.advertiser_id, [])
    quality = queries.fetch_quality(conn, schema, pipeline, days)
    return Report(
        pipeline, day, days, settings, totals, succeeded[0], of_day[0], troubled, count, lost, quality
    )


def default_out(pipeline: str, day: date) -> Path:
    return Path(f"{pipeline}-report-{day.isoformat()}.html")


def write_html(report: Report, out: Path) -> Path:
    from spark_app.report.page import render

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(report), encoding="utf-8")
    return out


CSV_COLUMNS = ("advertiser_id", "product_id", "views_on_day", "unmatched_days_in_window", "window_days")


def write_csvs(report: Report, folder: Path) -> List[Path]:
    """One file per advertiser in trouble (of the top N): its products to add, most viewed first."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for a in report.troubled:
        path = folder / f"products-to-add-{a.advertiser_id}-{report.day.isoformat()}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(CSV_COLUMNS)
            for p in a.products:
                writer.writerow([a.advertiser_id, p.product_id, p.views, p.unmatched_days, len(report.days)])
        paths.append(path)
    return paths


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def summary(report: Report, out: Optional[Path] = None, csvs: Optional[List[Path]] = None) -> str:
    """A few lines for the terminal."""
    t = report.today
    lines = [
        f"{report.pipeline} on {report.day} "
        f"(window {report.days[0]} .. {report.day}, {len(report.days)} days)",
        f"  advertisers {t.advertisers:,}  views {t.total_views:,}  matched {t.matched_views:,}  "
        f"match rate {_pct(t.match_rate)} (trailing median {_pct(report.trailing_median)})",
        f"  in trouble: {report.troubled_count:,} advertiser(s) "
        f"losing {report.troubled_unmatched_views:,} views",
    ]
    for a in report.troubled[:5]:
        lines.append(
            f"    {a.advertiser_id:>10}  {_pct(a.match_rate):>6}  {a.unmatched_views:>10,} unmatched  "
            + ", ".join(a.reasons)
        )
    run = report.run
    lines.append(
        f"  run {run.run_id} {run.status}; lines read {run.rows_in or 0:,}, "
        f"rejected {run.rows_rejected or 0:,}; quality warnings {len(run.quality_warnings)}"
    )
    if report.gaps:
        lines.append(f"  days with no successful run: {date_ranges(report.gaps)}")
    if out is not None:
        lines.append(f"  report: {out}")
    if csvs:
        lines.append(f"  products to add: {len(csvs)} CSV file(s) in {csvs[0].parent}")
    return "\n".join(lines)
