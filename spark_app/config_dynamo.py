"""The `dynamodb:` section of the configuration: the catalog table, how it is read, and its checks.

Kept apart from `spark_app.config` (which re-exports `DynamoConfig` and `FaultConfig`) so the
section, its export and `auto` settings and their validation read as one piece.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from spark_app.errors import ConfigError
from spark_app.s3_uri import is_s3_uri


@dataclass(frozen=True)
class FaultConfig:
    """Fault injection for the DynamoDB client (tests and game days); all off by default."""

    unprocessed_share: float = 0.0  # share of each response's keys returned as UnprocessedKeys
    throttle_first: int = 0  # the first N requests of each client answer ThrottlingException
    throttle_all: bool = False  # every request answers ProvisionedThroughputExceededException


@dataclass(frozen=True)
class ExportConfig:
    """Reading the catalog from a DynamoDB export to S3 (`lookup: export`, or `auto`'s choice)."""

    s3_prefix: str  # s3://bucket/prefix: where exports are looked for and new ones written
    max_age_hours: float = 24.0  # an older completed export is not used; a new one is requested
    format: Literal["DYNAMODB_JSON"] = "DYNAMODB_JSON"  # ION is not read
    wait_minutes: float = 60.0  # longest wait for a requested export to complete
    broadcast_max_keys: int = 2_000_000  # the smaller side of the join is broadcast up to this many keys


@dataclass(frozen=True)
class AutoConfig:
    """The cost model `lookup: auto` decides with (docs/dynamodb.md "Choosing the way")."""

    price_per_million_reads: float = 0.125  # on-demand $ per million read units (0.5 per key)
    price_per_gb_exported: float = 0.10  # $ per GB of table exported (full export)
    keys_per_second: float = 24_000.0  # BatchGetItem keys/s when the table is on-demand
    export_wait_minutes: float = 15.0  # expected wait for a new full export
    export_items_per_second: float = 1_000_000.0  # export items the cluster reads and joins per second


@dataclass(frozen=True)
class DynamoConfig:
    table: str
    region: str
    endpoint_url: Optional[str] = None  # None: the AWS endpoint of the region
    threads: int = 16  # requests in flight per partition
    max_pool_connections: int = 32
    retry_mode: Literal["legacy", "standard", "adaptive"] = "standard"
    max_attempts: int = 5  # botocore attempts per request
    max_unprocessed_retries: int = 12  # rounds of UnprocessedKeys / throttle retries per batch
    backoff_base_seconds: float = 0.05
    backoff_max_seconds: float = 5.0
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 10.0
    faults: Optional[FaultConfig] = None
    lookup: Literal["auto", "batch_get", "export"] = "auto"  # auto: the cheaper of the two by cost
    export: Optional[ExportConfig] = None  # required by lookup: export; auto without it is batch_get
    auto: AutoConfig = field(default_factory=AutoConfig)


def check_dynamodb(cfg: DynamoConfig, source: str) -> None:
    """The checks of the section that one key's type cannot express; ConfigError naming the key."""
    if cfg.lookup == "export" and cfg.export is None:
        raise ConfigError(f"{source}: dynamodb.export: required when dynamodb.lookup is 'export'")
    ex = cfg.export
    if ex is not None:
        if not is_s3_uri(ex.s3_prefix) or not ex.s3_prefix.split("://", 1)[1].split("/")[0]:
            got = ex.s3_prefix
            raise ConfigError(f"{source}: dynamodb.export.s3_prefix: want s3://bucket[/prefix], got {got!r}")
        for key in ("max_age_hours", "wait_minutes"):
            if getattr(ex, key) < 0:
                raise ConfigError(f"{source}: dynamodb.export.{key}: must not be negative")
        if ex.broadcast_max_keys < 0:
            raise ConfigError(f"{source}: dynamodb.export.broadcast_max_keys: must not be negative")
    positive = ("price_per_million_reads", "price_per_gb_exported", "keys_per_second")
    positive += ("export_items_per_second",)
    for key in positive:
        if getattr(cfg.auto, key) <= 0:
            raise ConfigError(f"{source}: dynamodb.auto.{key}: must be positive")
    if cfg.auto.export_wait_minutes < 0:
        raise ConfigError(f"{source}: dynamodb.auto.export_wait_minutes: must not be negative")
