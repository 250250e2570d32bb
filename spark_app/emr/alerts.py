"""`deploy.py alerts`: an SNS topic, EventBridge rules for this job's failures and deadline, an alert Lambda.

Created or updated in place, so a second run changes nothing: the topic (SNS reuses it by name),
one email subscription per address in `alerts.emails` not yet subscribed, the Lambda's role and
its policy, the function (spark_app.emr.alert_handler), four rules with the function as target,
and the permission letting each rule invoke it.

How a rule tells this job's runs from any other: this project names every cluster it launches, the
cluster's step and every EMR Serverless job run "<emr.prefix> <day>" (spark_app.emr.launch,
spark_app.emr.serverless), and EMR's step and cluster events carry that name in detail.name; so
the step and cluster rules match the prefix "<emr.prefix> " (with its space: "cmr-v2 ..." is not
"cmr ..."). The Serverless event carries no name EMR documents, only the application id, so
that rule matches the id of the application named `emr.serverless.application_name`, created
here (with the request launches use) when no launch has created it yet.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from spark_app.alerts_config import AlertsConfig, markers_uri
from spark_app.config import Config, EmrConfig
from spark_app.emr import alert_handler
from spark_app.emr.launch import bootstrap_actions, emr_section, log_uri
from spark_app.emr.packaging import reproducible_zip
from spark_app.emr.schedule import _code, _permission_ids, ensure_lambda_role
from spark_app.errors import ConfigError
from spark_app.s3_uri import split_s3_uri

STEP_STATES = ["FAILED", "CANCELLED", "INTERRUPTED"]
CLUSTER_STATES = ["TERMINATED_WITH_ERRORS"]  # bootstrap failures end here too (BOOTSTRAP_FAILURE)
RUN_STATES = ["FAILED", "CANCELLED"]
TARGET_ID = "alert"
# What the Lambda's zip holds: exactly the modules alert_handler imports (test_alerts checks it).
LAMBDA_FILES = ("spark_app/emr/alert_handler.py", "spark_app/emr/logs.py", "spark_app/published.py",
                "spark_app/s3_uri.py")
_ROOT = Path(__file__).resolve().parents[2]


def alerts_section(cfg: Config) -> AlertsConfig:
    if cfg.alerts is None:
        raise ConfigError(f"{cfg.source_file}: alerts: required for deploy.py alerts (e.g. alerts.emails)")
    return cfg.alerts


def run_name_prefix(emr: EmrConfig) -> str:
    """What every cluster, step and job run name of this job starts with: "<emr.prefix> "."""
    return f"{emr.prefix} "


def event_patterns(emr: EmrConfig, application_id: Optional[str]) -> Dict[str, Dict[str, Any]]:
    """Rule name suffix -> EventBridge pattern; the Serverless rule only with an application id."""
    named = [{"prefix": run_name_prefix(emr)}]
    patterns = {
        "step": {"source": ["aws.emr"], "detail-type": [alert_handler.STEP_EVENT],
                 "detail": {"state": STEP_STATES, "name": named}},
        "cluster": {"source": ["aws.emr"], "detail-type": [alert_handler.CLUSTER_EVENT],
                    "detail": {"state": CLUSTER_STATES, "name": named}},
    }
    if application_id:
        patterns["serverless"] = {"source": ["aws.emr-serverless"],
                                  "detail-type": [alert_handler.SERVERLESS_EVENT],
                                  "detail": {"state": RUN_STATES, "applicationId": [application_id]}}
    return patterns


def deadline_cron(deadline: str) -> str:
    hour, minute = deadline.split(":")
    return f"cron({int(minute)} {int(hour)} * * ? *)"


def topic_arn(cfg: Config, account: str) -> str:
    return f"arn:aws:sns:{emr_section(cfg).region}:{account}:{alerts_section(cfg).topic_name}"


def handler_settings(cfg: Config, conf: str, topic: str) -> alert_handler.Settings:
    """What the Lambda is told through its environment."""
    emr, a = emr_section(cfg), alerts_section(cfg)
    sls = emr.serverless
    sls_logs = ""
    if sls is not None:
        from spark_app.emr.serverless import log_uri as serverless_log_uri

        sls_logs = serverless_log_uri(cfg)
    return alert_handler.Settings(
        topic_arn=topic, pipeline=emr.schedule.pipeline, name_prefix=emr.prefix,
        log_uri=log_uri(emr),
        markers_uri=markers_uri(cfg) or "", conf=conf, deadline=a.deadline, target=emr.schedule.target,
        log_wait_seconds=float(a.log_wait_seconds), serverless_log_uri=sls_logs,
        serverless_application=sls.application_name if sls else "",
        bootstrap_actions=tuple(b["Name"] for b in bootstrap_actions(emr, "v")),
    )


def _s3_locations(settings: alert_handler.Settings) -> Dict[str, List[str]]:
    """bucket -> key prefixes the Lambda reads: EMR's logs, Serverless logs, the published markers."""
    out: Dict[str, List[str]] = {}
    for uri in (settings.log_uri, settings.serverless_log_uri, settings.markers_uri):
        if uri:
            bucket, prefix = split_s3_uri(uri)
            prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
            if prefix not in out.setdefault(bucket, []):
                out[bucket].append(prefix)
    return out


