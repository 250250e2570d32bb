"""`process_data.py` with the Deequ engine, as a child process: it publishes the day and exits by itself.

The hand-made day, catalog and config of tests/test_end_to_end.py (PostgreSQL and moto servers of
tests/conftest.py). A missing Deequ jar, or one built for another Spark, stops the run at its
start with exit 2 naming the jar and the Spark version, before any data is read.
"""

from __future__ import annotations

import zipfile

import pytest

from spark_app.jvm import jar_for
from spark_app.quality.deequ_jar import POM_PROPERTIES
from tests import test_end_to_end as e2e
from tests.test_end_to_end import EXPECTED_DETAIL, EXPECTED_RATES, fetch, run_job, tables, write_conf

job = e2e.job  # the hand-made day, its catalog in moto's DynamoDB and a config (module-scoped fixture)
NO_JARS = {"spark.driver.extraClassPath": "", "spark.executor.extraClassPath": ""}


def with_quality(conf, engine, **spark_conf):
    spark = {**conf["spark"], "conf": {**conf["spark"]["conf"], **spark_conf}}
    return {**conf, "spark": spark, "quality": {"engine": engine}}


def test_a_day_with_the_deequ_engine_publishes_and_the_driver_exits_by_itself(job, pg_url):
    conf_path, tmp_path, conf = job
    result = run_job(write_conf(tmp_path / "deequ.yaml", with_quality(conf, "deequ")))  # timeout: 600 s
    assert result.returncode == 0, result.stderr[-4000:]
    assert "data-quality engine: deequ (quality.engine: deequ)" in result.stderr  # decided at the start
    assert "data-quality engine: deequ" in result.stdout  # the run's summary
    detail, rates = tables(pg_url)
    assert detail == sorted(EXPECTED_DETAIL, key=lambda r: (r[1], r[2]))
    assert [r[:6] for r in rates] == [r[:6] for r in EXPECTED_RATES]
    stats = fetch(pg_url, "SELECT stats FROM pipeline_runs ORDER BY started_at DESC LIMIT 1")[0][0]
    assert stats["stages"]["quality"]["engine"] == "deequ"


def test_auto_picks_deequ_when_the_jar_loads(job):
    conf_path, tmp_path, conf = job
    result = run_job(write_conf(tmp_path / "auto.yaml", with_quality(conf, "auto")), "quality")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "data-quality engine: deequ (quality.engine: auto)" in result.stderr
    assert "[deequ engine" in result.stdout and "quality gate PASSED" in result.stdout


def test_suggest_prints_deequs_suggestions_beside_ours_in_the_config_format(job):
    conf_path, tmp_path, conf = job
    result = run_job(write_conf(tmp_path / "suggest.yaml", with_quality(conf, "deequ")), "suggest")
    assert result.returncode == 0, result.stderr[-4000:]
    out = result.stdout
    assert "== suggested constraints for product_views (ours)" in out
    assert "== suggested constraints for product_views (Deequ's ConstraintSuggestionRunner)" in out
    assert "# as config (quality.checks), Deequ's ConstraintSuggestionRunner:" in out
    assert '  - {check: isComplete, column: "product_id"}' in out
    assert "UniqueIfApproximatelyUniqueRule" in out or "CompleteIfCompleteRule" in out


def assert_stopped_at_the_start(result, pg_url, runs_before, quarantine):
    assert result.returncode == 2, result.stderr[-4000:]
    assert "Traceback" not in result.stderr and "Py4J" not in result.stderr
    assert "> extract" not in result.stderr  # no stage started: nothing was read
    assert not quarantine.exists()
    assert fetch(pg_url, "SELECT count(*) FROM pipeline_runs") == runs_before


def test_deequ_engine_without_the_jar_is_a_config_error_before_any_data_is_read(job, pg_url):
    conf_path, tmp_path, conf = job
    quarantine = tmp_path / "quarantine-no-jar"
    setup = with_quality(conf, "deequ", **NO_JARS)
    setup["events"] = {**conf["events"], "quarantine_path": str(quarantine)}
    runs_before = fetch(pg_url, "SELECT count(*) FROM pipeline_runs")
    result = run_job(write_conf(tmp_path / "no-jar.yaml", setup))
    assert_stopped_at_the_start(result, pg_url, runs_before, quarantine)
    assert "no Deequ jar is on the driver class path" in result.stderr
    assert "expected deequ-2.0.7-spark-3.5.jar" in result.stderr and "Spark 3.5." in result.stderr


@pytest.fixture()
def spark_33_jar(tmp_path):
    """A stand-in for Deequ's Spark 3.3 build: the real 2.0.7-spark-3.5 jar, renamed, its pom.properties
    saying 2.0.7-spark-3.3 (the real 3.3 build is not fetched; only its name and metadata matter here)."""
    real = jar_for("deequ-")
    assert real, "run `make jars`"
    fake = tmp_path / "deequ-2.0.7-spark-3.3.jar"
    with zipfile.ZipFile(real) as src, zipfile.ZipFile(fake, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == POM_PROPERTIES:
                data = data.replace(b"2.0.7-spark-3.5", b"2.0.7-spark-3.3")
            dst.writestr(item, data)
    return fake


def test_a_deequ_jar_built_for_another_spark_is_a_config_error_naming_it_and_spark(job, pg_url, spark_33_jar):
    conf_path, tmp_path, conf = job
    quarantine = tmp_path / "quarantine-3.3"
    setup = with_quality(conf, "deequ", **{key: str(spark_33_jar) for key in NO_JARS})
    setup["events"] = {**conf["events"], "quarantine_path": str(quarantine)}
    runs_before = fetch(pg_url, "SELECT count(*) FROM pipeline_runs")
    result = run_job(write_conf(tmp_path / "jar-3.3.yaml", setup))
    assert_stopped_at_the_start(result, pg_url, runs_before, quarantine)
    assert f"the Deequ jar {spark_33_jar} is build 2.0.7-spark-3.3, but this is Spark 3.5." in result.stderr
    assert "pydeequ expects deequ-2.0.7-spark-3.5.jar" in result.stderr
