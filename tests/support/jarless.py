"""Run a snippet against a Spark session WITHOUT the project's jars, in a child process.

The driver's class path is fixed when its JVM starts, and the tests' shared session has the jars
of .jars/ (Deequ among them); "no Deequ jar" therefore needs a JVM of its own. The child builds a
local[1] session whose spark.driver/executor.extraClassPath are empty (the config's spark.conf
replaces the fetched jars' class path), runs the snippet with `spark` in scope and prints what
the snippet prints.

    python -m tests.support.jarless < snippet.py
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.paths import ROOT

NO_JARS = {"spark.driver.extraClassPath": "", "spark.executor.extraClassPath": ""}


def run_without_jars(snippet: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    return subprocess.run(
        [sys.executable, "-m", "tests.support.jarless"],
        input=snippet,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def main() -> None:
    from spark_app.config import SparkConfig
    from spark_app.session import build_session

    snippet = sys.stdin.read()
    spark = build_session(SparkConfig(master="local[1]", app_name="jarless", conf=dict(NO_JARS)))
    try:
        exec(compile(snippet, "<snippet>", "exec"), {"spark": spark})  # noqa: S102 - test snippets only
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
