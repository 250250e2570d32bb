"""Executor sizing for a YARN cluster of identical core nodes.

The rule (AWS big-data blog, "Best practices for successfully managing memory for Apache Spark
applications on Amazon EMR"): 5 cores per executor; one core and 1 GB per node stay with the
Hadoop daemons; each executor's share of the node's memory is split 90/10 between heap and
overhead; one executor slot is left for the driver (cluster deploy mode); parallelism is twice
the executor cores. The text rounds executors per node and memory per executor down, the
overhead up; integer arithmetic keeps that exact (42 * 0.1 as a float is 4.2, but 30 * 0.1 is
3.0000000000000004, which a float ceiling would turn into 4).

The rule's numbers then have to fit YARN: a node offers containers only
`yarn.nodemanager.resource.memory-mb` (conf/instance_types.yaml), less than its RAM, and YARN
silently starts fewer executors than asked when `n x (memory + overhead)` exceeds it. `fit_yarn`
shrinks each container to the node's share (whole GiB, so YARN's allocation rounding cannot push
it over); only when a container would drop under MIN_CONTAINER_GB does it cut the executors per
node instead. The driver (cluster mode) takes one executor slot with a container of the same size,
so it fits wherever an executor does. EMR Serverless has no nodes but a fixed menu of worker sizes:
`serverless_workers` applies the same rule (shrink to the largest allowed size) to pick them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

from spark_app.errors import ConfigError

EXECUTOR_CORES = 5
DAEMON_CORES = 1
DAEMON_MEMORY_GB = 1
MIN_CONTAINER_GB = 2
DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "conf" / "instance_types.yaml"
SPEC_KEYS = ("vcpu", "memory_gib", "yarn_memory_mb")  # what sizing needs of an instance type
SPEC_HELP = "vCPUs, RAM in GiB, and EMR's yarn.nodemanager.resource.memory-mb for the type"


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
    yarn: Optional[YarnFit] = None  # the rule's numbers fitted to YARN (compute_sizing sets it)

    def spark_defaults(self) -> Dict[str, str]:
        """The `spark-defaults` classification properties: the YARN fit's numbers, not the rule's."""
        fit = self.yarn or fit_yarn(self, self.memory_gib * 1024)
        return {
            "spark.dynamicAllocation.enabled": "false",
            "spark.executor.cores": str(self.executor_cores),
            "spark.executor.memory": f"{fit.executor_memory_gb}g",
            "spark.executor.memoryOverhead": f"{fit.memory_overhead_gb}g",
            "spark.executor.instances": str(fit.executor_instances),
            "spark.driver.memory": f"{fit.executor_memory_gb}g",
            "spark.driver.memoryOverhead": f"{fit.memory_overhead_gb}g",
            "spark.driver.cores": str(self.driver_cores),
            "spark.default.parallelism": str(fit.parallelism),
            "spark.sql.shuffle.partitions": str(fit.parallelism),
        }

    def explain(self) -> List[str]:
        """The rule's arithmetic, step by step, as the text works its example."""
        per, total = self.executors_per_node, self.total_executor_memory_gb
        return [
            f"executors per node: ({self.vcpu} vCPU - {DAEMON_CORES}) // {self.executor_cores} cores = {per}",
            f"memory per executor: ({self.memory_gib} GiB - {DAEMON_MEMORY_GB}) // {per} = {total} GB",
            f"heap: {total} x 0.9 rounded down = {self.executor_memory_gb} GB; overhead: {total} x 0.1 "
            f"rounded up = {self.memory_overhead_gb} GB",
            f"executor instances: {per} x {self.nodes} nodes - 1 (the driver) = {self.executor_instances}",
            f"parallelism: {self.executor_instances} x {self.executor_cores} cores x 2 = {self.parallelism}",
        ]


@dataclass(frozen=True)
class YarnFit:
    """What YARN can grant per node, whether the rule's containers fit, and what was cut to fit."""

    yarn_memory_mb: int
    rule_fits: bool
    executors_per_node: int
    container_gb: int  # heap + overhead, for executors and the driver alike
    executor_memory_gb: int
    memory_overhead_gb: int
    executor_instances: int
    parallelism: int
    used_per_node_gb: int
    cuts: List[str] = field(default_factory=list)


def split_container(total_gb: int) -> Tuple[int, int]:
    """90 % heap rounded down, 10 % overhead rounded up; the two add up to `total_gb`."""
    return total_gb * 9 // 10, -(-total_gb // 10)


