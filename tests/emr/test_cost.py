"""What a run costs: the planned day, a cluster's instance-hours (ListInstances on moto), a Serverless run.

Prices are conf/prices.yaml's; each expected figure is worked out here from the table, line by line.
moto's EMR creates instances for instance groups only (none for fleets), and its EMR Serverless job
runs never run, so they bill zero hours: the priced Serverless case is a GetJobRun answer shaped as AWS
documents it (a stand-in for what moto cannot produce); moto's own answer is read as it comes.
"""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest

import deploy
from spark_app.config import config_from_mapping, load_config
from spark_app.emr import cost
from spark_app.emr.launch import emr_client, job_arguments, launch, run_job_flow_request
from spark_app.emr.sizing import load_instance_types
from spark_app.errors import ConfigError
from tests.support.paths import ROOT

TABLE = load_instance_types()
PRICES = cost.load_prices()
OLD_SHAPE = {"master": {"instance_type": "m5.xlarge"}, "core": {"instance_type": "r5.4xlarge", "count": 2}}


def _cfg(endpoint_url=None, **emr):
    return config_from_mapping({
        "events": {"path": "s3://ev/events"},
        "dynamodb": {"table": "catalog", "region": "us-east-1"},
        "postgres": {"url": "postgresql://etl@db:5432/catalog", "password_secret": "prod/pg"},
        "emr": {"bucket": "art-bkt", "prefix": "cmr", "endpoint_url": endpoint_url, **emr},
    })


def _price(instance_type, market="on_demand"):
    p = PRICES["instances"][instance_type]
    return p[market] + p["emr"]


def test_the_price_table_is_dated_and_for_us_east_1():
    assert PRICES["region"] == "us-east-1" and PRICES["as_of"]
    assert PRICES["dynamodb"]["read_unit"] * 1e6 == pytest.approx(0.125)


def test_a_planned_day_on_instance_groups_prices_every_node_for_the_hours():
    day = cost.estimate(cost.planned_usage(_cfg(**OLD_SHAPE).emr, TABLE, 1.5), 400_000, PRICES)
    expected = 1.5 * (_price("m5.xlarge") + 2 * _price("r5.4xlarge")) + 200_000 * 0.125e-6
    assert day.total == pytest.approx(expected)
    assert [line.what for line in day.lines] == [
        "EC2 1 x m5.xlarge on-demand", "EMR 1 x m5.xlarge on-demand",
        "EC2 2 x r5.4xlarge on-demand", "EMR 2 x r5.4xlarge on-demand", "DynamoDB 400,000 keys asked"]


def test_the_configs_graviton_fleets_with_spot_cost_less_than_the_old_groups_for_the_same_vcpus():
    new = load_config(ROOT / "conf" / "emr.yaml").emr
    planned = cost.estimate(cost.planned_usage(new, TABLE, 1.0), 0, PRICES)
    # primary on-demand; 16 core vCPU on-demand and 16 task vCPU on Spot, each filled with an r7g.4xlarge
    assert planned.total == pytest.approx(
        _price("m7g.xlarge") + _price("r7g.4xlarge") + _price("r7g.4xlarge", "spot"))
    old = cost.estimate(cost.planned_usage(_cfg(**OLD_SHAPE).emr, TABLE, 1.0), 0, PRICES)
    assert planned.total < 0.7 * old.total
    ceiling = cost.estimate(cost.planned_usage(new, TABLE, 1.0, at_maximum=True), 0, PRICES)
    # managed scaling's maximum, 96 vCPU: the 16 core on-demand plus 80 vCPU of Spot task nodes
    assert ceiling.total == pytest.approx(
        _price("m7g.xlarge") + _price("r7g.4xlarge") + 5 * _price("r7g.4xlarge", "spot"))


