"""Basic auth over TLS, and JWT, against a real Trino server with a password file and HTTPS.

The session's server (`trino` fixture) serves HTTPS beside plain HTTP, with a self-signed
certificate, a PBKDF2 password file and an HS256 JWT key (tests/support/trino.py): no second
JVM for these tests. The password is checked never to show up in an error, the driver's log,
Spark's configuration or the server's log.
"""

from __future__ import annotations

import json
import logging
from datetime import date

import pytest

from spark_app.config import PrestoConfig
from spark_app.errors import SourceError
from spark_app.presto.read import read_presto_views
from tests.support.trino import AUTH_JWT_SECRET, AUTH_USERS, LocalTrino, hs256_jwt, load_event_day

DAY = date(2026, 11, 19)
MODES = ["driver", "parallel"]
PASSWORD = AUTH_USERS["etl"]
JWT_SECRET = AUTH_JWT_SECRET


@pytest.fixture(scope="module")
def secure_trino(trino, tmp_path_factory):
    """The session's server with the day as hive.default.auth_events."""
    line = json.dumps({"event_id": "e1", "event_type": "product_view", "ts": "2026-11-19T08:00:00Z",
                       "advertiser_id": 1, "product_id": "p1"})
    load_event_day(trino, tmp_path_factory.mktemp("auth_day"), "auth_events", {"2026-11-19": [line, line]})
    return trino


def cfg_for(server: LocalTrino, monkeypatch, mode: str, **overrides) -> PrestoConfig:
    """HTTPS to the server; the driver checks its certificate (REQUESTS_CA_BUNDLE, which requests
    lets override any `verify`), the executors, whose environment was fixed when Spark started,
    skip the check."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.cert_path))
    settings = dict(host="127.0.0.1", port=server.https_port, http_scheme="https", user="etl", mode=mode,
                    buckets=2, verify_tls=mode == "driver", table="auth_events")
    settings.update(overrides)
    return PrestoConfig(**settings)


@pytest.mark.parametrize("mode", MODES)
def test_basic_auth_over_tls_reads_the_day_and_the_password_shows_nowhere(
    spark, secure_trino, monkeypatch, caplog, mode
):
    monkeypatch.setenv("PRESTO_TEST_PASSWORD", PASSWORD)
    cfg = cfg_for(secure_trino, monkeypatch, mode, password_env="PRESTO_TEST_PASSWORD")
    with caplog.at_level(logging.DEBUG):
        rows = [tuple(r) for r in read_presto_views(spark, cfg, DAY).collect()]

    assert rows == [(1, "p1", 1)]
    assert PASSWORD not in caplog.text
    assert PASSWORD not in " ".join(v for _, v in spark.sparkContext.getConf().getAll())
    assert PASSWORD not in secure_trino.log_path.read_text(errors="replace")


@pytest.mark.parametrize("mode", MODES)
def test_a_refused_password_is_reported_without_the_secret(spark, secure_trino, monkeypatch, caplog, mode):
    monkeypatch.setenv("PRESTO_TEST_PASSWORD", "wrong-" + PASSWORD)
    cfg = cfg_for(secure_trino, monkeypatch, mode, password_env="PRESTO_TEST_PASSWORD")
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as err:
        read_presto_views(spark, cfg, DAY)

    message = str(err.value)
    assert "authentication refused for user 'etl' (HTTP 401)" in message
    assert PASSWORD not in message and PASSWORD not in caplog.text
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert err.value.exit_code == 7


@pytest.mark.parametrize("mode", MODES)
def test_a_jwt_is_accepted_as_a_bearer_token(spark, secure_trino, monkeypatch, mode):
    monkeypatch.setenv("PRESTO_TEST_JWT", hs256_jwt(JWT_SECRET, "etl"))
    cfg = cfg_for(secure_trino, monkeypatch, mode, jwt_env="PRESTO_TEST_JWT")
    assert [tuple(r) for r in read_presto_views(spark, cfg, DAY).collect()] == [(1, "p1", 1)]


def test_a_jwt_signed_with_another_key_is_refused(spark, secure_trino, monkeypatch):
    monkeypatch.setenv("PRESTO_TEST_JWT", hs256_jwt(b"another-signing-key-of-32-bytes-or-more", "etl"))
    cfg = cfg_for(secure_trino, monkeypatch, "driver", jwt_env="PRESTO_TEST_JWT")
    with pytest.raises(SourceError, match=r"authentication refused for user 'etl' \(HTTP 401\)"):
        read_presto_views(spark, cfg, DAY)
