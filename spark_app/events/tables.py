"""Runs on executors: the rows of one Parquet file, validated like JSON lines, in Arrow batches.

Each file is read with its own schema, so files whose column types differ are each read as they
are. A cell is taken as text and judged by the same rules as a JSON token (`2.0` is not an
advertiser id); cells the bulk path cannot prove valid go to the strict rules one by one, and a
rejected row's raw text is the row as JSON. A file that is not Parquet, or is cut short, is
unreadable: named, left out and counted in the bad share, like a broken gzip file.
"""

from __future__ import annotations

import io
import json
from typing import Dict, Iterator, Optional

import numpy as np

from spark_app.config import S3Config
from spark_app.events.files import Unreadable, open_source
from spark_app.events.parse import FIELDS, MAX_PRODUCT_ID_BYTES, DayWindow, classify_values, outcome_of
from spark_app.events.vector import (
    BlockResult,
    _add_fast,
    append_records,
    epoch_ms_text,
    iso_micros,
    tally_strict,
)

BATCH_ROWS = 64 * 1024
_EPOCH_MIN, _EPOCH_MAX = 10**11, 10**13


def classify_parquet_file(
    path: str, window: DayWindow, s3: Optional[S3Config] = None, whole_rows: bool = True
) -> Iterator[BlockResult]:
    """The file's batches, classified; `whole_rows=False` reads only the five fields' columns
    (a rejected row's raw text then lacks the others: for callers that only count)."""
    import pyarrow.parquet as pq

    with open_source(path, s3) as stream:
        source = stream if _seekable(stream) else io.BytesIO(stream.read())
        try:
            parquet = pq.ParquetFile(source, buffer_size=1 << 20, pre_buffer=False)  # page by page
        except Exception as exc:  # noqa: BLE001 - ArrowInvalid, OSError: not Parquet, cut short
            raise Unreadable(f"not a readable Parquet file: {exc}") from exc
        columns = None if whole_rows else [f for f in parquet.schema_arrow.names if f in FIELDS]
        for batch in _batches(parquet, path, columns):
            yield classify_table_batch(batch, window)


def _seekable(stream) -> bool:
    try:
        return bool(stream.seekable())
    except Exception:  # noqa: BLE001 - botocore's StreamingBody has no seekable()
        return False


def _batches(parquet, path: str, columns=None):
    try:
        yield from parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns)
    except Exception as exc:  # noqa: BLE001 - a page that cannot be decoded halfway through the file
        raise RuntimeError(f"{path}: Parquet data cannot be decoded: {exc}") from exc


def classify_table_batch(batch, window: DayWindow) -> BlockResult:
    """One Parquet record batch -> in-day events, counts and rejected rows."""
    import pyarrow as pa

    n = batch.num_rows
    result = BlockResult(counts={"lines": n})
    names = set(batch.schema.names)
    cols = {f: batch.column(f) if f in names else pa.nulls(n, pa.string()) for f in FIELDS}
    values: Dict[str, object] = {}
    ok = np.ones(n, bool)
    for f in ("event_id", "event_type", "product_id"):
        values[f], good = _text_column(cols[f])
        ok &= good
    ok &= _product_id_ok(values["product_id"])
    values["advertiser_id"], good = _advertiser_column(cols["advertiser_id"])
    ok &= good
    values["ts_us"], good = _ts_column(cols["ts"])
    ok &= good
    future = _add_fast(result, values, ok, window)
    slow = np.flatnonzero(~ok | future)
    if len(slow):
        _classify_rows(result, batch, slow, window)
    return result


def _text_column(col):
    """A string column as is (valid when non-null and non-empty); other types go row by row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_large_string(col.type):
        col = col.cast(pa.string())
    if not pa.types.is_string(col.type):
        return pa.nulls(len(col), pa.string()), np.zeros(len(col), bool)
    good = pc.fill_null(pc.greater(pc.binary_length(col), 0), False).to_numpy(zero_copy_only=False)
    return col, good


def _product_id_ok(col) -> np.ndarray:
    import pyarrow.compute as pc

    short = pc.less_equal(pc.binary_length(col), MAX_PRODUCT_ID_BYTES)
    no_nul = pc.invert(pc.match_substring(col, "\x00"))
    return pc.fill_null(pc.and_(short, no_nul), False).to_numpy(zero_copy_only=False)


def _advertiser_column(col):
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_integer(col.type) or pa.types.is_uint64(col.type):
        return np.zeros(len(col), np.int64), np.zeros(len(col), bool)
    values = pc.fill_null(col.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
    return values, values > 0


def _ts_column(col):
    """Epoch µs of integer epoch milliseconds, ISO-8601 text or a timestamp column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(col)
    if pa.types.is_integer(col.type) and not pa.types.is_uint64(col.type):
        ms = pc.fill_null(col.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
        return ms * 1000, (ms >= _EPOCH_MIN) & (ms < _EPOCH_MAX)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        text = pc.fill_null(col.cast(pa.string()), "")
        offsets = np.frombuffer(text.buffers()[1], np.int32, n + 1, text.offset * 4)
        data = text.buffers()[2]
        buf = np.frombuffer(data, np.uint8) if data is not None and data.size else np.zeros(1, np.uint8)
        starts = offsets[:-1].astype(np.int64)
        width = offsets[1:] - offsets[:-1]
        us, ok = iso_micros(text, buf, starts, width)
        digits = np.flatnonzero(~ok & (width >= 12) & (width <= 13))  # epoch ms as text, maybe
        if len(digits):
            ms, ms_ok = epoch_ms_text(buf, starts[digits], width[digits])
            us[digits[ms_ok]] = ms[ms_ok] * 1000
            ok[digits[ms_ok]] = True
        return us, ok
    return np.zeros(n, np.int64), np.zeros(n, bool)


def _classify_rows(result: BlockResult, batch, rows: np.ndarray, window: DayWindow) -> None:
    """The strict rules for the rows the bulk path left undecided (or found in the future)."""
    table = batch.take(rows).to_pylist()
    kept = []
    for row in table:
        record = classify_values({f: _cell_text(row.get(f)) for f in FIELDS}, window)
        outcome = outcome_of(record, window)
        if outcome == "rejected" and record.reason == "future_ts":
            result.rejects.append((_raw(row), "future_ts"))  # already counted by the bulk path
            continue
        if tally_strict(result, record, outcome, window, kept):
            result.rejects.append((_raw(row), record.reason))
    if kept:
        append_records(result, kept)


def _cell_text(value) -> Optional[str]:
    """A Parquet cell as the text a JSON token would give (bytes: UTF-8 or lone surrogates)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return json.dumps(value, default=str, separators=(",", ":"))


def _raw(row: Dict[str, object]) -> str:
    return json.dumps(row, default=_json_default, ensure_ascii=False)


def _json_default(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)
