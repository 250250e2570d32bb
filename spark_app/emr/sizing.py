"""Executor sizing for a YARN cluster of identical core nodes.

The rule (AWS big-data blog, "Best practices for successfully managing memory for Apache Spark
applications on Amazon EMR"): 5 cores per executor; one core and 1 GB per node stay with the
Hadoop daemons; each executor's share of the node's memory is split 90/10 between heap and
overhead; one executor slot is left for the driver (cluster deploy mode); parallelism is twice
the executor cores. The text rounds executors per node and memory per executor down, the
overhead up; integer arithmetic keeps that exact (42 * 0.1 as a float is 4.2, but 30 * 0.1 is
3.0000000000000004, which a float ceiling would turn into 4).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from spark_app.errors import ConfigError

EXECUTOR_CORES = 5
DAEMON_CORES = 1
DAEMON_MEMORY_GB = 1
DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "conf" / "instance_types.yaml"


@dataclass(frozen=True)
class Sizing:
    instance_type: str
    nodes: int
    vcpu: int
    memory_gib: int
    executor_cores: int
    executors_per_node: int
    total_executor_memory_gb: int  # heap + overhead of one executor
    executor_memory_gb: int
    memory_overhead_gb: int
    executor_instances: int
    parallelism: int
    driver_memory_gb: int
    driver_cores: int

    def spark_defaults(self) -> Dict[str, str]:
        """The `spark-defaults` classification properties for this sizing."""
        return {
            "spark.dynamicAllocation.enabled": "false",
            "spark.executor.cores": str(self.executor_cores),
            "spark.executor.memory": f"{self.executor_memory_gb}g",
            "spark.executor.memoryOverhead": f"{self.memory_overhead_gb}g",
            "spark.executor.instances": str(self.executor_instances),
            "spark.driver.memory": f"{self.driver_memory_gb}g",
            "spark.driver.memoryOverhead": f"{self.memory_overhead_gb}g",
            "spark.driver.cores": str(self.driver_cores),
            "spark.default.parallelism": str(self.parallelism),
            "spark.sql.shuffle.partitions": str(self.parallelism),
        }

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def load_instance_types(
    path: Optional[str] = None, overrides: Optional[Mapping[str, Mapping[str, float]]] = None
) -> Dict[str, Dict[str, float]]:
    """The instance table from YAML (default conf/instance_types.yaml), with config overrides."""
    import yaml

    p = Path(path) if path else DEFAULT_TABLE
    table: Dict[str, Dict[str, float]] = {}
    if p.is_file():
        table = {str(k): dict(v) for k, v in (yaml.safe_load(p.read_text()) or {}).items()}
    elif path:
        raise ConfigError(f"{p}: instance type table not found")
    for name, spec in (overrides or {}).items():
        table[name] = {**table.get(name, {}), **dict(spec)}
    return table


def compute_sizing(
    instance_type: str,
    nodes: int,
    instance_types: Optional[Mapping[str, Mapping[str, float]]] = None,
    executor_cores: int = EXECUTOR_CORES,
) -> Sizing:
    """Size executors for `nodes` core nodes of `instance_type` by the rule in the module docstring."""
    table = instance_types if instance_types is not None else load_instance_types()
    spec = table.get(instance_type)
    if spec is None:
        raise ConfigError(
            f"instance type {instance_type!r} is not in the instance table; add it under "
            f"emr.instance_types as {{vcpu: N, memory_gib: M}} (known: {', '.join(sorted(table)) or 'none'})"
        )
    if nodes < 1:
        raise ConfigError(f"sizing needs at least one core node, got {nodes}")
    vcpu, memory = int(spec["vcpu"]), int(spec["memory_gib"])
    usable_cores = vcpu - DAEMON_CORES
    cores = min(executor_cores, usable_cores)  # small nodes: one executor with what is left
    if cores < 1 or memory <= DAEMON_MEMORY_GB:
        raise ConfigError(f"instance type {instance_type!r} ({vcpu} vCPU, {memory} GiB) is too small")
    per_node = usable_cores // cores
    total = (memory - DAEMON_MEMORY_GB) // per_node
    heap = total * 9 // 10
    overhead = -(-total // 10)
    instances = per_node * nodes - 1
    if instances < 1:
        raise ConfigError(
            f"{nodes} x {instance_type} leaves no executor once the driver has its slot; add core nodes"
        )
    return Sizing(
        instance_type=instance_type,
        nodes=nodes,
        vcpu=vcpu,
        memory_gib=memory,
        executor_cores=cores,
        executors_per_node=per_node,
        total_executor_memory_gb=total,
        executor_memory_gb=heap,
        memory_overhead_gb=overhead,
        executor_instances=instances,
        parallelism=instances * cores * 2,
        driver_memory_gb=heap,
        driver_cores=cores,
    )
