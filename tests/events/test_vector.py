"""The bulk path decides every line exactly as the strict parser does, line by line."""

from __future__ import annotations

import gzip
from collections import Counter
from datetime import date, datetime, timezone

import pyarrow as pa

from spark_app.events.parse import DayWindow, classify_line, is_blank, outcome_of
from spark_app.events.vector import FAST_LINE, classify_json_block

WINDOW = DayWindow.of(
    date(2024, 3, 10), datetime(2024, 3, 12, tzinfo=timezone.utc), 60, ("product_view", "search")
)

EDGE_LINES = [
    b'{"event_id": "a", "event_type": "product_view", "ts": "2024-03-10T10:00:00.5-05:30", '
    b'"advertiser_id": 7, "product_id": "x y"}',
    b'{"event_id":"b","event_type":"product_view","ts":"2024-02-30T10:00:00Z","advertiser_id":7,"product_id":"p"}',
    b'{"event_id":"c","event_type":"search","ts":"2024-03-10T23:59:59.999999999Z","advertiser_id":7,'
    b'"product_id":"p","x":null}',
    b'{"event_id":"d","event_type":"product_view","ts":1710072000000,"advertiser_id":7,"product_id":"p",'
    b'"event_id":"z"}',
    b'{"event_id":"e","event_type":"product_view","ts":"2024-03-10T10:00:00+19:00","advertiser_id":7,"product_id":"p"}',
    b'{"event_id":"f","event_type":"x","ts":"2024-03-10 10:00:00","advertiser_id":922337203685477580,'
    b'"product_id":"p"}',
    b'{"event_id":"g","event_type":"product_view","ts":"2024-03-13T10:00:00Z","advertiser_id":7,"product_id":"p"}',
    b'{"event_id":"h","event_type":"product_view","ts":"2024-03-10T10:00:00.Z","advertiser_id":7,"product_id":"p"}',
    b'{"event_id":"i","event_type":"product_view","ts":"2024-03-09T23:59:59.999Z","advertiser_id":7,"product_id":"p"}',
    b'{"event_id":"j","event_type":"product_view","ts":"2024-03-10T00:30:00+01:00","advertiser_id":7,"product_id":"p"}',
    b'{"event_id":"k","event_type":"product_view","ts":99999999999,"advertiser_id":7,"product_id":"p"}',
    b'{"event_id":"l","event_type":"product_view","ts":1710072000000,"advertiser_id":07,"product_id":"p"}',
    b'{"event_id":"m","event_type":"product_view","ts":1710072000000,"advertiser_id":7,"product_id":"\xc3\xa9t\xc3\xa9"}',
    b'{"event_id":"n","event_type":"product_view","ts":1710072000000,"advertiser_id":7,"product_id":"p","u":NaN}',
    b'{"event_id":"o","event_type":"product_view","ts":"1710072000000","advertiser_id":"7","product_id":"p"}\r',
    b'{"event_id":"q","event_type":"product_view","ts":"0000-03-10T10:00:00Z","advertiser_id":7,"product_id":"p"}',
    b'{"event_id":"r","event_type":"product_view","ts":"2024-03-10T10:00:00.1234567Z","advertiser_id":7,"product_id":"p"}',
    b'{"event_id":"s","event_type":"product_view","ts":"2024-03-10T10:00:00.1234567890Z","advertiser_id":7,"product_id":"p"}',
    b"   \t",
    b"",
    b"[]",
]


def strict(data: bytes):
    counts, events = Counter(), []
    for line in data.split(b"\n")[:-1]:
        if is_blank(line):
            counts["blank"] += 1
            continue
        record = classify_line(line, WINDOW)
        outcome = outcome_of(record, WINDOW)
        counts[outcome if outcome != "rejected" else f"rejected_{record.reason}"] += 1
        if outcome == "in_day":
            counts["unknown_type"] += record.event_type not in WINDOW.known_types
            events.append(
                (record.event_id, record.event_type, record.ts_us, record.advertiser_id, record.product_id)
            )
    return +counts, sorted(events)


def bulk(data: bytes):
    result = classify_json_block(data, WINDOW)
    cols = {k: pa.concat_arrays(v).to_pylist() for k, v in result.columns.items()}
    events = zip(
        cols["event_id"], cols["event_type"], cols["ts_us"], cols["advertiser_id"], cols["product_id"]
    )
    counts = Counter({k: v for k, v in result.counts.items() if k != "lines"})
    return +counts, sorted(events)


def test_the_bulk_path_agrees_with_the_strict_parser_on_a_generated_day_and_edge_cases(tmp_path):
    from spark_app.local.sample_data import SampleSpec, write_day

    sample = write_day(tmp_path, date(2024, 3, 10), SampleSpec(events=5000), files=1)
    data = b"".join(gzip.decompress(p.read_bytes()) for p in sample.files if p.name.endswith(".gz"))
    data += b"\n".join(EDGE_LINES) + b"\n"

    assert bulk(data) == strict(data)
    assert bulk(data)[0]["in_day"] > 5000


def test_the_bulk_path_takes_the_generated_lines_and_leaves_escapes_to_the_strict_parser():
    import pyarrow.compute as pc

    lines = pa.array(
        [
            '{"event_id":"1","event_type":"t","ts":1710072000000,"advertiser_id":7,"product_id":"p","user_id":3}\n',
            '{"event_id":"1","event_type":"t","ts":1710072000000,"advertiser_id":7,"product_id":"p\\u00e9"}\n',
            '{"event_type":"t","event_id":"1","ts":1710072000000,"advertiser_id":7,"product_id":"p"}\n',
        ]
    )
    assert pc.match_substring_regex(lines, FAST_LINE).to_pylist() == [True, False, False]


def test_the_bulk_path_refuses_a_line_that_repeats_one_of_the_five_fields_after_them():
    import pyarrow.compute as pc

    head = '{"event_id":"1","event_type":"t","ts":1710072000000,"advertiser_id":7,"product_id":"p"'
    tails = [',"ts":5}', ',"product_id":"q"}', ',"event":1,"tss":2,"product_idx":3,"":4}', ',"user_id":1}']
    lines = pa.array([head + tail + "\n" for tail in tails])
    assert pc.match_substring_regex(lines, FAST_LINE).to_pylist() == [False, False, True, True]
