"""Connecting without leaking the password: its sources, its redaction, and errors that never show it."""

from __future__ import annotations

import json
import pickle
import time
import traceback
import uuid
from datetime import date
from pathlib import Path

import boto3
import psycopg2
import pytest

from spark_app.config import PostgresConfig, config_from_mapping
from spark_app.errors import ConfigError, SinkError
from spark_app.local.servers import free_port
from spark_app.postgres.connect import ConnectionSpec, connection_spec
from spark_app.postgres.publish import DayRun
from spark_app.postgres.schema import upgrade_schema
from spark_app.postgres.secrets import resolve_password

ROLE = "etl_with_password"
PASSWORD = "Corr3ct-H0rse-Battery"
WRONG = "Wr0ng-Pa55word-xyz"


def everything_said(exc_info) -> str:
    """The exception's text, repr and full printed traceback (chained causes included)."""
    exc = exc_info.value
    printed = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "\n".join([str(exc), repr(exc), printed])


# --------------------------------------------------------------------------- password sources


@pytest.fixture()
def secrets(moto_server):
    return boto3.client("secretsmanager", endpoint_url=moto_server.endpoint_url, region_name="eu-west-1")


def test_password_comes_from_a_json_secret(secrets, moto_server):
    name = f"pg-{uuid.uuid4().hex[:6]}"
    secrets.create_secret(Name=name, SecretString=json.dumps({"username": "etl", "password": "from-json"}))
    cfg = PostgresConfig(url="postgresql://etl@db/x", password_secret=name, secret_region="eu-west-1")

    assert resolve_password(cfg, endpoint_url=moto_server.endpoint_url) == "from-json"


def test_password_comes_from_a_plain_string_secret(secrets, moto_server):
    name = f"pg-{uuid.uuid4().hex[:6]}"
    secrets.create_secret(Name=name, SecretString="plain-secret")
    cfg = PostgresConfig(url="postgresql://etl@db/x", password_secret=name, secret_region="eu-west-1")

    spec = connection_spec(cfg, endpoint_url=moto_server.endpoint_url)

    assert spec.password == "plain-secret"


def test_a_missing_secret_is_a_sink_error_naming_it(moto_server):
    cfg = PostgresConfig(url="postgresql://etl@db/x", password_secret="nope", secret_region="eu-west-1")

    with pytest.raises(SinkError, match="secret 'nope' .*ResourceNotFoundException"):
        resolve_password(cfg, endpoint_url=moto_server.endpoint_url)


def test_password_comes_from_the_named_environment_variable_else_none(monkeypatch):
    monkeypatch.setenv("ETL_PG_PASSWORD", "from-env")
    monkeypatch.delenv("UNSET_PG_PASSWORD", raising=False)
    url = "postgresql://etl@db/x"

    assert resolve_password(PostgresConfig(url=url, password_env="ETL_PG_PASSWORD")) == "from-env"
    assert resolve_password(PostgresConfig(url=url, password_env="UNSET_PG_PASSWORD")) is None


# --------------------------------------------------------------------------- the spec


def test_the_spec_never_shows_its_password_but_pickles_with_it():
    spec = ConnectionSpec("postgresql://etl@db:5432/x?sslmode=require", password=PASSWORD)

    assert PASSWORD not in repr(spec) and PASSWORD not in str(spec) and PASSWORD not in f"{spec}"
    assert "password=***" in repr(spec)
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert PASSWORD not in repr(spec.engine())


def test_a_url_with_a_password_is_refused():
    with pytest.raises(SinkError, match="must not carry a password"):
        ConnectionSpec("postgresql://etl:hunter2@db/x")


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://etl:{PASSWORD}@db/catalog",
        f"postgresql://etl@x:{PASSWORD}@db/catalog",  # the user name ends at the first ':'
        f"postgresql://db:5432/catalog?application_name={PASSWORD}@db",  # the password at the next '@'
    ],
)
def test_the_config_and_the_connection_read_a_password_in_a_url_alike(url):
    with pytest.raises(SinkError, match="must not carry a password") as at_connect:
        ConnectionSpec(url)
    with pytest.raises(ConfigError, match="postgres.url: must not carry a password") as in_config:
        config_from_mapping({"events": {"path": "/tmp/events"}, "postgres": {"url": url},
                             "dynamodb": {"table": "catalog", "region": "us-east-1"}})
    assert PASSWORD not in str(at_connect.value) + str(in_config.value)


def test_url_query_options_reach_libpq(pg_url):
    required = ConnectionSpec(pg_url + "?sslmode=require")  # the test server speaks no TLS

    with pytest.raises(SinkError, match="server does not support SSL"):
        upgrade_schema(required)
    upgrade_schema(ConnectionSpec(pg_url + "?sslmode=disable&application_name=etl"))


# --------------------------------------------------------------------------- wrong password, no server


@pytest.fixture(scope="module")
def password_role(pg_server, pg_url):
    """A role that must authenticate with scram-sha-256 (the rest of the test server trusts)."""
    hba = Path(pg_server.data_dir) / "pg_hba.conf"
    original = hba.read_text()
    hba.write_text(f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n" + original)
    conn = psycopg2.connect(pg_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE ROLE {ROLE} LOGIN SUPERUSER PASSWORD %s", (PASSWORD,))
        cur.execute("SELECT pg_reload_conf()")
    _wait_until_password_is_required(pg_url.replace("postgres@", f"{ROLE}@"))
    yield pg_url.replace("postgres@", f"{ROLE}@")
    hba.write_text(original)
    with conn.cursor() as cur:
        cur.execute("SELECT pg_reload_conf()")
    conn.close()


def _wait_until_password_is_required(url: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            psycopg2.connect(url, password=WRONG).close()
        except psycopg2.OperationalError:
            return
        time.sleep(0.1)
    raise AssertionError("pg_hba.conf change did not take effect")


def test_the_right_password_connects_and_loads(password_role):
    upgrade_schema(ConnectionSpec(password_role, password=PASSWORD))

    with DayRun(ConnectionSpec(password_role, password=PASSWORD), "pw_check", date(2026, 11, 19)) as run:
        run.publish(rows_in=0, rows_out=0, rows_rejected=0)

    assert run.state == "succeeded"


def test_a_wrong_password_is_a_sink_error_that_does_not_contain_it(password_role):
    wrong = ConnectionSpec(password_role, password=WRONG)

    with pytest.raises(SinkError, match="password authentication failed") as schema_error:
        upgrade_schema(wrong)
    with pytest.raises(SinkError, match="cannot connect to PostgreSQL for pipeline pw_check") as run_error:
        DayRun(wrong, "pw_check", date(2026, 11, 19)).__enter__()

    assert WRONG not in everything_said(schema_error)
    assert WRONG not in everything_said(run_error)


def test_an_unreachable_server_is_a_sink_error_that_does_not_contain_the_password():
    nowhere = ConnectionSpec(f"postgresql://etl@127.0.0.1:{free_port()}/x", password=PASSWORD)

    with pytest.raises(SinkError, match="Connection refused") as schema_error:
        upgrade_schema(nowhere)
    with pytest.raises(SinkError, match="for day 2026-11-19") as run_error:
        DayRun(nowhere, "catalog_match_rate", date(2026, 11, 19)).__enter__()

    assert PASSWORD not in everything_said(schema_error)
    assert PASSWORD not in everything_said(run_error)
