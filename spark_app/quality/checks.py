"""The check catalogue: Deequ's check names, the metric each one is decided by, and validation.

A check (`CheckConfig`) is planned into one `MetricSpec` (Deequ's analyzer name and instance,
e.g. Compliance "view_count is non-negative") and an assertion range. Both engines compute
MetricSpecs; `quality.evaluate` applies the ranges. Validation runs at config-load time
(`validate_checks`) and again before a table is verified.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Optional, Tuple

from spark_app.errors import ConfigError

if TYPE_CHECKING:  # config types for annotations only: config imports this module
    from spark_app.config import CheckConfig, QualityConfig


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
# Deequ's suggested assertion message ("It should be above 0.91!"), never a value of a column
_DEEQU_HINT = re.compile(r"^\s*It should be (?:above|below) ([0-9.eE+-]+)!\s*$")


def check_columns(c: CheckConfig) -> Tuple[str, ...]:
    """The column(s) a check reads: `columns` when given, else `column`."""
    return tuple(c.columns) if c.columns else ((c.column,) if c.column else ())


def describe_check(c: CheckConfig) -> str:
    """Deequ-like label: isUnique(day,advertiser_id), hasSize(>= 1), satisfies(<name>)."""
    if c.name:
        return c.name
    if c.check == "hasSize":
        return f"hasSize({assertion_text(*assertion_range(c))})"
    if c.check == "satisfies":
        return f"satisfies({c.predicate})"
    if c.check == "isContainedIn":
        return f"isContainedIn({c.column}, [{', '.join(c.values)}])"
    cols = ",".join(check_columns(c))
    lo_hi = _CHECKS[c.check][2]
    return f"{c.check}({cols})" if lo_hi else f"{c.check}({cols}, {assertion_text(*assertion_range(c))})"


def assertion_range(c: CheckConfig) -> Tuple[Optional[float], Optional[float]]:
    """The closed range the check's metric must fall in; None is unbounded."""
    default = _CHECKS[c.check][2]
    if c.min is None and c.max is None and default is not None:
        return default
    return c.min, c.max


def assertion_text(lo: Optional[float], hi: Optional[float]) -> str:
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
            validate_check(c, f"{source}: quality.checks.{table}[{i}]")
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


def validate_check(c: CheckConfig, where: str) -> None:
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
    hint = next((v for v in c.values if _DEEQU_HINT.match(v)), None)
    if hint is not None:  # Deequ's message of a fractional range, pasted as if it were a value
        share = _DEEQU_HINT.match(hint).group(1)
        raise ConfigError(
            f"{where}.values: {hint!r} is Deequ's assertion message, not a value; "
            f"give the share as min: {share} (at least that share of rows within the values)"
        )
    if c.check in _FIXED and (c.min is not None or c.max is not None):
        threshold = "hasCompleteness" if c.check == "isComplete" else "hasUniqueness"
        raise ConfigError(f"{where}: {c.check} takes no min/max; use {threshold} with min: for a threshold")
    if _CHECKS[c.check][2] is None and c.min is None and c.max is None:
        raise ConfigError(f"{where}: {c.check} needs min: and/or max:")
    if c.min is not None and c.max is not None and c.min > c.max:
        raise ConfigError(f"{where}: min {c.min:g} is greater than max {c.max:g}")
