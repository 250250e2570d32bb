"""Each Deequ-style check passes on good data and fails on bad data, with Deequ's metric values."""

from __future__ import annotations

import pytest

from spark_app.config import CheckConfig, QualityConfig, config_from_mapping
from spark_app.errors import ConfigError, QualityGateFailed
from spark_app.quality.checks import validate_checks
from spark_app.quality.deequ_jar import loaded_build
from spark_app.quality.gate import run_gate, verify
from spark_app.quality.results import FAILURE, SUCCESS, Metric, QualityReport

# k: 1, 1, 2, 3, NULL   s: a, a, NULL, b, NULL   v: 5, NULL, 3, -1, 2
ROWS = [(1, "a", 5), (1, "a", None), (2, None, 3), (3, "b", -1), (None, None, 2)]
SCHEMA = "k int, s string, v int"


@pytest.fixture(scope="module")
def df(spark):
    return spark.createDataFrame(ROWS, SCHEMA).cache()


@pytest.fixture(scope="module")
def clean(spark):
    return spark.createDataFrame([(1, "a", 5), (2, "b", 3), (3, "a", 0)], SCHEMA).cache()


FAILING = [
    (CheckConfig("hasSize", min=6), 5.0),
    (CheckConfig("hasSize", max=4), 5.0),
    (CheckConfig("isComplete", column="k"), 4 / 5),  # one NULL in five rows
    (CheckConfig("hasCompleteness", column="s", min=0.7), 3 / 5),
    (CheckConfig("isUnique", column="k"), 2 / 4),  # 2 and 3 occur once among 4 non-null rows
    (CheckConfig("isUnique", columns=("k", "s")), 2 / 4),  # (NULL, NULL) is left out, as Deequ does
    (CheckConfig("hasUniqueness", column="k", min=0.75), 2 / 4),
    (CheckConfig("hasDistinctness", column="k", min=0.9), 3 / 4),  # 1, 2, 3 among 4 rows
    (CheckConfig("isNonNegative", column="v"), 4 / 5),  # NULL counts as 0, -1 fails
    (CheckConfig("hasMin", column="v", min=0), -1.0),
    (CheckConfig("hasMax", column="v", max=4), 5.0),
    (CheckConfig("hasSum", column="v", min=10), 9.0),
    (CheckConfig("hasMean", column="v", min=3), 9 / 4),  # over the 4 non-null values
    (CheckConfig("isContainedIn", column="s", values=("a",)), 4 / 5),  # NULLs pass, "b" fails
    (CheckConfig("satisfies", predicate="v > 0", name="v positive"), 3 / 5),  # NULL is not compliant
    (CheckConfig("satisfies", predicate="v > 0", min=0.7), 3 / 5),
]

PASSING = [
    (CheckConfig("hasSize", min=1, max=3), 3.0),
    (CheckConfig("isComplete", column="s"), 1.0),
    (CheckConfig("hasCompleteness", column="k", min=0.5), 1.0),
    (CheckConfig("isUnique", column="k"), 1.0),
    (CheckConfig("isUnique", columns=("k", "s")), 1.0),
    (CheckConfig("hasUniqueness", column="s", max=0.5), 1 / 3),  # only "b" is unique
    (CheckConfig("isNonNegative", column="v"), 1.0),
    (CheckConfig("hasMin", column="v", min=0), 0.0),
    (CheckConfig("hasMax", column="v", max=5), 5.0),
    (CheckConfig("isContainedIn", column="s", values=("a", "b")), 1.0),
    (CheckConfig("satisfies", predicate="v <= k * 5"), 1.0),
]


@pytest.fixture(scope="module")
def failing(spark, df):
    """All failing checks verified together: one scan for the lot, one result per check."""
    return verify(spark, df, "t", [c for c, _ in FAILING], engine="native")


@pytest.fixture(scope="module")
def passing(spark, clean):
    return verify(spark, clean, "t", [c for c, _ in PASSING], engine="native")


@pytest.mark.parametrize("i", range(len(FAILING)), ids=[f"{c.check}-{j}" for j, (c, _) in enumerate(FAILING)])
def test_failing_check_reports_deequs_metric_value_and_message(failing, i):
    check, bad_value = FAILING[i]
    result = failing.results[i]
    assert result.check.startswith(check.name or check.check)
    assert result.status == FAILURE
    assert result.value == pytest.approx(bad_value)
    assert result.message.startswith(f"Value: {float(bad_value)!r} does not meet the constraint requirement!")


