"""Metrics history in PostgreSQL (Deequ's MetricsRepository) and the anomaly checks on it.

The table `quality_metrics` (migration 0002) keeps one row per pipeline, table, day and metric.
`save_metrics` replaces a day's rows in one transaction, so a re-run leaves exactly one value
per day and a failed run leaves the previous values in place. Anomaly checks compare a day's
metric with the mean of the previous N days' values: a relative change beyond the configured
bound fails at the configured level (Warning by default: a sudden drop in views is worth a
look, but not necessarily worth holding the publication).

`store` everywhere is a `spark_app.postgres.connect.ConnectionSpec`, an SQLAlchemy Engine, or a URL string
without password; engines made here use NullPool and are disposed after use.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from typing import Any, Iterator, List, Optional, Tuple, Union

from spark_app.config import AnomalyConfig
from spark_app.errors import SinkError
from spark_app.postgres.connect import ConnectionSpec, error_text, qualified
from spark_app.quality.checks import anomaly_metric
from spark_app.quality.results import FAILURE, SUCCESS, ConstraintResult, Metric

TABLE = "quality_metrics"
DayLike = Union[dt.date, str]


@contextlib.contextmanager
def _engine(store: Any) -> Iterator[Any]:
    """An engine for `store`; one we created is disposed when the block ends."""
    if isinstance(store, str):
        store = ConnectionSpec(store)
    if isinstance(store, ConnectionSpec):
        engine = store.engine()
        try:
            yield engine
        finally:
            engine.dispose()
        return
    if store is None:
        raise SinkError("no metrics store configured (expected a ConnectionSpec, an Engine or a URL)")
    yield store


def _day(day: DayLike) -> dt.date:
    return day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))


def _where(store: Any) -> str:
    return store.describe() if isinstance(store, ConnectionSpec) else "PostgreSQL"


def _error(exc: BaseException, store: Any) -> str:
    return error_text(exc, store if isinstance(store, ConnectionSpec) else None)


_DAY_KEY = "pipeline = :pipeline AND table_name = :table_name AND day = :day"
_COLUMNS = "pipeline, table_name, day, entity, instance, name, value, run_id"
_VALUES = ":pipeline, :table_name, :day, :entity, :instance, :name, :value, :run_id"


def save_metrics(
    store: Any,
    pipeline: str,
    table: str,
    day: DayLike,
    metrics: List[Metric],
    run_id: str = "",
    schema: Optional[str] = None,
) -> int:
    """Replace the day's metrics of `table` with `metrics`; return the number of rows written."""
    from sqlalchemy import text

    target = qualified(schema or "public", TABLE)
    key = {"pipeline": pipeline, "table_name": table, "day": _day(day)}
    rows = [
        dict(key, entity=m.entity, instance=m.instance, name=m.name, value=m.value, run_id=run_id or "")
        for m in metrics
    ]
    try:
        with _engine(store) as engine, engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {target} WHERE {_DAY_KEY}"), key)
            if rows:
                conn.execute(text(f"INSERT INTO {target} ({_COLUMNS}) VALUES ({_VALUES})"), rows)
    except SinkError:
        raise
    except Exception as exc:
        raise SinkError(
            f"saving quality metrics of {table} for {key['day']} to {target} on {_where(store)} failed "
            f"(is migration 0002 applied?): {_error(exc, store)}"
        ) from None
    return len(rows)


def history_store(spec: ConnectionSpec, schema: Optional[str] = None) -> Optional[ConnectionSpec]:
    """`spec` when `schema` holds `quality_metrics`, None when it was never created (no history yet).

    Reads only: a check that writes nothing (`process_data.py quality`) does not migrate the
    schema, where a run would first create it empty. PostgreSQL out of reach is a SinkError.
    """
    from sqlalchemy import text

    target = qualified(schema or "public", TABLE)
    try:
        with _engine(spec) as engine, engine.connect() as conn:
            exists = conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": target}).scalar()
    except Exception as exc:
        where = f"{target} on {_where(spec)}"
        raise SinkError(f"reading the metrics history {where} failed: {_error(exc, spec)}") from None
    return spec if exists else None


