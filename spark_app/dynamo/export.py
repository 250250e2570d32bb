"""Driver side of the export path: find a recent full export of the catalog, or request one and wait.

`obtain_export(cfg)` asks DynamoDB, never guesses S3 keys: `ListExports` for the table, then
`DescribeExport` of each COMPLETED one; the newest FULL_EXPORT in DYNAMODB_JSON written under
`dynamodb.export.s3_prefix` and no older than `max_age_hours` is used. Otherwise it requests one
(`ExportTableToPointInTime`, FULL_EXPORT, DYNAMODB_JSON) under `<s3_prefix>/<table>/<UTC time>`,
so each requested export has a prefix of its own, and polls `DescribeExport` with a progress
line until it completes, fails, or `wait_minutes` pass. Every way it cannot be had is a
`LookupFailed` naming the table and the cause.

An export's age is its `ExportTime` (the point in time it shows); a description without one
(moto gives none) falls back to the newest data file's LastModified, which is a little later.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterator, Optional

from spark_app.config import DynamoConfig, S3Config
from spark_app.config_dynamo import ExportConfig
from spark_app.errors import LookupFailed
from spark_app.s3_uri import split_s3_uri

log = logging.getLogger(__name__)

__all__ = ["ExportHandle", "obtain_export", "find_recent_export", "request_export", "wait_for_export"]

_FAILURE_CAUSES = {
    "S3NoSuchBucket": "the bucket of dynamodb.export.s3_prefix does not exist",
    "S3AccessDenied": "DynamoDB may not write to the bucket (bucket policy, KMS key or S3BucketOwner)",
    "UNKNOWN": "see the failure message",
}


@dataclass(frozen=True)
class ExportHandle:
    """A COMPLETED export: where its files are and what DynamoDB says it holds."""

    arn: str
    bucket: str
    prefix: str  # the S3Prefix the export was requested with ("" for none)
    manifest_key: Optional[str]  # manifest-summary.json (ExportManifest); None when not given
    item_count: Optional[int]
    exported_at: Optional[datetime]
    reused: bool  # found among the table's exports (True) or requested by this run (False)
    waited_seconds: float = 0.0

    @property
    def export_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]


def dynamodb_control_client(cfg: DynamoConfig):
    """A DynamoDB client for the control plane (table and export descriptions), on the driver."""
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=cfg.region,
        retries={"mode": cfg.retry_mode, "total_max_attempts": max(cfg.max_attempts, 3)},
        connect_timeout=cfg.connect_timeout_seconds,
        read_timeout=cfg.read_timeout_seconds,
    )
    return boto3.client("dynamodb", endpoint_url=cfg.endpoint_url, config=config)


def obtain_export(
    cfg: DynamoConfig, s3: Optional[S3Config] = None, ddb: Any = None, s3_client: Any = None
) -> ExportHandle:
    """The export to read: a recent one if any, else a new one awaited; LookupFailed otherwise."""
    from spark_app.events.files import s3_client as make_s3_client

    assert cfg.export is not None, "dynamodb.export is required by the export path"
    ddb = ddb or dynamodb_control_client(cfg)
    s3_client = s3_client or make_s3_client(s3)
    table_arn = describe_table(ddb, cfg.table)["TableArn"]
    found = find_recent_export(ddb, s3_client, cfg.table, table_arn, cfg.export)
    if found is not None:
        log.info("DynamoDB table %s: reusing export %s of %s", cfg.table, found.arn, found.exported_at)
        return found
    arn = request_export(ddb, cfg.table, table_arn, cfg.export)
    return wait_for_export(ddb, s3_client, cfg.table, arn, cfg.export.wait_minutes)


def describe_table(ddb: Any, table: str) -> Dict[str, Any]:
    try:
        return ddb.describe_table(TableName=table)["Table"]
    except Exception as exc:  # noqa: BLE001 - every failure is reported the same way
        raise LookupFailed(f"DynamoDB table {table}: DescribeTable failed: {_one_line(exc)}") from None


def find_recent_export(
    ddb: Any, s3_client: Any, table: str, table_arn: str, ex: ExportConfig, now: Optional[datetime] = None
) -> Optional[ExportHandle]:
    """The newest usable COMPLETED export under `ex.s3_prefix`, or None."""
    now = now or datetime.now(timezone.utc)
    bucket, prefix = split_s3_uri(ex.s3_prefix)
    prefix = prefix.strip("/")
    oldest = now - timedelta(hours=ex.max_age_hours)
    best: Optional[ExportHandle] = None
    for summary in _list_exports(ddb, table, table_arn):
        full = summary.get("ExportType", "FULL_EXPORT") == "FULL_EXPORT"
        if summary.get("ExportStatus") != "COMPLETED" or not full:
            continue
        d = _describe(ddb, table, summary["ExportArn"])
        if d.get("S3Bucket") != bucket or not _under(d.get("S3Prefix") or "", prefix):
            continue
        if d.get("ExportFormat") != ex.format:
            continue
        handle = _handle(d, s3_client, reused=True)
        if handle.exported_at is None or handle.exported_at < oldest:
            continue
        if best is None or handle.exported_at > best.exported_at:  # type: ignore[operator]
            best = handle
    return best


def request_export(
    ddb: Any, table: str, table_arn: str, ex: ExportConfig, now: Optional[datetime] = None
) -> str:
    """Ask for a FULL_EXPORT under a prefix of its own; the export's ARN."""
    bucket, prefix = split_s3_uri(ex.s3_prefix)
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    own_prefix = "/".join(p for p in (prefix.strip("/"), table, stamp) if p)
    try:
        resp = ddb.export_table_to_point_in_time(
            TableArn=table_arn,
            S3Bucket=bucket,
            S3Prefix=own_prefix,
            ExportFormat=ex.format,
            ExportType="FULL_EXPORT",
        )
    except Exception as exc:  # noqa: BLE001
        raise LookupFailed(_request_failure(table, exc)) from None
    arn = resp["ExportDescription"]["ExportArn"]
    log.info("DynamoDB table %s: requested export %s to s3://%s/%s", table, arn, bucket, own_prefix)
    return arn


