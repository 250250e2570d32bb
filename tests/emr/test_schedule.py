"""Daily schedule: rule, target, launcher policy (exact), idempotent deploy, and the handler's launch."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
import zipfile
from datetime import datetime, timezone

import boto3
import pytest

from spark_app.config import config_from_mapping
from spark_app.emr.packaging import Artifact, Build, upload
from spark_app.emr.schedule import (
    DATE_TOKEN,
    HANDLER,
    deploy_schedule,
    handler,
    handler_zip,
    launch_template,
    launcher_policy,
    render_template,
    serverless_templates,
    yesterday_utc,
)
from spark_app.emr.sizing import load_instance_types

ACCOUNT = "123456789012"  # moto's account


ROLE = f"arn:aws:iam::{ACCOUNT}:role/cmr-serverless-job"


def _cfg(bucket="art-bkt", **schedule):
    suffix = uuid.uuid4().hex[:6]
    return config_from_mapping(
        {
            "events": {"path": "s3://ev/events"},
            "dynamodb": {"table": "catalog", "region": "us-east-1"},
            "postgres": {"url": "postgresql://etl@db:5432/catalog"},
            "emr": {
                "bucket": bucket,
                "prefix": "cmr",
                "serverless": {"execution_role_arn": ROLE, "application_name": f"cmr-{suffix}"},
                "schedule": {
                    "cron": "cron(0 6 * * ? *)",
                    "function_name": f"launcher-{suffix}",
                    "rule_name": f"daily-{suffix}",
                    **schedule,
                },
            },
        }
    )


def _clients(endpoint):
    services = ("iam", "lambda", "events")
    return [boto3.client(s, endpoint_url=endpoint, region_name="us-east-1") for s in services]


def test_policy_allows_exactly_runjobflow_passrole_on_the_two_roles_release_reads_and_logs():
    emr = _cfg().emr
    policy = launcher_policy(emr, ACCOUNT)
    by_sid = {s["Sid"]: (s["Action"], s["Resource"]) for s in policy["Statement"]}
    assert by_sid == {
        "LaunchCluster": (["elasticmapreduce:RunJobFlow"], "*"),
        "PassEmrRoles": (
            ["iam:PassRole"],
            [f"arn:aws:iam::{ACCOUNT}:role/{name}" for name in ("EMR_DefaultRole", "EMR_EC2_DefaultRole")],
        ),
        "ReadRelease": (["s3:GetObject"], ["arn:aws:s3:::art-bkt/cmr/*"]),
        "WriteLogs": (
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            [f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/{emr.schedule.function_name}:*"],
        ),
    }
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])


def test_yesterday_is_the_previous_utc_day():
    assert yesterday_utc(datetime(2026, 11, 20, 6, 0, tzinfo=timezone.utc)) == "2026-11-19"
    assert yesterday_utc(datetime(2026, 3, 1, 0, 30, tzinfo=timezone.utc)) == "2026-02-28"


def test_template_renders_the_day_everywhere_and_refuses_bad_dates():
    cfg = _cfg()
    template = launch_template(cfg, "v1", "emr.yaml", load_instance_types()).data.decode()
    assert DATE_TOKEN in template
    request = render_template(template, "2026-11-19")
    assert request["Name"] == "cmr 2026-11-19"
    args = request["Steps"][0]["HadoopJarStep"]["Args"]
    assert args[-6:] == ["--pipeline", "catalog_match_rate", "--date", "2026-11-19", "--conf", "emr.yaml"]
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        render_template(template, "2026-11-19; rm -rf /")


def test_handler_zip_is_the_module_in_a_package_and_reproducible():
    data = handler_zip()
    assert data == handler_zip()
    zf = zipfile.ZipFile(io.BytesIO(data))
    names = ["spark_app/__init__.py", "spark_app/emr/__init__.py", "spark_app/emr/schedule.py"]
    assert zf.namelist() == names
    assert b"def handler(event, context)" in zf.read("spark_app/emr/schedule.py").replace(b": Any", b"")


def test_the_lambda_package_holds_exactly_what_its_handler_imports(tmp_path):
    zipfile.ZipFile(io.BytesIO(handler_zip())).extractall(tmp_path)
    code = (
        "import sys; sys.path = [sys.argv[1]] + [p for p in sys.path[1:] if 'site-packages' in p "
        "or 'lib/python' in p]; import spark_app.emr.schedule as s; assert callable(s.handler); "
        "print(sorted(m for m in sys.modules if m.startswith('spark_app')))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "['spark_app', 'spark_app.emr', 'spark_app.emr.schedule']"


def test_deploy_creates_rule_target_permission_and_policy_and_is_idempotent(moto_server):
    iam, lam, events = _clients(moto_server.endpoint_url)
    cfg = _cfg()
    sched = cfg.emr.schedule
    first = deploy_schedule(cfg.emr, iam, lam, events, ACCOUNT, sleep=lambda s: None)
    assert first.created_function
    second = deploy_schedule(cfg.emr, iam, lam, events, ACCOUNT, sleep=lambda s: None)
    assert not second.created_function and "permission" not in second.actions

    rule = events.describe_rule(Name=sched.rule_name)
    assert (rule["ScheduleExpression"], rule["State"]) == ("cron(0 6 * * ? *)", "ENABLED")
    targets = events.list_targets_by_rule(Rule=sched.rule_name)["Targets"]
    assert [(t["Id"], t["Arn"]) for t in targets] == [("launcher", first.function_arn)]

    fn = lam.get_function(FunctionName=sched.function_name)["Configuration"]
    assert fn["Handler"] == HANDLER and fn["Runtime"] == "python3.12"
    assert fn["Environment"]["Variables"] == {"ARTIFACT_BUCKET": "art-bkt", "ARTIFACT_PREFIX": "cmr",
                                              "LAUNCH_TARGET": "ec2"}
    assert fn["Role"] == first.role_arn

    (statement,) = json.loads(lam.get_policy(FunctionName=sched.function_name)["Policy"])["Statement"]
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}

    role_name = first.role_arn.rsplit("/", 1)[-1]
    stored = iam.get_role_policy(RoleName=role_name, PolicyName=f"{sched.function_name}-launch")
    doc = stored["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    assert doc == launcher_policy(cfg.emr, ACCOUNT)


def test_handler_launches_yesterdays_cluster_from_the_uploaded_release(moto_server, monkeypatch):
    endpoint = moto_server.endpoint_url
    bucket = f"rel-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    cfg = _cfg(bucket=bucket)
    release = Build("abc123def456", [Artifact("process_data.py", b"print()\n")])
    template = launch_template(cfg, release.version, "emr.yaml", load_instance_types())
    upload(s3, release, bucket, "cmr", extra=[template])

    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("ARTIFACT_BUCKET", bucket)
    monkeypatch.setenv("ARTIFACT_PREFIX", "cmr")
    result = handler({}, None)
    assert result["date"] == yesterday_utc() and result["version"] == "abc123def456"

    emr = boto3.client("emr", endpoint_url=endpoint, region_name="us-east-1")
    (step,) = emr.list_steps(ClusterId=result["cluster_id"])["Steps"]
    assert step["Config"]["Args"][-4:] == ["--date", yesterday_utc(), "--conf", "emr.yaml"]
    assert f"s3://{bucket}/cmr/abc123def456/spark_app.zip" in step["Config"]["Args"]

    explicit = handler({"date": "2026-11-01"}, None)
    assert explicit["date"] == "2026-11-01"


def test_handler_without_a_template_says_to_upload(moto_server, monkeypatch):
    endpoint = moto_server.endpoint_url
    bucket = f"rel-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    upload(s3, Build("v0", [Artifact("process_data.py", b"")]), bucket, "cmr")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("ARTIFACT_BUCKET", bucket)
    monkeypatch.setenv("ARTIFACT_PREFIX", "cmr")
    with pytest.raises(RuntimeError, match="run `deploy.py upload"):
        handler({}, None)


def test_serverless_policy_allows_the_application_and_job_run_calls_and_passes_only_the_execution_role():
    by_sid = {s["Sid"]: (s["Action"], s["Resource"])
              for s in launcher_policy(_cfg(target="serverless").emr, ACCOUNT)["Statement"]}
    assert by_sid["LaunchCluster"] == (["emr-serverless:ListApplications", "emr-serverless:CreateApplication",
                                        "emr-serverless:StartJobRun", "emr-serverless:TagResource"], "*")
    assert by_sid["PassEmrRoles"] == (["iam:PassRole"], [ROLE])


def test_handler_with_the_serverless_target_starts_yesterdays_job_run(moto_server, monkeypatch):
    endpoint = moto_server.endpoint_url
    bucket = f"rel-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    cfg = _cfg(bucket=bucket, target="serverless")
    release = Build("abc123def456", [Artifact("process_data.py", b"print()\n")])
    upload(s3, release, bucket, "cmr", extra=serverless_templates(cfg, release.version, "emr.yaml",
                                                                  load_instance_types()))
    env = {"AWS_ENDPOINT_URL": endpoint, "ARTIFACT_BUCKET": bucket, "ARTIFACT_PREFIX": "cmr",
           "LAUNCH_TARGET": "serverless"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    first = handler({}, None)
    second = handler({"date": "2026-11-01"}, None)
    assert first["application_id"] == second["application_id"]  # created once, then reused
    sls = boto3.client("emr-serverless", endpoint_url=endpoint, region_name="us-east-1")
    app = sls.get_application(applicationId=first["application_id"])["application"]
    assert app["name"] == cfg.emr.serverless.application_name
    run = sls.get_job_run(applicationId=first["application_id"], jobRunId=first["job_run_id"])["jobRun"]
    assert run["jobDriver"]["sparkSubmit"]["entryPointArguments"][-4:] == [
        "--date", yesterday_utc(), "--conf", "emr.yaml"]
    assert run["executionRole"] == ROLE
