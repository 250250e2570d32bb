"""PostgreSQL restarted or stopped in the middle of a run: a SinkError naming table and day (exit 5).

The run's server is its own (a real PostgreSQL from the pgserver wheel, stopped and started for
real), so the other tests' server is never interrupted.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import date

import pytest

from spark_app.errors import SinkError
from spark_app.local.servers import LocalPostgres, free_port
from spark_app.postgres.connect import ConnectionSpec
from spark_app.postgres.publish import DayRun
from spark_app.postgres.schema import upgrade_schema
from tests.support.postgres import DETAIL

DAY = date(2026, 11, 19)


@pytest.fixture(scope="module")
def server():
    data_dir = tempfile.mkdtemp(prefix="catalog-restart-pg-")
    pg = LocalPostgres(data_dir, free_port(), database="restart").start()
    upgrade_schema(ConnectionSpec(pg.url))
    yield pg
    pg.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


def rows(spark):
    return spark.createDataFrame([(DAY, 1, "a", 1, True)], DETAIL)


@pytest.mark.parametrize("restart", [True, False], ids=["restarted", "stopped"])
def test_a_server_gone_during_the_run_is_a_sink_error_naming_table_and_day(spark, server, restart):
    server.start()
    with pytest.raises(SinkError) as err:
        with DayRun(ConnectionSpec(server.url), "catalog_match_rate", DAY) as run:
            server.stop()  # as if PostgreSQL went away while Spark extracts
            if restart:
                server.start()
            run.stage(rows(spark), "product_views")
    server.start()

    assert err.value.exit_code == 5
    assert "public.product_views for day 2026-11-19" in str(err.value)
