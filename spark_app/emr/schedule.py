"""Daily launch: an EventBridge rule invokes a Lambda that starts the transient EMR cluster
or, with `emr.schedule.target: serverless`, a job run on EMR Serverless.

The Lambda does not rebuild the request: `deploy.py upload` stores the complete
`run_job_flow` request of the release as `run_job_flow.json`, with `{{date}}` where the day
goes, and the manifest (`<prefix>/current.json`) points at it. The handler reads the manifest,
fills in yesterday's UTC date and calls RunJobFlow, so the newest upload is what runs, and the
Lambda needs only S3 read, RunJobFlow and PassRole on the two EMR roles. For Serverless the upload
also stores `create_application.json` and `start_job_run.json`; the handler reuses the application
of that name (or creates it) and starts the job run, with PassRole on the execution role only.

This module is also the Lambda's code: at import it needs nothing but the standard library
(boto3 is in the Lambda runtime); the deploy-side helpers import the rest of spark_app lazily.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

log = logging.getLogger(__name__)

DATE_TOKEN = "{{date}}"
TEMPLATE_NAME = "run_job_flow.json"
APP_TEMPLATE, RUN_TEMPLATE = "create_application.json", "start_job_run.json"
APP_TOKEN = "{{application_id}}"
HANDLER = "spark_app.emr.schedule.handler"
ENV_BUCKET, ENV_PREFIX, ENV_TARGET = "ARTIFACT_BUCKET", "ARTIFACT_PREFIX", "LAUNCH_TARGET"


# --------------------------------------------------------------------------- Lambda side


def yesterday_utc(now: Optional[datetime] = None) -> str:
    now = now or datetime.now(timezone.utc)
    return (now.astimezone(timezone.utc).date() - timedelta(days=1)).isoformat()


def render_template(template: str, day: str) -> Dict[str, Any]:
    """The run_job_flow request for `day` from the release's template text."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
        raise ValueError(f"date must be YYYY-MM-DD, got {day!r}")
    if DATE_TOKEN not in template:
        raise ValueError(f"launch template has no {DATE_TOKEN} placeholder")
    return json.loads(template.replace(DATE_TOKEN, day))


def _template(s3: Any, bucket: str, prefix: str, manifest: Dict[str, Any], name: str) -> str:
    entry = manifest.get("files", {}).get(name)
    if not entry:
        raise RuntimeError(
            f"s3://{bucket}/{prefix}/current.json (version {manifest.get('version')}) lists no "
            f"{name}; run `deploy.py upload --conf ...` to publish a launchable release"
        )
    return s3.get_object(Bucket=bucket, Key=entry["key"])["Body"].read().decode()


def start_serverless(sls: Any, app_request: Dict[str, Any], run_template: str, day: str) -> Dict[str, str]:
    """Reuse the live application of the request's name (or create it), then start the day's job run."""
    app_id = next((a["id"] for page in sls.get_paginator("list_applications").paginate()
                   for a in page["applications"] if a["name"] == app_request["name"]
                   and a["state"] != "TERMINATED"), None)
    app_id = app_id or sls.create_application(**app_request)["applicationId"]
    run = render_template(run_template.replace(APP_TOKEN, app_id), day)
    return {"application_id": app_id, "job_run_id": sls.start_job_run(**run)["jobRunId"]}


def handler(event: Any, context: Any) -> Dict[str, str]:
    """Launch the cluster (or the Serverless job run) for event["date"] or, by default, yesterday (UTC)."""
    import boto3

    day = (event or {}).get("date") if isinstance(event, dict) else None
    day = day or yesterday_utc()
    bucket, prefix = os.environ[ENV_BUCKET], os.environ[ENV_PREFIX].strip("/")
    s3 = boto3.client("s3")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/current.json")["Body"].read())
    version = str(manifest.get("version"))
    if os.environ.get(ENV_TARGET) == "serverless":
        app_request = json.loads(_template(s3, bucket, prefix, manifest, APP_TEMPLATE))
        run_template = _template(s3, bucket, prefix, manifest, RUN_TEMPLATE)
        started = start_serverless(boto3.client("emr-serverless"), app_request, run_template, day)
        log.info("started %s for %s from release %s", started["job_run_id"], day, version)
        return {**started, "date": day, "version": version}
    template = _template(s3, bucket, prefix, manifest, TEMPLATE_NAME)
    cluster_id = boto3.client("emr").run_job_flow(**render_template(template, day))["JobFlowId"]
    log.info("launched %s for %s from release %s", cluster_id, day, version)
    return {"cluster_id": cluster_id, "date": day, "version": version}