def test_deploy_cost_dry_run_prints_the_estimate_for_a_day(capsys):
    assert deploy.main(["cost", "--dry-run", "--conf", str(ROOT / "conf" / "emr.yaml")]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["shape"] == "planned" and got["hours"] == 1.0 and got["prices_as_of"] == PRICES["as_of"]
    assert got["total_usd"] == round(sum(line["usd"] for line in got["lines"]), 2)
    assert got["at_maximum_usd"] > got["total_usd"]


def test_a_type_without_a_price_is_named():
    usage = [cost.Usage("x9.huge", "ON_DEMAND", 1.0)]
    with pytest.raises(ConfigError, match="x9.huge: no price in the price table"):
        cost.instance_lines(usage, PRICES)


def _old_shape_cluster(moto_server):
    """(client, cluster id, its first instance) of a cluster launched in moto with the old groups."""
    cfg = _cfg(endpoint_url=moto_server.endpoint_url, **OLD_SHAPE)
    client = emr_client(cfg.emr)
    args = job_arguments("catalog_match_rate", "emr.yaml", date="2026-11-19")
    cluster = launch(client, run_job_flow_request(cfg, "v1", args, "emr.yaml", TABLE, label="d")).cluster_id
    return client, cluster, client.list_instances(ClusterId=cluster)["Instances"][0]


def test_a_clusters_instance_hours_come_from_list_instances(moto_server):
    client, cluster, first = _old_shape_cluster(moto_server)
    created = first["Status"]["Timeline"]["CreationDateTime"]
    used = cost.cluster_usage(client, cluster, now=created + timedelta(minutes=90))  # still running
    assert [(u.instance_type, u.market, u.instances, u.hours) for u in used] == [
        ("m5.xlarge", "ON_DEMAND", 1, 1.5), ("r5.4xlarge", "ON_DEMAND", 2, 3.0)]
    priced = cost.Estimate(cost.instance_lines(used, PRICES), PRICES["as_of"])
    assert priced.total == pytest.approx(1.5 * (_price("m5.xlarge") + 2 * _price("r5.4xlarge")))


def test_a_followed_run_ends_with_its_clusters_price_so_far(moto_server):
    client, cluster, first = _old_shape_cluster(moto_server)
    now = first["Status"]["Timeline"]["CreationDateTime"] + timedelta(hours=1)
    total = _price("m5.xlarge") + 2 * _price("r5.4xlarge")
    assert cost.summary_line(client, cluster, PRICES, now) == (
        f"cost: about ${total:.2f} for 3.00 instance-hours of cluster {cluster} so far (EC2 and EMR, prices "
        f"as of {PRICES['as_of']}; with DynamoDB: deploy.py cost --keys-asked N)")
    unknown = {**PRICES, "instances": {}}
    line = cost.summary_line(client, cluster, unknown, now)
    assert line.startswith("cost: not estimated (m5.xlarge: no price")


def test_a_serverless_run_is_priced_from_its_billed_hours_for_its_architecture():
    # GetJobRun's answer as AWS documents it (moto's runs bill nothing: they never run)
    run = {"jobRunId": "00r", "state": "SUCCESS",
           "billedResourceUtilization": {"vCPUHour": 8.0, "memoryGBHour": 40.0, "storageGBHour": 10.0}}
    for arch in ("X86_64", "ARM64"):
        p = PRICES["serverless"][arch]
        lines = cost.serverless_lines(run, arch, PRICES)
        assert sum(x.cost for x in lines) == pytest.approx(
            8 * p["vcpu_hour"] + 40 * p["memory_gb_hour"] + 10 * p["storage_gb_hour"])
    arm, x86 = (sum(x.cost for x in cost.serverless_lines(run, a, PRICES)) for a in ("ARM64", "X86_64"))
    assert arm < x86


def test_a_serverless_job_runs_billed_hours_are_read_from_get_job_run(moto_server):
    sls = boto3.client("emr-serverless", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    app = sls.create_application(name="cost-test", releaseLabel="emr-7.5.0", type="SPARK")["applicationId"]
    run_id = sls.start_job_run(applicationId=app, executionRoleArn="arn:aws:iam::123456789012:role/r",
                               jobDriver={"sparkSubmit": {"entryPoint": "s3://b/p.py"}})["jobRunId"]
    run = sls.get_job_run(applicationId=app, jobRunId=run_id)["jobRun"]
    lines = cost.serverless_lines(run, "ARM64", PRICES)  # moto bills a run that never ran nothing
    assert [(x.what, x.quantity) for x in lines] == [
        ("Serverless vCPU", 0.0), ("Serverless memory", 0.0), ("Serverless storage", 0.0)]
    with pytest.raises(ConfigError, match="has no billedResourceUtilization yet"):
        cost.serverless_lines({"jobRunId": run_id, "state": "RUNNING"}, "ARM64", PRICES)


def test_docs_scaling_prices_its_three_days_with_these_functions():
    import re

    doc = (ROOT / "docs" / "scaling.md").read_text()
    lines = [ln for ln in doc.splitlines() if ln.startswith("| ")]
    rows = {ln.split("|")[1].strip(): [float(x) for x in re.findall(r"\$([\d.]+)", ln)] for ln in lines}
    groups, graviton, dynamo = [], [], []
    for nodes, hours, keys in ((2, 0.25, 400_000), (8, 0.33, 16_000_000), (40, 0.75, 80_000_000)):
        old = _cfg(master={"instance_type": "m5.xlarge"},
                   core={"instance_type": "r5.4xlarge", "count": nodes})
        core = max(1, nodes // 4)  # a quarter of the nodes on-demand core, the rest Spot task nodes
        types = ["r7g.4xlarge", "r6g.4xlarge"]
        new = _cfg(fleets={"primary": ["m7g.xlarge"],
                           "core": {"instance_types": types, "on_demand_vcpu": 16 * core},
                           "task": {"instance_types": types, "spot_vcpu": 16 * (nodes - core)}})
        day = [cost.estimate(cost.planned_usage(c.emr, TABLE, hours), keys, PRICES) for c in (old, new)]
        groups.append(round(day[0].total, 2))
        graviton.append(round(day[1].total, 2))
        dynamo.append(round(day[0].lines[-1].cost, 2))
    assert rows["r5.4xlarge on-demand groups (m5.xlarge primary)"] == groups
    assert rows["Graviton fleets, Spot task nodes"] == graviton
    assert rows["of which DynamoDB"] == dynamo
