"""Runs on executors (and the driver, for the labels): events spread into buckets by event_id.

Deduplication needs every copy of an `event_id` in one place. The file tasks hash each in-day
event's `event_id` (64 bits, over all its bytes, `event_id_hash`) and put it in bucket
`hash % n`; a bucket's events travel through Spark's shuffle as a few Arrow IPC streams (one
binary cell each) instead of one Spark row per event, so the JVM moves bytes, not rows.

Placement: `repartition(n, "label")` sends a row to partition `pmod(murmur3(label), n)`
(Spark's HashPartitioning, seed 42). `spark_labels(n)` picks, for every bucket b, an integer
label that Spark places in partition b, so each reducer task receives exactly one bucket.
Correctness does not depend on it (a task holding two buckets deduplicates both), only the
balance of the reducers' memory does.
"""

from __future__ import annotations

from typing import Iterator, List

import numpy as np

FLUSH_EVENTS = 64 * 1024  # events a task buffers before it emits its buckets (~3 MB packed)

_M64 = np.uint64(0x9E3779B97F4A7C15)
_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)


def event_id_hash(ids) -> np.ndarray:
    """A 64-bit hash of every string of `ids` (a pyarrow StringArray), over all of its bytes.

    Eight bytes at a time (little-endian words read at any offset), each word mixed in with a
    multiply-xorshift, the length last, then SplitMix64's finalizer. The same text gives the
    same hash on every machine and Python version.
    """
    n = len(ids)
    if n == 0:
        return np.zeros(0, np.uint64)
    offsets = np.frombuffer(ids.buffers()[1], np.int32, n + 1, ids.offset * 4).astype(np.int64)
    data = ids.buffers()[2]
    raw = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    padded = np.zeros(len(raw) + 8, np.uint8)
    padded[: len(raw)] = raw
    words = np.lib.stride_tricks.as_strided(padded, shape=(len(padded) - 7, 8), strides=(1, 1))
    starts, lengths = offsets[:-1], offsets[1:] - offsets[:-1]
    h = np.zeros(n, np.uint64)
    for k in range(0, int(lengths.max()), 8):
        left = lengths - k
        rows = np.flatnonzero(left > 0)
        chunk = words[starts[rows] + k]
        word = np.ascontiguousarray(chunk).view("<u8").ravel() & _MASKS[np.minimum(left[rows], 8)]
        mixed = (h[rows] ^ word) * _M64
        h[rows] = mixed ^ (mixed >> np.uint64(29))
    return _finalize(h ^ lengths.astype(np.uint64))


def _finalize(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def chunked_hash(ids) -> np.ndarray:
    """event_id_hash of a ChunkedArray (or Array) of strings."""
    chunks = getattr(ids, "chunks", [ids])
    return np.concatenate([event_id_hash(c) for c in chunks]) if chunks else np.zeros(0, np.uint64)


def bucket_of(hashes: np.ndarray, n: int) -> np.ndarray:
    return (hashes % np.uint64(n)).astype(np.int64)


# --------------------------------------------------------------------------- placement


def spark_labels(n: int) -> List[int]:
    """For each bucket b < n, an int that `repartition(n, label)` sends to partition b."""
    labels: List[int] = [-1] * n
    missing, k = n, 0
    while missing:
        b = murmur3_int(k) % n
        if labels[b] < 0:
            labels[b] = k
            missing -= 1
        k += 1
    return labels


def murmur3_int(value: int, seed: int = 42) -> int:
    """Spark's `hash()` of an IntegerType value (Murmur3 x86_32, hashInt), as a signed int."""

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & 0xFFFFFFFF

    k1 = (value & 0xFFFFFFFF) * 0xCC9E2D51 & 0xFFFFFFFF
    k1 = rotl(k1, 15) * 0x1B873593 & 0xFFFFFFFF
    h1 = rotl(seed ^ k1, 13)
    h1 = (h1 * 5 + 0xE6546B64) & 0xFFFFFFFF
    h1 ^= 4
    h1 ^= h1 >> 16
    h1 = h1 * 0x85EBCA6B & 0xFFFFFFFF
    h1 ^= h1 >> 13
    h1 = h1 * 0xC2B2AE35 & 0xFFFFFFFF
    h1 ^= h1 >> 16
    return h1 - (1 << 32) if h1 & 0x80000000 else h1


# --------------------------------------------------------------------------- packing


class BucketWriter:
    """Buffers a task's in-day events and emits them per bucket as Arrow IPC streams.

    `add(batch)` takes a RecordBatch of the five event columns; every FLUSH_EVENTS buffered events (and at
    `flush()`) it yields `(label, payload)` pairs, one per non-empty bucket, so a task's memory
    stays bounded whatever the size of its files.
    """

    def __init__(self, labels: List[int], flush_events: int = FLUSH_EVENTS):
        self.labels = labels
        self.flush_events = max(flush_events, 64 * len(labels))
        self._batches: List[object] = []
        self._hashes: List[np.ndarray] = []  # event_id_hash of each buffered batch
        self._buffered = 0

    def add(self, batch) -> Iterator[tuple]:
        self._batches.append(batch)
        self._hashes.append(event_id_hash(batch.column("event_id")))
        self._buffered += batch.num_rows
        if self._buffered >= self.flush_events:
            yield from self.flush()

    def flush(self) -> Iterator[tuple]:
        import pyarrow as pa

        if not self._buffered:
            return
        table = pa.Table.from_batches(self._batches)
        buckets = bucket_of(np.concatenate(self._hashes), len(self.labels))
        self._batches, self._hashes, self._buffered = [], [], 0
        n = len(self.labels)
        small = buckets.astype(np.uint16) if n <= 1 << 16 else buckets  # 16 bits: NumPy sorts by radix
        order = np.argsort(small, kind="stable")
        sorted_table = _small_types(table.take(pa.array(order)).combine_chunks())
        bounds = np.searchsorted(buckets[order], np.arange(n + 1))
        for b in range(n):
            lo, hi = int(bounds[b]), int(bounds[b + 1])
            if hi > lo:
                yield self.labels[b], pack(sorted_table.slice(lo, hi - lo))
        del table, sorted_table
        pa.default_memory_pool().release_unused()  # keeps the worker's size flat over many flushes


def _small_types(table):
    """event_type as a dictionary (a handful of values): a byte per event instead of its text."""
    import pyarrow.compute as pc

    i = table.schema.get_field_index("event_type")
    return table.set_column(i, "event_type", pc.dictionary_encode(table.column(i)))


def pack(table) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def unpack(payloads: list):
    """The events of several payloads (bytes or Arrow buffers) as one table (None when none)."""
    import pyarrow as pa

    tables = [pa.ipc.open_stream(p).read_all() for p in payloads]
    return pa.concat_tables(tables) if tables else None
