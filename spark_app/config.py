"""Typed configuration, loaded from YAML and validated before Spark starts.

Every section is a frozen dataclass. `load_config` walks the YAML mapping against the
dataclass fields and raises `ConfigError` naming the file and the dotted key of the first
problem: an unknown key, a missing required key, a value of the wrong type or outside its
allowed set. Secrets are never read from the file: a PostgreSQL URL that carries a password
is refused, the password comes from an environment variable or AWS Secrets Manager.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Tuple

from spark_app.alerts_config import AlertsConfig, check_alerts
from spark_app.cluster_config import FleetsConfig, ManagedScalingConfig, check_cluster
from spark_app.config_dynamo import DynamoConfig, FaultConfig, check_dynamodb  # noqa: F401 (re-exported)
from spark_app.config_secrets import check_no_literal_secrets, check_postgres_url
from spark_app.errors import ConfigError
from spark_app.names import is_plain_identifier
from spark_app.ops_config import MetricsConfig, check_ops
from spark_app.typed_yaml import build_typed

# --------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class SparkConfig:
    master: Optional[str] = None  # spark-submit's --master wins when given
    app_name: str = "catalog-match-rate"
    conf: Dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EventsConfig:
    path: str  # root holding dt=YYYY-MM-DD/ folders: a local path or s3://bucket/prefix
    format: Literal["json", "parquet"] = "json"
    quarantine_path: Optional[str] = None  # default: <path>/_quarantine
    quarantine_expire_days: int = 30  # the S3 lifecycle rule `deploy.py quarantine-expiry` sets
    min_files: int = 1  # a day folder with fewer data files is incomplete
    require_success_marker: bool = False  # a day folder must hold _SUCCESS
    max_bad_share: float = 0.05  # share of bad input (lines or bytes) that fails the day
    event_types: Tuple[str, ...] = ("product_view", "add_to_cart", "purchase", "search", "page_view")
    max_future_minutes: int = 60  # a ts later than now + this is rejected as "future"
    bucket_mb: int = 16  # input bytes per dedup bucket: bounds a reducer's memory whatever the day's size


@dataclass(frozen=True)
class S3Config:
    """Where S3 is, when it is not AWS's own (a local emulator); unset on EMR.

    Local sessions map it to Spark's S3A settings (spark_app.session.s3a_conf) and the job's
    boto3 clients for S3 use the same endpoint (spark_app.events.files.s3_client).
    """

    endpoint_url: Optional[str] = None  # http(s)://host:port; None: AWS's endpoints
    path_style_access: bool = False  # http://host/bucket/key instead of http://bucket.host/key


@dataclass(frozen=True)
class PrestoConfig:
    host: str
    port: int = 443
    http_scheme: Literal["https", "http"] = "https"
    user: str = "catalog-match-rate"
    password_env: Optional[str] = None  # name of the environment variable holding the password
    jwt_env: Optional[str] = None  # name of the environment variable holding a JWT
    catalog: str = "hive"
    schema: str = "default"
    table: str = "events"
    mode: Literal["driver", "parallel"] = "driver"
    partitions: Optional[int] = None  # default: executors x 4
    buckets: int = 16  # parallel mode: disjoint hash buckets run from the executors
    page_size: int = 10000
    request_timeout_seconds: float = 300.0
    verify_tls: bool = True
    # Transient answers (NO_NODES_AVAILABLE, SERVER_STARTING_UP, HTTP 502/503/504, connection
    # refused): tries of a query in all, first pause, longest pause (doubling); about 3 min in all.
    retry_attempts: int = 8
    retry_backoff_seconds: float = 2.0
    retry_max_backoff_seconds: float = 60.0
    # Where the result is staged as Parquet for the executors; required on a cluster
    # (s3://bucket/prefix or hdfs:///path); default on a local master: a temp dir.
    staging_dir: Optional[str] = None


@dataclass(frozen=True)
class PostgresConfig:
    url: str  # SQLAlchemy URL without password, e.g. postgresql://etl@host:5432/db?sslmode=require
    password_env: str = "PGPASSWORD"
    password_secret: Optional[str] = None  # AWS Secrets Manager secret id (JSON with "password", or plain)
    secret_region: Optional[str] = None
    schema: str = "public"
    copy_batch_rows: int = 10000  # rows per Arrow batch streamed into COPY
    lock_timeout_seconds: float = 2.0  # publish: longest wait for a lock per attempt (readers wait as long)
    publish_attempts: int = 5  # publish attempts when a lock is not granted in time
    publish_backoff_seconds: float = 1.0  # pause after the first such attempt, doubling after each
    client_check_seconds: int = 5  # server checks a session's client is alive (0: off, servers < 14)
    # product_views partitions of days older than this (counted back from the newest stored day)
    # are dropped after each publish and by `process_data.py prune`; at least MAX_REPORT_DAYS
    retention_days: int = 400


MAX_REPORT_DAYS = 366  # the longest window a report reads; retention keeps at least this much


@dataclass(frozen=True)
class ReportConfig:
    """The catalog health report (`process_data.py report`): who is in trouble, how much to show."""

    days: int = 28  # default window, ending on the report's day
    min_match_rate: float = 0.6  # below this on the day: in trouble
    max_drop_points: float = 10.0  # this many points below the advertiser's trailing median: in trouble
    top_advertisers: int = 20  # advertisers in trouble shown (and written by --csv)
    top_products: int = 20  # products to add shown per advertiser
    s3_prefix: Optional[str] = None  # after each publish: the report and its CSVs under s3://bucket/prefix
    link_hours: int = 72  # how long the presigned link in the trouble summary is valid
    topic_arn: Optional[str] = None  # the catalog team's SNS topic for the summary; default: the alert topic


@dataclass(frozen=True)
class CheckConfig:
    """One Deequ-style constraint; `check` is Deequ's name (isComplete, hasSize, ...)."""

    check: str
    level: Literal["Error", "Warning"] = "Error"
    column: Optional[str] = None
    columns: Tuple[str, ...] = ()
    min: Optional[float] = None
    max: Optional[float] = None
    values: Tuple[str, ...] = ()
    predicate: Optional[str] = None  # satisfies: a SQL predicate
    name: Optional[str] = None


