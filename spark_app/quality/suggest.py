"""Constraint suggestions from a profile of the data, after Deequ's ConstraintSuggestionRunner.

One aggregation profiles every column (non-null count, approximate distinct count, min for
numbers, how many string values parse as integers, decimals or booleans); a second, small one
collects the value sets of low-cardinality string columns. Rules, as Deequ's:

- complete                  -> isComplete              (CompleteIfCompleteRule)
- mostly complete           -> hasCompleteness >= a lower confidence bound (RetainCompletenessRule)
- numbers never negative    -> isNonNegative           (NonNegativeNumbersRule)
- few distinct strings      -> isContainedIn(values)   (CategoricalRangeRule)
- complete, ~all distinct   -> isUnique                (UniqueIfApproximatelyUniqueRule)
- strings that are numbers  -> hasDataType             (RetainTypeRule)

Each suggestion carries Deequ's Scala code and, where this project has the check, the
`CheckConfig` to paste under `quality.checks`. Pasted, a suggestion passes on the day it was
suggested from: uniqueness, which both rule sets guess from an approximate distinct count, is
kept only for a column that is exactly unique on its own (one more Spark job), and the table's
key is suggested as a compound `isUnique` (`KeyPrefixRule`: the shortest run of leading
columns, two or more, that is exactly unique, e.g. day, advertiser_id, product_id).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from spark_app.config import CheckConfig

MAX_CATEGORIES = 20  # a string column with at most this many distinct values gets a value range
MAX_CATEGORY_SHARE = 0.1  # ... provided distinct values are at most this share of the rows
UNIQUE_SHARE = 0.95  # approximate distinct / rows at or above this suggests isUnique
_RSD = 0.02  # relative standard deviation of approx_count_distinct


@dataclass(frozen=True)
class Suggestion:
    column: str
    description: str
    code: str  # Deequ (Scala) code of the constraint
    rule: str
    check: Optional[CheckConfig] = None


class Suggestions(list):
    """A list of Suggestion with a printable table."""

    def format(self) -> str:
        if not self:
            return "no constraints suggested"
        headers = ["column", "constraint", "rule", "code"]
        rows = [[s.column, s.description, s.rule, s.code] for s in self]
        widths = [min(70, max(len(str(x)) for x in col)) for col in zip(headers, *rows)]

        def line(cells: List[str]) -> str:
            return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

        return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])

    def as_config(self, table: str) -> str:
        """The suggestions this project can check, as YAML to paste under `quality.checks`."""
        lines = [f"{table}:"]
        for s in self:
            if s.check is not None:
                lines.append(f"  - {config_line(s.check)}")
        return "\n".join(lines) if len(lines) > 1 else f"{table}: []  # nothing this project can check"


def config_line(c: CheckConfig) -> str:
    """One check in the config's flow style: {check: isComplete, column: "id"}."""
    parts = [f"check: {c.check}"]
    if c.column:
        parts.append(f"column: {json.dumps(c.column)}")
    if c.columns:
        parts.append(f"columns: [{', '.join(json.dumps(x) for x in c.columns)}]")
    if c.values:
        parts.append(f"values: [{', '.join(json.dumps(v) for v in c.values)}]")
    if c.min is not None:
        parts.append(f"min: {c.min:g}")
    return "{" + ", ".join(parts) + "}"


_CODE = re.compile(r'^\.(\w+)\("((?:[^"\\]|\\.)*)"(.*)$', re.S)
_SIMPLE = ("isComplete", "isNonNegative", "isUnique")


def check_from_code(code: str) -> Optional[CheckConfig]:
    """The CheckConfig of a suggested constraint's code (Deequ's Scala, or pydeequ's translation of it).

    None for constraints this project has no check for (hasDataType, ...).
    """
    match = _CODE.match(code.strip())
    if not match:
        return None
    name, column, rest = match.groups()
    if name in _SIMPLE:
        return CheckConfig(name, column=column)
    bound = re.search(r">=\s*([0-9.eE+-]+)", rest)
    if name == "isContainedIn":
        # the values are the Array(...) (Scala) or [...] (pydeequ) alone: a fractional range goes on
        # with its bound and its message ("It should be above 0.91!"), neither of them a value
        listed = re.match(r'\s*,\s*(?:Array\(|\[)((?:"(?:[^"\\]|\\.)*"|[\s,])*)[)\]]', rest)
        if not listed:
            return None
        quoted = re.findall(r'"((?:[^"\\]|\\.)*)"', listed.group(1))
        values = tuple(sorted(json.loads(f'"{v}"') for v in quoted))
        share = float(bound.group(1)) if bound and bound.start() >= listed.end() else None
        return CheckConfig("isContainedIn", column=column, values=values, min=share) if values else None
    if name == "hasCompleteness" and bound:
        return CheckConfig("hasCompleteness", column=column, min=float(bound.group(1)))
    return None


