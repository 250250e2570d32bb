"""Local Python workers fork from a daemon that has already imported what every task imports."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from spark_app.local.worker_daemon import installed_pyspark_zip
from spark_app.session import python_workers_conf

PYSPARK_DIR = Path(__import__("pyspark").__file__).parent
BUNDLED_ZIP = str(PYSPARK_DIR / "python" / "lib" / "pyspark.zip")


def _site_packages() -> str:
    return str(PYSPARK_DIR.parent)


def test_the_zip_inside_the_installed_pyspark_is_the_one_left_out():
    path = [BUNDLED_ZIP, str(PYSPARK_DIR / "python" / "lib" / "py4j-0.10.9.7-src.zip"), _site_packages()]

    assert installed_pyspark_zip(path) == BUNDLED_ZIP


def test_a_pyspark_zip_of_another_installation_stays(tmp_path):
    other = tmp_path / "spark" / "python" / "lib" / "pyspark.zip"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"")

    assert installed_pyspark_zip([str(other), _site_packages()]) == ""
    assert installed_pyspark_zip([BUNDLED_ZIP]) == ""  # no installed PySpark beside it: keep the zip


def test_local_sessions_name_the_daemon_and_the_checkout_for_the_workers():
    conf = python_workers_conf()

    assert conf["spark.python.daemon.module"] == "spark_app.local.worker_daemon"
    assert Path(conf["spark.executorEnv.PYTHONPATH"], "spark_app", "session.py").is_file()


def _what_a_worker_finds(batches):
    import pyarrow as pa

    loaded = "pyarrow.compute" in sys.modules and "spark_app.events.views" in sys.modules
    import pyspark

    for _ in batches:
        row = {"pyspark": [pyspark.__file__], "loaded": [loaded], "pid": [os.getpid()]}
        yield pa.RecordBatch.from_pydict(row)


def test_a_task_runs_in_a_worker_that_has_the_compiled_pyspark_and_the_executor_modules_loaded(spark):
    rows = spark.range(2, numPartitions=2).mapInArrow(
        _what_a_worker_finds, "pyspark string, loaded boolean, pid long"
    ).collect()

    assert {Path(r["pyspark"]).parent for r in rows} == {PYSPARK_DIR}  # not pyspark.zip/pyspark
    assert all(r["loaded"] for r in rows)
