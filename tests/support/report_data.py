"""A small, hand-made window of published days for the report's tests, with its expected values.

Days 2026-03-01 .. 2026-03-07; the report's day is 03-07. 03-04 has only a failed run and 03-05
no run at all: both are gaps. Advertisers:

- 1 drops: 190 of 200 views matched (0.95) on every earlier published day, 160 of 200 (0.80) on
  the day: 15 points below its median, above the 0.6 threshold;
- 2 is new: only on the day, 20 of 50 matched (0.40): below the threshold, no history;
- 3 has zero views every day: never in trouble, never a division by zero;
- 4 is healthy: 900 of 1000 (0.90) every day;
- 5 is low every day: 50 of 100 (0.50): below the threshold, not a drop.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Dict, List, Tuple

from sqlalchemy import text

from spark_app.postgres.connect import ConnectionSpec
from spark_app.postgres.schema import upgrade_schema

FIRST = date(2026, 3, 1)
DAY = date(2026, 3, 7)
DAYS = [FIRST + timedelta(days=i) for i in range(7)]
FAILED_ONLY = date(2026, 3, 4)
NO_RUN = date(2026, 3, 5)
PUBLISHED = [d for d in DAYS if d not in (FAILED_ONLY, NO_RUN)]
QUARANTINE = "s3://bucket/events/_quarantine/run_id=r-0307/dt=2026-03-07"
WARNING = "advertiser_match_rates: isNonNegative(match_rate): 1 row below 0"

# advertiser -> (total_views, matched_views) on an earlier published day / on the day
EARLIER = {1: (200, 190), 3: (0, 0), 4: (1000, 900), 5: (100, 50)}
ON_DAY = {1: (200, 160), 2: (50, 20), 3: (0, 0), 4: (1000, 900), 5: (100, 50)}

# (advertiser, product, views, matched) on the day
DAY_PRODUCTS = [
    (1, "p-m", 160, True),
    (1, "p-a", 25, False),
    (1, "p-b", 10, False),
    (1, "p-c", 5, False),
    (2, "q-1", 20, True),
    (2, "q-2", 30, False),
    (4, "s-1", 900, True),
    (4, "s-2", 100, False),
    (5, "r-1", 50, True),
    (5, "r-2", 50, False),
]
# (day, advertiser, product, views, matched) on earlier published days
EARLIER_PRODUCTS = [
    (date(2026, 3, 1), 1, "p-a", 7, True),
    (date(2026, 3, 1), 1, "p-c", 3, False),
    (date(2026, 3, 2), 1, "p-a", 9, False),
    (date(2026, 3, 2), 1, "p-c", 3, False),
    (date(2026, 3, 3), 1, "p-c", 3, False),
    (date(2026, 3, 6), 1, "p-a", 4, False),
    (date(2026, 3, 6), 5, "r-2", 50, False),
]

# what the queries must find, computed by hand from the rows above
EXPECTED_TROUBLED = [5, 1, 2]  # by unmatched views: 50, 40, 30
EXPECTED_UNMATCHED_ALL = 120
EXPECTED_DAY_VIEWS, EXPECTED_DAY_MATCHED = 1350, 1130
EXPECTED_TRAILING_MEDIAN = 1140 / 1300  # every earlier published day: 200+0+1000+100 views, 190+0+900+50
EXPECTED_PRODUCTS_1 = [("p-a", 25, 3), ("p-b", 10, 1), ("p-c", 5, 4)]  # p-a: 03-02, 03-06, 03-07


def seed(url: str, schema: str = "public") -> None:
    """Create the schema and load the window (idempotent per database: call once)."""
    upgrade_schema(ConnectionSpec(url), schema)
    engine = ConnectionSpec(url).engine()
    with engine.begin() as conn:
        for d in PUBLISHED:
            conn.execute(
                text(
                    f"CREATE TABLE product_views_d{d:%Y%m%d} PARTITION OF product_views "
                    f"FOR VALUES IN ('{d.isoformat()}')"
                )
            )
            rates = ON_DAY if d == DAY else EARLIER
            for adv, (views, matched) in rates.items():
                conn.execute(
                    text("INSERT INTO advertiser_match_rates VALUES (:d, :a, 1, 1, :v, :m, :r)"),
                    {"d": d, "a": adv, "v": views, "m": matched, "r": matched / views if views else None},
                )
        rows = [(DAY, *p) for p in DAY_PRODUCTS] + EARLIER_PRODUCTS
        for d, adv, product, views, matched in rows:
            conn.execute(
                text("INSERT INTO product_views VALUES (:d, :a, :p, :v, :m)"),
                {"d": d, "a": adv, "p": product, "v": views, "m": matched},
            )
        for run_id, d, status, stats in _runs():
            conn.execute(
                text(
                    "INSERT INTO pipeline_runs (run_id, pipeline, day, status, rows_in, rows_out, "
                    "rows_rejected, started_at, finished_at, error, stats) "
                    "VALUES (:r, 'catalog_match_rate', :d, :s, 1000, 10, 3, "
                    ":t, :t, :e, CAST(:st AS jsonb))"
                ),
                {
                    "r": run_id,
                    "d": d,
                    "s": status,
                    "t": f"{d + timedelta(days=1)} 06:{len(run_id):02d}:00+00",
                    "e": None if status == "succeeded" else "SourceError: a corrupt file",
                    "st": json.dumps(stats),
                },
            )
        for d, value in [
            (date(2026, 3, 1), 4.0),
            (date(2026, 3, 2), 4.0),
            (date(2026, 3, 3), 4.0),
            (DAY, 10.0),
        ]:
            conn.execute(
                text(
                    "INSERT INTO quality_metrics (pipeline, table_name, day, entity, instance, name, value) "
                    "VALUES ('catalog_match_rate', 'product_views', :d, 'Dataset', '*', 'Size', :v)"
                ),
                {"d": d, "v": value},
            )
    engine.dispose()


def _runs() -> List[Tuple[str, date, str, Dict]]:
    runs = [
        (f"r-{d:%m%d}", d, "succeeded", {"counts": {"lines_read": 1000, "rejected": 3}}) for d in PUBLISHED
    ]
    runs[-1] = (
        f"r-{DAY:%m%d}",
        DAY,
        "succeeded",
        {
            "counts": {"lines_read": 1000, "rejected": 3},
            "quarantine_path": QUARANTINE,
            "quality_warnings": [WARNING],
        },
    )
    runs.append((f"r-{FAILED_ONLY:%m%d}-f", FAILED_ONLY, "failed", {}))
    runs.append((f"r-{DAY:%m%d}-later", DAY, "failed", {}))  # a later re-run of the day that failed
    return runs


def write_conf(folder: Path, pg_url: str, **postgres: object) -> Path:
    """A config file pointing at `pg_url` (the report needs nothing else to be reachable)."""
    extra = "".join(f"  {k}: {v}\n" for k, v in postgres.items())
    path = folder / "report.yaml"
    path.write_text(
        "events:\n  path: /nonexistent/events\n"
        "dynamodb:\n  table: unused\n  region: us-east-1\n"
        f"postgres:\n  url: {pg_url}\n{extra}"
    )
    return path