def fit_yarn(rule: Sizing, yarn_memory_mb: int) -> YarnFit:
    """Shrink the rule's containers until n of them fit the node's YARN memory; cut n only below 2 GiB."""
    yarn_gb = yarn_memory_mb // 1024
    per_node, total = rule.executors_per_node, rule.total_executor_memory_gb
    cuts = []
    if per_node * total > yarn_gb:
        share = yarn_gb // per_node
        if share < MIN_CONTAINER_GB:
            fewer = yarn_gb // MIN_CONTAINER_GB
            if fewer < 1:
                raise ConfigError(f"{rule.instance_type}: YARN offers {yarn_memory_mb} MB per node, "
                                  f"less than one {MIN_CONTAINER_GB} GiB container")
            cuts.append(f"executors per node {per_node} -> {fewer}: {per_node} containers would get "
                        f"{share} GiB each, under {MIN_CONTAINER_GB} GiB")
            per_node, share = fewer, yarn_gb // fewer
        new_total = min(total, share)
        cuts.insert(0, f"container {total} GiB -> {new_total} GiB (heap + overhead): "
                       f"{rule.executors_per_node} x {total} GiB = {rule.executors_per_node * total} GiB "
                       f"> YARN's {yarn_gb} GiB per {rule.instance_type}")
        total = new_total
    instances = per_node * rule.nodes - 1
    if instances < 1:
        raise ConfigError(f"{rule.nodes} x {rule.instance_type} leaves no executor beside the driver "
                          f"once fitted to YARN; add core nodes")
    heap, overhead = split_container(total)
    return YarnFit(
        yarn_memory_mb=yarn_memory_mb,
        rule_fits=not cuts,
        executors_per_node=per_node,
        container_gb=total,
        executor_memory_gb=heap,
        memory_overhead_gb=overhead,
        executor_instances=instances,
        parallelism=instances * rule.executor_cores * 2,
        used_per_node_gb=per_node * total,
        cuts=cuts,
    )


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
            f"instance type {instance_type!r} is not in the instance table; add it under emr.instance_types "
            f"as {{{', '.join(f'{k}: ...' for k in SPEC_KEYS)}}} ({SPEC_HELP}) "
            f"(known: {', '.join(sorted(table)) or 'none'})"
        )
    missing = [k for k in SPEC_KEYS if k not in spec]
    if missing:
        raise ConfigError(f"instance type {instance_type!r} has no {' and no '.join(missing)}; add "
                          f"{', '.join(missing)} under emr.instance_types.{instance_type} ({SPEC_HELP})")
    if nodes < 1:
        raise ConfigError(f"sizing needs at least one core node, got {nodes}")
    vcpu, memory = int(spec["vcpu"]), int(spec["memory_gib"])
    usable_cores = vcpu - DAEMON_CORES
    cores = min(executor_cores, usable_cores)  # small nodes: one executor with what is left
    if cores < 1 or memory <= DAEMON_MEMORY_GB:
        raise ConfigError(f"instance type {instance_type!r} ({vcpu} vCPU, {memory} GiB) is too small")
    per_node = usable_cores // cores
    total = (memory - DAEMON_MEMORY_GB) // per_node
    heap, overhead = split_container(total)
    instances = per_node * nodes - 1
    if instances < 1:
        raise ConfigError(
            f"{nodes} x {instance_type} leaves no executor once the driver has its slot; add core nodes"
        )
    rule = Sizing(
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
    return dataclasses.replace(rule, yarn=fit_yarn(rule, int(spec["yarn_memory_mb"])))


# --------------------------------------------------------------------------- checks and Serverless

_UNITS = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}


def to_mb(value: str) -> int:
    """A Spark memory string ("36g", "4096m", "512") in MiB; a bare number is MiB, as in Spark."""
    text = str(value).strip().lower().rstrip("b")
    unit = text[-1] if text and text[-1] in _UNITS else "m"
    number = text[:-1] if text and text[-1] in _UNITS else text
    try:
        return int(float(number) * _UNITS[unit])
    except ValueError:
        raise ConfigError(f"not a Spark memory size: {value!r}") from None


@dataclass(frozen=True)
class YarnUsage:
    """The busiest node under some spark-defaults: its containers (the driver's among them), YARN's memory."""

    containers: int
    container_mb: int
    driver_mb: int
    used_mb: int
    yarn_memory_mb: int

    @property
    def fits(self) -> bool:
        return self.used_mb <= self.yarn_memory_mb

    def line(self) -> str:
        return (f"{'fits' if self.fits else 'does not fit'} YARN: the busiest node holds {self.containers} "
                f"containers of {self.container_mb} MB (the driver's {self.driver_mb} MB among them), "
                f"{self.used_mb} MB of the {self.yarn_memory_mb} MB YARN offers")


