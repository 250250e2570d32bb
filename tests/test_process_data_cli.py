"""process_data.py checks its arguments and config before Spark starts, and says what is wrong."""

from __future__ import annotations

from datetime import date

import pytest
import yaml

import process_data

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
