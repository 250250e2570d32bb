"""deploy.py as a user types it (a child process): what it refuses, what it offers, what it prints.

A launch that the job would refuse costs a cluster's start-up before the step fails with exit 2;
deploy.py refuses it first, with process_data.py's own message, before any build or AWS call.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid

import boto3
import pytest
import yaml

from tests.support.paths import ROOT

VERSION = "0123456789ab"  # --version: a release assumed uploaded, so nothing stands before the AWS call


def cli(script: str, *argv: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, str(ROOT / script), *argv]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


@pytest.fixture()
def job_conf(tmp_path):
    """A config process_data.py accepts on this machine (its events folder exists)."""
    (tmp_path / "events").mkdir()
    conf = yaml.safe_load((ROOT / "conf" / "emr.yaml").read_text())
    conf["events"] = {"path": str(tmp_path / "events"), "format": "json"}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(conf))
    return str(path)


@pytest.fixture()
def moto_conf(moto_server, tmp_path):
    """conf/emr.yaml pointed at moto's server, written where the user would keep a copy."""
    conf = yaml.safe_load((ROOT / "conf" / "emr.yaml").read_text())
    conf["emr"].update({"bucket": f"art-{uuid.uuid4().hex[:8]}", "endpoint_url": moto_server.endpoint_url})
    path = tmp_path / "emr.yaml"
    path.write_text(yaml.safe_dump(conf))
    return str(path)


BAD_RUNS = {  # argv -> the message both commands end with
    "no such day": (["--date", "2026-02-30"], "no such day: 2026-02-30 (February has 28 days in 2026)"),
    "not a date": (["--date", "19-11-2026"], "not a date (YYYY-MM-DD): '19-11-2026'"),
    "reversed range": (["--from", "2026-11-19", "--to", "2026-11-18"],
                       "--to 2026-11-18 is before --from 2026-11-19"),
    "range too long": (["--from", "2023-12-01", "--to", "2026-10-19"],
                       "a backfill of 1054 days is over the limit of 366"),
    "unknown pipeline": (["--date", "2026-11-19", "--pipeline", "nope"],
                         "unknown pipeline 'nope' (known: catalog_match_rate)"),
}


@pytest.mark.parametrize("case", BAD_RUNS)
def test_every_command_that_starts_a_job_refuses_what_the_job_refuses_with_its_words(job_conf, case):
    argv, message = BAD_RUNS[case]
    argv = ["--pipeline", "catalog_match_rate", *argv] if "--pipeline" not in argv else argv
    job = cli("process_data.py", "--conf", job_conf, *argv)
    assert job.returncode == 2 and message in last_line(job.stderr)
    for command in (["launch"], ["launch", "--target", "serverless"], ["submit", "--cluster-id", "j-1"]):
        res = cli("deploy.py", *command, "--dry-run", *argv)
        assert (res.returncode, res.stdout) == (2, ""), (command, res.stderr)  # no request printed
        assert message in last_line(res.stderr), command


