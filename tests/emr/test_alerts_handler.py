"""The alert Lambda, imported from its extracted zip alone and fed each sample event, with sample logs in
moto's S3; its message is read back through an SQS queue subscribed to the topic. Also the deadline watch.

moto cannot run a Lambda, so each call runs the handler in a child Python whose path holds the unzipped
package and the standard library and site-packages (boto3 is in the Lambda runtime), nothing else.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
import sys
import uuid
import zipfile
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest

from spark_app.emr import alerts
from spark_app.emr.alert_handler import redact, rerun_command, serverless_driver_log, wait_for, yesterday
from spark_app.emr.serverless import driver_log_key
from spark_app.published import marker_body, write_marker
from tests.emr.alert_events import BOOT_CLUSTER, CLUSTER, DAY, STEP, cluster_event, job_run_event, step_event
from tests.emr.test_alerts import _cfg
from tests.support.paths import ROOT

DATA = ROOT / "tests" / "data"
REGION = "us-west-2"  # clusters and job runs of these tests stay apart from other modules' (us-east-1)
BUCKET = "example-artifacts"
APP_ID, RUN_ID, LATE_CLUSTER = "00fg4kq3p7l1ab09", "00fg4m1e2c6rto0a", "j-2EXAMPLE7LATE"  # shown in the docs
SECRET = "hunter2-not-for-mail"
_RUN = (
    "import json, sys; sys.path = [sys.argv[1]] + [p for p in sys.path[1:] if 'site-packages' in p "
    "or 'lib/python' in p]; import spark_app.emr.alert_handler as h; "
    "assert h.__file__.startswith(sys.argv[1]), h.__file__; "
    "print(json.dumps(h.handler(json.loads(sys.stdin.read()), None)))"
)


class Lambda:
    """The unzipped function, its topic (with an SQS queue subscribed) and the environment deploy gives it."""

    def __init__(self, endpoint: str, tmp: Path):
        self.endpoint, self.dir = endpoint, tmp / "lambda"
        zipfile.ZipFile(io.BytesIO(alerts.handler_zip())).extractall(self.dir)
        self.s3, self.sns, self.sqs = (self.client(s) for s in ("s3", "sns", "sqs"))
        try:
            self.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        except self.s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        self.cfg = _cfg()
        self.topic = self.sns.create_topic(Name=self.cfg.alerts.topic_name)["TopicArn"]
        self.queue = self.sqs.create_queue(QueueName=f"mail-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]
        self.sns.subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=arn["QueueArn"])
        cfg = replace(self.cfg, emr=replace(self.cfg.emr, bucket=BUCKET))
        settings = alerts.handler_settings(cfg, "conf/emr.yaml", self.topic)
        self.settings = replace(settings, log_wait_seconds=30)

    def client(self, service):
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION)

    def put_log(self, key: str, data_file: str, edit=lambda text: text) -> None:
        text = edit(gzip.decompress((DATA / data_file).read_bytes()).decode())
        self.s3.put_object(Bucket=BUCKET, Key=f"catalog-match-rate/{key}", Body=gzip.compress(text.encode()))

    def __call__(self, event, **settings):
        env = {**os.environ, **replace(self.settings, **settings).as_env(), "AWS_ENDPOINT_URL": self.endpoint,
               "AWS_DEFAULT_REGION": REGION}
        out = subprocess.run([sys.executable, "-c", _RUN, str(self.dir)], input=json.dumps(event), env=env,
                             cwd=self.dir, capture_output=True, text=True, check=True).stdout
        return json.loads(out)

    def mail(self):
        """The one message the topic delivered since the last call: (subject, body)."""
        got = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
        assert len(got) == 1, got
        self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=got[0]["ReceiptHandle"])
        note = json.loads(got[0]["Body"])
        return note["Subject"], note["Message"]

    def no_mail(self):
        assert self.sqs.receive_message(QueueUrl=self.queue).get("Messages", []) == []


@pytest.fixture()
def fn(moto_server, tmp_path):
    return Lambda(moto_server.endpoint_url, tmp_path)


def _step_logs(fn, cluster=CLUSTER, step=STEP):
    app = "application_1763618400000_0002"
    fn.put_log(f"logs/{cluster}/steps/{step}/stderr.gz", "step_stderr_app_failed.gz")
    fn.put_log(f"logs/{cluster}/containers/{app}/container_1763618400000_0002_01_000001/stderr.gz",
               "container_driver_stderr.gz")
    fn.put_log(f"logs/{cluster}/containers/{app}/container_1763618400000_0002_01_000002/stderr.gz",
               "container_executor_stderr.gz")


def step_failure_message(fn):
    _step_logs(fn)
    assert fn(step_event("FAILED"))["published"] is True
    return fn.mail()


def test_a_failed_step_alert_names_the_probable_cause_from_the_driver_log(fn):
    subject, body = step_failure_message(fn)
    assert subject == "[catalog_match_rate] FAILED: step for 2026-11-19 on EMR on EC2"
    container = "containers/application_1763618400000_0002/container_1763618400000_0002_01_000001"
    for text in ("Pipeline:  catalog_match_rate", "Day:       2026-11-19",
                 f"Target:    EMR on EC2: cluster {CLUSTER}, step {STEP}", "State:     FAILED",
                 f"EMR says:  Step {STEP} (catalog-match-rate 2026-11-19) in Amazon EMR cluster",
                 "Probable cause: ModuleNotFoundError: No module named 'pipelines'",
                 "    from pipelines.registry import run_pipeline",
                 "Suggestion: a module is missing on the cluster",
                 f"Log:       s3://{BUCKET}/catalog-match-rate/logs/{CLUSTER}/{container}/stderr.gz",
                 "  python deploy.py launch --conf conf/emr.yaml --date 2026-11-19"):
        assert text in body


def bootstrap_failure_message(fn):
    base = f"logs/{BOOT_CLUSTER}/node"
    fn.put_log(f"{base}/i-0fa1c2/bootstrap-actions/1/stderr.gz", "bootstrap_node_failed_stderr.gz")
    fn.put_log(f"{base}/i-0b00b5/bootstrap-actions/1/stderr.gz", "bootstrap_node_ok_stderr.gz")
    assert fn(cluster_event())["published"] is True
    return fn.mail()


def test_a_bootstrap_failure_alert_names_the_node_the_action_and_its_last_lines(fn):
    subject, body = bootstrap_failure_message(fn)
    assert subject == "[catalog_match_rate] TERMINATED_WITH_ERRORS: cluster for 2026-11-19 on EMR on EC2"
    assert "EMR says:  BOOTSTRAP_FAILURE: Master instance (i-0fa1c2) failed" in body
    assert ("Probable cause: bootstrap action 1 (check python for the deps archive) failed on node i-0fa1c2"
            in body)
    assert "setup.sh: FAILED: '/usr/bin/python3' is Python 3.7" in body
    log = f"s3://{BUCKET}/catalog-match-rate/logs/{BOOT_CLUSTER}/node/i-0fa1c2/bootstrap-actions/1/stderr.gz"
    assert f"Log:       {log}" in body


def serverless_failure_message(fn, run_id=None):
    sls = fn.client("emr-serverless")
    app = sls.create_application(name=fn.cfg.emr.serverless.application_name, releaseLabel="emr-7.5.0",
                                 type="SPARK")["applicationId"]
    run_id = sls.start_job_run(applicationId=app, executionRoleArn=fn.cfg.emr.serverless.execution_role_arn,
                               name=f"catalog-match-rate {DAY}",
                               jobDriver={"sparkSubmit": {"entryPoint": "s3://x/process_data.py"}})["jobRunId"]
    # a stand-in for an error that leaks a password into the driver log (the real sample holds none)
    def leak(text):
        return text.replace("could not connect to server:", f"could not connect to postgresql://etl:{SECRET}@db:5432:")
    fn.put_log(f"serverless-logs/applications/{app}/jobs/{run_id}/SPARK_DRIVER/stderr.gz",
               "serverless_driver_stderr.gz", edit=leak)
    assert fn(job_run_event(app, run_id))["published"] is True
    subject, body = fn.mail()
    return subject, body.replace(app, APP_ID).replace(run_id, RUN_ID)


def test_a_failed_serverless_job_run_alert_names_the_cause_and_carries_no_secret(fn):
    subject, body = serverless_failure_message(fn)
    assert subject == "[catalog_match_rate] FAILED: job run for 2026-11-19 on EMR Serverless"
    assert f"Target:    EMR Serverless: application {APP_ID}, job run {RUN_ID}" in body
    assert "Probable cause: spark_app.errors.SinkError: COPY into staging_product_views_20261119" in body
    assert f"applications/{APP_ID}/jobs/{RUN_ID}/SPARK_DRIVER/stderr.gz" in body
    assert "python deploy.py launch --conf conf/emr.yaml --date 2026-11-19 --target serverless" in body
    assert "could not connect to postgresql://etl:***@db:5432: Connection timed out" in body
    assert SECRET not in body and SECRET not in subject


def test_when_the_logs_never_arrive_the_alert_still_says_what_emr_said(fn):
    assert fn(step_event("FAILED", step="s-NOLOGS0000001"), log_wait_seconds=0)["published"] is True
    _, body = fn.mail()
    assert "EMR says:  Step s-NOLOGS0000001 (catalog-match-rate 2026-11-19)" in body
    assert "Probable cause: unknown: no log reached S3 within 0 s" in body
    command = f"python deploy.py logs --conf conf/emr.yaml --cluster-id {CLUSTER} --step-id s-NOLOGS0000001"
    assert command in body
    assert f"Log:       s3://{BUCKET}/catalog-match-rate/logs/{CLUSTER}/" in body


def test_a_cancelled_step_is_reported_at_once_and_a_cluster_ended_by_its_step_is_left_to_the_steps_alert(fn):
    assert fn(step_event("CANCELLED", step="s-CANCELLED0001"), log_wait_seconds=0)["published"] is True
    subject, body = fn.mail()
    assert subject.startswith("[catalog_match_rate] CANCELLED: step for 2026-11-19")
    assert "Probable cause: EMR's words above" in body
    ended = cluster_event(code="STEP_FAILURE", reason="Shut down as step failed", cluster=CLUSTER)
    assert fn(ended) == {"published": False}
    fn.no_mail()


def deadline_messages(fn):
    """Late (markers up to the day before, the day's cluster still up), then on time; (subject, body)."""
    markers = fn.settings.markers_uri
    for day, run in (("2026-11-17", 41), ("2026-11-18", 42)):
        at = datetime(2026, 11, int(day[-2:]) + 1, 6, 41, 9, tzinfo=timezone.utc)
        body = marker_body("catalog_match_rate", day, run, match_rate=0.81, published_at=at)
        write_marker(fn.s3, markers, "catalog_match_rate", day, body)
    emr = fn.client("emr")
    name = f"catalog-match-rate {DAY}"
    master = {"InstanceRole": "MASTER", "InstanceType": "m5.xlarge", "InstanceCount": 1}
    step = {"Name": name, "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit"]}}
    cluster = emr.run_job_flow(Name=name, ReleaseLabel="emr-7.5.0", ServiceRole="r", JobFlowRole="j",
                               Steps=[step], Instances={"KeepJobFlowAliveWhenNoSteps": False,
                                                        "InstanceGroups": [master]})
    assert fn({"check": "deadline", "date": DAY})["published"] is True
    late = fn.mail()
    write_marker(fn.s3, markers, "catalog_match_rate", DAY, marker_body("catalog_match_rate", DAY, 43))
    assert fn({"check": "deadline", "date": DAY}) == {"published": False}
    fn.no_mail()
    assert cluster["JobFlowId"] in late[1]
    return late[0], re.sub(r"cluster j-[0-9A-Z]+ ", f"cluster {LATE_CLUSTER} ", late[1])


