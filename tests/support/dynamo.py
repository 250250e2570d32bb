"""What the DynamoDB tests share: a fast-failing lookup config, loading catalog keys, exports."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
from typing import List

from spark_app.config import DynamoConfig
from spark_app.local.catalog import load_catalog

__all__ = ["catalog_config", "enable_pitr", "export_config", "load_catalog", "rewrite_as_aws"]


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


# --------------------------------------------------------------------------- exports


def export_config(
    endpoint: str, table: str, s3_prefix: str, lookup: str = "export", **export
) -> DynamoConfig:
    """`catalog_config` reading the catalog from exports under `s3_prefix` (waits bounded at 2 min)."""
    from spark_app.config_dynamo import ExportConfig

    ex = ExportConfig(s3_prefix=s3_prefix, **{"wait_minutes": 2.0, **export})
    return catalog_config(endpoint, table, lookup=lookup, export=ex)


def enable_pitr(dynamodb_client, table: str) -> None:
    """Point-in-time recovery on: what ExportTableToPointInTime needs."""
    dynamodb_client.update_continuous_backups(
        TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )


def rewrite_as_aws(
    s3_client, bucket: str, prefix: str, export_arn: str, files: int = 3, relative: bool = False, **lie
) -> List[str]:
    """Lay moto's export of `export_arn` out as AWS writes one; the data files' keys.

    moto writes one `data/<uuid>.gz` in a folder of its own naming and no manifests. AWS writes
    (docs: "DynamoDB table export output format") under `<prefix>/AWSDynamoDB/<ExportId>/`:
    `_started`, `manifest-summary.json` (+ `.checksum`) naming `manifest-files.json` (+ `.checksum`),
    one JSON line per `data/<name>.json.gz` with `itemCount`, `md5Checksum` (base64 MD5 of the
    object), `etag` and `dataFileS3Key` (the object's full key). The items are moto's, split over
    `files` data files, plus the empty file of an empty partition. `relative` writes the keys in
    the manifests relative to the export prefix (`AWSDynamoDB/...`), as AWS's documented example
    shows them. `lie` falsifies the manifests: `count_delta` (added to the first file's
    itemCount and the summary's itemCount), `shift` (one item moved from the first file's count to
    the second's, totals unchanged), `md5` (the first file's checksum replaced).
    """
    root = f"{prefix}/AWSDynamoDB/"
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix=root).get("Contents", [])
    lines: List[bytes] = []
    for obj in listed:
        body = s3_client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        if obj["Key"].split("/")[-2] == "data":
            lines += [x for x in gzip.decompress(body).splitlines() if x.strip()]
        s3_client.delete_object(Bucket=bucket, Key=obj["Key"])
    export_id = export_arn.rsplit("/", 1)[-1]
    folder = f"{root}{export_id}"
    s3_client.put_object(Bucket=bucket, Key=f"{folder}/_started", Body=b"")
    entries, keys = [], []
    for i in range(files + 1):
        chunk = lines[i::files] if i < files else []  # the last: an empty partition's file
        data = gzip.compress(b"".join(x + b"\n" for x in chunk))
        key = f"{folder}/data/{hashlib.sha1(f'{export_id}{i}'.encode()).hexdigest()[:26]}.json.gz"
        put = s3_client.put_object(Bucket=bucket, Key=key, Body=data)
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        entries.append(
            {
                "itemCount": len(chunk),
                "md5Checksum": md5,
                "etag": put["ETag"].strip('"'),
                "dataFileS3Key": key[len(prefix) + 1 :] if relative else key,
            }
        )
        keys.append(key)
    entries[0]["itemCount"] += lie.get("count_delta", 0)
    if lie.get("shift"):
        entries[0]["itemCount"] -= 1
        entries[1]["itemCount"] += 1
    if lie.get("md5"):
        entries[0]["md5Checksum"] = base64.b64encode(hashlib.md5(b"other bytes").digest()).decode()
    files_json = "".join(json.dumps(e) + "\n" for e in entries).encode()
    summary = {
        "version": "2020-06-30",
        "exportArn": export_arn,
        "startTime": "2026-12-07T03:00:00.000Z",
        "endTime": "2026-12-07T03:05:00.000Z",
        "tableArn": export_arn.split("/export/")[0],
        "tableId": "12345a12-abcd-123a-ab12-1234abc12345",
        "exportTime": "2026-12-07T03:00:00.000Z",
        "s3Bucket": bucket,
        "s3Prefix": prefix,
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": None,
        "manifestFilesS3Key": f"{folder}/manifest-files.json"[len(prefix) + 1 if relative else 0 :],
        "billedSizeBytes": sum(len(x) for x in lines),
        "itemCount": sum(e["itemCount"] for e in entries),
        "outputFormat": "DYNAMODB_JSON",
        "exportType": "FULL_EXPORT",
    }
    summary_json = json.dumps(summary).encode()
    for name, body in (("manifest-files", files_json), ("manifest-summary", summary_json)):
        s3_client.put_object(Bucket=bucket, Key=f"{folder}/{name}.json", Body=body)
        s3_client.put_object(
            Bucket=bucket, Key=f"{folder}/{name}.checksum", Body=hashlib.md5(body).hexdigest().encode()
        )
    return keys