def yarn_usage(props: Mapping[str, str], nodes: int, yarn_memory_mb: int) -> YarnUsage:
    """What spark-defaults `props` (executors, and the driver in one slot) take on the busiest of `nodes`."""
    container = to_mb(props["spark.executor.memory"]) + to_mb(props["spark.executor.memoryOverhead"])
    driver = to_mb(props["spark.driver.memory"]) + to_mb(props["spark.driver.memoryOverhead"])
    slots = int(props["spark.executor.instances"]) + 1
    per_node = -(-slots // nodes)
    return YarnUsage(per_node, container, driver, (per_node - 1) * container + max(container, driver),
                     yarn_memory_mb)


def check_fit(props: Mapping[str, str], nodes: int, yarn_memory_mb: int) -> None:
    """Refuse spark-defaults whose executors (and the driver's slot) do not fit YARN on `nodes` nodes."""
    use = yarn_usage(props, nodes, yarn_memory_mb)
    if not use.fits:
        raise ConfigError(
            f"executors do not fit YARN: {use.containers} containers of {use.container_mb} MB on one node "
            f"(the driver {use.driver_mb} MB among them) need {use.used_mb} MB, the node offers "
            f"{yarn_memory_mb} MB; lower spark.executor.memory / memoryOverhead / instances in emr.spark_conf"
        )


# EMR Serverless worker sizes: vCPU -> (min GB, max GB, step GB) of memory (heap + overhead).
WORKER_SIZES: Dict[int, Tuple[int, int, int]] = {
    1: (2, 8, 1), 2: (4, 16, 1), 4: (8, 30, 1), 8: (16, 60, 4), 16: (32, 120, 8),
}


@dataclass(frozen=True)
class Workers:
    """Driver and executor workers for EMR Serverless, sized from the same rule as the EC2 containers."""

    cpu: int
    memory_gb: int  # the worker: heap + overhead
    executor_memory_gb: int
    memory_overhead_gb: int
    executors: int
    parallelism: int
    cuts: List[str] = field(default_factory=list)

    def spark_conf(self) -> Dict[str, str]:
        heap, overhead = f"{self.executor_memory_gb}g", f"{self.memory_overhead_gb}g"
        return {
            "spark.dynamicAllocation.enabled": "false",
            "spark.executor.cores": str(self.cpu),
            "spark.executor.memory": heap,
            "spark.executor.memoryOverhead": overhead,
            "spark.executor.instances": str(self.executors),
            "spark.driver.cores": str(self.cpu),
            "spark.driver.memory": heap,
            "spark.driver.memoryOverhead": overhead,
            "spark.default.parallelism": str(self.parallelism),
            "spark.sql.shuffle.partitions": str(self.parallelism),
        }

    def max_capacity(self) -> Dict[str, str]:
        """The application's ceiling: every executor plus the driver, nothing more."""
        workers = self.executors + 1
        return {"cpu": f"{workers * self.cpu} vCPU", "memory": f"{workers * self.memory_gb} GB"}


def serverless_workers(sizing: Sizing) -> Workers:
    """The largest allowed vCPU <= the executor's cores; the container's memory per core, shrunk to fit."""
    fit = sizing.yarn or fit_yarn(sizing, sizing.memory_gib * 1024)
    cpu = max(c for c in WORKER_SIZES if c <= sizing.executor_cores)
    low, high, step = WORKER_SIZES[cpu]
    wanted = fit.container_gb * cpu // sizing.executor_cores
    memory = max(low, min(high, wanted - (wanted - low) % step if wanted >= low else low))
    cuts = []
    if cpu != sizing.executor_cores:
        cuts.append(f"cores per worker {sizing.executor_cores} -> {cpu}: Serverless workers have 1, 2, 4, 8 "
                    f"or 16 vCPU")
    if memory < wanted:
        cuts.append(f"worker memory {wanted} GB -> {memory} GB: a {cpu} vCPU worker has {low}-{high} GB")
    executors = max(1, fit.executor_instances * sizing.executor_cores // cpu)
    heap, overhead = split_container(memory)
    return Workers(cpu, memory, heap, overhead, executors, executors * cpu * 2, cuts)
