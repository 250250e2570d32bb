"""Executor sizing follows the AWS memory best-practice rule, number for number, then fits YARN."""

from __future__ import annotations

import pytest

from spark_app.emr.sizing import (
    WORKER_SIZES,
    check_fit,
    compute_sizing,
    load_instance_types,
    serverless_workers,
    to_mb,
    yarn_usage,
)
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


def test_spark_defaults_carry_the_sizing_fitted_to_yarn():
    props = compute_sizing("r5.12xlarge", 19).spark_defaults()
    assert props["spark.executor.cores"] == "5"
    assert props["spark.executor.memory"] == "36g"  # the text's 37g + 5g does not fit: 41 GiB does
    assert props["spark.executor.memoryOverhead"] == "5g"
    assert props["spark.executor.instances"] == "170"
    assert props["spark.default.parallelism"] == "1700"
    assert props["spark.driver.memory"] == "36g"
    assert props["spark.driver.memoryOverhead"] == "5g"
    assert props["spark.driver.cores"] == "5"
    assert props["spark.dynamicAllocation.enabled"] == "false"


def test_r5_12xlarge_the_texts_containers_overflow_yarn_by_two_gib_so_each_shrinks_by_one():
    fit = compute_sizing("r5.12xlarge", 19).yarn
    assert fit.yarn_memory_mb == 385024 and not fit.rule_fits  # 376 GiB; the text asks 9 x 42 = 378
    assert (fit.executors_per_node, fit.container_gb) == (9, 41)
    assert (fit.executor_memory_gb, fit.memory_overhead_gb) == (36, 5)
    assert fit.used_per_node_gb == 369 <= 376
    assert fit.executor_instances == 170  # shrinking, not cutting: every core still works
    assert fit.cuts == ["container 42 GiB -> 41 GiB (heap + overhead): 9 x 42 GiB = 378 GiB "
                        "> YARN's 376 GiB per r5.12xlarge"]


def test_r5_4xlarge_the_configs_cluster_gets_three_40_gib_containers_per_node():
    s = compute_sizing("r5.4xlarge", 2)
    assert (s.executors_per_node, s.total_executor_memory_gb) == (3, 42)  # rule: 126 GiB per node
    fit = s.yarn
    assert fit.yarn_memory_mb == 122880 and not fit.rule_fits
    assert (fit.container_gb, fit.executor_memory_gb, fit.memory_overhead_gb) == (40, 36, 4)
    assert fit.used_per_node_gb == 120 and fit.executor_instances == 5
    check_fit(s.spark_defaults(), 2, fit.yarn_memory_mb)  # driver + 5 executors on 2 nodes: fits


def test_m5_xlarge_one_executor_per_node_shrunk_to_yarns_12_gib():
    s = compute_sizing("m5.xlarge", 3)
    fit = s.yarn
    assert (s.executor_cores, fit.executors_per_node) == (3, 1)
    assert (s.total_executor_memory_gb, fit.container_gb) == (15, 12)
    assert (fit.executor_memory_gb, fit.memory_overhead_gb) == (10, 2)
    assert fit.executor_instances == 2  # 3 slots, one is the driver's
    check_fit(s.spark_defaults(), 3, 12288)


def test_a_fitting_rule_is_left_alone():
    table = {"x.big": {"vcpu": 16, "memory_gib": 64, "yarn_memory_mb": 63 * 1024}}
    fit = compute_sizing("x.big", 2, table).yarn
    assert fit.rule_fits and fit.cuts == [] and fit.container_gb == 21


def test_the_count_is_cut_only_when_a_container_would_drop_under_2_gib():
    table = {"x.tiny": {"vcpu": 16, "memory_gib": 8, "yarn_memory_mb": 5 * 1024}}
    fit = compute_sizing("x.tiny", 4, table).yarn
    assert (fit.executors_per_node, fit.container_gb) == (2, 2)  # 3 x 1 GiB would be too small
    assert fit.executor_instances == 7
    assert fit.cuts[1] == "executors per node 3 -> 2: 3 containers would get 1 GiB each, under 2 GiB"


def test_overrides_that_do_not_fit_are_refused_naming_the_numbers():
    props = compute_sizing("r5.4xlarge", 2).spark_defaults()
    with pytest.raises(ConfigError, match="need 129024 MB, the node offers 122880 MB"):
        check_fit({**props, "spark.executor.memory": "38g"}, 2, 122880)
    with pytest.raises(ConfigError, match="not a Spark memory size"):
        to_mb("lots")
    assert (to_mb("36g"), to_mb("4096m"), to_mb("512"), to_mb("1t")) == (36864, 4096, 512, 1048576)


