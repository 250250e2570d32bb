"""EMR requests built from the config, and the calls that launch, submit and follow them.

Request building is pure (config + artifact version in, boto3 request dict out), so the dry
run prints exactly what would be sent and tests can check every field. The cluster is
transient: it runs the spark-submit step and terminates when the steps end, with an idle
timeout as a second guard. Nothing secret enters a request: the job reads its database
password on the cluster (Secrets Manager or the environment), never from a step argument.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

from spark_app.config import Config, EmrConfig
from spark_app.emr import deps, fleets
from spark_app.emr.packaging import ENTRY_POINT, ZIP_NAME, version_prefix
from spark_app.emr.polling import poll
from spark_app.errors import ConfigError
from spark_app.jvm import deequ_jar_name

GLUE_FACTORY = "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"
BOOTSTRAP_SCRIPT = "setup.sh"
SPARK_MAJOR_MINOR = "3.5"  # EMR 7.x; pydeequ picks its Deequ build from SPARK_VERSION
STEP_DONE = {"COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED"}
STEP_CANCELLABLE = {"PENDING", "RUNNING"}
CANCEL = "SEND_INTERRUPT"  # CancelSteps: interrupt a running step's process, not only a pending one
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CLUSTER_DONE = {"TERMINATED", "TERMINATED_WITH_ERRORS"}
# A step added to a running cluster (submit) never stops it or cancels others' steps when it fails:
# emr.step_action_on_failure is for the cluster a launch starts for its own step.
SUBMITTED_STEP_ACTION = "CONTINUE"


def emr_section(cfg: Config) -> EmrConfig:
    if cfg.emr is None:
        raise ConfigError(f"{cfg.source_file}: emr: required to package, upload or launch on EMR")
    return cfg.emr


def artifact_uri(emr: EmrConfig, version: str, name: str) -> str:
    return f"s3://{emr.bucket}/{version_prefix(emr.prefix, version)}/{name}"


def deps_uri(emr: EmrConfig, name: Optional[str] = None, arch: str = deps.X86_64) -> str:
    """Where the dependency archive lives: one per lock and architecture, shared by every release."""
    name = name or deps.archive_name(deps.read_lock(PROJECT_ROOT, arch), arch)
    return f"s3://{emr.bucket}/{emr.prefix.strip('/')}/deps/{name}"


def cluster_arch(emr: EmrConfig) -> str:
    """x86_64 or aarch64: the one architecture of every instance type the cluster may get."""
    types = fleets.all_types(emr.fleets) if emr.fleets else [emr.master.instance_type, emr.core.instance_type]
    return fleets.cluster_architecture(types)


def archive_conf(emr: EmrConfig, deps_name: Optional[str] = None) -> List[str]:
    """spark-submit `--conf` pairs: the cluster architecture's archive unpacked as ./deps, on PYTHONPATH."""
    pairs = deps.spark_conf(deps_uri(emr, deps_name, cluster_arch(emr)))
    return [arg for key in sorted(pairs) for arg in ("--conf", f"{key}={pairs[key]}")]


def log_uri(emr: EmrConfig) -> str:
    return emr.log_uri or f"s3://{emr.bucket}/{emr.prefix.strip('/')}/logs/"


def job_arguments(
    pipeline: str,
    conf_name: str,
    date: Optional[str] = None,
    date_from: Optional[str] = None,
    date_to: Optional[str] = None,
) -> List[str]:
    """process_data.py's arguments: one day, or an inclusive range."""
    if bool(date) == bool(date_from or date_to) or bool(date_from) != bool(date_to):
        raise ConfigError("give either --date D or both --from D1 and --to D2")
    days = ["--date", date] if date else ["--from", date_from, "--to", date_to]
    return ["--pipeline", pipeline, *days, "--conf", conf_name]