@dataclass(frozen=True)
class AnomalyConfig:
    metric: str  # Deequ metric name: Size, Sum, Completeness, ...
    table: str
    column: Optional[str] = None
    max_relative_change: float = 0.5
    days: int = 7
    level: Literal["Error", "Warning"] = "Warning"


@dataclass(frozen=True)
class ShrinkConfig:
    """The guard against a day far smaller than its history or than the published day it replaces."""

    max_drop: float = 0.5  # rows or total views below (1 - max_drop) x the reference fail the day
    history_days: int = 14  # trailing window of stored metrics whose median is the reference
    min_history: int = 3  # fewer stored days: the history comparison passes with a note
    allow: bool = False  # an operator publishes a genuinely small day (also --allow-shrink)


@dataclass(frozen=True)
class QualityConfig:
    engine: Literal["auto", "deequ", "native"] = "auto"
    deequ_jar: Optional[str] = None
    checks: Dict[str, List[CheckConfig]] = field(default_factory=dict)  # table -> checks
    anomalies: List[AnomalyConfig] = field(default_factory=list)
    shrink: ShrinkConfig = field(default_factory=ShrinkConfig)


@dataclass(frozen=True)
class LocalPostgresConfig:
    port: int = 54329
    data_dir: str = ".local/pg"
    database: str = "catalog"


@dataclass(frozen=True)
class SampleConfig:
    events: int = 200_000
    advertisers: int = 20
    products_per_advertiser: int = 1000
    catalog_share: float = 0.8
    seed: int = 7
    days: int = 4  # `make run` generates and runs this many days ending on its day (for the report)
    drop_advertisers: int = 2  # advertisers whose match rate drops over the last days (see SampleSpec)
    drop_share: float = 0.4


@dataclass(frozen=True)
class LocalServicesConfig:
    """Embedded servers for `make run`; only conf/local.yaml has this section."""

    dynamodb_port: int = 54330  # moto's port: it serves DynamoDB and S3
    sample_dir: str = ".local/sample-events"  # the generated day, uploaded when events.path is s3://
    postgres: LocalPostgresConfig = field(default_factory=LocalPostgresConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)


