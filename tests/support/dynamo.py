"""What the DynamoDB tests share: a fast-failing lookup config and loading catalog keys."""

from __future__ import annotations

import dataclasses

from spark_app.config import DynamoConfig
from spark_app.local.catalog import load_catalog

__all__ = ["catalog_config", "load_catalog"]


def catalog_config(endpoint: str, table: str, **overrides) -> DynamoConfig:
    """The catalog on moto with tiny backoffs, and no botocore retries: every retry is ours."""
    base = DynamoConfig(
        table=table,
        region="us-east-1",
        endpoint_url=endpoint,
        threads=4,
        max_attempts=1,
        backoff_base_seconds=0.001,
        backoff_max_seconds=0.01,
        read_timeout_seconds=60.0,  # the test machine is shared: a slow answer is not a failure here
    )
    return dataclasses.replace(base, **overrides)
