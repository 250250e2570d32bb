"""The PyDeequ engine: the same checks through Deequ's VerificationSuite, when its jar is present.

Used when `com.amazon.deequ.VerificationSuite` loads in the driver JVM (EMR with the Deequ jar
passed by --jars). Each of our checks becomes one Deequ `Check` whose description carries the
check's position, so results map back without parsing Deequ's constraint strings. Assertions
are Python lambdas called back from the JVM over Py4J; the callback server they need is shut
down after every run, otherwise its non-daemon thread keeps the driver process alive after the
job is done. Metrics no check needs (anomaly and shrink-guard metrics) join the checks' run as
required analyzers, so a table is scanned once (one AnalysisRunner pass when there is no check),
and results are read back as JSON, not as DataFrames that each cost a Spark job. What pydeequ
and Deequ print on their own (callback server notices, pyspark's warning about the DataFrame
constructor, Deequ's profiler on types it skips) goes to the log, not to the terminal (`quiet`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from spark_app.config import CheckConfig
from spark_app.errors import ConfigError
from spark_app.quality.checks import MetricSpec, assertion_range, check_columns, describe_check, plan_metric
from spark_app.quality.results import ConstraintResult, Metric, QualityReport

log = logging.getLogger("spark_app.quality.deequ")


@contextlib.contextmanager
def quiet(spark: Any) -> Iterator[None]:
    """Keep pydeequ's and Deequ's own prints off the terminal: logged (INFO) when the block ends.

    Python's stdout (pydeequ's "PythonCallback server restarted!") and the driver JVM's
    System.out and Scala Console (Deequ's "Unable to map type DateType") are captured for the
    block; pyspark's "DataFrame constructor is internal" warning, raised by pydeequ's own
    calls, is ignored. The callback server is shut down when the block ends (see above).
    """
    jvm = spark._jvm
    buffer = jvm.java.io.ByteArrayOutputStream()
    stream = jvm.java.io.PrintStream(buffer, True, "UTF-8")
    saved_out, saved_console = jvm.java.lang.System.out, jvm.scala.Console.out()
    jvm.java.lang.System.setOut(stream)
    jvm.scala.Console.setOut(stream)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="DataFrame constructor is internal")
            yield
    finally:
        jvm.java.lang.System.setOut(saved_out)
        jvm.scala.Console.setOut(saved_console)
        spark.sparkContext._gateway.shutdown_callback_server()
        for text in (printed.getvalue(), str(buffer.toString("UTF-8"))):
            if text.strip():
                log.info("printed by pydeequ/Deequ: %s", text.strip())


def run_deequ(
    spark: Any, df: Any, table: str, checks: List[CheckConfig], specs: List[MetricSpec]
) -> QualityReport:
    """Verify `checks` with Deequ and compute `specs`; the same report as the native engine."""
    os.environ.setdefault("SPARK_VERSION", spark.version)  # pydeequ reads it at import
    from pydeequ.verification import VerificationResult, VerificationSuite

    start = time.perf_counter()
    planned = {(m.name, m.instance) for m in (plan_metric(c) for c in checks)}
    extra = [s for s in specs if (s.name, s.instance) not in planned]
    with quiet(spark):
        rows: List[Any] = []
        if checks:
            builder = VerificationSuite(spark).onData(df)
            for i, c in enumerate(checks):
                builder.addCheck(_deequ_check(spark, c, f"#{i} {describe_check(c)}"))
            for s in extra:  # computed in the checks' pass, not a pass of their own
                builder._VerificationRunBuilder.addRequiredAnalyzer(_analyzer(s)._set_jvm(spark._jvm)._analyzer_jvm)
            outcome = builder.run()
            rows = VerificationResult.checkResultsAsJson(spark, outcome)  # JSON: no Spark job
            metrics = _metrics(VerificationResult.successMetricsAsJson(spark, outcome), table)
        else:
            metrics = _analyze(spark, df, table, extra)
    report = QualityReport(table, "deequ", seconds=time.perf_counter() - start)
    report.metrics = [
        metrics.get((s.name, s.instance), Metric(s.entity, s.instance, s.name, None, table)) for s in specs
    ]
    report.results = _results(table, checks, rows, metrics)
    return report


def _predicate(lo: Optional[float], hi: Optional[float]) -> Callable[[float], bool]:
    return lambda v: (lo is None or v >= lo - 1e-12) and (hi is None or v <= hi + 1e-12)


def _deequ_check(spark: Any, c: CheckConfig, description: str) -> Any:
    """One pydeequ Check holding the single constraint `c` asks for."""
    from pydeequ.checks import Check, CheckLevel

    level = CheckLevel.Error if c.level == "Error" else CheckLevel.Warning
    check = Check(spark, level, description)
    ok = _predicate(*assertion_range(c))
    cols = list(check_columns(c))
    if c.check == "hasSize":
        return check.hasSize(ok)
    if c.check == "isComplete":
        return check.isComplete(c.column)
    if c.check == "hasCompleteness":
        return check.hasCompleteness(c.column, ok)
    if c.check in ("isUnique", "hasUniqueness"):
        return (
            check.isUnique(cols[0])
            if c.check == "isUnique" and len(cols) == 1
            else check.hasUniqueness(cols, ok)
        )
    if c.check == "hasDistinctness":
        return check.hasDistinctness(cols, ok)
    if c.check == "isNonNegative":
        return check.isNonNegative(c.column, ok)
    if c.check == "isContainedIn":
        return check.isContainedIn(c.column, list(c.values), ok)
    if c.check == "satisfies":
        return check.satisfies(c.predicate, plan_metric(c).instance, ok)
    by_name = {
        "hasMin": check.hasMin,
        "hasMax": check.hasMax,
        "hasSum": check.hasSum,
        "hasMean": check.hasMean,
    }
    if c.check in by_name:
        return by_name[c.check](c.column, ok)
    raise ConfigError(f"check {c.check!r} has no PyDeequ mapping; use quality.engine: native")


def _metrics(rows: List[Any], table: str) -> Dict[Tuple[str, str], Metric]:
    out = {}
    for r in rows:
        entity = "Multicolumn" if str(r["entity"]).startswith("Mu") else str(r["entity"])
        out[(r["name"], r["instance"])] = Metric(entity, r["instance"], r["name"], r["value"], table)
    return out


def _analyzer(s: MetricSpec) -> Any:
    """The pydeequ analyzer computing the metric `s`."""
    from pydeequ import analyzers as A

    if s.name == "Size":
        return A.Size()
    if s.name == "Compliance":
        return A.Compliance(s.instance, s.predicate)
    if s.name in ("Uniqueness", "Distinctness", "UniqueValueRatio", "CountDistinct"):
        return getattr(A, s.name)(list(s.columns))
    return getattr(A, s.name)(s.columns[0])


def _analyze(spark: Any, df: Any, table: str, specs: List[MetricSpec]) -> Dict[Tuple[str, str], Metric]:
    """Metrics when no check is asked for, in one Deequ AnalysisRunner pass."""
    from pydeequ import analyzers as A

    if not specs:
        return {}
    runner = A.AnalysisRunner(spark).onData(df)
    for s in specs:
        runner.addAnalyzer(_analyzer(s))
    result = runner.run()
    return _metrics(A.AnalyzerContext.successMetricsAsJson(spark, result), table)


def _results(table: str, checks: List[CheckConfig], rows: List[Any], metrics) -> List[ConstraintResult]:
    by_index = {}
    for r in rows:
        index = int(str(r["check"]).split(" ", 1)[0].lstrip("#"))
        by_index[index] = r
    results = []
    for i, c in enumerate(checks):
        spec = plan_metric(c)
        metric = metrics.get((spec.name, spec.instance))
        value = metric.value if metric else None
        row = by_index.get(i)
        status = row["constraint_status"] if row else "Failure"
        message = (row["constraint_message"] or "") if row else "Deequ returned no result for this check"
        result = ConstraintResult(
            describe_check(c), c.level, status, spec.name, spec.instance, value, message, table
        )
        results.append(result)
    return results


def deequ_suggestions(spark: Any, df: Any) -> Any:
    """Deequ's own ConstraintSuggestionRunner (its default rules) on `df`, as our `Suggestions`."""
    os.environ.setdefault("SPARK_VERSION", spark.version)
    from pydeequ.suggestions import DEFAULT, ConstraintSuggestionRunner

    from spark_app.quality.suggest import Suggestion, Suggestions, check_from_code, with_exact_keys

    with quiet(spark):
        found = ConstraintSuggestionRunner(spark).onData(df).addConstraintRule(DEFAULT()).run()
    out = Suggestions()
    for s in found.get("constraint_suggestions", []):
        code = str(s.get("code_for_constraint", ""))
        rule = str(s.get("suggesting_rule", "")).split("(", 1)[0]
        column = str(s.get("column_name", ""))
        out.append(Suggestion(column, str(s.get("description", "")), code, rule, check_from_code(code)))
    out.sort(key=lambda s: (s.column, s.rule))
    return with_exact_keys(df, out)
