"""The executor-side COPY writer, driven directly (no Spark): exact text, NUL rejection, retry safety."""

from __future__ import annotations

import threading
from datetime import date

import pyarrow as pa
import pytest
from sqlalchemy import text

from spark_app.postgres.connect import ConnectionSpec
from spark_app.postgres.load import copy_partition, format_arrow, format_python

DAY = date(2026, 11, 19)
STAGING = "_stg_unit_product_views"
COLUMNS = ["day", "advertiser_id", "product_id", "view_count", "matched"]

TRICKY_IDS = [
    "plain",
    "comma,inside",
    'quote"inside',
    "tab\tinside",
    "new\nline",
    "carriage\r\nreturn",
    "back\\slash",
    "\\N",
    "",
    "  spaced  ",
    "ünïcødé 日本語 🚀",
    "NULL",
]


@pytest.fixture(scope="module")
def spec(pg_url):
    return ConnectionSpec(pg_url)


@pytest.fixture()
def staging(spec):
    engine = spec.engine()
    with engine.begin() as conn:
        conn.execute(text(f'DROP TABLE IF EXISTS "{STAGING}"'))
        conn.execute(
            text(
                f'CREATE UNLOGGED TABLE "{STAGING}" (day date, advertiser_id bigint, product_id text, '
                "view_count bigint, matched boolean, _part integer NOT NULL)"
            )
        )
    yield engine
    engine.dispose()


def batch(ids, advertiser=1, view_count=1, matched=True):
    n = len(ids)
    return pa.RecordBatch.from_pydict(
        {
            "day": pa.array([DAY] * n, pa.date32()),
            "advertiser_id": pa.array([advertiser] * n, pa.int64()),
            "product_id": pa.array(ids, pa.string()),
            "view_count": pa.array([view_count] * n, pa.int64()),
            "matched": pa.array([matched] * n, pa.bool_()),
        }
    )


def staged_rows(engine):
    with engine.connect() as conn:
        return conn.execute(
            text(f'SELECT _part, advertiser_id, product_id, view_count, matched FROM "{STAGING}" '
                 "ORDER BY 1, 3")
        ).all()


@pytest.mark.parametrize("formatter", ["arrow", "python"])
def test_text_is_stored_exactly_and_nul_rows_are_rejected(spec, staging, formatter):
    ids = TRICKY_IDS + ["nul\x00inside", "\x00"]
    loaded, rejected = copy_partition(spec, "public", STAGING, COLUMNS, 3, [batch(ids)], 5, formatter)

    assert (loaded, rejected) == (len(TRICKY_IDS), 2)
    assert [r.product_id for r in staged_rows(staging)] == sorted(TRICKY_IDS)
    assert {r._part for r in staged_rows(staging)} == {3}


@pytest.mark.parametrize("formatter", ["arrow", "python"])
def test_nulls_stay_null_and_empty_text_stays_empty(spec, staging, formatter):
    rows = pa.RecordBatch.from_pydict(
        {
            "day": pa.array([DAY, DAY], pa.date32()),
            "advertiser_id": pa.array([7, 7], pa.int64()),
            "product_id": pa.array(["", "x"], pa.string()),
            "view_count": pa.array([None, 5], pa.int64()),
            "matched": pa.array([None, False], pa.bool_()),
        }
    )
    copy_partition(spec, "public", STAGING, COLUMNS, 0, [rows], 100, formatter)

    assert [tuple(r) for r in staged_rows(staging)] == [(0, 7, "", None, None), (0, 7, "x", 5, False)]


def test_columns_are_taken_by_name_not_position(spec, staging):
    shuffled = batch(["a", "b"], advertiser=9, view_count=4).select(
        ["matched", "product_id", "view_count", "day", "advertiser_id"]
    )
    copy_partition(spec, "public", STAGING, COLUMNS, 1, [shuffled], 100)

    assert [tuple(r) for r in staged_rows(staging)] == [(1, 9, "a", 4, True), (1, 9, "b", 4, True)]


def test_a_second_attempt_of_a_partition_replaces_the_first(spec, staging):
    copy_partition(spec, "public", STAGING, COLUMNS, 0, [batch(["a", "b", "c"])], 100)
    copy_partition(spec, "public", STAGING, COLUMNS, 1, [batch(["other"])], 100)
    copy_partition(spec, "public", STAGING, COLUMNS, 0, [batch(["a", "b", "c"], view_count=2)], 100)

    assert [(r._part, r.product_id, r.view_count) for r in staged_rows(staging)] == [
        (0, "a", 2),
        (0, "b", 2),
        (0, "c", 2),
        (1, "other", 1),
    ]


def test_concurrent_attempts_of_one_partition_leave_one_copy(spec, staging):
    ids = [f"p{i}" for i in range(2000)]
    threads = [
        threading.Thread(target=copy_partition, args=(spec, "public", STAGING, COLUMNS, 0, [batch(ids)], 500))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(staged_rows(staging)) == 2000


def test_a_failing_input_rolls_back_what_the_attempt_already_sent(spec, staging):
    def batches():
        yield batch([f"p{i}" for i in range(300)])
        raise RuntimeError("executor lost")

    with pytest.raises(RuntimeError, match="executor lost"):
        copy_partition(spec, "public", STAGING, COLUMNS, 0, batches(), 100)

    assert staged_rows(staging) == []


def test_arrow_and_python_formatting_write_the_same_csv():
    b = batch(TRICKY_IDS, advertiser=123456789012, view_count=3)

    assert format_arrow(b, 4) == format_python(b, 4)
