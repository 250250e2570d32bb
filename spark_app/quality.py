"""The data-quality gate: Deequ's checks, metrics and result format, run before publishing.

A check (`CheckConfig`) names a Deequ constraint (`isComplete`, `hasSize`, ...). Each check is
planned into one metric (`MetricSpec`: Deequ's analyzer name and instance) and an assertion
range; an engine computes the metrics of a table, and the assertions turn them into
`ConstraintResult`s. Two engines give the same `QualityReport`: PyDeequ when the Deequ jar is
on the classpath, and a native PySpark engine (one scan per table) otherwise.

`run_gate` verifies all tables of a run, checks metric anomalies against the history kept in
PostgreSQL, saves the day's metrics, and returns a `GateResult` the pipeline can raise on.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from .config import CheckConfig, QualityConfig
from .errors import ConfigError, QualityGateFailed

log = logging.getLogger("spark_app.quality")

SUCCESS = "Success"
FAILURE = "Failure"


# --------------------------------------------------------------------------- result format


@dataclass(frozen=True)
class Metric:
    """One computed metric, as Deequ's repository stores it."""

    entity: str  # Dataset | Column | Multicolumn
    instance: str  # "*", a column, "a,b" or a compliance name
    name: str  # Size, Completeness, Uniqueness, ...
    value: Optional[float]  # None: empty state (no rows, or all values null)
    table: str = ""


@dataclass(frozen=True)
class ConstraintResult:
    check: str  # e.g. "isComplete(day)"
    level: str  # Error | Warning
    status: str  # Success | Failure
    metric: str
    instance: str
    value: Optional[float]
    message: str = ""
    table: str = ""

    def __str__(self) -> str:
        return f"{self.table}: {self.check} [{self.level}]: {self.message or self.status}"


