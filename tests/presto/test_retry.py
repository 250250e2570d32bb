"""Transient Presto answers are retried, whole queries only, before a row has been handed over.

The coordinator going away is the session's real Trino server (`trino` fixture), killed
(SIGKILL) and started again on the same port with its tables: no second JVM. The answers a
busy cluster gives (NO_NODES_AVAILABLE while workers restart, HTTP 502/503/504 from a load
balancer) cannot be had from one local Trino on demand; the stand-in server gives them
(tests/support/presto_server.py). Lasting errors that are not retried: test_errors.py.
"""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pyarrow as pa
import pytest
import trino.constants

from spark_app.config import PrestoConfig
from spark_app.errors import SourceError
from spark_app.presto.query import endpoint_from_config, views_query
from spark_app.presto.read import fetch_buckets, read_presto_views
from tests.support.presto_server import PrestoTestServer
from tests.support.trino import load_event_day

DAY = date(2026, 11, 19)
DAY_ROWS = [(1, "p1", 1), (2, "p2", 1)]
STARTING_ANSWERS = {"CONNECTION_REFUSED", "HTTP 503", "SERVER_STARTING_UP", "NO_NODES_AVAILABLE"}


def _line(event_id, advertiser_id, product_id):
    return json.dumps({"event_id": event_id, "event_type": "product_view", "ts": "2026-11-19T08:00:00Z",
                       "advertiser_id": advertiser_id, "product_id": product_id})


def cfg_for(port: int, **overrides) -> PrestoConfig:
    settings = dict(host="127.0.0.1", port=port, http_scheme="http", page_size=100, buckets=2)
    settings.update(overrides)
    return PrestoConfig(**settings)


class _RetryWatch(logging.Handler):
    """Sets `all_waiting` once every one of `whats` has logged a retry."""

    def __init__(self, whats):
        super().__init__(logging.WARNING)
        self.waiting = {what: False for what in whats}
        self.all_waiting = threading.Event()

    def emit(self, record):
        message = record.getMessage()
        for what in self.waiting:
            if what in message and "retrying in" in message:
                self.waiting[what] = True
        if all(self.waiting.values()):
            self.all_waiting.set()


def test_each_transient_answer_is_retried_and_logged_by_name(spark, tmp_path, retries):
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in [
        {"event_id": "e1", "event_type": "product_view", "ts": "2026-11-19 08:00:00", "advertiser_id": 1,
         "product_id": "p1", "dt": "2026-11-19"},
        {"event_id": "e2", "event_type": "product_view", "ts": "2026-11-19 09:00:00", "advertiser_id": 2,
         "product_id": "p2", "dt": "2026-11-19"},
    ]))
    server = PrestoTestServer().start()
    try:
        server.load_json_lines(str(events))
        tries = trino.constants.DEFAULT_MAX_ATTEMPTS  # the trino client's own tries of an HTTP 5xx
        server.transient_answers = (
            [503] * tries + ["NO_NODES_AVAILABLE", "SERVER_STARTING_UP"] + [502] * tries + [504] * tries
        )
        cfg = cfg_for(server.port, mode="driver", retry_attempts=6, retry_backoff_seconds=0.01)

        rows = sorted(tuple(r) for r in read_presto_views(spark, cfg, DAY).collect())

        assert rows == DAY_ROWS
        assert retries() == ["HTTP 503", "NO_NODES_AVAILABLE", "SERVER_STARTING_UP", "HTTP 502", "HTTP 504"]
        assert len([s for s in server.statements if "count(DISTINCT" in s.sql]) == 1  # ran once, to the end
    finally:
        server.stop()


def test_transient_answers_past_the_last_attempt_give_up_with_a_source_error(spark, retries):
    server = PrestoTestServer().start()
    try:
        server.transient_answers = ["NO_NODES_AVAILABLE"] * 3
        cfg = cfg_for(server.port, mode="parallel", retry_attempts=3, retry_backoff_seconds=0.01)
        with pytest.raises(SourceError) as err:
            read_presto_views(spark, cfg, DAY)
    finally:
        server.stop()
    message = str(err.value)
    assert "query failed (NO_NODES_AVAILABLE, INTERNAL_ERROR)" in message
    assert message.endswith("gave up after 3 attempt(s) (NO_NODES_AVAILABLE)")
    assert err.value.exit_code == 7
    assert retries() == ["NO_NODES_AVAILABLE", "NO_NODES_AVAILABLE"]


