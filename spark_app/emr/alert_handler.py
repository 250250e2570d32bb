"""The alert Lambda: one readable SNS message per failure of this job, and the deadline watch.

EventBridge invokes it with an EMR event (the rules `deploy.py alerts` puts, spark_app.emr.alerts)
or, at `alerts.deadline`, with {"check": "deadline"}. For a failure it waits, at most
LOG_WAIT_SECONDS, for EMR to copy the logs to S3, names the probable cause with the parser
`deploy.py logs` uses (spark_app.emr.logs) and publishes: pipeline, day, target and ids, state and
EMR's own reason, the cause with the log lines behind it, the log's S3 URI and the command that
re-runs the day. When the logs never arrive it still sends what EMR said. For the deadline it
alerts when yesterday's published marker (spark_app.published) is missing.

This module is also the Lambda's code: it imports the standard library, spark_app.emr.logs (with
spark_app.s3_uri) and spark_app.published, nothing else; boto3 is in the Lambda runtime.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from spark_app import published
from spark_app.emr import logs
from spark_app.s3_uri import split_s3_uri

log = logging.getLogger(__name__)

HANDLER = "spark_app.emr.alert_handler.handler"
STEP_EVENT, CLUSTER_EVENT = "EMR Step Status Change", "EMR Cluster State Change"
SERVERLESS_EVENT = "EMR Serverless Job Run State Change"
DEADLINE_INPUT = {"check": "deadline"}
POLL_SECONDS = 15.0
MAX_LINE, MAX_BODY = 400, 200_000  # characters: a log line, the message (SNS takes 256 KB)
ENV = {"topic_arn": "ALERT_TOPIC_ARN", "pipeline": "PIPELINE", "name_prefix": "RUN_NAME_PREFIX",
       "log_uri": "EMR_LOG_URI", "serverless_log_uri": "SERVERLESS_LOG_URI",
       "serverless_application": "SERVERLESS_APPLICATION", "bootstrap_actions": "BOOTSTRAP_ACTIONS",
       "log_wait_seconds": "LOG_WAIT_SECONDS", "markers_uri": "MARKERS_URI", "deadline": "DEADLINE",
       "conf": "JOB_CONF", "target": "LAUNCH_TARGET"}


@dataclass(frozen=True)
class Settings:
    """What `deploy.py alerts` passes in the function's environment (names: ENV)."""

    topic_arn: str
    pipeline: str
    name_prefix: str  # emr.prefix: clusters, steps and job runs of this job are named "<emr.prefix> <day>"
    log_uri: str
    markers_uri: str
    conf: str = "conf/emr.yaml"
    deadline: str = "07:00"
    target: str = "ec2"
    log_wait_seconds: float = 600.0
    serverless_log_uri: str = ""
    serverless_application: str = ""
    bootstrap_actions: Tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        values: Dict[str, Any] = {k: env[v] for k, v in ENV.items() if env.get(v)}
        values["bootstrap_actions"] = tuple(json.loads(values.get("bootstrap_actions", "[]")))
        values["log_wait_seconds"] = float(values.get("log_wait_seconds", 600))
        return cls(**values)

    def as_env(self) -> Dict[str, str]:
        values = {**self.__dict__, "bootstrap_actions": json.dumps(list(self.bootstrap_actions)),
                  "log_wait_seconds": str(int(self.log_wait_seconds))}
        return {ENV[k]: str(v) for k, v in values.items() if v not in ("", None)}


@dataclass(frozen=True)
class Alert:
    subject: str
    body: str


@dataclass
class Failure:
    """One failure as EMR reported it, before the logs are read."""

    target: str  # "EMR on EC2" or "EMR Serverless"
    what: str  # "step", "cluster", "job run"
    ids: List[Tuple[str, str]]
    name: str
    state: str
    reason: str  # EMR's own words
    label: str = ""  # the day (or D1..D2) taken from the name
    log_hint: str = ""  # where the logs land, when none was read
    logs_command: str = ""
    notes: List[str] = field(default_factory=list)


