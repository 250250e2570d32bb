"""Does `events.path` exist at all? Checked by process_data.py before Spark starts.

A root that does not exist (a local folder that is not there, an S3 bucket that does not exist,
a prefix with no key under it) is a wrong config, not a late day: `ConfigError` (exit 2), raised
before Spark starts, the schema is migrated or a run is recorded. On S3 one `list_objects_v2` of
at most one key under the root, at the `s3` config's endpoint, decides it. A root that exists but
lacks the day's folder is left to the run's availability check (`DataNotReady`, exit 3). The
`presto` source has no events.path: nothing to check.
"""

from __future__ import annotations

import os
from typing import Optional

from spark_app.config import Config
from spark_app.errors import ConfigError
from spark_app.events.files import listing_error, s3_client
from spark_app.s3_uri import is_s3_uri, split_s3_uri


def check_events_root(cfg: Config, client=None) -> None:
    """Raise ConfigError naming events.path and the config file unless the events root exists."""
    if cfg.source != "events" or cfg.events is None:
        return
    path = cfg.events.path
    where = f"{cfg.source_file}: events.path: {path}"
    if not is_s3_uri(path):
        local = path[len("file://") :] if path.startswith("file://") else path
        if not os.path.isdir(local):
            raise ConfigError(f"{where}: no such folder; check the path (a missing root is not a late day)")
        return
    if cfg.local_services is not None:  # the embedded moto takes any credentials, as the run's session does
        from spark_app.session import fake_aws_credentials

        fake_aws_credentials()
    bucket, prefix = split_s3_uri(path.rstrip("/") + "/")
    try:
        listed = (client or s3_client(cfg.s3)).list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except Exception as exc:  # noqa: BLE001 - botocore's errors share no useful base here
        if _error_code(exc) == "NoSuchBucket":
            raise ConfigError(f"{where}: bucket {bucket} does not exist; check the bucket's name") from None
        raise listing_error(path, bucket, exc) from exc
    if not listed.get("KeyCount", 0):
        raise ConfigError(
            f"{where}: no object under it (no dt=YYYY-MM-DD/ folder); "
            "check the prefix (a missing root is not a late day)"
        )


def _error_code(exc: BaseException) -> Optional[str]:
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None
