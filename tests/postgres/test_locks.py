"""A reader holding a transaction open never stalls the publish forever, nor the other readers.

The publish waits at most `lock_timeout` per attempt, retries a bounded number of times, then
fails naming the blocking sessions, with the old day intact. Meanwhile other readers wait at
most one lock timeout. A driver killed while waiting leaves no session behind holding locks.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date

import psycopg2
import pytest
from sqlalchemy import text

from spark_app.errors import SinkError
from spark_app.postgres.locks import LockPolicy
from spark_app.postgres.publish import DayRun
from tests.support.paths import ROOT
from tests.support.postgres import DETAIL

DAY = date(2026, 11, 19)
PIPELINE = "catalog_match_rate"
LOCKS_LOG = "spark_app.postgres.locks"
TIMEOUT_MESSAGE = "publish of %s: lock not granted"  # LockPolicy.log_timeout's
QUICK = LockPolicy(timeout_seconds=0.5, attempts=3, backoff_seconds=0.2)


def publish(spark, spec, products, policy=QUICK):
    df = spark.createDataFrame([(DAY, 1, p, 1, True) for p in products], DETAIL)
    with DayRun(spec, PIPELINE, DAY, locks=policy) as run:
        run.stage(df, "product_views")
        run.publish(rows_in=len(products), rows_out=len(products), rows_rejected=0)
    return run


def products_of_the_day(spec):
    engine = spec.engine()
    try:
        with engine.connect() as conn:
            return sorted(conn.execute(text("SELECT product_id FROM product_views WHERE day = :d"),
                                       {"d": DAY}).scalars())
    finally:
        engine.dispose()


def open_reader(spec, name):
    """A session that read product_views and keeps its transaction open (a report left idle)."""
    conn = psycopg2.connect(spec.url, application_name=name)
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM product_views WHERE day = %s", (DAY,))
    cur.fetchone()
    return conn


def lock_timeouts(caplog):
    """The attempt numbers of the publish's logged lock timeouts, in order."""
    return [r.args[2] for r in caplog.records if r.name == LOCKS_LOG and r.msg.startswith(TIMEOUT_MESSAGE)]


class OnFirstLockTimeout(logging.Handler):
    """Calls `action` once, in the publish's own thread, when it logs its first lock timeout."""

    def __init__(self, action):
        super().__init__(logging.WARNING)
        self.action, self.fired = action, False

    def emit(self, record):
        if not self.fired and record.msg.startswith(TIMEOUT_MESSAGE):
            self.fired = True
            self.action()


def test_a_reader_holding_a_transaction_fails_the_publish_after_bounded_retries_naming_it(
    spark, spec, caplog
):
    publish(spark, spec, ["old"])
    reader = open_reader(spec, "report-left-open")
    reader_pid = reader.get_backend_pid()
    answered, failed = [], []
    done = threading.Event()

    def other_reader():
        conn = psycopg2.connect(spec.url, application_name="dashboard")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout = '60s'")  # a generous bound, not a measure
            while not done.is_set():
                try:
                    cur.execute("SELECT count(*) FROM product_views")
                    answered.append(cur.fetchone()[0])
                except psycopg2.Error as exc:
                    failed.append(exc)
                    return
        conn.close()

    thread = threading.Thread(target=other_reader)
    thread.start()
    try:
        with caplog.at_level(logging.WARNING, logger=LOCKS_LOG), pytest.raises(SinkError) as err:
            publish(spark, spec, ["new-1", "new-2"])
    finally:
        done.set()
        thread.join(120)  # before the idle report ends: no dashboard query may be waiting for it
        dashboard_done = not thread.is_alive()
        reader.rollback()
        reader.close()

    message = str(err.value)
    assert err.value.exit_code == 5
    assert "public.product_views for day 2026-11-19" in message
    assert "3 attempt(s)" in message
    assert f"pid {reader_pid} (application 'report-left-open', idle in transaction)" in message
    assert lock_timeouts(caplog) == [1, 2, 3]  # each attempt waited, timed out and was retried
    assert products_of_the_day(spec) == ["old"]
    # Other readers queue behind the waiting publish for at most one lock timeout per attempt, so
    # all of the dashboard's queries were answered while the idle report still held its
    # transaction; without a timeout they waited until it ended.
    assert dashboard_done and not failed and answered, (failed, answered)


def test_the_publish_goes_through_once_the_reader_ends_within_the_retries(spark, spec, caplog):
    publish(spark, spec, ["old"])
    reader = open_reader(spec, "short-report")
    ends_the_reader = OnFirstLockTimeout(reader.rollback)  # the report ends once the publish waited
    logging.getLogger(LOCKS_LOG).addHandler(ends_the_reader)
    try:
        with caplog.at_level(logging.WARNING, logger=LOCKS_LOG):
            publish(spark, spec, ["new"], LockPolicy(timeout_seconds=0.3, attempts=10, backoff_seconds=0.2))
    finally:
        logging.getLogger(LOCKS_LOG).removeHandler(ends_the_reader)
        reader.close()

    assert ends_the_reader.fired
    assert lock_timeouts(caplog) == [1]  # the first attempt waited and timed out; the retry published
    assert products_of_the_day(spec) == ["new"]


CHILD = """
import sys, time
from sqlalchemy import text
from spark_app.postgres.connect import ConnectionSpec
engine = ConnectionSpec(sys.argv[1]).engine()
conn = engine.connect()
conn.execute(text("SET application_name = 'killed-driver'"))
conn.execute(text("SET lock_timeout = 0"))  # wait as long as it takes, as a publish without a bound
print("locking", flush=True)
conn.execute(text("LOCK TABLE product_views IN ACCESS EXCLUSIVE MODE"))
"""


def driver_sessions(spec):
    engine = spec.engine()
    try:
        with engine.connect() as conn:
            return conn.execute(text(
                "SELECT pid, wait_event_type FROM pg_stat_activity WHERE application_name = 'killed-driver'"
            )).all()
    finally:
        engine.dispose()


def test_a_killed_driver_leaves_no_session_waiting_for_or_holding_locks(spec):
    """A child process opens a connection exactly as the job does (ConnectionSpec.engine) and waits
    for the lock a publish takes; it is then killed with SIGKILL while the reader stays open."""
    reader = open_reader(spec, "report-left-open")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, spec.url], env=env, cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locking"
        deadline = time.monotonic() + 30
        while not any(w == "Lock" for _, w in driver_sessions(spec)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [w for _, w in driver_sessions(spec)] == ["Lock"]
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        deadline = time.monotonic() + 60
        while driver_sessions(spec) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = driver_sessions(spec)
    finally:
        if child.poll() is None:
            child.kill()
        reader.rollback()
        reader.close()
    assert left == [], "the killed driver's session still waits for product_views a minute later"
