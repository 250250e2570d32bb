"""EMR Serverless: every field of the requests, the application and job run on moto, following, cancel, logs.

Requests and the application/job-run calls go to moto's server over HTTP. Following a run through
its states needs them to change between polls, which moto does not do (its runs are SUCCESS at
once) and a server in another process cannot be told to do; so the follow and cancel tests - only
these - run moto in-process (`moto.mock_aws`) and move the run's state from the `sleep` callback,
as test_status.py does for EMR steps.
"""

from __future__ import annotations

import uuid

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emrserverless.models import emrserverless_backends

from spark_app.config import config_from_mapping
from spark_app.emr import deps, serverless
from spark_app.emr.launch import PROJECT_ROOT
from spark_app.emr.sizing import load_instance_types
from spark_app.errors import ConfigError
from tests.support.paths import DATA

VERSION = "0123456789ab"
TABLE = load_instance_types()
ROLE = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/cmr-serverless-job"
DEPS = f"s3://art-bkt/cmr/deps/{deps.archive_name(deps.read_lock(PROJECT_ROOT))}"


def _cfg(endpoint_url=None, **sls):
    return config_from_mapping({
        "events": {"path": "s3://ev/events"},
        "dynamodb": {"table": "catalog", "region": "us-east-1"},
        "postgres": {"url": "postgresql://etl@db:5432/catalog", "password_secret": "prod/pg"},
        "emr": {
            "bucket": "art-bkt", "prefix": "cmr", "endpoint_url": endpoint_url, "release_label": "emr-7.5.0",
            "core": {"instance_type": "r5.4xlarge", "count": 2}, "tags": {"team": "ads"},
            "deequ_jar": "s3://jars/deequ-2.0.7-spark-3.5.jar",
            "serverless": {"execution_role_arn": ROLE, "application_name": f"cmr-{uuid.uuid4().hex[:6]}",
                           **sls},
        },
    })


def _run_request(cfg, app_id="00app"):
    args = ["--pipeline", "catalog_match_rate", "--date", "2026-11-19", "--conf", "emr.yaml"]
    return serverless.start_job_run_request(cfg, app_id, VERSION, args, "emr.yaml", TABLE, label="2026-11-19")


def test_application_request_release_architecture_capacity_and_auto_stop():
    cfg = _cfg(idle_timeout_minutes=20)
    assert serverless.create_application_request(cfg, TABLE) == {
        "name": cfg.emr.serverless.application_name,
        "releaseLabel": "emr-7.5.0",
        "type": "SPARK",
        "architecture": "X86_64",
        "maximumCapacity": {"cpu": "28 vCPU", "memory": "210 GB"},  # 6 executors + driver, 4 vCPU / 30 GB
        "autoStartConfiguration": {"enabled": True},
        "autoStopConfiguration": {"enabled": True, "idleTimeoutMinutes": 20},
        "tags": {"team": "ads"},
    }
    given = serverless.create_application_request(_cfg(max_cpu="64 vCPU", max_memory="400 GB",
                                                       release_label="emr-7.6.0"), TABLE)
    assert given["maximumCapacity"] == {"cpu": "64 vCPU", "memory": "400 GB"}
    assert given["releaseLabel"] == "emr-7.6.0"


def test_start_job_run_request_field_by_field():
    r = _run_request(_cfg(spark_conf={"spark.sql.adaptive.enabled": "true"}))
    assert r["applicationId"] == "00app" and r["executionRoleArn"] == ROLE
    assert r["name"] == "cmr 2026-11-19"
    assert r["tags"] == {"team": "ads", "artifact-version": VERSION}
    assert r["configurationOverrides"] == {"monitoringConfiguration": {"s3MonitoringConfiguration": {
        "logUri": "s3://art-bkt/cmr/serverless-logs/"}}}
    driver = r["jobDriver"]["sparkSubmit"]
    assert driver["entryPoint"] == f"s3://art-bkt/cmr/{VERSION}/process_data.py"
    assert driver["entryPointArguments"] == ["--pipeline", "catalog_match_rate", "--date", "2026-11-19",
                                             "--conf", "emr.yaml"]
    params = driver["sparkSubmitParameters"].split(" ")
    assert params[:6] == ["--py-files", f"s3://art-bkt/cmr/{VERSION}/spark_app.zip",
                          "--files", f"s3://art-bkt/cmr/{VERSION}/emr.yaml",
                          "--jars", "s3://jars/deequ-2.0.7-spark-3.5.jar"]
    confs = dict(c.split("=", 1) for c in params[7::2])
    assert params[6::2] == ["--conf"] * len(confs)
    assert confs == {
        "spark.archives": f"{DEPS}#deps",
        "spark.emr-serverless.driverEnv.PYTHONPATH": "./deps",
        "spark.executorEnv.PYTHONPATH": "./deps",
        "spark.yarn.appMasterEnv.PYTHONPATH": "./deps",
        "spark.emr-serverless.driverEnv.SPARK_VERSION": "3.5",
        "spark.executorEnv.SPARK_VERSION": "3.5",
        "spark.dynamicAllocation.enabled": "false",
        "spark.executor.cores": "4", "spark.executor.memory": "27g", "spark.executor.memoryOverhead": "3g",
        "spark.executor.instances": "6",
        "spark.driver.cores": "4", "spark.driver.memory": "27g", "spark.driver.memoryOverhead": "3g",
        "spark.default.parallelism": "48", "spark.sql.shuffle.partitions": "48",
        "spark.sql.adaptive.enabled": "true",
    }


