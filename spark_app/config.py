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
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Tuple

from spark_app.errors import ConfigError
from spark_app.names import is_plain_identifier

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
    min_files: int = 1  # a day folder with fewer data files is incomplete
    require_success_marker: bool = False  # a day folder must hold _SUCCESS
    max_bad_share: float = 0.05  # share of bad input (lines or bytes) that fails the day
    event_types: Tuple[str, ...] = ("product_view", "add_to_cart", "purchase", "search", "page_view")
    max_future_minutes: int = 60  # a ts later than now + this is rejected as "future"
    files_per_partition_mb: int = 128


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
    # Where the result is staged as Parquet for the executors; required on a cluster
    # (s3://bucket/prefix or hdfs:///path); default on a local master: a temp dir.
    staging_dir: Optional[str] = None


@dataclass(frozen=True)
class FaultConfig:
    """Fault injection for the DynamoDB client (tests and game days); all off by default."""

    unprocessed_share: float = 0.0  # share of each response's keys returned as UnprocessedKeys
    throttle_first: int = 0  # the first N requests of each client answer ThrottlingException
    throttle_all: bool = False  # every request answers ProvisionedThroughputExceededException


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


@dataclass(frozen=True)
class PostgresConfig:
    url: str  # SQLAlchemy URL without password, e.g. postgresql://etl@host:5432/db?sslmode=require
    password_env: str = "PGPASSWORD"
    password_secret: Optional[str] = None  # AWS Secrets Manager secret id (JSON with "password", or plain)
    secret_region: Optional[str] = None
    schema: str = "public"
    copy_batch_rows: int = 10000  # rows per Arrow batch streamed into COPY


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
class QualityConfig:
    engine: Literal["auto", "deequ", "native"] = "auto"
    deequ_jar: Optional[str] = None
    checks: Dict[str, List[CheckConfig]] = field(default_factory=dict)  # table -> checks
    anomalies: List[AnomalyConfig] = field(default_factory=list)


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


@dataclass(frozen=True)
class LocalServicesConfig:
    """Embedded servers for `make run`; only conf/local.yaml has this section."""

    dynamodb_port: int = 54330
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
    architecture: Literal["X86_64"] = "X86_64"  # the deps archive holds x86_64 wheels
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
    spark: SparkConfig = field(default_factory=SparkConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    local_services: Optional[LocalServicesConfig] = None
    emr: Optional[EmrConfig] = None
    source_file: str = field(default="<memory>", compare=False)


# --------------------------------------------------------------------------- loading


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read a YAML file into a validated `Config`, or raise `ConfigError` naming file and key."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    return config_from_mapping(data, source=str(p))


def config_from_mapping(data: Any, source: str = "<memory>") -> Config:
    """Validate a plain mapping (as parsed from YAML) into a `Config`."""
    cfg = _build(Config, data, key="", source=source)
    cfg = dataclasses.replace(cfg, source_file=source)
    _check_cross_fields(cfg, source)
    return cfg


def _check_cross_fields(cfg: Config, source: str) -> None:
    if cfg.source == "events" and cfg.events is None:
        raise ConfigError(f"{source}: events: required when source is 'events'")
    if cfg.source == "presto" and cfg.presto is None:
        raise ConfigError(f"{source}: presto: required when source is 'presto'")
    if _url_has_password(cfg.postgres.url):
        raise ConfigError(
            f"{source}: postgres.url: must not carry a password; set the environment variable "
            f"{cfg.postgres.password_env} or postgres.password_secret"
        )
    if not re.match(r"^postgres(ql)?(\+\w+)?://", cfg.postgres.url):
        raise ConfigError(f"{source}: postgres.url: expected postgresql://user@host:port/database")
    if not is_plain_identifier(cfg.postgres.schema):
        raise ConfigError(f"{source}: postgres.schema: not a plain SQL identifier: {cfg.postgres.schema!r}")
    if not 0.0 <= (cfg.events.max_bad_share if cfg.events else 0.0) <= 1.0:
        raise ConfigError(f"{source}: events.max_bad_share: must be within [0, 1]")
    from spark_app.quality.checks import validate_checks

    validate_checks(cfg.quality, source)


def _url_has_password(url: str) -> bool:
    m = re.match(r"^[^:]+://([^@/?#]*)@", url)
    return bool(m and ":" in m.group(1) and m.group(1).split(":", 1)[1] != "")


_SCALARS = (str, int, float, bool)


def _build(tp: Any, value: Any, key: str, source: str) -> Any:
    """Coerce `value` into the annotated type `tp`, raising ConfigError at `key`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    where = f"{source}: {key or '<top>'}"

    if origin is typing.Union:  # Optional[X]
        inner = [a for a in args if a is not type(None)]
        if value is None:
            return None
        return _build(inner[0], value, key, source)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if dataclasses.is_dataclass(tp):
        return _build_dataclass(tp, value, key, source)
    if origin in (list, List):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return [_build(args[0], v, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin in (tuple, Tuple):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return tuple(_build(args[0], v, f"{key}[{i}]", source) for i, v in enumerate(value))
    if origin in (dict, Dict):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return {
            _build(args[0], k, f"{key}.{k}", source): _build(args[1], v, f"{key}.{k}", source)
            for k, v in value.items()
        }
    if tp is Any:
        return value
    return _build_scalar(tp, value, where)


def _build_scalar(tp: type, value: Any, where: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    raise ConfigError(f"{where}: unsupported type {tp!r}")


def _build_dataclass(tp: Any, value: Any, key: str, source: str) -> Any:
    where = f"{source}: {key or '<top>'}"
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    hints = typing.get_type_hints(tp)
    fields = {f.name: f for f in dataclasses.fields(tp) if f.name != "source_file"}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        dotted = f"{key}.{unknown[0]}" if key else str(unknown[0])
        raise ConfigError(f"{source}: {dotted}: unknown key (known: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, f in fields.items():
        dotted = f"{key}.{name}" if key else name
        if name in value:
            kwargs[name] = _build(hints[name], value[name], dotted, source)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: {dotted}: required")
    return tp(**kwargs)


def resolve_path(path: str, base: str | os.PathLike[str] | None = None) -> str:
    """Local relative paths are taken relative to `base` (the project root); URLs pass through."""
    if "://" in path or os.path.isabs(path):
        return path
    return str((Path(base) if base else Path.cwd()) / path)
