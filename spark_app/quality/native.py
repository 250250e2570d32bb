"""The native engine: all of a table's Deequ metrics from one scan, in plain Spark SQL.

Deequ runs one scan for its scan-shareable analyzers (Size, Completeness, Compliance, Minimum,
...) and one more scan plus shuffle for each column set a grouping analyzer (Uniqueness,
Distinctness) needs. Here everything is one query over one scan:

    inner:  SELECT grouping_id(..) AS gid, <keys>, COUNT(1) AS cnt, <partial row metrics>
            FROM t GROUP BY GROUPING SETS ((<set 1>), (<set 2>), ...)
    outer:  one global aggregation that sums the partial row metrics over the groups of the
            first set (each row is in exactly one group of each set) and, per set, counts the
            groups of frequency 1 (Uniqueness) and all groups (Distinctness).

With no grouping metric the inner query is skipped and one global aggregation remains.
Definitions follow Deequ: Completeness = non-null values / rows; Compliance = rows where the
predicate is true / rows (no value when the predicate is NULL on every row, as Deequ);
Uniqueness = values occurring exactly once / rows, and Distinctness = distinct values / rows,
both over the rows where at least one of the columns is non-null (Deequ's FrequencyBasedAnalyzer
filter); Minimum, Maximum, Sum and Mean over non-null values
as doubles. A metric with no input (no rows, or all values null) is None: Deequ's empty state.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple

from spark_app.errors import ConfigError
from spark_app.quality.checks import GROUPING_METRICS, MetricSpec
from spark_app.quality.results import Metric

_NUMERIC_METRICS = ("Minimum", "Maximum", "Sum", "Mean")


@dataclass
class Computed:
    metrics: List[Metric] = field(default_factory=list)
    spark_jobs: int = 0
    seconds: float = 0.0


def compute_metrics(spark: Any, df: Any, table: str, specs: List[MetricSpec]) -> Computed:
    """Compute `specs` on `df` with a single Spark action; count the jobs it took."""
    _check_inputs(df, table, specs)
    sets = grouping_sets(specs)
    view = f"quality_{uuid.uuid4().hex[:12]}"
    df.createOrReplaceTempView(view)
    start = time.perf_counter()
    try:
        query = metrics_query(view, specs)
        with count_jobs(spark.sparkContext) as jobs:
            row = spark.sql(query).collect()[0].asDict()
    finally:
        spark.catalog.dropTempView(view)
    metrics = [Metric(s.entity, s.instance, s.name, _value(s, row, specs, sets), table) for s in specs]
    return Computed(metrics, jobs.count, time.perf_counter() - start)


# --------------------------------------------------------------------------- inputs


def _check_inputs(df: Any, table: str, specs: List[MetricSpec]) -> None:
    """Fail before any job when a column is missing, not numeric, or a predicate does not parse."""
    types = {f.name.lower(): f.dataType for f in df.schema.fields}
    for s in specs:
        for c in s.columns:
            if c.lower() not in types:
                raise ConfigError(
                    f"quality check on {table}: column {c!r} of {s.label} is not in the table "
                    f"(columns: {', '.join(df.columns)})"
                )
            if s.name in _NUMERIC_METRICS and not _is_numeric(types[c.lower()]):
                raise ConfigError(
                    f"quality check on {table}: {s.label} needs a numeric column, {c!r} is "
                    f"{types[c.lower()].simpleString()}"
                )
        if s.predicate is not None:
            try:
                df.selectExpr(f"CAST(({s.predicate}) AS BOOLEAN)")
            except Exception as exc:  # noqa: BLE001 - AnalysisException or ParseException
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ConfigError(
                    f"quality check on {table}: predicate {s.predicate!r} ({s.instance}) is not a valid "
                    f"SQL boolean expression over the table: {first}"
                ) from None


def _is_numeric(dtype: Any) -> bool:
    from pyspark.sql.types import NumericType

    return isinstance(dtype, NumericType)


def _q(column: str) -> str:
    return "`" + column.replace("`", "``") + "`"


def grouping_sets(specs: List[MetricSpec]) -> List[Tuple[str, ...]]:
    """The distinct column sets the grouping metrics need, in first-seen order."""
    sets: List[Tuple[str, ...]] = []
    for s in specs:
        if s.name in GROUPING_METRICS and s.columns not in sets:
            sets.append(s.columns)
    return sets


# --------------------------------------------------------------------------- queries


def metrics_query(view: str, specs: List[MetricSpec]) -> str:
    """The one SQL query that yields every metric of `specs` over the table `view`."""
    sets = grouping_sets(specs)
    row_aggs = _row_aggregates(specs, sets[0] if sets else ())
    return _grouped_query(view, sets, row_aggs) if sets else _scan_query(view, row_aggs)


def _row_aggregates(specs: List[MetricSpec], keys: Tuple[str, ...] = ()) -> List[Tuple[str, str, str]]:
    """(alias, partial aggregate over rows, how partials combine) for every scan metric.

    The completeness of a grouping key needs no partial aggregate: the outer query counts the
    rows of the groups whose key is non-null ("KEY"), which keeps the shuffled rows narrow.
    """
    aggs: List[Tuple[str, str, str]] = []
    for i, s in enumerate(specs):
        col = _q(s.columns[0]) if s.columns else ""
        if s.name == "Completeness" and s.columns[0] in keys:
            aggs.append((f"m{i}", col, "KEY"))
        elif s.name == "Completeness":
            aggs.append((f"m{i}", f"COUNT({col})", "SUM"))
        elif s.name == "Compliance":
            # NULL when the predicate is NULL on every row: Deequ's empty state, as its SUM(CAST(p AS INT))
            case = f"CASE WHEN ({s.predicate}) THEN 1 WHEN NOT ({s.predicate}) THEN 0 END"
            aggs.append((f"m{i}", f"SUM({case})", "SUM"))
        elif s.name == "Minimum":
            aggs.append((f"m{i}", f"MIN(CAST({col} AS DOUBLE))", "MIN"))
        elif s.name == "Maximum":
            aggs.append((f"m{i}", f"MAX(CAST({col} AS DOUBLE))", "MAX"))
        elif s.name in ("Sum", "Mean"):
            aggs.append((f"m{i}", f"SUM(CAST({col} AS DOUBLE))", "SUM"))
            aggs.append((f"m{i}_n", f"COUNT({col})", "SUM"))
    return aggs


def _scan_query(view: str, row_aggs: List[Tuple[str, str, str]]) -> str:
    cols = ["COUNT(1) AS n"] + [f"{expr} AS {alias}" for alias, expr, _ in row_aggs]
    return f"SELECT {', '.join(cols)} FROM {view}"


def _grouped_query(view: str, sets: List[Tuple[str, ...]], row_aggs: List[Tuple[str, str, str]]) -> str:
    keys = _union(sets)
    gids = [_grouping_id(keys, s) for s in sets]
    inner_cols = [f"GROUPING_ID({', '.join(map(_q, keys))}) AS gid"] + [_q(k) for k in keys]
    partials = [f"{expr} AS {alias}" for alias, expr, how in row_aggs if how != "KEY"]
    inner_cols += ["COUNT(1) AS cnt"] + partials
    grouping = ", ".join("(" + ", ".join(map(_q, s)) + ")" for s in sets)
    inner = f"SELECT {', '.join(inner_cols)} FROM {view} GROUP BY GROUPING SETS ({grouping})"

    first = f"gid = {gids[0]}"
    outer = [f"SUM(CASE WHEN {first} THEN cnt END) AS n"]
    outer += [
        f"SUM(CASE WHEN {first} AND {expr} IS NOT NULL THEN cnt END) AS {alias}"
        if how == "KEY"
        else f"{how}(CASE WHEN {first} THEN {alias} END) AS {alias}"
        for alias, expr, how in row_aggs
    ]
    for j, (s, gid) in enumerate(zip(sets, gids)):
        kept = f"gid = {gid} AND (" + " OR ".join(f"{_q(c)} IS NOT NULL" for c in s) + ")"
        outer.append(f"SUM(CASE WHEN {kept} THEN cnt ELSE 0 END) AS g{j}_rows")
        outer.append(f"SUM(CASE WHEN {kept} AND cnt = 1 THEN 1 ELSE 0 END) AS g{j}_unique")
        outer.append(f"SUM(CASE WHEN {kept} THEN 1 ELSE 0 END) AS g{j}_distinct")
    return f"SELECT {', '.join(outer)} FROM ({inner}) AS frequencies"


def _union(sets: List[Tuple[str, ...]]) -> List[str]:
    keys: List[str] = []
    for s in sets:
        keys.extend(c for c in s if c not in keys)
    return keys


def _grouping_id(keys: List[str], kept: Tuple[str, ...]) -> int:
    """Spark's grouping_id(k1..kn): bit (n-1-i) is set when key i is aggregated away."""
    n = len(keys)
    return sum(1 << (n - 1 - i) for i, k in enumerate(keys) if k not in kept)


