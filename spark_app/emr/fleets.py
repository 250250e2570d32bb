"""Instance fleets and managed scaling: RunJobFlow's `InstanceFleets` and `ManagedScalingPolicy`, and the
executor sizing on a fleet whose nodes may be any of several instance types.

A core or task fleet's capacity is counted in vCPUs (each type's WeightedCapacity is its vCPUs), so
EMR may fill 64 units with four r7g.4xlarge or two r6g.8xlarge. The executor must therefore fit every
type of the core and task fleets: the cores per executor are the smallest any type allows, the
container (heap + overhead) the smallest YARN fit of any type (`spark_app.emr.sizing.fit_yarn`), and
the executors a vCPU carries the fewest any type gives. With managed scaling the executors and the
shuffle partitions follow the maximum capacity: dynamic allocation starts with what the minimum
holds and asks for more up to the maximum, which is what makes managed scaling add nodes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from spark_app.cluster_config import FleetConfig, FleetsConfig, ManagedScalingConfig
from spark_app.emr.sizing import check_fit, compute_sizing, split_container, to_mb
from spark_app.errors import ConfigError

if TYPE_CHECKING:
    from spark_app.config import EmrConfig

Table = Mapping[str, Mapping[str, float]]
GRAVITON = re.compile(r"^[a-z]+\d+g[a-z]*\.")  # m6g, r7g, c7gn, m6gd ...: AWS Graviton (arm64)
ON_DEMAND_STRATEGY = "lowest-price"
# EMR's Spark options for nodes that go away (a Spot interruption makes EMR decommission the node in
# YARN; so does managed scaling when it shrinks): no new tasks on a decommissioning node; its shuffle
# blocks and cache forgotten at once, so lost map output is recomputed rather than fetched until the
# fetches fail; and fetch failures from a decommissioned node not counted towards failing the stage.
# EMR turns them on by default; the launch says so explicitly for a cluster with Spot capacity, so an
# emr.spark_conf cannot lose them by accident. Spark's own spark.decommission.* (block migration) is not
# set: on YARN it needs each executor signalled, and the shuffle files live in the node's shuffle
# service, which leaves with the node.
SPOT_DECOMMISSION = {
    "spark.blacklist.decommissioning.enabled": "true",
    "spark.resourceManager.cleanupExpiredHost": "true",
    "spark.stage.attempt.ignoreOnDecommissionFetchFailure": "true",
}


def architecture(instance_type: str) -> str:
    """aarch64 for a Graviton type, else x86_64: which dependency archive the node can load."""
    return "aarch64" if GRAVITON.match(instance_type) else "x86_64"


def cluster_architecture(types: Sequence[str]) -> str:
    """The one architecture of all `types`; ConfigError naming both kinds when they mix."""
    kinds: Dict[str, List[str]] = {}
    for t in types:
        kinds.setdefault(architecture(t), []).append(t)
    if len(kinds) > 1:
        raise ConfigError("the cluster mixes arm64 (Graviton) and x86_64 instance types "
                          f"({', '.join(kinds['aarch64'])} / {', '.join(kinds['x86_64'])}): one dependency "
                          "archive serves one architecture; pick types of one kind for every fleet")
    return next(iter(kinds))


def all_types(fleets: FleetsConfig) -> List[str]:
    return list(fleets.primary) + list(fleets.core.instance_types) + list(_task_types(fleets))


def _task_types(fleets: FleetsConfig) -> Sequence[str]:
    return fleets.task.instance_types if fleets.task else ()


def _vcpu(table: Table, instance_type: str) -> int:
    if instance_type not in table or "vcpu" not in table[instance_type]:
        raise ConfigError(f"instance type {instance_type!r} is not in the instance table; add it under "
                          f"emr.instance_types with vcpu, memory_gib and yarn_memory_mb")
    return int(table[instance_type]["vcpu"])


# --------------------------------------------------------------------------- requests


def _fleet(name: str, role: str, fleet: FleetConfig, table: Table, fleets: FleetsConfig) -> Dict[str, Any]:
    spec: Dict[str, Any] = {
        "Name": name,
        "InstanceFleetType": role,
        "TargetOnDemandCapacity": fleet.on_demand_vcpu,
        "TargetSpotCapacity": fleet.spot_vcpu,
        "InstanceTypeConfigs": [{"InstanceType": t, "WeightedCapacity": _vcpu(table, t)}
                                for t in fleet.instance_types],
    }
    launch: Dict[str, Any] = {"OnDemandSpecification": {"AllocationStrategy": ON_DEMAND_STRATEGY}}
    if fleet.spot_vcpu:
        for c in spec["InstanceTypeConfigs"]:
            c["BidPriceAsPercentageOfOnDemandPrice"] = 100.0  # never pay more than on-demand
        launch["SpotSpecification"] = {
            "TimeoutDurationMinutes": fleets.spot_timeout_minutes,
            "TimeoutAction": fleets.spot_timeout_action,
            "AllocationStrategy": fleets.allocation_strategy,
        }
    spec["LaunchSpecifications"] = launch
    return spec


def instance_fleets(fleets: FleetsConfig, table: Table) -> List[Dict[str, Any]]:
    """Primary (one on-demand node), core (on-demand), task (Spot, when configured)."""
    cluster_architecture(all_types(fleets))
    primary = {
        "Name": "primary",
        "InstanceFleetType": "MASTER",
        "TargetOnDemandCapacity": 1,
        "InstanceTypeConfigs": [{"InstanceType": t, "WeightedCapacity": 1} for t in fleets.primary],
        "LaunchSpecifications": {"OnDemandSpecification": {"AllocationStrategy": ON_DEMAND_STRATEGY}},
    }
    out = [primary, _fleet("core", "CORE", fleets.core, table, fleets)]
    if fleets.task is not None:
        out.append(_fleet("task", "TASK", fleets.task, table, fleets))
    return out


def managed_scaling_policy(scaling: ManagedScalingConfig) -> Dict[str, Any]:
    """RunJobFlow's / PutManagedScalingPolicy's `ManagedScalingPolicy`."""
    limits: Dict[str, Any] = {
        "UnitType": scaling.unit_type,
        "MinimumCapacityUnits": scaling.minimum,
        "MaximumCapacityUnits": scaling.maximum,
    }
    if scaling.maximum_on_demand is not None:
        limits["MaximumOnDemandCapacityUnits"] = scaling.maximum_on_demand
    if scaling.maximum_core is not None:
        limits["MaximumCoreCapacityUnits"] = scaling.maximum_core
    return {"ComputeLimits": limits}


# --------------------------------------------------------------------------- sizing


@dataclass(frozen=True)
class TypeFit:
    """One instance type of the core and task fleets under the fleet's executor size."""

    instance_type: str
    vcpu: int
    yarn_memory_mb: int
    own_container_gb: int  # what this type alone would give each executor (the group sizing)
    executors_per_node: int  # at the fleet's container size


