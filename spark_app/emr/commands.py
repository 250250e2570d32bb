"""deploy.py's command line: commands and options; the checks of a job's arguments; the sizing report.

The logic of packaging, launching and following lives elsewhere in emr/.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from spark_app.config import Config
from spark_app.emr import deps, fleets, launch, serverless
from spark_app.emr.deps import ARCHES
from spark_app.emr.sizing import compute_sizing, serverless_workers, yarn_usage
from spark_app.errors import ConfigError
from spark_app.run_days import PIPELINES, add_day_options, check_pipeline, days_to_run

TARGETED = ("launch", "status", "logs", "cancel", "cost")
HELP = {"package": "build the release into dist/", "deps": "build dist/deps-<hash>.tar.gz from the lock",
        "upload": "put the release and the deps archive on S3", "launch": "run a day on a new cluster or on "
        "EMR Serverless", "submit": "add the step to a running cluster", "status": "state of the last run "
        "(--wait follows it)", "logs": "probable cause of a failure (--stdout: the driver's stdout)",
        "cancel": "cancel a pending or running step / job run", "terminate": "terminate a cluster",
        "sizing": "executor sizing and whether it fits YARN", "schedule": "daily launch by EventBridge",
        "quarantine-expiry": "S3 lifecycle rule expiring the quarantine prefix"}
HELP["alerts"] = "failure alerts and the deadline watch: SNS topic, EventBridge rules, alert Lambda"
HELP["scaling"] = "put emr.managed_scaling on a running cluster (PutManagedScalingPolicy)"
HELP["cost"] = "what a run costs: a cluster's instance-hours or a job run's billed hours (--dry-run: a plan)"


def parser(description: str, dist: str) -> argparse.ArgumentParser:
    """deploy.py's commands and their options (`dist`: where builds go by default)."""
    parser = argparse.ArgumentParser(prog="deploy.py", description=description)
    sub = parser.add_subparsers(dest="command", required=True)
    cmds = {name: sub.add_parser(name, help=text) for name, text in HELP.items()}
    for name, p in cmds.items():
        if name != "deps":  # the archive comes from the lock alone
            p.add_argument("--conf", default="conf/emr.yaml", help="job config with an emr: section")
        p.add_argument("--dry-run", action="store_true", help="print the requests as JSON, send nothing")
    cmds["package"].add_argument("--out", default=dist)
    cmds["deps"].add_argument("--out", default=dist)
    cmds["deps"].add_argument("--cache-dir", help="pip's cache (default: pip's own)")
    cmds["deps"].add_argument("--arch", choices=ARCHES, default=ARCHES[0],
                              help="x86_64, or aarch64 for Graviton")
    for name in ("launch", "submit"):
        p = cmds[name]
        p.add_argument("--pipeline", help=f"one of: {', '.join(PIPELINES)} (default: emr.schedule.pipeline)")
        add_day_options(p)  # checked as process_data.py checks them, before anything is sent
        p.add_argument("--version", help="release to run (default: the local build's version)")
    cmds["submit"].add_argument("--cluster-id", required=True)
    for name in TARGETED:
        cmds[name].add_argument("--target", choices=("ec2", "serverless"), help="EMR on EC2 or EMR "
                                "Serverless (default: the last launch's, else emr.schedule.target)")
    for name in ("launch", "status"):
        cmds[name].add_argument("--wait", action="store_true", help="follow until the run is done")
        cmds[name].add_argument("--timeout", type=float, help="stop following after this many seconds")
    for name in ("status", "logs", "cancel", "terminate", "cost", "scaling"):
        cmds[name].add_argument("--cluster-id", help="default: the last launch from this machine")
    for name in ("status", "logs", "cancel", "cost"):
        cmds[name].add_argument("--step-id", help="default: the last launch's step")
        cmds[name].add_argument("--application-id", help="serverless; default: the last launch's")
        cmds[name].add_argument("--job-run-id", help="serverless; default: the last launch's")
    cmds["logs"].add_argument("--stdout", action="store_true", help="print the driver's stdout instead")
    cmds["terminate"].add_argument("--force", action="store_true", help="lift termination protection first")
    cmds["sizing"].add_argument("--instance-type", help="default: emr.core.instance_type")
    cmds["sizing"].add_argument("--nodes", type=_at_least_one, help="core nodes (default: emr.core.count)")
    cmds["quarantine-expiry"].add_argument("--days", type=int, help="default: events.quarantine_expire_days")
    cost = cmds["cost"]
    cost.add_argument("--hours", type=float, default=1.0, help="--dry-run: billed hours of the cluster, "
                      "start-up included (default 1)")
    cost.add_argument("--keys-asked", type=float, default=400_000, help="DynamoDB keys the run asked for "
                      "(its summary's keys_asked; default 400,000: docs/scaling.md's 8 M-event day)")
    cost.add_argument("--prices", help="price table (default conf/prices.yaml)")
    return parser


