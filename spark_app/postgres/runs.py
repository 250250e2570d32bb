"""Driver side: the run log (`pipeline_runs`) and the per-day session lock of a run.

A run holds a session-level advisory lock on (schema, pipeline, day) for its whole life, on its
own connection: a second run of the same day fails fast, and a later run can tell which
`running` rows belong to dead processes (nobody holds their lock) and mark them `abandoned`.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any, Dict, List, Optional

from spark_app.errors import SinkError
from spark_app.postgres.connect import lock_key, qualified

log = logging.getLogger(__name__)


class RunLog:
    """Rows of `pipeline_runs` for one run of `pipeline` on `day`, on the run's connection."""

    def __init__(self, conn: Any, schema: str, pipeline: str, day: date, run_id: str) -> None:
        self.conn = conn
        self.schema = schema
        self.pipeline = pipeline
        self.day = day
        self.run_id = run_id
        self.table = qualified(schema, "pipeline_runs")

    def day_key(self, day: date) -> int:
        return lock_key("day-run", self.schema, self.pipeline, day.isoformat())

    def take_day_lock(self, what: str) -> None:
        """The run's day lock, or SinkError naming the run in progress."""
        from sqlalchemy import text

        key = self.day_key(self.day)
        got = self.conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        self.conn.commit()
        if got:
            return
        holder = self.conn.execute(
            text(
                f"SELECT run_id FROM {self.table} WHERE pipeline = :p AND day = :d "
                "AND status = 'running' ORDER BY started_at DESC LIMIT 1"
            ),
            {"p": self.pipeline, "d": self.day},
        ).scalar()
        self.conn.rollback()
        raise SinkError(
            f"another run of {what} is in progress (run {holder or 'starting'}); "
            "wait for it to finish or stop it"
        )

    def release_day_lock(self) -> None:
        """Give the day's lock back now (and any other this session holds), not when the session ends."""
        from sqlalchemy import text

        self.conn.execute(text("SELECT pg_advisory_unlock_all()"))
        self.conn.commit()

    def lock_is_free(self, day: date) -> bool:
        """True if nobody holds the lock of `day` (its `running` row is a dead process's)."""
        from sqlalchemy import text

        key = self.day_key(day)
        got = self.conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        if got:
            self.conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        self.conn.commit()
        return bool(got)

    def mark_dead_runs(self) -> List[str]:
        """Runs of this pipeline left `running` by dead processes become `abandoned` (not committed)."""
        from sqlalchemy import text

        rows = self.conn.execute(
            text(f"SELECT run_id, day FROM {self.table} WHERE pipeline = :p AND status = 'running'"),
            {"p": self.pipeline},
        ).all()
        self.conn.commit()
        dead = [run_id for run_id, day in rows if day == self.day or self.lock_is_free(day)]
        if dead:
            self.conn.execute(
                text(
                    f"UPDATE {self.table} SET status = 'abandoned', finished_at = now(), "
                    "error = 'the process ended before publish or failure was recorded' "
                    "WHERE run_id = ANY(:ids) AND status = 'running'"
                ),
                {"ids": dead},
            )
            log.warning("marked dead runs of %s abandoned: %s", self.pipeline, ", ".join(dead))
        return dead

    def start(self) -> None:
        from sqlalchemy import text

        self.conn.execute(
            text(
                f"INSERT INTO {self.table} (run_id, pipeline, day, status, started_at) "
                "VALUES (:r, :p, :d, 'running', now())"
            ),
            {"r": self.run_id, "p": self.pipeline, "d": self.day},
        )

    def finish(
        self,
        status: str,
        error: Optional[str],
        rows_in: Optional[int],
        rows_out: Optional[int],
        rows_rejected: Optional[int],
        stats: Dict[str, Any],
    ) -> None:
        """The run's final row (inside the caller's transaction)."""
        from sqlalchemy import text

        self.conn.execute(
            text(
                f"UPDATE {self.table} SET status = :s, finished_at = now(), error = :e, rows_in = :ri, "
                "rows_out = :ro, rows_rejected = :rr, stats = CAST(:st AS jsonb) WHERE run_id = :r"
            ),
            {
                "s": status,
                "e": error,
                "ri": rows_in,
                "ro": rows_out,
                "rr": rows_rejected,
                "st": json.dumps(stats, default=str),
                "r": self.run_id,
            },
        )

    def replace_stats(self, stats: Dict[str, Any]) -> None:
        from sqlalchemy import text

        self.conn.execute(
            text(f"UPDATE {self.table} SET stats = CAST(:st AS jsonb) WHERE run_id = :r"),
            {"st": json.dumps(stats, default=str), "r": self.run_id},
        )
        self.conn.commit()
