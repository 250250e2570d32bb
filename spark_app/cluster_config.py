"""The cluster's shape beyond instance groups: `emr.fleets` (instance fleets) and `emr.managed_scaling`.

Sections of `spark_app.config.EmrConfig`; `check_cluster` is run by `load_config` and raises
ConfigError naming the dotted key. `spark_app.emr.fleets` turns them into RunJobFlow's
`InstanceFleets` and `ManagedScalingPolicy`. Capacity in a core or task fleet is counted in vCPUs:
each instance type is weighted by its vCPUs, so 64 units are four 16-vCPU nodes or two 32-vCPU ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Optional, Tuple

from spark_app.errors import ConfigError

if TYPE_CHECKING:
    from spark_app.config import EmrConfig

MAX_TYPES_PER_FLEET = 30  # EMR's limit for a fleet with an allocation strategy


@dataclass(frozen=True)
class FleetConfig:
    """A core or task fleet: the instance types it may take, and its target capacity in vCPUs."""

    instance_types: Tuple[str, ...]
    on_demand_vcpu: int = 0
    spot_vcpu: int = 0


@dataclass(frozen=True)
class FleetsConfig:
    """Instance fleets: one on-demand primary node, an on-demand core fleet, an optional Spot task fleet."""

    primary: Tuple[str, ...]  # instance types for the one primary node, on-demand
    core: FleetConfig  # on-demand only: it holds HDFS and the shuffle service
    task: Optional[FleetConfig] = None  # usually Spot: losing a task node costs only recomputation
    subnet_ids: Tuple[str, ...] = ()  # EMR picks the subnet (AZ) with capacity among these
    allocation_strategy: Literal["price-capacity-optimized", "capacity-optimized", "lowest-price",
                                 "diversified", "capacity-optimized-prioritized"] = "price-capacity-optimized"
    spot_timeout_minutes: int = 10  # at launch: wait this long for Spot capacity, then the timeout action
    spot_timeout_action: Literal["SWITCH_TO_ON_DEMAND", "TERMINATE_CLUSTER"] = "SWITCH_TO_ON_DEMAND"


@dataclass(frozen=True)
class ManagedScalingConfig:
    """EMR managed scaling's ComputeLimits; core and task nodes only (the primary never scales)."""

    minimum: int
    maximum: int
    unit_type: Literal["InstanceFleetUnits", "Instances", "VCPU"] = "InstanceFleetUnits"
    maximum_on_demand: Optional[int] = None
    maximum_core: Optional[int] = None


def check_cluster(emr: Optional[EmrConfig], source: str) -> None:
    """ConfigError naming the first bad `emr.fleets.*` or `emr.managed_scaling.*` key."""
    if emr is None:
        return
    problems = _fleet_problems(emr.fleets) + _scaling_problems(emr)
    for key, why in problems:
        raise ConfigError(f"{source}: emr.{key}: {why}")


def _fleet_problems(fleets: Optional[FleetsConfig]) -> list:
    if fleets is None:
        return []
    out = []
    named = [("fleets.primary", fleets.primary), ("fleets.core.instance_types", fleets.core.instance_types)]
    if fleets.task is not None:
        named.append(("fleets.task.instance_types", fleets.task.instance_types))
    for key, types in named:
        if not 1 <= len(types) <= MAX_TYPES_PER_FLEET:
            out.append((key, f"give 1 to {MAX_TYPES_PER_FLEET} instance types"))
        elif len(set(types)) != len(types):
            out.append((key, "an instance type is listed twice"))
    if fleets.core.spot_vcpu:
        out.append(("fleets.core.spot_vcpu", "the core fleet is on-demand (it holds HDFS and the shuffle); "
                    "put Spot capacity in fleets.task"))
    if fleets.core.on_demand_vcpu < 1:
        out.append(("fleets.core.on_demand_vcpu", "must be at least 1"))
    if fleets.task is not None and min(fleets.task.on_demand_vcpu, fleets.task.spot_vcpu) < 0:
        out.append(("fleets.task", "capacities must not be negative"))
    if not 5 <= fleets.spot_timeout_minutes <= 1440:
        out.append(("fleets.spot_timeout_minutes", "must be within [5, 1440] (EMR's bounds)"))
    return out


def _scaling_problems(emr: EmrConfig) -> list:
    s = emr.managed_scaling
    if s is None:
        return []
    out = []
    if s.unit_type == "InstanceFleetUnits" and emr.fleets is None:
        out.append(("managed_scaling.unit_type", "InstanceFleetUnits needs emr.fleets; with instance "
                    "groups use Instances or VCPU"))
    if s.unit_type != "InstanceFleetUnits" and emr.fleets is not None:
        out.append(("managed_scaling.unit_type", "with emr.fleets the unit is InstanceFleetUnits"))
    if not 1 <= s.minimum <= s.maximum:
        out.append(("managed_scaling.minimum", f"must be within [1, maximum = {s.maximum}]"))
    f = emr.fleets
    task = f.task if f else None
    launch_vcpu = (f.core.on_demand_vcpu if f else 0) + (task.on_demand_vcpu + task.spot_vcpu if task else 0)
    if f is not None and not s.minimum <= launch_vcpu <= s.maximum:
        out.append(("managed_scaling", f"the fleets' {launch_vcpu} vCPU at launch must be within "
                    f"[minimum, maximum] = [{s.minimum}, {s.maximum}]"))
    for key in ("maximum_on_demand", "maximum_core"):
        value = getattr(s, key)
        if value is not None and not 1 <= value <= s.maximum:
            out.append((f"managed_scaling.{key}", f"must be within [1, maximum = {s.maximum}]"))
    return out
