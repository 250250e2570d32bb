"""SQL for tests: one statement in its own transaction, rows back as tuples."""

from __future__ import annotations

from typing import Any, List, Tuple


def sql(spec: Any, query: str, **params: Any) -> List[Tuple]:
    """Run `query` with `params` on `spec`'s database and commit; the rows it returns, if any."""
    from sqlalchemy import text

    engine = spec.engine()
    try:
        with engine.begin() as conn:
            result = conn.execute(text(query), params)
            return [tuple(r) for r in result.all()] if result.returns_rows else []
    finally:
        engine.dispose()
