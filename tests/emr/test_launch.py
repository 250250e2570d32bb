"""The run_job_flow request, field by field, and what EMR (moto's server) holds after a launch."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest

from spark_app.config import config_from_mapping
from spark_app.emr import deps
from spark_app.emr.launch import (
    GLUE_FACTORY,
    PROJECT_ROOT,
    cancel_step,
    emr_client,
    job_arguments,
    launch,
    run_job_flow_request,
    spark_submit_step,
    submit,
    submit_step,
    terminate,
)
from spark_app.emr.sizing import load_instance_types
from spark_app.errors import ConfigError
from spark_app.jvm import deequ_jar_name

VERSION = "0123456789ab"
TABLE = load_instance_types()
DEPS = f"s3://art-bkt/cmr/deps/{deps.archive_name(deps.read_lock(PROJECT_ROOT))}"
ARCHIVE_ARGS = [
    "--conf", f"spark.archives={DEPS}#deps",
    "--conf", "spark.emr-serverless.driverEnv.PYTHONPATH=./deps",
    "--conf", "spark.executorEnv.PYTHONPATH=./deps",
    "--conf", "spark.yarn.appMasterEnv.PYTHONPATH=./deps",
]


def _cfg(endpoint_url=None, **emr):
    section = {
        "bucket": "art-bkt",
        "prefix": "cmr",
        "region": "us-east-1",
        "endpoint_url": endpoint_url,
        "release_label": "emr-7.5.0",
        "master": {"instance_type": "m5.xlarge"},
        "core": {"instance_type": "r5.12xlarge", "count": 19, "market": "SPOT"},
        "tags": {"team": "ads"},
        "spark_conf": {"spark.executor.memory": "35g", "spark.executor.memoryOverhead": "6g",
                       "spark.serializer": "kryo"},
        "subnet_id": "subnet-123",
        **emr,
    }
    return config_from_mapping(
        {
            "events": {"path": "s3://ev/events"},
            "dynamodb": {"table": "catalog", "region": "us-east-1"},
            "postgres": {"url": "postgresql://etl@db:5432/catalog", "password_secret": "prod/pg"},
            "emr": section,
        }
    )


def _request(cfg=None, date="2026-11-19"):
    cfg = cfg or _cfg()
    args = job_arguments("catalog_match_rate", "emr.yaml", date=date)
    return run_job_flow_request(cfg, VERSION, args, "emr.yaml", TABLE, label=date)


def _conf(request, classification):
    return next(c for c in request["Configurations"] if c["Classification"] == classification)


def test_cluster_shape_roles_and_lifecycle():
    r = _request()
    assert r["Name"] == "cmr 2026-11-19"
    assert r["ReleaseLabel"] == "emr-7.5.0"
    assert r["Applications"] == [{"Name": "Hadoop"}, {"Name": "Spark"}]
    assert r["LogUri"] == "s3://art-bkt/cmr/logs/"
    assert r["ServiceRole"] == "EMR_DefaultRole" and r["JobFlowRole"] == "EMR_EC2_DefaultRole"
    assert r["VisibleToAllUsers"] is True
    assert r["AutoTerminationPolicy"] == {"IdleTimeout": 3600}
    assert r["Instances"] == {
        "InstanceGroups": [
            {"Name": "master", "InstanceRole": "MASTER", "Market": "ON_DEMAND",
             "InstanceType": "m5.xlarge", "InstanceCount": 1},
            {"Name": "core", "InstanceRole": "CORE", "Market": "SPOT",
             "InstanceType": "r5.12xlarge", "InstanceCount": 19},
        ],
        "KeepJobFlowAliveWhenNoSteps": False,
        "TerminationProtected": False,
        "Ec2SubnetId": "subnet-123",
    }
    assert r["Tags"] == [{"Key": "artifact-version", "Value": VERSION}, {"Key": "team", "Value": "ads"}]


def test_bootstrap_only_checks_the_configured_python_and_installs_nothing():
    assert _request()["BootstrapActions"] == [
        {
            "Name": "check python for the deps archive",
            "ScriptBootstrapAction": {
                "Path": f"s3://art-bkt/cmr/{VERSION}/setup.sh", "Args": ["/usr/bin/python3", "x86_64"],
            },
        }
    ]


def test_spark_defaults_come_from_sizing_with_spark_conf_on_top():
    props = _conf(_request(), "spark-defaults")["Properties"]
    assert props["spark.executor.instances"] == "170"
    assert props["spark.executor.cores"] == "5"
    assert props["spark.default.parallelism"] == "1700"
    assert props["spark.driver.memory"] == "36g"  # fitted to YARN: 41 GiB containers
    assert props["spark.executor.memory"] == "35g"  # emr.spark_conf wins over sizing's 36g ...
    assert props["spark.executor.memoryOverhead"] == "6g"  # ... and 5g, still 41 GiB a container
    assert props["spark.serializer"] == "kryo"
    assert props["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] == "/usr/bin/python3"


def test_python_env_yarn_checks_and_optional_glue_catalog():
    r = _request(_cfg(python="/usr/local/bin/python3.9"))
    assert _conf(r, "spark-env") == {
        "Classification": "spark-env",
        "Properties": {},
        "Configurations": [
            {
                "Classification": "export",
                "Properties": {
                    "PYSPARK_PYTHON": "/usr/local/bin/python3.9",
                    "PYSPARK_DRIVER_PYTHON": "/usr/local/bin/python3.9",
                },
            }
        ],
    }
    assert _conf(r, "yarn-site")["Properties"] == {
        "yarn.nodemanager.vmem-check-enabled": "false",
        "yarn.nodemanager.pmem-check-enabled": "false",
    }
    assert "spark-hive-site" not in [c["Classification"] for c in r["Configurations"]]
    glue = _request(_cfg(glue_catalog=True))
    hive = _conf(glue, "spark-hive-site")["Properties"]
    assert hive == {"hive.metastore.client.factory.class": GLUE_FACTORY}


def test_step_runs_process_data_in_cluster_mode_from_the_versions_artifacts():
    (step,) = _request()["Steps"]
    assert step["Name"] == "cmr 2026-11-19"
    assert step["ActionOnFailure"] == "TERMINATE_CLUSTER"
    assert step["HadoopJarStep"] == {
        "Jar": "command-runner.jar",
        "Args": [
            "spark-submit", "--deploy-mode", "cluster", "--master", "yarn",
            "--py-files", f"s3://art-bkt/cmr/{VERSION}/spark_app.zip",
            "--files", f"s3://art-bkt/cmr/{VERSION}/emr.yaml",
            *ARCHIVE_ARGS,
            "--jars", f"s3://art-bkt/cmr/{VERSION}/{deequ_jar_name()}",  # uploaded beside the release
            f"s3://art-bkt/cmr/{VERSION}/process_data.py",
            "--pipeline", "catalog_match_rate", "--date", "2026-11-19", "--conf", "emr.yaml",
        ],
    }


def test_deequ_jar_is_shipped_with_jars_when_configured():
    cfg = _cfg(deequ_jar="s3://jars/deequ-2.0.7-spark-3.5.jar")
    step = spark_submit_step(cfg, VERSION, ["--x"], "emr.yaml", "n")
    args = step["HadoopJarStep"]["Args"]
    assert args[args.index("--jars") + 1] == "s3://jars/deequ-2.0.7-spark-3.5.jar"
    assert args.index("--jars") < args.index(f"s3://art-bkt/cmr/{VERSION}/process_data.py")


def test_job_arguments_take_one_day_or_a_range():
    assert job_arguments("p", "c.yaml", date_from="2026-11-01", date_to="2026-11-03") == [
        "--pipeline", "p", "--from", "2026-11-01", "--to", "2026-11-03", "--conf", "c.yaml",
    ]
    for bad in ({}, {"date": "2026-11-01", "date_from": "2026-11-01"}, {"date_from": "2026-11-01"}):
        with pytest.raises(ConfigError, match="--date"):
            job_arguments("p", "c.yaml", **bad)


def test_no_secret_from_the_environment_reaches_the_request(monkeypatch):
    secret = f"pw-{uuid.uuid4().hex}"
    monkeypatch.setenv("PGPASSWORD", secret)
    assert secret not in json.dumps(_request())


def test_launch_on_moto_holds_every_field(moto_server):
    cfg = _cfg(endpoint_url=moto_server.endpoint_url)
    client = emr_client(cfg.emr)
    request = _request(cfg)
    launched = launch(client, request)
    cluster = client.describe_cluster(ClusterId=launched.cluster_id)["Cluster"]
    assert cluster["Name"] == "cmr 2026-11-19"
    assert cluster["ReleaseLabel"] == "emr-7.5.0"
    assert cluster["LogUri"] == "s3://art-bkt/cmr/logs/"
    assert cluster["ServiceRole"] == "EMR_DefaultRole"
    assert cluster["Ec2InstanceAttributes"]["IamInstanceProfile"] == "EMR_EC2_DefaultRole"
    assert cluster["VisibleToAllUsers"] is True
    assert cluster["AutoTerminate"] is True
    assert {a["Name"] for a in cluster["Applications"]} == {"Hadoop", "Spark"}
    assert {t["Key"]: t["Value"] for t in cluster["Tags"]} == {"artifact-version": VERSION, "team": "ads"}
    held = {c["Classification"]: c.get("Properties") for c in cluster["Configurations"]}
    assert held["spark-defaults"]["spark.executor.instances"] == "170"
    groups = client.list_instance_groups(ClusterId=launched.cluster_id)["InstanceGroups"]
    shapes = [(g["InstanceGroupType"], g["InstanceType"], g["RequestedInstanceCount"]) for g in groups]
    assert sorted(shapes) == [
        ("CORE", "r5.12xlarge", 19),
        ("MASTER", "m5.xlarge", 1),
    ]
    (action,) = client.list_bootstrap_actions(ClusterId=launched.cluster_id)["BootstrapActions"]
    assert action["ScriptPath"] == f"s3://art-bkt/cmr/{VERSION}/setup.sh"
    assert action["Args"] == ["/usr/bin/python3", "x86_64"]
    (step,) = client.list_steps(ClusterId=launched.cluster_id)["Steps"]
    assert launched.step_ids == [step["Id"]]
    assert step["Config"]["Args"] == request["Steps"][0]["HadoopJarStep"]["Args"]
    assert step["ActionOnFailure"] == "TERMINATE_CLUSTER"


def test_submit_adds_the_same_step_to_a_running_cluster(moto_server):
    cfg = _cfg(endpoint_url=moto_server.endpoint_url)
    client = emr_client(cfg.emr)
    raw = boto3.client("emr", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    cluster_id = raw.run_job_flow(
        Name="shared", ReleaseLabel="emr-7.5.0", ServiceRole="r", JobFlowRole="r",
        Instances={"MasterInstanceType": "m5.xlarge", "KeepJobFlowAliveWhenNoSteps": True},
    )["JobFlowId"]
    step = spark_submit_step(cfg, VERSION, job_arguments("p", "emr.yaml", date="2026-11-18"), "emr.yaml", "n")
    step_id = submit(client, cluster_id, step)
    described = client.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
    assert described["Config"]["Args"][-4:] == ["--date", "2026-11-18", "--conf", "emr.yaml"]
    assert described["Config"]["Jar"] == "command-runner.jar"


@pytest.mark.parametrize("configured", ["TERMINATE_CLUSTER", "CANCEL_AND_WAIT", "CONTINUE"])
def test_a_step_submitted_to_a_running_cluster_never_stops_it_or_others_steps(moto_server, configured):
    cfg = _cfg(endpoint_url=moto_server.endpoint_url, step_action_on_failure=configured)
    client = emr_client(cfg.emr)
    cluster_id = _running_cluster(client)  # perhaps shared: not started by this job
    step = submit_step(cfg, VERSION, job_arguments("p", "emr.yaml", date="2026-11-18"), "emr.yaml", "n")
    submit(client, cluster_id, step)
    (held,) = client.list_steps(ClusterId=cluster_id)["Steps"]
    assert held["ActionOnFailure"] == "CONTINUE"
    assert _request(cfg)["Steps"][0]["ActionOnFailure"] == configured  # the launch's own cluster


def test_spark_conf_that_would_not_fit_yarn_is_refused_before_anything_is_sent():
    cfg = _cfg(spark_conf={"spark.executor.memory": "40g"})  # 40g + 5g x 9 > 376 GiB
    with pytest.raises(ConfigError, match="executors do not fit YARN"):
        _request(cfg)


def test_the_configs_own_dry_run_asks_only_for_containers_that_fit():
    from spark_app.config import load_config

    cfg = load_config(PROJECT_ROOT / "conf" / "emr.yaml")  # 2 x r5.4xlarge: YARN offers 120 GiB each
    request = run_job_flow_request(cfg, VERSION, ["--x"], "emr.yaml", TABLE, label="d")
    props = _conf(request, "spark-defaults")["Properties"]
    assert (props["spark.executor.memory"], props["spark.executor.memoryOverhead"]) == ("36g", "4g")
    assert (props["spark.driver.memory"], props["spark.driver.memoryOverhead"]) == ("36g", "4g")
    assert props["spark.executor.instances"] == "5"  # 6 slots of 40 GiB, 3 a node, one the driver's


def _running_cluster(raw, protected=False):
    return raw.run_job_flow(
        Name="shared", ReleaseLabel="emr-7.5.0", ServiceRole="r", JobFlowRole="r",
        Instances={"MasterInstanceType": "m5.xlarge", "KeepJobFlowAliveWhenNoSteps": True,
                   "TerminationProtected": protected},
    )["JobFlowId"]


def test_terminate_refuses_a_protected_cluster_unless_forced(moto_server):
    client = emr_client(_cfg(endpoint_url=moto_server.endpoint_url).emr)
    protected = _running_cluster(client, protected=True)
    with pytest.raises(ConfigError, match="termination protection; pass --force"):
        terminate(client, protected)
    assert client.describe_cluster(ClusterId=protected)["Cluster"]["Status"]["State"] == "WAITING"
    assert terminate(client, protected, force=True).startswith(f"cluster {protected} terminating")
    state = client.describe_cluster(ClusterId=protected)["Cluster"]["Status"]["State"]
    assert state in ("TERMINATING", "TERMINATED")
    plain = _running_cluster(client)
    terminate(client, plain)
    state = client.describe_cluster(ClusterId=plain)["Cluster"]["Status"]["State"]
    assert state in ("TERMINATING", "TERMINATED")


class _CancelStepsStandIn:
    """moto has no CancelSteps (NotImplemented): this stand-in forwards every call to the moto client
    and answers CancelSteps the way EMR does, recording the request; it stands for EMR's answer only."""

    def __init__(self, client):
        self.client, self.cancelled = client, []

    def __getattr__(self, name):
        return getattr(self.client, name)

    def cancel_steps(self, **request):
        self.cancelled.append(request)
        info = {"StepId": request["StepIds"][0], "Status": "SUBMITTED", "Reason": ""}
        return {"CancelStepsInfoList": [info]}


def test_cancel_sends_cancel_steps_for_a_pending_step_and_refuses_a_finished_one(moto_server):
    client = emr_client(_cfg(endpoint_url=moto_server.endpoint_url).emr)
    cluster_id = _running_cluster(client)
    step = spark_submit_step(_cfg(), VERSION, ["--x"], "emr.yaml", "n")
    step_id = submit(client, cluster_id, step)
    stand_in = _CancelStepsStandIn(client)
    state = client.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["Status"]["State"]
    assert state in ("PENDING", "RUNNING")  # moto's steps stay where they start
    assert cancel_step(stand_in, cluster_id, step_id) == f"step {step_id}: SUBMITTED"
    assert stand_in.cancelled == [{"ClusterId": cluster_id, "StepIds": [step_id],
                                   "StepCancellationOption": "SEND_INTERRUPT"}]
    # moto's steps never finish over HTTP: a finished step is answered by this stand-in
    finished = {"Step": {"Status": {"State": "COMPLETED"}}}
    done = type("Done", (), {"describe_step": lambda self, **kw: finished})()
    with pytest.raises(ConfigError, match="is COMPLETED: only a PENDING or RUNNING step"):
        cancel_step(done, cluster_id, step_id)