# --------------------------------------------------------------------------- deploy side


def launch_template(cfg: Any, version: str, conf_name: str, instance_types: Mapping[str, Any]) -> Any:
    """The release's run_job_flow request with DATE_TOKEN for the day, as an upload Artifact."""
    from spark_app.emr.launch import emr_section, job_arguments, run_job_flow_request
    from spark_app.emr.packaging import Artifact

    pipeline = emr_section(cfg).schedule.pipeline
    args = job_arguments(pipeline, conf_name, date=DATE_TOKEN)
    request = run_job_flow_request(cfg, version, args, conf_name, instance_types, label=DATE_TOKEN)
    return Artifact(TEMPLATE_NAME, json.dumps(request, indent=2, sort_keys=True).encode())


def serverless_templates(cfg: Any, version: str, conf_name: str, table: Mapping[str, Any]) -> List[Any]:
    """The application request and the release's StartJobRun request (application id and day as tokens)."""
    from spark_app.emr import serverless
    from spark_app.emr.launch import emr_section, job_arguments
    from spark_app.emr.packaging import Artifact

    args = job_arguments(emr_section(cfg).schedule.pipeline, conf_name, date=DATE_TOKEN)
    app = serverless.create_application_request(cfg, table)
    run = serverless.start_job_run_request(cfg, APP_TOKEN, version, args, conf_name, table, DATE_TOKEN)
    return [Artifact(name, json.dumps(body, indent=2, sort_keys=True).encode())
            for name, body in ((APP_TEMPLATE, app), (RUN_TEMPLATE, run))]


def handler_env(emr: Any) -> Dict[str, str]:
    return {ENV_BUCKET: emr.bucket, ENV_PREFIX: emr.prefix.strip("/"), ENV_TARGET: emr.schedule.target}


def plan(emr: Any, account: str) -> Dict[str, Any]:
    """What `deploy_schedule` creates, for --dry-run."""
    sched = emr.schedule
    return {
        "role_policy": launcher_policy(emr, account),
        "function": {"FunctionName": sched.function_name, "Handler": HANDLER, "Runtime": sched.lambda_runtime,
                     "Environment": {"Variables": handler_env(emr)}},
        "rule": {"Name": sched.rule_name, "ScheduleExpression": sched.cron, "State": "ENABLED"},
        "target": {"Rule": sched.rule_name, "Id": "launcher", "Arn": f"<function {sched.function_name}>"},
        "permission": {"Principal": "events.amazonaws.com", "Action": "lambda:InvokeFunction"},
    }


def handler_zip() -> bytes:
    """The Lambda's code: this module inside an empty spark_app package, reproducibly zipped."""
    from spark_app.emr.packaging import reproducible_zip

    return reproducible_zip([
        ("spark_app/__init__.py", b""),
        ("spark_app/emr/__init__.py", b""),
        ("spark_app/emr/schedule.py", Path(__file__).read_bytes()),
    ])


def role_arn(account: str, name_or_arn: str) -> str:
    return name_or_arn if name_or_arn.startswith("arn:") else f"arn:aws:iam::{account}:role/{name_or_arn}"


