"""Runs on executors: one listed file per task, read once, checked, classified; events out as Arrow.

A task opens its file with `files.open_source` (local or S3), tells gzip, bzip2 and zstd from
text by the first bytes (`compression`), and reads it block by block (memory: a few blocks,
whatever the file's size). A compressed file is decompressed once into a spill file under the
task's local directory, which also verifies it to its end (each codec's checksums and stream
ends); only a file that decompressed to its end is parsed, so a truncated upload contributes no
line at all. Each file ends its output with one report row
(JSON: lines, blank lines, outcomes, reasons, or the problem that made it unreadable).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple

from spark_app.config import S3Config
from spark_app.events.buckets import BucketWriter
from spark_app.events.compression import COMPRESSED, content_kind, decompress
from spark_app.events.files import Unreadable, open_source
from spark_app.events.parse import DayWindow
from spark_app.events.vector import BlockResult, classify_json_block

SCAN_SCHEMA = (
    "event_id string, event_type string, ts_us long, advertiser_id long, product_id string, report string"
)
QUARANTINE_SCHEMA = "raw string, reason string, source_file string"
PAYLOAD_SCHEMA = "label int, payload binary, report string"
EVENT_COLUMNS = ("event_id", "event_type", "ts_us", "advertiser_id", "product_id")
BLOCK_BYTES = 8 << 20
_HEAD = 64 << 10


@dataclass(frozen=True)
class ScanSpec:
    fmt: str  # json | parquet
    window: DayWindow
    block_bytes: int = BLOCK_BYTES
    s3: Optional[S3Config] = None  # the endpoint `s3://` files are opened at (travels with the task)


def scan_partition(spec: ScanSpec):
    """The `mapInArrow` body: file names in, events and one report row per file out."""

    def run(batches):
        for batch in batches:
            for path in batch.column("path").to_pylist():
                yield from scan_file(path, spec)

    return run


def quarantine_partition(spec: ScanSpec):
    """The `mapInArrow` body of the second read: the rejected records of each file, raw."""

    def run(batches):
        import pyarrow as pa

        for batch in batches:
            for path in batch.column("path").to_pylist():
                rows: List[Tuple[str, str]] = []
                for result in classify_file(path, spec):
                    rows += [(_raw_text(raw), reason) for raw, reason in result.rejects]
                if rows:
                    raws, reasons = [r for r, _ in rows], [w for _, w in rows]
                    yield pa.RecordBatch.from_pydict(
                        {"raw": raws, "reason": reasons, "source_file": [path] * len(rows)}
                    )

    return run


def bucket_partition(spec: ScanSpec, labels: List[int]):
    """The `mapInArrow` body of the deduplicating read: file names in, bucket payloads out.

    Each in-day event goes to the bucket of its event_id (`spark_app.events.buckets`); a payload
    row is (label, Arrow IPC stream of the bucket's events); each file adds its report row.
    """

    def run(batches):
        writer = BucketWriter(labels)
        for batch in batches:
            for path in batch.column("path").to_pylist():
                for kind, item in file_outputs(path, spec):
                    if kind == "report":
                        yield _payload_batch([labels[0]], [None], [item])
                        continue
                    yield from _payload_rows(writer.add(item))
        yield from _payload_rows(writer.flush())

    return run


def scan_file(path: str, spec: ScanSpec):
    """Arrow batches of the file's in-day events, then its report row (JSON)."""
    import pyarrow as pa

    for kind, item in file_outputs(path, spec):
        if kind == "report":
            yield _report_batch(item)
        else:
            yield item.append_column("report", pa.nulls(item.num_rows, pa.string()))


def file_outputs(path: str, spec: ScanSpec):
    """("events", RecordBatch of EVENT_COLUMNS) per block with in-day events, then ("report", JSON)."""
    report: Dict[str, object] = {"path": path}
    try:
        for result in classify_file(path, spec, whole_rows=False):
            _merge(report, result.counts)
            batch = _event_batch(result.columns)
            if batch is not None:
                yield "events", batch
    except Unreadable as exc:
        report = {"path": path, "problem": str(exc)}
    yield "report", json.dumps(report)


def _payload_rows(pairs):
    labels, payloads = [], []
    for label, payload in pairs:
        labels.append(label)
        payloads.append(payload)
    if labels:
        yield _payload_batch(labels, payloads, [None] * len(labels))


def _payload_batch(labels, payloads, reports):
    import pyarrow as pa

    return pa.RecordBatch.from_arrays(
        [pa.array(labels, pa.int32()), pa.array(payloads, pa.binary()), pa.array(reports, pa.string())],
        ["label", "payload", "report"],
    )


def classify_file(path: str, spec: ScanSpec, whole_rows: bool = True) -> Iterator[BlockResult]:
    """The file's blocks, classified; raises Unreadable before any block of a broken file.

    `whole_rows=False`: the caller keeps counts and events, not the rejected rows' raw text, so
    a Parquet file's other columns are not read."""
    if spec.fmt == "parquet":
        from spark_app.events.tables import classify_parquet_file

        yield from classify_parquet_file(path, spec.window, spec.s3, whole_rows)
        return
    with _text_stream(path, spec.s3) as stream:
        for block in _blocks(stream, spec.block_bytes):
            yield classify_json_block(block, spec.window)


class _text_stream:
    """The file as a binary stream of its text: plain files as they are, compressed via a checked spill."""

    def __init__(self, path: str, s3: Optional[S3Config] = None):
        self.path = path
        self.s3 = s3
        self._spill = None

    def __enter__(self):
        try:
            with open_source(self.path, self.s3) as raw:
                head = raw.read(_HEAD)
                kind = content_kind(head)
                if kind in COMPRESSED:
                    self._spill = _spill_file()
                    decompress(kind, head, raw, self._spill)
                elif kind == "text":
                    self._spill = _copy_to_spill(head, raw)
                else:
                    raise Unreadable(f"{kind} content, not text lines, gzip, bzip2 or zstd")
                self._spill.seek(0)
                return self._spill
        except Unreadable:
            self._close()
            raise
        except (OSError, EOFError) as exc:
            self._close()
            raise Unreadable(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from exc
        except Exception as exc:  # noqa: BLE001 - S3 access denied, vanished object: the file is unreadable
            self._close()
            raise Unreadable(f"cannot open: {type(exc).__name__}: {exc}") from exc

    def __exit__(self, *exc_info):
        self._close()

    def _close(self):
        if self._spill is not None:
            self._spill.close()
            self._spill = None


def _spill_file():
    dirs = os.environ.get("SPARK_LOCAL_DIRS", "").split(",")
    return tempfile.TemporaryFile(prefix="events-", dir=dirs[0] if dirs[0] else None)


def _copy_to_spill(head: bytes, raw):
    """Plain text: local files are read in place; other streams are copied (one sequential read)."""
    name = getattr(raw, "name", None)
    if isinstance(name, str) and os.path.isfile(name):
        return open(name, "rb")
    spill = _spill_file()
    spill.write(head)
    shutil.copyfileobj(raw, spill, 1 << 20)
    return spill


def _blocks(stream, size: int) -> Iterator[bytes]:
    """Whole lines, about `size` bytes at a time; the last line may lack its newline."""
    carry = b""
    while True:
        chunk = stream.read(size)
        if not chunk:
            break
        data = carry + chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            carry = data
            continue
        carry = data[cut:]
        yield data[:cut]
    if carry:
        yield carry


def _merge(report: Dict[str, object], counts: Dict[str, int]) -> None:
    for key, value in counts.items():
        report[key] = int(report.get(key, 0)) + value


def _event_batch(columns: Dict[str, list]):
    import pyarrow as pa

    if not columns:
        return None
    arrays = [pa.concat_arrays(columns[name]) for name in EVENT_COLUMNS]
    if len(arrays[0]) == 0:
        return None
    return pa.RecordBatch.from_arrays(arrays, list(EVENT_COLUMNS))


def _report_batch(report: str):
    import pyarrow as pa

    types = [pa.string(), pa.string(), pa.int64(), pa.int64(), pa.string()]
    arrays = [pa.nulls(1, t) for t in types] + [pa.array([report], pa.string())]
    return pa.RecordBatch.from_arrays(arrays, list(EVENT_COLUMNS) + ["report"])


def _raw_text(raw) -> str:
    if isinstance(raw, str):
        return raw
    return raw.decode("utf-8", "backslashreplace")
