"""CloudWatch run metrics: one PutMetricData call per day run, read from the run's own stats.

The values come from what the run already keeps (`Progress.as_stats()`, the dict stored in
`pipeline_runs.stats`): the stages' seconds, the counts, the quality stage's passed and failed
constraints, and the match rate and advertisers in trouble that `spark_app.ops.outputs` adds
after a publish. Every metric has one dimension, `Pipeline`; nothing is per advertiser. A value
the run never reached (a day that failed in extract has no detail rows) is left out, the exit
code never is. A failure to put them is a warning: the day's result stands.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from spark_app.config import Config

log = logging.getLogger(__name__)

STAGE_SUFFIX = "Seconds"  # extract -> ExtractSeconds


def metric_data(pipeline: str, stats: Dict[str, Any], exit_code: int,
                at: Optional[datetime] = None) -> List[Dict[str, Any]]:
    """The MetricData of one run: every known value, dimension Pipeline=<pipeline>."""
    stages = stats.get("stages") or {}
    counts = stats.get("counts") or {}
    values: List[tuple] = [(f"{name.title().replace('_', '')}{STAGE_SUFFIX}", s.get("seconds"), "Seconds")
                           for name, s in stages.items()]
    values.append(("RunSeconds", stats.get("total_seconds"), "Seconds"))
    lines = counts.get("lines_read", counts.get("presto_rows"))
    values.append(("LinesRead", lines, "Count"))
    rejected = counts.get("rejected")
    values.append(("RejectedShare", rejected / lines if lines and rejected is not None else None, "None"))
    detail = (stages.get("enrich") or {}).get("rows")
    values.append(("DetailRows", detail, "Count"))
    values.append(("MatchRate", stats.get("match_rate"), "None"))
    values.append(("AdvertisersInTrouble", counts.get("advertisers_in_trouble"), "Count"))
    quality = stages.get("quality") or {}
    if "passed" in quality:
        values.append(("QualityConstraintsPassed", quality["passed"], "Count"))
        failed = quality.get("warnings", 0) + quality.get("errors", 0)
        values.append(("QualityConstraintsFailed", failed, "Count"))
    values.append(("ExitCode", exit_code, "None"))
    stamp = at or datetime.now(timezone.utc)
    dims = [{"Name": "Pipeline", "Value": pipeline}]
    return [{"MetricName": name, "Dimensions": dims, "Timestamp": stamp, "Value": float(value), "Unit": unit}
            for name, value, unit in values if value is not None]


def put_run_metrics(cfg: Config, pipeline: str, stats: Dict[str, Any], exit_code: int,
                    client: Any = None) -> Optional[str]:
    """Put the run's metrics in one call when `metrics:` is configured and enabled.

    Returns where they went ("<n> metrics to CloudWatch namespace <ns> ..."), or None when not
    configured or when the call failed (then a warning says why; the run's exit code is unchanged).
    """
    m = cfg.metrics
    if m is None or not m.enabled:
        return None
    data = metric_data(pipeline, stats, exit_code)
    try:
        if client is None:
            from spark_app.ops.aws import cloudwatch

            client = cloudwatch(cfg)
        client.put_metric_data(Namespace=m.namespace, MetricData=data)
    except Exception as exc:  # noqa: BLE001 - any failure here must leave the day as it is
        from spark_app.ops.aws import error_text

        log.warning("run metrics not put to CloudWatch (namespace %s): %s; the run's result is unchanged",
                    m.namespace, error_text(exc))
        return None
    where = f" at {m.endpoint_url}" if m.endpoint_url else ""
    said = f"{len(data)} metrics to CloudWatch namespace {m.namespace}{where} (dimension Pipeline={pipeline})"
    log.info("run metrics: %s", said)
    return said


def read_back(client: Any, namespace: str, pipeline: str, names: List[str], start: datetime,
              end: datetime, stat: str = "Maximum") -> Dict[str, List[float]]:
    """GetMetricData of `names` (dimension Pipeline) per minute between start and end: name -> values."""
    dims = [{"Name": "Pipeline", "Value": pipeline}]
    queries = [{"Id": f"m{i}", "Label": name, "MetricStat": {
        "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dims},
        "Period": 60, "Stat": stat}} for i, name in enumerate(names)]
    got = client.get_metric_data(MetricDataQueries=queries, StartTime=start, EndTime=end)["MetricDataResults"]
    by_id = {r["Id"]: list(r["Values"]) for r in got}
    return {name: by_id.get(f"m{i}", []) for i, name in enumerate(names)}
