"""Every way the Presto source can fail ends in one clear error, raised before anything is written."""

from __future__ import annotations

import json
from datetime import date

import pytest

from spark_app.config import PrestoConfig
from spark_app.errors import ConfigError, SourceError
from spark_app.local.servers import free_port
from spark_app.presto.read import read_presto_views
from tests.support.presto_server import EVENT_COLUMNS, PrestoTestServer

DAY = date(2026, 11, 19)
MODES = ["driver", "parallel"]


@pytest.fixture(scope="module")
def events_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("presto_errors") / "events.jsonl"
    rows = [
        {"event_id": "e1", "event_type": "product_view", "ts": "2026-11-19 08:00:00",
         "advertiser_id": 1, "product_id": "p1", "dt": "2026-11-19"},
        {"event_id": "e2", "event_type": "product_view", "ts": "2026-11-19 09:00:00",
         "advertiser_id": 2, "product_id": "p2", "dt": "2026-11-19"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module")
def server(events_path):
    srv = PrestoTestServer(page_size=5).start()
    srv.load_json_lines(events_path)
    text_ids = {**EVENT_COLUMNS, "advertiser_id": "VARCHAR"}
    srv.load_json_lines(events_path, table="events_text_ids", columns=text_ids)
    yield srv
    srv.stop()


def cfg_for(port: int, **overrides) -> PrestoConfig:
    settings = dict(host="127.0.0.1", port=port, http_scheme="http", page_size=10, buckets=2)
    settings.update(overrides)
    return PrestoConfig(**settings)


@pytest.mark.parametrize("mode", MODES)
def test_unreachable_server_names_host_port_and_probable_cause(spark, mode):
    port = free_port()  # nothing listens there
    with pytest.raises(SourceError) as err:
        read_presto_views(spark, cfg_for(port, mode=mode), DAY)
    message = str(err.value)
    assert f"127.0.0.1:{port}" in message
    assert "unreachable" in message and "wrong host/port" in message


@pytest.mark.parametrize("mode", MODES)
def test_failed_query_carries_prestos_message(spark, server, mode):
    with pytest.raises(SourceError) as err:
        read_presto_views(spark, cfg_for(server.port, mode=mode, table="no_such_table"), DAY)
    message = str(err.value)
    assert "query failed (TABLE_NOT_FOUND, USER_ERROR)" in message
    assert "no_such_table" in message


@pytest.mark.parametrize("mode", MODES)
def test_refused_credentials_are_reported_without_the_secret(spark, events_path, tmp_path, monkeypatch, mode):
    secure = PrestoTestServer(users={"etl": "right-password"}, tls=True, cert_dir=tmp_path).start()
    monkeypatch.setenv("PRESTO_TEST_PASSWORD", "wrong-password")
    cfg = cfg_for(
        secure.port, mode=mode, http_scheme="https", user="etl",
        password_env="PRESTO_TEST_PASSWORD", verify_tls=False,
    )
    try:
        with pytest.raises(SourceError) as err:
            read_presto_views(spark, cfg, DAY)
    finally:
        secure.stop()
    message = str(err.value)
    assert "authentication refused for user 'etl' (HTTP 401)" in message
    assert "wrong-password" not in message
    assert err.value.__cause__ is None and err.value.__suppress_context__


@pytest.mark.parametrize("mode", MODES)
def test_result_of_the_wrong_types_is_refused(spark, server, mode):
    with pytest.raises(SourceError) as err:
        read_presto_views(spark, cfg_for(server.port, mode=mode, table="events_text_ids"), DAY)
    assert "advertiser_id is varchar" in str(err.value)


def test_a_bucket_failing_on_an_executor_becomes_a_source_error(spark, server):
    """The driver's probe passes; the bucket queries, run from the executors, fail."""
    limit = "Query exceeded per-node memory limit of 2GB"
    server.fail_query = lambda sql: None if "LIMIT 0" in sql else limit
    try:
        with pytest.raises(SourceError) as err:
            read_presto_views(spark, cfg_for(server.port, mode="parallel"), DAY)
    finally:
        server.fail_query = None
    message = str(err.value)
    assert "query failed (GENERIC_INTERNAL_ERROR" in message
    assert "exceeded per-node memory limit" in message
    assert "bucket" in message and "of 2" in message


def test_identifiers_from_config_must_be_plain(spark, server):
    with pytest.raises(ConfigError, match="presto.table: not a plain identifier"):
        read_presto_views(spark, cfg_for(server.port, table='events" --'), DAY)


def test_a_missing_password_variable_is_a_config_error(spark, server, monkeypatch):
    monkeypatch.delenv("PRESTO_UNSET_PASSWORD", raising=False)
    cfg = cfg_for(server.port, http_scheme="https", password_env="PRESTO_UNSET_PASSWORD")
    with pytest.raises(ConfigError, match="PRESTO_UNSET_PASSWORD is not set"):
        read_presto_views(spark, cfg, DAY)