def wait_for_export(
    ddb: Any,
    s3_client: Any,
    table: str,
    arn: str,
    wait_minutes: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ExportHandle:
    """Poll DescribeExport (0.5 s, doubling to 30 s) until COMPLETED; LookupFailed on FAILED or the bound."""
    start = clock()
    delay = 0.5
    while True:
        d = _describe(ddb, table, arn)
        status = d.get("ExportStatus")
        waited = clock() - start
        if status == "COMPLETED":
            log.info("DynamoDB table %s: export %s COMPLETED after %.0f s", table, arn, waited)
            return dataclasses.replace(_handle(d, s3_client, reused=False), waited_seconds=waited)
        if status == "FAILED":
            code = d.get("FailureCode") or "UNKNOWN"
            cause = _FAILURE_CAUSES.get(code, "see the failure message")
            raise LookupFailed(
                f"DynamoDB table {table}: export {arn} FAILED ({code}: {d.get('FailureMessage')}) "
                f"to s3://{d.get('S3Bucket')}/{d.get('S3Prefix') or ''}; probable cause: {cause}"
            )
        if waited >= wait_minutes * 60:
            raise LookupFailed(
                f"DynamoDB table {table}: export {arn} still {status} after {waited / 60:.1f} min "
                f"(dynamodb.export.wait_minutes {wait_minutes:g}); it goes on in DynamoDB and a later "
                f"run within dynamodb.export.max_age_hours reuses it"
            )
        log.info(
            "DynamoDB table %s: export %s %s, waited %.0f s of %g min",
            *(table, arn, status, waited, wait_minutes),
        )
        sleep(min(delay, max(0.0, wait_minutes * 60 - waited)))
        delay = min(delay * 2, 30.0)


# --------------------------------------------------------------------------- helpers


def _list_exports(ddb: Any, table: str, table_arn: str) -> Iterator[Dict[str, Any]]:
    token = None
    while True:
        kwargs = {"TableArn": table_arn, "MaxResults": 25}
        if token:
            kwargs["NextToken"] = token
        try:
            resp = ddb.list_exports(**kwargs)
        except Exception as exc:  # noqa: BLE001
            raise LookupFailed(f"DynamoDB table {table}: ListExports failed: {_one_line(exc)}") from None
        yield from resp.get("ExportSummaries", [])
        token = resp.get("NextToken")
        if not token:
            return


def _describe(ddb: Any, table: str, arn: str) -> Dict[str, Any]:
    try:
        return ddb.describe_export(ExportArn=arn)["ExportDescription"]
    except Exception as exc:  # noqa: BLE001
        raise LookupFailed(f"DynamoDB table {table}: DescribeExport {arn} failed: {_one_line(exc)}") from None


def _handle(d: Dict[str, Any], s3_client: Any, reused: bool) -> ExportHandle:
    prefix = (d.get("S3Prefix") or "").strip("/")
    exported_at = d.get("ExportTime") or d.get("EndTime") or d.get("StartTime")
    if exported_at is None:
        exported_at = _newest_object_time(s3_client, d["S3Bucket"], prefix)
    return ExportHandle(
        arn=d["ExportArn"],
        bucket=d["S3Bucket"],
        prefix=prefix,
        manifest_key=d.get("ExportManifest") or None,
        item_count=d.get("ItemCount"),
        exported_at=exported_at,
        reused=reused,
    )


def _newest_object_time(s3_client: Any, bucket: str, prefix: str) -> Optional[datetime]:
    newest = None
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=export_root(prefix))
    for page in pages:
        for obj in page.get("Contents", []):
            if newest is None or obj["LastModified"] > newest:
                newest = obj["LastModified"]
    return newest


def export_root(prefix: str) -> str:
    """The folder DynamoDB writes its exports to under an export's S3Prefix."""
    return f"{prefix.strip('/')}/AWSDynamoDB/" if prefix.strip("/") else "AWSDynamoDB/"


def _under(prefix: str, root: str) -> bool:
    prefix = prefix.strip("/")
    return not root or prefix == root or prefix.startswith(root + "/")


def _request_failure(table: str, exc: Exception) -> str:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    causes = {
        "PointInTimeRecoveryUnavailableException": (
            "point-in-time recovery is off for the table; an export needs it (UpdateContinuousBackups), "
            "or set dynamodb.lookup: batch_get"
        ),
        "TableNotFoundException": "the table does not exist in this region/account",
        "InvalidExportTimeException": "the export time is outside the table's recovery window",
        "ExportConflictException": "an export of the same request is already running",
        "LimitExceededException": "too many exports are running (DynamoDB allows 300 at a time)",
        "AccessDeniedException": "the role lacks dynamodb:ExportTableToPointInTime or s3:PutObject",
    }
    cause = causes.get(code, "see the error code")
    what = f"ExportTableToPointInTime failed with {code or 'an error'}: {_one_line(exc)}"
    return f"DynamoDB table {table}: {what}; probable cause: {cause}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
