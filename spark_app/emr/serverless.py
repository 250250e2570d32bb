"""EMR Serverless: the application and the job run built from the same config, artifacts and sizing.

Request building is pure, as for EMR on EC2 (spark_app.emr.launch): config + release version in,
boto3 request out, so `--dry-run` prints exactly what is sent. The job runs the same
process_data.py with the same zip (--py-files), config file (--files) and dependency archive
(spark.archives ... #deps, PYTHONPATH=./deps on the driver and the executors); its workers are
picked by spark_app.emr.sizing.serverless_workers from the EC2 sizing, so both targets do the same
work per core. Logs go to S3 (monitoringConfiguration); the driver's stderr.gz is read and
explained by the same parser as a YARN container's (spark_app.emr.logs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from spark_app.config import Config, ServerlessConfig
from spark_app.emr import deps
from spark_app.emr.launch import (
    SPARK_MAJOR_MINOR,
    artifact_uri,
    deequ_jar,
    deps_uri,
    emr_section,
    s3_client,
)
from spark_app.emr.logs import Diagnosis, best_cause, parse_container_stderr, read_gz
from spark_app.emr.packaging import ENTRY_POINT, ZIP_NAME
from spark_app.emr.polling import poll
from spark_app.emr.sizing import Workers, compute_sizing, serverless_workers
from spark_app.errors import ConfigError
from spark_app.s3_uri import split_s3_uri

RUN_DONE = {"SUCCESS", "FAILED", "CANCELLED"}
RUN_CANCELLABLE = {"SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "QUEUED"}
APP_GONE = {"TERMINATED"}


def serverless_section(cfg: Config) -> ServerlessConfig:
    emr = emr_section(cfg)
    if emr.serverless is None:
        raise ConfigError(f"{cfg.source_file}: emr.serverless: required for the serverless target "
                          f"(at least execution_role_arn)")
    return emr.serverless


Table = Mapping[str, Mapping[str, float]]


def log_uri(cfg: Config) -> str:
    emr = emr_section(cfg)
    return serverless_section(cfg).log_uri or f"s3://{emr.bucket}/{emr.prefix.strip('/')}/serverless-logs/"


def workers(cfg: Config, instance_types: Table) -> Workers:
    """Driver and executor workers: the EC2 core group's sizing, fitted to Serverless's worker sizes."""
    core = emr_section(cfg).core
    return serverless_workers(compute_sizing(core.instance_type, core.count, instance_types))


def create_application_request(cfg: Config, instance_types: Table) -> Dict[str, Any]:
    emr, sls = emr_section(cfg), serverless_section(cfg)
    sized = workers(cfg, instance_types).max_capacity()
    return {
        "name": sls.application_name,
        "releaseLabel": sls.release_label or emr.release_label,
        "type": "SPARK",
        "architecture": sls.architecture,
        "maximumCapacity": {"cpu": sls.max_cpu or sized["cpu"], "memory": sls.max_memory or sized["memory"]},
        "autoStartConfiguration": {"enabled": True},
        "autoStopConfiguration": {"enabled": True, "idleTimeoutMinutes": sls.idle_timeout_minutes},
        "tags": dict(sorted(emr.tags.items())),
    }


def archive_arch(sls: ServerlessConfig) -> str:
    """The dependency archive an application's workers load: ARM64 takes the aarch64 one."""
    return deps.AARCH64 if sls.architecture == "ARM64" else deps.X86_64


def spark_conf(cfg: Config, instance_types: Table,
               deps_name: Optional[str] = None) -> Dict[str, str]:
    """Worker sizes, the deps archive (of the application's architecture) on PYTHONPATH, pydeequ's
    SPARK_VERSION, then serverless.spark_conf."""
    emr = emr_section(cfg)
    props = workers(cfg, instance_types).spark_conf()
    props.update(deps.spark_conf(deps_uri(emr, deps_name, archive_arch(serverless_section(cfg)))))
    props.update({
        "spark.emr-serverless.driverEnv.SPARK_VERSION": SPARK_MAJOR_MINOR,
        "spark.executorEnv.SPARK_VERSION": SPARK_MAJOR_MINOR,
    })
    if emr.glue_catalog:
        props["spark.hadoop.hive.metastore.client.factory.class"] = (
            "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory")
    props.update(serverless_section(cfg).spark_conf)
    return props


