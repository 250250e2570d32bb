"""deploy.py end to end against moto's server: dry runs print what is then really sent."""

from __future__ import annotations

import importlib.util
import io
import json
import uuid
import zipfile
from pathlib import Path

import boto3
import pytest
import yaml

from tests.support.paths import DATA, ROOT


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
    conf["emr"].update({"bucket": bucket, "endpoint_url": moto_server.endpoint_url})
    path = tmp_path / "emr.yaml"
    path.write_text(yaml.safe_dump(conf))
    monkeypatch.setattr(deploy, "LAST_LAUNCH", tmp_path / "last_launch.json")
    emr = boto3.client("emr", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    return {"conf": str(path), "bucket": bucket, "s3": s3, "emr": emr, "tmp": tmp_path}


def _run(capsys, *argv):
    code = deploy.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_sizing_command_reproduces_the_worked_example(capsys):
    code, out, _ = _run(capsys, "sizing", "--instance-type", "r5.12xlarge", "--nodes", "19")
    got = json.loads(out)
    assert code == 0
    assert {k: got[k] for k in ("executors_per_node", "total_executor_memory_gb", "executor_memory_gb",
                                "memory_overhead_gb", "executor_instances", "parallelism",
                                "driver_memory_gb", "driver_cores")} == {
        "executors_per_node": 9, "total_executor_memory_gb": 42, "executor_memory_gb": 37,
        "memory_overhead_gb": 5, "executor_instances": 170, "parallelism": 1700,
        "driver_memory_gb": 37, "driver_cores": 5,
    }
    assert got["spark-defaults"]["spark.executor.memory"] == "37g"


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
