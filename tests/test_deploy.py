"""deploy.py end to end against moto's server: dry runs print what is then really sent.

The dependency archive (about 90 MB, built and checked in tests/emr/test_deps.py) is stood in for
here by a small file of the same name in a temporary dist/: upload only moves its bytes.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import uuid
import zipfile
from pathlib import Path

import boto3
import pytest
import yaml

from spark_app.emr import deps
from tests.support.paths import DATA, ROOT

ROLE = "arn:aws:iam::123456789012:role/cmr-serverless-job"


def _load_deploy():
    spec = importlib.util.spec_from_file_location("deploy_cli", ROOT / "deploy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


deploy = _load_deploy()
pytestmark = pytest.mark.skipif(
    not (ROOT / "process_data.py").exists(), reason="process_data.py (the entry point) is not written yet"
)


@pytest.fixture()
def env(moto_server, tmp_path, monkeypatch):
    """A config pointing emr at moto, a fresh bucket, and last-launch state kept in tmp_path."""
    bucket = f"art-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    conf = yaml.safe_load((ROOT / "conf" / "emr.yaml").read_text())
    conf["emr"].update({"bucket": bucket, "endpoint_url": moto_server.endpoint_url,
                        "serverless": {"execution_role_arn": ROLE, "application_name": f"cmr-{bucket}"}})
    path = tmp_path / "emr.yaml"
    path.write_text(yaml.safe_dump(conf))
    monkeypatch.setattr(deploy, "LAST_LAUNCH", tmp_path / "last_launch.json")
    dist = tmp_path / "dist"
    dist.mkdir()
    for arch in deps.ARCHES:  # conf/emr.yaml's Graviton fleets, and this Serverless application's x86_64
        name = deps.archive_name(deps.read_lock(ROOT, arch), arch)
        (dist / name).write_bytes(b"stand-in for the deps archive")
    monkeypatch.setattr(deploy, "DIST", dist)
    emr = boto3.client("emr", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    return {"conf": str(path), "bucket": bucket, "s3": s3, "emr": emr, "tmp": tmp_path}


def _run(capsys, *argv):
    code = deploy.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_sizing_command_reproduces_the_worked_example(capsys):
    code, out, _ = _run(capsys, "sizing", "--instance-type", "r5.12xlarge", "--nodes", "19")
    got = json.loads(out)
    assert code == 0  # what is sent, and that it fits; then the text's numbers, explained, and the cut
    sent = got["ec2"]["spark-defaults"]
    assert (sent["spark.executor.memory"], sent["spark.executor.memoryOverhead"]) == ("36g", "5g")
    assert sent["spark.executor.instances"] == "170" and sent["spark.default.parallelism"] == "1700"
    assert got["ec2"]["fits"].startswith("fits YARN: the busiest node holds 9 containers of 41984 MB")
    rule = got["rule"]
    assert rule["explanation"][0] == "executors per node: (48 vCPU - 1) // 5 cores = 9"
    assert {k: rule[k] for k in ("executors_per_node", "total_executor_memory_gb", "executor_memory_gb",
                                 "memory_overhead_gb", "executor_instances", "parallelism",
                                 "driver_memory_gb", "driver_cores")} == {
        "executors_per_node": 9, "total_executor_memory_gb": 42, "executor_memory_gb": 37,
        "memory_overhead_gb": 5, "executor_instances": 170, "parallelism": 1700,
        "driver_memory_gb": 37, "driver_cores": 5,
    }
    assert got["yarn"]["cuts"] == ["container 42 GiB -> 41 GiB (heap + overhead): "
                                   "9 x 42 GiB = 378 GiB > YARN's 376 GiB per r5.12xlarge"]
    sls = got["serverless"]["spark_conf"]
    worker = [sls[f"spark.executor.{k}"] for k in ("cores", "memory", "memoryOverhead")]
    assert worker == ["4", "27g", "3g"]


def test_sizing_of_the_config_says_what_it_cut(capsys):
    code, out, _ = _run(capsys, "sizing", "--conf", str(ROOT / "conf" / "emr.yaml"))
    got = json.loads(out)
    assert got["yarn"]["cuts"] == ["container 42 GiB -> 40 GiB (heap + overhead): 3 x 42 GiB = 126 GiB "
                                   "> YARN's 120 GiB per r7g.4xlarge"]
    assert got["ec2"]["spark-defaults"]["spark.executor.memory"] == "36g"
    fleets = got["fleets"]  # what the launch sends for conf/emr.yaml's fleets, type by type
    assert fleets["executor"] == "5 cores, 36g + 4g (40 GiB container)"
    assert fleets["per_type"]["r7g.8xlarge"] == {
        "vcpu": 32, "yarn_memory_mb": 253952, "executors_per_node": 6, "container_gb_alone": 41,
        "used_gb": 240}
    assert fleets["notes"] == ["r7g.4xlarge, r6g.4xlarge forces a 40 GiB container on every type "
                               "(r7g.8xlarge alone 41 GiB, r6g.8xlarge alone 41 GiB)"]
    assert fleets["executors"] == {"initial": 5, "maximum": 17}
    partitions = fleets["spark-defaults"]["spark.sql.shuffle.partitions"]
    assert partitions == "170"  # the maximum's (17 executors), not the launch's 50


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        deploy.main(["--help"])
    out = capsys.readouterr().out
    for name in ("deps", "launch", "status", "logs", "cancel", "terminate", "sizing", "schedule"):
        assert name in out


def test_package_writes_the_same_bytes_twice(capsys, tmp_path):
    code, out, _ = _run(capsys, "package", "--out", str(tmp_path / "a"))
    assert code == 0
    version = json.loads(out)["version"]
    _run(capsys, "package", "--out", str(tmp_path / "b"))
    for name in ("spark_app.zip", "process_data.py", "setup.sh", "emr.yaml", "requirements-node.lock"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert len(version) == 12


def test_upload_then_nothing_changes_on_the_second(env, capsys):
    code, out, _ = _run(capsys, "upload", "--conf", env["conf"])
    first = json.loads(out)
    assert code == 0 and first["skipped"] == []
    assert "run_job_flow.json" in first["uploaded"] and "spark_app.zip" in first["uploaded"]
    code, out, _ = _run(capsys, "upload", "--conf", env["conf"])
    second = json.loads(out)
    assert second["uploaded"] == [] and sorted(second["skipped"]) == sorted(first["uploaded"])
    # one archive per architecture the config runs: Graviton fleets (aarch64), an x86_64 Serverless app
    assert [d["uploaded"] for d in first["deps"]] == [True, True]
    assert [d["uploaded"] for d in second["deps"]] == [False, False]
    assert {"create_application.json", "start_job_run.json"} <= set(first["uploaded"])
    keys = [d["key"] for d in first["deps"]]
    names = [deps.archive_name(deps.read_lock(ROOT, a), a) for a in deps.ARCHES]
    assert keys == [f"catalog-match-rate/deps/{name}" for name in names]
    for key in keys:
        stored = env["s3"].get_object(Bucket=env["bucket"], Key=key)["Body"].read()
        assert stored == b"stand-in for the deps archive"
    body = env["s3"].get_object(Bucket=env["bucket"], Key="catalog-match-rate/current.json")["Body"]
    manifest = json.loads(body.read())
    assert manifest["version"] == first["version"]


def test_launch_sends_exactly_the_dry_run_request(env, capsys):
    _run(capsys, "upload", "--conf", env["conf"])
    code, out, _ = _run(capsys, "launch", "--conf", env["conf"], "--date", "2026-11-19", "--dry-run")
    planned = json.loads(out)
    code, out, _ = _run(capsys, "launch", "--conf", env["conf"], "--date", "2026-11-19")
    assert code == 0 and out.startswith("launched cluster j-")
    last = json.loads((env["tmp"] / "last_launch.json").read_text())
    cluster = env["emr"].describe_cluster(ClusterId=last["cluster_id"])["Cluster"]
    assert cluster["Name"] == planned["Name"] == "catalog-match-rate 2026-11-19"
    assert cluster["ReleaseLabel"] == planned["ReleaseLabel"]
    assert cluster["LogUri"] == planned["LogUri"]
    held = {c["Classification"]: c.get("Properties") for c in cluster["Configurations"]}
    assert held == {c["Classification"]: c.get("Properties") for c in planned["Configurations"]}
    step = env["emr"].describe_step(ClusterId=last["cluster_id"], StepId=last["step_id"])["Step"]
    assert step["Config"]["Args"] == planned["Steps"][0]["HadoopJarStep"]["Args"]
    (action,) = env["emr"].list_bootstrap_actions(ClusterId=last["cluster_id"])["BootstrapActions"]
    assert action["ScriptPath"] == planned["BootstrapActions"][0]["ScriptBootstrapAction"]["Path"]
    code, out, _ = _run(capsys, "status", "--conf", env["conf"])
    assert code == 0 and out.strip().endswith(f"step {last['step_id']} RUNNING")


def test_serverless_launch_sends_the_dry_runs_requests_then_follows_the_run(env, capsys):
    _run(capsys, "upload", "--conf", env["conf"])
    argv = ["launch", "--conf", env["conf"], "--date", "2026-11-19", "--target", "serverless"]
    code, out, _ = _run(capsys, *argv, "--dry-run")
    planned = json.loads(out)
    code, out, _ = _run(capsys, *argv, "--wait")
    assert code == 0 and out.startswith("started job run ") and "(created;" in out
    assert out.splitlines()[-1].endswith(" SUCCESS")
    last = json.loads((env["tmp"] / "last_launch.json").read_text())
    sls = boto3.client("emr-serverless", endpoint_url=env["s3"].meta.endpoint_url, region_name="us-east-1")
    app = sls.get_application(applicationId=last["application_id"])["application"]
    assert app["name"] == planned["create_application"]["name"]
    assert app["maximumCapacity"] == planned["create_application"]["maximumCapacity"]
    run = sls.get_job_run(applicationId=last["application_id"], jobRunId=last["job_run_id"])["jobRun"]
    assert run["jobDriver"] == planned["start_job_run"]["jobDriver"]
    assert "spark.archives=s3://" in run["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"]
    code, out, _ = _run(capsys, *argv)
    assert "(reused;" in out
    code, out, _ = _run(capsys, "status", "--conf", env["conf"])  # the last launch's target and ids
    assert code == 0 and out.strip().endswith("SUCCESS")
    code, _, err = _run(capsys, "cancel", "--conf", env["conf"])
    assert code == 2 and "is SUCCESS: only a submitted, pending or running run can be cancelled" in err


def test_serverless_logs_print_the_drivers_probable_cause_and_stdout(env, capsys):
    last = {"target": "serverless", "application_id": "00app", "job_run_id": "00run"}
    (env["tmp"] / "last_launch.json").write_text(json.dumps(last))
    base = "catalog-match-rate/serverless-logs/applications/00app/jobs/00run/SPARK_DRIVER"
    env["s3"].put_object(Bucket=env["bucket"], Key=f"{base}/stderr.gz",
                         Body=(DATA / "serverless_driver_stderr.gz").read_bytes())
    env["s3"].put_object(Bucket=env["bucket"], Key=f"{base}/stdout.gz", Body=gzip.compress(b"counts\n"))
    code, out, _ = _run(capsys, "logs", "--conf", env["conf"])
    assert code == 0 and out.startswith("Probable cause: spark_app.errors.SinkError: COPY into")
    code, out, _ = _run(capsys, "logs", "--conf", env["conf"], "--stdout")
    assert code == 0 and out == "counts\n"


def test_ec2_cancel_and_terminate_dry_runs_name_the_requests(env, capsys):
    code, out, _ = _run(capsys, "cancel", "--conf", env["conf"], "--cluster-id", "j-1", "--step-id", "s-1",
                        "--dry-run")
    assert json.loads(out) == {"cancel_steps": {"ClusterId": "j-1", "StepIds": ["s-1"],
                                                "StepCancellationOption": "SEND_INTERRUPT"}}
    argv = ["terminate", "--conf", env["conf"], "--cluster-id", "j-1", "--force", "--dry-run"]
    code, out, _ = _run(capsys, *argv)
    assert [next(iter(c)) for c in json.loads(out)] == [
        "describe_cluster", "set_termination_protection", "terminate_job_flows"]


def test_terminate_refuses_termination_protection_without_force(env, capsys):
    cluster_id = env["emr"].run_job_flow(
        Name="kept", ReleaseLabel="emr-7.5.0", ServiceRole="r", JobFlowRole="r",
        Instances={"MasterInstanceType": "m5.xlarge", "KeepJobFlowAliveWhenNoSteps": True,
                   "TerminationProtected": True},
    )["JobFlowId"]
    code, _, err = _run(capsys, "terminate", "--conf", env["conf"], "--cluster-id", cluster_id)
    assert code == 2 and "termination protection; pass --force" in err
    code, out, _ = _run(capsys, "terminate", "--conf", env["conf"], "--cluster-id", cluster_id, "--force")
    assert code == 0 and "terminating" in out


def test_launch_of_a_release_not_uploaded_is_refused(env, capsys):
    code, _, err = _run(capsys, "launch", "--conf", env["conf"], "--date", "2026-11-19")
    assert code == 2
    assert "is not the one on s3://" in err and "run `make deploy`" in err


def test_logs_prints_the_probable_cause_of_the_last_launch(env, capsys):
    (env["tmp"] / "last_launch.json").write_text(json.dumps({"cluster_id": "j-LOGS", "step_id": "s-LOGS"}))
    key = "catalog-match-rate/logs/j-LOGS/steps/s-LOGS/stderr.gz"
    env["s3"].put_object(Bucket=env["bucket"], Key=key, Body=(DATA / "step_stderr_memory.gz").read_bytes())
    code, out, _ = _run(capsys, "logs", "--conf", env["conf"])
    assert code == 0
    assert out.splitlines()[0] == (
        "Probable cause: a YARN container exceeded its memory limit (executor heap + overhead) and was killed"
    )
    assert "spark.executor.memoryOverhead" in out
    assert "ShutdownHookManager" not in out and "Client.scala" not in out


def test_aws_refusals_name_the_probable_cause(env, capsys):
    conf = yaml.safe_load(Path(env["conf"]).read_text())
    conf["emr"]["bucket"] = "no-such-bucket-here"
    Path(env["conf"]).write_text(yaml.safe_dump(conf))
    code, _, err = _run(capsys, "upload", "--conf", env["conf"])
    assert code == 1
    assert "NoSuchBucket" in err and "probable cause: the bucket does not exist" in err
    assert "Traceback" not in err


def test_schedule_dry_run_then_deploy(env, capsys):
    code, out, _ = _run(capsys, "schedule", "--conf", env["conf"], "--dry-run")
    plan = json.loads(out)
    assert plan["rule"] == {"Name": "catalog-match-rate-daily", "ScheduleExpression": "cron(0 6 * * ? *)",
                            "State": "ENABLED"}
    assert plan["role_policy"]["Statement"][1]["Action"] == ["iam:PassRole"]
    code, out, _ = _run(capsys, "schedule", "--conf", env["conf"])
    assert code == 0 and json.loads(out)["rule_arn"].endswith(":rule/catalog-match-rate-daily")


def test_no_secret_reaches_any_artifact_request_or_output(env, capsys, monkeypatch, tmp_path):
    secret = f"pw-{uuid.uuid4().hex}"
    monkeypatch.setenv("PGPASSWORD", secret)
    outputs = []
    for argv in (
        ["package", "--out", str(tmp_path / "dist")],
        ["upload", "--conf", env["conf"], "--dry-run"],
        ["launch", "--conf", env["conf"], "--date", "2026-11-19", "--dry-run"],
        ["submit", "--conf", env["conf"], "--cluster-id", "j-X", "--date", "2026-11-19", "--dry-run"],
        ["schedule", "--conf", env["conf"], "--dry-run"],
        ["upload", "--conf", env["conf"]],
    ):
        code, out, err = _run(capsys, *argv)
        assert code == 0, err
        outputs.append(out + err)
    assert not [o for o in outputs if secret in o]
    for path in (tmp_path / "dist").iterdir():
        assert secret.encode() not in path.read_bytes()
    zf = zipfile.ZipFile(io.BytesIO((tmp_path / "dist" / "spark_app.zip").read_bytes()))
    assert not [n for n in zf.namelist() if secret.encode() in zf.read(n)]
    listing = env["s3"].list_objects_v2(Bucket=env["bucket"])["Contents"]
    for obj in listing:
        body = env["s3"].get_object(Bucket=env["bucket"], Key=obj["Key"])["Body"].read()
        assert secret.encode() not in body


@pytest.mark.parametrize("command", ["package", "upload"])
def test_a_config_holding_a_secret_is_never_built_into_a_release(env, capsys, tmp_path, command):
    secret = f"pw-{uuid.uuid4().hex}"
    conf = yaml.safe_load(Path(env["conf"]).read_text())
    conf["postgres"]["url"] += f"&password={secret}"
    leaky = tmp_path / "leaky.yaml"
    leaky.write_text(yaml.safe_dump(conf))
    extra = ["--out", str(tmp_path / "release")] if command == "package" else []

    code, out, err = _run(capsys, command, "--conf", str(leaky), *extra)

    assert code == 2
    assert "postgres.url: query option 'password'" in err
    assert secret not in out + err
    assert not (tmp_path / "release").exists()
    assert "Contents" not in env["s3"].list_objects_v2(Bucket=env["bucket"])


def test_upload_puts_the_fetched_deequ_jar_beside_the_release_and_the_step_ships_it(env, capsys):
    from spark_app.jvm import deequ_jar_name, jar_for

    code, out, _ = _run(capsys, "upload", "--conf", env["conf"])
    report = json.loads(out)
    name = deequ_jar_name()  # the build requirements/pom.xml lists
    assert code == 0 and name in report["uploaded"]
    key = f"catalog-match-rate/{report['version']}/{name}"
    held = env["s3"].get_object(Bucket=env["bucket"], Key=key)["Body"].read()
    assert held == Path(jar_for("deequ-")).read_bytes()  # the same bytes as .jars/ (make jars)
    code, out, _ = _run(capsys, "launch", "--conf", env["conf"], "--date", "2026-11-19", "--dry-run")
    args = json.loads(out)["Steps"][0]["HadoopJarStep"]["Args"]
    assert args[args.index("--jars") + 1] == f"s3://{env['bucket']}/{key}"


def test_a_configured_deequ_jar_is_shipped_instead_and_nothing_is_uploaded_for_it(env, capsys):
    conf = yaml.safe_load(Path(env["conf"]).read_text())
    conf["emr"]["deequ_jar"] = "s3://shared-jars/deequ-2.0.7-spark-3.5.jar"
    Path(env["conf"]).write_text(yaml.safe_dump(conf))
    code, out, _ = _run(capsys, "upload", "--conf", env["conf"])
    assert code == 0 and not [n for n in json.loads(out)["uploaded"] if n.endswith(".jar")]
    code, out, _ = _run(capsys, "launch", "--conf", env["conf"], "--date", "2026-11-19", "--dry-run")
    args = json.loads(out)["Steps"][0]["HadoopJarStep"]["Args"]
    assert args[args.index("--jars") + 1] == "s3://shared-jars/deequ-2.0.7-spark-3.5.jar"


def test_quarantine_expiry_sets_a_lifecycle_rule_on_the_prefix_and_keeps_other_rules(env, capsys, tmp_path):
    conf = yaml.safe_load(Path(env["conf"]).read_text())
    conf["events"]["quarantine_path"] = f"s3://{env['bucket']}/quarantine/catalog-match-rate"
    path = tmp_path / "q.yaml"
    path.write_text(yaml.safe_dump(conf))
    other = {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 90}}
    env["s3"].put_bucket_lifecycle_configuration(
        Bucket=env["bucket"], LifecycleConfiguration={"Rules": [other]}
    )
    code, out, _ = _run(capsys, "quarantine-expiry", "--conf", str(path), "--days", "14", "--dry-run")
    planned = json.loads(out)["rule"]
    assert code == 0 and planned["Filter"] == {"Prefix": "quarantine/catalog-match-rate/"}
    assert planned["Expiration"] == {"Days": 14}
    code, _, _ = _run(capsys, "quarantine-expiry", "--conf", str(path), "--days", "14")
    rules = {r["ID"]: r for r in env["s3"].get_bucket_lifecycle_configuration(Bucket=env["bucket"])["Rules"]}
    assert code == 0 and set(rules) == {"logs", planned["ID"]}
    assert rules[planned["ID"]]["Filter"] == planned["Filter"]
    assert rules[planned["ID"]]["Expiration"] == {"Days": 14}
    code, _, _ = _run(capsys, "quarantine-expiry", "--conf", str(path))  # again: replaced, the default days
    rules = {r["ID"]: r for r in env["s3"].get_bucket_lifecycle_configuration(Bucket=env["bucket"])["Rules"]}
    assert code == 0 and len(rules) == 2 and rules[planned["ID"]]["Expiration"] == {"Days": 30}


def test_quarantine_expiry_of_a_local_quarantine_is_refused(env, capsys, tmp_path):
    conf = yaml.safe_load(Path(env["conf"]).read_text())
    conf["events"]["quarantine_path"] = str(tmp_path / "quarantine")
    path = tmp_path / "local-quarantine.yaml"
    path.write_text(yaml.safe_dump(conf))
    code, _, err = _run(capsys, "quarantine-expiry", "--conf", str(path))
    assert code == 2 and "is not on S3" in err


def test_submit_to_a_running_cluster_lets_it_run_on_when_the_step_fails(env, capsys):
    conf = yaml.safe_load(Path(env["conf"]).read_text())
    conf["emr"]["step_action_on_failure"] = "TERMINATE_CLUSTER"  # even when set: launch's own cluster only
    Path(env["conf"]).write_text(yaml.safe_dump(conf))
    shared = env["emr"].run_job_flow(
        Name="shared", ReleaseLabel="emr-7.5.0", ServiceRole="r", JobFlowRole="r",
        Instances={"MasterInstanceType": "m5.xlarge", "KeepJobFlowAliveWhenNoSteps": True},
    )["JobFlowId"]
    argv = ["submit", "--conf", env["conf"], "--version", "0123456789ab", "--cluster-id", shared,
            "--date", "2026-11-19"]
    _, out, _ = _run(capsys, *argv, "--dry-run")
    planned = json.loads(out)["Steps"][0]
    code, out, err = _run(capsys, *argv)
    assert code == 0, err
    (step,) = env["emr"].list_steps(ClusterId=shared)["Steps"]
    assert step["ActionOnFailure"] == planned["ActionOnFailure"] == "CONTINUE"
    _, out, _ = _run(capsys, "launch", "--conf", env["conf"], "--date", "2026-11-19", "--dry-run")
    assert json.loads(out)["Steps"][0]["ActionOnFailure"] == "TERMINATE_CLUSTER"  # the cluster it starts


def test_an_upload_dry_run_refuses_a_missing_deps_archive_as_the_upload_does(env, capsys):
    # dist/ is a temporary folder here (see env): the archive is removed from it, not from the checkout
    archive = deploy.DIST / deps.archive_name(deps.read_lock(ROOT))
    archive.unlink()
    dry = _run(capsys, "upload", "--conf", env["conf"], "--dry-run")
    real = _run(capsys, "upload", "--conf", env["conf"])
    assert dry == real
    code, out, err = dry
    assert (code, out) == (2, "")
    assert err == f"deploy.py upload: {archive}: the dependency archive is not built; run `make deps` first\n"