def deequ_jar(cfg: Config, version: Optional[str] = None) -> Optional[str]:
    """The Deequ jar the step ships with --jars.

    emr.deequ_jar, else quality.deequ_jar when it is on S3, else the jar `deploy.py upload` puts
    beside release `version` (the build requirements/pom.xml lists); None without a version.
    """
    emr = emr_section(cfg)
    if emr.deequ_jar:
        return emr.deequ_jar
    jar = cfg.quality.deequ_jar
    if jar and jar.startswith("s3://"):
        return jar
    return artifact_uri(emr, version, deequ_jar_name()) if version else None


def ships_release_deequ_jar(cfg: Config) -> bool:
    """True when no jar is configured, so the release carries its own (uploaded from .jars/)."""
    return deequ_jar(cfg) is None


def spark_defaults(cfg: Config, instance_types: Mapping[str, Mapping[str, float]]) -> Dict[str, str]:
    """Sizing fitted to YARN (groups or fleets), the containers' Python env, emr.spark_conf on top;
    refused unless it fits."""
    emr = emr_section(cfg)
    props, check = fleets.sized_defaults(emr, instance_types)
    props.update(
        {
            "spark.yarn.appMasterEnv.PYSPARK_PYTHON": emr.python,
            "spark.yarn.appMasterEnv.SPARK_VERSION": SPARK_MAJOR_MINOR,
            "spark.executorEnv.PYSPARK_PYTHON": emr.python,
            "spark.executorEnv.SPARK_VERSION": SPARK_MAJOR_MINOR,
        }
    )
    props.update(emr.spark_conf)
    check(props)
    return props


def configurations(cfg: Config, instance_types: Mapping[str, Mapping[str, float]]) -> List[Dict[str, Any]]:
    emr = emr_section(cfg)
    python = {"PYSPARK_PYTHON": emr.python, "PYSPARK_DRIVER_PYTHON": emr.python}
    confs: List[Dict[str, Any]] = [
        {"Classification": "spark", "Properties": {"maximizeResourceAllocation": "false"}},
        {"Classification": "spark-defaults", "Properties": spark_defaults(cfg, instance_types)},
        {
            "Classification": "spark-env",
            "Properties": {},
            "Configurations": [{"Classification": "export", "Properties": python}],
        },
        {
            "Classification": "yarn-site",
            "Properties": {
                "yarn.nodemanager.vmem-check-enabled": "false",
                "yarn.nodemanager.pmem-check-enabled": "false",
            },
        },
    ]
    if emr.glue_catalog:
        hive = {"hive.metastore.client.factory.class": GLUE_FACTORY}
        confs.append({"Classification": "spark-hive-site", "Properties": hive})
    return confs


def spark_submit_step(
    cfg: Config, version: str, job_args: List[str], conf_name: str, name: str,
    deps_name: Optional[str] = None, action_on_failure: Optional[str] = None,
) -> Dict[str, Any]:
    """A command-runner.jar step: process_data.py in cluster mode, the zip, the config, the deps archive.

    `action_on_failure`: default emr.step_action_on_failure (the launch's own cluster); `submit_step`
    passes SUBMITTED_STEP_ACTION.
    """
    emr = emr_section(cfg)
    args = [
        "spark-submit",
        "--deploy-mode",
        "cluster",
        "--master",
        "yarn",
        "--py-files",
        artifact_uri(emr, version, ZIP_NAME),
        "--files",
        artifact_uri(emr, version, conf_name),
        *archive_conf(emr, deps_name),
    ]
    jar = deequ_jar(cfg, version)
    if jar:
        args += ["--jars", jar]
    args += [artifact_uri(emr, version, ENTRY_POINT), *job_args]
    return {
        "Name": name,
        "ActionOnFailure": action_on_failure or emr.step_action_on_failure,
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": args},
    }


def submit_step(cfg: Config, version: str, job_args: List[str], conf_name: str, name: str) -> Dict[str, Any]:
    """The step `submit` adds to a running, possibly shared, cluster: on failure the cluster goes on."""
    return spark_submit_step(cfg, version, job_args, conf_name, name, action_on_failure=SUBMITTED_STEP_ACTION)


