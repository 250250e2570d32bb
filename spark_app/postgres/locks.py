"""Driver side: how long the publish may wait for its locks, and who it waited for.

Swapping a day's partition takes an ACCESS EXCLUSIVE lock on the target. Behind a reader that
keeps a transaction open, the publish would wait forever, and every new reader would queue
behind the publish: the whole table unreadable. So each publish attempt runs under
`SET LOCAL lock_timeout`; on a timeout the transaction rolls back (readers go on, the old day
stays), the attempt is retried after a growing pause, and after the last attempt the run
fails naming the sessions that held a lock on the tables (pid, application, state).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, List, Optional

log = logging.getLogger(__name__)

LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of lock_timeout


@dataclass(frozen=True)
class LockPolicy:
    """At most `timeout_seconds` of waiting per attempt, `attempts` in all, pauses doubling from
    `backoff_seconds`."""

    timeout_seconds: float = 2.0
    attempts: int = 5
    backoff_seconds: float = 1.0

    def pause(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return self.backoff_seconds * (2 ** (attempt - 1))

    def set_local(self, conn: Any) -> None:
        """Bound the waits of the current transaction (only this transaction: SET LOCAL)."""
        from sqlalchemy import text

        conn.execute(text(f"SET LOCAL lock_timeout = '{int(self.timeout_seconds * 1000)}ms'"))


    def log_timeout(self, table: Optional[str], attempt: int, blockers: List[str]) -> None:
        log.warning("publish of %s: lock not granted within %g s (attempt %d of %d); held by %s",
                    table, self.timeout_seconds, attempt, self.attempts,
                    "; ".join(blockers) or "sessions that have ended since")


def is_lock_timeout(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "pgcode", None) == LOCK_NOT_AVAILABLE


def blocking_sessions(conn: Any, tables: List[str]) -> List[str]:
    """Other sessions holding a lock on `tables` (qualified names) or their partitions, described."""
    from sqlalchemy import text

    rows = conn.execute(
        text(
            "WITH rels AS (SELECT to_regclass(t) AS oid FROM unnest(CAST(:tables AS text[])) t "
            "UNION SELECT i.inhrelid FROM pg_inherits i "
            "WHERE i.inhparent = ANY(SELECT to_regclass(t) FROM unnest(CAST(:tables AS text[])) t)) "
            "SELECT DISTINCT a.pid, a.application_name, a.state FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.granted AND l.relation IN (SELECT oid FROM rels) AND l.pid <> pg_backend_pid() "
            "ORDER BY a.pid"
        ),
        {"tables": tables},
    ).all()
    conn.rollback()
    return [f"pid {pid} (application {app or ''!r}, {state or 'unknown state'})" for pid, app, state in rows]
