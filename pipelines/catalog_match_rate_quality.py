"""The catalog match rate's default data-quality checks, used when the config declares none.

Keys are complete and unique per day (the tables' primary keys, checked before the load so a
bad day fails by name instead of on a constraint violation half-way through), counts are
non-negative, a match rate is a share, matched never exceeds total, and a day has rows.
A config that lists checks for a table replaces that table's defaults.
"""

from __future__ import annotations

from typing import Dict, List

from spark_app.config import CheckConfig
from spark_app.quality.shrink import ShrinkTarget

PIPELINE = "catalog_match_rate"
# Error-level, whatever checks the config lists: a day far smaller than its history or than the
# published day it replaces (rows and total views) stops the run unless an operator allows it.
SHRINK_TARGET = ShrinkTarget("product_views", "view_count")


def _keys(columns: List[str]) -> List[CheckConfig]:
    complete = [CheckConfig("isComplete", column=c) for c in columns]
    return complete + [CheckConfig("isUnique", columns=tuple(columns))]


def _non_negative(columns: List[str]) -> List[CheckConfig]:
    return [CheckConfig("isNonNegative", column=c) for c in columns]


def _at_most(part: str, whole: str) -> CheckConfig:
    predicate = f"{part} <= {whole}"
    return CheckConfig("satisfies", predicate=predicate, name=predicate)


DEFAULT_CHECKS: Dict[str, List[CheckConfig]] = {
    "product_views": [
        CheckConfig("hasSize", min=1),
        *_keys(["day", "advertiser_id", "product_id"]),
        CheckConfig("isComplete", column="view_count"),
        *_non_negative(["view_count"]),
        CheckConfig("hasMin", column="view_count", min=1, level="Warning", name="every row counts a view"),
        CheckConfig("isComplete", column="matched"),
    ],
    "advertiser_match_rates": [
        CheckConfig("hasSize", min=1),
        *_keys(["day", "advertiser_id"]),
        *_non_negative(["total_products", "matched_products", "total_views", "matched_views"]),
        CheckConfig("hasMin", column="match_rate", min=0.0),
        CheckConfig("hasMax", column="match_rate", max=1.0),
        _at_most("matched_views", "total_views"),
        _at_most("matched_products", "total_products"),
    ],
}