def test_the_deadline_alerts_when_the_marker_is_missing_with_the_last_published_day_and_run(fn):
    fn.settings = replace(fn.settings, markers_uri=f"s3://{BUCKET}/deadline-{uuid.uuid4().hex[:6]}/published")
    subject, body = deadline_messages(fn)
    assert subject == "[catalog_match_rate] LATE: 2026-11-19 not published by 07:00 UTC"
    assert "Last published day:  2026-11-18 (run 42, published 2026-11-19T06:41:09Z)" in body
    assert f'Last run:            cluster {LATE_CLUSTER} "catalog-match-rate 2026-11-19" WAITING' in body
    assert "/published/catalog_match_rate/dt=2026-11-19/published.json" in body
    assert "python deploy.py launch --conf conf/emr.yaml --date 2026-11-19" in body


def test_the_deadline_on_serverless_names_the_days_job_run(fn):
    fn.settings = replace(fn.settings, target="serverless",
                          markers_uri=f"s3://{BUCKET}/serverless-{uuid.uuid4().hex[:6]}/published")
    sls = fn.client("emr-serverless")
    app = sls.create_application(name=fn.settings.serverless_application, releaseLabel="emr-7.5.0",
                                 type="SPARK")["applicationId"]
    run = sls.start_job_run(applicationId=app, executionRoleArn=fn.cfg.emr.serverless.execution_role_arn,
                            name=f"catalog-match-rate {DAY}",
                            jobDriver={"sparkSubmit": {"entryPoint": "s3://x/process_data.py"}})["jobRunId"]
    assert fn({"check": "deadline", "date": DAY})["published"] is True
    _, body = fn.mail()
    assert f'Last run:            job run {run} "catalog-match-rate {DAY}" SUCCESS: -' in body
    assert f"python deploy.py launch --conf conf/emr.yaml --date {DAY} --target serverless" in body


