"""Instance fleets and managed scaling: the request, the sizing on several types, the archive per arch.

moto's server accepts RunJobFlow with `InstanceFleets` and `ManagedScalingPolicy` but keeps neither
(it serves no ListInstanceFleets, GetManagedScalingPolicy or PutManagedScalingPolicy: it answers 500).
So the launch is sent to moto for real, and what moto cannot hold is checked in the request against
botocore's model of the EMR API (the shapes, enums and required members AWS itself validates).
"""

from __future__ import annotations

import json

import boto3
import botocore.session
import pytest
from botocore.validate import ParamValidator

from spark_app.config import config_from_mapping
from spark_app.emr import deps, fleets
from spark_app.emr.launch import PROJECT_ROOT, emr_client, job_arguments, launch, run_job_flow_request
from spark_app.emr.sizing import compute_sizing, load_instance_types
from spark_app.errors import ConfigError

TABLE = load_instance_types()
FLEETS = {
    "primary": ["m7g.xlarge", "m6g.xlarge"],
    "core": {"instance_types": ["r7g.4xlarge", "r6g.4xlarge"], "on_demand_vcpu": 32},
    "task": {"instance_types": ["r7g.4xlarge", "r6g.4xlarge", "r7g.8xlarge", "r6g.8xlarge"], "spot_vcpu": 64},
    "subnet_ids": ["subnet-a", "subnet-b", "subnet-c"],
}
SCALING = {"minimum": 96, "maximum": 320, "maximum_on_demand": 32, "maximum_core": 32}


def _cfg(endpoint_url=None, **emr):
    section = {"bucket": "art-bkt", "prefix": "cmr", "endpoint_url": endpoint_url, "fleets": FLEETS, **emr}
    return config_from_mapping({
        "events": {"path": "s3://ev/events"},
        "dynamodb": {"table": "catalog", "region": "us-east-1"},
        "postgres": {"url": "postgresql://etl@db:5432/catalog", "password_secret": "prod/pg"},
        "emr": section,
    })


def _request(cfg):
    args = job_arguments("catalog_match_rate", "emr.yaml", date="2026-11-19")
    return run_job_flow_request(cfg, "0123456789ab", args, "emr.yaml", TABLE, label="2026-11-19")


def _valid(operation: str, params: dict) -> None:
    model = botocore.session.get_session().get_service_model("emr").operation_model(operation)
    report = ParamValidator().validate(params, model.input_shape)
    assert not report.has_errors(), report.generate_report()


def test_primary_and_core_fleets_are_on_demand_the_task_fleet_spot_weighted_by_vcpu_in_several_subnets():
    instances = _request(_cfg())["Instances"]
    primary, core, task = instances["InstanceFleets"]
    assert primary == {
        "Name": "primary", "InstanceFleetType": "MASTER", "TargetOnDemandCapacity": 1,
        "InstanceTypeConfigs": [{"InstanceType": "m7g.xlarge", "WeightedCapacity": 1},
                                {"InstanceType": "m6g.xlarge", "WeightedCapacity": 1}],
        "LaunchSpecifications": {"OnDemandSpecification": {"AllocationStrategy": "lowest-price"}},
    }
    assert (core["InstanceFleetType"], core["TargetOnDemandCapacity"], core["TargetSpotCapacity"]) == \
        ("CORE", 32, 0)
    assert "SpotSpecification" not in core["LaunchSpecifications"]
    assert (task["InstanceFleetType"], task["TargetOnDemandCapacity"], task["TargetSpotCapacity"]) == \
        ("TASK", 0, 64)
    assert [(c["InstanceType"], c["WeightedCapacity"]) for c in task["InstanceTypeConfigs"]] == [
        ("r7g.4xlarge", 16), ("r6g.4xlarge", 16), ("r7g.8xlarge", 32), ("r6g.8xlarge", 32)]
    assert {c["BidPriceAsPercentageOfOnDemandPrice"] for c in task["InstanceTypeConfigs"]} == {100.0}
    assert task["LaunchSpecifications"]["SpotSpecification"] == {
        "TimeoutDurationMinutes": 10, "TimeoutAction": "SWITCH_TO_ON_DEMAND",
        "AllocationStrategy": "price-capacity-optimized"}
    assert instances["Ec2SubnetIds"] == ["subnet-a", "subnet-b", "subnet-c"]
    assert "InstanceGroups" not in instances and "Ec2SubnetId" not in instances