def test_without_a_serverless_section_the_target_is_a_config_error():
    cfg = config_from_mapping({
        "events": {"path": "s3://ev/events"}, "dynamodb": {"table": "c", "region": "us-east-1"},
        "postgres": {"url": "postgresql://etl@db:5432/c"}, "emr": {"bucket": "b"},
    })
    with pytest.raises(ConfigError, match="emr.serverless: required"):
        serverless.create_application_request(cfg, TABLE)


def test_application_is_created_once_then_reused_and_the_run_holds_the_request(moto_server):
    cfg = _cfg(endpoint_url=moto_server.endpoint_url)
    client = serverless.client(cfg)
    request = serverless.create_application_request(cfg, TABLE)
    app_id, created = serverless.ensure_application(client, request)
    assert created and serverless.ensure_application(client, request) == (app_id, False)
    app = client.get_application(applicationId=app_id)["application"]
    assert (app["name"], app["releaseLabel"], app["type"].upper()) == (request["name"], "emr-7.5.0", "SPARK")
    # moto keeps no architecture; the request test above checks the field sent
    assert app["maximumCapacity"] == {"cpu": "28 vCPU", "memory": "210 GB"}
    assert app["autoStopConfiguration"] == {"enabled": True, "idleTimeoutMinutes": 15}
    run_request = _run_request(cfg, app_id)
    run_id = serverless.start(client, run_request)
    run = client.get_job_run(applicationId=app_id, jobRunId=run_id)["jobRun"]
    assert run["jobDriver"] == run_request["jobDriver"]
    assert run["executionRole"] == ROLE
    assert run["configurationOverrides"] == run_request["configurationOverrides"]
    assert serverless.status(client, app_id, run_id).ok


@pytest.fixture()
def inproc():
    """moto in-process, so the test can move the job run between polls (see the module docstring)."""
    with mock_aws():
        cfg = _cfg()
        client = boto3.client("emr-serverless", region_name="us-east-1")
        app_id, _ = serverless.ensure_application(client, serverless.create_application_request(cfg, TABLE))
        run_id = serverless.start(client, _run_request(cfg, app_id))
        (fake,) = emrserverless_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].job_runs[app_id]
        fake.state = "SUBMITTED"
        yield client, app_id, run_id, fake


def _moves(fake, states):
    pending = list(states)

    def sleep(_seconds):
        fake.state, fake.state_details = pending.pop(0)

    return sleep


def test_wait_follows_a_run_to_success_printing_each_state_once(inproc):
    client, app_id, run_id, fake = inproc
    seen = []
    sleep = _moves(fake, [("SCHEDULED", ""), ("RUNNING", ""), ("RUNNING", ""), ("SUCCESS", "")])
    final = serverless.wait(client, app_id, run_id, echo=seen.append, sleep=sleep)
    assert final.ok
    assert [line.rsplit(" ", 1)[-1] for line in seen] == ["SUBMITTED", "SCHEDULED", "RUNNING", "SUCCESS"]


def test_wait_follows_a_run_to_failure_with_the_services_reason(inproc):
    client, app_id, run_id, fake = inproc
    sleep = _moves(fake, [("RUNNING", ""), ("FAILED", "Job failed, please check complete logs in S3.")])
    final = serverless.wait(client, app_id, run_id, echo=lambda _: None, sleep=sleep)
    assert final.done and not final.ok
    assert final.line().endswith("FAILED: Job failed, please check complete logs in S3.")


def test_cancel_stops_a_running_run_and_refuses_a_finished_one(inproc):
    client, app_id, run_id, fake = inproc
    fake.state = "RUNNING"
    assert serverless.cancel(client, app_id, run_id) == f"job run {run_id} cancelling (was RUNNING)"
    assert serverless.status(client, app_id, run_id).state == "CANCELLED"
    with pytest.raises(ConfigError, match="is CANCELLED: only a submitted, pending or running run"):
        serverless.cancel(client, app_id, run_id)


def test_logs_read_the_drivers_stderr_and_name_the_probable_cause(moto_server):
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    bucket = f"logs-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    uri = f"s3://{bucket}/cmr/serverless-logs/"
    assert serverless.driver_log_key(uri, "00app", "00run") == (
        bucket, "cmr/serverless-logs/applications/00app/jobs/00run/SPARK_DRIVER/stderr.gz")
    assert "No step log on S3 yet" in serverless.diagnose(s3, uri, "00app", "00run").render()
    key = "cmr/serverless-logs/applications/00app/jobs/00run/SPARK_DRIVER/stderr.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=(DATA / "serverless_driver_stderr.gz").read_bytes())
    diagnosis = serverless.diagnose(s3, uri, "00app", "00run")
    lines = diagnosis.render().splitlines()
    cause = ("spark_app.errors.SinkError: COPY into staging_product_views_20261119 failed: "
             "could not connect to server: Connection timed out")
    assert lines[0] == f"Probable cause: {cause}"
    assert lines[1] == "  (from container SPARK_DRIVER stderr)"
    assert "check PostgreSQL" in lines[-1]