@dataclass(frozen=True)
class InstanceGroupConfig:
    instance_type: str
    count: int = 1
    market: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"


@dataclass(frozen=True)
class ScheduleConfig:
    cron: str = "cron(0 6 * * ? *)"  # EventBridge: 06:00 UTC daily, runs yesterday
    function_name: str = "catalog-match-rate-launcher"
    rule_name: str = "catalog-match-rate-daily"
    lambda_role_arn: Optional[str] = None
    pipeline: str = "catalog_match_rate"  # what the scheduled launch runs
    lambda_runtime: str = "python3.12"
    target: Literal["ec2", "serverless"] = "ec2"  # a transient EMR cluster, or a job run on EMR Serverless


@dataclass(frozen=True)
class ServerlessConfig:
    """EMR Serverless: the application (created or reused by name) and the role its job runs take."""

    execution_role_arn: str
    application_name: str = "catalog-match-rate"
    release_label: Optional[str] = None  # default: emr.release_label
    architecture: Literal["X86_64", "ARM64"] = "X86_64"  # ARM64 (Graviton) takes the aarch64 deps archive
    idle_timeout_minutes: int = 15  # auto-stop of the application
    max_cpu: Optional[str] = None  # default: the sized workers, e.g. "28 vCPU"
    max_memory: Optional[str] = None  # e.g. "210 GB"
    log_uri: Optional[str] = None  # default: s3://<bucket>/<prefix>/serverless-logs/
    spark_conf: Dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EmrConfig:
    bucket: str
    prefix: str = "catalog-match-rate"
    region: str = "us-east-1"
    endpoint_url: Optional[str] = None
    release_label: str = "emr-7.5.0"
    log_uri: Optional[str] = None  # default: s3://<bucket>/<prefix>/logs/
    service_role: str = "EMR_DefaultRole"
    job_flow_role: str = "EMR_EC2_DefaultRole"
    subnet_id: Optional[str] = None
    ec2_key_name: Optional[str] = None
    master: InstanceGroupConfig = field(default_factory=lambda: InstanceGroupConfig("m5.xlarge"))
    core: InstanceGroupConfig = field(default_factory=lambda: InstanceGroupConfig("r5.4xlarge", 2))
    fleets: Optional[FleetsConfig] = None  # instance fleets instead of master/core (spark_app.cluster_config)
    managed_scaling: Optional[ManagedScalingConfig] = None
    idle_timeout_seconds: int = 3600
    glue_catalog: bool = False
    python: str = "/usr/bin/python3"
    deequ_jar: Optional[str] = None  # s3:// path shipped with --jars
    step_action_on_failure: Literal["TERMINATE_CLUSTER", "CANCEL_AND_WAIT", "CONTINUE"] = "TERMINATE_CLUSTER"
    tags: Dict[str, str] = field(default_factory=dict)
    spark_conf: Dict[str, str] = field(default_factory=dict)
    instance_types: Dict[str, Dict[str, float]] = field(default_factory=dict)  # type -> {vcpu, memory_gib}
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    serverless: Optional[ServerlessConfig] = None


