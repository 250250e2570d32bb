"""Schema migrations: the specified tables in the chosen schema; idempotent, race-safe, run from a zip."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import zipfile
from datetime import date

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from spark_app.errors import SinkError
from spark_app.postgres.connect import ConnectionSpec
from spark_app.postgres.schema import alembic_config, current_revision, upgrade_schema
from tests.support.paths import ROOT

HEAD = ScriptDirectory.from_config(alembic_config("public")).get_current_head()


@pytest.fixture(scope="module")
def spec(pg_url):
    return ConnectionSpec(pg_url)


def columns(spec, schema, table):
    engine = spec.engine()
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = :s AND table_name = :t ORDER BY ordinal_position"
            ),
            {"s": schema, "t": table},
        ).all()
        pk = conn.execute(
            text(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
                "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                "WHERE i.indrelid = to_regclass(:q) AND i.indisprimary "
                "ORDER BY array_position(i.indkey, a.attnum)"
            ),
            {"q": f'"{schema}"."{table}"'},
        ).scalars().all()
    engine.dispose()
    return [tuple(r) for r in rows], list(pk)


def test_upgrade_creates_the_three_tables_in_the_chosen_schema(spec):
    upgrade_schema(spec, schema="etl")

    assert current_revision(spec, "etl") == HEAD
    assert current_revision(spec, "public") is None
    assert columns(spec, "etl", "product_views") == (
        [
            ("day", "date"),
            ("advertiser_id", "bigint"),
            ("product_id", "text"),
            ("view_count", "bigint"),
            ("matched", "boolean"),
        ],
        ["day", "advertiser_id", "product_id"],
    )
    assert columns(spec, "etl", "advertiser_match_rates") == (
        [
            ("day", "date"),
            ("advertiser_id", "bigint"),
            ("total_products", "bigint"),
            ("matched_products", "bigint"),
            ("total_views", "bigint"),
            ("matched_views", "bigint"),
            ("match_rate", "double precision"),
        ],
        ["day", "advertiser_id"],
    )
    assert columns(spec, "etl", "pipeline_runs") == (
        [
            ("run_id", "text"),
            ("pipeline", "text"),
            ("day", "date"),
            ("status", "text"),
            ("rows_in", "bigint"),
            ("rows_out", "bigint"),
            ("rows_rejected", "bigint"),
            ("started_at", "timestamp with time zone"),
            ("finished_at", "timestamp with time zone"),
            ("error", "text"),
            ("stats", "jsonb"),
        ],
        ["run_id"],
    )


def test_run_status_is_limited_to_the_four_states(spec):
    upgrade_schema(spec, schema="etl")
    engine = spec.engine()
    with pytest.raises(Exception, match="pipeline_runs_status_check"), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO etl.pipeline_runs (run_id, pipeline, day, status) "
                "VALUES ('x', 'p', '2026-11-19', 'ok')"
            )
        )
    engine.dispose()


def test_upgrade_is_idempotent_and_safe_when_drivers_race(spec):
    errors = []

    def upgrade():
        try:
            upgrade_schema(spec, schema="raced")
        except Exception as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=upgrade) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    upgrade_schema(spec, schema="raced")

    assert errors == []
    assert current_revision(spec, "raced") == HEAD


def test_a_schema_name_that_is_not_an_identifier_is_refused(spec):
    with pytest.raises(SinkError, match="schema 'etl; drop' is not a plain SQL identifier"):
        upgrade_schema(spec, schema="etl; drop")


def test_migrations_run_from_the_shipped_zip(spec, tmp_path):
    archive = tmp_path / "app.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in (ROOT / "spark_app").rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, path.relative_to(ROOT).as_posix())
    code = (
        "import sys; from spark_app.postgres.connect import ConnectionSpec; "
        "import spark_app.postgres.schema as s; "
        "assert '.zip' in s.__file__, s.__file__; "
        "s.upgrade_schema(ConnectionSpec(sys.argv[1]), 'zipped'); print(s.migrations_dir())"
    )
    env = dict(os.environ, PYTHONPATH=str(archive))
    proc = subprocess.run(
        [sys.executable, "-c", code, spec.url],
        capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=120,
    )

    assert proc.returncode == 0, proc.stderr
    assert current_revision(spec, "zipped") == HEAD


def test_the_unpartitioned_product_views_migrates_with_its_rows_and_back(spec):
    from alembic import command

    def migrate(step, revision):
        engine = spec.engine()
        with engine.connect() as conn:
            conn.execute(text('CREATE SCHEMA IF NOT EXISTS "legacy"'))
            cfg = alembic_config("legacy")
            cfg.attributes["connection"] = conn
            step(cfg, revision)
            conn.commit()
        engine.dispose()

    def rows(query):
        engine = spec.engine()
        with engine.connect() as conn:
            out = [tuple(r) for r in conn.execute(text(query)).all()]
        engine.dispose()
        return out

    stored = [
        (date(2026, 11, 18), 1, "a", 3, True),
        (date(2026, 11, 18), 2, "b", None, None),
        (date(2026, 11, 19), 1, "a", 7, False),
    ]
    everything = "SELECT * FROM legacy.product_views ORDER BY day, advertiser_id, product_id"
    migrate(command.upgrade, "0002")
    engine = spec.engine()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO legacy.product_views VALUES (:d, :a, :p, :v, :m)"),
                     [dict(zip("dapvm", r)) for r in stored])
    engine.dispose()

    upgrade_schema(spec, schema="legacy")

    assert current_revision(spec, "legacy") == HEAD
    assert rows(everything) == stored
    assert rows(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), (SELECT count(*) FROM legacy.product_views v "
        "WHERE v.tableoid = c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'legacy.product_views'::regclass ORDER BY 1"
    ) == [
        ("product_views_d20261118", "FOR VALUES IN ('2026-11-18')", 2),
        ("product_views_d20261119", "FOR VALUES IN ('2026-11-19')", 1),
    ]
    assert columns(spec, "legacy", "product_views")[1] == ["day", "advertiser_id", "product_id"]
    assert rows("SELECT to_regclass('legacy.product_views_unpartitioned')") == [(None,)]

    migrate(command.downgrade, "0002")

    assert rows(everything) == stored
    assert rows("SELECT relkind FROM pg_class WHERE oid = 'legacy.product_views'::regclass") == [("r",)]