def deps_archives(cfg: Config, dist: Path, root: Path) -> List[Tuple[Path, str, str]]:
    """(local archive, bucket, key) for each architecture the config's EC2 nodes and Serverless workers
    run; ConfigError naming the `make deps` to run when one is not built (a dry run refuses it too)."""
    emr = launch.emr_section(cfg)
    arches = {launch.cluster_arch(emr)}
    if emr.serverless is not None:
        arches.add(serverless.archive_arch(emr.serverless))
    out = []
    for arch in sorted(arches, key=ARCHES.index):
        archive = dist / deps.archive_name(deps.read_lock(root, arch), arch)
        if not archive.is_file():
            make = "make deps" + ("" if arch == deps.X86_64 else f" ARCH={arch}")
            raise ConfigError(f"{archive}: the dependency archive is not built; run `{make}` first")
        bucket, key = launch.deps_uri(emr, arch=arch)[len("s3://"):].split("/", 1)
        out.append((archive, bucket, key))
    return out


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least 1, got {value}")
    return value


def job(args: argparse.Namespace, default_pipeline: str, conf_name: str) -> List[str]:
    """process_data.py's arguments for launch/submit; ConfigError where the job itself would refuse them."""
    pipeline = check_pipeline(args.pipeline or default_pipeline)
    days_to_run(args.date, args.date_from, args.date_to)
    days = _iso(args.date), _iso(args.date_from), _iso(args.date_to)
    return launch.job_arguments(pipeline, conf_name, *days)


def label(args: argparse.Namespace) -> str:
    """The run's days as a name: the day, or FROM..TO."""
    return _iso(args.date) or f"{args.date_from}..{args.date_to}"


def _iso(day: Optional[object]) -> Optional[str]:
    return str(day) if day else None


def sizing_report(cfg: Optional[Config], instance_type: str, nodes: int,
                  table: Mapping[str, Mapping[str, float]]) -> Dict[str, Any]:
    """`deploy.py sizing`: what a launch on `nodes` x `instance_type` sends, made by the launch's own code
    (the config's emr: section with its core group replaced), whether that fits YARN, then the rule's
    arithmetic and what fitting it to YARN cut, for the reader."""
    rule = compute_sizing(instance_type, nodes, table)
    workers = serverless_workers(rule)
    emr = cfg.emr if cfg is not None else None
    fleet = None
    if cfg is not None and emr is not None and emr.fleets is not None:  # what the launch sends, per type
        sent = launch.spark_defaults(cfg, table)
        fleet = fleets.sizing_report(emr.fleets, table, emr.managed_scaling, sent)
    if cfg is not None and emr is not None:
        core = dataclasses.replace(emr.core, instance_type=instance_type, count=nodes)
        emr = dataclasses.replace(emr, core=core, fleets=None, managed_scaling=None)  # this group alone
        cfg = dataclasses.replace(cfg, emr=emr)
        ec2 = launch.spark_defaults(cfg, table)
        sls = serverless.spark_conf(cfg, table) if emr.serverless else workers.spark_conf()
        capacity = serverless.create_application_request(cfg, table)["maximumCapacity"] if emr.serverless \
            else workers.max_capacity()
        source = f"{cfg.source_file} (emr.spark_conf on top)"
    else:
        ec2, sls, capacity = rule.spark_defaults(), workers.spark_conf(), workers.max_capacity()
        source = "the sizing alone: no config with an emr: section (--conf) to add emr.spark_conf"
    shown = {k: v for k, v in dataclasses.asdict(rule).items() if k not in ("yarn", "instance_type", "nodes")}
    return {
        "instance_type": instance_type,
        "nodes": nodes,
        "sent_with": source,
        "ec2": {"spark-defaults": ec2, "fits": yarn_usage(ec2, nodes, rule.yarn.yarn_memory_mb).line()},
        "serverless": {"spark_conf": sls, "maximumCapacity": capacity, "cuts": workers.cuts},
        "rule": {"what": "the AWS post's rule before fitting to YARN (not sent as is)", **shown,
                 "explanation": rule.explain()},
        "yarn": dataclasses.asdict(rule.yarn),
        **({"fleets": fleet} if fleet else {}),
    }