def test_managed_scaling_limits_are_sent_and_the_request_fits_the_emr_api():
    request = _request(_cfg(managed_scaling=SCALING))
    assert request["ManagedScalingPolicy"] == {"ComputeLimits": {
        "UnitType": "InstanceFleetUnits", "MinimumCapacityUnits": 96, "MaximumCapacityUnits": 320,
        "MaximumOnDemandCapacityUnits": 32, "MaximumCoreCapacityUnits": 32}}
    _valid("RunJobFlow", request)
    put = {"ClusterId": "j-1", "ManagedScalingPolicy": request["ManagedScalingPolicy"]}
    _valid("PutManagedScalingPolicy", put)
    assert "ManagedScalingPolicy" not in _request(_cfg())


def test_deploy_scaling_puts_the_configs_policy_on_a_running_cluster(capsys):
    import deploy

    # moto's server has no PutManagedScalingPolicy (it answers 500): the dry run's request is checked
    # against EMR's API model instead, and it is what the command sends
    conf = str(PROJECT_ROOT / "conf" / "emr.yaml")
    assert deploy.main(["scaling", "--conf", conf, "--cluster-id", "j-1", "--dry-run"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["sent"] is False
    request = got["put_managed_scaling_policy"]
    assert request["ManagedScalingPolicy"]["ComputeLimits"]["MaximumCapacityUnits"] == 96
    _valid("PutManagedScalingPolicy", request)


def test_the_executor_fits_every_type_and_the_sizing_says_which_type_forces_it():
    sized = fleets.fleet_sizing(_cfg().emr.fleets, TABLE)
    # r7g.8xlarge alone takes 41 GiB containers (6 a node); the 4xlarge types only 40 GiB (3 a node)
    assert (sized.executor_cores, sized.container_gb) == (5, 40)
    assert (sized.executor_memory_gb, sized.memory_overhead_gb) == (36, 4)
    assert sized.notes == ["r7g.4xlarge, r6g.4xlarge forces a 40 GiB container on every type "
                           "(r7g.8xlarge alone 41 GiB, r6g.8xlarge alone 41 GiB)"]
    assert {f.instance_type: f.executors_per_node for f in sized.types} == {
        "r7g.4xlarge": 3, "r6g.4xlarge": 3, "r7g.8xlarge": 6, "r6g.8xlarge": 6}
    assert sized.initial_vcpu == 96 and sized.executor_instances == 96 * 3 // 16 - 1 == 17
    assert sized.spark_defaults()["spark.dynamicAllocation.enabled"] == "false"


def test_a_smaller_shape_in_the_fleet_shrinks_every_executor_and_is_named():
    cfg = _cfg(fleets={**FLEETS, "task": {"instance_types": ["r7g.4xlarge", "m7g.4xlarge"], "spot_vcpu": 64}})
    sized = fleets.fleet_sizing(cfg.emr.fleets, TABLE)
    assert sized.container_gb == 18  # m7g.4xlarge: 56 GiB of YARN for 3 executors
    assert sized.notes == ["m7g.4xlarge forces a 18 GiB container on every type (r7g.4xlarge alone 40 GiB, "
                           "r6g.4xlarge alone 40 GiB)"]


def test_with_managed_scaling_partitions_and_executors_follow_the_maximum():
    props = [c for c in _request(_cfg(managed_scaling=SCALING))["Configurations"]
             if c["Classification"] == "spark-defaults"][0]["Properties"]
    at_max = 320 * 3 // 16 - 1  # 59 executors at 320 vCPU, the driver's slot out
    assert props["spark.dynamicAllocation.enabled"] == "true"
    assert props["spark.dynamicAllocation.maxExecutors"] == str(at_max)
    assert props["spark.executor.instances"] == "17"  # what the 96 vCPU at launch hold
    assert props["spark.sql.shuffle.partitions"] == props["spark.default.parallelism"] == str(at_max * 5 * 2)


def test_a_cluster_with_spot_capacity_says_how_spark_treats_a_node_that_goes_away():
    def props(cfg):
        confs = _request(cfg)["Configurations"]
        return next(c["Properties"] for c in confs if c["Classification"] == "spark-defaults")

    spot = props(_cfg())
    assert {k: spot[k] for k in fleets.SPOT_DECOMMISSION} == {
        "spark.blacklist.decommissioning.enabled": "true",
        "spark.resourceManager.cleanupExpiredHost": "true",
        "spark.stage.attempt.ignoreOnDecommissionFetchFailure": "true"}
    on_demand = props(_cfg(fleets={**FLEETS, "task": None}))
    assert not set(fleets.SPOT_DECOMMISSION) & set(on_demand)


def test_managed_scaling_on_instance_groups_sizes_for_the_maximum_instances():
    cfg = _cfg(fleets=None, core={"instance_type": "r5.4xlarge", "count": 2},
               managed_scaling={"unit_type": "Instances", "minimum": 2, "maximum": 10})
    request = _request(cfg)
    props = [c for c in request["Configurations"] if c["Classification"] == "spark-defaults"][0]["Properties"]
    assert props["spark.dynamicAllocation.maxExecutors"] == "29"  # 3 x 10 nodes - 1
    assert props["spark.executor.instances"] == "5" and props["spark.sql.shuffle.partitions"] == "290"
    assert request["ManagedScalingPolicy"]["ComputeLimits"]["UnitType"] == "Instances"
    _valid("RunJobFlow", request)


def test_a_graviton_cluster_ships_the_aarch64_archive_and_checks_for_arm_nodes():
    request = _request(_cfg())
    args = request["Steps"][0]["HadoopJarStep"]["Args"]
    arm = deps.archive_name(deps.read_lock(PROJECT_ROOT, "aarch64"), "aarch64")
    assert f"spark.archives=s3://art-bkt/cmr/deps/{arm}#deps" in args
    assert arm != deps.archive_name(deps.read_lock(PROJECT_ROOT))
    assert request["BootstrapActions"][0]["ScriptBootstrapAction"]["Args"] == ["/usr/bin/python3", "aarch64"]


def test_a_fleet_mixing_architectures_is_refused():
    mixed = {**FLEETS, "task": {"instance_types": ["r7g.4xlarge", "r5.4xlarge"], "spot_vcpu": 64}}
    with pytest.raises(ConfigError, match="mixes arm64 .Graviton. and x86_64 instance types"):
        _request(_cfg(fleets=mixed))


@pytest.mark.parametrize("fleets_, scaling, message", [
    ({**FLEETS, "core": {"instance_types": ["r7g.4xlarge"], "on_demand_vcpu": 16, "spot_vcpu": 16}}, None,
     "emr.fleets.core.spot_vcpu: the core fleet is on-demand"),
    (None, {"minimum": 1, "maximum": 4},
     "emr.managed_scaling.unit_type: InstanceFleetUnits needs emr.fleets"),
    (FLEETS, {"minimum": 400, "maximum": 320}, r"emr.managed_scaling.minimum: must be within \[1, maximum"),
    ({**FLEETS, "spot_timeout_minutes": 2}, None, "emr.fleets.spot_timeout_minutes"),
    (FLEETS, {"minimum": 16, "maximum": 64}, r"the fleets' 96 vCPU at launch must be within \[minimum"),
])
def test_config_refuses_what_emr_would(fleets_, scaling, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(fleets=fleets_, managed_scaling=scaling)


@pytest.mark.parametrize("graviton, x86", [
    (f"{fam}.{size}", f"{x86fam}.{size}")
    for fam, x86fam in (("m6g", "m5"), ("m7g", "m5"), ("r6g", "r5"), ("r7g", "r5"), ("c6g", "c5"),
                        ("c7g", "c5"))
    for size in ("xlarge", "2xlarge", "4xlarge", "12xlarge")
])
def test_each_graviton_type_sizes_as_the_x86_type_of_the_same_shape(graviton, x86):
    assert fleets.architecture(graviton) == "aarch64" and fleets.architecture(x86) == "x86_64"
    arm, intel = compute_sizing(graviton, 4, TABLE), compute_sizing(x86, 4, TABLE)
    same = ("executors_per_node", "container_gb", "executor_instances", "parallelism", "yarn_memory_mb")
    assert [getattr(arm.yarn, k) for k in same] == [getattr(intel.yarn, k) for k in same]
    assert arm.executor_cores == intel.executor_cores


def test_every_graviton_size_in_the_table_sizes():
    graviton = [t for t in TABLE if fleets.architecture(t) == "aarch64"]
    assert len(graviton) == 36  # 6 families x xlarge..16xlarge
    for t in graviton:
        s = compute_sizing(t, 2, TABLE)
        assert s.yarn.used_per_node_gb * 1024 <= TABLE[t]["yarn_memory_mb"], t


def test_launch_with_fleets_on_moto(moto_server):
    cfg = _cfg(endpoint_url=moto_server.endpoint_url, managed_scaling=SCALING)
    client = emr_client(cfg.emr)
    launched = launch(client, _request(cfg))  # botocore validates the request against EMR's model first
    cluster = client.describe_cluster(ClusterId=launched.cluster_id)["Cluster"]
    assert cluster["Name"] == "cmr 2026-11-19"
    assert cluster["Status"]["State"] in ("STARTING", "RUNNING", "WAITING")
    raw = boto3.client("emr", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    assert raw.list_steps(ClusterId=launched.cluster_id)["Steps"][0]["Id"] == launched.step_ids[0]
