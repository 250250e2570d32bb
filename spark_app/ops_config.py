"""The `metrics:` section and the report's delivery keys: what a run tells operations, and where.

`MetricsConfig` is a section of `spark_app.config.Config` (`cfg.metrics`); the delivery keys
(`report.s3_prefix`, `report.link_hours`, `report.topic_arn`) belong to `ReportConfig`.
`check_ops` is run by `load_config` and raises ConfigError naming the dotted key. The job's side
of them is `spark_app.ops`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from spark_app.errors import ConfigError

if TYPE_CHECKING:
    from spark_app.config import Config

MAX_LINK_HOURS = 168  # a presigned (SigV4) link is valid 7 days at most


@dataclass(frozen=True)
class MetricsConfig:
    """CloudWatch run metrics: one PutMetricData per day run, dimension `Pipeline` only."""

    enabled: bool = True
    namespace: str = "CatalogMatchRate"
    region: Optional[str] = None  # default: emr.region, else dynamodb.region
    endpoint_url: Optional[str] = None  # None: AWS's CloudWatch endpoint of the region (local: moto)


_ENDPOINT = re.compile(r"https?://[^/\s]+/?")
_S3 = re.compile(r"s3://[^/\s]+(/\S*)?")
_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}")
_NAMESPACE = re.compile(r"[A-Za-z0-9.\-_/#:]{1,255}")


def check_ops(cfg: Config, source: str) -> None:
    """ConfigError naming the first bad `metrics.*`, `report.*` delivery or `alerts.endpoint_url` key."""
    m, r = cfg.metrics, cfg.report
    problems = []
    if m is not None:
        problems += [
            ("metrics.namespace", not _NAMESPACE.fullmatch(m.namespace) or m.namespace.startswith("AWS/"),
             f"letters, digits and . - _ / # :, at most 255, not starting with AWS/ (got {m.namespace!r})"),
            ("metrics.endpoint_url", m.endpoint_url is not None and not _ENDPOINT.fullmatch(m.endpoint_url),
             f"expected http(s)://host[:port], got {m.endpoint_url!r}"),
        ]
    problems += [
        ("report.s3_prefix", r.s3_prefix is not None and not _S3.fullmatch(r.s3_prefix),
         f"expected s3://bucket/prefix, got {r.s3_prefix!r}"),
        ("report.link_hours", not 1 <= r.link_hours <= MAX_LINK_HOURS,
         f"must be within [1, {MAX_LINK_HOURS}] (a presigned link lives 7 days at most)"),
        ("report.topic_arn", r.topic_arn is not None and not _TOPIC_ARN.fullmatch(r.topic_arn),
         f"expected arn:aws:sns:<region>:<account>:<name>, got {r.topic_arn!r}"),
    ]
    endpoint = cfg.alerts.endpoint_url if cfg.alerts else None
    problems.append(("alerts.endpoint_url", endpoint is not None and not _ENDPOINT.fullmatch(endpoint),
                     f"expected http(s)://host[:port], got {endpoint!r}"))
    for key, bad, why in problems:
        if bad:
            raise ConfigError(f"{source}: {key}: {why}")


def aws_region(cfg: Config) -> str:
    """The region of the job's CloudWatch, SNS and S3 clients: metrics.region, emr.region, dynamodb.region."""
    if cfg.metrics is not None and cfg.metrics.region:
        return cfg.metrics.region
    return cfg.emr.region if cfg.emr is not None else cfg.dynamodb.region
