"""Schema migrations (Alembic), run programmatically by the driver before a day is loaded.

No alembic.ini: the script location is the `migrations` folder next to this module (extracted to
a temporary folder when the package runs from a zip, as with spark-submit --py-files), and the
target schema travels in `Config.attributes`. Every upgrade runs in one transaction that first
takes a transaction-level advisory lock, so two drivers starting at once apply each revision
exactly once: the second waits, then finds the database at head.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from typing import Optional

from spark_app.errors import SinkError
from spark_app.postgres.connect import ConnectionSpec, check_identifier, error_text, lock_key, quote_ident

_extracted_dir: Optional[str] = None


def upgrade_schema(spec: ConnectionSpec, schema: str = "public") -> None:
    """Bring `schema` to the newest revision; idempotent and safe when run concurrently."""
    from alembic import command
    from sqlalchemy import text

    check_identifier(schema, "schema")
    engine = spec.engine()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key("migrations", schema)})
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}"))
            cfg = alembic_config(schema)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
    except SinkError:
        raise
    except Exception as exc:
        raise SinkError(
            f"schema migration of {schema!r} on {spec.describe()} failed: {error_text(exc, spec)}"
        ) from None
    finally:
        engine.dispose()


def current_revision(spec: ConnectionSpec, schema: str = "public") -> Optional[str]:
    """The revision `schema` is at, or None before the first upgrade."""
    from sqlalchemy import text

    engine = spec.engine()
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f"{quote_ident(schema)}.alembic_version"}
            ).scalar()
            if not exists:
                return None
            query = f"SELECT version_num FROM {quote_ident(schema)}.alembic_version"
            return conn.execute(text(query)).scalar()
    finally:
        engine.dispose()


def alembic_config(schema: str):
    """An Alembic Config pointing at our migrations, with `schema` for env.py and the revisions."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", migrations_dir())
    cfg.attributes["schema"] = schema
    return cfg


def migrations_dir() -> str:
    """The folder holding env.py and versions/; extracted once when we run from a zip archive."""
    global _extracted_dir
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")
    if os.path.isdir(here):
        return here
    if _extracted_dir is None:
        _extracted_dir = _extract_from_zip(here)
    return _extracted_dir


def _extract_from_zip(path: str) -> str:
    """Copy `<archive>.zip/<inner>/...` to a temporary folder (Alembic needs real files)."""
    marker = ".zip" + os.sep
    archive, sep, inner = path.partition(marker)
    if not sep:
        raise SinkError(f"migrations folder {path} not found (broken installation?)")
    target = tempfile.mkdtemp(prefix="catalog_migrations_")
    prefix = inner.replace(os.sep, "/").rstrip("/") + "/"
    with zipfile.ZipFile(archive + ".zip") as zf:
        for name in zf.namelist():
            if name.startswith(prefix) and not name.endswith("/") and "__pycache__" not in name:
                dest = os.path.join(target, *name[len(prefix):].split("/"))
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with open(dest, "wb") as out:
                    out.write(zf.read(name))
    if not os.path.isfile(os.path.join(target, "env.py")):
        raise SinkError(f"migrations not found in {archive}.zip under {inner}")
    return target