@dataclass(frozen=True)
class Config:
    dynamodb: DynamoConfig
    postgres: PostgresConfig
    events: Optional[EventsConfig] = None
    source: Literal["events", "presto"] = "events"
    presto: Optional[PrestoConfig] = None
    s3: Optional[S3Config] = None
    spark: SparkConfig = field(default_factory=SparkConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    local_services: Optional[LocalServicesConfig] = None
    emr: Optional[EmrConfig] = None
    report: ReportConfig = field(default_factory=ReportConfig)
    alerts: Optional[AlertsConfig] = None  # failure alerts, deadline watch (spark_app.alerts_config)
    metrics: Optional[MetricsConfig] = None  # CloudWatch run metrics (spark_app.ops_config)
    source_file: str = field(default="<memory>", compare=False)


# --------------------------------------------------------------------------- loading


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read a YAML file into a validated `Config`, or raise `ConfigError` naming file and key."""
    return config_from_mapping(read_config_mapping(path), source=str(path))


def read_config_mapping(path: str | os.PathLike[str]) -> Any:
    """The YAML file as plain data; ConfigError naming the file when it is missing, not UTF-8 or not YAML."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        why = f"byte {exc.start} cannot be decoded"
        raise ConfigError(f"{p}: not UTF-8 text ({why}); save it as UTF-8") from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None


def config_from_mapping(data: Any, source: str = "<memory>") -> Config:
    """Validate a plain mapping (as parsed from YAML) into a `Config`."""
    check_no_literal_secrets(data, source)
    cfg = build_typed(Config, data, key="", source=source)
    cfg = dataclasses.replace(cfg, source_file=source)
    _check_cross_fields(cfg, source)
    return cfg


def _check_cross_fields(cfg: Config, source: str) -> None:
    check_dynamodb(cfg.dynamodb, source)
    if cfg.source == "events" and cfg.events is None:
        raise ConfigError(f"{source}: events: required when source is 'events'")
    if cfg.source == "presto" and cfg.presto is None:
        raise ConfigError(f"{source}: presto: required when source is 'presto'")
    check_postgres_url(cfg.postgres.url, source)  # a password in it first of all
    if cfg.postgres.copy_batch_rows < 1:
        raise ConfigError(f"{source}: postgres.copy_batch_rows: must be at least 1 (rows per COPY batch)")
    for key in ("lock_timeout_seconds", "publish_attempts"):
        if getattr(cfg.postgres, key) <= 0:
            raise ConfigError(f"{source}: postgres.{key}: must be positive")
    if not is_plain_identifier(cfg.postgres.schema):
        raise ConfigError(f"{source}: postgres.schema: not a plain SQL identifier: {cfg.postgres.schema!r}")
    if cfg.s3 and cfg.s3.endpoint_url and not re.match(r"^https?://[^/\s]+/?$", cfg.s3.endpoint_url):
        got = cfg.s3.endpoint_url
        raise ConfigError(f"{source}: s3.endpoint_url: expected http(s)://host[:port], got {got!r}")
    if not 0.0 < cfg.quality.shrink.max_drop < 1.0:
        raise ConfigError(f"{source}: quality.shrink.max_drop: must be within (0, 1)")
    if cfg.quality.shrink.history_days < 1 or cfg.quality.shrink.min_history < 1:
        raise ConfigError(f"{source}: quality.shrink.history_days and min_history: must be at least 1")
    if not 0.0 <= (cfg.events.max_bad_share if cfg.events else 0.0) <= 1.0:
        raise ConfigError(f"{source}: events.max_bad_share: must be within [0, 1]")
    if cfg.events and cfg.events.bucket_mb < 1:
        raise ConfigError(f"{source}: events.bucket_mb: must be at least 1")
    _check_report(cfg, source)
    check_alerts(cfg, source)
    check_cluster(cfg.emr, source)
    check_ops(cfg, source)
    from spark_app.quality.checks import validate_checks

    validate_checks(cfg.quality, source)


def _check_report(cfg: Config, source: str) -> None:
    r = cfg.report
    if cfg.postgres.retention_days < MAX_REPORT_DAYS:
        raise ConfigError(
            f"{source}: postgres.retention_days: must be at least {MAX_REPORT_DAYS} "
            "(the longest report window)"
        )
    if not 1 <= r.days <= MAX_REPORT_DAYS:
        raise ConfigError(f"{source}: report.days: must be within [1, {MAX_REPORT_DAYS}]")
    if not 0.0 <= r.min_match_rate <= 1.0:
        raise ConfigError(f"{source}: report.min_match_rate: must be within [0, 1]")
    if r.max_drop_points < 0:
        raise ConfigError(f"{source}: report.max_drop_points: must not be negative")
    for key in ("top_advertisers", "top_products"):
        if getattr(r, key) < 1:
            raise ConfigError(f"{source}: report.{key}: must be at least 1")


def resolve_path(path: str, base: str | os.PathLike[str] | None = None) -> str:
    """Local relative paths are taken relative to `base` (the project root); URLs pass through."""
    if "://" in path or os.path.isabs(path):
        return path
    return str((Path(base) if base else Path.cwd()) / path)