def load_metrics(
    store: Any, pipeline: str, table: str, day: DayLike, schema: Optional[str] = None
) -> List[Metric]:
    """The stored metrics of one table and day."""
    from sqlalchemy import text

    target = qualified(schema or "public", TABLE)
    query = text(
        f"SELECT entity, instance, name, value FROM {target} "
        "WHERE pipeline = :p AND table_name = :t AND day = :d ORDER BY entity, instance, name"
    )
    with _engine(store) as engine, engine.connect() as conn:
        rows = conn.execute(query, {"p": pipeline, "t": table, "d": _day(day)}).all()
    return [Metric(r.entity, r.instance, r.name, r.value, table) for r in rows]


def load_history(
    store: Any,
    pipeline: str,
    table: str,
    name: str,
    instance: str = "*",
    before: Optional[DayLike] = None,
    days: int = 7,
    schema: Optional[str] = None,
) -> List[Tuple[dt.date, float]]:
    """(day, value) of one metric over the `days` days before `before` (exclusive), oldest first."""
    from sqlalchemy import text

    end = _day(before) if before is not None else dt.date.today() + dt.timedelta(days=1)
    target = qualified(schema or "public", TABLE)
    query = text(
        f"SELECT day, value FROM {target} WHERE pipeline = :p AND table_name = :t AND name = :n "
        "AND instance = :i AND day >= :start AND day < :end AND value IS NOT NULL ORDER BY day"
    )
    params = {"p": pipeline, "t": table, "n": name, "i": instance}
    params.update(start=end - dt.timedelta(days=days), end=end)
    try:
        with _engine(store) as engine, engine.connect() as conn:
            return [(r.day, float(r.value)) for r in conn.execute(query, params)]
    except SinkError:
        raise
    except Exception as exc:
        raise SinkError(
            f"reading the history of {name}({instance}) on {table} from {target} failed: "
            f"{_error(exc, store)}"
        ) from None


# --------------------------------------------------------------------------- anomalies


def relative_change(value: float, baseline: float) -> float:
    """(value - baseline) / |baseline|; 0 when both are 0, infinite when only the baseline is."""
    if baseline == 0:
        return 0.0 if value == 0 else math.copysign(math.inf, value)
    return (value - baseline) / abs(baseline)


def check_anomalies(
    store: Any,
    pipeline: str,
    day: DayLike,
    metrics: List[Metric],
    anomalies: List[AnomalyConfig],
    schema: Optional[str] = None,
) -> List[ConstraintResult]:
    """One result per anomaly config: the day's metric against the mean of the previous days."""
    results = []
    for a in anomalies:
        spec = anomaly_metric(a.metric, a.column)
        key = (a.table, spec.name, spec.instance)
        same = [m for m in metrics if (m.table, m.name, m.instance) == key]
        value = same[0].value if same else None
        history = [] if store is None else load_history(
            store, pipeline, a.table, spec.name, spec.instance, day, a.days, schema
        )
        results.append(_judge(a, spec.label, spec.instance, value, history, store is None))
    return results


def _judge(a: AnomalyConfig, label: str, instance: str, value, history, no_store: bool) -> ConstraintResult:
    bound = f"{a.max_relative_change:.0%}"
    check = f"anomaly: {label} within +/-{bound} of the {a.days}-day mean"

    def result(status: str, message: str) -> ConstraintResult:
        return ConstraintResult(check, a.level, status, a.metric, instance, value, message, a.table)

    if value is None:
        return result(FAILURE, f"{label} was not computed or had no input values on {a.table}")
    if not history:
        why = "no metrics store configured" if no_store else f"no history in the previous {a.days} day(s)"
        return result(SUCCESS, f"passed: {why}")
    mean = sum(v for _, v in history) / len(history)
    change = relative_change(value, mean)
    direction = "above" if change >= 0 else "below"
    described = f"{abs(change):.1%} {direction} the mean {mean:g} of {len(history)} day(s)"
    if abs(change) > a.max_relative_change:
        return result(FAILURE, f"Value: {value:g} is {described} (allowed +/-{bound})")
    return result(SUCCESS, f"{described}")