# --------------------------------------------------------------------------- values


def _ratio(num: Optional[float], den: Optional[float]) -> Optional[float]:
    return float(num or 0) / float(den) if den else None


def _value(s: MetricSpec, row: Dict[str, Any], specs: List[MetricSpec], sets) -> Optional[float]:
    i = specs.index(s)
    n = row.get("n") or 0
    if s.name == "Size":
        return float(n)
    if s.name == "Completeness":
        return _ratio(row[f"m{i}"], n)
    if s.name == "Compliance":
        return None if row[f"m{i}"] is None else _ratio(row[f"m{i}"], n)
    if s.name in ("Minimum", "Maximum", "Sum"):
        return None if row[f"m{i}"] is None else float(row[f"m{i}"])
    if s.name == "Mean":
        return _ratio(row[f"m{i}"], row[f"m{i}_n"]) if row[f"m{i}"] is not None else None
    j = sets.index(s.columns)
    rows, unique, distinct = row[f"g{j}_rows"], row[f"g{j}_unique"], row[f"g{j}_distinct"]
    if s.name == "Uniqueness":
        return _ratio(unique, rows)
    if s.name == "Distinctness":
        return _ratio(distinct, rows)
    if s.name == "UniqueValueRatio":
        return _ratio(unique, distinct)
    if s.name == "CountDistinct":
        return float(distinct or 0)
    raise ConfigError(f"metric {s.name!r} is not supported by the native engine")


# --------------------------------------------------------------------------- job counting


class _JobCount:
    count = 0


@contextlib.contextmanager
def count_jobs(sc: Any) -> Iterator[_JobCount]:
    """Count the Spark jobs started in the block, by tagging them with a job group of our own."""
    keys = ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel")
    saved = {k: sc.getLocalProperty(k) for k in keys}
    group = f"quality-{uuid.uuid4().hex[:12]}"
    sc.setJobGroup(group, "data-quality metrics")
    holder = _JobCount()
    try:
        yield holder
    finally:
        holder.count = len(sc.statusTracker().getJobIdsForGroup(group))
        for k, v in saved.items():
            sc.setLocalProperty(k, v)
