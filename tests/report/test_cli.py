"""`process_data.py report` and `prune` as a scheduler or a person calls them: files, summary, exit codes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import date, timedelta

import pytest
import yaml

from spark_app.local.servers import free_port
from tests.support import report_data as data
from tests.support.paths import ROOT


@pytest.fixture(scope="module")
def conf(pg_url, tmp_path_factory):
    data.seed(pg_url)
    return data.write_conf(tmp_path_factory.mktemp("report-cli"), pg_url)


def process_data(*args, env=None, cwd=ROOT):
    cmd = [sys.executable, str(ROOT / "process_data.py"), *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def report(conf, day=data.DAY, *extra, env=None, cwd=ROOT):
    args = ("report", "--pipeline", "catalog_match_rate", "--date", day, "--conf", conf, *extra)
    return process_data(*args, env=env, cwd=cwd)


def test_the_report_writes_the_page_and_prints_a_summary(conf, tmp_path):
    out = tmp_path / "r.html"
    done = report(conf, data.DAY, "--days", 7, "--out", out)
    assert done.returncode == 0, done.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert "in trouble: 3 advertiser(s) losing 120 views" in done.stdout
    assert "days with no successful run: 2026-03-04..2026-03-05" in done.stdout
    assert f"report: {out}" in done.stdout


def test_without_out_the_page_goes_to_the_current_directory_and_its_full_path_is_printed(conf, tmp_path):
    done = report(conf, data.DAY, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    page = tmp_path / f"catalog_match_rate-report-{data.DAY}.html"
    assert page.is_file()
    assert f"  report: {page}" in done.stdout.splitlines()


def test_without_out_the_local_stack_writes_the_page_under_its_own_folder(conf, tmp_path):
    local = tmp_path / "local.yaml"  # the embedded stack's config: its files live beside its PostgreSQL data
    local.write_text(conf.read_text() + "local_services:\n  postgres:\n    data_dir: .local/pg\n")
    done = report(local, data.DAY, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    page = tmp_path / ".local" / f"catalog_match_rate-report-{data.DAY}.html"
    assert page.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".local", "local.yaml"]  # nothing in the checkout
    assert f"  report: {page}" in done.stdout.splitlines()


def test_csv_writes_the_products_to_add_of_each_advertiser_in_trouble(conf, tmp_path):
    done = report(conf, data.DAY, "--days", 7, "--out", tmp_path / "r.html", "--csv", tmp_path / "csv")
    assert done.returncode == 0, done.stderr
    files = sorted(p.name for p in (tmp_path / "csv").iterdir())
    assert files == [f"products-to-add-{a}-{data.DAY}.csv" for a in (1, 2, 5)]
    with open(tmp_path / "csv" / f"products-to-add-1-{data.DAY}.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [
        "advertiser_id",
        "product_id",
        "views_on_day",
        "unmatched_days_in_window",
        "window_days",
    ]
    assert rows[1:] == [["1", p, str(v), str(n), "7"] for p, v, n in data.EXPECTED_PRODUCTS_1]


@pytest.mark.parametrize("day", [data.FAILED_ONLY, data.NO_RUN, "2030-01-01"])
def test_a_day_with_no_published_run_exits_3_saying_so(conf, tmp_path, day):
    done = report(conf, day, "--out", tmp_path / "r.html")
    assert done.returncode == 3
    assert f"no published run of catalog_match_rate for {day}" in done.stderr
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("days", [367, 0])
def test_a_window_over_366_days_or_empty_is_refused_with_exit_2(conf, days):
    done = report(conf, data.DAY, "--days", days)
    assert done.returncode == 2
    assert f"--days {days}: a report covers 1 to 366 days" in done.stderr


def test_an_unknown_pipeline_exits_2(conf):
    done = process_data("report", "--pipeline", "nope", "--date", data.DAY, "--conf", conf)
    assert done.returncode == 2 and "unknown pipeline 'nope'" in done.stderr


def test_an_unreachable_database_exits_5_without_the_password(tmp_path):
    conf = data.write_conf(
        tmp_path, f"postgresql://etl@127.0.0.1:{free_port()}/nowhere", password_env="RPT_PW"
    )
    secret = "s3cr3t-Pa55word"
    done = report(conf, data.DAY, "--out", tmp_path / "r.html", env={**os.environ, "RPT_PW": secret})
    assert done.returncode == 5
    assert "reading the report of catalog_match_rate for 2026-03-07 from 127.0.0.1" in done.stderr
    assert secret not in done.stderr + done.stdout


def test_the_report_starts_no_spark(conf, tmp_path):
    code = (
        "import sys, process_data\n"
        f"rc = process_data.main(['report', '--pipeline', 'catalog_match_rate', '--date', '{data.DAY}', "
        f"'--conf', {str(conf)!r}, '--out', {str(tmp_path / 'r.html')!r}])\n"
        "print(rc, 'pyspark' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.split()[-2:] == ["0", "False"], done.stderr


def test_report_settings_are_checked_naming_file_and_key(tmp_path):
    conf = data.write_conf(tmp_path, "postgresql://etl@127.0.0.1:5432/db")
    conf.write_text(conf.read_text() + "report:\n  top_advertisers: 0\n")
    done = report(conf, data.DAY)
    assert done.returncode == 2 and f"{conf}: report.top_advertisers: must be at least 1" in done.stderr


def test_an_unwritable_output_is_a_clear_error(conf, tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    done = report(conf, data.DAY, "--out", tmp_path / "taken" / "r.html")
    assert done.returncode == 1 and "cannot write the report" in done.stderr


SAMPLE_DAY = date(2026, 11, 19)  # make run's DATE


def seed_sample_window(pg_url: str, cfg) -> None:
    """What `make run` publishes for its sample days: the generator's truth of each day's rates
    (the pipeline publishes exactly these: tests/local, and make run's "vs sample truth" column)."""
    from sqlalchemy import text

    from spark_app.local.sample_data import describe_day
    from spark_app.local.stack import sample_spec
    from spark_app.postgres.connect import ConnectionSpec

    sample = cfg.local_services.sample
    spec = sample_spec(sample, SAMPLE_DAY)
    engine = ConnectionSpec(pg_url).engine()
    with engine.begin() as conn:
        for n in range(sample.days - 1, -1, -1):
            day = SAMPLE_DAY - timedelta(days=n)
            for adv, r in describe_day(ROOT, day, spec).expected_rates().items():
                conn.execute(
                    text("INSERT INTO advertiser_match_rates VALUES (:d, :a, :tp, :mp, :tv, :mv, :r)"),
                    {"d": day, "a": adv, "tp": r["total_products"], "mp": r["matched_products"],
                     "tv": r["total_views"], "mv": r["matched_views"], "r": r["match_rate"]},
                )  # fmt: skip
            conn.execute(
                text(
                    "INSERT INTO pipeline_runs (run_id, pipeline, day, status, started_at, finished_at, "
                    "stats) VALUES (:r, 'catalog_match_rate', :d, 'succeeded', :t, :t, CAST(:st AS jsonb))"
                ),
                {"r": f"sample-{day}", "d": day, "t": f"{day + timedelta(days=1)} 06:00:00+00",
                 "st": json.dumps({"counts": {}})},
            )  # fmt: skip
    engine.dispose()


def test_the_summary_shown_in_docs_report_md_is_the_sample_days(conf, pg_url, tmp_path):
    from spark_app.config import load_config

    cfg = load_config(ROOT / "conf" / "local.yaml")
    seed_sample_window(pg_url, cfg)
    local = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text())
    local["postgres"]["url"] = pg_url
    (tmp_path / "local.yaml").write_text(yaml.safe_dump(local))

    done = report(tmp_path / "local.yaml", SAMPLE_DAY, "--days", cfg.local_services.sample.days,
                  "--out", tmp_path / "r.html")

    assert done.returncode == 0, done.stderr
    doc = (ROOT / "docs" / "report.md").read_text().split("\n```\n")
    shown = next(block for block in doc if block.startswith("catalog_match_rate on ")).splitlines()
    shown = shown[: shown.index("  ...")]
    assert done.stdout.splitlines()[: len(shown)] == shown
