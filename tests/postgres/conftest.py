"""Fixtures of the PostgreSQL tests: a migrated database per test module."""

from __future__ import annotations

import pytest

from spark_app.postgres.connect import ConnectionSpec
from spark_app.postgres.schema import upgrade_schema


@pytest.fixture(scope="module")
def spec(pg_url):
    """The module's database with the job's schema applied (test_schema and test_load use a bare one)."""
    s = ConnectionSpec(pg_url)
    upgrade_schema(s)
    return s
