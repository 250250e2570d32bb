"""The project's Presto query against a real Trino server (tests/support/trino.py).

The event logs are written as the pipeline finds them (gzipped JSON lines under dt=... folders,
with malformed lines) and read through the hive catalog: one text column per line, and a view
that parses it. Skipped when `make trino` has not been run or no Java 24+ is installed.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import date

import pytest
from spark_app.presto_query import PrestoEndpoint, connect, views_query

from spark_app.config import PrestoConfig

trino_support = pytest.importorskip("support.trino")

DAY = date(2026, 11, 19)


def _events():
    """(dt folder, line) pairs: views of the day (some landing late in the next day's folder),
    other event types, other days, and lines the view must turn into NULLs."""
    for i in range(60):
        yield "2026-11-19", {"event_id": f"e-{i}", "event_type": "product_view", "advertiser_id": 1 + i % 3,
                             "product_id": f"p-{i % 7}", "ts": f"2026-11-19T{i % 24:02d}:00:00Z"}
    yield "2026-11-19", {"event_id": "e-0", "event_type": "product_view", "advertiser_id": 1,
                         "product_id": "p-0", "ts": "2026-11-19T00:00:00Z"}  # a duplicate delivery
    yield "2026-11-20", {"event_id": "late-1", "event_type": "product_view", "advertiser_id": 2,
                         "product_id": "p-late", "ts": "2026-11-19T23:59:30+00:00"}
    yield "2026-11-20", {"event_id": "next-1", "event_type": "product_view", "advertiser_id": 2,
                         "product_id": "p-1", "ts": "2026-11-20T00:00:01Z"}
    yield "2026-11-19", {"event_id": "c-1", "event_type": "click", "advertiser_id": 1,
                         "product_id": "p-1", "ts": "2026-11-19T10:00:00Z"}
    yield "2026-11-19", {"event_id": "bad-adv", "event_type": "product_view", "advertiser_id": "x7",
                         "product_id": "p-1", "ts": "2026-11-19T10:00:00Z"}
    yield "2026-11-19", {"event_id": "bad-ts", "event_type": "product_view", "advertiser_id": 1,
                         "product_id": "p-1", "ts": "yesterday"}
    yield "2026-11-19", "{not json"
    yield "2026-11-19", ""


def _expected():
    keys = Counter()
    seen = set()
    for _, e in _events():
        if isinstance(e, dict) and e["event_type"] == "product_view" and isinstance(e["advertiser_id"], int) \
                and e["ts"].startswith("2026-11-19T") and e["event_id"] not in seen:
            seen.add(e["event_id"])
            keys[(e["advertiser_id"], e["product_id"])] += 1
    return keys


@pytest.fixture(scope="module")
def trino_events(tmp_path_factory):
    try:
        server = trino_support.LocalTrino()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    root = tmp_path_factory.mktemp("events")
    lines = {}
    for dt, event in _events():
        lines.setdefault(dt, []).append(event if isinstance(event, str) else json.dumps(event))
    for dt, day_lines in lines.items():
        folder = root / f"dt={dt}"
        folder.mkdir()
        half = len(day_lines) // 2
        for part, chunk in enumerate((day_lines[:half], day_lines[half:])):
            with gzip.open(folder / f"part-{part:05d}.json.gz", "wt") as f:
                f.write("".join(line + "\n" for line in chunk))
        (folder / "_SUCCESS").touch()
    with server:
        trino_support.create_event_tables(server, root)
        yield server


def _endpoint(server) -> PrestoEndpoint:
    return PrestoEndpoint(host="127.0.0.1", port=server.port, http_scheme="http", user="test", catalog="hive",
                          schema="default", verify=True, request_timeout=60)


def _rows(server, sql, params):
    conn = connect(_endpoint(server))
    try:
        cur = conn.cursor()
        cur.execute(sql, params)
        return cur.fetchall()
    finally:
        conn.close()


def test_day_views_from_gzipped_json_lines(trino_events):
    sql, params = views_query(PrestoConfig(host="127.0.0.1"), DAY)
    got = {(a, p): n for a, p, n in _rows(trino_events, sql, params)}
    assert got == dict(_expected())


def test_malformed_lines_become_nulls(trino_events):
    rows = trino_events.query(
        "SELECT count(*), count(event_id), count(advertiser_id), count(ts) "
        "FROM hive.default.events WHERE dt = '2026-11-19'"
    )
    total = sum(1 for dt, _ in _events() if dt == "2026-11-19")
    # every line is a row; "{not json" and the empty line have no fields, bad-adv no advertiser, bad-ts no ts
    assert rows == [[total, total - 2, total - 3, total - 3]]


def test_buckets_are_disjoint_and_cover(trino_events):
    cfg = PrestoConfig(host="127.0.0.1")
    buckets = []
    for bucket in range(4):
        sql, params = views_query(cfg, DAY, buckets=4)
        buckets.append({(a, p): n for a, p, n in _rows(trino_events, sql, params + [bucket])})
    merged = {}
    for rows in buckets:
        assert not merged.keys() & rows.keys()
        merged.update(rows)
    assert merged == dict(_expected())
    assert sum(1 for rows in buckets if rows) > 1


def test_https_with_password(tmp_path):
    try:
        server = trino_support.LocalTrino(tls=True, users={"alice": "s3cret"})
    except FileNotFoundError as e:
        pytest.skip(str(e))
    with server:
        assert server.query("SELECT current_user") == [["alice"]]
        from trino.auth import BasicAuthentication
        from trino.exceptions import HttpError

        with pytest.raises(HttpError, match="401"):
            server.connect(auth=BasicAuthentication("alice", "wrong")).cursor().execute("SELECT 1")
