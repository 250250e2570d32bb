"""The report's SQL: every query is bounded by the window's days and by the config's top N.

The advertisers in trouble are chosen and ranked inside PostgreSQL (one pass over the window's
rows of `advertiser_match_rates`, by its primary key `(day, advertiser_id)`), so only the top N
rows travel; the products to add are read from the day's `product_views` partition for those
advertisers alone (its primary key `(day, advertiser_id, product_id)`), and their days in the
window by key lookups in each day's partition. A match rate is computed as matched / total views
where there were views; a row with no views has no rate (never zero, never a division error).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date
from typing import Any, Dict, List, Sequence, Tuple

from spark_app.postgres.connect import qualified
from spark_app.report.model import Advertiser, DayTotal, Product, QualityMetric, RunInfo, rate

_RUN_COLUMNS = "run_id, day, status, rows_in, rows_out, rows_rejected, started_at, finished_at, error, stats"


def fetch_runs(conn: Any, schema: str, pipeline: str, first: date, last: date) -> List[RunInfo]:
    """Every run of the window's days, newest first within a day."""
    from sqlalchemy import text

    rows = conn.execute(
        text(
            f"SELECT {_RUN_COLUMNS} FROM {qualified(schema, 'pipeline_runs')} "
            "WHERE pipeline = :p AND day BETWEEN :first AND :last ORDER BY day, started_at DESC"
        ),
        {"p": pipeline, "first": first, "last": last},
    ).all()
    return [_run(r) for r in rows]


def _run(r: Sequence[Any]) -> RunInfo:
    stats = r[9] if isinstance(r[9], dict) else json.loads(r[9] or "{}")
    return RunInfo(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], stats or {})


def fetch_day_totals(conn: Any, schema: str, days: List[date], published: Sequence[date]) -> List[DayTotal]:
    """Advertisers, views and matched views per day; a day with no successful run is a gap."""
    from sqlalchemy import text

    rows = conn.execute(
        text(
            "SELECT day, count(*), sum(total_views), sum(matched_views) "
            f"FROM {qualified(schema, 'advertiser_match_rates')} "
            "WHERE day BETWEEN :first AND :last GROUP BY day"
        ),
        {"first": days[0], "last": days[-1]},
    ).all()
    by_day = {r[0]: r for r in rows}
    out = []
    for d in days:
        if d not in published:
            out.append(DayTotal(d, published=False))
            continue
        _, advertisers, views, matched = by_day.get(d, (d, 0, 0, 0))
        out.append(DayTotal(d, True, int(advertisers), int(views or 0), int(matched or 0)))
    return out


_TROUBLE_SQL = """
WITH history AS (
    SELECT advertiser_id,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY matched_views::float8 / total_views) AS median,
           count(*) AS history_days
    FROM {amr}
    WHERE day >= :first AND day < :day AND day = ANY(:published) AND total_views > 0
    GROUP BY advertiser_id
), today AS (
    SELECT advertiser_id, total_views, matched_views, total_products, matched_products,
           matched_views::float8 / total_views AS rate
    FROM {amr}
    WHERE day = :day AND total_views > 0
), troubled AS (
    SELECT t.*, h.median, coalesce(h.history_days, 0) AS history_days,
           t.rate < :min_rate AS below,
           coalesce((h.median - t.rate) * 100 > :max_drop, false) AS dropped
    FROM today t LEFT JOIN history h USING (advertiser_id)
    WHERE t.rate < :min_rate OR (h.median - t.rate) * 100 > :max_drop
)
SELECT advertiser_id, total_views, matched_views, total_products, matched_products, median,
       history_days, below, dropped,
       count(*) OVER () AS n_troubled, sum(total_views - matched_views) OVER () AS unmatched_all
FROM troubled
ORDER BY total_views - matched_views DESC, advertiser_id
LIMIT :top
"""