def test_the_deadline_without_any_marker_says_none_was_found(fn):
    fn.settings = replace(fn.settings, markers_uri=f"s3://{BUCKET}/empty-{uuid.uuid4().hex[:6]}/published")
    assert fn({"check": "deadline", "date": "2026-11-01"})["published"] is True
    assert "Last published day:  none found" in fn.mail()[1]


def test_docs_show_the_messages_this_code_sends(fn):
    """docs/operations.md shows one message of each kind; they are the ones these tests read back."""
    docs = (ROOT / "docs" / "operations.md").read_text()
    fn.settings = replace(fn.settings, markers_uri=f"s3://{BUCKET}/catalog-match-rate/published")
    fn.s3.delete_object(Bucket=BUCKET, Key=f"catalog-match-rate/published/catalog_match_rate/dt={DAY}/"
                        "published.json")
    shown = {"step": step_failure_message(fn), "bootstrap": bootstrap_failure_message(fn),
             "serverless": serverless_failure_message(fn), "deadline": deadline_messages(fn)}
    for kind, (subject, body) in shown.items():
        block = f"Subject: {subject}\n\n{body}\n"
        assert block in docs, f"docs/operations.md lacks the {kind} message:\n{block}"


def test_redaction_masks_passwords_keys_and_tokens_and_keeps_the_rest():
    text = ("postgresql://etl:pw1@db/x password=pw2 PGPASSWORD: 'pw3' api_key=pw4 AKIAABCDEFGHIJKLMNOP "
            "password authentication failed for user etl")
    assert redact(text) == ("postgresql://etl:***@db/x password=*** PGPASSWORD: '***' api_key=*** "
                            "AKIA**************** password authentication failed for user etl")


