"""Runs on executors: the load of one partition of Arrow batches into a staging table through ONE COPY.

Each task opens its own engine (NullPool) and session, takes a transaction-level advisory lock on
(staging table, partition id), deletes what an earlier attempt of the same partition committed,
and streams the partition into `COPY ... FROM STDIN (FORMAT csv)`. A retried or speculative
attempt therefore replaces rows, never doubles them; a failed attempt rolls back. Memory stays
bounded by one Arrow batch: the COPY reads from a file-like object that formats the next batch
only when psycopg2 asks for more bytes.

Rows whose text holds NUL are dropped and counted (PostgreSQL text cannot store it). Everything
here must import from the shipped zip alone: no driver state, no test code.
"""

from __future__ import annotations

import io
from functools import partial
from typing import Callable, Iterable, Iterator, List, Optional, Tuple

from spark_app.errors import SinkError
from spark_app.postgres.connect import ConnectionSpec, error_text, lock_key, qualified, quote_ident

PART_COLUMN = "_part"
RESULT_SCHEMA = "partition int, rows_loaded long, rows_rejected long"
_READ_SIZE = 1 << 18  # bytes psycopg2 asks for per read()


class LoadCounter:
    """Rows a task sent to COPY and rows it rejected."""

    def __init__(self) -> None:
        self.loaded = 0
        self.rejected = 0


def copy_partition(
    spec: ConnectionSpec,
    schema: str,
    staging: str,
    columns: List[str],
    partition: int,
    batches: Iterable,
    batch_rows: int = 10000,
    formatter: str = "arrow",
) -> Tuple[int, int]:
    """Replace `partition`'s rows of `schema.staging` with `batches`; return (rows_loaded, rows_rejected)."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session

    table = qualified(schema, staging)
    col_list = ", ".join(quote_ident(c) for c in [*columns, PART_COLUMN])
    counter = LoadCounter()
    chunks = csv_chunks(batches, columns, partition, counter, batch_rows, formatter)
    reader = ChunkReader(chunks)
    engine = spec.engine()
    try:
        with Session(engine) as session:
            key = lock_key(schema, staging, partition)
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            session.execute(text(f"DELETE FROM {table} WHERE {PART_COLUMN} = :p"), {"p": partition})
            raw = session.connection().connection.driver_connection
            with raw.cursor() as cur:
                copy_sql = f"COPY {table} ({col_list}) FROM STDIN (FORMAT csv)"
                cur.copy_expert(copy_sql, reader, size=_READ_SIZE)
                copied = cur.rowcount
            if copied >= 0 and copied != counter.loaded:
                raise SinkError(f"COPY into {schema}.{staging} partition {partition} stored {copied} rows, "
                                f"sent {counter.loaded}")
            session.commit()
    except (SQLAlchemyError, *_driver_errors()) as exc:
        if reader.error is not None:  # the input failed mid-COPY: that is the real cause
            raise reader.error from None
        raise SinkError(f"loading partition {partition} into {schema}.{staging} failed: "
                        f"{error_text(exc, spec)}") from None
    finally:
        engine.dispose()
    return counter.loaded, counter.rejected


def partition_loader(
    spec: ConnectionSpec,
    schema: str,
    staging: str,
    columns: List[str],
    batch_rows: int,
    formatter: str = "arrow",
) -> Callable[[Iterator], Iterator]:
    """The function for `df.mapInArrow(fn, RESULT_SCHEMA)`: loads the task's partition, yields its counts."""
    return partial(_load_task, spec, schema, staging, list(columns), batch_rows, formatter)


def _load_task(spec, schema, staging, columns, batch_rows, formatter, batches):
    import pyarrow as pa
    from pyspark import TaskContext

    partition = TaskContext.get().partitionId()
    loaded, rejected = copy_partition(
        spec, schema, staging, columns, partition, batches, batch_rows, formatter
    )
    yield pa.RecordBatch.from_pydict(
        {"partition": [partition], "rows_loaded": [loaded], "rows_rejected": [rejected]},
        schema=_result_arrow_schema(),
    )


def _result_arrow_schema():
    import pyarrow as pa

    return pa.schema([("partition", pa.int32()), ("rows_loaded", pa.int64()), ("rows_rejected", pa.int64())])


# --------------------------------------------------------------------------- CSV formatting


def csv_chunks(
    batches: Iterable,
    columns: List[str],
    partition: int,
    counter: LoadCounter,
    batch_rows: int,
    formatter: str = "arrow",
) -> Iterator[bytes]:
    """CSV bytes, one chunk per (at most `batch_rows`-row) slice of each batch, NUL rows removed."""
    fmt = format_arrow if formatter == "arrow" else format_python
    for batch in batches:
        batch = batch.select(columns)
        for offset in range(0, batch.num_rows, max(1, batch_rows)):
            piece, rejected = drop_nul_rows(batch.slice(offset, batch_rows))
            counter.rejected += rejected
            if piece.num_rows:
                counter.loaded += piece.num_rows
                yield fmt(piece, partition)


def drop_nul_rows(batch):
    """(batch without rows whose strings contain NUL, number of rows removed)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    mask = None
    for column in batch.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            hit = pc.fill_null(pc.match_substring(column, "\x00"), False)
            mask = hit if mask is None else pc.or_(mask, hit)
    if mask is None:
        return batch, 0
    rejected = pc.sum(mask).as_py() or 0
    return (batch.filter(pc.invert(mask)), rejected) if rejected else (batch, 0)


def format_arrow(batch, partition: int) -> bytes:
    """Arrow's C++ CSV writer: strings quoted, NULL as an empty unquoted field (PostgreSQL's csv NULL)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with_part = batch.append_column(PART_COLUMN, pa.array([partition] * batch.num_rows, pa.int32()))
    sink = pa.BufferOutputStream()
    pacsv.write_csv(with_part, sink, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return sink.getvalue().to_pybytes()


def format_python(batch, partition: int) -> bytes:
    """The same CSV built row by row in Python (kept as the measured alternative)."""
    cells = [[_csv_cell(v) for v in column.to_pylist()] for column in batch.columns]
    suffix = f",{partition}\n"
    return "".join(",".join(row) + suffix for row in zip(*cells)).encode()


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


class ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks, for psycopg2's copy_expert."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._current = b""
        self._pos = 0
        self.error: Optional[BaseException] = None  # what the chunk iterator raised, if anything

    def readable(self) -> bool:
        return True

    def read(self, size: Optional[int] = -1) -> bytes:
        if self._pos >= len(self._current):
            try:
                self._current = next(self._chunks, b"")
            except BaseException as exc:
                self.error = exc
                raise
            self._pos = 0
            if not self._current:
                return b""
        end = len(self._current) if size is None or size < 0 else self._pos + size
        out = self._current[self._pos:end]
        self._pos += len(out)
        return out


def _driver_errors() -> tuple:
    import psycopg2

    return (psycopg2.Error,)
