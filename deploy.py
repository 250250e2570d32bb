#!/usr/bin/env python3
"""Ship the job to EMR: package, upload, launch or submit, follow, diagnose, size, schedule.

    deploy.py package                                   # dist/: zip, entry point, bootstrap, conf
    deploy.py upload --conf conf/emr.yaml               # s3://<bucket>/<prefix>/<version>/ + manifest
    deploy.py launch --conf conf/emr.yaml --date 2026-11-19 [--wait]
    deploy.py submit --conf conf/emr.yaml --cluster-id j-XXX --date 2026-11-19
    deploy.py status --conf conf/emr.yaml [--cluster-id j-XXX --step-id s-XXX] [--wait]
    deploy.py logs --conf conf/emr.yaml [--cluster-id j-XXX --step-id s-XXX]
    deploy.py sizing --instance-type r5.12xlarge --nodes 19
    deploy.py schedule --conf conf/emr.yaml
    deploy.py quarantine-expiry --conf conf/emr.yaml [--days 30]   # S3 lifecycle rule on the quarantine

Every command takes --dry-run: print, as JSON, the exact requests it would send, send nothing.
Exit codes: 0 done, 1 failed (the step, or AWS refused: the probable cause is printed),
2 bad arguments or configuration. The logic lives in spark_app; this file only wires it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from spark_app.config import Config, load_config  # noqa: E402
from spark_app.emr import launch as emr_api  # noqa: E402
from spark_app.emr import logs as emr_logs  # noqa: E402
from spark_app.emr import packaging, schedule, sizing  # noqa: E402
from spark_app.errors import ConfigError, PipelineError  # noqa: E402

LAST_LAUNCH = ROOT / "dist" / "last_launch.json"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="deploy.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmds = {name: sub.add_parser(name) for name in
            ("package", "upload", "launch", "submit", "status", "logs", "sizing", "schedule",
             "quarantine-expiry")}
    for p in cmds.values():
        p.add_argument("--conf", default="conf/emr.yaml", help="job config with an emr: section")
        p.add_argument("--dry-run", action="store_true", help="print the requests as JSON, send nothing")
    cmds["package"].add_argument("--out", default=str(ROOT / "dist"))
    for name in ("launch", "submit"):
        p = cmds[name]
        p.add_argument("--pipeline", help="default: emr.schedule.pipeline")
        p.add_argument("--date")
        p.add_argument("--from", dest="date_from")
        p.add_argument("--to", dest="date_to")
        p.add_argument("--version", help="release to run (default: the local build's version)")
    cmds["submit"].add_argument("--cluster-id", required=True)
    for name in ("launch", "status"):
        cmds[name].add_argument("--wait", action="store_true", help="follow until the step is done")
        cmds[name].add_argument("--timeout", type=float, help="stop following after this many seconds")
    for name in ("status", "logs"):
        cmds[name].add_argument("--cluster-id", help="default: the last launch from this machine")
        cmds[name].add_argument("--step-id", help="default: the last launch's step")
    cmds["sizing"].add_argument("--instance-type", help="default: emr.core.instance_type")
    cmds["sizing"].add_argument("--nodes", type=int, help="core nodes (default: emr.core.count)")
    cmds["quarantine-expiry"].add_argument("--days", type=int, help="default: events.quarantine_expire_days")
    return parser.parse_args(list(argv))


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.conf)


def _dump(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def _table(cfg: Optional[Config]) -> Dict[str, Dict[str, float]]:
    return sizing.load_instance_types(overrides=cfg.emr.instance_types if cfg and cfg.emr else None)


def _build(args: argparse.Namespace) -> packaging.Build:
    return packaging.build(ROOT, Path(args.conf).resolve())


def cmd_package(args: argparse.Namespace) -> int:
    release = _build(args)
    if not args.dry_run:
        release.write(args.out)
    entries = packaging.zip_entries(release.by_name()[packaging.ZIP_NAME].data)
    _dump({**release.describe(), "zip_entries": entries, "out": None if args.dry_run else str(args.out)})
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    cfg = _config(args)
    emr = emr_api.emr_section(cfg)
    release = _build(args)
    template = schedule.launch_template(cfg, release.version, Path(args.conf).name, _table(cfg))
    extra = [template]
    if emr_api.ships_release_deequ_jar(cfg):  # no emr.deequ_jar: the fetched jar goes beside the release
        extra.append(packaging.deequ_jar_artifact(ROOT))
    if args.dry_run:
        base = packaging.version_prefix(emr.prefix, release.version)
        puts = [{"Bucket": emr.bucket, "Key": f"{base}/{a.name}", "Metadata": {"sha256": a.sha256},
                 "ContentLength": len(a.data)} for a in release.artifacts + extra]
        manifest = {"Bucket": emr.bucket, "Key": packaging.manifest_key(emr.prefix)}
        _dump({"put_object": puts, "manifest": manifest})
        return 0
    report = packaging.upload(emr_api.s3_client(emr), release, emr.bucket, emr.prefix, extra=extra)
    _dump(report.__dict__)
    return 0


def _job_args(args: argparse.Namespace, cfg: Config) -> List[str]:
    pipeline = args.pipeline or emr_api.emr_section(cfg).schedule.pipeline
    return emr_api.job_arguments(pipeline, Path(args.conf).name, args.date, args.date_from, args.date_to)


def _label(args: argparse.Namespace) -> str:
    return args.date or f"{args.date_from}..{args.date_to}"


def _require_uploaded(cfg: Config, version: str) -> None:
    emr = emr_api.emr_section(cfg)
    manifest = packaging.read_manifest(emr_api.s3_client(emr), emr.bucket, emr.prefix)
    if not manifest or manifest.get("version") != version:
        current = manifest.get("version") if manifest else "nothing"
        raise ConfigError(
            f"release {version} is not the one on s3://{emr.bucket}/{emr.prefix}/ (current: {current}); "
            f"run `make deploy` (or deploy.py upload --conf ...) first, or pass --version"
        )


def cmd_launch(args: argparse.Namespace) -> int:
    cfg = _config(args)
    version = args.version or _build(args).version
    request = emr_api.run_job_flow_request(
        cfg, version, _job_args(args, cfg), Path(args.conf).name, _table(cfg), label=_label(args)
    )
    if args.dry_run:
        _dump(request)
        return 0
    if not args.version:
        _require_uploaded(cfg, version)
    client = emr_api.emr_client(cfg.emr)
    launched = emr_api.launch(client, request)
    _remember(launched.cluster_id, launched.step_ids[-1])
    print(f"launched cluster {launched.cluster_id}, step {launched.step_ids[-1]} (release {version})")
    return _follow(args, cfg, launched.cluster_id, launched.step_ids[-1]) if args.wait else 0


def cmd_submit(args: argparse.Namespace) -> int:
    cfg = _config(args)
    version = args.version or _build(args).version
    step = emr_api.spark_submit_step(
        cfg, version, _job_args(args, cfg), Path(args.conf).name, f"{cfg.emr.prefix} {_label(args)}"
    )
    if args.dry_run:
        _dump({"JobFlowId": args.cluster_id, "Steps": [step]})
        return 0
    if not args.version:
        _require_uploaded(cfg, version)
    step_id = emr_api.submit(emr_api.emr_client(cfg.emr), args.cluster_id, step)
    _remember(args.cluster_id, step_id)
    print(f"submitted step {step_id} to cluster {args.cluster_id} (release {version})")
    return 0


def _remember(cluster_id: str, step_id: str) -> None:
    LAST_LAUNCH.parent.mkdir(parents=True, exist_ok=True)
    LAST_LAUNCH.write_text(json.dumps({"cluster_id": cluster_id, "step_id": step_id}) + "\n")


def _ids(args: argparse.Namespace) -> tuple:
    if args.cluster_id:
        return args.cluster_id, args.step_id
    if not LAST_LAUNCH.is_file():
        raise ConfigError("no --cluster-id given and no earlier launch recorded in dist/last_launch.json")
    last = json.loads(LAST_LAUNCH.read_text())
    return last["cluster_id"], args.step_id or last.get("step_id")


def _follow(args: argparse.Namespace, cfg: Config, cluster_id: str, step_id: Optional[str]) -> int:
    final = emr_api.wait(emr_api.emr_client(cfg.emr), cluster_id, step_id, timeout_seconds=args.timeout)
    if final.ok:
        return 0
    if not final.done:
        print(f"still {final.step_state or final.cluster_state} after {args.timeout:.0f} s", file=sys.stderr)
        return 1
    if step_id:  # like mrjob: on failure, say why
        s3, log_uri = emr_api.s3_client(cfg.emr), emr_api.log_uri(cfg.emr)
        print(emr_logs.diagnose(s3, log_uri, cluster_id, step_id).render(), file=sys.stderr)
    return 1


def cmd_status(args: argparse.Namespace) -> int:
    cfg = _config(args)
    cluster_id, step_id = _ids(args)
    if args.dry_run:
        calls: List[Dict[str, Any]] = [{"describe_cluster": {"ClusterId": cluster_id}}]
        if step_id:
            calls.append({"describe_step": {"ClusterId": cluster_id, "StepId": step_id}})
        _dump(calls)
        return 0
    if args.wait:
        return _follow(args, cfg, cluster_id, step_id)
    now = emr_api.status(emr_api.emr_client(cfg.emr), cluster_id, step_id)
    print(now.line())
    return 1 if now.done and not now.ok else 0


def cmd_logs(args: argparse.Namespace) -> int:
    cfg = _config(args)
    cluster_id, step_id = _ids(args)
    if not step_id:
        raise ConfigError("logs needs --step-id (or an earlier launch recorded in dist/last_launch.json)")
    log_uri = emr_api.log_uri(emr_api.emr_section(cfg))
    if args.dry_run:
        bucket, key = emr_logs.step_stderr_key(log_uri, cluster_id, step_id)
        _dump({"get_object": {"Bucket": bucket, "Key": key}})
        return 0
    diagnosis = emr_logs.diagnose(emr_api.s3_client(cfg.emr), log_uri, cluster_id, step_id)
    print(diagnosis.render())
    return 0 if diagnosis.logs_read else 1


def cmd_sizing(args: argparse.Namespace) -> int:
    cfg = _config(args) if Path(args.conf).is_file() else None
    core = cfg.emr.core if cfg and cfg.emr else None
    itype = args.instance_type or (core.instance_type if core else None)
    nodes = args.nodes or (core.count if core else None)
    if not itype or not nodes:
        raise ConfigError("give --instance-type and --nodes (or a --conf with emr.core)")
    result = sizing.compute_sizing(itype, nodes, _table(cfg))
    _dump({**result.as_dict(), "spark-defaults": result.spark_defaults()})
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    import boto3

    cfg = _config(args)
    emr = emr_api.emr_section(cfg)
    kw = {"region_name": emr.region, "endpoint_url": emr.endpoint_url}
    account = "<account>" if args.dry_run else boto3.client("sts", **kw).get_caller_identity()["Account"]
    sched = emr.schedule
    if args.dry_run:
        _dump({
            "role_policy": schedule.launcher_policy(emr, account),
            "function": {"FunctionName": sched.function_name, "Handler": schedule.HANDLER,
                         "Runtime": sched.lambda_runtime, "Environment": {"Variables": {
                             schedule.ENV_BUCKET: emr.bucket, schedule.ENV_PREFIX: emr.prefix.strip("/")}}},
            "rule": {"Name": sched.rule_name, "ScheduleExpression": sched.cron, "State": "ENABLED"},
            "target": {"Rule": sched.rule_name, "Id": "launcher", "Arn": f"<function {sched.function_name}>"},
            "permission": {"Principal": "events.amazonaws.com", "Action": "lambda:InvokeFunction"},
        })
        return 0
    iam, lam, events = (boto3.client(s, **kw) for s in ("iam", "lambda", "events"))
    done = schedule.deploy_schedule(emr, iam, lam, events, account)
    _dump(done.__dict__)
    return 0


def cmd_quarantine_expiry(args: argparse.Namespace) -> int:
    import boto3

    from spark_app.emr import lifecycle

    cfg = _config(args)
    bucket, prefix = lifecycle.quarantine_location(cfg)
    emr = emr_api.emr_section(cfg)
    days = args.days if args.days is not None else cfg.events.quarantine_expire_days  # type: ignore[union-attr]
    rule = lifecycle.expiry_rule(prefix, days)
    if args.dry_run:
        _dump({"bucket": bucket, "rule": rule})
        return 0
    s3 = boto3.client("s3", region_name=emr.region, endpoint_url=emr.endpoint_url)
    _dump({"bucket": bucket, "rules": lifecycle.set_quarantine_expiry(s3, bucket, rule)})
    return 0


COMMANDS = {"package": cmd_package, "upload": cmd_upload, "launch": cmd_launch, "submit": cmd_submit,
            "status": cmd_status, "logs": cmd_logs, "sizing": cmd_sizing, "schedule": cmd_schedule,
            "quarantine-expiry": cmd_quarantine_expiry}


def explain_aws_error(exc: Exception) -> str:
    """One line on what AWS refused and the likely cause, instead of a stack trace."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found: set AWS_PROFILE, or run `aws configure` / `aws sso login`"
    if isinstance(exc, EndpointConnectionError):
        where = exc.kwargs.get("endpoint_url")
        return f"cannot reach {where}: check emr.region, emr.endpoint_url and the network"
    if isinstance(exc, ClientError):
        err, op = exc.response.get("Error", {}), exc.operation_name
        code, msg = err.get("Code", "?"), err.get("Message", "")
        hints = {
            "AccessDenied": "the credentials in use lack this permission",
            "AccessDeniedException": "the credentials in use lack this permission",
            "NoSuchBucket": "the bucket does not exist (emr.bucket / emr.log_uri in the config)",
            "ValidationException": "EMR rejected a field of the request; compare with --dry-run",
            "InvalidRequestException": "EMR rejected the request; check the cluster or step id",
            "ExpiredToken": "the session credentials expired: log in again",
        }
        return f"AWS refused {op} ({code}: {msg}); probable cause: {hints.get(code, 'see the message')}"
    return str(exc)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return COMMANDS[args.command](args)
    except PipelineError as exc:
        print(f"deploy.py {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except (ClientError, BotoCoreError) as exc:
        print(f"deploy.py {args.command}: {explain_aws_error(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