@dataclass(frozen=True)
class FleetSizing:
    executor_cores: int
    container_gb: int
    executor_memory_gb: int
    memory_overhead_gb: int
    initial_vcpu: int  # core + task targets at launch
    maximum_vcpu: int  # managed scaling's maximum, else the launch targets
    initial_executors: int
    executor_instances: int  # at the maximum, the driver's slot taken out
    parallelism: int
    dynamic: bool  # managed scaling: executors follow the work between initial and maximum
    types: List[TypeFit] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def spark_defaults(self) -> Dict[str, str]:
        heap, overhead = f"{self.executor_memory_gb}g", f"{self.memory_overhead_gb}g"
        props = {
            "spark.dynamicAllocation.enabled": "true" if self.dynamic else "false",
            "spark.executor.cores": str(self.executor_cores),
            "spark.executor.memory": heap,
            "spark.executor.memoryOverhead": overhead,
            "spark.executor.instances": str(self.initial_executors if self.dynamic
                                            else self.executor_instances),
            "spark.driver.memory": heap,
            "spark.driver.memoryOverhead": overhead,
            "spark.driver.cores": str(self.executor_cores),
            "spark.default.parallelism": str(self.parallelism),
            "spark.sql.shuffle.partitions": str(self.parallelism),
        }
        if self.dynamic:
            props["spark.dynamicAllocation.minExecutors"] = "1"
            props["spark.dynamicAllocation.maxExecutors"] = str(self.executor_instances)
        return props