def suggest_constraints(df: Any) -> Suggestions:
    """Suggest constraints for every column of `df` (two Spark jobs at most)."""
    from pyspark.sql.types import NumericType, StringType

    types = {f.name: f.dataType for f in df.schema.fields}
    profile = _profile(df, types)
    n = profile["n"]
    categorical = [
        c
        for c, t in types.items()
        if isinstance(t, StringType)
        and 0 < profile[f"{c}#d"] <= MAX_CATEGORIES
        and profile[f"{c}#d"] <= max(1.0, MAX_CATEGORY_SHARE * n)
    ]
    values = _value_sets(df, categorical)
    out = Suggestions()
    for c, t in types.items():
        nn, distinct = profile[f"{c}#nn"], profile[f"{c}#d"]
        completeness = nn / n if n else 0.0
        out.extend(_completeness(c, completeness, n))
        if isinstance(t, NumericType) and profile.get(f"{c}#min") is not None and profile[f"{c}#min"] >= 0:
            out.append(
                _suggest(
                    c,
                    "'{c}' has no negative values",
                    f'.isNonNegative("{c}")',
                    "NonNegativeNumbersRule",
                    CheckConfig("isNonNegative", column=c),
                )
            )
        if c in values:
            vals = sorted(values[c])
            quoted = ", ".join(f'"{v}"' for v in vals)
            out.append(
                _suggest(
                    c,
                    f"'{c}' has value range {', '.join(vals)}",
                    f'.isContainedIn("{c}", Array({quoted}))',
                    "CategoricalRangeRule",
                    CheckConfig("isContainedIn", column=c, values=tuple(vals)),
                )
            )
        if completeness == 1.0 and n > 1 and distinct / n >= UNIQUE_SHARE:
            out.append(
                _suggest(
                    c,
                    "'{c}' is unique",
                    f'.isUnique("{c}")',
                    "UniqueIfApproximatelyUniqueRule",
                    CheckConfig("isUnique", column=c),
                )
            )
        if isinstance(t, StringType) and nn:
            out.extend(_retained_type(c, nn, profile))
    return with_exact_keys(df, out)


MAX_KEY_COLUMNS = 4  # the longest run of leading columns tried as the table's key


def with_exact_keys(df: Any, suggestions: List[Suggestion]) -> Suggestions:
    """`suggestions` with uniqueness only where it holds exactly, plus the table's key (one Spark job).

    A single-column isUnique stays when the column's exact distinct count equals the rows
    (product ids repeat across advertisers: 99% distinct is not unique); the shortest run of
    two or more leading key-like columns (text, integers, dates, booleans) whose exact
    distinct count equals the rows is added as a compound isUnique.
    """
    from pyspark.sql import functions as F

    singles = sorted({s.check.column for s in suggestions if _single_unique(s)})
    prefixes = _key_prefixes(df)
    if not singles and not prefixes:
        return Suggestions(suggestions)
    aggs = [F.count(F.lit(1)).alias("n")]
    aggs += [F.countDistinct(F.col(f"`{c}`")).alias(f"s{i}") for i, c in enumerate(singles)]
    aggs += [F.countDistinct(*[F.col(f"`{c}`") for c in p]).alias(f"p{i}") for i, p in enumerate(prefixes)]
    row = df.agg(*aggs).collect()[0]
    n = row["n"]
    unique = {c for i, c in enumerate(singles) if n and row[f"s{i}"] == n}
    out = Suggestions(s for s in suggestions if not _single_unique(s) or s.check.column in unique)
    key = next((p for i, p in enumerate(prefixes) if n and row[f"p{i}"] == n), None)
    if key is not None and len(key) > 1:  # a unique first column is a key of its own
        quoted = ", ".join(f'"{c}"' for c in key)
        out.append(
            Suggestion(
                ",".join(key),
                f"{', '.join(repr(c) for c in key)} are unique together (the table's key)",
                f".isPrimaryKey({quoted})",
                "KeyPrefixRule",
                CheckConfig("isUnique", columns=tuple(key)),
            )
        )
    return out


