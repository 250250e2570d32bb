"""The result types of a quality run, below every engine: metrics, constraint results, reports.

A check (`CheckConfig`) is planned into one metric (`MetricSpec`, see `spark_app.quality.checks`)
and an assertion range; an engine (`native` or `deequ`) computes the metrics, and `evaluate`
turns them into `ConstraintResult`s with Deequ's status strings and failure messages. Both
engines return a `QualityReport`, so the gate and the history store never know which one ran.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, List, Optional

from spark_app.quality.checks import MetricSpec, assertion_range, assertion_text, describe_check, plan_metric

if TYPE_CHECKING:
    from spark_app.config import CheckConfig

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


class Verdict:
    """Errors, warnings and the verdict over `self.results`."""

    results: List[ConstraintResult]

    @property
    def errors(self) -> List[ConstraintResult]:
        return [r for r in self.results if r.status == FAILURE and r.level == "Error"]

    @property
    def warnings(self) -> List[ConstraintResult]:
        return [r for r in self.results if r.status == FAILURE and r.level == "Warning"]

    @property
    def passed(self) -> bool:
        return not self.errors


@dataclass
class QualityReport(Verdict):
    table: str
    engine: str  # native | deequ
    results: List[ConstraintResult] = field(default_factory=list)
    metrics: List[Metric] = field(default_factory=list)
    spark_jobs: Optional[int] = None  # Spark jobs the metrics took (native engine)
    seconds: float = 0.0

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
    wanted = assertion_text(lo, hi)
    return FAILURE, f"Value: {_fmt_value(value)} does not meet the constraint requirement! ({wanted})"
