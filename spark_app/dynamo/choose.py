"""Driver side: which way the day's keys are matched against the catalog, and running that way.

`enrich_day` is what the pipeline calls. `dynamodb.lookup: batch_get` is the BatchGetItem path
(`spark_app.dynamo.enrich`), `export` the export path (`spark_app.dynamo.export_join`) with no
fall-back, and `auto` (the default) decides with `estimate`, the cost model of docs/scaling.md:

- batch_get: 0.5 read unit per distinct key K at `price_per_million_reads`; K keys at the
  table's throughput (2 keys per provisioned read unit per second, or `keys_per_second` when the
  table is on-demand);
- export: the table's size at `price_per_gb_exported` and `export_wait_minutes`, or nothing of
  either when a completed export under `s3_prefix` is recent enough to reuse; plus reading its
  items at `export_items_per_second`.

The export is chosen when it costs no more *and* takes no longer; `auto` without
`dynamodb.export` is batch_get. When `auto` chose the export and it cannot be had (point-in-time
recovery off, bucket missing, export FAILED, wait past the bound), the day falls back to
batch_get and the run's summary says so. The stage's detail (kept in `pipeline_runs.stats`)
holds the way, K, the table's size and both estimates.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional

from spark_app.config import Config, DynamoConfig
from spark_app.config_dynamo import AutoConfig
from spark_app.errors import LookupFailed

log = logging.getLogger(__name__)

__all__ = ["Estimate", "enrich_day", "estimate"]

GB = 2**30  # DynamoDB bills exports per GB of 2**30 bytes
DISTINCT_KEYS_COUNT = "viewed_products"  # the run's count of the day's distinct keys (one row per key)


@dataclass(frozen=True)
class Estimate:
    keys: int  # K: the day's distinct keys
    table_items: int
    table_bytes: int
    keys_per_second: float
    batch_get_dollars: float
    batch_get_minutes: float
    export_dollars: float
    export_minutes: float
    export_reusable: bool
    choice: str  # "batch_get" or "export"

    def summary(self) -> str:
        return (
            f"dynamodb lookup: auto chose {self.choice} for K={self.keys:,} keys against "
            f"{self.table_items:,} items ({self.table_bytes / GB:.3g} GB): batch_get "
            f"${self.batch_get_dollars:.4g}, {self.batch_get_minutes:.3g} min; export "
            f"{'(reusable) ' if self.export_reusable else ''}${self.export_dollars:.4g}, "
            f"{self.export_minutes:.3g} min"
        )


def estimate(keys: int, table: Dict[str, Any], auto: AutoConfig, export_reusable: bool = False) -> Estimate:
    """The two ways' price and time for K keys against a table (a DescribeTable `Table`)."""
    items = int(table.get("ItemCount") or 0)
    size = int(table.get("TableSizeBytes") or 0)
    rcu = int((table.get("ProvisionedThroughput") or {}).get("ReadCapacityUnits") or 0)
    on_demand = (table.get("BillingModeSummary") or {}).get("BillingMode") == "PAY_PER_REQUEST"
    keys_per_second = auto.keys_per_second if on_demand or rcu <= 0 else 2.0 * rcu
    batch_dollars = keys * 0.5 * auto.price_per_million_reads / 1e6
    batch_minutes = keys / keys_per_second / 60
    export_dollars = 0.0 if export_reusable else size / GB * auto.price_per_gb_exported
    wait = 0.0 if export_reusable else auto.export_wait_minutes
    export_minutes = wait + items / auto.export_items_per_second / 60
    cheaper = export_dollars <= batch_dollars and export_minutes <= batch_minutes
    return Estimate(
        keys=keys,
        table_items=items,
        table_bytes=size,
        keys_per_second=keys_per_second,
        batch_get_dollars=batch_dollars,
        batch_get_minutes=batch_minutes,
        export_dollars=export_dollars,
        export_minutes=export_minutes,
        export_reusable=export_reusable,
        choice="export" if keys > 0 and cheaper else "batch_get",
    )


def enrich_day(
    df: Any,
    cfg: Config,
    counters: Any = None,
    distinct_keys: Optional[int] = None,
    progress: Any = None,
    stage: Any = None,
) -> Any:
    """`df` plus `matched` by the configured (or chosen) way; lazy, so persist the result.

    `distinct_keys` is K, the day's distinct keys (counted before the lookup; by default the
    run's `viewed_products` count in `progress.counts`); `progress` (`add_note`) and `stage`
    (`detail`) receive what was chosen and why.
    """
    from spark_app.dynamo.enrich import enrich_with_catalog

    if distinct_keys is None and progress is not None:
        distinct_keys = progress.counts.get(DISTINCT_KEYS_COUNT)
    dyn = cfg.dynamodb
    detail: Dict[str, Any] = {"lookup": dyn.lookup}
    notes = []
    way = dyn.lookup
    handle = None
    if way == "auto":
        way, handle, reason = _decide(dyn, cfg, distinct_keys, detail)
        detail["lookup"] = way
        if reason:
            notes.append((reason, False))  # what auto chose and why: information, not a warning
    enriched = None
    if way == "export":
        from spark_app.dynamo.export_join import enrich_from_export

        try:
            enriched, info = enrich_from_export(df, dyn, cfg.s3, distinct_keys, handle)
            detail.update(info)
        except LookupFailed as exc:
            if dyn.lookup == "export":
                raise
            detail["lookup"] = "batch_get"
            detail["export_failed"] = str(exc)
            fell_back = f"dynamodb lookup: the export could not be had, fell back to batch_get: {exc}"
            notes.append((fell_back, True))
    if enriched is None:
        enriched = enrich_with_catalog(df, dyn, counters)
    for note, warn in notes:
        if progress is not None:
            progress.add_note(note, warn=warn)
        else:
            log.log(logging.WARNING if warn else logging.INFO, "%s", note)
    if stage is not None:
        stage.detail.update({k: v for k, v in detail.items() if k != "export_note"})
    log.info("dynamodb lookup: %s", detail)
    return enriched


def _decide(dyn: DynamoConfig, cfg: Config, distinct_keys: Optional[int], detail: Dict[str, Any]):
    """(way, reusable export or None, note or None) for `lookup: auto`."""
    from spark_app.dynamo.export import describe_table, dynamodb_control_client, find_recent_export
    from spark_app.events.files import s3_client

    if dyn.export is None:
        detail["lookup_reason"] = "dynamodb.export not set"
        return "batch_get", None, None
    if distinct_keys is None:
        detail["lookup_reason"] = "the day's distinct keys were not counted"
        return "batch_get", None, None
    try:
        ddb = dynamodb_control_client(dyn)
        table = describe_table(ddb, dyn.table)
        handle = find_recent_export(ddb, s3_client(cfg.s3), dyn.table, table["TableArn"], dyn.export)
    except LookupFailed as exc:
        detail["lookup_reason"] = f"no estimate: {exc}"
        return "batch_get", None, f"dynamodb lookup: auto could not estimate, used batch_get: {exc}"
    est = estimate(distinct_keys, table, dyn.auto, export_reusable=handle is not None)
    detail.update({k: _round(v) for k, v in asdict(est).items() if k != "choice"})
    return est.choice, handle, est.summary()


def _round(v: Any) -> Any:
    return round(v, 6) if isinstance(v, float) else v
