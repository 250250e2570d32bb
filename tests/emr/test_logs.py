"""Failed-step diagnosis: the probable cause from the step's and the containers' stderr, not the log."""

from __future__ import annotations

import gzip
import uuid

import boto3
import pytest

from spark_app.emr.logs import (
    bootstrap_failed,
    diagnose,
    diagnose_bootstrap,
    driver_stdout,
    last_python_traceback,
    parse_container_stderr,
    parse_step_stderr,
    step_stderr_key,
)
from tests.support.paths import DATA

APP2 = "application_1763618400000_0002"


def _text(name: str) -> str:
    return gzip.decompress((DATA / name).read_bytes()).decode()


def test_memory_kill_in_step_stderr_beats_the_generic_failure():
    app_id, causes = parse_step_stderr(_text("step_stderr_memory.gz"))
    assert app_id == "application_1763618400000_0001"
    best = min(causes, key=lambda c: c.rank)
    assert best.summary.startswith("a YARN container exceeded its memory limit")
    assert "47.3 GB of 47 GB physical memory used" in best.evidence[0]
    assert "spark.executor.memoryOverhead" in best.suggestion
    assert best.source == "step stderr"


def test_generic_step_stderr_names_the_application_and_the_spark_exception():
    app_id, causes = parse_step_stderr(_text("step_stderr_app_failed.gz"))
    assert app_id == APP2
    assert [c.summary for c in causes] == [
        f'Exception in thread "main" org.apache.spark.SparkException: Application {APP2} '
        "finished with failed status"
    ]


def test_driver_container_traceback_gives_the_exception_and_its_frame():
    (cause,) = [c for c in parse_container_stderr(_text("container_driver_stderr.gz"), "c1") if c.rank == 3]
    assert cause.summary == "ModuleNotFoundError: No module named 'pipelines'"
    assert cause.evidence[1] == "    from pipelines.registry import run_pipeline"
    assert "spark_app.zip (--py-files)" in cause.suggestion


def test_exit_status_of_process_data_is_translated():
    text = "diagnostics: User application exited with status 3\n final status: FAILED\n"
    _, causes = parse_step_stderr(text)
    assert causes[0].summary == (
        "process_data.py exited with code 3: the day's input is not ready yet (DataNotReady): retry later"
    )


def test_last_traceback_is_the_one_reported():
    lines = [
        "Traceback (most recent call last):",
        '  File "a.py", line 1, in <module>',
        "ValueError: first",
        "noise",
        "Traceback (most recent call last):",
        '  File "b.py", line 9, in run',
        "    load()",
        "spark_app.errors.SinkError: COPY into product_views failed",
    ]
    assert last_python_traceback(lines) == lines[4:]
    (cause,) = [c for c in parse_container_stderr("\n".join(lines), "c") if c.rank == 3]
    assert cause.summary == "spark_app.errors.SinkError: COPY into product_views failed"
    assert "PostgreSQL" in cause.suggestion


def test_step_stderr_key_follows_emr_log_layout():
    assert step_stderr_key("s3://logs-bkt/cmr/logs/", "j-ABC", "s-XYZ") == (
        "logs-bkt",
        "cmr/logs/j-ABC/steps/s-XYZ/stderr.gz",
    )
    assert step_stderr_key("s3://logs-bkt", "j-1", "s-1") == ("logs-bkt", "j-1/steps/s-1/stderr.gz")


@pytest.fixture()
def log_bucket(moto_server):
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    bucket = f"logs-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    return s3, bucket


def test_diagnose_reads_step_then_container_logs_from_s3(log_bucket):
    s3, bucket = log_bucket
    base = "cmr/logs/j-2AAA/"
    containers = f"{base}containers/{APP2}/container_1763618400000_0002_01"
    objects = {
        f"{base}steps/s-1BBB/stderr.gz": "step_stderr_app_failed.gz",
        f"{containers}_000001/stderr.gz": "container_driver_stderr.gz",
        f"{containers}_000002/stderr.gz": "container_executor_stderr.gz",
    }
    for key, name in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=(DATA / name).read_bytes())
    d = diagnose(s3, f"s3://{bucket}/cmr/logs/", "j-2AAA", "s-1BBB")
    assert d.application_id == APP2
    assert len(d.logs_read) == 3
    assert d.cause.summary == "ModuleNotFoundError: No module named 'pipelines'"
    assert d.cause.source == "container container_1763618400000_0002_01_000001 stderr"
    text = d.render()
    assert text.splitlines()[0] == "Probable cause: ModuleNotFoundError: No module named 'pipelines'"
    assert "SLF4J" not in text and "ShutdownHookManager" not in text


