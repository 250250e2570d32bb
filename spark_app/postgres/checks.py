"""Checks on the driver around a load: does a DataFrame fit its table, and why did a load job fail.

Kept apart from `publish` so the run protocol reads on its own; the only database access here
is reading the catalog (a table's columns and primary key).
"""

from __future__ import annotations

import re
from typing import Any, List, Tuple

from spark_app.errors import SinkError
from spark_app.postgres.connect import ConnectionSpec, qualified

# PostgreSQL column type (format_type) -> Spark simpleString types that load into it losslessly.
_COMPATIBLE = {
    "date": {"date"},
    "bigint": {"bigint", "int", "smallint", "tinyint"},
    "integer": {"int", "smallint", "tinyint"},
    "smallint": {"smallint", "tinyint"},
    "text": {"string"},
    "boolean": {"boolean"},
    "double precision": {"double", "float"},
    "real": {"float"},
    "timestamp with time zone": {"timestamp"},
    "timestamp without time zone": {"timestamp_ntz"},
    "jsonb": {"string"},
}



def check_frame(df: Any, table: str, target: List[Tuple[str, str]]) -> None:
    """The DataFrame has exactly the target's columns, each of a type that loads into it."""
    fields = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    names = {name for name, _ in target}
    missing = [name for name, _ in target if name not in fields]
    extra = [name for name in fields if name not in names]
    if missing or extra:
        raise SinkError(
            f"DataFrame for {table} does not match its columns: "
            + "; ".join(p for p in [
                f"missing column(s) {', '.join(missing)}" if missing else "",
                f"unknown column(s) {', '.join(extra)}" if extra else "",
            ] if p)
        )
    for name, kind in target:
        allowed = _COMPATIBLE.get(kind) or ({"string"} if kind.startswith("character") else set())
        if fields[name] not in allowed:
            raise SinkError(
                f"column {table}.{name}: DataFrame type {fields[name]} does not load into PostgreSQL {kind} "
                f"(expected one of {', '.join(sorted(allowed)) or 'nothing supported'})"
            )


def spark_cause(exc: BaseException, spec: ConnectionSpec) -> str:
    """The useful line of a failed Spark job: our SinkError or the Python error, not the JVM stack."""
    text = spec.scrub(str(exc))
    ours = re.findall(r"SinkError: ([^\n]+)", text)
    if ours:
        return ours[-1][:1000]
    python_errors = [
        line.strip()
        for line in re.findall(r"^\s*([\w.]+(?:Error|Exception): [^\n]+)$", text, flags=re.M)
        if not line.startswith(("org.", "java.", "py4j.", "scala.", "pyspark.errors"))
    ]
    if python_errors:
        return python_errors[-1][:1000]
    lines = text.strip().splitlines()
    return lines[0][:1000] if lines else type(exc).__name__


def table_columns(conn: Any, schema: str, table: str) -> List[Tuple[str, str]]:
    """(name, PostgreSQL type) of the table's columns in table order; [] when it does not exist."""
    from sqlalchemy import text

    rows = conn.execute(
        text(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(:t) AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ),
        {"t": qualified(schema, table)},
    ).all()
    return [(str(name), str(kind)) for name, kind in rows]


def primary_key(conn: Any, schema: str, table: str) -> List[str]:
    """The table's primary key columns, in key order ([] without a primary key)."""
    from sqlalchemy import text

    keys = conn.execute(
        text(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = to_regclass(:t) AND i.indisprimary "
            "ORDER BY array_position(i.indkey, a.attnum)"
        ),
        {"t": qualified(schema, table)},
    ).scalars().all()
    return [str(k) for k in keys]