def bootstrap_actions(emr: EmrConfig, version: str) -> List[Dict[str, Any]]:
    """Only a check that the node's Python can load the archive: nothing is installed, PyPI never reached."""
    return [
        {
            "Name": "check python for the deps archive",
            "ScriptBootstrapAction": {
                "Path": artifact_uri(emr, version, BOOTSTRAP_SCRIPT),
                "Args": [emr.python, cluster_arch(emr)],
            },
        }
    ]


def instances(emr: EmrConfig, instance_types: Optional[Mapping[str, Mapping[str, float]]] = None,
              ) -> Dict[str, Any]:
    if emr.fleets is not None:  # fleets (several types, Spot task capacity, several subnets)
        from spark_app.emr.sizing import load_instance_types

        table = instance_types if instance_types is not None else \
            load_instance_types(overrides=emr.instance_types)
        spec = {"InstanceFleets": fleets.instance_fleets(emr.fleets, table),
                "KeepJobFlowAliveWhenNoSteps": False, "TerminationProtected": False}
        spec.update({"Ec2SubnetIds": list(emr.fleets.subnet_ids)} if emr.fleets.subnet_ids else {})
        spec.update({"Ec2KeyName": emr.ec2_key_name} if emr.ec2_key_name else {})
        return spec
    groups = []
    for role, group in (("MASTER", emr.master), ("CORE", emr.core)):
        groups.append(
            {
                "Name": role.lower(),
                "InstanceRole": role,
                "Market": group.market,
                "InstanceType": group.instance_type,
                "InstanceCount": group.count,
            }
        )
    spec: Dict[str, Any] = {
        "InstanceGroups": groups,
        "KeepJobFlowAliveWhenNoSteps": False,
        "TerminationProtected": False,
    }
    if emr.subnet_id:
        spec["Ec2SubnetId"] = emr.subnet_id
    if emr.ec2_key_name:
        spec["Ec2KeyName"] = emr.ec2_key_name
    return spec


def run_job_flow_request(
    cfg: Config,
    version: str,
    job_args: List[str],
    conf_name: str,
    instance_types: Mapping[str, Mapping[str, float]],
    label: str,
    deps_name: Optional[str] = None,
) -> Dict[str, Any]:
    """The complete `run_job_flow` request for a transient cluster running one step."""
    emr = emr_section(cfg)
    name = f"{emr.prefix} {label}"
    tags = {**emr.tags, "artifact-version": version}
    scaling = {"ManagedScalingPolicy": fleets.managed_scaling_policy(emr.managed_scaling)} \
        if emr.managed_scaling else {}
    return {
        "Name": name,
        "LogUri": log_uri(emr),
        "ReleaseLabel": emr.release_label,
        "Applications": [{"Name": "Hadoop"}, {"Name": "Spark"}],
        "Instances": instances(emr, instance_types),
        **scaling,
        "BootstrapActions": bootstrap_actions(emr, version),
        "Configurations": configurations(cfg, instance_types),
        "Steps": [spark_submit_step(cfg, version, job_args, conf_name, name, deps_name)],
        "AutoTerminationPolicy": {"IdleTimeout": emr.idle_timeout_seconds},
        "VisibleToAllUsers": True,
        "ServiceRole": emr.service_role,
        "JobFlowRole": emr.job_flow_role,
        "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
    }


# --------------------------------------------------------------------------- calls


def emr_client(emr: EmrConfig) -> Any:
    import boto3

    return boto3.client("emr", region_name=emr.region, endpoint_url=emr.endpoint_url)


def s3_client(emr: EmrConfig) -> Any:
    """The deploy side's S3 client (uploads, logs, manifests, lifecycle rules): emr's region and endpoint."""
    import boto3

    return boto3.client("s3", region_name=emr.region, endpoint_url=emr.endpoint_url)


@dataclass(frozen=True)
class Launched:
    cluster_id: str
    step_ids: List[str]


