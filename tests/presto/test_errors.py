"""Every way the Presto source can fail ends in one clear error, raised before anything is written.

The failures come from the session's real Trino server (`trino` fixture): a missing table, a
missing column, columns of the wrong type, a bucket whose rows break a cast on the executor;
none of them is retried. A port where nothing listens is retried, then given up.
(A server killed between pages, and restarted: test_retry.py.)
"""

from __future__ import annotations

import json
from datetime import date

import pytest

from spark_app.config import PrestoConfig
from spark_app.errors import ConfigError, SourceError
from spark_app.local.servers import free_port
from spark_app.presto.read import read_presto_views
from tests.support.trino import load_event_day

DAY = date(2026, 11, 19)
MODES = ["driver", "parallel"]


def _line(event_id, advertiser_id, product_id):
    return json.dumps({"event_id": event_id, "event_type": "product_view", "ts": "2026-11-19T08:00:00Z",
                       "advertiser_id": advertiser_id, "product_id": product_id})


@pytest.fixture(scope="module")
def error_tables(trino, tmp_path_factory):
    """errors_day (two keys), and views over it that lack a column or have the wrong type."""
    lines = {"2026-11-19": [_line("e1", 1, "p1"), _line("e2", 2, "p2")]}
    load_event_day(trino, tmp_path_factory.mktemp("errors_day"), "errors_day", lines)
    trino.query("CREATE OR REPLACE VIEW errors_no_product SECURITY INVOKER AS "
                "SELECT event_id, event_type, ts, advertiser_id, dt FROM errors_day")
    trino.query("CREATE OR REPLACE VIEW errors_text_ids SECURITY INVOKER AS "
                "SELECT event_id, event_type, ts, CAST(advertiser_id AS varchar) AS advertiser_id, "
                "product_id, dt FROM errors_day")
    return trino


def cfg_for(port: int, **overrides) -> PrestoConfig:
    settings = dict(host="127.0.0.1", port=port, http_scheme="http", page_size=10, buckets=2,
                    table="errors_day")
    settings.update(overrides)
    return PrestoConfig(**settings)


@pytest.mark.parametrize("mode", MODES)
def test_an_unreachable_server_is_retried_then_given_up_naming_host_port_and_cause(spark, retries, mode):
    port = free_port()  # nothing listens there: every attempt is refused
    cfg = cfg_for(port, mode=mode, retry_attempts=3, retry_backoff_seconds=0.01)
    with pytest.raises(SourceError) as err:
        read_presto_views(spark, cfg, DAY)
    message = str(err.value)
    assert f"127.0.0.1:{port}" in message
    assert "unreachable" in message and "wrong host/port" in message
    assert message.endswith("gave up after 3 attempt(s) (CONNECTION_REFUSED)")
    assert err.value.exit_code == 7
    assert retries() == ["CONNECTION_REFUSED", "CONNECTION_REFUSED"]


@pytest.mark.parametrize("mode", MODES)
def test_a_missing_table_carries_trinos_message_and_exit_code_7_without_a_retry(
    spark, error_tables, retries, mode
):
    with pytest.raises(SourceError) as err:
        read_presto_views(spark, cfg_for(error_tables.port, mode=mode, table="no_such_table"), DAY)
    message = str(err.value)
    assert "query failed (TABLE_NOT_FOUND, USER_ERROR)" in message
    assert "hive.default.no_such_table" in message
    assert "gave up" not in message and retries() == []
    assert err.value.exit_code == 7


@pytest.mark.parametrize("mode", MODES)
def test_a_missing_column_carries_trinos_message(spark, error_tables, mode):
    with pytest.raises(SourceError) as err:
        read_presto_views(spark, cfg_for(error_tables.port, mode=mode, table="errors_no_product"), DAY)
    message = str(err.value)
    assert "query failed (COLUMN_NOT_FOUND, USER_ERROR)" in message
    assert "'product_id' cannot be resolved" in message


@pytest.mark.parametrize("mode", MODES)
def test_result_of_the_wrong_types_is_refused_without_a_retry(spark, error_tables, retries, mode):
    with pytest.raises(SourceError) as err:
        read_presto_views(spark, cfg_for(error_tables.port, mode=mode, table="errors_text_ids"), DAY)
    assert "advertiser_id is varchar (expected one of ['bigint'" in str(err.value)
    assert retries() == []


def test_a_bucket_failing_on_an_executor_becomes_a_source_error(spark, trino, tmp_path):
    """The driver's LIMIT 0 probe passes (Trino plans it without reading a row); the bucket
    queries, run from the executors, read a row whose advertiser id breaks a strict cast."""
    lines = {"2026-11-19": [_line("e1", 1, "p1"), _line("e2", "x7", "p2")]}
    load_event_day(trino, tmp_path / "events", "errors_strict_src", lines)
    trino.query("CREATE OR REPLACE VIEW errors_strict SECURITY INVOKER AS SELECT "
                "json_extract_scalar(line, '$.event_id') AS event_id, 'product_view' AS event_type, "
                "TIMESTAMP '2026-11-19 08:00:00' AS ts, "
                "CAST(json_extract_scalar(line, '$.advertiser_id') AS bigint) AS advertiser_id, "
                "json_extract_scalar(line, '$.product_id') AS product_id, dt FROM raw_errors_strict_src")
    with pytest.raises(SourceError) as err:
        read_presto_views(spark, cfg_for(trino.port, mode="parallel", table="errors_strict"), DAY)
    message = str(err.value)
    assert "query failed (INVALID_CAST_ARGUMENT, USER_ERROR)" in message
    assert "'x7'" in message
    assert "bucket" in message and "of 2" in message


def test_identifiers_from_config_must_be_plain(spark):
    with pytest.raises(ConfigError, match="presto.table: not a plain identifier"):
        read_presto_views(spark, cfg_for(free_port(), table='events" --'), DAY)


def test_a_missing_password_variable_is_a_config_error(spark, monkeypatch):
    monkeypatch.delenv("PRESTO_UNSET_PASSWORD", raising=False)
    cfg = cfg_for(free_port(), http_scheme="https", password_env="PRESTO_UNSET_PASSWORD")
    with pytest.raises(ConfigError, match="PRESTO_UNSET_PASSWORD is not set"):
        read_presto_views(spark, cfg, DAY)


@pytest.mark.parametrize("setting, message", [
    (dict(retry_attempts=0), "presto.retry_attempts: must be at least 1"),
    (dict(retry_backoff_seconds=-1.0), "presto.retry_backoff_seconds: must not be negative"),
    (dict(retry_backoff_seconds=5.0, retry_max_backoff_seconds=1.0), "presto.retry_max_backoff_seconds"),
])
def test_retry_settings_out_of_range_are_a_config_error(spark, setting, message):
    with pytest.raises(ConfigError, match=message):
        read_presto_views(spark, cfg_for(free_port(), **setting), DAY)
