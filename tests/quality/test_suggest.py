"""Constraint suggestions follow Deequ's rules on a small, hand-checked profile."""

from __future__ import annotations

from datetime import date

import pytest
import yaml

from spark_app.config import CheckConfig, load_config
from spark_app.errors import ConfigError
from spark_app.quality.gate import verify
from spark_app.quality.suggest import Suggestion, Suggestions, check_from_code, suggest_constraints

MINIMAL = {
    "events": {"path": "/tmp/events"},
    "dynamodb": {"table": "catalog", "region": "us-east-1"},
    "postgres": {"url": "postgresql://etl@db:5432/catalog"},
}


@pytest.fixture(scope="module")
def suggestions(spark):
    # 30 rows: id 1..30; country cycles a, b, c; amount NULL on every 10th row; code "1".."5" as text.
    rows = [(i, "abc"[i % 3], None if i % 10 == 0 else i * 2, str(i % 5 + 1)) for i in range(1, 31)]
    df = spark.createDataFrame(rows, "id bigint, country string, amount int, code string")
    return suggest_constraints(df)


def by_column(suggestions, column):
    return [(s.rule, s.check) for s in suggestions if s.column == column]


def test_complete_non_negative_distinct_column_is_suggested_as_a_key(suggestions):
    assert by_column(suggestions, "id") == [
        ("CompleteIfCompleteRule", CheckConfig("isComplete", column="id")),
        ("NonNegativeNumbersRule", CheckConfig("isNonNegative", column="id")),
        ("UniqueIfApproximatelyUniqueRule", CheckConfig("isUnique", column="id")),
    ]


def test_low_cardinality_strings_get_their_value_range(suggestions):
    assert by_column(suggestions, "country") == [
        ("CompleteIfCompleteRule", CheckConfig("isComplete", column="country")),
        ("CategoricalRangeRule", CheckConfig("isContainedIn", column="country", values=("a", "b", "c"))),
    ]
    (code,) = [s.code for s in suggestions if s.rule == "CategoricalRangeRule"]
    assert code == '.isContainedIn("country", Array("a", "b", "c"))'


def test_mostly_complete_column_keeps_a_confidence_bound(suggestions):
    # 27 of 30 present: 0.9 - 1.96 * sqrt(0.9 * 0.1 / 30) = 0.7926..., floored to 0.79
    assert by_column(suggestions, "amount") == [
        ("RetainCompletenessRule", CheckConfig("hasCompleteness", column="amount", min=0.79)),
        ("NonNegativeNumbersRule", CheckConfig("isNonNegative", column="amount")),
    ]


def test_numeric_text_keeps_its_type(suggestions):
    assert by_column(suggestions, "code") == [
        ("CompleteIfCompleteRule", CheckConfig("isComplete", column="code")),
        ("RetainTypeRule", None),
    ]
    assert suggestions[-1].code == '.hasDataType("code", ConstrainableDataTypes.Integral)'


def test_format_prints_one_line_per_suggestion(suggestions):
    lines = suggestions.format().splitlines()
    assert lines[0].split() == ["column", "constraint", "rule", "code"]
    assert len(lines) == 2 + len(suggestions)
    assert "'amount' has less than 21% missing values" in suggestions.format()


def test_deequs_own_suggestion_runner_finds_ours_and_maps_to_config_checks(spark):
    from spark_app.quality.deequ import deequ_suggestions

    rows = [(i, "abc"[i % 3], None if i % 10 == 0 else i * 2, str(i % 5 + 1)) for i in range(1, 31)]
    df = spark.createDataFrame(rows, "id bigint, country string, amount int, code string")
    theirs = deequ_suggestions(spark, df)
    ours = suggest_constraints(df)
    checks = {s.check for s in theirs if s.check is not None}
    assert {s.check for s in ours if s.check is not None} <= checks  # Deequ suggests at least ours
    # ... and more: its NonNegative and CategoricalRange rules also take strings that hold numbers
    assert checks - {s.check for s in ours} == {
        CheckConfig("isNonNegative", column="code"),
        CheckConfig("isContainedIn", column="code", values=("1", "2", "3", "4", "5")),
    }
    assert {s.rule for s in theirs} >= {"CompleteIfCompleteRule", "RetainTypeRule"}
    assert '  - {check: isComplete, column: "id"}' in theirs.as_config("t").splitlines()
    callback = spark.sparkContext._gateway.get_callback_server()
    assert callback is None or callback.is_shutdown


def test_as_config_prints_only_checks_this_project_has():
    complete = CheckConfig("isComplete", column="a")
    suggestions = Suggestions(
        [
            Suggestion("a", "'a' is not null", '.isComplete("a")', "CompleteIfCompleteRule", complete),
            Suggestion("b", "'b' has type Integral", '.hasDataType("b", ...)', "RetainTypeRule", None),
        ]
    )
    lines = suggestions.as_config("t")
    assert lines == 't:\n  - {check: isComplete, column: "a"}'


@pytest.mark.parametrize(
    "code",
    [  # Deequ's FractionalCategoricalRangeRule, as Scala and as pydeequ prints it
        '.isContainedIn("advertiser_id", Array("1", "2"), _ >= 0.91, Some("It should be above 0.91!"))',
        '.isContainedIn("advertiser_id", ["1", "2"], lambda x: x >= 0.91, "It should be above 0.91!")',
    ],
)
def test_a_fractional_value_range_keeps_its_bound_and_its_message_is_no_value(code):
    expected = CheckConfig("isContainedIn", column="advertiser_id", values=("1", "2"), min=0.91)
    assert check_from_code(code) == expected


def test_the_config_loader_refuses_deequs_message_as_a_value(tmp_path):
    pasted = {"product_views": [{"check": "isContainedIn", "column": "advertiser_id",
                                 "values": ["1", "2", "It should be above 0.91!"]}]}
    path = tmp_path / "conf.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "quality": {"checks": pasted}}))
    refused = (r"quality.checks.product_views\[0\].values: 'It should be above 0.91!' "
               r"is Deequ's assertion message, not a value; give the share as min: 0.91")
    with pytest.raises(ConfigError, match=refused):
        load_config(str(path))


def test_uniqueness_is_suggested_for_the_key_never_for_a_column_that_repeats(spark):
    # 100 rows: advertiser 1 views p0..p49, advertiser 2 p49..p98: p49 twice, 99% distinct
    rows = [(date(2026, 11, 19), adv, f"p{i}", 1 + i % 3) for adv, first in ((1, 0), (2, 49))
            for i in range(first, first + 50)]
    df = spark.createDataFrame(rows, "day date, advertiser_id bigint, product_id string, view_count bigint")
    found = suggest_constraints(df)

    assert CheckConfig("isUnique", column="product_id") not in [s.check for s in found]
    (key,) = [s for s in found if s.rule == "KeyPrefixRule"]
    assert key.check == CheckConfig("isUnique", columns=("day", "advertiser_id", "product_id"))
    assert '- {check: isUnique, columns: ["day", "advertiser_id", "product_id"]}' in found.as_config("t")
    pasted = [s.check for s in found if s.check is not None]
    report = verify(spark, df, "t", pasted, engine="native")
    assert [r.check for r in report.results if r.status != "Success"] == []