def _single_unique(s: Suggestion) -> bool:
    return s.check is not None and s.check.check == "isUnique" and bool(s.check.column)


def _key_prefixes(df: Any) -> List[tuple]:
    """Runs of 1..MAX_KEY_COLUMNS leading columns, up to the first column that cannot be a key."""
    from pyspark.sql.types import BooleanType, DateType, IntegralType, StringType

    leading: List[str] = []
    for f in df.schema.fields:
        if not isinstance(f.dataType, (StringType, IntegralType, DateType, BooleanType)):
            break
        leading.append(f.name)
    return [tuple(leading[:k]) for k in range(1, min(len(leading), MAX_KEY_COLUMNS) + 1)]


def _suggest(column: str, description: str, code: str, rule: str, check: Optional[CheckConfig] = None):
    return Suggestion(column, description.replace("{c}", column), code, rule, check)


def _completeness(c: str, completeness: float, n: int) -> List[Suggestion]:
    if completeness == 1.0 and n:
        return [
            _suggest(
                c,
                "'{c}' is not null",
                f'.isComplete("{c}")',
                "CompleteIfCompleteRule",
                CheckConfig("isComplete", column=c),
            )
        ]
    if 0.2 < completeness < 1.0:
        # Deequ: the lower end of a 95% confidence interval of the observed share, floored to 2 digits
        bound = completeness - 1.96 * math.sqrt(completeness * (1 - completeness) / n)
        bound = math.floor(max(bound, 0.0) * 100) / 100
        return [
            _suggest(
                c,
                f"'{{c}}' has less than {1 - bound:.0%} missing values",
                f'.hasCompleteness("{c}", _ >= {bound}, Some("It should be above {bound}!"))',
                "RetainCompletenessRule",
                CheckConfig("hasCompleteness", column=c, min=bound),
            )
        ]
    return []


def _retained_type(c: str, nn: int, profile: Dict[str, Any]) -> List[Suggestion]:
    for kind, key in (("Boolean", "bool"), ("Integral", "int"), ("Fractional", "frac")):
        if profile[f"{c}#{key}"] == nn:
            code = f'.hasDataType("{c}", ConstrainableDataTypes.{kind})'
            return [_suggest(c, f"'{{c}}' has type {kind}", code, "RetainTypeRule")]
    return []


def _profile(df: Any, types: Dict[str, Any]) -> Dict[str, Any]:
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType, StringType

    aggs = [F.count(F.lit(1)).alias("n")]
    for c, t in types.items():
        col = F.col(f"`{c}`")
        aggs += [F.count(col).alias(f"{c}#nn"), F.approx_count_distinct(col, _RSD).alias(f"{c}#d")]
        if isinstance(t, NumericType):
            aggs.append(F.min(col.cast("double")).alias(f"{c}#min"))
        if isinstance(t, StringType):
            trimmed = F.lower(F.trim(col))
            aggs.append(F.count(F.when(trimmed.isin("true", "false"), 1)).alias(f"{c}#bool"))
            aggs.append(F.count(F.when(trimmed.rlike(r"^[+-]?\d+$"), 1)).alias(f"{c}#int"))
            aggs.append(
                F.count(F.when(trimmed.rlike(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"), 1)).alias(
                    f"{c}#frac"
                )
            )
    return df.agg(*aggs).collect()[0].asDict()


def _value_sets(df: Any, columns: List[str]) -> Dict[str, List[str]]:
    if not columns:
        return {}
    from pyspark.sql import functions as F

    row = df.agg(*[F.collect_set(F.col(f"`{c}`")).alias(c) for c in columns]).collect()[0]
    return {c: [str(v) for v in row[c]] for c in columns}
