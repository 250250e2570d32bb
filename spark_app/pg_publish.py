"""Exactly-once publication of one (pipeline, day): stage in parallel, swap in one transaction.

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
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any, Dict, List, Optional, Tuple

from .errors import SinkError
from .pg_checks import check_frame, primary_key, spark_cause, table_columns
from .pg_connect import ConnectionSpec, check_identifier, error_text, lock_key, qualified, quote_ident
from .pg_load import PART_COLUMN, RESULT_SCHEMA, partition_loader

log = logging.getLogger(__name__)

STAGING_PREFIX = "_stg_"
PARTITION_KEY = "LIST (day)"  # the only partitioning publish() can swap a day of
_DAY_CHECK = "staged_day"  # the staging table's CHECK (day = <run day>), kept on the partition


def day_partition(table: str, day: date) -> str:
    """The stable name of `table`'s partition for `day`, e.g. product_views_d20261119."""
    return f"{check_identifier(table, 'table')}_d{day.strftime('%Y%m%d')}"

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
    ) -> None:
        self.spec = spec
        self.pipeline = pipeline
        self.day = day
        self.schema = check_identifier(schema, "schema")
        self.copy_batch_rows = copy_batch_rows
        self.run_id = uuid.uuid4().hex
        self.state = "new"  # new -> running -> succeeded | failed
        self._engine: Any = None
        self._conn: Any = None
        self._staged: Dict[str, str] = {}  # target table -> staging table
        self._columns: Dict[str, List[str]] = {}  # target table -> its columns, in table order
        self._keys: Dict[str, List[str]] = {}  # target table -> its primary key columns
        self._partitioned: Dict[str, bool] = {}  # target table -> partitioned BY LIST (day)
        self._results: Dict[str, StageResult] = {}

    def __repr__(self) -> str:
        return f"DayRun({self.pipeline!r}, {self.day.isoformat()}, run_id={self.run_id}, {self.state})"

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> DayRun:
        from sqlalchemy import text

        self._connect()
        try:
            self._take_day_lock()
            self._clean_up_dead_runs()
            self._conn.execute(
                text(
                    f"INSERT INTO {self._runs} (run_id, pipeline, day, status, started_at) "
                    "VALUES (:r, :p, :d, 'running', now())"
                ),
                {"r": self.run_id, "p": self.pipeline, "d": self.day},
            )
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
        """Record the run as failed (error text, stats), drop its staging; targets stay untouched."""
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
        if table in self._staged:
            raise SinkError(f"{self._what()}: table {table} was already staged in this run")
        target_columns = self._target_columns(table)
        columns = [name for name, _ in target_columns]
        self._columns[table] = columns
        self._keys[table] = self._primary_key(table)
        self._partitioned[table] = self._is_day_partitioned(table)
        check_frame(df, table, target_columns)
        staging = self._create_staging(table, target_columns, logged=self._partitioned[table])
        loader = partition_loader(self.spec, self.schema, staging, columns, self.copy_batch_rows)
        try:
            results = df.select(*columns).mapInArrow(loader, RESULT_SCHEMA).collect()
        except Exception as exc:
            raise SinkError(
                f"loading {self.schema}.{table} for day {self.day} failed: {spark_cause(exc, self.spec)}"
            ) from None
        result = StageResult(sum(r.rows_loaded for r in results), sum(r.rows_rejected for r in results))
        self._verify_staging(table, staging, result, "day" in columns)
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
    ) -> None:
        """Replace the day in every staged table and mark the run succeeded, in ONE transaction.

        Partitioned targets are prepared first (primary key and day CHECK on the staging table,
        outside the transaction: readers see nothing of it), then swapped in by the transaction.
        """
        from sqlalchemy import text

        self._require_running("publish")
        current = None
        try:
            for table, staging in self._staged.items():
                if self._partitioned[table]:
                    current = table
                    self._prepare_partition(table, staging)
            for table, staging in self._staged.items():
                current = table
                if self._partitioned[table]:
                    self._swap_partition(table, staging)
                    continue
                target = qualified(self.schema, table)
                cols = ", ".join(quote_ident(name) for name in self._columns[table])
                self._conn.execute(text(f"DELETE FROM {target} WHERE day = :d"), {"d": self.day})
                source = qualified(self.schema, staging)
                self._conn.execute(text(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {source}"
                                        + _order_by(self._keys[table])))
            current = "pipeline_runs"
            self._finish("succeeded", None, rows_in, rows_out, rows_rejected, stats)
            self._drop_staging()
            self._conn.commit()
        except Exception as exc:
            cause = error_text(exc, self.spec)
            self._rollback()
            self._record_failure(f"publish of {current} failed: {cause}", stats)
            where = f"{self.schema}.{current} for day {self.day}"
            raise SinkError(f"publishing {where} failed: {cause}") from None
        self.state = "succeeded"
        log.info("published %s (run %s)", self._what(), self.run_id)

    def record_stats(self, stats: Dict[str, Any]) -> None:
        """Replace the run's stats after publish (the publish stage's own time is known only then)."""
        from sqlalchemy import text

        if self.state != "succeeded":
            raise SinkError(f"{self._what()}: record_stats() comes after publish(), state is {self.state}")
        payload = dict(stats)
        payload.setdefault("sink", {t: r.__dict__ for t, r in self._results.items()})
        self._conn.execute(
            text(f"UPDATE {self._runs} SET stats = CAST(:st AS jsonb) WHERE run_id = :r"),
            {"st": json.dumps(payload, default=str), "r": self.run_id},
        )
        self._conn.commit()

    # ------------------------------------------------------------------ internals: connection and lock

    @property
    def _runs(self) -> str:
        return qualified(self.schema, "pipeline_runs")

    def _what(self) -> str:
        where = f"{self.schema} on {self.spec.describe()}"
        return f"pipeline {self.pipeline} for day {self.day.isoformat()} ({where})"

    def _day_key(self, day: date) -> int:
        return lock_key("day-run", self.schema, self.pipeline, day.isoformat())

    def _connect(self) -> None:
        try:
            self._engine = self.spec.engine()
            self._conn = self._engine.connect()
        except Exception as exc:
            self._release()
            cause = error_text(exc, self.spec)
            raise SinkError(f"cannot connect to PostgreSQL for {self._what()}: {cause}") from None

    def _take_day_lock(self) -> None:
        from sqlalchemy import text

        key = self._day_key(self.day)
        got = self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        self._conn.commit()
        if not got:
            holder = self._conn.execute(
                text(
                    f"SELECT run_id FROM {self._runs} WHERE pipeline = :p AND day = :d "
                    "AND status = 'running' ORDER BY started_at DESC LIMIT 1"
                ),
                {"p": self.pipeline, "d": self.day},
            ).scalar()
            self._conn.rollback()
            raise SinkError(
                f"another run of {self._what()} is in progress (run {holder or 'starting'}); "
                "wait for it to finish or stop it"
            )

    def _release(self) -> None:
        """Close the dedicated connection: PostgreSQL drops the session lock with it."""
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # the server may be gone; the lock went with the session
                log.debug("closing the run connection failed", exc_info=True)
        if self._engine is not None:
            self._engine.dispose()
        self._conn = None
        self._engine = None

    def _rollback(self) -> None:
        try:
            self._conn.rollback()
        except Exception:
            log.debug("rollback failed", exc_info=True)

    def _require_running(self, action: str) -> None:
        if self.state != "running":
            raise SinkError(f"{action}() needs a running DayRun (inside `with`); {self!r}")

    # ------------------------------------------------------------------ internals: bookkeeping

    def _finish(self, status, error, rows_in, rows_out, rows_rejected, stats) -> None:
        from sqlalchemy import text

        payload = dict(stats or {})
        payload.setdefault("sink", {t: r.__dict__ for t, r in self._results.items()})
        self._conn.execute(
            text(
                f"UPDATE {self._runs} SET status = :s, finished_at = now(), error = :e, rows_in = :ri, "
                "rows_out = :ro, rows_rejected = :rr, stats = CAST(:st AS jsonb) WHERE run_id = :r"
            ),
            {
                "s": status,
                "e": error,
                "ri": rows_in,
                "ro": rows_out,
                "rr": rows_rejected,
                "st": json.dumps(payload, default=str),
                "r": self.run_id,
            },
        )

    def _record_failure(self, reason: str, stats: Optional[Dict[str, Any]]) -> None:
        """Best effort: mark failed and drop staging; if the server is gone the next run cleans up."""
        self.state = "failed"
        try:
            self._rollback()
            self._drop_staging()
            self._finish("failed", self.spec.scrub(reason), None, None, None, stats)
            self._conn.commit()
        except Exception as exc:
            self._rollback()
            log.warning("could not record failure of run %s: %s", self.run_id, error_text(exc, self.spec))

    def _clean_up_dead_runs(self) -> None:
        """Runs of this pipeline left `running` by dead processes -> abandoned; orphan staging dropped."""
        from sqlalchemy import text

        rows = self._conn.execute(
            text(f"SELECT run_id, day FROM {self._runs} WHERE pipeline = :p AND status = 'running'"),
            {"p": self.pipeline},
        ).all()
        self._conn.commit()
        dead = [run_id for run_id, day in rows if day == self.day or self._lock_is_free(day)]
        if dead:
            self._conn.execute(
                text(
                    f"UPDATE {self._runs} SET status = 'abandoned', finished_at = now(), "
                    "error = 'the process ended before publish or failure was recorded' "
                    "WHERE run_id = ANY(:ids) AND status = 'running'"
                ),
                {"ids": dead},
            )
            log.warning("marked dead runs of %s abandoned: %s", self.pipeline, ", ".join(dead))
        for staging in self._orphan_staging_tables():
            self._conn.execute(text(f"DROP TABLE IF EXISTS {qualified(self.schema, staging)}"))
        self._conn.commit()

    def _lock_is_free(self, day: date) -> bool:
        """True if nobody holds the lock of `day` (its `running` row is a dead process's)."""
        from sqlalchemy import text

        key = self._day_key(day)
        got = self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        if got:
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        self._conn.commit()
        return bool(got)

    def _orphan_staging_tables(self) -> List[str]:
        """Staging tables whose run is not `running` (or unknown) in this schema."""
        from sqlalchemy import text

        names = self._conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = :s AND left(tablename, 5) = :p"),
            {"s": self.schema, "p": STAGING_PREFIX},
        ).scalars().all()
        by_run: Dict[str, List[str]] = {}
        for name in names:
            by_run.setdefault(name[len(STAGING_PREFIX):len(STAGING_PREFIX) + 32], []).append(name)
        if not by_run:
            return []
        alive = set(
            self._conn.execute(
                text(f"SELECT run_id FROM {self._runs} WHERE run_id = ANY(:ids) AND status = 'running'"),
                {"ids": list(by_run)},
            ).scalars()
        )
        return [name for run_id, tables in by_run.items() if run_id not in alive for name in tables]

    # ------------------------------------------------------------------ internals: staging

    def _target_columns(self, table: str) -> List[Tuple[str, str]]:
        cols = table_columns(self._conn, self.schema, table)
        self._conn.commit()
        if not cols:
            raise SinkError(
                f"table {self.schema}.{table} does not exist on {self.spec.describe()} "
                "(did upgrade_schema run for this schema?)"
            )
        return cols

    def _primary_key(self, table: str) -> List[str]:
        keys = primary_key(self._conn, self.schema, table)
        self._conn.commit()
        return keys

    def _create_staging(self, table: str, columns: List[Tuple[str, str]], logged: bool) -> str:
        """A copy of the target's columns, without constraints, plus the task partition id.

        UNLOGGED when its rows are copied into the target at publish; LOGGED when the table itself
        becomes the day's partition (an unlogged partition would lose the day in a crash).
        """
        from sqlalchemy import text

        staging = f"{STAGING_PREFIX}{self.run_id}_{table}"[:63]
        if staging in self._staged.values():
            raise SinkError(f"staging name {staging} is taken in this run; shorten the table name {table}")
        defs = ", ".join(f"{quote_ident(name)} {kind}" for name, kind in columns)
        stg = qualified(self.schema, staging)
        kind = "TABLE" if logged else "UNLOGGED TABLE"
        self._conn.execute(text(f"CREATE {kind} {stg} ({defs}, {PART_COLUMN} integer NOT NULL)"))
        self._conn.commit()
        self._staged[table] = staging
        return staging

    def _verify_staging(self, table: str, staging: str, result: StageResult, has_day: bool) -> None:
        """The staging table holds what the tasks reported, and only the run's day."""
        from sqlalchemy import text

        stg = qualified(self.schema, staging)
        count = self._conn.execute(text(f"SELECT count(*) FROM {stg}")).scalar()
        off_days, example = 0, None
        if has_day:
            off_days, example = self._conn.execute(
                text(f"SELECT count(*), min(day) FROM {stg} WHERE day IS DISTINCT FROM :d"), {"d": self.day}
            ).one()
        self._conn.commit()
        if count != result.rows_loaded:
            raise SinkError(
                f"staging of {self.schema}.{table} for day {self.day} holds {count} rows, "
                f"tasks reported {result.rows_loaded}"
            )
        if off_days:
            raise SinkError(
                f"{off_days} row(s) for {self.schema}.{table} carry a day other than the run's {self.day} "
                f"(e.g. {example}); publish replaces only the run's day"
            )

    def _is_day_partitioned(self, table: str) -> bool:
        """True for a target partitioned BY LIST (day); SinkError for any other partitioning."""
        from sqlalchemy import text

        key = self._conn.execute(
            text("SELECT pg_get_partkeydef(to_regclass(:t))"), {"t": qualified(self.schema, table)}
        ).scalar()
        self._conn.commit()
        if key is None:
            return False
        if key != PARTITION_KEY:
            raise SinkError(
                f"table {self.schema}.{table} is partitioned by {key}; publish can swap a day only "
                f"of a table partitioned by {PARTITION_KEY}"
            )
        partition = day_partition(table, self.day)
        if len(partition) + len("_pkey") > 63:
            raise SinkError(f"partition name {partition}_pkey of {self.schema}.{table} is longer than "
                            "63 characters; shorten the table name")
        return True

    def _staging_key(self, table: str) -> str:
        """Name of the staging table's primary key until publish renames it with its partition."""
        return f"{STAGING_PREFIX}{self.run_id}_pk{list(self._staged).index(table)}"

    def _prepare_partition(self, table: str, staging: str) -> None:
        """Turn the loaded staging table into a finished partition, in its own transaction.

        Dropping `_part` only marks the column dropped; the primary key is built by one sort;
        the CHECK lets ATTACH PARTITION skip its validation scan.
        """
        from sqlalchemy import text

        stg = qualified(self.schema, staging)
        parts = [
            f"DROP COLUMN {PART_COLUMN}",
            f"ADD CONSTRAINT {quote_ident(_DAY_CHECK)} CHECK (day = DATE '{self.day.isoformat()}')",
        ]
        if self._keys[table]:
            keys = ", ".join(quote_ident(k) for k in self._keys[table])
            parts.append(f"ADD CONSTRAINT {quote_ident(self._staging_key(table))} PRIMARY KEY ({keys})")
        self._conn.execute(text(f"ALTER TABLE {stg} " + ", ".join(parts)))
        self._conn.commit()

    def _swap_partition(self, table: str, staging: str) -> None:
        """Inside the publish transaction: the day's old partition out, the staging table in."""
        from sqlalchemy import text

        target = qualified(self.schema, table)
        bound = f"FOR VALUES IN ('{self.day.isoformat()}')"
        old = self._conn.execute(
            text(
                "SELECT n.nspname, c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE i.inhparent = to_regclass(:t) AND pg_get_expr(c.relpartbound, c.oid) = :b"
            ),
            {"t": target, "b": bound},
        ).all()
        for schema, name in old:
            self._conn.execute(text(f"ALTER TABLE {target} DETACH PARTITION {qualified(schema, name)}"))
            self._conn.execute(text(f"DROP TABLE {qualified(schema, name)}"))
        partition = day_partition(table, self.day)
        self._conn.execute(text(f"ALTER TABLE {target} ATTACH PARTITION {qualified(self.schema, staging)} "
                                + bound))
        self._conn.execute(text(f"ALTER TABLE {qualified(self.schema, staging)} RENAME TO "
                                f"{quote_ident(partition)}"))
        if self._keys[table]:
            self._conn.execute(text(f"ALTER INDEX {qualified(self.schema, self._staging_key(table))} "
                                    f"RENAME TO {quote_ident(partition + '_pkey')}"))

    def _drop_staging(self) -> None:
        from sqlalchemy import text

        for staging in self._staged.values():
            self._conn.execute(text(f"DROP TABLE IF EXISTS {qualified(self.schema, staging)}"))


def _order_by(keys: List[str]) -> str:
    """Rows in primary-key order fill the target's index page by page (measured ~25% faster)."""
    return " ORDER BY " + ", ".join(quote_ident(k) for k in keys) if keys else ""
