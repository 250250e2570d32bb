"""The `alerts:` section: failure alerts, the deadline watch and where the published markers live.

`AlertsConfig` is a section of `spark_app.config.Config` (`cfg.alerts`); `check_alerts` is run by
`load_config` and raises ConfigError naming the dotted key. `deploy.py alerts` creates what the
section describes (spark_app.emr.alerts); the job writes its published marker under
`markers_uri(cfg)` (spark_app.published).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Tuple

from spark_app.errors import ConfigError

if TYPE_CHECKING:
    from spark_app.config import Config

MAX_LOG_WAIT_SECONDS = 840  # a Lambda runs 15 minutes at most; one minute is kept for the rest


@dataclass(frozen=True)
class AlertsConfig:
    topic_name: str = "catalog-match-rate-alerts"  # SNS topic, created or reused by name
    emails: Tuple[str, ...] = ()  # each gets an email subscription its owner confirms
    deadline: str = "07:00"  # HH:MM UTC: by then yesterday's published marker must exist
    log_wait_seconds: int = 600  # how long an alert waits for EMR's logs to reach S3
    markers_uri: Optional[str] = None  # s3://bucket/prefix; default s3://<emr.bucket>/<emr.prefix>/published
    function_name: str = "catalog-match-rate-alerts"  # the alert Lambda; its rules are named after it
    lambda_role_arn: Optional[str] = None  # default: <function_name>-role, created
    endpoint_url: Optional[str] = None  # the SNS and STS endpoint the job publishes through; None: AWS's


_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_DEADLINE = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def check_alerts(cfg: Config, source: str) -> None:
    """ConfigError naming the first bad `alerts.*` key (nothing to check without the section)."""
    a = cfg.alerts
    if a is None:
        return
    problems = [
        ("topic_name", not _NAME.fullmatch(a.topic_name), "letters, digits, '-' and '_', at most 64"),
        ("function_name", not _NAME.fullmatch(a.function_name), "letters, digits, '-' and '_', at most 64"),
        ("deadline", not _DEADLINE.fullmatch(a.deadline), f"expected HH:MM (UTC), got {a.deadline!r}"),
        ("log_wait_seconds", not 0 <= a.log_wait_seconds <= MAX_LOG_WAIT_SECONDS,
         f"must be within [0, {MAX_LOG_WAIT_SECONDS}] (the alert Lambda runs 15 minutes at most)"),
        ("markers_uri", a.markers_uri is not None and not re.fullmatch(r"s3://[^/\s]+(/\S*)?", a.markers_uri),
         "expected s3://bucket/prefix"),
        ("markers_uri", a.markers_uri is None and cfg.emr is None,
         "required without an emr: section (the default is s3://<emr.bucket>/<emr.prefix>/published)"),
    ]
    problems += [(f"emails[{i}]", not _EMAIL.fullmatch(e), f"not an email address: {e!r}")
                 for i, e in enumerate(a.emails)]
    for key, bad, why in problems:
        if bad:
            raise ConfigError(f"{source}: alerts.{key}: {why}")


def markers_uri(cfg: Config) -> Optional[str]:
    """Where the published markers go: alerts.markers_uri, else beside the release; None without alerts."""
    if cfg.alerts is None:
        return None
    if cfg.alerts.markers_uri:
        return cfg.alerts.markers_uri.rstrip("/")
    emr = cfg.emr
    return f"s3://{emr.bucket}/{emr.prefix.strip('/')}/published" if emr else None
