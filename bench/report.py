"""Report bench: the catalog health report over 28 days of 1,000,000 detail rows a day, 20,000 advertisers.

    python -m bench --only report [--size small]

The window is generated inside PostgreSQL (`INSERT ... SELECT` from `generate_series` into each
day's partition, primary key built after, as the publish does; the aggregate table from the
partition), with one succeeded run per day, so the load is not what is measured. Measured: our
report (the queries pick and rank the advertisers in trouble in PostgreSQL; only the top N and
their products travel) read and written as HTML, best of 3, and the page's size; the peer reads
the window's `advertiser_match_rates` rows into Python and computes each advertiser's median
there, which is what a report without the ranking in SQL would have to do.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import uuid
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import List

from bench.common import BenchContext, BenchRow

DAYS = 28
ROWS_PER_DAY = 1_000_000
ADVERTISERS = 20_000
DAY = date(2026, 11, 19)
PIPELINE = "catalog_match_rate"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(ctx: BenchContext) -> List[BenchRow]:
    from spark_app.local.servers import LocalPostgres, free_port

    own_pg = ctx.pg_server is None
    pg = ctx.pg_server or LocalPostgres(ctx.work_dir / "pg", free_port(), "bench").start()
    name = f"bench_report_{uuid.uuid4().hex[:8]}"
    pg.create_database(name)
    try:
        return _measure(ctx, pg.admin_url(name))
    finally:
        pg.drop_database(name)
        if own_pg:
            pg.stop()


def _measure(ctx: BenchContext, url: str) -> List[BenchRow]:
    from spark_app.config import ReportConfig
    from spark_app.postgres.connect import ConnectionSpec
    from spark_app.postgres.schema import upgrade_schema

    spec = ConnectionSpec(url)
    upgrade_schema(spec)
    rows, advertisers = ctx.scaled(ROWS_PER_DAY), ctx.scaled(ADVERTISERS)
    days = [DAY - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
    start = time.perf_counter()
    _generate(spec, days, rows, advertisers)
    load_seconds = time.perf_counter() - start
    _say(
        f"report: generated {DAYS} days x {rows:,} rows, {advertisers:,} advertisers in {load_seconds:.1f} s"
    )
    settings = ReportConfig()
    ours, size_kb, troubled = _ours(spec, ctx.work_dir / "report.html", settings)
    peer = _peer(spec, days)
    total = rows * DAYS
    return [
        BenchRow(
            f"report: {DAYS} days, {advertisers:,} advertisers, page {size_kb:.0f} KB (ours)",
            total,
            ours,
            ratio=peer / ours,
            ratio_label="x window rows ranked in Python",
            extra={
                "page_kb": round(size_kb, 1),
                "troubled": troubled,
                "generate_seconds": round(load_seconds, 1),
            },
        ),
        BenchRow(f"report: peer, {DAYS} days of advertiser rows read into Python", total, peer),
    ]


def _generate(spec, days: List[date], rows: int, advertisers: int) -> None:
    """Detail rows per day (the last day: every 500th advertiser loses matches), aggregates, runs."""
    from sqlalchemy import text

    per_adv = max(1, rows // advertisers)
    engine = spec.engine()
    try:
        for i, d in enumerate(days):
            part = f"product_views_d{d:%Y%m%d}"
            drop = "OR (a % 500 = 0 AND p % 3 = 0)" if d == days[-1] else ""
            with engine.begin() as conn:
                conn.execute(text(f"CREATE TABLE {part} (LIKE product_views)"))
                conn.execute(
                    text(
                        f"INSERT INTO {part} SELECT DATE '{d}', a, "
                        f"'sku-' || lpad(((p * 7 + {i}) % 200)::text, 4, '0'), "
                        f"1 + (a * 7 + p * 13 + {i}) % 50, NOT ((a * 31 + p * 17) % 10 >= 8 {drop}) "
                        f"FROM generate_series(1, {advertisers}) a, generate_series(0, {per_adv - 1}) p"
                    )
                )
                conn.execute(
                    text(
                        f"ALTER TABLE {part} ADD PRIMARY KEY (day, advertiser_id, product_id), "
                        f"ADD CHECK (day = DATE '{d}')"
                    )
                )
                conn.execute(text(f"ALTER TABLE product_views ATTACH PARTITION {part} FOR VALUES IN ('{d}')"))
                conn.execute(
                    text(
                        "INSERT INTO advertiser_match_rates SELECT day, advertiser_id, count(*), "
                        "count(*) FILTER (WHERE matched), sum(view_count), "
                        "coalesce(sum(view_count) FILTER (WHERE matched), 0), "
                        "coalesce(sum(view_count) FILTER (WHERE matched), 0)::float8 / sum(view_count) "
                        f"FROM {part} GROUP BY day, advertiser_id"
                    )
                )
                conn.execute(
                    text(
                        "INSERT INTO pipeline_runs (run_id, pipeline, day, status, rows_in, rows_out, "
                        "rows_rejected, finished_at, stats) "
                        "VALUES (:r, :p, :d, 'succeeded', :n, :n, 0, now(), CAST(:s AS jsonb))"
                    ),
                    {
                        "r": uuid.uuid4().hex,
                        "p": PIPELINE,
                        "d": d,
                        "n": rows,
                        "s": json.dumps({"counts": {"lines_read": rows, "rejected": 0}}),
                    },
                )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()


def _ours(spec, out: Path, settings):
    from spark_app.report.build import read_report, write_html

    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        report = read_report(spec, "public", PIPELINE, DAY, DAYS, settings)
        write_html(report, out)
        best = min(best, time.perf_counter() - start)
    kb = out.stat().st_size / 1024
    _say(f"report: ours {best:.2f} s, {report.troubled_count:,} in trouble, page {kb:.0f} KB")
    return best, out.stat().st_size / 1024, report.troubled_count


def _peer(spec, days: List[date]) -> float:
    """Every advertiser row of the window into Python, medians and the ranking computed there."""
    from sqlalchemy import text

    engine = spec.engine()
    try:
        start = time.perf_counter()
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT day, advertiser_id, total_views, matched_views FROM advertiser_match_rates "
                    "WHERE day BETWEEN :a AND :b"
                ),
                {"a": days[0], "b": days[-1]},
            ).all()
        history, today = defaultdict(list), {}
        for d, adv, views, matched in rows:
            if views:
                (
                    history[adv].append(matched / views)
                    if d != days[-1]
                    else today.__setitem__(adv, (views, matched))
                )
        troubled = []
        for adv, (views, matched) in today.items():
            median = statistics.median(history[adv]) if history[adv] else None
            if matched / views < 0.6 or (median is not None and (median - matched / views) * 100 > 10):
                troubled.append((views - matched, adv))
        troubled.sort(reverse=True)
        seconds = time.perf_counter() - start
    finally:
        engine.dispose()
    _say(f"report: peer {seconds:.2f} s for {len(rows):,} rows, {len(troubled):,} in trouble")
    return seconds