def launcher_policy(emr: Any, account: str) -> Dict[str, Any]:
    """What the handler may do: read the release, launch (RunJobFlow, or Serverless's application and
    job run calls), pass exactly the roles that launch needs, log."""
    fn = emr.schedule.function_name
    if emr.schedule.target == "serverless":
        actions = ["emr-serverless:ListApplications", "emr-serverless:CreateApplication",
                   "emr-serverless:StartJobRun", "emr-serverless:TagResource"]
        roles = [emr.serverless.execution_role_arn]
    else:
        actions = ["elasticmapreduce:RunJobFlow"]
        roles = [role_arn(account, emr.service_role), role_arn(account, emr.job_flow_role)]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "LaunchCluster",
                "Effect": "Allow",
                "Action": actions,
                "Resource": "*",
            },
            {
                "Sid": "PassEmrRoles",
                "Effect": "Allow",
                "Action": ["iam:PassRole"],
                "Resource": roles,
            },
            {
                "Sid": "ReadRelease",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{emr.bucket}/{emr.prefix.strip('/')}/*"],
            },
            {
                "Sid": "WriteLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [f"arn:aws:logs:{emr.region}:{account}:log-group:/aws/lambda/{fn}:*"],
            },
        ],
    }


TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


@dataclass(frozen=True)
class Scheduled:
    function_arn: str
    rule_arn: str
    role_arn: str
    created_function: bool
    actions: List[str]


def _code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def ensure_lambda_role(iam: Any, given_arn: Optional[str], function_name: str, policy_name: str,
                       policy: Dict[str, Any]) -> str:
    """The Lambda's role: `given_arn` when set (it must exist), else `<function_name>-role`,
    created with the Lambda trust policy when missing; its inline `policy_name` put each time."""
    name = given_arn.rsplit("/", 1)[-1] if given_arn else f"{function_name}-role"
    try:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    except Exception as exc:
        if _code(exc) != "NoSuchEntity" or given_arn:
            raise
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(policy))
    return arn


def _ensure_role(iam: Any, emr: Any, account: str) -> str:
    sched = emr.schedule
    return ensure_lambda_role(iam, sched.lambda_role_arn, sched.function_name,
                              f"{sched.function_name}-launch", launcher_policy(emr, account))


def _ensure_function(lam: Any, emr: Any, role: str, code: bytes, sleep: Callable[[float], None]) -> tuple:
    sched = emr.schedule
    settings = {
        "Role": role,
        "Handler": HANDLER,
        "Runtime": sched.lambda_runtime,
        "Timeout": 60,
        "Environment": {"Variables": handler_env(emr)},
        "Description": "Launches the daily catalog-match-rate EMR cluster for yesterday (UTC)",
    }
    try:
        lam.get_function(FunctionName=sched.function_name)
    except Exception as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
        for attempt in range(6):  # a new role takes a few seconds before Lambda may assume it
            try:
                fn = lam.create_function(FunctionName=sched.function_name, Code={"ZipFile": code}, **settings)
                return fn["FunctionArn"], True
            except Exception as exc2:
                if _code(exc2) != "InvalidParameterValueException" or attempt == 5:
                    raise
                sleep(2.0 * (attempt + 1))
    lam.update_function_code(FunctionName=sched.function_name, ZipFile=code)
    lam.get_waiter("function_updated").wait(FunctionName=sched.function_name)
    fn = lam.update_function_configuration(FunctionName=sched.function_name, **settings)
    return fn["FunctionArn"], False


def deploy_schedule(
    emr: Any, iam: Any, lam: Any, events: Any, account: str, sleep: Optional[Callable[[float], None]] = None
) -> Scheduled:
    """Create or update role, function, rule, target and invoke permission; safe to run again."""
    import time

    sched = emr.schedule
    role = _ensure_role(iam, emr, account)
    fn_arn, created = _ensure_function(lam, emr, role, handler_zip(), sleep or time.sleep)
    rule_arn = events.put_rule(
        Name=sched.rule_name, ScheduleExpression=sched.cron, State="ENABLED",
        Description=f"Daily run of {sched.pipeline} for yesterday (UTC)",
    )["RuleArn"]
    events.put_targets(Rule=sched.rule_name, Targets=[{"Id": "launcher", "Arn": fn_arn, "Input": "{}"}])
    actions = ["role", "function created" if created else "function updated", "rule", "target"]
    sid = f"{sched.rule_name}-invoke"
    if sid not in _permission_ids(lam, sched.function_name):
        lam.add_permission(
            FunctionName=sched.function_name, StatementId=sid,
            Action="lambda:InvokeFunction", Principal="events.amazonaws.com", SourceArn=rule_arn,
        )
        actions.append("permission")
    return Scheduled(fn_arn, rule_arn, role, created, actions)


def _permission_ids(lam: Any, function_name: str) -> List[str]:
    """Statement ids of the function's resource policy (none yet: an empty list)."""
    try:
        policy = json.loads(lam.get_policy(FunctionName=function_name)["Policy"])
    except Exception as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
        return []
    return [s.get("Sid", "") for s in policy.get("Statement", [])]