def alert_policy(cfg: Config, account: str, settings: alert_handler.Settings) -> Dict[str, Any]:
    """What the Lambda may do: publish to its topic, read (and list) the logs and markers, see this job's
    runs (ListClusters; GetJobRun and ListJobRuns on Serverless), write its own logs."""
    emr, a = emr_section(cfg), alerts_section(cfg)
    locations = _s3_locations(settings)
    statements: List[Dict[str, Any]] = [
        {"Sid": "PublishAlerts", "Effect": "Allow", "Action": ["sns:Publish"],
         "Resource": [settings.topic_arn]},
        {"Sid": "ReadLogsAndMarkers", "Effect": "Allow", "Action": ["s3:GetObject"],
         "Resource": [f"arn:aws:s3:::{b}/{p}*" for b, ps in sorted(locations.items()) for p in ps]},
    ]
    for i, (bucket, prefixes) in enumerate(sorted(locations.items())):
        statements.append({"Sid": f"ListLogsAndMarkers{i}", "Effect": "Allow", "Action": ["s3:ListBucket"],
                           "Resource": [f"arn:aws:s3:::{bucket}"],
                           "Condition": {"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}}})
    statements.append({"Sid": "SeeClusters", "Effect": "Allow", "Action": ["elasticmapreduce:ListClusters"],
                       "Resource": "*"})
    if emr.serverless is not None:
        statements += [
            {"Sid": "SeeApplications", "Effect": "Allow", "Action": ["emr-serverless:ListApplications"],
             "Resource": "*"},
            {"Sid": "SeeJobRuns", "Effect": "Allow", "Action": ["emr-serverless:GetJobRun",
                                                                "emr-serverless:ListJobRuns"],
             "Resource": [f"arn:aws:emr-serverless:{emr.region}:{account}:/applications/*"]},
        ]
    statements.append({"Sid": "WriteLogs", "Effect": "Allow",
                       "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                       "Resource": [f"arn:aws:logs:{emr.region}:{account}:log-group:"
                                    f"/aws/lambda/{a.function_name}:*"]})
    return {"Version": "2012-10-17", "Statement": statements}


def handler_zip() -> bytes:
    """The Lambda's code: alert_handler and what it imports inside empty packages, reproducibly zipped."""
    files = [("spark_app/__init__.py", b""), ("spark_app/emr/__init__.py", b"")]
    files += [(name, (_ROOT / name).read_bytes()) for name in LAMBDA_FILES]
    return reproducible_zip(sorted(files))


def function_settings(cfg: Config, settings: alert_handler.Settings, role: str) -> Dict[str, Any]:
    a = alerts_section(cfg)
    return {
        "Role": role, "Handler": alert_handler.HANDLER, "Runtime": emr_section(cfg).schedule.lambda_runtime,
        "Timeout": min(900, a.log_wait_seconds + 60), "MemorySize": 128,
        "Environment": {"Variables": settings.as_env()},
        "Description": f"Alerts on failures and the {a.deadline} UTC deadline of {settings.pipeline}",
    }


def rules(cfg: Config, application_id: Optional[str]) -> List[Dict[str, Any]]:
    """put_rule requests: one per kind of failure, and the deadline's schedule."""
    a, emr = alerts_section(cfg), emr_section(cfg)
    out = [{"Name": f"{a.function_name}-{kind}", "EventPattern": json.dumps(pattern, sort_keys=True),
            "State": "ENABLED", "Description": f"Failures of {emr.prefix} ({kind}) to the alert Lambda"}
           for kind, pattern in event_patterns(emr, application_id).items()]
    out.append({"Name": f"{a.function_name}-deadline", "ScheduleExpression": deadline_cron(a.deadline),
                "State": "ENABLED", "Description": f"{a.deadline} UTC: is yesterday published?"})
    return out


def _target(rule: Dict[str, Any], fn_arn: str) -> Dict[str, Any]:
    target = {"Id": TARGET_ID, "Arn": fn_arn}
    if "ScheduleExpression" in rule:
        target["Input"] = json.dumps(alert_handler.DEADLINE_INPUT)
    return target


def plan(cfg: Config, account: str, conf: str, application_id: Optional[str]) -> Dict[str, Any]:
    """Every request `deploy_alerts` sends, for --dry-run (patterns shown as JSON objects)."""
    a = alerts_section(cfg)
    topic = topic_arn(cfg, account)
    settings = handler_settings(cfg, conf, topic)
    role = a.lambda_role_arn or f"<role {a.function_name}-role>"
    fn = f"<function {a.function_name}>"
    put_rules = rules(cfg, application_id)
    shown = [{**r, "EventPattern": json.loads(r["EventPattern"])} if "EventPattern" in r else r
             for r in put_rules]
    return {
        "create_topic": {"Name": a.topic_name},
        "subscribe": [{"TopicArn": topic, "Protocol": "email", "Endpoint": e} for e in a.emails],
        "put_role_policy": {"PolicyName": f"{a.function_name}-alert",
                            "PolicyDocument": alert_policy(cfg, account, settings)},
        "function": {"FunctionName": a.function_name, "Code": {"ZipFile": f"<{len(handler_zip())} bytes: "
                     f"{', '.join(LAMBDA_FILES)}>"}, **function_settings(cfg, settings, role)},
        "put_rule": shown,
        "put_targets": [{"Rule": r["Name"], "Targets": [_target(r, fn)]} for r in put_rules],
        "add_permission": [{"FunctionName": a.function_name, "StatementId": f"{r['Name']}-invoke",
                            "Action": "lambda:InvokeFunction", "Principal": "events.amazonaws.com",
                            "SourceArn": f"<rule {r['Name']}>"} for r in put_rules],
    }


@dataclass(frozen=True)
class Deployed:
    topic_arn: str
    function_arn: str
    role_arn: str
    rules: List[str]
    actions: List[str]


def _ensure_role(iam: Any, cfg: Config, account: str, settings: alert_handler.Settings) -> str:
    a = alerts_section(cfg)
    return ensure_lambda_role(iam, a.lambda_role_arn, a.function_name, f"{a.function_name}-alert",
                              alert_policy(cfg, account, settings))


def _ensure_function(lam: Any, name: str, settings: Dict[str, Any], code: bytes,
                     sleep: Callable[[float], None]) -> Tuple[str, bool]:
    try:
        lam.get_function(FunctionName=name)
    except Exception as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
        for attempt in range(6):  # a new role takes a few seconds before Lambda may assume it
            try:
                fn = lam.create_function(FunctionName=name, Code={"ZipFile": code}, **settings)
                return fn["FunctionArn"], True
            except Exception as exc2:
                if _code(exc2) != "InvalidParameterValueException" or attempt == 5:
                    raise
                sleep(2.0 * (attempt + 1))
    lam.update_function_code(FunctionName=name, ZipFile=code)
    lam.get_waiter("function_updated").wait(FunctionName=name)
    return lam.update_function_configuration(FunctionName=name, **settings)["FunctionArn"], False


def _subscribe(sns: Any, topic: str, emails: Tuple[str, ...]) -> List[str]:
    """Subscribe the addresses not subscribed yet (pending ones included); returns those added."""
    pages = sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
    have = {s["Endpoint"].lower() for page in pages for s in page["Subscriptions"]
            if s["Protocol"] == "email"}
    added = [e for e in emails if e.lower() not in have]
    for email in added:
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=email)
    return added


def deploy_alerts(cfg: Config, conf: str, clients: Callable[[str], Any], account: str,
                  application_id: Optional[str], sleep: Optional[Callable[[float], None]] = None) -> Deployed:
    """Create or update topic, subscriptions, role, function, rules, targets, permissions; safe to re-run."""
    a = alerts_section(cfg)
    sns, iam, lam, events = (clients(s) for s in ("sns", "iam", "lambda", "events"))
    topic = sns.create_topic(Name=a.topic_name)["TopicArn"]  # returns the existing topic of that name
    added = _subscribe(sns, topic, a.emails)
    settings = handler_settings(cfg, conf, topic)
    role = _ensure_role(iam, cfg, account, settings)
    fn_arn, created = _ensure_function(lam, a.function_name, function_settings(cfg, settings, role),
                                       handler_zip(), sleep or time.sleep)
    actions = ["topic"] + [f"subscribed {e}" for e in added]
    actions += ["role", "function created" if created else "function updated"]
    granted = set(_permission_ids(lam, a.function_name))
    names = []
    for rule in rules(cfg, application_id):
        arn = events.put_rule(**rule)["RuleArn"]
        events.put_targets(Rule=rule["Name"], Targets=[_target(rule, fn_arn)])
        names.append(rule["Name"])
        sid = f"{rule['Name']}-invoke"
        if sid not in granted:
            lam.add_permission(FunctionName=a.function_name, StatementId=sid, Action="lambda:InvokeFunction",
                               Principal="events.amazonaws.com", SourceArn=arn)
            actions.append(f"permission {rule['Name']}")
    return Deployed(topic, fn_arn, role, names, actions + ["rules", "targets"])


def application_id(cfg: Config, sls: Any, instance_types: Any) -> Optional[str]:
    """The Serverless application's id (created, as a launch would, if missing); None without it."""
    if emr_section(cfg).serverless is None:
        return None
    from spark_app.emr import serverless

    return serverless.ensure_application(sls, serverless.create_application_request(cfg, instance_types))[0]


def cli(cfg: Config, conf: str, dry_run: bool, instance_types: Callable[[Config], Any],
        dump: Callable[[Any], None]) -> int:
    """`deploy.py alerts [--dry-run]`; `instance_types(cfg)` sizes a Serverless application."""
    import boto3

    alerts_section(cfg)
    emr = emr_section(cfg)
    kw = {"region_name": emr.region, "endpoint_url": emr.endpoint_url}
    if dry_run:
        app = f"<id of application {emr.serverless.application_name}>" if emr.serverless else None
        dump(plan(cfg, "<account>", conf, app))
        return 0
    account = boto3.client("sts", **kw).get_caller_identity()["Account"]
    app = application_id(cfg, boto3.client("emr-serverless", **kw), instance_types(cfg))
    done = deploy_alerts(cfg, conf, lambda service: boto3.client(service, **kw), account, app)
    dump(done.__dict__)
    return 0