@pytest.mark.parametrize("i", range(len(PASSING)), ids=[f"{c.check}-{j}" for j, (c, _) in enumerate(PASSING)])
def test_passing_check_reports_its_metric(passing, i):
    check, value = PASSING[i]
    result = passing.results[i]
    assert result.check.startswith(check.name or check.check)
    assert (result.status, result.message) == (SUCCESS, "")
    assert result.value == pytest.approx(value)


def test_metrics_carry_deequs_entity_and_instance(spark, df):
    checks = [
        CheckConfig("hasSize", min=1),
        CheckConfig("isUnique", columns=("k", "s")),
        CheckConfig("isNonNegative", column="v"),
        CheckConfig("isContainedIn", column="s", values=("a", "b")),
    ]
    report = verify(spark, df, "t", checks, engine="native")
    assert [(m.entity, m.instance, m.name) for m in report.metrics] == [
        ("Dataset", "*", "Size"),
        ("Multicolumn", "k,s", "Uniqueness"),
        ("Column", "v is non-negative", "Compliance"),
        ("Column", "s contained in a,b", "Compliance"),
    ]
    assert report.metric("Compliance", "s contained in a,b") == pytest.approx(1.0)  # NULLs pass


def test_empty_table_fails_ratio_checks_with_empty_state_but_measures_size_zero(spark):
    empty = spark.createDataFrame([], SCHEMA)
    report = verify(
        spark, empty, "t", [CheckConfig("hasSize", min=1), CheckConfig("isComplete", column="k")], "native"
    )
    size, complete = report.results
    assert (size.status, size.value) == (FAILURE, 0.0)
    assert (complete.status, complete.value) == (FAILURE, None)
    assert complete.message == "Empty state for analyzer Completeness(k), all input values were NULL."


def test_warning_level_failure_does_not_fail_the_report(spark, df):
    report = verify(spark, df, "t", [CheckConfig("isComplete", column="k", level="Warning")], "native")
    assert report.passed
    assert [w.check for w in report.warnings] == ["isComplete(k)"]
    assert report.errors == []


def test_format_lists_failures_first_with_values(spark, df):
    checks = [CheckConfig("hasSize", min=1), CheckConfig("isComplete", column="k")]
    text = verify(spark, df, "t", checks, "native").format()
    lines = text.splitlines()
    assert lines[0].startswith("t: 2 constraint(s), 1 error(s), 0 warning(s) [native engine")
    assert "Failure" in lines[3] and "isComplete(k)" in lines[3] and "0.8" in lines[3]
    assert "Success" in lines[4] and "hasSize(>= 1)" in lines[4]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "check, error",
    [
        ({"check": "isCompleat", "column": "k"}, "quality.checks.t[0].check: unknown check 'isCompleat'"),
        ({"check": "isComplete"}, "quality.checks.t[0].column: required for isComplete"),
        ({"check": "hasSize"}, "quality.checks.t[0]: hasSize needs min: and/or max:"),
        ({"check": "isContainedIn", "column": "s"}, "quality.checks.t[0].values: required"),
        ({"check": "satisfies"}, "quality.checks.t[0].predicate: required"),
        ({"check": "isUnique", "column": "k", "min": 0.9}, "use hasUniqueness with min:"),
        ({"check": "hasMin", "column": "v", "min": 3, "max": 1}, "min 3 is greater than max 1"),
        ({"check": "isUnique", "column": "k", "columns": ["s"]}, "either column or columns"),
    ],
)
def test_loading_a_config_with_a_bad_check_names_the_key(check, error):
    with pytest.raises(ConfigError) as exc:
        config_from_mapping(
            {
                "dynamodb": {"table": "c", "region": "us-east-1"},
                "postgres": {"url": "postgresql://etl@h/db"},
                "events": {"path": "/tmp/e"},
                "quality": {"checks": {"t": [check]}},
            },
            source="job.yaml",
        )
    assert str(exc.value).startswith("job.yaml: ")
    assert error in str(exc.value)


def test_unknown_anomaly_metric_is_a_config_error():
    from spark_app.config import AnomalyConfig

    cfg = QualityConfig(anomalies=[AnomalyConfig(metric="Summ", table="t", column="v")])
    with pytest.raises(ConfigError, match=r"quality.anomalies\[0\].metric: unknown metric 'Summ'"):
        validate_checks(cfg, "job.yaml")


