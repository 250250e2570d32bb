"""Executor sizing follows the AWS memory best-practice rule, number for number."""

from __future__ import annotations

import pytest

from spark_app.emr.sizing import compute_sizing, load_instance_types
from spark_app.errors import ConfigError


def test_worked_example_r5_12xlarge_times_19_matches_the_text():
    s = compute_sizing("r5.12xlarge", 19)
    assert (s.vcpu, s.memory_gib) == (48, 384)
    assert s.executor_cores == 5
    assert s.executors_per_node == 9  # (48 - 1) / 5 rounded down
    assert s.total_executor_memory_gb == 42  # 383 / 9 rounded down
    assert s.executor_memory_gb == 37  # 42 * 0.9 rounded down
    assert s.memory_overhead_gb == 5  # 42 * 0.1 rounded up
    assert s.executor_instances == 170  # 9 * 19 - 1
    assert s.parallelism == 1700  # 170 * 5 * 2
    assert s.driver_memory_gb == 37
    assert s.driver_cores == 5


def test_spark_defaults_carry_the_sizing():
    props = compute_sizing("r5.12xlarge", 19).spark_defaults()
    assert props["spark.executor.cores"] == "5"
    assert props["spark.executor.memory"] == "37g"
    assert props["spark.executor.memoryOverhead"] == "5g"
    assert props["spark.executor.instances"] == "170"
    assert props["spark.default.parallelism"] == "1700"
    assert props["spark.driver.memory"] == "37g"
    assert props["spark.driver.cores"] == "5"
    assert props["spark.dynamicAllocation.enabled"] == "false"


def test_overhead_rounding_is_exact_where_a_float_ceiling_is_not():
    # m5.8xlarge: 32 vCPU -> 6 executors; (128 - 1) // 6 = 21; 21 * 0.9 -> 18, 21 * 0.1 -> 3
    s = compute_sizing("m5.8xlarge", 2)
    assert (s.executors_per_node, s.total_executor_memory_gb) == (6, 21)
    assert (s.executor_memory_gb, s.memory_overhead_gb) == (18, 3)
    # 30 GB total: a float ceiling of 30 * 0.1 gives 4; the rule gives 3
    table = {"x.test": {"vcpu": 6, "memory_gib": 31}}
    s = compute_sizing("x.test", 3, table)
    assert (s.total_executor_memory_gb, s.executor_memory_gb, s.memory_overhead_gb) == (30, 27, 3)


def test_small_nodes_get_one_executor_with_the_cores_left():
    s = compute_sizing("r5.xlarge", 3)  # 4 vCPU, 32 GiB
    assert (s.executor_cores, s.executors_per_node, s.total_executor_memory_gb) == (3, 1, 31)
    assert s.executor_instances == 2
    assert s.parallelism == 12


def test_table_has_m5_r5_c5_from_xlarge_to_24xlarge():
    table = load_instance_types()
    for family in ("m5", "r5", "c5"):
        for size in ("xlarge", "2xlarge", "4xlarge", "12xlarge", "24xlarge"):
            assert f"{family}.{size}" in table
    assert table["c5.9xlarge"] == {"vcpu": 36, "memory_gib": 72}


def test_config_overrides_extend_the_table():
    table = load_instance_types(overrides={"r6g.4xlarge": {"vcpu": 16, "memory_gib": 128}})
    assert compute_sizing("r6g.4xlarge", 2, table).executor_instances == 5


def test_unknown_type_and_too_few_nodes_are_config_errors():
    with pytest.raises(ConfigError, match="r9.huge.*emr.instance_types"):
        compute_sizing("r9.huge", 2)
    with pytest.raises(ConfigError, match="no executor"):
        compute_sizing("m5.xlarge", 1)