# --------------------------------------------------------------------------- text


_SECRETS = [
    (re.compile(r"(\b[a-zA-Z][\w+.-]*://[^:/\s@]+:)[^@\s/]+@"), r"\1***@"),
    (re.compile(r"(?i)\b((?:pg)?pass(?:word|wd)?|pwd|secret[\w-]*|[\w-]*token|api[_-]?key|access[_-]?key)"
                r"(\s*[=:]\s*)(['\"]?)[^\s'\",;&]+"), r"\1\2\3***"),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), r"\1****************"),
]


def redact(text: str) -> str:
    """Passwords in URLs, key=value secrets and access key ids masked: an alert never carries a secret."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def day_label(name: str, prefix: str) -> str:
    """The day this project writes after the prefix in its run names ("<emr.prefix> 2026-11-19")."""
    return name[len(prefix) + 1:].strip() if name and name.startswith(f"{prefix} ") else ""


def rerun_command(conf: str, label: str, serverless: bool) -> str:
    days = label.split("..")
    if len(days) == 2:
        when = f"--from {days[0]} --to {days[1]}"
    else:
        when = f"--date {label if re.fullmatch(r'[0-9]{4}-[0-9]{2}-[0-9]{2}', label) else '<YYYY-MM-DD>'}"
    return f"python deploy.py launch --conf {conf} {when}" + (" --target serverless" if serverless else "")


def _clip(line: str) -> str:
    return line if len(line) <= MAX_LINE else line[:MAX_LINE] + " [...]"


def _log_of(diagnosis: Optional[logs.Diagnosis]) -> str:
    """The S3 URI of the log the cause comes from (else the first log read)."""
    if diagnosis is None:
        return ""
    cause = diagnosis.cause
    if cause and cause.source.startswith("s3://"):
        return cause.source
    if cause and cause.source.startswith("container "):
        container = cause.source.split()[1]
        return next((u for u in diagnosis.logs_read if f"/{container}/" in u), "")
    return next((u for u in diagnosis.logs_read if cause and "step" in cause.source and "/steps/" in u),
                diagnosis.logs_read[0] if diagnosis.logs_read else "")


def render(f: Failure, s: Settings, diagnosis: Optional[logs.Diagnosis], waited: Optional[float]) -> Alert:
    """The message: what failed and where, EMR's words, the probable cause and its lines, how to re-run."""
    day = f.label or "unknown day"
    ids = ", ".join(f"{kind} {value}" for kind, value in f.ids)
    lines = [f"{s.pipeline} {day}: the {f.what} {f.state} on {f.target}.", "",
             f"Pipeline:  {s.pipeline}", f"Day:       {day}", f"Target:    {f.target}: {ids}",
             f"Name:      {f.name or '-'}", f"State:     {f.state}", f"EMR says:  {f.reason or '-'}", ""]
    cause = diagnosis.cause if diagnosis else None
    if cause:
        lines += [_clip(line) for line in cause.render().splitlines()]
    elif diagnosis and diagnosis.logs_read:
        lines.append("Probable cause: no known failure pattern in the logs read; see EMR's words above.")
    elif waited is not None:
        lines.append(f"Probable cause: unknown: no log reached S3 within {waited:.0f} s (EMR copies logs "
                     "about every five minutes); EMR's words above are all there is yet.")
        lines += [f"Read the logs later: {f.logs_command}"] if f.logs_command else []
    else:
        lines.append("Probable cause: EMR's words above (no job log is involved in this kind of failure).")
    lines += f.notes
    log_uri = _log_of(diagnosis) or f.log_hint
    lines += ["", f"Log:       {log_uri or '-'}", "Re-run the day:",
              f"  {rerun_command(s.conf, f.label, f.target == 'EMR Serverless')}"]
    subject = f"[{s.pipeline}] {f.state}: {f.what} for {day} on {f.target}"
    subject = re.sub(r"[^\x20-\x7e]", "?", subject)[:99]
    return Alert(redact(subject), redact("\n".join(lines))[:MAX_BODY])