def test_diagnose_before_logs_arrive_says_so(log_bucket):
    s3, bucket = log_bucket
    d = diagnose(s3, f"s3://{bucket}/logs/", "j-NONE", "s-NONE")
    assert d.cause is None and d.logs_read == []
    assert "EMR copies logs there about every five minutes" in d.render()


def test_driver_stdout_is_the_applications_first_containers_stdout(log_bucket):
    s3, bucket = log_bucket
    base = "cmr/logs/j-OUT/"
    containers = f"{base}containers/{APP2}/container_1763618400000_0002_01"
    s3.put_object(Bucket=bucket, Key=f"{base}steps/s-OUT/stderr.gz",
                  Body=(DATA / "step_stderr_app_failed.gz").read_bytes())
    s3.put_object(Bucket=bucket, Key=f"{containers}_000002/stdout.gz", Body=gzip.compress(b"executor\n"))
    s3.put_object(Bucket=bucket, Key=f"{containers}_000001/stdout.gz",
                  Body=gzip.compress(b"stage extract: 8000000 rows\n"))
    uri, text = driver_stdout(s3, f"s3://{bucket}/cmr/logs/", "j-OUT", "s-OUT")
    assert uri == f"s3://{bucket}/{containers}_000001/stdout.gz"
    assert text == "stage extract: 8000000 rows\n"
    assert driver_stdout(s3, f"s3://{bucket}/cmr/logs/", "j-OUT", "s-NONE") == (None, "")


BOOTSTRAP_REASON = ("Master instance (i-0fa1c2) failed attempting to run bootstrap action file path "
                    "'s3://art/cmr/v1/setup.sh' for bootstrap action 1 with return code 1")


def _node_logs(s3, bucket):
    """Sample node logs as EMR copies them: the failing master and a core node whose check passed."""
    base = "cmr/logs/j-BOOT/node"
    s3.put_object(Bucket=bucket, Key=f"{base}/i-0fa1c2/bootstrap-actions/1/stderr.gz",
                  Body=(DATA / "bootstrap_node_failed_stderr.gz").read_bytes())
    s3.put_object(Bucket=bucket, Key=f"{base}/i-0b00b5/bootstrap-actions/1/stderr.gz",
                  Body=(DATA / "bootstrap_node_ok_stderr.gz").read_bytes())
    s3.put_object(Bucket=bucket, Key=f"{base}/i-0fa1c2/applications/hadoop-yarn/yarn-yarn-nodemanager.log.gz",
                  Body=gzip.compress(b"unrelated\n"))


def test_failed_bootstrap_names_node_action_and_the_tail_of_its_stderr(log_bucket):
    s3, bucket = log_bucket
    _node_logs(s3, bucket)
    assert bootstrap_failed(BOOTSTRAP_REASON) and not bootstrap_failed("Steps completed")
    d = diagnose_bootstrap(s3, f"s3://{bucket}/cmr/logs/", "j-BOOT", BOOTSTRAP_REASON,
                           ["check python for the deps archive"])
    assert d.cause.summary == "bootstrap action 1 (check python for the deps archive) failed on node i-0fa1c2"
    assert d.cause.source == f"s3://{bucket}/cmr/logs/j-BOOT/node/i-0fa1c2/bootstrap-actions/1/stderr.gz"
    assert d.cause.evidence == [gzip.decompress((DATA / "bootstrap_node_failed_stderr.gz").read_bytes())
                                .decode().strip()]
    assert d.cause.suggestion.startswith("'/usr/bin/python3' is Python 3.7; the dependency archive is built")
    assert d.render().splitlines()[0].startswith("Probable cause: bootstrap action 1 (check python")


def test_without_a_reason_naming_the_node_the_first_non_empty_stderr_is_taken(log_bucket):
    s3, bucket = log_bucket
    _node_logs(s3, bucket)
    d = diagnose_bootstrap(s3, f"s3://{bucket}/cmr/logs/", "j-BOOT", "Bootstrap failure", ["check"])
    assert d.cause.summary == "bootstrap action 1 (check) failed on node i-0fa1c2"
    assert len(d.logs_read) == 2  # the passing node's empty stderr first (sorted), then the failing one
    none = diagnose_bootstrap(s3, f"s3://{bucket}/cmr/logs/", "j-NONE", BOOTSTRAP_REASON, ["check"])
    assert none.cause is None and none.logs_read == []
