"""boto3 clients at the endpoints the config names (moto's locally, AWS's on EMR), failing fast.

A refusing or unreachable endpoint costs a run seconds, not minutes: short timeouts and two
attempts. Credentials come from boto3's usual chain (the instance profile on EMR).
"""

from __future__ import annotations

from typing import Any, Optional

from spark_app.config import Config
from spark_app.ops_config import aws_region


def _boto_config(**extra: Any):
    from botocore.config import Config as BotoConfig

    return BotoConfig(connect_timeout=5, read_timeout=20, retries={"max_attempts": 2, "mode": "standard"},
                      **extra)


def client(cfg: Config, service: str, endpoint_url: Optional[str] = None):
    import boto3

    return boto3.client(service, region_name=aws_region(cfg), endpoint_url=endpoint_url,
                        config=_boto_config())


def s3(cfg: Config):
    """S3 at `s3.endpoint_url` (path style when set), SigV4 so that presigned links work in any region."""
    import boto3

    s3cfg = cfg.s3
    style = {"addressing_style": "path"} if s3cfg is not None and s3cfg.path_style_access else {}
    return boto3.client("s3", region_name=aws_region(cfg), endpoint_url=s3cfg.endpoint_url if s3cfg else None,
                        config=_boto_config(signature_version="s3v4", s3=style))


def cloudwatch(cfg: Config):
    return client(cfg, "cloudwatch", cfg.metrics.endpoint_url if cfg.metrics else None)


def sns(cfg: Config):
    return client(cfg, "sns", cfg.alerts.endpoint_url if cfg.alerts else None)


def alert_topic_arn(cfg: Config) -> Optional[str]:
    """The ARN of `alerts.topic_name` in this account and region (None without an alerts: section).

    Built from STS GetCallerIdentity, which needs no permission, so the job's role needs only
    sns:Publish on the topic, not the right to create or list topics.
    """
    if cfg.alerts is None:
        return None
    account = client(cfg, "sts", cfg.alerts.endpoint_url).get_caller_identity()["Account"]
    partition = "aws-cn" if aws_region(cfg).startswith("cn-") else "aws"
    return f"arn:{partition}:sns:{aws_region(cfg)}:{account}:{cfg.alerts.topic_name}"


def error_text(exc: BaseException) -> str:
    """One line for a warning: botocore's error code and message, or the exception's own text."""
    err = getattr(exc, "response", {}).get("Error", {}) if hasattr(exc, "response") else {}
    if err:
        return f"{err.get('Code', type(exc).__name__)}: {err.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