# --------------------------------------------------------------------------- waiting for logs


def wait_for(ready: Callable[[], bool], budget_seconds: float, sleep: Callable[[float], None] = time.sleep,
             clock: Callable[[], float] = time.monotonic, poll_seconds: float = POLL_SECONDS) -> bool:
    """Ask `ready` until it says yes or `budget_seconds` have passed (asked at least once)."""
    start = clock()
    while True:
        if ready():
            return True
        left = budget_seconds - (clock() - start)
        if left <= 0:
            return False
        sleep(min(poll_seconds, left))


def _exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except Exception:  # absent (404) or not readable: a later read says which
        return False


def _any_key(s3: Any, bucket: str, prefix: str, pattern: str) -> bool:
    found = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return any(re.search(pattern, o["Key"]) for o in found)


def serverless_driver_log(uri: str, application_id: str, job_run_id: str) -> Tuple[str, str]:
    """<logUri>/applications/<app>/jobs/<run>/SPARK_DRIVER/stderr.gz, as spark_app.emr.serverless has it."""
    bucket, prefix = split_s3_uri(uri)
    base = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
    return bucket, f"{base}applications/{application_id}/jobs/{job_run_id}/SPARK_DRIVER/stderr.gz"


def _read_logs(read: Callable[[], logs.Diagnosis], f: Failure) -> Optional[logs.Diagnosis]:
    """The diagnosis, or None with a note when the logs could not be read (the alert still goes out)."""
    try:
        return read()
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
        f.notes.append(f"(The logs could not be read: {code}.)")
        log.warning("reading the logs failed: %s", exc)
        return None


# --------------------------------------------------------------------------- the three events


def step_failure(detail: Mapping[str, Any], s: Settings, s3: Any, sleep: Callable[[float], None]) -> Alert:
    cluster, step = detail.get("clusterId", "?"), detail.get("stepId", "?")
    name = detail.get("name", "")
    f = Failure("EMR on EC2", "step", [("cluster", cluster), ("step", step)], name, detail.get("state", "?"),
                detail.get("message", ""), day_label(name, s.name_prefix))
    bucket, key = logs.step_stderr_key(s.log_uri, cluster, step)
    f.log_hint = f"s3://{bucket}/{key.rsplit('/steps/', 1)[0]}/"
    f.logs_command = f"python deploy.py logs --conf {s.conf} --cluster-id {cluster} --step-id {step}"
    if f.state != "FAILED":  # cancelled or interrupted: EMR's words say why, no log explains it
        return render(f, s, None, None)
    if not wait_for(lambda: _exists(s3, bucket, key), s.log_wait_seconds, sleep):
        return render(f, s, None, s.log_wait_seconds)
    names = list(s.bootstrap_actions)
    found = _read_logs(lambda: logs.diagnose_failure(s3, s.log_uri, cluster, step, names, lambda: f.reason),
                       f)
    return render(f, s, found, s.log_wait_seconds)


def cluster_failure(detail: Mapping[str, Any], s: Settings, s3: Any,
                    sleep: Callable[[float], None]) -> Optional[Alert]:
    """None for a cluster ended by its failed step: the step's own alert reports that failure."""
    cluster, name = detail.get("clusterId", "?"), detail.get("name", "")
    try:
        why = json.loads(detail.get("stateChangeReason") or "{}")
    except ValueError:
        why = {"message": str(detail.get("stateChangeReason"))}
    code, message = why.get("code") or "", why.get("message") or detail.get("message", "")
    if code == "STEP_FAILURE":
        return None
    f = Failure("EMR on EC2", "cluster", [("cluster", cluster)], name, detail.get("state", "?"),
                f"{code}: {message}" if code else message, day_label(name, s.name_prefix))
    if code != "BOOTSTRAP_FAILURE" and not logs.bootstrap_failed(message):
        return render(f, s, None, None)
    bucket, prefix = split_s3_uri(s.log_uri)
    base = (prefix.rstrip("/") + "/" if prefix.strip("/") else "") + f"{cluster}/node/"
    f.log_hint = f"s3://{bucket}/{base}"
    if not wait_for(lambda: _any_key(s3, bucket, base, r"/bootstrap-actions/\d+/stderr"), s.log_wait_seconds,
                    sleep):
        return render(f, s, None, s.log_wait_seconds)
    names = list(s.bootstrap_actions)
    found = _read_logs(lambda: logs.diagnose_failure(s3, s.log_uri, cluster, None, names, lambda: message), f)
    return render(f, s, found, s.log_wait_seconds)


