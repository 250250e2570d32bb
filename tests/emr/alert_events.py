"""Sample EventBridge events, in the shapes AWS documents for EMR and EMR Serverless.

"EMR Step Status Change" and "EMR Cluster State Change" (Amazon EMR Management Guide, "Monitoring
Amazon EMR events"): detail holds severity, name, clusterId, state, message, and for a step
stepId and actionOnFailure, for a cluster stateChangeReason as a JSON *string* of {code, message}.
"EMR Serverless Job Run State Change" (EMR Serverless User Guide, "Automating EMR Serverless with
Amazon EventBridge"): detail holds jobRunId, applicationId, arn, releaseLabel, state,
previousState, createdBy, createdAt, updatedAt; no name and no reason.
"""

from __future__ import annotations

import json
from typing import Any, Dict

ACCOUNT = "123456789012"
PREFIX = "catalog-match-rate"  # emr.prefix of the tests' config: runs are named "<prefix> <day>"
DAY = "2026-11-19"
CLUSTER, STEP = "j-1ABCDEF23456", "s-2AB3CD4EF5GH"
BOOT_CLUSTER = "j-3BOOTSTRAP789"
BOOTSTRAP_REASON = ("Master instance (i-0fa1c2) failed attempting to run bootstrap action file path "
                    "'s3://example-artifacts/catalog-match-rate/3f2a9c1b7d4e/setup.sh' for bootstrap "
                    "action 1 with return code 1")


def _envelope(detail_type: str, source: str, detail: Dict[str, Any]) -> Dict[str, Any]:
    return {"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": detail_type,
            "source": source, "account": ACCOUNT, "time": "2026-11-20T06:12:41Z", "region": "us-east-1",
            "resources": [], "detail": detail}


def step_event(state: str = "FAILED", name: str = f"{PREFIX} {DAY}", cluster: str = CLUSTER,
               step: str = STEP) -> Dict[str, Any]:
    verb = {"FAILED": "failed", "CANCELLED": "was cancelled", "INTERRUPTED": "was interrupted",
            "COMPLETED": "completed", "RUNNING": "started running"}[state]
    return _envelope("EMR Step Status Change", "aws.emr", {
        "severity": "ERROR" if state == "FAILED" else "INFO", "actionOnFailure": "TERMINATE_CLUSTER",
        "stepId": step, "name": name, "clusterId": cluster, "state": state,
        "message": f"Step {step} ({name}) in Amazon EMR cluster {cluster} ({name}) {verb} at "
                   "2026-11-20 06:12 UTC.",
    })


def cluster_event(state: str = "TERMINATED_WITH_ERRORS", code: str = "BOOTSTRAP_FAILURE",
                  reason: str = BOOTSTRAP_REASON, name: str = f"{PREFIX} {DAY}",
                  cluster: str = BOOT_CLUSTER) -> Dict[str, Any]:
    ended = {"TERMINATED_WITH_ERRORS": "has terminated with errors", "TERMINATED": "has terminated",
             "RUNNING": "is running"}[state]
    return _envelope("EMR Cluster State Change", "aws.emr", {
        "severity": "CRITICAL" if state == "TERMINATED_WITH_ERRORS" else "INFO",
        "stateChangeReason": json.dumps({"code": code, "message": reason}), "name": name,
        "clusterId": cluster, "state": state,
        "message": f"Amazon EMR Cluster {cluster} ({name}) {ended} at 2026-11-20 06:05 UTC with a reason "
                   f"of {code}.",
    })


def job_run_event(application_id: str, job_run_id: str = "00f1cbn5g4bb0c01", state: str = "FAILED",
                  previous: str = "RUNNING") -> Dict[str, Any]:
    return _envelope("EMR Serverless Job Run State Change", "aws.emr-serverless", {
        "jobRunId": job_run_id, "applicationId": application_id,
        "arn": f"arn:aws:emr-serverless:us-east-1:{ACCOUNT}:/applications/{application_id}/jobruns/"
               f"{job_run_id}",
        "releaseLabel": "emr-7.5.0", "state": state, "previousState": previous,
        "createdBy": f"arn:aws:sts::{ACCOUNT}:assumed-role/catalog-match-rate-launcher-role/launcher",
        "updatedAt": "2026-11-20T06:05:02.299487Z", "createdAt": "2026-11-20T06:01:25.325900Z",
    })