def spark_submit_parameters(cfg: Config, version: str, conf_name: str,
                            instance_types: Table,
                            deps_name: Optional[str] = None) -> str:
    emr = emr_section(cfg)
    parts = ["--py-files", artifact_uri(emr, version, ZIP_NAME)]
    parts += ["--files", artifact_uri(emr, version, conf_name)]
    jar = deequ_jar(cfg)
    if jar:
        parts += ["--jars", jar]
    props = spark_conf(cfg, instance_types, deps_name)
    parts += [arg for key in sorted(props) for arg in ("--conf", f"{key}={props[key]}")]
    return " ".join(parts)


def start_job_run_request(cfg: Config, application_id: str, version: str, job_args: List[str], conf_name: str,
                          instance_types: Table, label: str,
                          deps_name: Optional[str] = None) -> Dict[str, Any]:
    """The complete StartJobRun request: process_data.py with the release's artifacts and the sizing."""
    emr, sls = emr_section(cfg), serverless_section(cfg)
    params = spark_submit_parameters(cfg, version, conf_name, instance_types, deps_name)
    monitoring = {"s3MonitoringConfiguration": {"logUri": log_uri(cfg)}}
    return {
        "applicationId": application_id,
        "executionRoleArn": sls.execution_role_arn,
        "name": f"{emr.prefix} {label}",
        "jobDriver": {"sparkSubmit": {
            "entryPoint": artifact_uri(emr, version, ENTRY_POINT),
            "entryPointArguments": job_args,
            "sparkSubmitParameters": params,
        }},
        "configurationOverrides": {"monitoringConfiguration": monitoring},
        "tags": {**dict(sorted(emr.tags.items())), "artifact-version": version},
    }


# --------------------------------------------------------------------------- calls


def client(cfg: Config) -> Any:
    import boto3

    emr = emr_section(cfg)
    return boto3.client("emr-serverless", region_name=emr.region, endpoint_url=emr.endpoint_url)


def find_application(sls_client: Any, name: str) -> Optional[str]:
    """The id of the live application of that name, or None."""
    for page in sls_client.get_paginator("list_applications").paginate():
        for app in page["applications"]:
            if app["name"] == name and app["state"] not in APP_GONE:
                return app["id"]
    return None


def ensure_application(sls_client: Any, request: Dict[str, Any]) -> Tuple[str, bool]:
    """Reuse the application of the request's name or create it; returns (id, created)."""
    found = find_application(sls_client, request["name"])
    if found:
        return found, False
    return sls_client.create_application(**request)["applicationId"], True


def start(sls_client: Any, request: Dict[str, Any]) -> str:
    return sls_client.start_job_run(**request)["jobRunId"]


@dataclass(frozen=True)
class RunStatus:
    application_id: str
    job_run_id: str
    state: str
    reason: str = ""

    @property
    def done(self) -> bool:
        return self.state in RUN_DONE

    @property
    def ok(self) -> bool:
        return self.state == "SUCCESS"

    def line(self) -> str:
        why = f": {self.reason}" if self.reason else ""
        return f"application {self.application_id} job run {self.job_run_id} {self.state}{why}"


def status(sls_client: Any, application_id: str, job_run_id: str) -> RunStatus:
    run = sls_client.get_job_run(applicationId=application_id, jobRunId=job_run_id)["jobRun"]
    return RunStatus(application_id, job_run_id, run["state"], run.get("stateDetails") or "")


def wait(sls_client: Any, application_id: str, job_run_id: str, poll_seconds: float = 10.0,
         max_poll_seconds: float = 60.0, timeout_seconds: Optional[float] = None,
         echo: Callable[[str], None] = print, sleep: Callable[[float], None] = time.sleep) -> RunStatus:
    """Poll the job run until it is done (or the timeout), echoing each state change once."""
    return poll(lambda: status(sls_client, application_id, job_run_id), lambda now: now.state,
                poll_seconds, max_poll_seconds, timeout_seconds, echo, sleep)


