"""Driver side: bounded history of `product_views`: day partitions past the retention are dropped.

The detail table grows by a partition a day; `advertiser_match_rates` (one row per advertiser
and day) and the run log `pipeline_runs` are small and kept whole. The cut-off counts back from
the NEWEST stored day, not from the day just published: a backfill of an old day does not drop
recent history, and since `postgres.retention_days` is at least the longest report window
(366 days), no partition a report of a recent day reads is ever dropped. Called after each
publish (`DayRun(retention_days=...)`) and by `process_data.py prune` (with a dry run).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, List, Optional, Tuple

from spark_app.errors import SinkError
from spark_app.postgres.connect import ConnectionSpec, error_text, qualified

log = logging.getLogger(__name__)

TABLE = "product_views"
_BOUND = re.compile(r"^FOR VALUES IN \('(\d{4}-\d{2}-\d{2})'\)$")


@dataclass(frozen=True)
class PruneResult:
    cutoff: Optional[date]  # partitions of days before this go; None: nothing stored
    dropped: List[Tuple[str, date]]  # (partition, day), oldest first
    kept: int  # partitions left
    dry_run: bool = False

    def format(self) -> str:
        verb = "would drop" if self.dry_run else "dropped"
        if self.cutoff is None:
            return f"{TABLE}: no day partitions stored; nothing to prune"
        days = ", ".join(str(d) for _, d in self.dropped) or "none"
        return (
            f"{TABLE}: keeping days from {self.cutoff} on; {verb} {len(self.dropped)} partition(s) "
            f"({days}); {self.kept} kept"
        )


def day_partitions(conn: Any, schema: str, table: str = TABLE) -> List[Tuple[str, date]]:
    """(partition name, day) of every `FOR VALUES IN ('<day>')` partition of `table`, oldest first."""
    from sqlalchemy import text

    rows = conn.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:t)"
        ),
        {"t": qualified(schema, table)},
    ).all()
    out = []
    for name, bound in rows:
        m = _BOUND.match(bound or "")
        if m:  # a partition of one day; anything else (a DEFAULT partition) is not ours to drop
            out.append((name, date.fromisoformat(m.group(1))))
    return sorted(out, key=lambda p: p[1])


def prune_partitions(conn: Any, schema: str, retention_days: int, dry_run: bool = False) -> PruneResult:
    """Drop the partitions of days older than `retention_days` before the newest stored day."""
    from sqlalchemy import text

    parts = day_partitions(conn, schema)
    if not parts:
        conn.commit()
        return PruneResult(None, [], 0, dry_run)
    cutoff = parts[-1][1] - timedelta(days=retention_days - 1)
    old = [(name, day) for name, day in parts if day < cutoff]
    if not dry_run:
        target = qualified(schema, TABLE)
        for name, _ in old:  # detach first: dropping a partition alone locks the parent the same way
            conn.execute(text(f"ALTER TABLE {target} DETACH PARTITION {qualified(schema, name)}"))
            conn.execute(text(f"DROP TABLE {qualified(schema, name)}"))
    conn.commit()
    result = PruneResult(cutoff, old, len(parts) - (0 if dry_run else len(old)), dry_run)
    if old:
        log.info("%s", result.format())
    return result


def prune(spec: ConnectionSpec, schema: str, retention_days: int, dry_run: bool = False) -> PruneResult:
    """`prune_partitions` on a connection of its own; SinkError (exit 5) when PostgreSQL fails."""
    engine = spec.engine()
    try:
        with engine.connect() as conn:
            return prune_partitions(conn, schema, retention_days, dry_run)
    except SinkError:
        raise
    except Exception as exc:
        raise SinkError(
            f"pruning {schema}.{TABLE} on {spec.describe()} failed: {error_text(exc, spec)}"
        ) from None
    finally:
        engine.dispose()