def test_a_refused_launch_or_submit_sends_nothing_to_emr(moto_server, moto_conf):
    emr = boto3.client("emr", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    shared = emr.run_job_flow(
        Name="shared", ReleaseLabel="emr-7.5.0", ServiceRole="r", JobFlowRole="r",
        Instances={"MasterInstanceType": "m5.xlarge", "KeepJobFlowAliveWhenNoSteps": True},
    )["JobFlowId"]
    before = {c["Id"] for c in emr.list_clusters()["Clusters"]}
    given = ["--conf", moto_conf, "--version", VERSION]
    launch = cli("deploy.py", "launch", *given, "--date", "2026-02-30")
    submit = cli("deploy.py", "submit", *given, "--cluster-id", shared, "--from", "2026-11-19",
                 "--to", "2026-11-18")
    assert launch.returncode == 2 and "no such day: 2026-02-30" in launch.stderr
    assert submit.returncode == 2 and "is before --from" in submit.stderr
    assert {c["Id"] for c in emr.list_clusters()["Clusters"]} == before
    assert emr.list_steps(ClusterId=shared)["Steps"] == []


def test_a_configured_pipeline_that_does_not_exist_is_refused_before_it_is_scheduled_or_launched(tmp_path):
    conf = yaml.safe_load((ROOT / "conf" / "emr.yaml").read_text())
    conf["emr"]["schedule"] = {"pipeline": "nope"}
    path = tmp_path / "emr.yaml"
    path.write_text(yaml.safe_dump(conf))
    for argv in (["schedule"], ["launch", "--date", "2026-11-19"], ["upload"]):  # upload: the run template
        res = cli("deploy.py", *argv, "--conf", str(path), "--dry-run")
        assert (res.returncode, res.stdout) == (2, ""), argv
        assert last_line(res.stderr).endswith("unknown pipeline 'nope' (known: catalog_match_rate)"), argv


def test_sizing_refuses_zero_nodes_and_asks_for_everything_an_unknown_type_needs():
    res = cli("deploy.py", "sizing", "--instance-type", "r5.4xlarge", "--nodes", "0")
    assert res.returncode == 2 and last_line(res.stderr).endswith("argument --nodes: at least 1, got 0")
    res = cli("deploy.py", "sizing", "--instance-type", "r9.huge", "--nodes", "2")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "{vcpu: ..., memory_gib: ..., yarn_memory_mb: ...}" in res.stderr


def test_sizing_prints_the_spark_defaults_a_launch_sends_and_that_they_fit(tmp_path):
    conf = yaml.safe_load((ROOT / "conf" / "emr.yaml").read_text())
    for fleet_only in ("fleets", "managed_scaling"):  # a cluster of instance groups
        conf["emr"].pop(fleet_only)
    conf["emr"]["master"] = {"instance_type": "m5.xlarge"}
    conf["emr"]["core"] = {"instance_type": "r5.12xlarge", "count": 19}
    conf["emr"]["spark_conf"] = {"spark.executor.memory": "35g"}  # on top of the sizing, as launch sends it
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(conf))
    sized = cli("deploy.py", "sizing", "--conf", str(path))
    launch = cli("deploy.py", "launch", "--conf", str(path), "--date", "2026-11-19", "--dry-run")
    got = json.loads(sized.stdout)
    sent = next(c["Properties"] for c in json.loads(launch.stdout)["Configurations"]
                if c["Classification"] == "spark-defaults")
    assert got["ec2"]["spark-defaults"] == sent and sent["spark.executor.memory"] == "35g"
    assert got["ec2"]["fits"] == ("fits YARN: the busiest node holds 9 containers of 40960 MB (the driver's "
                                  "41984 MB among them), 369664 MB of the 385024 MB YARN offers")
    assert "executor_memory_gb" not in got and "does not fit" not in sized.stdout
    assert got["rule"]["executor_memory_gb"] == 37  # the post's arithmetic, kept apart and said to be so


def test_each_command_offers_only_its_own_options():
    terminate = cli("deploy.py", "terminate", "--help").stdout
    assert "--cluster-id" in terminate and "--force" in terminate
    for unused in ("--step-id", "--application-id", "--job-run-id", "--pipeline"):
        assert unused not in terminate
    status = cli("deploy.py", "status", "--help").stdout.split()
    assert {"--step-id", "--application-id", "--job-run-id"} <= set(status)
    res = cli("deploy.py", "terminate", "--cluster-id", "j-1", "--step-id", "s-1", "--dry-run")
    assert res.returncode == 2 and "unrecognized arguments: --step-id s-1" in res.stderr
    launch = cli("deploy.py", "launch", "--help").stdout
    assert "catalog_match_rate" in launch  # --pipeline names the pipelines


def test_the_docs_zip_figure_is_what_deploy_py_package_builds():
    doc = (ROOT / "docs" / "emr.md").read_text()
    kb, entries = (int(n) for n in re.search(r"zip (\d+) kB, (\d+) entries", doc).groups())
    res = cli("deploy.py", "package", "--dry-run")
    built = json.loads(res.stdout)
    size = built["files"]["spark_app.zip"]["size"]
    assert entries == len(built["zip_entries"])
    assert abs(kb * 1000 - size) <= 0.05 * size, f"docs/emr.md says {kb} kB; the zip is {size} bytes"
