"""The shrink guard: an Error-level check that a day is not far smaller than it should be.

A re-run on partial input (one file of four, `_SUCCESS` written anyway) passes every other
check and would replace a good day. So the guarded table's rows (Size) and the sum of its
count column (total views) are compared with two references:

- the median of the same metrics over the trailing `history_days` days stored in
  `quality_metrics` (days before the run's day; fewer than `min_history` days passes with a note);
- the day as published now in the target table (a re-run must not replace it with far less).

A value below `(1 - max_drop)` x a reference fails at Error level. With `allow` (config
`quality.shrink.allow`, or `process_data.py --allow-shrink`) the same finding is a Warning whose
message says the guard was overridden, so the run's summary shows it.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

from spark_app.config import ShrinkConfig
from spark_app.errors import SinkError
from spark_app.postgres.connect import ConnectionSpec, error_text, qualified, quote_ident
from spark_app.quality.checks import MetricSpec
from spark_app.quality.results import FAILURE, SUCCESS, ConstraintResult, Metric

CHECK = "shrink guard"
OVERRIDDEN = "overridden (allow_shrink)"


@dataclass(frozen=True)
class ShrinkTarget:
    """The table a pipeline guards and its count column (e.g. product_views, view_count)."""

    table: str
    column: str

    def metrics(self) -> List[MetricSpec]:
        return [MetricSpec("Size"), MetricSpec("Sum", self.column, (self.column,))]


def check_shrink(
    store: Any,
    pipeline: str,
    day: dt.date,
    metrics: List[Metric],
    target: ShrinkTarget,
    cfg: ShrinkConfig,
    schema: Optional[str] = None,
) -> List[ConstraintResult]:
    """One result per metric (Size, Sum) and reference that applies; failures first matter."""
    from spark_app.quality.store import load_history

    values = {(m.name, m.instance): m.value for m in metrics if m.table == target.table}
    published = _published(store, schema, target, day) if store is not None else None
    results = []
    for i, spec in enumerate(target.metrics()):
        value = values.get((spec.name, spec.instance))
        if value is None:
            continue
        history = [] if store is None else load_history(
            store, pipeline, target.table, spec.name, spec.instance, day, cfg.history_days, schema
        )
        results.append(_against_history(target, spec, value, [v for _, v in history], cfg))
        if published is not None and published[0] > 0:
            results.append(_against_published(target, spec, value, float(published[i]), cfg))
    return results


def overridden(results: List[ConstraintResult]) -> List[ConstraintResult]:
    """The guard's findings an operator allowed: what the run's summary must mention."""
    return [r for r in results if r.check.startswith(CHECK) and OVERRIDDEN in r.message]


def _against_history(target, spec: MetricSpec, value: float, history: List[float], cfg) -> ConstraintResult:
    check = f"{CHECK}: {spec.label} vs the {cfg.history_days}-day median"
    if len(history) < cfg.min_history:
        note = f"passed: {len(history)} stored day(s), fewer than {cfg.min_history} to compare with"
        return ConstraintResult(check, "Error", SUCCESS, spec.name, spec.instance, value, note, target.table)
    median = statistics.median(history)
    where = f"the median {median:g} of {len(history)} stored day(s)"
    return _judge(target, spec, check, value, median, where, cfg)


def _against_published(target, spec: MetricSpec, value: float, published: float, cfg) -> ConstraintResult:
    check = f"{CHECK}: {spec.label} vs the published day"
    return _judge(target, spec, check, value, published, f"the published day's {published:g}", cfg)


def _judge(target, spec, check, value, reference, where, cfg: ShrinkConfig) -> ConstraintResult:
    drop = 1.0 - value / reference if reference > 0 else 0.0
    described = f"Value: {value:g} is {drop:.1%} below {where} (allowed: {cfg.max_drop:.0%} below)"
    if drop <= cfg.max_drop:
        level, status, message = "Error", SUCCESS, f"{value:g} vs {where}"
    elif cfg.allow:
        level, status, message = "Warning", FAILURE, f"{described}; {OVERRIDDEN}"
    else:
        level, status = "Error", FAILURE
        message = f"{described}; if the day is really this small, re-run with --allow-shrink"
    return ConstraintResult(check, level, status, spec.name, spec.instance, value, message, target.table)


def _published(store: Any, schema: Optional[str], target: ShrinkTarget, day: dt.date) -> Tuple[int, float]:
    """(rows, sum of the count column) of the day as published in the target table now."""
    from sqlalchemy import text

    from spark_app.quality.store import _engine

    table = qualified(schema or "public", target.table)
    total = f"coalesce(sum({quote_ident(target.column)}), 0)"
    query = text(f"SELECT count(*), {total} FROM {table} WHERE day = :d")
    try:
        with _engine(store) as engine, engine.connect() as conn:
            rows, total = conn.execute(query, {"d": day}).one()
    except Exception as exc:
        cause = error_text(exc, store if isinstance(store, ConnectionSpec) else None)
        raise SinkError(f"reading the published {table} for day {day} failed: {cause}") from None
    return int(rows), float(total)