def test_the_rerun_command_covers_a_day_a_range_and_an_unknown_day():
    assert rerun_command("conf/emr.yaml", "2026-11-19", False) == \
        "python deploy.py launch --conf conf/emr.yaml --date 2026-11-19"
    assert rerun_command("c.yaml", "2026-11-01..2026-11-05", True) == \
        "python deploy.py launch --conf c.yaml --from 2026-11-01 --to 2026-11-05 --target serverless"
    assert rerun_command("c.yaml", "", False).endswith("--date <YYYY-MM-DD>")


def test_waiting_for_logs_asks_until_ready_and_stops_at_its_bound():
    """A stand-in clock: the bound is minutes of real time, which no test waits for."""
    now, asked = [0.0], []

    def sleep(seconds):
        now[0] += seconds

    def ready_at(t):
        return lambda: asked.append(now[0]) or now[0] >= t

    assert wait_for(ready_at(40), 600, sleep, lambda: now[0], poll_seconds=15) is True
    assert asked == [0, 15, 30, 45]
    now[0], asked[:] = 0.0, []
    assert wait_for(ready_at(10_000), 600, sleep, lambda: now[0], poll_seconds=15) is False
    assert asked[-1] == 600 and len(asked) == 41
    assert wait_for(lambda: True, 0, sleep, lambda: now[0]) is True  # asked once even with no time


def test_the_serverless_log_key_is_the_one_deploy_logs_reads():
    assert serverless_driver_log("s3://b/p/serverless-logs/", "app", "run") == \
        driver_log_key("s3://b/p/serverless-logs/", "app", "run")


def test_yesterday_is_the_previous_utc_day():
    assert yesterday(datetime(2026, 11, 20, 7, 0, tzinfo=timezone.utc)) == "2026-11-19"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", yesterday(datetime.now(timezone.utc)))
