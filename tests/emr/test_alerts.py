"""`deploy.py alerts`: the requests it sends, its idempotent re-run, the Lambda's package and policy, and the
rules' patterns against sample events of each kind (tests/emr/alert_events.py)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
import zipfile

import boto3
import pytest

from deploy import main as deploy_main
from spark_app.config import config_from_mapping
from spark_app.emr import alerts
from spark_app.emr.alert_handler import DEADLINE_INPUT, HANDLER
from spark_app.emr.launch import run_job_flow_request
from spark_app.emr.serverless import start_job_run_request
from spark_app.emr.sizing import load_instance_types
from tests.emr.alert_events import ACCOUNT, PREFIX, cluster_event, job_run_event, step_event
from tests.support.paths import ROOT

ROLE = f"arn:aws:iam::{ACCOUNT}:role/cmr-serverless-job"
DETAIL_TYPES = {"EMR Step Status Change", "EMR Cluster State Change", "EMR Serverless Job Run State Change"}


def _cfg(**alert_keys):
    suffix = uuid.uuid4().hex[:6]
    return config_from_mapping({
        "events": {"path": "s3://ev/events"},
        "dynamodb": {"table": "catalog", "region": "us-east-1"},
        "postgres": {"url": "postgresql://etl@db:5432/catalog"},
        "emr": {"bucket": "art-bkt", "prefix": PREFIX,
                "serverless": {"execution_role_arn": ROLE, "application_name": f"cmr-{suffix}"}},
        "alerts": {"topic_name": f"alerts-{suffix}", "function_name": f"alerts-{suffix}",
                   "emails": ["oncall@example.com", "lead@example.com"], **alert_keys},
    })


def _clients(endpoint):
    def client(service):
        return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")
    return client


def test_dry_run_prints_the_topic_the_rules_of_the_three_detail_types_and_the_lambda(capsys):
    assert deploy_main(["alerts", "--conf", str(ROOT / "conf" / "emr.yaml"), "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["create_topic"] == {"Name": "catalog-match-rate-alerts"}
    assert [s["Endpoint"] for s in plan["subscribe"]] == ["data-oncall@example.com"]
    patterns = [r["EventPattern"] for r in plan["put_rule"] if "EventPattern" in r]
    assert {t for p in patterns for t in p["detail-type"]} == DETAIL_TYPES
    deadline = [r for r in plan["put_rule"] if "ScheduleExpression" in r]
    assert deadline == [{"Name": "catalog-match-rate-alerts-deadline", "State": "ENABLED",
                         "ScheduleExpression": "cron(0 7 * * ? *)",
                         "Description": "07:00 UTC: is yesterday published?"}]
    fn = plan["function"]
    assert (fn["FunctionName"], fn["Handler"], fn["Runtime"], fn["Timeout"]) == (
        "catalog-match-rate-alerts", HANDLER, "python3.12", 660)
    assert fn["Environment"]["Variables"]["RUN_NAME_PREFIX"] == "catalog-match-rate"
    assert len(plan["put_targets"]) == len(plan["add_permission"]) == len(plan["put_rule"]) == 4


def test_the_name_prefix_the_rules_match_is_the_one_launches_give_clusters_steps_and_job_runs():
    cfg = _cfg()
    prefix = alerts.run_name_prefix(cfg.emr)
    request = run_job_flow_request(cfg, "v1", ["--date", "2026-11-19"], "emr.yaml", load_instance_types(),
                                   label="2026-11-19")
    run = start_job_run_request(cfg, "app", "v1", [], "emr.yaml", load_instance_types(), "2026-11-19")
    names = [request["Name"], request["Steps"][0]["Name"], run["name"]]
    assert names == [f"{prefix}2026-11-19"] * 3 and prefix == "catalog-match-rate "


def test_the_lambda_package_holds_exactly_what_its_handler_imports(tmp_path):
    data = alerts.handler_zip()
    assert data == alerts.handler_zip()  # reproducible
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path)
    code = (
        "import sys; sys.path = [sys.argv[1]] + [p for p in sys.path[1:] if 'site-packages' in p "
        "or 'lib/python' in p]; import spark_app.emr.alert_handler as h; assert callable(h.handler); "
        "assert h.__file__.startswith(sys.argv[1]); "
        "print(sorted(m for m in sys.modules if m.startswith('spark_app')))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout
    imported = ["spark_app", "spark_app.emr", "spark_app.emr.alert_handler", "spark_app.emr.logs",
                "spark_app.published", "spark_app.s3_uri"]
    assert out.strip() == str(imported)
    expected = sorted(f"{m.replace('.', '/')}{'/__init__' if m in ('spark_app', 'spark_app.emr') else ''}.py"
                      for m in imported)
    assert sorted(zipfile.ZipFile(io.BytesIO(data)).namelist()) == expected


def test_the_policy_allows_publishing_reading_logs_and_markers_seeing_runs_and_nothing_else():
    cfg = _cfg()
    settings = alerts.handler_settings(cfg, "conf/emr.yaml", alerts.topic_arn(cfg, ACCOUNT))
    by_sid = {s["Sid"]: (s["Action"], s["Resource"], s.get("Condition"))
              for s in alerts.alert_policy(cfg, ACCOUNT, settings)["Statement"]}
    fn = cfg.alerts.function_name
    assert by_sid == {
        "PublishAlerts": (["sns:Publish"], [f"arn:aws:sns:us-east-1:{ACCOUNT}:{cfg.alerts.topic_name}"],
                          None),
        "ReadLogsAndMarkers": (["s3:GetObject"], [f"arn:aws:s3:::art-bkt/catalog-match-rate/{p}/*"
                                                  for p in ("logs", "serverless-logs", "published")], None),
        "ListLogsAndMarkers0": (["s3:ListBucket"], ["arn:aws:s3:::art-bkt"], {"StringLike": {"s3:prefix": [
            "catalog-match-rate/logs/*", "catalog-match-rate/serverless-logs/*",
            "catalog-match-rate/published/*"]}}),
        "SeeClusters": (["elasticmapreduce:ListClusters"], "*", None),
        "SeeApplications": (["emr-serverless:ListApplications"], "*", None),
        "SeeJobRuns": (["emr-serverless:GetJobRun", "emr-serverless:ListJobRuns"],
                       [f"arn:aws:emr-serverless:us-east-1:{ACCOUNT}:/applications/*"], None),
        "WriteLogs": (["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                      [f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/{fn}:*"], None),
    }


def _state(moto_server, cfg):
    """What AWS holds for this config: topic subscriptions, role policy, function, rules, targets, grants."""
    c = _clients(moto_server.endpoint_url)
    a = cfg.alerts
    topic = alerts.topic_arn(cfg, ACCOUNT)
    subs = sorted(s["Endpoint"] for s in c("sns").list_subscriptions_by_topic(TopicArn=topic)
                  ["Subscriptions"])
    rules = {r["Name"]: r for r in c("events").list_rules(NamePrefix=f"{a.function_name}-")["Rules"]}
    targets = {name: c("events").list_targets_by_rule(Rule=name)["Targets"] for name in rules}
    grants = json.loads(c("lambda").get_policy(FunctionName=a.function_name)["Policy"])["Statement"]
    doc = c("iam").get_role_policy(RoleName=f"{a.function_name}-role",
                                   PolicyName=f"{a.function_name}-alert")["PolicyDocument"]
    fn = c("lambda").get_function(FunctionName=a.function_name)["Configuration"]
    return subs, rules, targets, grants, json.loads(doc) if isinstance(doc, str) else doc, fn


def test_deploy_sends_every_request_and_a_second_run_changes_nothing(moto_server):
    cfg = _cfg()
    a = cfg.alerts
    clients = _clients(moto_server.endpoint_url)
    first = alerts.deploy_alerts(cfg, "conf/emr.yaml", clients, ACCOUNT, "00fapp1", sleep=lambda s: None)
    assert first.topic_arn == alerts.topic_arn(cfg, ACCOUNT)
    assert first.actions[:5] == ["topic", "subscribed oncall@example.com", "subscribed lead@example.com",
                                 "role", "function created"]
    subs, rules, targets, grants, doc, fn = _state(moto_server, cfg)
    assert subs == ["lead@example.com", "oncall@example.com"]
    kinds = ["cluster", "deadline", "serverless", "step"]
    assert sorted(rules) == [f"{a.function_name}-{k}" for k in kinds]
    sent = {r["Name"]: r for r in alerts.rules(cfg, "00fapp1")}
    for name, rule in rules.items():
        if "EventPattern" in sent[name]:
            assert json.loads(rule["EventPattern"]) == json.loads(sent[name]["EventPattern"])
        else:
            assert rule["ScheduleExpression"] == "cron(0 7 * * ? *)"
        (target,) = targets[name]
        assert (target["Id"], target["Arn"]) == ("alert", first.function_arn)
        expected_input = DEADLINE_INPUT if name.endswith("-deadline") else None
        assert json.loads(target.get("Input", "null")) == expected_input
    assert sorted(g["Sid"] for g in grants) == [f"{a.function_name}-{k}-invoke" for k in kinds]
    assert {g["Principal"]["Service"] for g in grants} == {"events.amazonaws.com"}
    settings = alerts.handler_settings(cfg, "conf/emr.yaml", first.topic_arn)
    assert doc == alerts.alert_policy(cfg, ACCOUNT, settings)
    assert (fn["Handler"], fn["Runtime"], fn["Timeout"], fn["Role"]) == (HANDLER, "python3.12", 660,
                                                                         first.role_arn)
    assert fn["Environment"]["Variables"] == settings.as_env()

    second = alerts.deploy_alerts(cfg, "conf/emr.yaml", clients, ACCOUNT, "00fapp1", sleep=lambda s: None)
    assert second.actions == ["topic", "role", "function updated", "rules", "targets"]
    assert (second.topic_arn, second.function_arn, second.role_arn) == (
        first.topic_arn, first.function_arn, first.role_arn)
    assert _state(moto_server, cfg)[:5] == (subs, rules, targets, grants, doc)


def test_without_an_alerts_section_deploy_says_what_is_missing(tmp_path, capsys):
    conf = tmp_path / "emr.yaml"
    text = (ROOT / "conf" / "emr.yaml").read_text()
    conf.write_text(text[:text.index("\n# Failure alerts")] + "\n")
    assert deploy_main(["alerts", "--conf", str(conf), "--dry-run"]) == 2
    assert "alerts: required for deploy.py alerts" in capsys.readouterr().err


# --------------------------------------------------------------------------- patterns

APP = "00fg4kq3p7l1ab09"
SAMPLES = {  # label -> (event, the rule kind that must match it, or None)
    "step failed": (step_event("FAILED"), "step"),
    "step cancelled": (step_event("CANCELLED"), "step"),
    "step interrupted": (step_event("INTERRUPTED"), "step"),
    "step completed": (step_event("COMPLETED"), None),
    "step running": (step_event("RUNNING"), None),
    "another job's step failed": (step_event("FAILED", name="nightly-sessions 2026-11-19"), None),
    "a look-alike job's step failed": (step_event("FAILED", name=f"{PREFIX}-v2 2026-11-19"), None),
    "bootstrap failed": (cluster_event(), "cluster"),
    "cluster failed validation": (cluster_event(code="VALIDATION_ERROR", reason="Subnet is full"), "cluster"),
    "cluster ended by its step": (cluster_event(code="STEP_FAILURE", reason="Shut down as step failed"),
                                  "cluster"),
    "cluster done": (cluster_event("TERMINATED", "ALL_STEPS_COMPLETED", "Steps completed"), None),
    "cluster running": (cluster_event("RUNNING", "", ""), None),
    "another job's cluster failed": (cluster_event(name="nightly-sessions 2026-11-19"), None),
    "job run failed": (job_run_event(APP), "serverless"),
    "job run cancelled": (job_run_event(APP, state="CANCELLED", previous="CANCELLING"), "serverless"),
    "job run succeeded": (job_run_event(APP, state="SUCCESS"), None),
    "job run running": (job_run_event(APP, state="RUNNING", previous="SCHEDULED"), None),
    "another application's job run failed": (job_run_event("00fotherapp00001"), None),
}


def test_the_rules_match_this_jobs_failures_and_nothing_else(moto_server):
    """Each deployed pattern on an event bus of its own, routed to an SQS queue; every sample is put.

    moto's TestEventPattern answers nothing (it is not implemented there), so the patterns are checked
    by moto's event router, which applies the same matching to PutEvents: what reaches a rule's
    queue is what the rule matches.
    """
    c = _clients(moto_server.endpoint_url)
    events, sqs = c("events"), c("sqs")
    bus = events.create_event_bus(Name=f"patterns-{uuid.uuid4().hex[:8]}")["EventBusArn"].rsplit("/", 1)[1]
    queues = {}
    for rule in (r for r in alerts.rules(_cfg(), APP) if "EventPattern" in r):
        kind = rule["Name"].rsplit("-", 1)[1]
        url = sqs.create_queue(QueueName=f"{bus}-{kind}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=rule["Name"], EventPattern=rule["EventPattern"], EventBusName=bus)
        events.put_targets(Rule=rule["Name"], EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
        queues[kind] = url
    assert sorted(queues) == ["cluster", "serverless", "step"]
    for event, _ in SAMPLES.values():
        answer = events.put_events(Entries=[{"Source": event["source"], "DetailType": event["detail-type"],
                                             "Detail": json.dumps(event["detail"]), "EventBusName": bus}])
        assert answer["FailedEntryCount"] == 0
    matched = {}
    for kind, url in queues.items():
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                break
            for m in got:
                detail = json.loads(m["Body"])["detail"]
                label = next(k for k, (e, _) in SAMPLES.items() if e["detail"] == detail)
                matched[label] = kind
    assert matched == {label: kind for label, (_, kind) in SAMPLES.items() if kind}


@pytest.mark.parametrize("deadline, cron", [("07:00", "cron(0 7 * * ? *)"), ("23:45", "cron(45 23 * * ? *)")])
def test_the_deadline_is_a_daily_utc_schedule(deadline, cron):
    assert alerts.deadline_cron(deadline) == cron