def _fmt_value(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return repr(float(v)) if not float(v).is_integer() else str(float(v))


def format_results(results: List[ConstraintResult]) -> str:
    """A fixed-width table of constraint results, failures first."""
    ordered = sorted(results, key=lambda r: (r.status == SUCCESS, r.level != "Error", r.table))
    headers = ["table", "level", "status", "check", "metric", "instance", "value", "message"]
    rows = [
        [r.table, r.level, r.status, r.check, r.metric, r.instance, _fmt_value(r.value), r.message]
        for r in ordered
    ]
    widths = [min(60, max(len(str(x)) for x in col)) for col in zip(headers, *rows)]

    def line(cells: List[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


@dataclass
class QualityReport:
    table: str
    engine: str  # native | deequ
    results: List[ConstraintResult] = field(default_factory=list)
    metrics: List[Metric] = field(default_factory=list)
    spark_jobs: Optional[int] = None  # Spark jobs the metrics took (native engine)
    seconds: float = 0.0

    @property
    def errors(self) -> List[ConstraintResult]:
        return [r for r in self.results if r.status == FAILURE and r.level == "Error"]

    @property
    def warnings(self) -> List[ConstraintResult]:
        return [r for r in self.results if r.status == FAILURE and r.level == "Warning"]

    @property
    def passed(self) -> bool:
        return not self.errors

    def metric(self, name: str, instance: str = "*") -> Optional[float]:
        """The value of one metric, e.g. `report.metric("Completeness", "day")`."""
        for m in self.metrics:
            if m.name == name and m.instance == instance:
                return m.value
        raise KeyError(f"{self.table}: no metric {name}({instance}) was computed")

    def format(self) -> str:
        jobs = f", {self.spark_jobs} Spark job(s)" if self.spark_jobs is not None else ""
        head = (
            f"{self.table}: {len(self.results)} constraint(s), {len(self.errors)} error(s), "
            f"{len(self.warnings)} warning(s) [{self.engine} engine{jobs}, {self.seconds:.1f} s]"
        )
        return head + "\n" + format_results(self.results)


# --------------------------------------------------------------------------- planning checks


@dataclass(frozen=True)
class MetricSpec:
    """What an engine computes: Deequ's analyzer name, the instance, and its inputs."""

    name: str
    instance: str = "*"
    columns: Tuple[str, ...] = ()
    predicate: Optional[str] = None  # Compliance only

    @property
    def entity(self) -> str:
        if self.name == "Size":
            return "Dataset"
        return "Multicolumn" if len(self.columns) > 1 else "Column"

    @property
    def label(self) -> str:
        return f"{self.name}({self.instance})"


SCAN_METRICS = ("Size", "Completeness", "Compliance", "Minimum", "Maximum", "Sum", "Mean")
GROUPING_METRICS = ("Uniqueness", "Distinctness", "UniqueValueRatio", "CountDistinct")
ANOMALY_METRICS = SCAN_METRICS[:2] + SCAN_METRICS[3:] + GROUPING_METRICS

# check name -> (metric, what it takes, default assertion (lo, hi) or None when min/max are required)
_CHECKS: Dict[str, Tuple[str, str, Optional[Tuple[float, float]]]] = {
    "hasSize": ("Size", "table", None),
    "isComplete": ("Completeness", "column", (1.0, 1.0)),
    "hasCompleteness": ("Completeness", "column", None),
    "isUnique": ("Uniqueness", "columns", (1.0, 1.0)),
    "hasUniqueness": ("Uniqueness", "columns", None),
    "hasDistinctness": ("Distinctness", "columns", None),
    "isNonNegative": ("Compliance", "column", (1.0, 1.0)),
    "isContainedIn": ("Compliance", "column", (1.0, 1.0)),
    "satisfies": ("Compliance", "predicate", (1.0, 1.0)),
    "hasMin": ("Minimum", "column", None),
    "hasMax": ("Maximum", "column", None),
    "hasSum": ("Sum", "column", None),
    "hasMean": ("Mean", "column", None),
}
KNOWN_CHECKS = tuple(_CHECKS)
_FIXED = ("isComplete", "isUnique")  # always == 1: use hasCompleteness / hasUniqueness for a threshold


def check_columns(c: CheckConfig) -> Tuple[str, ...]:
    """The column(s) a check reads: `columns` when given, else `column`."""
    return tuple(c.columns) if c.columns else ((c.column,) if c.column else ())


def describe_check(c: CheckConfig) -> str:
    """Deequ-like label: isUnique(day,advertiser_id), hasSize(>= 1), satisfies(<name>)."""
    if c.name:
        return c.name
    if c.check == "hasSize":
        return f"hasSize({_assertion_text(*assertion_range(c))})"
    if c.check == "satisfies":
        return f"satisfies({c.predicate})"
    if c.check == "isContainedIn":
        return f"isContainedIn({c.column}, [{', '.join(c.values)}])"
    cols = ",".join(check_columns(c))
    lo_hi = _CHECKS[c.check][2]
    return f"{c.check}({cols})" if lo_hi else f"{c.check}({cols}, {_assertion_text(*assertion_range(c))})"


def assertion_range(c: CheckConfig) -> Tuple[Optional[float], Optional[float]]:
    """The closed range the check's metric must fall in; None is unbounded."""
    default = _CHECKS[c.check][2]
    if c.min is None and c.max is None and default is not None:
        return default
    return c.min, c.max


def _assertion_text(lo: Optional[float], hi: Optional[float]) -> str:
    if lo is not None and hi is not None:
        return f"== {lo:g}" if lo == hi else f"between {lo:g} and {hi:g}"
    return f">= {lo:g}" if lo is not None else f"<= {hi:g}"


def plan_metric(c: CheckConfig) -> MetricSpec:
    """The metric that decides a check, named and instanced as Deequ names it."""
    metric = _CHECKS[c.check][0]
    if c.check == "hasSize":
        return MetricSpec("Size")
    if c.check == "isNonNegative":
        pred = f"COALESCE(CAST(`{c.column}` AS DOUBLE), 0.0) >= 0"
        return MetricSpec(metric, f"{c.column} is non-negative", (c.column,), pred)
    if c.check == "isContainedIn":
        quoted = ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in c.values)
        pred = f"`{c.column}` IS NULL OR `{c.column}` IN ({quoted})"
        return MetricSpec(metric, f"{c.column} contained in {','.join(c.values)}", (c.column,), pred)
    if c.check == "satisfies":
        return MetricSpec(metric, c.name or str(c.predicate), (), c.predicate)
    cols = check_columns(c)
    return MetricSpec(metric, ",".join(cols), cols)


def anomaly_metric(metric: str, column: Optional[str]) -> MetricSpec:
    """The MetricSpec an anomaly check watches (Size or a column metric)."""
    if metric == "Size":
        return MetricSpec("Size")
    cols = tuple(x.strip() for x in (column or "").split(",") if x.strip())
    return MetricSpec(metric, ",".join(cols), cols)


# --------------------------------------------------------------------------- validation


def validate_checks(cfg: QualityConfig, source: str = "<memory>") -> None:
    """Raise ConfigError naming the key of the first check or anomaly that cannot run."""
    for table, checks in cfg.checks.items():
        for i, c in enumerate(checks):
            _validate_check(c, f"{source}: quality.checks.{table}[{i}]")
    for i, a in enumerate(cfg.anomalies):
        where = f"{source}: quality.anomalies[{i}]"
        if a.metric not in ANOMALY_METRICS:
            known = ", ".join(ANOMALY_METRICS)
            raise ConfigError(f"{where}.metric: unknown metric {a.metric!r} (known: {known})")
        if a.metric != "Size" and not a.column:
            raise ConfigError(f"{where}.column: required for metric {a.metric}")
        if a.days < 1:
            raise ConfigError(f"{where}.days: must be at least 1")
        if a.max_relative_change <= 0:
            raise ConfigError(f"{where}.max_relative_change: must be positive")


def _validate_check(c: CheckConfig, where: str) -> None:
    if c.check not in _CHECKS:
        raise ConfigError(f"{where}.check: unknown check {c.check!r} (known: {', '.join(KNOWN_CHECKS)})")
    takes = _CHECKS[c.check][1]
    if c.column and c.columns:
        raise ConfigError(f"{where}: give either column or columns, not both")
    if takes == "column" and not c.column:
        raise ConfigError(f"{where}.column: required for {c.check}")
    if takes == "columns" and not check_columns(c):
        raise ConfigError(f"{where}.column: required for {c.check} (or columns: [a, b])")
    if takes == "predicate" and not (c.predicate or "").strip():
        raise ConfigError(f"{where}.predicate: required for satisfies (a SQL boolean expression)")
    if c.check == "isContainedIn" and not c.values:
        raise ConfigError(f"{where}.values: required for isContainedIn")
    if c.check in _FIXED and (c.min is not None or c.max is not None):
        threshold = "hasCompleteness" if c.check == "isComplete" else "hasUniqueness"
        raise ConfigError(f"{where}: {c.check} takes no min/max; use {threshold} with min: for a threshold")
    if _CHECKS[c.check][2] is None and c.min is None and c.max is None:
        raise ConfigError(f"{where}: {c.check} needs min: and/or max:")
    if c.min is not None and c.max is not None and c.min > c.max:
        raise ConfigError(f"{where}: min {c.min:g} is greater than max {c.max:g}")


# --------------------------------------------------------------------------- evaluation


def evaluate(table: str, checks: List[CheckConfig], metrics: List[Metric]) -> List[ConstraintResult]:
    """Turn computed metrics into one result per check, with Deequ's failure messages."""
    by_key = {(m.name, m.instance): m.value for m in metrics}
    results = []
    for c in checks:
        spec = plan_metric(c)
        value = by_key.get((spec.name, spec.instance))
        lo, hi = assertion_range(c)
        status, message = _assert(spec, value, lo, hi)
        label = describe_check(c)
        result = ConstraintResult(label, c.level, status, spec.name, spec.instance, value, message, table)
        results.append(result)
    return results


def _assert(spec: MetricSpec, value: Optional[float], lo: Optional[float], hi: Optional[float]):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return FAILURE, f"Empty state for analyzer {spec.label}, all input values were NULL."
    if (lo is None or value >= lo - 1e-12) and (hi is None or value <= hi + 1e-12):
        return SUCCESS, ""
    wanted = _assertion_text(lo, hi)
    return FAILURE, f"Value: {_fmt_value(value)} does not meet the constraint requirement! ({wanted})"


# --------------------------------------------------------------------------- engines


def deequ_available(spark: Any) -> bool:
    """True when the driver JVM can load com.amazon.deequ.VerificationSuite."""
    from py4j.java_gateway import JavaClass

    try:
        return isinstance(spark._jvm.com.amazon.deequ.VerificationSuite, JavaClass)
    except Exception:  # noqa: BLE001 - a gateway error means "not usable"
        return False


def choose_engine(spark: Any, engine: str = "auto") -> str:
    if engine == "native":
        return "native"
    if engine not in ("auto", "deequ"):
        raise ConfigError(f"quality.engine: {engine!r} is not one of 'auto', 'deequ', 'native'")
    if deequ_available(spark):
        return "deequ"
    if engine == "deequ":
        raise ConfigError(
            "quality.engine is 'deequ' but com.amazon.deequ.VerificationSuite is not on the driver "
            "classpath: "
            "ship the Deequ jar with --jars (emr.deequ_jar / quality.deequ_jar) or set quality.engine: native"
        )
    return "native"


def verify(
    spark: Any,
    df: Any,
    table: str,
    checks: List[CheckConfig],
    engine: str = "auto",
    extra_metrics: Optional[List[MetricSpec]] = None,
) -> QualityReport:
    """Compute the metrics the checks (and `extra_metrics`) need on `df` and evaluate the checks.

    Checks are validated first, so a bad check fails with ConfigError before any Spark job.
    """
    for i, c in enumerate(checks):
        _validate_check(c, f"quality.checks.{table}[{i}]")
    specs = _unique([plan_metric(c) for c in checks] + list(extra_metrics or []))
    chosen = choose_engine(spark, engine)
    if chosen == "deequ":
        from .quality_deequ import run_deequ

        return run_deequ(spark, df, table, checks, specs)
    from .quality_native import compute_metrics

    computed = compute_metrics(spark, df, table, specs)
    report = QualityReport(table, "native", spark_jobs=computed.spark_jobs, seconds=computed.seconds)
    report.metrics = computed.metrics
    report.results = evaluate(table, checks, computed.metrics)
    return report


def _unique(specs: List[MetricSpec]) -> List[MetricSpec]:
    seen: Dict[Tuple[str, str], MetricSpec] = {}
    for s in specs:
        seen.setdefault((s.name, s.instance), s)
    return list(seen.values())


# --------------------------------------------------------------------------- the gate


@dataclass
class GateResult:
    reports: Dict[str, QualityReport] = field(default_factory=dict)
    anomalies: List[ConstraintResult] = field(default_factory=list)

    @property
    def results(self) -> List[ConstraintResult]:
        return [r for rep in self.reports.values() for r in rep.results] + list(self.anomalies)

    @property
    def metrics(self) -> List[Metric]:
        return [m for rep in self.reports.values() for m in rep.metrics]

    @property
    def errors(self) -> List[ConstraintResult]:
        return [r for r in self.results if r.status == FAILURE and r.level == "Error"]

    @property
    def warnings(self) -> List[ConstraintResult]:
        return [r for r in self.results if r.status == FAILURE and r.level == "Warning"]

    @property
    def passed(self) -> bool:
        return not self.errors

    def format(self) -> str:
        parts = [rep.format() for rep in self.reports.values()]
        if self.anomalies:
            parts.append("anomalies\n" + format_results(self.anomalies))
        verdict = "PASSED" if self.passed else "FAILED"
        parts.append(f"quality gate {verdict}: {len(self.errors)} error(s), {len(self.warnings)} warning(s)")
        return "\n\n".join(parts)

    def raise_if_failed(self) -> None:
        """Raise QualityGateFailed listing every failed Error-level constraint."""
        if self.passed:
            return
        lines = [f"{r.table}: {r.check}: {r.message}" for r in self.errors]
        raise QualityGateFailed(
            f"{len(self.errors)} Error-level data-quality constraint(s) failed, nothing published:\n  "
            + "\n  ".join(lines)
        )


def checks_for(table: str, cfg: QualityConfig, default_checks: Optional[Dict[str, List[CheckConfig]]]):
    """The config's checks for `table` when it lists that table, else the pipeline's defaults."""
    if table in cfg.checks:
        return list(cfg.checks[table])
    return list((default_checks or {}).get(table, []))


def run_gate(
    spark: Any,
    tables: Dict[str, Any],
    cfg: QualityConfig,
    default_checks: Optional[Dict[str, List[CheckConfig]]] = None,
    engine: Optional[str] = None,
    store: Any = None,
    pipeline: str = "catalog_match_rate",
    day: Any = None,
    run_id: Optional[str] = None,
    schema: Optional[str] = None,
    spec: Any = None,
) -> GateResult:
    """Verify every table, check anomalies against the stored history, then save the day's metrics.

    `store` (or its alias `spec`) is a ConnectionSpec, an SQLAlchemy Engine or a URL; without it
    no history is read or written. `schema` holds `quality_metrics` (default public). Failed
    Warning-level constraints are logged; the caller decides on errors (`raise_if_failed()`).
    """
    engine = engine or cfg.engine
    store = store if store is not None else spec
    watched = [a for a in cfg.anomalies if a.table in tables]
    gate = GateResult()
    for table, df in tables.items():
        extra = [anomaly_metric(a.metric, a.column) for a in watched if a.table == table]
        report = verify(spark, df, table, checks_for(table, cfg, default_checks), engine, extra)
        gate.reports[table] = report
    if store is not None and day is None:
        raise ConfigError("run_gate: a metrics store needs the run's day")
    if watched:
        from .quality_store import check_anomalies

        gate.anomalies = check_anomalies(store, pipeline, day, gate.metrics, watched, schema=schema)
    if store is not None:
        from .quality_store import save_metrics

        for table, report in gate.reports.items():
            save_metrics(store, pipeline, table, day, report.metrics, run_id or "", schema=schema)
    for w in gate.warnings:
        log.warning("data-quality warning: %s: %s: %s", w.table, w.check, w.message)
    return gate