def test_serverless_workers_follow_the_same_rule_within_the_allowed_sizes():
    w = serverless_workers(compute_sizing("r5.4xlarge", 2))
    assert (w.cpu, w.memory_gb) == (4, 30)  # 5 cores -> 4 vCPU; 4 x 8 GiB = 32 -> the 4 vCPU maximum
    assert (w.executor_memory_gb, w.memory_overhead_gb) == (27, 3)
    assert w.executors == 6  # the 25 executor cores of the EC2 fit, in 4 vCPU workers
    assert w.max_capacity() == {"cpu": "28 vCPU", "memory": "210 GB"}
    assert len(w.cuts) == 2
    small = serverless_workers(compute_sizing("m5.xlarge", 2))
    assert (small.cpu, small.memory_gb, small.executors) == (2, 8, 1)
    for s in (compute_sizing(t, 4) for t in ("r5.12xlarge", "m5.4xlarge", "c5.9xlarge", "c5.xlarge")):
        w = serverless_workers(s)
        low, high, step = WORKER_SIZES[w.cpu]
        assert low <= w.memory_gb <= high and (w.memory_gb - low) % step == 0
        assert w.executor_memory_gb + w.memory_overhead_gb == w.memory_gb


def test_overhead_rounding_is_exact_where_a_float_ceiling_is_not():
    # m5.8xlarge: 32 vCPU -> 6 executors; (128 - 1) // 6 = 21; 21 * 0.9 -> 18, 21 * 0.1 -> 3
    s = compute_sizing("m5.8xlarge", 2)
    assert (s.executors_per_node, s.total_executor_memory_gb) == (6, 21)
    assert (s.executor_memory_gb, s.memory_overhead_gb) == (18, 3)
    # 30 GB total: a float ceiling of 30 * 0.1 gives 4; the rule gives 3
    table = {"x.test": {"vcpu": 6, "memory_gib": 31, "yarn_memory_mb": 30 * 1024}}
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
    assert table["c5.9xlarge"] == {"vcpu": 36, "memory_gib": 72, "yarn_memory_mb": 57344}
    assert all(0 < spec["yarn_memory_mb"] < spec["memory_gib"] * 1024 for spec in table.values())


def test_config_overrides_extend_the_table():
    spec = {"vcpu": 16, "memory_gib": 128, "yarn_memory_mb": 122880}
    table = load_instance_types(overrides={"r6g.4xlarge": spec})
    assert compute_sizing("r6g.4xlarge", 2, table).executor_instances == 5
    with pytest.raises(ConfigError, match="no yarn_memory_mb"):
        compute_sizing("r6g.4xlarge", 2, {"r6g.4xlarge": {"vcpu": 16, "memory_gib": 128}})


def test_unknown_type_and_too_few_nodes_are_config_errors():
    with pytest.raises(ConfigError, match="r9.huge.*emr.instance_types"):
        compute_sizing("r9.huge", 2)
    with pytest.raises(ConfigError, match="no executor"):
        compute_sizing("m5.xlarge", 1)


def test_an_instance_type_without_everything_sizing_needs_is_refused_naming_all_of_it():
    with pytest.raises(ConfigError, match=r"as \{vcpu: \.\.\., memory_gib: \.\.\., yarn_memory_mb: \.\.\.\}"):
        compute_sizing("r9.huge", 2)
    with pytest.raises(ConfigError, match="'r6g.4xlarge' has no vcpu and no yarn_memory_mb; add vcpu, "
                                          "yarn_memory_mb under emr.instance_types.r6g.4xlarge"):
        compute_sizing("r6g.4xlarge", 2, {"r6g.4xlarge": {"memory_gib": 128}})
    with pytest.raises(ConfigError, match="at least one core node, got 0"):
        compute_sizing("r5.4xlarge", 0)


def test_the_fit_of_what_is_sent_is_measured_on_the_busiest_node():
    props = compute_sizing("r5.4xlarge", 2).spark_defaults()  # 5 executors + the driver, 40 GiB each
    use = yarn_usage(props, 2, 122880)
    assert (use.containers, use.container_mb, use.used_mb, use.fits) == (3, 40960, 122880, True)
    assert not yarn_usage({**props, "spark.driver.memory": "37g"}, 2, 122880).fits  # the driver's slot