def scaling_vcpu(units: int, scaling: ManagedScalingConfig, table: Table, types: Sequence[str]) -> int:
    """Managed scaling units as vCPUs: fleet units are vCPUs here; Instances count the smallest type."""
    if scaling.unit_type == "Instances":
        return units * min(_vcpu(table, t) for t in types)
    return units


def fleet_sizing(fleets: FleetsConfig, table: Table, scaling: Optional[ManagedScalingConfig] = None,
                 ) -> FleetSizing:
    """Executors that fit every type of the core and task fleets; counts at the maximum capacity."""
    types = list(dict.fromkeys([*fleets.core.instance_types, *_task_types(fleets)]))
    rules = {t: compute_sizing(t, 2, table) for t in types}  # per node; 2 nodes so the driver fits
    cores = min(r.executor_cores for r in rules.values())
    container = min(r.yarn.container_gb for r in rules.values())
    notes = []
    if any(r.executor_cores != cores for r in rules.values()):
        small = [t for t, r in rules.items() if r.executor_cores == cores]
        notes.append(f"{', '.join(small)} forces {cores} cores per executor")
    smallest = [t for t, r in rules.items() if r.yarn.container_gb == container]
    larger = {t: r.yarn.container_gb for t, r in rules.items() if r.yarn.container_gb > container}
    if larger:
        alone = ", ".join(f"{t} alone {gb} GiB" for t, gb in larger.items())
        notes.append(f"{', '.join(smallest)} forces a {container} GiB container on every type ({alone})")
    fits = []
    for t, r in rules.items():
        yarn_gb = r.yarn.yarn_memory_mb // 1024
        per_node = min((r.vcpu - 1) // cores, yarn_gb // container)
        fits.append(TypeFit(t, r.vcpu, r.yarn.yarn_memory_mb, r.yarn.container_gb, per_node))
    task = fleets.task
    initial = fleets.core.on_demand_vcpu + (task.on_demand_vcpu + task.spot_vcpu if task else 0)
    maximum = scaling_vcpu(scaling.maximum, scaling, table, types) if scaling else initial

    def executors(vcpu: int) -> int:  # the type giving the fewest executors per vCPU decides
        return min(vcpu * f.executors_per_node // f.vcpu for f in fits) - 1  # the driver's slot

    instances = executors(max(maximum, initial))
    if executors(initial) < 1:
        raise ConfigError(f"the fleets' {initial} vCPU leave no executor beside the driver; add capacity")
    heap, overhead = split_container(container)
    return FleetSizing(cores, container, heap, overhead, initial, max(maximum, initial), executors(initial),
                       instances, instances * cores * 2, scaling is not None, fits, notes)


def check_fleet_fit(props: Mapping[str, str], sized: FleetSizing) -> None:
    """Refuse spark-defaults (emr.spark_conf on top) whose executors do not fit a node of every type."""
    container = to_mb(props["spark.executor.memory"]) + to_mb(props["spark.executor.memoryOverhead"])
    cores = int(props["spark.executor.cores"])
    for f in sized.types:
        per_node = min(f.executors_per_node, (f.vcpu - 1) // cores)
        if per_node < 1 or per_node * container > f.yarn_memory_mb:
            raise ConfigError(
                f"executors do not fit YARN on {f.instance_type}: {max(per_node, 1)} containers of "
                f"{container} MB need {max(per_node, 1) * container} MB, the node offers "
                f"{f.yarn_memory_mb} MB; "
                f"lower spark.executor.memory / memoryOverhead in emr.spark_conf or drop the type")


def sizing_report(fleets: FleetsConfig, table: Table, scaling: Optional[ManagedScalingConfig],
                  sent: Mapping[str, str]) -> Dict[str, Any]:
    """`deploy.py sizing` for a fleet: per type, what each node holds under the one executor size."""
    sized = fleet_sizing(fleets, table, scaling)
    return {
        "spark-defaults": dict(sent),
        "executor": f"{sized.executor_cores} cores, {sized.executor_memory_gb}g + "
                    f"{sized.memory_overhead_gb}g ({sized.container_gb} GiB container)",
        "capacity_vcpu": {"initial": sized.initial_vcpu, "maximum": sized.maximum_vcpu},
        "executors": {"initial": sized.initial_executors, "maximum": sized.executor_instances},
        "per_type": {f.instance_type: {"vcpu": f.vcpu, "yarn_memory_mb": f.yarn_memory_mb,
                                       "executors_per_node": f.executors_per_node,
                                       "container_gb_alone": f.own_container_gb,
                                       "used_gb": f.executors_per_node * sized.container_gb}
                     for f in sized.types},
        "notes": sized.notes or ["every type takes the same executor size unchanged"],
    }


def group_nodes(emr: EmrConfig, table: Table) -> int:
    """Core nodes to size instance groups for: managed scaling's maximum when set, else emr.core.count."""
    scaling = emr.managed_scaling
    if scaling is None:
        return emr.core.count
    vcpu = _vcpu(table, emr.core.instance_type)
    top = scaling.maximum if scaling.unit_type == "Instances" else scaling.maximum // vcpu
    return max(top, emr.core.count)


Check = Callable[[Mapping[str, str]], None]


def sized_defaults(emr: EmrConfig, table: Table) -> Tuple[Dict[str, str], Check]:
    """The launch's sizing (fleets or groups, at managed scaling's maximum) and the check the final
    spark-defaults (emr.spark_conf on top) must pass."""
    if emr.fleets is not None:
        sized = fleet_sizing(emr.fleets, table, emr.managed_scaling)
        props = sized.spark_defaults()
        props.update(SPOT_DECOMMISSION if has_spot(emr) else {})
        return props, lambda final: check_fleet_fit(final, sized)
    sizing = compute_sizing(emr.core.instance_type, group_nodes(emr, table), table)
    props = sizing.spark_defaults()
    if emr.managed_scaling is not None:
        initial = compute_sizing(emr.core.instance_type, emr.core.count, table).yarn.executor_instances
        props.update({"spark.dynamicAllocation.enabled": "true", "spark.executor.instances": str(initial),
                      "spark.dynamicAllocation.minExecutors": "1",
                      "spark.dynamicAllocation.maxExecutors": str(sizing.yarn.executor_instances)})
    props.update(SPOT_DECOMMISSION if has_spot(emr) else {})
    return props, lambda final: check_fit(final, emr.core.count, sizing.yarn.yarn_memory_mb)


def has_spot(emr: EmrConfig) -> bool:
    """Whether any node of the cluster may be a Spot instance (then it may go away mid-run)."""
    if emr.fleets is not None:
        return bool(emr.fleets.task and emr.fleets.task.spot_vcpu)
    return "SPOT" in (emr.master.market, emr.core.market)


def scaling_cli(emr: EmrConfig, cluster_id: str, dry_run: bool, dump: Callable[[Any], None],
                client: Callable[[EmrConfig], Any]) -> int:
    """`deploy.py scaling`: PutManagedScalingPolicy with emr.managed_scaling on a running cluster."""
    if emr.managed_scaling is None:
        raise ConfigError("emr.managed_scaling: required to put a managed scaling policy (minimum, maximum)")
    request = {"ClusterId": cluster_id, "ManagedScalingPolicy": managed_scaling_policy(emr.managed_scaling)}
    if not dry_run:
        client(emr).put_managed_scaling_policy(**request)
    dump({"put_managed_scaling_policy": request, "sent": not dry_run})
    return 0