def serverless_failure(detail: Mapping[str, Any], s: Settings, s3: Any, sls: Any,
                       sleep: Callable[[float], None]) -> Alert:
    app, run_id = detail.get("applicationId", "?"), detail.get("jobRunId", "?")
    name, reason = detail.get("jobRunName", ""), ""
    try:  # the event carries no reason; GetJobRun's stateDetails is EMR Serverless's own
        run = sls.get_job_run(applicationId=app, jobRunId=run_id)["jobRun"]
        name, reason = name or run.get("name", ""), run.get("stateDetails", "")
    except Exception as exc:
        log.warning("GetJobRun failed: %s", exc)
    f = Failure("EMR Serverless", "job run", [("application", app), ("job run", run_id)], name,
                detail.get("state", "?"), reason, day_label(name, s.name_prefix))
    uri = s.serverless_log_uri or s.log_uri
    bucket, key = serverless_driver_log(uri, app, run_id)
    f.log_hint = f"s3://{bucket}/{key}"
    f.logs_command = (f"python deploy.py logs --conf {s.conf} --target serverless --application-id {app} "
                      f"--job-run-id {run_id}")
    if f.state != "FAILED":
        return render(f, s, None, None)
    if not wait_for(lambda: _exists(s3, bucket, key), s.log_wait_seconds, sleep):
        return render(f, s, None, s.log_wait_seconds)

    def read() -> logs.Diagnosis:
        causes = logs.parse_container_stderr(logs.read_gz(s3, bucket, key), "SPARK_DRIVER")
        return logs.Diagnosis(logs.best_cause(causes), [f"s3://{bucket}/{key}"])

    return render(f, s, _read_logs(read, f), s.log_wait_seconds)


# --------------------------------------------------------------------------- deadline


def yesterday(now: datetime) -> str:
    return (now.astimezone(timezone.utc).date() - timedelta(days=1)).isoformat()


def deadline_check(day: str, s: Settings, s3: Any, last_run: Callable[[], str]) -> Optional[Alert]:
    """None when the day's marker is there, else the alert: missing marker, last published day, last run."""
    if published.read_marker(s3, s.markers_uri, s.pipeline, day) is not None:
        return None
    bucket, prefix = published.split_uri(s.markers_uri)
    last = published.last_published_day(s3, s.markers_uri, s.pipeline)
    marker = published.read_marker(s3, s.markers_uri, s.pipeline, last) if last else None
    seen = (f"{last} (run {marker.get('run_id')}, published {marker.get('published_at')})" if marker
            else "none found")
    lines = [f"{s.pipeline} {day} was not published by {s.deadline} UTC.", "",
             f"Pipeline:            {s.pipeline}", f"Day:                 {day}",
             f"Expected marker:     s3://{bucket}/{published.marker_key(prefix, s.pipeline, day)}",
             f"Last published day:  {seen}", f"Last run:            {last_run()}", "",
             "Re-run the day:", f"  {rerun_command(s.conf, day, s.target == 'serverless')}"]
    subject = f"[{s.pipeline}] LATE: {day} not published by {s.deadline} UTC"
    return Alert(redact(subject)[:99], redact("\n".join(lines)))


