"""Runs on executors (local masters only): Spark's Python daemon, the workers' imports done first.

Spark starts one daemon per executor (`python -m pyspark.daemon`, PYTHONPATH led by Spark's own
`python/lib/pyspark.zip`) and forks a worker from it for each concurrent Python task; a worker
imports what its task needs on its first task. Two costs follow, paid again by every run:
the zip holds no compiled bytecode, so each worker compiles PySpark's SQL modules from source,
and each worker imports pyarrow, NumPy and the job's executor modules by itself.

This daemon, chosen by `spark.python.daemon.module` for local masters (`spark_app.session`),
drops the zip from the path when it is the one inside the PySpark installation this interpreter
would import anyway (the same files, compiled), imports the executor side once, then runs
PySpark's own daemon: the forked workers share the loaded modules. A module that fails to
import is left to the task that needs it, which reports the error as it always did.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
from typing import List

PRELOAD = (
    "numpy",
    "pyarrow",
    "pyarrow.compute",
    "pyarrow.ipc",
    "pyarrow.parquet",
    "pyspark.worker",
    "pyspark.sql.pandas.serializers",
    "pyspark.sql.pandas.types",
    "spark_app.events.scan",
    "spark_app.events.tables",
    "spark_app.events.views",
)


def installed_pyspark_zip(path: List[str]) -> str:
    """The entry of `path` that is the `pyspark.zip` of the PySpark installed beside it, or ''."""
    others = [p for p in path if not p.endswith("pyspark.zip")]
    spec = importlib.machinery.PathFinder.find_spec("pyspark", others)
    if spec is None or not spec.origin:
        return ""
    bundled = os.path.join(os.path.dirname(spec.origin), "python", "lib", "pyspark.zip")
    for entry in path:
        if entry.endswith("pyspark.zip") and os.path.realpath(entry) == os.path.realpath(bundled):
            return entry
    return ""


def preload(names=PRELOAD) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the task that imports it reports the problem
            pass


def main() -> None:
    zipped = installed_pyspark_zip(sys.path)
    if zipped:
        sys.path.remove(zipped)
    preload()
    from pyspark.daemon import manager

    manager()


if __name__ == "__main__":
    main()
