"""Driver side: exactly-once publication of one (pipeline, day): stage in parallel, swap in one transaction.

    with DayRun(spec, pipeline="catalog_match_rate", day=day, schema="public") as run:
        run.stage(detail_df, "product_views")
        run.stage(agg_df, "advertiser_match_rates")
        ...  # quality gate on the DataFrames
        run.publish(rows_in=..., rows_out=..., rows_rejected=..., stats={...})

Why this shape: executors write into run-scoped staging tables (fast, retry-safe per partition,
invisible to readers); the only change readers can see is `publish`, a single transaction. A
target partitioned `BY LIST (day)` gets a LOGGED staging table that `publish` first turns into a
finished partition (primary key built, a CHECK on the day), then swaps in: the day's old
partition is detached and dropped, the staging table attached and renamed, so the day's rows
are written once. Any other target gets an UNLOGGED staging table and the day is deleted and
inserted again from it. A session-level advisory lock on a dedicated driver connection makes a
second run of the same day fail fast, and tells a later run which `running` rows belong to dead
processes (nobody holds their lock).

`DayRun` holds the protocol; its parts live beside it: `runs` (the run log and the day lock),
`staging` (the run's staging tables) and `partitions` (the partition swap).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any, Dict, List, Optional, Tuple

from spark_app.errors import ConfigError, SinkError
from spark_app.postgres.checks import check_frame, primary_key, spark_cause, table_columns
from spark_app.postgres.connect import ConnectionSpec, check_identifier, error_text, qualified
from spark_app.postgres.load import RESULT_SCHEMA, partition_loader
from spark_app.postgres.locks import LockPolicy, blocking_sessions, is_lock_timeout
from spark_app.postgres.partitions import is_day_partitioned, prepare_partition, swap_partition
from spark_app.postgres.retention import prune_partitions
from spark_app.postgres.runs import RunLog
from spark_app.postgres.staging import Staging

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageResult:
    rows_loaded: int
    rows_rejected: int


class DayRun:
    """One run of `pipeline` for `day`: see the module docstring for the protocol."""

    def __init__(
        self,
        spec: ConnectionSpec,
        pipeline: str,
        day: date,
        schema: str = "public",
        copy_batch_rows: int = 10000,
        locks: Optional[LockPolicy] = None,
        retention_days: Optional[int] = None,
    ) -> None:
        if copy_batch_rows < 1:
            raise ConfigError(f"copy_batch_rows must be at least 1, got {copy_batch_rows}")
        self.spec = spec
        self.pipeline = pipeline
        self.day = day
        self.schema = check_identifier(schema, "schema")
        self.copy_batch_rows = copy_batch_rows
        self.locks = locks or LockPolicy()
        self.retention_days = retention_days  # None: keep every day partition
        self.run_id = uuid.uuid4().hex
        self.state = "new"  # new -> running -> succeeded | failed
        self._engine: Any = None
        self._conn: Any = None
        self._log: Optional[RunLog] = None
        self._staging: Optional[Staging] = None
        self._columns: Dict[str, List[str]] = {}  # target table -> its columns, in table order
        self._keys: Dict[str, List[str]] = {}  # target table -> its primary key columns
        self._partitioned: Dict[str, bool] = {}  # target table -> partitioned BY LIST (day)
        self._results: Dict[str, StageResult] = {}
        self._current: Optional[str] = None  # the table the publish is working on, for messages

    def __repr__(self) -> str:
        return f"DayRun({self.pipeline!r}, {self.day.isoformat()}, run_id={self.run_id}, {self.state})"

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> DayRun:
        self._connect()
        try:
            self._log.take_day_lock(self._what())
            self._staging.clean_up_after_dead_runs(self._log)
            self._log.start()
            self._conn.commit()
        except BaseException as exc:
            self._release()
            if isinstance(exc, SinkError):
                raise
            raise SinkError(f"cannot start {self._what()}: {error_text(exc, self.spec)}") from None
        self.state = "running"
        log.info("started %s as run %s", self._what(), self.run_id)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if self.state == "running":
                reason = error_text(exc, self.spec) if exc is not None else "the run ended without publish()"
                self._record_failure(reason, None)
        finally:
            self._release()
        return False

    def fail(self, error: Any, stats: Optional[Dict[str, Any]] = None) -> None:
        """Record the run as failed (error text, stats), drop its staging; targets stay untouched.

        After a failed `publish()` (already recorded with its own error) this does nothing, so the
        caller's `except: run.fail(exc); raise` lets the publish's error through unchanged.
        """
        if self.state == "failed":
            return
        self._require_running("fail")
        if isinstance(error, BaseException):
            reason = error_text(error, self.spec)
        else:
            reason = self.spec.scrub(str(error))
        self._record_failure(reason, stats)

    # ------------------------------------------------------------------ stage

    def stage(self, df: Any, table: str) -> StageResult:
        """Load `df` (exactly the columns of `table`) into this run's staging table for `table`."""
        self._require_running("stage")
        check_identifier(table, "table")
        if table in self._staging.tables:
            raise SinkError(f"{self._what()}: table {table} was already staged in this run")
        try:
            return self._stage(df, table)
        except SinkError:
            raise
        except Exception as exc:  # the server restarted or went away: our session and its lock are gone
            cause = error_text(exc, self.spec)
            raise SinkError(f"staging {self.schema}.{table} for day {self.day} failed: {cause}") from None

    def _stage(self, df: Any, table: str) -> StageResult:
        target_columns = _target_columns(self._conn, self.spec, self.schema, table)
        columns = [name for name, _ in target_columns]
        self._columns[table] = columns
        self._keys[table] = primary_key(self._conn, self.schema, table)
        self._conn.commit()
        self._partitioned[table] = is_day_partitioned(self._conn, self.schema, table, self.day)
        check_frame(df, table, target_columns)
        staging = self._staging.create(table, target_columns, logged=self._partitioned[table])
        loader = partition_loader(self.spec, self.schema, staging, columns, self.copy_batch_rows)
        try:
            results = df.select(*columns).mapInArrow(loader, RESULT_SCHEMA).collect()
        except Exception as exc:
            raise SinkError(
                f"loading {self.schema}.{table} for day {self.day} failed: {spark_cause(exc, self.spec)}"
            ) from None
        result = StageResult(sum(r.rows_loaded for r in results), sum(r.rows_rejected for r in results))
        self._staging.verify(table, result.rows_loaded, self.day, "day" in columns)
        self._results[table] = result
        log.info("staged %s.%s for %s: %s", self.schema, table, self.day, result)
        return result

    # ------------------------------------------------------------------ publish

    def publish(
        self,
        rows_in: Optional[int] = None,
        rows_out: Optional[int] = None,
        rows_rejected: Optional[int] = None,
        stats: Optional[Dict[str, Any]] = None,
        expected_rows: Optional[Dict[str, int]] = None,
    ) -> None:
        """Replace the day in every staged table and mark the run succeeded, in ONE transaction.

        A table whose staged rows (loaded + rejected at load) differ from `expected_rows` is refused.
        Partitioned targets are prepared outside the transaction (invisible to readers), then
        swapped in; each attempt waits for its locks at most `locks.timeout_seconds`.
        """
        self._require_running("publish")
        self._current = None
        try:
            _check_expected_rows(self._results, expected_rows or {})
            for table, staging in self._staging.tables.items():
                if self._partitioned[table]:
                    self._current = table
                    prepare_partition(self._conn, self.schema, staging, self.day, self._keys[table],
                                      self._staging.key_name(table))
            self._swap_with_retries(rows_in, rows_out, rows_rejected, stats)
        except _Refused as refused:
            self._abort_publish(refused.table, f"{refused.verb}: {refused}", stats)
        except Exception as exc:
            self._abort_publish(self._current, f"failed: {error_text(exc, self.spec)}", stats)
        self.state = "succeeded"
        log.info("published %s (run %s)", self._what(), self.run_id)
        if self.retention_days is not None and any(self._partitioned.values()):
            _prune_after_publish(self._conn, self.schema, self.retention_days, self.spec)

    def _swap_with_retries(self, rows_in, rows_out, rows_rejected, stats) -> None:
        targets = [qualified(self.schema, t) for t in self._staging.tables]
        for attempt in range(1, self.locks.attempts + 1):
            try:
                self.locks.set_local(self._conn)
                self._swap_all()
                self._current = "pipeline_runs"
                self._log.finish("succeeded", None, rows_in, rows_out, rows_rejected, self._payload(stats))
                self._staging.drop()
                self._conn.commit()
                return
            except Exception as exc:
                if not is_lock_timeout(exc):
                    raise
                _rollback(self._conn)
                blockers = blocking_sessions(self._conn, targets)
                self.locks.log_timeout(self._current, attempt, blockers)
                if attempt == self.locks.attempts:
                    raise _Refused(self._current, _lock_failure(self.locks, blockers), "failed") from None
                time.sleep(self.locks.pause(attempt))

    def _swap_all(self) -> None:
        """Inside the publish transaction: each staged table's day replaced."""
        for table, staging in self._staging.tables.items():
            self._current = table
            if self._partitioned[table]:
                key_name = self._staging.key_name(table) if self._keys[table] else ""
                swap_partition(self._conn, self.schema, table, staging, self.day, key_name)
                continue
            self._staging.replace_day(table, self._columns[table], self._keys[table], self.day)

    def _abort_publish(self, table: Optional[str], what: str, stats: Optional[Dict[str, Any]]) -> None:
        """Roll back, record the run failed with `what`, raise it as a SinkError naming table and day."""
        _rollback(self._conn)
        self._record_failure(f"publish of {table} {what}", stats)
        raise SinkError(f"publishing {self.schema}.{table} for day {self.day} {what}") from None

    def record_stats(self, stats: Dict[str, Any]) -> None:
        """Replace the run's stats after publish (the publish stage's own time is known only then)."""
        if self.state != "succeeded":
            raise SinkError(f"{self._what()}: record_stats() comes after publish(), state is {self.state}")
        try:
            self._log.replace_stats(self._payload(stats))
        except Exception as exc:  # the day is published; only the final timings are lost
            log.warning("final stats of run %s not recorded: %s", self.run_id, error_text(exc, self.spec))

    # ------------------------------------------------------------------ internals

    def _what(self) -> str:
        where = f"{self.schema} on {self.spec.describe()}"
        return f"pipeline {self.pipeline} for day {self.day.isoformat()} ({where})"

    def _payload(self, stats: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        payload = dict(stats or {})
        payload.setdefault("sink", {t: r.__dict__ for t, r in self._results.items()})
        return payload

    def _connect(self) -> None:
        try:
            self._engine = self.spec.engine()
            self._conn = self._engine.connect()
        except Exception as exc:
            self._release()
            cause = error_text(exc, self.spec)
            raise SinkError(f"cannot connect to PostgreSQL for {self._what()}: {cause}") from None
        self._log = RunLog(self._conn, self.schema, self.pipeline, self.day, self.run_id)
        self._staging = Staging(self._conn, self.schema, self.run_id)

    def _release(self) -> None:
        """Give the day's lock back, close the dedicated connection (`_close`), drop the engine."""
        _close(self._conn, self._log)
        if self._engine is not None:
            self._engine.dispose()
        self._conn = None
        self._engine = None

    def _require_running(self, action: str) -> None:
        if self.state != "running":
            raise SinkError(f"{action}() needs a running DayRun (inside `with`); {self!r}")

    def _record_failure(self, reason: str, stats: Optional[Dict[str, Any]]) -> None:
        """Best effort: mark failed and drop staging; if the server is gone the next run cleans up."""
        self.state = "failed"
        try:
            _rollback(self._conn)
            self._staging.drop()
            self._log.finish("failed", self.spec.scrub(reason), None, None, None, self._payload(stats))
            self._conn.commit()
        except Exception as exc:
            _rollback(self._conn)
            log.warning("could not record failure of run %s: %s", self.run_id, error_text(exc, self.spec))



def _target_columns(conn: Any, spec: ConnectionSpec, schema: str, table: str) -> List[Tuple[str, str]]:
    cols = table_columns(conn, schema, table)
    conn.commit()
    if not cols:
        where = f"{schema}.{table} does not exist on {spec.describe()}"
        raise SinkError(f"table {where} (did upgrade_schema run for this schema?)")
    return cols


class _Refused(Exception):
    """A publish refused before or instead of committing; `table` is the table it is about."""

    def __init__(self, table: Optional[str], message: str, verb: str = "refused") -> None:
        super().__init__(message)
        self.table = table
        self.verb = verb


def _check_expected_rows(results: Dict[str, StageResult], expected_rows: Dict[str, int]) -> None:
    """_Refused for the first table whose staged rows (loaded + rejected at load) differ from computed."""
    for table, computed in expected_rows.items():
        result = results.get(table, StageResult(0, 0))
        if result.rows_loaded + result.rows_rejected != computed:
            rejected = f" and {result.rows_rejected} rejected at load" if result.rows_rejected else ""
            staged = f"{result.rows_loaded} row(s) staged{rejected}"
            raise _Refused(table, f"{staged} but {computed} computed; the published day is unchanged")


def _lock_failure(policy: LockPolicy, blockers: List[str]) -> str:
    held = "; ".join(blockers) if blockers else "sessions that have ended since"
    return (f"could not take its lock within {policy.timeout_seconds:g} s in {policy.attempts} attempt(s); "
            f"blocked by {held}; the published day is unchanged")


def _close(conn: Any, run_log: Optional[RunLog]) -> None:
    """Unlock the day, then close the run's connection.

    The unlock is explicit because a closed connection's server process drops its locks only as
    it exits, a moment after the client has moved on: a run started right after would be refused
    as "in progress". If the server is gone, the lock went with the session.
    """
    if conn is None:
        return
    try:
        _rollback(conn)
        if run_log is not None:
            run_log.release_day_lock()
    except Exception:
        log.debug("unlocking the day failed", exc_info=True)
    try:
        conn.close()
    except Exception:  # the server may be gone; the lock went with the session
        log.debug("closing the run connection failed", exc_info=True)


def _rollback(conn: Any) -> None:
    try:
        conn.rollback()
    except Exception:
        log.debug("rollback failed", exc_info=True)


def _prune_after_publish(conn: Any, schema: str, retention_days: int, spec: ConnectionSpec) -> None:
    """After the commit: old day partitions go (retention.py); the day is published either way."""
    try:
        prune_partitions(conn, schema, retention_days)
    except Exception as exc:
        _rollback(conn)
        log.warning("published, but pruning old partitions failed: %s", error_text(exc, spec))