def _newest(runs: List[Tuple[str, str, Any]], day: str) -> Optional[Tuple[str, str, Any]]:
    """The run of `day` if any, else the newest: (text, label, created)."""
    mine = [r for r in runs if r[1] == day]
    return max(mine or runs, key=lambda r: str(r[2])) if runs else None


def last_run(s: Settings, day: str, now: datetime, emr: Any = None, sls: Any = None) -> str:
    """The state of the day's run (else the newest run of this job) when this role can see it."""
    try:
        runs = _serverless_runs(s, sls, now) if s.target == "serverless" else _clusters(s, emr, now)
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
        return f"not visible ({code})"
    found = _newest(runs, day)
    return found[0] if found else "no run of this job in the last 3 days (did the schedule fire?)"


def _serverless_runs(s: Settings, sls: Any, now: datetime) -> List[Tuple[str, str, Any]]:
    runs = []
    for page in sls.get_paginator("list_applications").paginate():
        for app in page["applications"]:
            if app["name"] != s.serverless_application or app["state"] == "TERMINATED":
                continue
            pages = sls.get_paginator("list_job_runs").paginate(applicationId=app["id"],
                                                                createdAtAfter=now - timedelta(days=3))
            for r in (r for p in pages for r in p["jobRuns"] if day_label(r.get("name", ""), s.name_prefix)):
                text = f"job run {r['id']} \"{r['name']}\" {r['state']}: {r.get('stateDetails') or '-'}"
                runs.append((text, day_label(r["name"], s.name_prefix), r.get("createdAt")))
    return runs


def _clusters(s: Settings, emr: Any, now: datetime) -> List[Tuple[str, str, Any]]:
    runs = []
    for page in emr.get_paginator("list_clusters").paginate(CreatedAfter=now - timedelta(days=3)):
        for c in (c for c in page["Clusters"] if day_label(c["Name"], s.name_prefix)):
            status = c["Status"]
            why = (status.get("StateChangeReason") or {}).get("Message") or "-"
            text = f"cluster {c['Id']} \"{c['Name']}\" {status['State']}: {why}"
            runs.append((text, day_label(c["Name"], s.name_prefix), status["Timeline"]["CreationDateTime"]))
    return runs


# --------------------------------------------------------------------------- entry point


def handle(event: Mapping[str, Any], s: Settings, clients: Callable[[str], Any], now: datetime,
           sleep: Callable[[float], None] = time.sleep) -> Optional[Alert]:
    """The alert for `event`, or None (the day is published; a cluster ended by its failed step)."""
    kind, detail = event.get("detail-type"), event.get("detail") or {}
    if event.get("check") == DEADLINE_INPUT["check"]:
        day = event.get("date") or yesterday(now)
        return deadline_check(day, s, clients("s3"), lambda: last_run(
            s, day, now, clients("emr") if s.target != "serverless" else None,
            clients("emr-serverless") if s.target == "serverless" else None))
    if kind == STEP_EVENT:
        return step_failure(detail, s, clients("s3"), sleep)
    if kind == CLUSTER_EVENT:
        return cluster_failure(detail, s, clients("s3"), sleep)
    if kind == SERVERLESS_EVENT:
        return serverless_failure(detail, s, clients("s3"), clients("emr-serverless"), sleep)
    raise ValueError(f"not an event this function handles: detail-type {kind!r}")


def handler(event: Any, context: Any) -> Dict[str, Any]:
    """Lambda entry point: publish the alert for `event` (if any) to the topic."""
    import boto3

    settings = Settings.from_env(os.environ)
    alert = handle(event or {}, settings, boto3.client, datetime.now(timezone.utc))
    if alert is None:
        log.info("nothing to report for %s", (event or {}).get("detail-type") or event)
        return {"published": False}
    message_id = boto3.client("sns").publish(TopicArn=settings.topic_arn, Subject=alert.subject,
                                             Message=alert.body)["MessageId"]
    log.info("published %s: %s", message_id, alert.subject)
    return {"published": True, "subject": alert.subject, "message_id": message_id}
