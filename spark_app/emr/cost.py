"""What a run costs: instance-hours priced per type and market plus EMR's uplift, DynamoDB read units, and
for EMR Serverless the job run's billed vCPU-, memory- and storage-hours.

Prices come from a dated table (conf/prices.yaml, us-east-1), never from AWS at run time. The hours come
from the cluster itself (ListInstances: every instance's type, market, and creation to end time, fleets
and groups alike) or, for a dry run, from the planned shape: each fleet's target capacity filled with its
first type (the allocation strategy may pick another of similar price), each group's count, for the
given hours. With managed scaling the dry run also prices the ceiling: the maximum capacity as Spot task
nodes for the whole run. `docs/scaling.md` prices its three days with `planned_usage` and `estimate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

from spark_app.config import EmrConfig
from spark_app.errors import ConfigError

DEFAULT_PRICES = Path(__file__).resolve().parents[2] / "conf" / "prices.yaml"
READ_UNITS_PER_KEY = 0.5  # BatchGetItem, eventually consistent, item <= 4 KB (a missing key costs the same)
MIN_BILLED_HOURS = 1 / 60  # EC2 and EMR bill per second, with a one-minute minimum


@dataclass(frozen=True)
class Usage:
    """Hours of one instance type in one market (ON_DEMAND or SPOT), summed over its instances."""

    instance_type: str
    market: str
    hours: float
    instances: int = 1


@dataclass(frozen=True)
class Line:
    what: str
    quantity: float
    unit: str
    unit_price: float

    @property
    def cost(self) -> float:
        return self.quantity * self.unit_price


@dataclass(frozen=True)
class Estimate:
    lines: List[Line]
    as_of: str

    @property
    def total(self) -> float:
        return sum(line.cost for line in self.lines)

    def describe(self) -> Dict[str, Any]:
        return {"total_usd": round(self.total, 2), "prices_as_of": self.as_of,
                "lines": [{"what": x.what, "quantity": round(x.quantity, 4), "unit": x.unit,
                           "unit_price": x.unit_price, "usd": round(x.cost, 4)} for x in self.lines]}


def load_prices(path: Optional[str] = None) -> Dict[str, Any]:
    import yaml

    p = Path(path) if path else DEFAULT_PRICES
    if not p.is_file():
        raise ConfigError(f"{p}: price table not found")
    return yaml.safe_load(p.read_text())


def _instance_prices(prices: Mapping[str, Any], instance_type: str) -> Mapping[str, float]:
    known = prices.get("instances", {})
    if instance_type not in known:
        raise ConfigError(f"{instance_type}: no price in the price table (as of {prices.get('as_of')}); add "
                          f"{{on_demand, emr, spot}} under instances: in conf/prices.yaml")
    return known[instance_type]


def instance_lines(usage: Iterable[Usage], prices: Mapping[str, Any]) -> List[Line]:
    """Per type and market: EC2 at the market's price, and EMR's uplift (the same for Spot)."""
    lines = []
    for u in usage:
        p = _instance_prices(prices, u.instance_type)
        market = "spot" if u.market == "SPOT" else "on_demand"
        label = f"{u.instances} x {u.instance_type} {u.market.lower().replace('_', '-')}"
        lines.append(Line(f"EC2 {label}", u.hours, "instance-hours", float(p[market])))
        lines.append(Line(f"EMR {label}", u.hours, "instance-hours", float(p["emr"])))
    return lines


def dynamodb_line(keys_asked: float, prices: Mapping[str, Any]) -> Line:
    units = keys_asked * READ_UNITS_PER_KEY
    price = float(prices["dynamodb"]["read_unit"])
    return Line(f"DynamoDB {keys_asked:,.0f} keys asked", units, "read units", price)


def estimate(usage: Iterable[Usage], keys_asked: float, prices: Mapping[str, Any]) -> Estimate:
    return Estimate(instance_lines(usage, prices) + [dynamodb_line(keys_asked, prices)], str(prices["as_of"]))


# --------------------------------------------------------------------------- where the hours come from


def _fleet_usage(fleet_types, on_demand: int, spot: int, hours: float, table) -> List[Usage]:
    first = fleet_types[0]
    vcpu = int(table[first]["vcpu"])
    out = []
    for market, units in (("ON_DEMAND", on_demand), ("SPOT", spot)):
        if units:
            n = math.ceil(units / vcpu)
            out.append(Usage(first, market, n * hours, n))
    return out


def planned_usage(emr: EmrConfig, table: Mapping[str, Mapping[str, float]], hours: float,
                  at_maximum: bool = False) -> List[Usage]:
    """The launch's shape for `hours`; `at_maximum`: managed scaling's maximum held the whole time
    (the capacity above the core fleet's as Spot task nodes, on-demand up to its own maximum)."""
    if emr.fleets is not None:
        f = emr.fleets
        usage = [Usage(f.primary[0], "ON_DEMAND", hours)]
        usage += _fleet_usage(f.core.instance_types, f.core.on_demand_vcpu, 0, hours, table)
        if at_maximum and emr.managed_scaling is not None:
            s = emr.managed_scaling
            task_types = f.task.instance_types if f.task else f.core.instance_types
            extra_od = max(0, (s.maximum_on_demand or 0) - f.core.on_demand_vcpu)
            spot = s.maximum - f.core.on_demand_vcpu - extra_od
            return usage + _fleet_usage(task_types, extra_od, spot, hours, table)
        if f.task is not None:
            t = f.task
            usage += _fleet_usage(t.instance_types, t.on_demand_vcpu, t.spot_vcpu, hours, table)
        return usage
    core = emr.core.count
    if at_maximum and emr.managed_scaling is not None:
        s = emr.managed_scaling
        vcpu = int(table[emr.core.instance_type]["vcpu"])
        core = s.maximum if s.unit_type == "Instances" else s.maximum // vcpu
    return [Usage(emr.master.instance_type, emr.master.market, hours),
            Usage(emr.core.instance_type, emr.core.market, core * hours, core)]


def cluster_usage(client: Any, cluster_id: str, now: Optional[datetime] = None) -> List[Usage]:
    """Every instance the cluster had (ListInstances), from creation to end (or `now` while it runs)."""
    now = now or datetime.now(timezone.utc)
    totals: Dict[tuple, List[float]] = {}
    for page in client.get_paginator("list_instances").paginate(ClusterId=cluster_id):
        for inst in page["Instances"]:
            timeline = inst.get("Status", {}).get("Timeline", {})
            start = timeline.get("CreationDateTime")
            if start is None:
                continue
            end = timeline.get("EndDateTime") or now
            hours = max((end - start).total_seconds() / 3600, MIN_BILLED_HOURS)
            key = (inst["InstanceType"], inst.get("Market") or "ON_DEMAND")
            totals.setdefault(key, [0.0, 0])
            totals[key][0] += hours
            totals[key][1] += 1
    return [Usage(t, m, h, int(n)) for (t, m), (h, n) in sorted(totals.items())]


def serverless_lines(job_run: Mapping[str, Any], architecture: str,
                     prices: Mapping[str, Any]) -> List[Line]:
    """GetJobRun's `billedResourceUtilization` (what AWS bills: 1-minute minimum per worker, 20 GB of
    storage free per worker) priced for the application's architecture."""
    billed = job_run.get("billedResourceUtilization")
    if not billed:
        raise ConfigError(f"job run {job_run.get('jobRunId')} has no billedResourceUtilization yet "
                          f"(state {job_run.get('state')}): AWS reports it once the run has ended")
    p = prices["serverless"][architecture]
    return [Line("Serverless vCPU", float(billed.get("vCPUHour", 0)), "vCPU-hours", float(p["vcpu_hour"])),
            Line("Serverless memory", float(billed.get("memoryGBHour", 0)), "GB-hours",
                 float(p["memory_gb_hour"])),
            Line("Serverless storage", float(billed.get("storageGBHour", 0)), "GB-hours",
                 float(p["storage_gb_hour"]))]


def summary_line(client: Any, cluster_id: str, prices: Optional[Mapping[str, Any]] = None,
                 now: Optional[datetime] = None) -> str:
    """The line `launch --wait` / `status --wait` print when a run ends: its cluster's price so far."""
    prices = prices or load_prices()
    try:
        used = cluster_usage(client, cluster_id, now)
        total = Estimate(instance_lines(used, prices), str(prices["as_of"])).total
    except ConfigError as exc:
        return f"cost: not estimated ({exc})"
    hours = sum(u.hours for u in used)
    return (f"cost: about ${total:.2f} for {hours:.2f} instance-hours of cluster {cluster_id} so far "
            f"(EC2 and EMR, prices as of {prices['as_of']}; with DynamoDB: deploy.py cost --keys-asked N)")


# --------------------------------------------------------------------------- deploy.py cost


def cli(args: Any, cfg: Any, table: Mapping[str, Mapping[str, float]], target: str,
        ids: Callable[[str, str], tuple], dump: Callable[[Any], None]) -> int:
    """`deploy.py cost`: the planned day (--dry-run), a cluster's instance-hours, or a Serverless job run's
    billed hours; DynamoDB from --keys-asked (the run's summary counts them)."""
    from spark_app.emr import launch, serverless

    emr, prices = launch.emr_section(cfg), load_prices(args.prices)
    db = [dynamodb_line(args.keys_asked, prices)]
    if target == "serverless":
        sls = serverless.serverless_section(cfg)
        app_id, run_id = ids("application_id", "job_run_id")
        if args.dry_run:
            dump({"get_job_run": {"applicationId": app_id, "jobRunId": run_id}})
            return 0
        run = serverless.client(cfg).get_job_run(applicationId=app_id, jobRunId=run_id)["jobRun"]
        found = Estimate(serverless_lines(run, sls.architecture, prices) + db, str(prices["as_of"]))
        dump({"job_run": run_id, **found.describe()})
        return 0
    if args.dry_run:  # the planned shape, for --hours
        report = {"shape": "planned", "hours": args.hours,
                  **estimate(planned_usage(emr, table, args.hours), args.keys_asked, prices).describe()}
        if emr.managed_scaling is not None:
            top = planned_usage(emr, table, args.hours, at_maximum=True)
            ceiling = estimate(top, args.keys_asked, prices)
            report["at_maximum_usd"] = round(ceiling.total, 2)
        dump(report)
        return 0
    cluster_id, _ = ids("cluster_id", "step_id")
    used = cluster_usage(launch.emr_client(emr), cluster_id)
    found = Estimate(instance_lines(used, prices) + db, str(prices["as_of"]))
    dump({"cluster": cluster_id, **found.describe()})
    return 0
