"""Buckets by event_id: every copy of an event in one bucket, buckets of even size, one per reducer."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pyspark.sql import functions as F

from spark_app.events.buckets import (
    BucketWriter,
    bucket_of,
    chunked_hash,
    event_id_hash,
    murmur3_int,
    spark_labels,
    unpack,
)

PINNED_E1, PINNED_HEX, PINNED_EMPTY = 16880141819917452672, 4320485002813986954, 0


def strings(values):
    return pa.array(values, pa.string())


def test_the_hash_depends_on_the_text_alone_not_on_where_it_sits_in_memory():
    ids = ["", "a", "event-0001", "ü-ñ", "x" * 1000, "4d50b2050024eb5e"]
    alone = [int(event_id_hash(strings([i]))[0]) for i in ids]
    together = event_id_hash(strings(ids)).tolist()
    sliced = event_id_hash(strings(["pad"] + ids).slice(1)).tolist()
    chunked = chunked_hash(pa.chunked_array([strings(ids[:2]), strings(ids[2:])])).tolist()
    assert alone == together == sliced == chunked
    assert len(set(alone)) == len(ids)


def test_the_hash_is_pinned_so_buckets_do_not_move_between_machines_or_releases():
    got = event_id_hash(strings(["e1", "4d50b2050024eb5e", ""])).tolist()
    assert got == [PINNED_E1, PINNED_HEX, PINNED_EMPTY]


def test_every_byte_of_the_id_matters_even_in_the_middle():
    # ids that differ in one middle character only, and in their length only
    ids = [f"2024-03-10T12:00:00Z-{i:06d}-web-01.example.com" for i in range(4000)]
    ids += ["a" * n for n in range(1, 200)]
    assert len(set(event_id_hash(strings(ids)).tolist())) == len(ids)


def test_buckets_are_even_for_sequential_ids():
    counts = np.bincount(bucket_of(event_id_hash(strings([f"evt-{i}" for i in range(160_000)])), 16))
    assert counts.min() > 9_500 and counts.max() < 10_500  # 10,000 each +-5%


def test_spark_hash_of_an_int_is_murmur3_as_computed_here(spark):
    rows = (
        spark.range(-50, 2000).select(F.col("id").cast("int").alias("k")).select("k", F.hash("k").alias("h"))
    )
    assert all(murmur3_int(r.k) == r.h for r in rows.collect())


def test_each_label_lands_in_the_partition_of_its_bucket(spark):
    n = 7
    labels = spark_labels(n)
    frame = spark.createDataFrame([(label,) for label in labels for _ in range(3)], "label int")
    placed = frame.repartition(n, "label").select("label", F.spark_partition_id().alias("p")).collect()
    assert {(r.label, r.p) for r in placed} == {(label, b) for b, label in enumerate(labels)}


def test_the_writer_packs_each_event_into_the_bucket_of_its_id_and_loses_none():
    n, labels = 4, spark_labels(4)
    writer = BucketWriter(labels, flush_events=1000)
    ids = [f"e{i % 3000}" for i in range(5000)]  # 2,000 ids seen twice
    batch = pa.RecordBatch.from_pydict(
        {
            "event_id": strings(ids),
            "event_type": strings(["product_view"] * 5000),
            "ts_us": pa.array(range(5000), pa.int64()),
            "advertiser_id": pa.array([1] * 5000, pa.int64()),
            "product_id": strings([f"p{i % 7}" for i in range(5000)]),
        }
    )
    pairs = [pair for half in (batch.slice(0, 2500), batch.slice(2500)) for pair in writer.add(half)]
    pairs += list(writer.flush())
    by_label = {}
    for label, payload in pairs:
        by_label.setdefault(label, []).append(payload)
    seen = 0
    for label, payloads in by_label.items():
        events = unpack(payloads)
        seen += events.num_rows
        want = labels.index(label)
        assert set(bucket_of(chunked_hash(events.column("event_id")), n).tolist()) == {want}
    assert seen == 5000
    assert len(pairs) > n  # flushed more than once: memory bounded by flush_events, not the task
