"""The data-quality gate, on the driver: verify each table with an engine, then decide.

A check (`CheckConfig`) names a Deequ constraint (`isComplete`, `hasSize`, ...). Each check is
planned into one metric (`MetricSpec`: Deequ's analyzer name and instance) and an assertion
range (`spark_app.quality.checks`); an engine computes the metrics of a table, and the
assertions turn them into `ConstraintResult`s (`spark_app.quality.results`). Two engines give
the same `QualityReport`: PyDeequ when the Deequ jar is on the classpath, and a native PySpark
engine (one scan per table) otherwise.

`run_gate` verifies all tables of a run, checks metric anomalies against the history kept in
PostgreSQL, saves the day's metrics, and returns a `GateResult` the pipeline can raise on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from spark_app.config import CheckConfig, QualityConfig
from spark_app.errors import ConfigError, QualityGateFailed
from spark_app.quality.checks import MetricSpec, anomaly_metric, plan_metric, validate_check
from spark_app.quality.results import (
    ConstraintResult,
    Metric,
    QualityReport,
    Verdict,
    evaluate,
    format_results,
)

log = logging.getLogger("spark_app.quality.gate")

# --------------------------------------------------------------------------- engines


def choose_engine(spark: Any, engine: str = "auto") -> str:
    """The engine that will run: `auto` is Deequ when its jar loads, else native.

    A Deequ jar that is not the build pydeequ expects for this Spark, or `deequ` without a jar,
    is a ConfigError naming the jar and the Spark version (checked before any data is read).
    """
    if engine == "native":
        return "native"
    if engine not in ("auto", "deequ"):
        raise ConfigError(f"quality.engine: {engine!r} is not one of 'auto', 'deequ', 'native'")
    from spark_app.quality.deequ_jar import check_build, loaded_build, missing_jar_message

    build = loaded_build(spark)
    if build is None:
        if engine == "deequ":
            raise ConfigError(missing_jar_message(spark))
        return "native"
    check_build(spark, build)
    return "deequ"


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
        validate_check(c, f"quality.checks.{table}[{i}]")
    specs = _unique(table, [plan_metric(c) for c in checks] + list(extra_metrics or []))
    chosen = choose_engine(spark, engine)
    if not specs:  # nothing to measure: no Spark job
        return QualityReport(table, chosen, spark_jobs=0)
    if chosen == "deequ":
        from spark_app.quality.deequ import run_deequ

        return run_deequ(spark, df, table, checks, specs)
    from spark_app.quality.native import compute_metrics

    computed = compute_metrics(spark, df, table, specs)
    report = QualityReport(table, "native", spark_jobs=computed.spark_jobs, seconds=computed.seconds)
    report.metrics = computed.metrics
    report.results = evaluate(table, checks, computed.metrics)
    return report


def _unique(table: str, specs: List[MetricSpec]) -> List[MetricSpec]:
    """Each metric once; two different predicates under one name would share a metric: refused."""
    seen: Dict[Tuple[str, str], MetricSpec] = {}
    for s in specs:
        first = seen.setdefault((s.name, s.instance), s)
        if first.predicate != s.predicate:
            raise ConfigError(
                f"quality checks on {table}: two different predicates are both named {s.instance!r} "
                f"({first.predicate!r} and {s.predicate!r}); give each satisfies check its own name"
            )
    return list(seen.values())


# --------------------------------------------------------------------------- the gate


@dataclass
class GateResult(Verdict):
    reports: Dict[str, QualityReport] = field(default_factory=dict)
    anomalies: List[ConstraintResult] = field(default_factory=list)

    @property
    def results(self) -> List[ConstraintResult]:
        return [r for rep in self.reports.values() for r in rep.results] + list(self.anomalies)

    @property
    def engine(self) -> str:
        """The engine(s) that verified the tables: "deequ", "native" (or both, comma-separated)."""
        return ",".join(sorted({rep.engine for rep in self.reports.values()})) or "none"

    @property
    def metrics(self) -> List[Metric]:
        return [m for rep in self.reports.values() for m in rep.metrics]

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
    shrink_target: Any = None,
    record: bool = True,
    steps: Optional[Dict[str, float]] = None,
) -> GateResult:
    """Verify every table, check anomalies against the stored history, then save the day's metrics.

    `store` (or its alias `spec`) is a ConnectionSpec, an SQLAlchemy Engine or a URL; without it
    no history is read or written. `schema` holds `quality_metrics` (default public). With
    `record=False` the history is read and the day judged exactly as with `record=True`, but
    nothing is written (`process_data.py quality`).
    `shrink_target` (a `spark_app.quality.shrink.ShrinkTarget`) adds the shrink guard. Failed
    Warning-level constraints are logged; the caller decides on errors (`raise_if_failed()`).
    `steps`, when given, gets the seconds of each step (`spark_app.progress.step`).
    """
    from spark_app.progress import step

    engine = engine or cfg.engine
    store = store if store is not None else spec
    watched = [a for a in cfg.anomalies if a.table in tables]
    gate = GateResult()
    for table, df in tables.items():
        extra = [anomaly_metric(a.metric, a.column) for a in watched if a.table == table]
        if shrink_target is not None and shrink_target.table == table:
            extra += shrink_target.metrics()
        with step(steps, f"verify {table}"):
            report = verify(spark, df, table, checks_for(table, cfg, default_checks), engine, extra)
        gate.reports[table] = report
    if store is not None and day is None:
        raise ConfigError("run_gate: a metrics store needs the run's day")
    if watched:
        from spark_app.quality.store import check_anomalies

        with step(steps, "anomalies"):
            gate.anomalies = check_anomalies(store, pipeline, day, gate.metrics, watched, schema=schema)
    if shrink_target is not None and shrink_target.table in tables:
        from spark_app.quality.shrink import check_shrink

        with step(steps, "shrink guard"):
            shrink = check_shrink(store, pipeline, day, gate.metrics, shrink_target, cfg.shrink, schema)
        gate.anomalies += shrink
    if store is not None and record:
        from spark_app.quality.store import save_metrics

        with step(steps, "save metrics"):
            for table, report in gate.reports.items():
                save_metrics(store, pipeline, table, day, report.metrics, run_id or "", schema=schema)
    for w in gate.warnings:
        log.warning("data-quality warning: %s: %s: %s", w.table, w.check, w.message)
    return gate
