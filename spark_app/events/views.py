"""Runs on executors: a bucket of events deduplicated by event_id and counted per key, in Arrow.

Logs are delivered at least once, so an `event_id` counts once; when its copies differ, the
smallest (ts, event_type, advertiser_id, product_id) wins (strings compared as UTF-8 bytes),
so the result is deterministic whatever the order the copies arrive in. Every copy of an
event is in the same bucket (`spark_app.events.buckets`), so a bucket is deduplicated alone.

Events whose 64-bit hash of event_id is unique in the bucket are distinct without further work;
only the rows sharing a hash (the copies, and the rare collision of two different ids) are
sorted and compared by their text. The counts per (advertiser_id, product_id) are partial (one bucket's);
Spark sums them across buckets. `count_views` (built on the driver) applies the same rule to
any events DataFrame.
"""

from __future__ import annotations

import json
from typing import Iterator, Optional

import numpy as np

from spark_app.events.buckets import chunked_hash, unpack

VIEW = "product_view"
PARTIAL_SCHEMA = "advertiser_id long, product_id string, view_count long, other_events long, report string"
_PARTIAL_NAMES = ["advertiser_id", "product_id", "view_count", "other_events", "report"]
_DEDUP_ORDER = [
    ("event_id", "ascending"),
    ("ts_us", "ascending"),
    ("event_type", "ascending"),
    ("advertiser_id", "ascending"),
    ("product_id", "ascending"),
]


def first_copies(events, hashes: Optional[np.ndarray] = None) -> np.ndarray:
    """A mask over `events` keeping one row per event_id: its smallest copy by the rule above.

    `hashes`: the rows' event_id hashes when already known (default: computed here)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = events.num_rows
    keep = np.ones(n, bool)
    if n < 2:
        return keep
    if hashes is None:
        hashes = chunked_hash(events.column("event_id"))
    order = np.argsort(hashes, kind="stable")
    same = hashes[order][1:] == hashes[order][:-1]
    shared = np.zeros(n, bool)
    shared[1:] |= same
    shared[:-1] |= same
    rows = order[shared]
    if not len(rows):
        return keep
    copies = events.select(list(f for f, _ in _DEDUP_ORDER)).take(pa.array(rows))
    i = copies.schema.get_field_index("event_type")
    copies = copies.set_column(i, "event_type", copies.column(i).cast(pa.string()))
    ranked = pc.sort_indices(copies, sort_keys=_DEDUP_ORDER).to_numpy()
    ids = copies.column("event_id").take(pa.array(ranked)).combine_chunks()
    first = np.ones(len(ranked), bool)
    first[1:] = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1)).to_numpy(zero_copy_only=False)
    keep[rows] = False
    keep[rows[ranked[first]]] = True
    return keep


def views_per_key(events):
    """(advertiser_id, product_id, view_count, other_events) of the distinct events of `events`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keep = first_copies(events)
    is_view = _is_view(events.column("event_type"))
    weights = pa.table(
        {
            "advertiser_id": events.column("advertiser_id"),
            "product_id": events.column("product_id"),
            "view_count": pa.array((keep & is_view).view(np.int8)),  # summed as int64
            "other_events": pa.array((keep & ~is_view).view(np.int8)),
        }
    )
    grouped = weights.group_by(["advertiser_id", "product_id"]).aggregate(
        [("view_count", "sum"), ("other_events", "sum")]
    )
    grouped = grouped.rename_columns(
        [
            {"view_count_sum": "view_count", "other_events_sum": "other_events"}.get(c, c)
            for c in grouped.schema.names
        ]
    )
    counted = pc.add(grouped.column("view_count"), grouped.column("other_events"))
    return grouped.filter(pc.greater(counted, 0)).select(
        ["advertiser_id", "product_id", "view_count", "other_events"]
    )


def _is_view(types) -> np.ndarray:
    """event_type == "product_view" per row, of plain or dictionary-encoded chunks."""
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = []
    for chunk in types.chunks:
        if pa.types.is_dictionary(chunk.type):
            in_dictionary = pc.equal(chunk.dictionary, VIEW).to_numpy(zero_copy_only=False)
            parts.append(
                in_dictionary[chunk.indices.to_numpy(zero_copy_only=False)]
                if len(in_dictionary)
                else np.zeros(len(chunk), bool)
            )
        else:
            parts.append(pc.fill_null(pc.equal(chunk, VIEW), False).to_numpy(zero_copy_only=False))
    return np.concatenate(parts) if parts else np.zeros(0, bool)


def count_buckets(batches) -> Iterator[object]:
    """The `mapInArrow` body of the reducers: payloads in, partial views per key out.

    Report rows of the file tasks pass through; each task adds one of its own with the events it
    received and how many were distinct, so the driver can check nothing was lost on the way.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    payloads = []
    for batch in batches:
        reports = batch.column("report")
        if reports.null_count < len(reports):
            yield _report_rows(reports.drop_null())
        payloads += [cell.as_buffer() for cell in batch.column("payload") if cell.is_valid]
    events = unpack(payloads)
    del payloads
    received = distinct = 0
    if events is not None and events.num_rows:
        per_key = views_per_key(events)
        received = events.num_rows
        del events
        distinct = sum(int(pc.sum(per_key.column(c)).as_py() or 0) for c in ("view_count", "other_events"))
        yield _partial_batch(per_key)
    yield _report_rows(pa.array([json.dumps({"path": "", "received": received, "distinct": distinct})]))


def count_views(events, partitions: int = 0):
    """Driver side: distinct events per key of any events DataFrame (EVENT_SCHEMA: event_id,
    event_type, ts, advertiser_id, product_id, none of them null, as the read gives them), by
    the same rule, in Arrow.

    Spark's hash partitioning by event_id puts every copy of an event in one partition, which
    is then deduplicated like a bucket. The day's read does this inside its own pass.
    """
    from pyspark.sql import functions as F

    n = partitions or events.sparkSession.sparkContext.defaultParallelism
    rows = events.select(
        "event_id", "event_type", F.unix_micros("ts").alias("ts_us"), "advertiser_id", "product_id"
    ).repartition(n, "event_id")
    partials = rows.mapInArrow(_count_event_rows, PARTIAL_SCHEMA).where(F.col("report").isNull())
    return partials.groupBy("advertiser_id", "product_id").agg(
        F.sum("view_count").alias("view_count"), F.sum("other_events").alias("other_events")
    )


def _count_event_rows(batches) -> Iterator[object]:
    import pyarrow as pa

    tables = [pa.Table.from_batches([b]) for b in batches if b.num_rows]
    if tables:
        yield _partial_batch(views_per_key(pa.concat_tables(tables)))


def _partial_batch(per_key):
    import pyarrow as pa

    n = per_key.num_rows
    return pa.RecordBatch.from_arrays(
        [c.combine_chunks() for c in per_key.columns] + [pa.nulls(n, pa.string())], _PARTIAL_NAMES
    )


def _report_rows(reports):
    import pyarrow as pa

    n = len(reports)
    types = [pa.int64(), pa.string(), pa.int64(), pa.int64()]
    arrays = [pa.nulls(n, t) for t in types] + [reports.cast(pa.string())]
    return pa.RecordBatch.from_arrays(arrays, _PARTIAL_NAMES)
