"""Transient Presto answers are retried, whole queries only, before a row has been handed over.

The answers a busy cluster gives (NO_NODES_AVAILABLE while workers restart, HTTP 502/503/504 from a load
balancer) cannot be had from one local Trino on demand; the stand-in server gives them
(tests/support/presto_server.py). Lasting errors that are not retried: test_errors.py.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
import trino.constants

from spark_app.config import PrestoConfig
from spark_app.errors import SourceError
from spark_app.presto.read import read_presto_views
from tests.support.presto_server import PrestoTestServer

DAY = date(2026, 11, 19)
DAY_ROWS = [(1, "p1", 1), (2, "p2", 1)]


def cfg_for(port: int, **overrides) -> PrestoConfig:
    settings = dict(host="127.0.0.1", port=port, http_scheme="http", page_size=100, buckets=2)
    settings.update(overrides)
    return PrestoConfig(**settings)


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
