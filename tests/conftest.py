"""Shared fixtures: real Spark, a real PostgreSQL server, and moto's server over HTTP.

- `spark`: one local[2] session for the whole test run (few shuffle partitions, no UI).
- `moto_server`: moto in a child process; boto3 reaches it at `moto_server.endpoint_url`.
- `pg_server`: a PostgreSQL server for the run; `pg_url` a fresh, empty database per module.
- `trino`: one real Trino server for the run (tests/support/trino.py); tests load their own
  event tables into it (`load_event_day`).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import uuid

import pytest

from spark_app.config import SparkConfig
from spark_app.dynamo.catalog import create_catalog_table
from spark_app.local.servers import LocalMoto, LocalPostgres, free_port
from spark_app.session import build_session, fake_aws_credentials, prepare_local_environment

prepare_local_environment()
fake_aws_credentials()


@pytest.fixture(scope="session")
def spark():
    session = build_session(
        SparkConfig(
            master="local[2]",
            app_name="tests",
            conf={
                "spark.sql.shuffle.partitions": "2",
                "spark.default.parallelism": "2",
                "spark.ui.enabled": "false",
                "spark.ui.showConsoleProgress": "false",
                # A job that fails cancels its other tasks; a cancelled task's Python worker still
                # running after this timeout is destroyed, and when the task completes at that
                # moment the worker's closed socket is put back in the idle pool: the next task
                # to take it fails ("Socket is closed"). Spark's 2 s is soon passed on a loaded
                # machine; a cancelled task here completes on its own well within this.
                "spark.python.task.killTimeout": "120s",
            },
        ),
        quick_jit=True,  # many short jobs
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def moto_server():
    server = LocalMoto(free_port()).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_server():
    # Not under pytest's basetemp: a concurrent pytest run may prune old basetemps.
    data_dir = tempfile.mkdtemp(prefix="catalog-test-pg-")
    server = LocalPostgres(data_dir, free_port(), database="postgres").start()
    yield server
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_url(pg_server, request):
    """URL of a new, empty database, dropped when the module's tests are done."""
    module = re.sub(r"\W", "_", request.module.__name__.split(".")[-1])[:40]
    name = f"t_{module}_{uuid.uuid4().hex[:6]}"
    pg_server.create_database(name)
    yield f"postgresql://postgres@127.0.0.1:{pg_server.port}/{name}"
    pg_server.drop_database(name)


@pytest.fixture(scope="session")
def trino():
    """The run's one Trino JVM: plain HTTP for most tests, HTTPS with passwords and JWTs for
    tests/presto/test_auth.py; tests/presto/test_retry.py kills and restarts it."""
    from tests.support.trino import AUTH_JWT_SECRET, AUTH_USERS, LocalTrino

    try:
        server = LocalTrino(tls=True, users=AUTH_USERS, jwt_secret=AUTH_JWT_SECRET)
    except FileNotFoundError as e:  # a missing install step, never a skip: `make test` runs `make trino`
        pytest.fail(f"{e}; run `make trino` (make test does)")
    with server:
        yield server


@pytest.fixture()
def refused_endpoint():
    """`http://127.0.0.1:<port>` where a connection is refused for the whole test.

    The port stays bound (never listening) by this fixture: a port merely free when asked
    could be taken by another process on a shared machine before the test connects to it.
    """
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


@pytest.fixture()
def dynamodb(moto_server):
    """A boto3 DynamoDB client on the moto server."""
    import boto3

    return boto3.client("dynamodb", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")


@pytest.fixture()
def catalog_table(dynamodb):
    """An empty catalog table (advertiser_id N, product_id S), deleted afterwards."""
    name = f"catalog_{uuid.uuid4().hex[:8]}"
    create_catalog_table(dynamodb, name)
    yield name
    dynamodb.delete_table(TableName=name)


def pytest_report_header(config):
    env = os.environ
    return f"SPARK_LOCAL_IP={env.get('SPARK_LOCAL_IP')} PYSPARK_PYTHON={env.get('PYSPARK_PYTHON')}"