def test_a_restarting_coordinator_fails_a_read_half_done_and_is_waited_out_before_the_first_row(
    spark, trino, tmp_path, retries
):
    """1. The server killed after the driver staged the first page of a result too large for one
    HTTP response: the read fails and stages nothing, and is not retried (rows had been handed
    over; a second run would hand them over again). 2. While it is down, a driver-mode read and
    a bucket query of parallel mode (the function the executors run, called here) are refused,
    retried, and, once the server is started again, return the day."""
    day = {DAY.isoformat(): [_line("e1", 1, "p1"), _line("e2", 2, "p2")]}
    load_event_day(trino, tmp_path / "day", "retry_day", day)
    trino.query(
        "CREATE TABLE IF NOT EXISTS hive.default.retry_big "
        "WITH (format = 'ORC', partitioned_by = ARRAY['dt']) AS "
        "SELECT 'e' || CAST(n AS varchar) AS event_id, 'product_view' AS event_type, "
        "TIMESTAMP '2026-11-19 12:00:00.000' AS ts, CAST(n % 100 + 1 AS bigint) AS advertiser_id, "
        "'p-' || CAST(n AS varchar) || rpad('', 200, 'x') AS product_id, '2026-11-19' AS dt "
        "FROM (SELECT i * 1000 + j AS n FROM UNNEST(sequence(0, 99)) AS a(i) "
        "CROSS JOIN UNNEST(sequence(0, 999)) AS b(j))"
    )
    port = trino.port
    try:
        # 1. killed between two pages
        staging = tmp_path / "staging"
        big = cfg_for(port, table="retry_big", staging_dir=str(staging), request_timeout_seconds=10)

        def kill_after_the_first_page(number, rows):
            if number == 1:
                trino.kill()

        with pytest.raises(SourceError) as err:
            read_presto_views(spark, big, DAY, on_page=kill_after_the_first_page)
        assert trino.process is None, "the result fitted one page: the server was never killed"
        assert f"127.0.0.1:{port}" in str(err.value) and "unreachable" in str(err.value)
        assert not list(staging.rglob("*.parquet"))  # the staged page is discarded
        assert retries() == []

        # 2. refused while down, then waited out
        waiting = cfg_for(port, table="retry_day", retry_attempts=400, retry_backoff_seconds=0.1,
                          retry_max_backoff_seconds=0.5)
        sql, params = views_query(waiting, DAY, buckets=2)
        ep = endpoint_from_config(waiting)
        bucket_ids = pa.RecordBatch.from_arrays([pa.array([0, 1], pa.int64())], names=["id"])
        watch = _RetryWatch(["for 2026-11-19", "bucket 0 of 2"])
        logging.getLogger("spark_app.presto.retry").addHandler(watch)
        with ThreadPoolExecutor(2) as pool:
            driver = pool.submit(lambda: read_presto_views(spark, waiting, DAY).collect())
            executor = pool.submit(lambda: list(fetch_buckets(ep, sql, params, 2, 100, iter([bucket_ids]))))
            while not watch.all_waiting.wait(0.1):
                assert not (driver.done() or executor.done()), (driver.exception(), executor.exception())
            trino.start()  # from this thread: the JVM is bound to the life of the thread that starts it
            driver_rows = sorted(tuple(r) for r in driver.result())
            bucket_rows = sorted(tuple(r.values()) for b in executor.result() for r in b.to_pylist())
        logging.getLogger("spark_app.presto.retry").removeHandler(watch)

        assert driver_rows == DAY_ROWS and bucket_rows == DAY_ROWS
        assert retries()[0] == "CONNECTION_REFUSED"  # then whatever a starting server answers:
        assert set(retries()) <= STARTING_ANSWERS
    finally:
        trino.start()  # no-op when running: later tests get their server back either way
        trino.query("DROP TABLE IF EXISTS hive.default.retry_big")