def test_missing_column_and_bad_predicate_fail_before_any_job(spark, df):
    with pytest.raises(ConfigError, match="column 'nope' of Completeness\\(nope\\) is not in the table"):
        verify(spark, df, "t", [CheckConfig("isComplete", column="nope")], "native")
    with pytest.raises(ConfigError, match="predicate 'v >>> 1'"):
        verify(spark, df, "t", [CheckConfig("satisfies", predicate="v >>> 1")], "native")
    with pytest.raises(ConfigError, match="Minimum\\(s\\) needs a numeric column, 's' is string"):
        verify(spark, df, "t", [CheckConfig("hasMin", column="s", min=0)], "native")


def test_two_predicates_under_one_name_are_refused(spark, df):
    checks = [
        CheckConfig("satisfies", predicate="v > 0", name="sane v"),
        CheckConfig("satisfies", predicate="v < 100", name="sane v"),
    ]
    with pytest.raises(ConfigError, match="two different predicates are both named 'sane v'"):
        verify(spark, df, "t", checks, "native")


# --------------------------------------------------------------------------- engines and gate


WITHOUT_JAR = """
import json
from spark_app.config import CheckConfig
from spark_app.errors import ConfigError
from spark_app.quality.deequ_jar import loaded_build
from spark_app.quality.gate import verify

df = spark.createDataFrame([(1, "a", 5)], "k int, s string, v int")
auto = verify(spark, df, "t", [CheckConfig("hasSize", min=1)]).engine
out = {"loads": loaded_build(spark) is not None, "auto": auto}
try:
    verify(spark, df, "t", [CheckConfig("hasSize", min=1)], engine="deequ")
except ConfigError as exc:
    out["deequ"] = str(exc)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def without_jar():
    """The same calls in a session whose JVM has no Deequ jar (a child process: see tests.support.jarless)."""
    import json

    from tests.support.jarless import run_without_jars

    done = run_without_jars(WITHOUT_JAR)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_forcing_deequ_without_the_jar_says_how_to_fix_it(without_jar):
    assert without_jar["loads"] is False
    message = without_jar["deequ"]
    assert "quality.engine is 'deequ' but no Deequ jar is on the driver class path" in message
    assert "expected deequ-2.0.7-spark-3.5.jar" in message and "Spark 3.5." in message
    assert "`make jars`" in message and "--jars" in message


def test_auto_engine_falls_back_to_native_without_the_jar(without_jar):
    assert without_jar["auto"] == "native"


def test_auto_engine_picks_deequ_when_the_jar_loads(spark, df):
    assert loaded_build(spark) is not None  # the tests' session has .jars/ (make jars) on its class path
    assert verify(spark, df, "t", [CheckConfig("hasSize", min=1)]).engine == "deequ"


def test_config_checks_replace_defaults_per_table_and_errors_raise(spark, df, clean):
    defaults = {"a": [CheckConfig("isComplete", column="k")], "b": [CheckConfig("isComplete", column="k")]}
    cfg = QualityConfig(engine="native", checks={"a": [CheckConfig("hasSize", min=1)]})
    gate = run_gate(spark, {"a": df, "b": df, "c": clean}, cfg, defaults)
    assert [r.check for r in gate.reports["a"].results] == ["hasSize(>= 1)"]  # config wins for a
    assert [(r.table, r.check) for r in gate.errors] == [("b", "isComplete(k)")]  # defaults for b
    assert (gate.reports["c"].results, gate.reports["c"].spark_jobs) == ([], 0)
    with pytest.raises(QualityGateFailed, match="b: isComplete\\(k\\): Value: 0.8 does not meet"):
        gate.raise_if_failed()


def test_gate_passes_and_keeps_every_tables_metrics(spark, clean):
    cfg = QualityConfig(engine="native", checks={"a": [CheckConfig("isUnique", column="k")]})
    gate = run_gate(spark, {"a": clean}, cfg)
    gate.raise_if_failed()
    assert gate.passed
    assert gate.metrics == [Metric("Column", "k", "Uniqueness", 1.0, "a")]
    assert "quality gate PASSED: 0 error(s), 0 warning(s)" in gate.format()


def test_report_without_results_passes():
    assert QualityReport("t", "native").passed