def launch(client: Any, request: Dict[str, Any]) -> Launched:
    """Start the transient cluster; returns its id and its steps' ids (in request order)."""
    cluster_id = client.run_job_flow(**request)["JobFlowId"]
    steps = client.list_steps(ClusterId=cluster_id)["Steps"]
    return Launched(cluster_id, [s["Id"] for s in reversed(steps)])  # list_steps is newest first


def submit(client: Any, cluster_id: str, step: Dict[str, Any]) -> str:
    """Add the step to a running cluster; returns the step id."""
    return client.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step])["StepIds"][0]


@dataclass(frozen=True)
class Status:
    cluster_id: str
    cluster_state: str
    step_id: Optional[str] = None
    step_state: Optional[str] = None
    reason: str = ""  # EMR's own words: state change reason or step failure details
    log_file: Optional[str] = None

    @property
    def done(self) -> bool:
        return self.cluster_state in CLUSTER_DONE or (self.step_state in STEP_DONE)

    @property
    def ok(self) -> bool:
        if self.step_id:
            return self.step_state == "COMPLETED"
        return self.cluster_state == "TERMINATED"

    def line(self) -> str:
        step = f" step {self.step_id} {self.step_state}" if self.step_id else ""
        why = f": {self.reason}" if self.reason else ""
        return f"cluster {self.cluster_id} {self.cluster_state}{step}{why}"


def status(client: Any, cluster_id: str, step_id: Optional[str] = None) -> Status:
    cluster = client.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]
    reason = (cluster.get("StateChangeReason") or {}).get("Message") or ""
    if not step_id:
        return Status(cluster_id, cluster["State"], reason=reason)
    step = client.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["Status"]
    failure = step.get("FailureDetails") or {}
    step_reason = failure.get("Message") or failure.get("Reason") or ""
    step_reason = step_reason or (step.get("StateChangeReason") or {}).get("Message") or ""
    return Status(
        cluster_id, cluster["State"], step_id, step["State"], step_reason or reason, failure.get("LogFile")
    )


def wait(
    client: Any,
    cluster_id: str,
    step_id: Optional[str] = None,
    poll_seconds: float = 10.0,
    max_poll_seconds: float = 60.0,
    timeout_seconds: Optional[float] = None,
    echo: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> Status:
    """Poll until the step (or, without one, the cluster) is done, echoing each state change."""
    return poll(
        lambda: status(client, cluster_id, step_id),
        lambda now: (now.cluster_state, now.step_state),
        poll_seconds, max_poll_seconds, timeout_seconds, echo, sleep,
    )


def cancel_step(client: Any, cluster_id: str, step_id: str) -> str:
    """Cancel a pending or running step; returns EMR's answer (SUBMITTED or FAILED with a reason)."""
    state = client.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["Status"]["State"]
    if state not in STEP_CANCELLABLE:
        raise ConfigError(f"step {step_id} is {state}: only a PENDING or RUNNING step can be cancelled")
    answer = client.cancel_steps(ClusterId=cluster_id, StepIds=[step_id],
                                 StepCancellationOption=CANCEL)["CancelStepsInfoList"][0]
    return f"step {step_id}: {answer['Status']}{': ' + answer['Reason'] if answer.get('Reason') else ''}"


def terminate(client: Any, cluster_id: str, force: bool = False) -> str:
    """Terminate a cluster; one with termination protection only when forced (protection lifted first)."""
    cluster = client.describe_cluster(ClusterId=cluster_id)["Cluster"]
    state = cluster["Status"]["State"]
    if state in CLUSTER_DONE or state == "TERMINATING":
        return f"cluster {cluster_id} is already {state}"
    if cluster.get("TerminationProtected"):
        if not force:
            raise ConfigError(f"cluster {cluster_id} has termination protection; pass --force to lift it "
                              f"and terminate")
        client.set_termination_protection(JobFlowIds=[cluster_id], TerminationProtected=False)
    client.terminate_job_flows(JobFlowIds=[cluster_id])
    return f"cluster {cluster_id} terminating (was {state})"