def fetch_troubled(
    conn: Any, schema: str, days: List[date], published: Sequence[date], settings: Any
) -> Tuple[List[Advertiser], int, int]:
    """The top N advertisers in trouble on the window's last day, how many there are, views they lose.

    In trouble: views on the day and a match rate below `settings.min_match_rate`, or more than
    `settings.max_drop_points` points below the advertiser's median over the window's earlier
    published days with views (an advertiser with no such day has no median: only the
    threshold applies).
    """
    from sqlalchemy import text

    sql = _TROUBLE_SQL.format(amr=qualified(schema, "advertiser_match_rates"))
    rows = conn.execute(
        text(sql),
        {
            "first": days[0],
            "day": days[-1],
            "published": list(published),
            "min_rate": settings.min_match_rate,
            "max_drop": settings.max_drop_points,
            "top": settings.top_advertisers,
        },
    ).all()
    advertisers = [
        Advertiser(
            int(r[0]),
            int(r[1]),
            int(r[2] or 0),
            int(r[3] or 0),
            int(r[4] or 0),
            r[5],
            int(r[6]),
            bool(r[7]),
            bool(r[8]),
        )
        for r in rows
    ]
    count = int(rows[0][9]) if rows else 0
    lost = int(rows[0][10]) if rows else 0
    return advertisers, count, lost


def fetch_series(conn: Any, schema: str, days: List[date], ids: List[int]) -> Dict[int, Dict[date, float]]:
    """Match rate per advertiser and day of the window (days with views only)."""
    from sqlalchemy import text

    if not ids:
        return {}
    rows = conn.execute(
        text(
            "SELECT advertiser_id, day, matched_views, total_views "
            f"FROM {qualified(schema, 'advertiser_match_rates')} "
            "WHERE day BETWEEN :first AND :last AND advertiser_id = ANY(:ids) AND total_views > 0"
        ),
        {"first": days[0], "last": days[-1], "ids": ids},
    ).all()
    out: Dict[int, Dict[date, float]] = defaultdict(dict)
    for adv, d, matched, total in rows:
        out[int(adv)][d] = rate(matched, total)
    return out


_PRODUCTS_SQL = """
WITH top AS (
    SELECT advertiser_id, product_id, view_count FROM (
        SELECT advertiser_id, product_id, view_count,
               row_number() OVER (PARTITION BY advertiser_id ORDER BY view_count DESC, product_id) AS rank
        FROM {pv}
        WHERE day = :day AND advertiser_id = ANY(:ids) AND matched IS NOT TRUE AND view_count > 0
    ) ranked WHERE rank <= :top
)
SELECT t.advertiser_id, t.product_id, t.view_count, count(p.day) AS unmatched_days
FROM top t
LEFT JOIN {pv} p ON p.advertiser_id = t.advertiser_id AND p.product_id = t.product_id
     AND p.day BETWEEN :first AND :day AND p.day = ANY(:published)
     AND p.matched IS NOT TRUE AND p.view_count > 0
GROUP BY t.advertiser_id, t.product_id, t.view_count
ORDER BY t.advertiser_id, t.view_count DESC, t.product_id
"""


def fetch_products(
    conn: Any, schema: str, days: List[date], published: Sequence[date], ids: List[int], top: int
) -> Dict[int, List[Product]]:
    """Per advertiser: its unmatched products with the most views on the day (at most `top`), each
    with the number of the window's published days on which it was viewed and unmatched."""
    from sqlalchemy import text

    if not ids:
        return {}
    rows = conn.execute(
        text(_PRODUCTS_SQL.format(pv=qualified(schema, "product_views"))),
        {"day": days[-1], "first": days[0], "published": list(published), "ids": ids, "top": top},
    ).all()
    out: Dict[int, List[Product]] = defaultdict(list)
    for adv, product, views, n_days in rows:
        out[int(adv)].append(Product(product, int(views), int(n_days)))
    return out


def fetch_quality(conn: Any, schema: str, pipeline: str, days: List[date]) -> List[QualityMetric]:
    """The day's data-quality metrics, each beside its mean over the window's earlier days."""
    from sqlalchemy import text

    qm = qualified(schema, "quality_metrics")
    rows = conn.execute(
        text(
            "SELECT m.table_name, m.name, m.instance, m.value, "
            f"(SELECT avg(h.value) FROM {qm} h WHERE h.pipeline = m.pipeline AND h.table_name = m.table_name "
            "AND h.name = m.name AND h.instance = m.instance AND h.entity = m.entity "
            "AND h.day >= :first AND h.day < m.day) "
            f"FROM {qm} m WHERE m.pipeline = :p AND m.day = :day "
            "ORDER BY m.table_name, m.name, m.instance"
        ),
        {"p": pipeline, "day": days[-1], "first": days[0]},
    ).all()
    return [QualityMetric(r[0], r[1], r[2], r[3], None if r[4] is None else float(r[4])) for r in rows]
