"""deploy.py's command line: the commands, their help and options (the logic is elsewhere in emr/)."""

from __future__ import annotations

import argparse

TARGETED = ("launch", "status", "logs", "cancel")
HELP = {"package": "build the release into dist/", "deps": "build dist/deps-<hash>.tar.gz from the lock",
        "upload": "put the release and the deps archive on S3", "launch": "run a day on a new cluster or on "
        "EMR Serverless", "submit": "add the step to a running cluster", "status": "state of the last run "
        "(--wait follows it)", "logs": "probable cause of a failure (--stdout: the driver's stdout)",
        "cancel": "cancel a pending or running step / job run", "terminate": "terminate a cluster",
        "sizing": "executor sizing and whether it fits YARN", "schedule": "daily launch by EventBridge",
        "quarantine-expiry": "S3 lifecycle rule expiring the quarantine prefix"}
HELP["alerts"] = "failure alerts and the deadline watch: SNS topic, EventBridge rules, alert Lambda"


def parser(description: str, dist: str) -> argparse.ArgumentParser:
    """deploy.py's commands and their options (`dist`: where builds go by default)."""
    parser = argparse.ArgumentParser(prog="deploy.py", description=description)
    sub = parser.add_subparsers(dest="command", required=True)
    cmds = {name: sub.add_parser(name, help=text) for name, text in HELP.items()}
    for p in cmds.values():
        p.add_argument("--conf", default="conf/emr.yaml", help="job config with an emr: section")
        p.add_argument("--dry-run", action="store_true", help="print the requests as JSON, send nothing")
    cmds["package"].add_argument("--out", default=dist)
    cmds["deps"].add_argument("--out", default=dist)
    cmds["deps"].add_argument("--cache-dir", help="pip's cache (default: pip's own)")
    for name in ("launch", "submit"):
        p = cmds[name]
        p.add_argument("--pipeline", help="default: emr.schedule.pipeline")
        p.add_argument("--date")
        p.add_argument("--from", dest="date_from")
        p.add_argument("--to", dest="date_to")
        p.add_argument("--version", help="release to run (default: the local build's version)")
    cmds["submit"].add_argument("--cluster-id", required=True)
    for name in TARGETED:
        cmds[name].add_argument("--target", choices=("ec2", "serverless"), help="EMR on EC2 or EMR "
                                "Serverless (default: the last launch's, else emr.schedule.target)")
    for name in ("launch", "status"):
        cmds[name].add_argument("--wait", action="store_true", help="follow until the run is done")
        cmds[name].add_argument("--timeout", type=float, help="stop following after this many seconds")
    for name in ("status", "logs", "cancel", "terminate"):
        cmds[name].add_argument("--cluster-id", help="default: the last launch from this machine")
        cmds[name].add_argument("--step-id", help="default: the last launch's step")
        cmds[name].add_argument("--application-id", help="serverless; default: the last launch's")
        cmds[name].add_argument("--job-run-id", help="serverless; default: the last launch's")
    cmds["logs"].add_argument("--stdout", action="store_true", help="print the driver's stdout instead")
    cmds["terminate"].add_argument("--force", action="store_true", help="lift termination protection first")
    cmds["sizing"].add_argument("--instance-type", help="default: emr.core.instance_type")
    cmds["sizing"].add_argument("--nodes", type=int, help="core nodes (default: emr.core.count)")
    cmds["quarantine-expiry"].add_argument("--days", type=int, help="default: events.quarantine_expire_days")
    return parser
