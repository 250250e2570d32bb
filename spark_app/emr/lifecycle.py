"""An S3 lifecycle rule that expires the quarantine prefix: rejected lines are kept N days, not forever.

The quarantine (`events.quarantine_path`, default `<events.path>/_quarantine`) holds one folder per
run (`run_id=<run>/dt=<day>/`) of rejected input lines with their reason. They are for looking
into a bad day, not for keeping: `deploy.py quarantine-expiry` sets a rule on the bucket that
deletes objects under the prefix `events.quarantine_expire_days` after they were written. Rules
of the bucket with other ids are kept as they are; ours is replaced.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from spark_app.config import Config
from spark_app.errors import ConfigError
from spark_app.s3_uri import split_s3_uri

RULE_ID = "catalog-match-rate-quarantine-expiry"


def quarantine_location(cfg: Config) -> Tuple[str, str]:
    """(bucket, prefix ending in /) of the quarantine; ConfigError unless it is on S3."""
    from spark_app.events.read import quarantine_root

    if cfg.events is None:
        raise ConfigError(f"{cfg.source_file}: events: needed to know where the quarantine is")
    root = quarantine_root(cfg.events)
    if not root.startswith(("s3://", "s3a://")):
        where = f"{cfg.source_file}: events.quarantine_path"
        raise ConfigError(f"{where}: {root} is not on S3; nothing to expire")
    bucket, prefix = split_s3_uri(root)
    return bucket, prefix.rstrip("/") + "/"


def expiry_rule(prefix: str, days: int) -> Dict[str, Any]:
    if days < 1:
        raise ConfigError(f"events.quarantine_expire_days: must be at least 1, got {days}")
    return {
        "ID": RULE_ID,
        "Filter": {"Prefix": prefix},
        "Status": "Enabled",
        "Expiration": {"Days": days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }


def merged_rules(existing: List[Dict[str, Any]], rule: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The bucket's rules with ours added or replaced (S3 replaces the whole configuration at once)."""
    return [r for r in existing if r.get("ID") != rule["ID"]] + [rule]


def current_rules(s3: Any, bucket: str) -> List[Dict[str, Any]]:
    from botocore.exceptions import ClientError

    try:
        return list(s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", []))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
            return []
        raise


def set_quarantine_expiry(s3: Any, bucket: str, rule: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Put the bucket's lifecycle configuration with our rule in it; returns the rules sent."""
    rules = merged_rules(current_rules(s3, bucket), rule)
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    return rules


def cli(cfg: Config, days: Any, dry_run: bool, dump: Any) -> int:
    """`deploy.py quarantine-expiry`: the rule for `days` (default events.quarantine_expire_days)."""
    from spark_app.emr.launch import emr_section, s3_client

    bucket, prefix = quarantine_location(cfg)
    emr = emr_section(cfg)
    rule = expiry_rule(prefix, days if days is not None else cfg.events.quarantine_expire_days)
    if dry_run:
        dump({"bucket": bucket, "rule": rule})
        return 0
    dump({"bucket": bucket, "rules": set_quarantine_expiry(s3_client(emr), bucket, rule)})
    return 0
