#!/usr/bin/env python3
"""Ship the job to EMR on EC2 or EMR Serverless: package, upload, launch, follow, diagnose, size, schedule.

    deploy.py package                                   # dist/: zip, entry point, bootstrap, conf, lock
    deploy.py deps                                      # dist/deps-<hash>.tar.gz from requirements/node.lock
    deploy.py upload --conf conf/emr.yaml               # s3://<bucket>/<prefix>/<version>/ + deps + manifest
    deploy.py launch --conf conf/emr.yaml --date 2026-11-19 [--target serverless] [--wait]
    deploy.py submit --conf conf/emr.yaml --cluster-id j-XXX --date 2026-11-19
    deploy.py status --conf conf/emr.yaml [--target serverless] [ids] [--wait]
    deploy.py logs --conf conf/emr.yaml [--target serverless] [ids] [--stdout]
    deploy.py cancel --conf conf/emr.yaml [--target serverless] [ids]
    deploy.py terminate --conf conf/emr.yaml --cluster-id j-XXX [--force]
    deploy.py sizing --instance-type r5.12xlarge --nodes 19
    deploy.py schedule --conf conf/emr.yaml             # emr.schedule.target: ec2 or serverless
    deploy.py quarantine-expiry --conf conf/emr.yaml [--days 30]   # S3 lifecycle rule on the quarantine
    deploy.py alerts --conf conf/emr.yaml               # failure alerts and the deadline watch
    deploy.py cost --conf conf/emr.yaml [--dry-run --hours 1] [ids]   # what a run costs (conf/prices.yaml)
    deploy.py scaling --conf conf/emr.yaml --cluster-id j-XXX   # emr.managed_scaling on a running cluster

ids: --cluster-id/--step-id (ec2) or --application-id/--job-run-id (serverless); default: the
last launch from this machine.

Every command takes --dry-run: print, as JSON, the exact requests it would send, send nothing.
Exit codes: 0 done, 1 failed (the step, or AWS refused: the probable cause is printed),
2 bad arguments or configuration. The logic lives in spark_app; this file only wires it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from spark_app.config import Config, load_config  # noqa: E402
from spark_app.emr import (  # noqa: E402
    commands,  # noqa: E402
    cost,
    deps,
    fleets,
    packaging,
    schedule,
    serverless,
    sizing,
)
from spark_app.emr import launch as emr_api  # noqa: E402
from spark_app.emr import logs as emr_logs  # noqa: E402
from spark_app.emr.aws_errors import explain_aws_error  # noqa: E402
from spark_app.errors import ConfigError, PipelineError  # noqa: E402
from spark_app.run_days import check_pipeline  # noqa: E402

DIST = ROOT / "dist"
LAST_LAUNCH = DIST / "last_launch.json"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    return commands.parser(__doc__.split("\n\n")[0], str(DIST)).parse_args(list(argv))


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


def cmd_deps(args: argparse.Namespace) -> int:
    if args.dry_run:
        lock, wheels = deps.lock_path(ROOT, args.arch), ROOT / deps.WHEEL_DIRS[args.arch]
        fetch = deps.pip_download_command(lock, wheels, args.cache_dir, args.arch)
        fill = deps.pip_install_command(lock, Path("<tmp>") / deps.ALIAS, wheels, args.arch)
        _dump({"archive": str(Path(args.out) / deps.archive_name(deps.read_lock(ROOT, args.arch), args.arch)),
               "pip": [fetch[1:], fill[1:]]})
        return 0
    cache = Path(args.cache_dir) if args.cache_dir else None
    _dump(deps.build_archive(ROOT, args.out, cache, args.arch).describe())
    return 0


def _templates(cfg: Config, version: str, conf_name: str) -> List[packaging.Artifact]:
    check_pipeline(emr_api.emr_section(cfg).schedule.pipeline)  # what the schedule will launch
    extra = [schedule.launch_template(cfg, version, conf_name, _table(cfg))]
    if cfg.emr.serverless is not None:
        extra += schedule.serverless_templates(cfg, version, conf_name, _table(cfg))
    return extra


def cmd_upload(args: argparse.Namespace) -> int:
    cfg = _config(args)
    emr = emr_api.emr_section(cfg)
    release = _build(args)
    extra = _templates(cfg, release.version, Path(args.conf).name)
    if emr_api.ships_release_deequ_jar(cfg):  # no emr.deequ_jar: the fetched jar goes beside the release
        extra.append(packaging.deequ_jar_artifact(ROOT))
    archives = commands.deps_archives(cfg, DIST, ROOT)  # one per architecture of the nodes and workers
    if args.dry_run:
        base = packaging.version_prefix(emr.prefix, release.version)
        puts = [{"Bucket": emr.bucket, "Key": f"{base}/{a.name}", "Metadata": {"sha256": a.sha256},
                 "ContentLength": len(a.data)} for a in release.artifacts + extra]
        puts += [{"Bucket": bucket, "Key": key, "Body": str(archive)} for archive, bucket, key in archives]
        manifest = {"Bucket": emr.bucket, "Key": packaging.manifest_key(emr.prefix)}
        _dump({"put_object": puts, "manifest": manifest})
        return 0
    s3 = emr_api.s3_client(emr)
    sent = [{"key": k, "uploaded": deps.upload_archive(s3, a, b, k)} for a, b, k in archives]
    report = packaging.upload(s3, release, emr.bucket, emr.prefix, extra=extra)
    _dump({**report.__dict__, "deps": sent})
    return 0


def _job_args(args: argparse.Namespace, cfg: Config) -> List[str]:
    """Refused here, before any build or AWS call, where process_data.py would refuse them."""
    return commands.job(args, emr_api.emr_section(cfg).schedule.pipeline, Path(args.conf).name)


def _require_uploaded(cfg: Config, version: str) -> None:
    emr = emr_api.emr_section(cfg)
    manifest = packaging.read_manifest(emr_api.s3_client(emr), emr.bucket, emr.prefix)
    if not manifest or manifest.get("version") != version:
        current = manifest.get("version") if manifest else "nothing"
        raise ConfigError(
            f"release {version} is not the one on s3://{emr.bucket}/{emr.prefix}/ (current: {current}); "
            f"run `make deploy` (or deploy.py upload --conf ...) first, or pass --version"
        )


def _target(args: argparse.Namespace, cfg: Config) -> str:
    if args.target:
        return args.target
    last = json.loads(LAST_LAUNCH.read_text()) if args.command != "launch" and LAST_LAUNCH.is_file() else {}
    return last.get("target") or emr_api.emr_section(cfg).schedule.target


def cmd_launch(args: argparse.Namespace) -> int:
    cfg = _config(args)
    job_args = _job_args(args, cfg)
    version = args.version or _build(args).version
    if _target(args, cfg) == "serverless":
        return _launch_serverless(args, cfg, version, job_args)
    request = emr_api.run_job_flow_request(
        cfg, version, job_args, Path(args.conf).name, _table(cfg), label=commands.label(args)
    )
    if args.dry_run:
        _dump(request)
        return 0
    if not args.version:
        _require_uploaded(cfg, version)
    client = emr_api.emr_client(cfg.emr)
    launched = emr_api.launch(client, request)
    _remember({"target": "ec2", "cluster_id": launched.cluster_id, "step_id": launched.step_ids[-1]})
    print(f"launched cluster {launched.cluster_id}, step {launched.step_ids[-1]} (release {version})")
    return _follow(args, cfg, launched.cluster_id, launched.step_ids[-1]) if args.wait else 0


def _launch_serverless(args: argparse.Namespace, cfg: Config, version: str, job_args: List[str]) -> int:
    if not args.version and not args.dry_run:
        _require_uploaded(cfg, version)
    return serverless.cli_launch(cfg, version, job_args, Path(args.conf).name, _table(cfg),
                                 commands.label(args), args, _remember)


def cmd_submit(args: argparse.Namespace) -> int:
    cfg = _config(args)
    job_args = _job_args(args, cfg)
    version = args.version or _build(args).version
    step = emr_api.submit_step(  # ActionOnFailure CONTINUE: the cluster may be shared
        cfg, version, job_args, Path(args.conf).name, f"{cfg.emr.prefix} {commands.label(args)}"
    )
    if args.dry_run:
        _dump({"JobFlowId": args.cluster_id, "Steps": [step]})
        return 0
    if not args.version:
        _require_uploaded(cfg, version)
    step_id = emr_api.submit(emr_api.emr_client(cfg.emr), args.cluster_id, step)
    _remember({"target": "ec2", "cluster_id": args.cluster_id, "step_id": step_id})
    print(f"submitted step {step_id} to cluster {args.cluster_id} (release {version})")
    return 0


def _remember(ids: Dict[str, str]) -> None:
    LAST_LAUNCH.parent.mkdir(parents=True, exist_ok=True)
    LAST_LAUNCH.write_text(json.dumps(ids) + "\n")


def _ids(args: argparse.Namespace, first: str, second: str) -> tuple:
    """(first, second) ids from the arguments, else from the last launch of the same target."""
    given = getattr(args, first), getattr(args, second, None)
    if given[0]:
        return given
    last = json.loads(LAST_LAUNCH.read_text()) if LAST_LAUNCH.is_file() else {}
    if not last.get(first):
        flag = "--" + first.replace("_", "-")
        raise ConfigError(f"no {flag} given and no earlier launch recorded in dist/last_launch.json")
    return last[first], given[1] or last.get(second)


def _follow(args: argparse.Namespace, cfg: Config, cluster_id: str, step_id: Optional[str]) -> int:
    final = emr_api.wait(emr_api.emr_client(cfg.emr), cluster_id, step_id, timeout_seconds=args.timeout)
    if final.done:  # the run's price, from the cluster's instance-hours
        print(cost.summary_line(emr_api.emr_client(cfg.emr), cluster_id), file=sys.stderr)
    if final.ok:
        return 0
    if not final.done:
        print(f"still {final.step_state or final.cluster_state} after {args.timeout:.0f} s", file=sys.stderr)
        return 1
    print(_diagnose_ec2(cfg, cluster_id, step_id, final.reason).render(), file=sys.stderr)
    return 1


def _diagnose_ec2(cfg: Config, cluster_id: str, step_id: Optional[str], reason: Optional[str]) -> Any:
    """Like mrjob: the step's logs, or a failed bootstrap action's (the step never ran)."""
    def reason_of() -> str:
        return emr_api.status(emr_api.emr_client(cfg.emr), cluster_id).reason if reason is None else reason

    names = [a["Name"] for a in emr_api.bootstrap_actions(cfg.emr, "v")]
    s3, log_uri = emr_api.s3_client(cfg.emr), emr_api.log_uri(cfg.emr)
    return emr_logs.diagnose_failure(s3, log_uri, cluster_id, step_id, names, reason_of)


def _send(args: argparse.Namespace, plan: Any, act: Callable[[], Union[str, int]]) -> int:
    """--dry-run prints the plan, sends nothing; else `act` runs: its text is printed or its code returned."""
    if args.dry_run:
        _dump(plan)
        return 0
    out = act()
    if isinstance(out, str):
        print(out)
        return 0
    return out


def cmd_status(args: argparse.Namespace) -> int:
    cfg = _config(args)
    if _target(args, cfg) == "serverless":
        app_id, run_id = _ids(args, "application_id", "job_run_id")
        plan = [{"get_job_run": {"applicationId": app_id, "jobRunId": run_id}}]
        return _send(args, plan, lambda: serverless.cli_status(cfg, app_id, run_id, args.wait, args.timeout))
    cluster_id, step_id = _ids(args, "cluster_id", "step_id")
    calls: List[Dict[str, Any]] = [{"describe_cluster": {"ClusterId": cluster_id}}]
    calls += [{"describe_step": {"ClusterId": cluster_id, "StepId": step_id}}] if step_id else []

    def show() -> int:
        if args.wait:
            return _follow(args, cfg, cluster_id, step_id)
        now = emr_api.status(emr_api.emr_client(cfg.emr), cluster_id, step_id)
        print(now.line())
        return 1 if now.done and not now.ok else 0

    return _send(args, calls, show)


def cmd_logs(args: argparse.Namespace) -> int:
    cfg = _config(args)
    s3 = None if args.dry_run else emr_api.s3_client(cfg.emr)
    if _target(args, cfg) == "serverless":
        app_id, run_id = _ids(args, "application_id", "job_run_id")
        return serverless.cli_logs(cfg, s3, app_id, run_id, args.stdout, args.dry_run)
    cluster_id, step_id = _ids(args, "cluster_id", "step_id")
    log_uri = emr_api.log_uri(emr_api.emr_section(cfg))
    bucket, key = emr_logs.step_stderr_key(log_uri, cluster_id, step_id or "<step>")
    if args.dry_run or args.stdout:
        def stdout() -> int:
            uri, text = emr_logs.driver_stdout(s3, log_uri, cluster_id, step_id)
            print(text if uri else "No driver stdout on S3 yet (EMR copies logs every ~5 minutes).", end="")
            return 0 if uri else 1
        return _send(args, {"get_object": {"Bucket": bucket, "Key": key}}, stdout)
    diagnosis = _diagnose_ec2(cfg, cluster_id, step_id, None)
    print(diagnosis.render())
    return 0 if diagnosis.logs_read else 1


def cmd_cancel(args: argparse.Namespace) -> int:
    cfg = _config(args)
    if _target(args, cfg) == "serverless":
        app_id, run_id = _ids(args, "application_id", "job_run_id")
        plan = {"cancel_job_run": {"applicationId": app_id, "jobRunId": run_id}}
        return _send(args, plan, lambda: serverless.cancel(serverless.client(cfg), app_id, run_id))
    cluster_id, step_id = _ids(args, "cluster_id", "step_id")
    if not step_id:
        raise ConfigError("cancel needs --step-id (or an earlier launch recorded in dist/last_launch.json)")
    plan = {"cancel_steps": {"ClusterId": cluster_id, "StepIds": [step_id],
                             "StepCancellationOption": emr_api.CANCEL}}
    return _send(args, plan, lambda: emr_api.cancel_step(emr_api.emr_client(cfg.emr), cluster_id, step_id))


def cmd_terminate(args: argparse.Namespace) -> int:
    cfg = _config(args)
    cluster_id, _ = _ids(args, "cluster_id", "step_id")
    unprotect = {"JobFlowIds": [cluster_id], "TerminationProtected": False}
    plan = [{"describe_cluster": {"ClusterId": cluster_id}}]
    plan += [{"set_termination_protection": unprotect}] if args.force else []
    plan += [{"terminate_job_flows": {"JobFlowIds": [cluster_id]}}]
    return _send(args, plan, lambda: emr_api.terminate(emr_api.emr_client(cfg.emr), cluster_id, args.force))


def cmd_sizing(args: argparse.Namespace) -> int:
    cfg = _config(args) if Path(args.conf).is_file() else None
    core = cfg.emr.core if cfg and cfg.emr else None
    itype = args.instance_type or (core.instance_type if core else None)
    nodes = args.nodes or (core.count if core else None)  # --nodes is at least 1 when given
    if not itype or not nodes:
        raise ConfigError("give --instance-type and --nodes (or a --conf with emr.core)")
    _dump(commands.sizing_report(cfg, itype, nodes, _table(cfg)))
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    import boto3

    cfg = _config(args)
    emr = emr_api.emr_section(cfg)
    kw = {"region_name": emr.region, "endpoint_url": emr.endpoint_url}
    account = "<account>" if args.dry_run else boto3.client("sts", **kw).get_caller_identity()["Account"]
    sched = emr.schedule
    check_pipeline(sched.pipeline)
    if sched.target == "serverless":
        serverless.serverless_section(cfg)  # the section must be there before anything is created
    if args.dry_run:
        _dump(schedule.plan(emr, account))
        return 0
    iam, lam, events = (boto3.client(s, **kw) for s in ("iam", "lambda", "events"))
    done = schedule.deploy_schedule(emr, iam, lam, events, account)
    _dump(done.__dict__)
    return 0


def cmd_quarantine_expiry(args: argparse.Namespace) -> int:
    from spark_app.emr import lifecycle

    return lifecycle.cli(_config(args), args.days, args.dry_run, _dump)


def cmd_cost(args: argparse.Namespace) -> int:
    cfg = _config(args)
    return cost.cli(args, cfg, _table(cfg), _target(args, cfg), lambda *ids: _ids(args, *ids), _dump)


def cmd_scaling(args: argparse.Namespace) -> int:
    emr, cluster_id = emr_api.emr_section(_config(args)), _ids(args, "cluster_id", "step_id")[0]
    return fleets.scaling_cli(emr, cluster_id, args.dry_run, _dump, emr_api.emr_client)


COMMANDS = {"package": cmd_package, "deps": cmd_deps, "upload": cmd_upload, "launch": cmd_launch,
            "submit": cmd_submit, "status": cmd_status, "logs": cmd_logs, "cancel": cmd_cancel,
            "terminate": cmd_terminate, "sizing": cmd_sizing, "schedule": cmd_schedule,
            "quarantine-expiry": cmd_quarantine_expiry, "cost": cmd_cost,
            "scaling": cmd_scaling}


def cmd_alerts(args: argparse.Namespace) -> int:
    from spark_app.emr import alerts

    return alerts.cli(_config(args), args.conf, args.dry_run, _table, _dump)


COMMANDS["alerts"] = cmd_alerts


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
