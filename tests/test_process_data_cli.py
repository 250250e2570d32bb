"""process_data.py checks its arguments and config before Spark starts, and says what is wrong."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date

import pytest
import yaml

import process_data
from pipelines import load_pipeline
from spark_app.run_days import PIPELINES
from tests.support.paths import ROOT

GOOD = {
    "events": {"path": "/tmp/events"},
    "dynamodb": {"table": "catalog", "region": "us-east-1"},
    "postgres": {"url": "postgresql://etl@db:5432/catalog"},
}


def write_conf(tmp_path, data):
    path = tmp_path / "conf.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_a_malformed_date_exits_2_naming_it(capsys):
    code = process_data.main(["--pipeline", "catalog_match_rate", "--date", "2026-13-01", "--conf", "x.yaml"])
    assert code == 2
    assert "2026-13-01" in capsys.readouterr().err


def test_an_unknown_config_key_exits_2_naming_file_and_key(tmp_path, caplog):
    conf = write_conf(tmp_path, {**GOOD, "dynamodb": {**GOOD["dynamodb"], "tabel": "x"}})
    code = process_data.main(["--pipeline", "catalog_match_rate", "--date", "2026-11-19", "--conf", conf])
    assert code == 2
    assert f"{conf}: dynamodb.tabel: unknown key" in caplog.text


def test_a_password_in_the_url_is_refused(tmp_path, caplog):
    conf = write_conf(tmp_path, {**GOOD, "postgres": {"url": "postgresql://etl:hunter2@db/catalog"}})
    code = process_data.main(["--pipeline", "catalog_match_rate", "--date", "2026-11-19", "--conf", conf])
    assert code == 2
    assert "postgres.url: must not carry a password" in caplog.text
    assert "hunter2" not in caplog.text


def test_an_unknown_pipeline_exits_2(tmp_path, caplog):
    conf = write_conf(tmp_path, GOOD)
    assert process_data.main(["--pipeline", "nope", "--date", "2026-11-19", "--conf", conf]) == 2
    assert "unknown pipeline 'nope'" in caplog.text


def test_a_missing_config_file_exits_2(caplog):
    code = process_data.main(
        ["--pipeline", "catalog_match_rate", "--date", "2026-11-19", "--conf", "/no/such.yaml"]
    )
    assert code == 2
    assert "/no/such.yaml: config file not found" in caplog.text


def test_a_backfill_runs_consecutive_days_in_order():
    args = process_data.parse_args(
        ["--pipeline", "p", "--from", "2026-02-27", "--to", "2026-03-02", "--conf", "c.yaml"]
    )
    assert process_data.days_to_run(args) == [
        date(2026, 2, 27),
        date(2026, 2, 28),
        date(2026, 3, 1),
        date(2026, 3, 2),
    ]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--from", "2026-11-19", "--to", "2026-11-18"], "is before --from"),
        (["--from", "2026-11-19"], "give --date D, or --from D1 --to D2"),
        (["--date", "2026-11-19", "--from", "2026-11-18", "--to", "2026-11-19"], "exclude each other"),
        (["--from", "2020-01-01", "--to", "2026-01-01"], "over the limit"),
    ],
)
def test_bad_day_ranges_exit_2_before_spark_starts(tmp_path, caplog, argv, message):
    conf = write_conf(tmp_path, GOOD)
    assert process_data.main(["--pipeline", "catalog_match_rate", "--conf", conf, *argv]) == 2
    assert message in caplog.text


def test_a_config_file_that_is_not_utf8_exits_2_naming_it(tmp_path, caplog):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(yaml.safe_dump(GOOD).encode() + "# caf\xe9\n".encode("latin-1"))
    argv = ["--pipeline", "catalog_match_rate", "--date", "2026-11-19", "--conf", str(path)]
    code = process_data.main(argv)
    assert code == 2
    assert f"{path}: not UTF-8 text" in caplog.text


def test_allow_shrink_turns_the_guard_into_a_warning_for_this_run_only(tmp_path):
    conf = write_conf(tmp_path, GOOD)
    plain = process_data.parse_args(["--pipeline", "p", "--date", "2026-11-19", "--conf", conf])
    allowed = process_data.parse_args(["--pipeline", "p", "--date", "2026-11-19", "--conf", conf,
                                       "--allow-shrink"])
    cfg = process_data.load_config(conf)

    assert process_data.apply_overrides(cfg, plain).quality.shrink.allow is False
    assert process_data.apply_overrides(cfg, allowed).quality.shrink.allow is True


def cli(*argv):
    """process_data.py as a user types it."""
    return subprocess.run([sys.executable, str(ROOT / "process_data.py"), *argv], cwd=ROOT,
                          capture_output=True, text=True)


def test_bare_process_data_shows_every_command():
    res = cli()
    assert res.returncode == 2
    for name in process_data.COMMANDS:
        assert re.search(rf"^\s+{name}\s+\S", res.stderr, re.MULTILINE), name  # listed with what it does


def test_help_names_the_pipelines_there_are():
    assert PIPELINES == ("catalog_match_rate",)
    for name in PIPELINES:
        assert load_pipeline(name).NAME == name  # each name is a module of pipelines/
    for command in ("run", "quality", "suggest", "report"):
        shown = " ".join(cli(command, "--help").stdout.split())
        assert "--pipeline PIPELINE the pipeline, one of: catalog_match_rate" in shown


@pytest.mark.parametrize("command", ["quality", "suggest"])
def test_quality_and_suggest_without_a_day_ask_for_the_option_they_take(command):
    res = cli(command, "--pipeline", "catalog_match_rate", "--conf", "conf/local.yaml")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == (
        f"process_data.py {command}: error: the following arguments are required: --date")
    assert "--from" not in res.stderr


@pytest.mark.parametrize("text, message", [
    ("2026-02-30", "no such day: 2026-02-30 (February has 28 days in 2026)"),
    ("2028-02-30", "no such day: 2028-02-30 (February has 29 days in 2028)"),
    ("2026-04-31", "no such day: 2026-04-31 (April has 30 days in 2026)"),
    ("2026-13-01", "no such day: 2026-13-01 (months run from 01 to 12)"),
    ("19-11-2026", "not a date (YYYY-MM-DD): '19-11-2026'"),
    ("20261119", "not a date (YYYY-MM-DD): '20261119'"),  # the cluster's Python 3.9 would refuse it too
])
def test_a_day_that_does_not_exist_is_told_apart_from_a_malformed_one(text, message):
    res = cli("--pipeline", "catalog_match_rate", "--conf", "conf/local.yaml", "--date", text)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == f"process_data.py run: error: argument --date: {message}"
