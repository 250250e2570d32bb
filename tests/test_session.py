"""Local sessions: the driver JVM's options and what the Python workers import, as they report them."""

from __future__ import annotations

import os
import sys


def _distutils_of_a_worker(batches):
    import distutils.version  # what PySpark's Arrow types import

    import pyarrow as pa

    for _ in batches:
        yield pa.RecordBatch.from_pydict({"path": [distutils.version.__file__]})


def test_workers_take_the_interpreters_own_distutils_not_setuptools_redirect(spark):
    if sys.version_info >= (3, 12):  # no distutils of its own: setuptools' is the only one
        assert os.environ.get("SETUPTOOLS_USE_DISTUTILS") != "stdlib"
        return
    [row] = spark.range(1, numPartitions=1).mapInArrow(_distutils_of_a_worker, "path string").collect()

    assert "setuptools" not in row["path"]


def test_the_short_jobs_driver_runs_with_the_quick_compiler_and_serial_gc(spark):
    """The tests' session is built like the daily run's (`quick_jit=True`): the JVM says so itself."""
    runtime = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    arguments = list(runtime.getInputArguments())

    assert "-XX:TieredStopAtLevel=1" in arguments
    assert "-XX:+UseSerialGC" in arguments


def test_the_local_driver_jvm_allocates_natively_from_two_arenas(spark):
    """glibc reads MALLOC_ARENA_MAX at start: the JVM's own environment must hold it."""
    env = spark.sparkContext._jvm.java.lang.System.getenv("MALLOC_ARENA_MAX")

    assert env == "2"