def cancel(sls_client: Any, application_id: str, job_run_id: str) -> str:
    state = status(sls_client, application_id, job_run_id).state
    if state not in RUN_CANCELLABLE:
        raise ConfigError(f"job run {job_run_id} is {state}: only a submitted, pending or running run can be "
                          f"cancelled")
    sls_client.cancel_job_run(applicationId=application_id, jobRunId=job_run_id)
    return f"job run {job_run_id} cancelling (was {state})"


def driver_log_key(uri: str, application_id: str, job_run_id: str, stream: str = "stderr") -> Tuple[str, str]:
    """Where EMR Serverless puts the driver's log: <logUri>/applications/<app>/jobs/<run>/SPARK_DRIVER/."""
    bucket, prefix = split_s3_uri(uri)
    base = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
    return bucket, f"{base}applications/{application_id}/jobs/{job_run_id}/SPARK_DRIVER/{stream}.gz"


def diagnose(s3: Any, uri: str, application_id: str, job_run_id: str) -> Diagnosis:
    """The probable cause from the driver's stderr.gz, by the parser that reads YARN containers' logs."""
    from botocore.exceptions import ClientError

    bucket, key = driver_log_key(uri, application_id, job_run_id)
    try:
        text = read_gz(s3, bucket, key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
            raise
        return Diagnosis(None, [])
    return Diagnosis(best_cause(parse_container_stderr(text, "SPARK_DRIVER")), [f"s3://{bucket}/{key}"])


# --------------------------------------------------------------------------- what deploy.py prints


def cli_launch(cfg: Config, version: str, job_args: List[str], conf_name: str, table: Table, label: str,
               opts: Any, remember: Callable[[Dict[str, str]], None]) -> int:
    """`launch --target serverless`: create or reuse the application, start the run (opts: dry_run, wait,
    timeout); the ids go to `remember` for status, logs and cancel."""
    import json

    app_request = create_application_request(cfg, table)
    if opts.dry_run:
        run = start_job_run_request(cfg, "<application id>", version, job_args, conf_name, table, label)
        print(json.dumps({"create_application": app_request, "start_job_run": run}, indent=2, sort_keys=True))
        return 0
    sls = client(cfg)
    app_id, created = ensure_application(sls, app_request)
    run_id = start(sls, start_job_run_request(cfg, app_id, version, job_args, conf_name, table, label))
    remember({"target": "serverless", "application_id": app_id, "job_run_id": run_id})
    print(f"started job run {run_id} on application {app_id} ({'created' if created else 'reused'}; "
          f"release {version})")
    return follow(cfg, app_id, run_id, opts.timeout) if opts.wait else 0


def follow(cfg: Config, application_id: str, job_run_id: str, timeout: Optional[float]) -> int:
    """`status --wait`: follow the run; on failure print the driver log's probable cause. Exit code."""
    import sys

    final = wait(client(cfg), application_id, job_run_id, timeout_seconds=timeout)
    if final.ok:
        return 0
    if not final.done:
        print(f"still {final.state} after {timeout:.0f} s", file=sys.stderr)
        return 1
    s3 = s3_client(emr_section(cfg))
    print(diagnose(s3, log_uri(cfg), application_id, job_run_id).render(), file=sys.stderr)
    return 1


def cli_status(cfg: Config, application_id: str, job_run_id: str, wait_: bool,
               timeout: Optional[float]) -> int:
    if wait_:
        return follow(cfg, application_id, job_run_id, timeout)
    now = status(client(cfg), application_id, job_run_id)
    print(now.line())
    return 1 if now.done and not now.ok else 0


def cli_logs(cfg: Config, s3: Any, application_id: str, job_run_id: str, stdout: bool, dry_run: bool) -> int:
    """`logs`: the driver's probable cause (stderr.gz), or with `stdout` the driver's stdout as it is."""
    import json

    bucket, key = driver_log_key(log_uri(cfg), application_id, job_run_id, "stdout" if stdout else "stderr")
    if dry_run:
        print(json.dumps({"get_object": {"Bucket": bucket, "Key": key}}, indent=2, sort_keys=True))
        return 0
    if stdout:
        print(read_gz(s3, bucket, key), end="")
        return 0
    diagnosis = diagnose(s3, log_uri(cfg), application_id, job_run_id)
    print(diagnosis.render())
    return 0 if diagnosis.logs_read else 1
