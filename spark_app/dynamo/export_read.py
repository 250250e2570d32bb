"""Runs on executors (each export data file read in its task) and the driver (finding the files).

`export_files` finds an export's data files on the driver. With manifests, as AWS writes them
(`<prefix>/AWSDynamoDB/<ExportId>/manifest-summary.json` naming `manifest-files.json`, one JSON
line per data file with `dataFileS3Key`, `itemCount` and `md5Checksum`, the base64 MD5 of the
object), the files and their item counts come from there and the counts must add up to the
summary's `itemCount`. Without them (moto writes only `data/` files) it lists the export
folder's `data/` and says so. A key given relative to the export prefix (`AWSDynamoDB/...`, as
in AWS's documented example) is taken under it.

`read_partition` is the mapInArrow function: per task one boto3 S3 client (built in the task,
at the configured `s3.endpoint_url`), each file streamed through gzip and its MD5, one
`{"Item": {...}}` line per item, the key attributes kept as `(advertiser_id, product_id)` rows:
the number parsed from DynamoDB's own decimal text (null when it is no 64-bit integer, so
never joined), the string as it is: one row per item. A file whose MD5 or
item count disagrees with its manifest fails the task with `LookupFailed`.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, Iterator, List, Optional

from spark_app.config import S3Config
from spark_app.dynamo.catalog import HASH_KEY, RANGE_KEY
from spark_app.dynamo.export import ExportHandle, export_root
from spark_app.errors import LookupFailed

log = logging.getLogger(__name__)

__all__ = ["DataFile", "ExportFiles", "export_files", "read_partition", "FILES_SCHEMA", "KEYS_SCHEMA"]

FILES_SCHEMA = "key string, item_count long, md5 string"
KEYS_SCHEMA = "advertiser_id long, product_id string"
ROWS_PER_BATCH = 65_536
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class DataFile:
    key: str
    item_count: Optional[int]  # from the manifest; None when listed
    md5: Optional[str]  # base64 MD5 of the object's bytes, from the manifest


@dataclass(frozen=True)
class ExportFiles:
    bucket: str
    files: List[DataFile]
    item_count: Optional[int]  # the manifest's total, else DescribeExport's ItemCount
    from_manifest: bool
    note: str


# --------------------------------------------------------------------------- driver: the files


def export_files(handle: ExportHandle, s3_client: Any, table: str) -> ExportFiles:
    """The export's data files, from its manifests when present, else from listing `data/`."""
    folder = f"{export_root(handle.prefix)}{handle.export_id}/"
    summary_key = _resolve(handle.manifest_key, handle.prefix) if handle.manifest_key else None
    summary = _get_json(s3_client, handle.bucket, summary_key or f"{folder}manifest-summary.json", table)
    if summary is not None:
        return _from_manifest(
            handle, s3_client, table, summary, summary_key or f"{folder}manifest-summary.json"
        )
    return _from_listing(handle, s3_client, table)


def _from_manifest(
    handle: ExportHandle, s3_client: Any, table: str, summary: Dict[str, Any], summary_key: str
) -> ExportFiles:
    files_key = _resolve(summary.get("manifestFilesS3Key") or "", handle.prefix)
    text = _get_text(s3_client, handle.bucket, files_key, table)
    if text is None:
        raise LookupFailed(
            f"DynamoDB table {table}: export {handle.arn}: {summary_key} names "
            f"s3://{handle.bucket}/{files_key}, which does not exist"
        )
    files = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            files.append(
                DataFile(
                    _resolve(entry["dataFileS3Key"], handle.prefix),
                    int(entry["itemCount"]),
                    entry.get("md5Checksum"),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise LookupFailed(
                f"DynamoDB table {table}: export {handle.arn}: line {n} of s3://{handle.bucket}/{files_key} "
                f"is not a files-manifest entry ({exc!r})"
            ) from None
    listed = sum(f.item_count or 0 for f in files)
    for name, total in (
        ("manifest-summary.json itemCount", summary.get("itemCount")),
        ("DescribeExport ItemCount", handle.item_count),
    ):
        if total is not None and int(total) != listed:
            raise LookupFailed(
                f"DynamoDB table {table}: export {handle.arn}: manifest-files.json lists {listed:,} items "
                f"but {name} says {int(total):,}; refusing an export that may have lost items"
            )
    note = f"manifest s3://{handle.bucket}/{summary_key}: {len(files)} data files, {listed:,} items"
    return ExportFiles(handle.bucket, files, listed, True, note)


def _from_listing(handle: ExportHandle, s3_client: Any, table: str) -> ExportFiles:
    root = export_root(handle.prefix)
    folders = _list_folders(s3_client, handle.bucket, root)
    own = f"{root}{handle.export_id}/"
    if own in folders:
        folder = own
    elif len(folders) == 1:
        folder = folders[0]  # the export's own prefix holds one export (moto names its folder freely)
    else:
        raise LookupFailed(
            f"DynamoDB table {table}: export {handle.arn}: no manifest, and s3://{handle.bucket}/{root} "
            f"holds {len(folders)} export folders, none named {handle.export_id}: cannot tell which is it"
        )
    keys = _list_keys(s3_client, handle.bucket, f"{folder}data/")
    files = [DataFile(k, None, None) for k in keys]
    note = (
        f"no manifest in s3://{handle.bucket}/{folder}: read the {len(files)} files listed under data/, "
        f"checked against DescribeExport's ItemCount ({handle.item_count})"
    )
    log.warning("DynamoDB table %s: %s", table, note)
    return ExportFiles(handle.bucket, files, handle.item_count, False, note)


def _resolve(key: str, prefix: str) -> str:
    key = key.lstrip("/")
    return f"{prefix}/{key}" if prefix and key.startswith("AWSDynamoDB/") else key


def _get_text(s3_client: Any, bucket: str, key: str, table: str) -> Optional[str]:
    try:
        return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    except s3_client.exceptions.NoSuchKey:
        return None
    except Exception as exc:  # noqa: BLE001
        raise LookupFailed(
            f"DynamoDB table {table}: reading export file s3://{bucket}/{key} failed: {_one_line(exc)}"
        ) from None


def _get_json(s3_client: Any, bucket: str, key: str, table: str) -> Optional[Dict[str, Any]]:
    text = _get_text(s3_client, bucket, key, table)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise LookupFailed(f"DynamoDB table {table}: s3://{bucket}/{key} is not JSON") from None


def _list_folders(s3_client: Any, bucket: str, root: str) -> List[str]:
    out: List[str] = []
    for page in s3_client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=root, Delimiter="/"
    ):
        out += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return out


def _list_keys(s3_client: Any, bucket: str, prefix: str) -> List[str]:
    out: List[str] = []
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/")]
    return sorted(out)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


# --------------------------------------------------------------------------- executors: the items


def read_partition(s3: Optional[S3Config], bucket: str, table: str):
    """The mapInArrow function over FILES_SCHEMA rows: KEYS_SCHEMA batches of each file's items."""

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        from spark_app.events.files import s3_client

        client = s3_client(s3)
        for batch in batches:
            rows = zip(*(batch.column(c).to_pylist() for c in ("key", "item_count", "md5")))
            for key, count, md5 in rows:
                yield from read_file(client, bucket, key, count, md5, table)

    return run


def read_file(
    client: Any, bucket: str, key: str, item_count: Optional[int], md5: Optional[str], table: str
) -> Iterator[Any]:
    """Arrow batches of (advertiser_id, product_id), checking the file's MD5 and item count."""
    import pyarrow as pa

    try:
        body = _Hashing(client.get_object(Bucket=bucket, Key=key)["Body"])
    except Exception as exc:  # noqa: BLE001 - NoSuchKey, access denied, endpoint down: all fatal here
        raise LookupFailed(
            f"DynamoDB table {table}: cannot read export file s3://{bucket}/{key}: {_one_line(exc)}"
        ) from None
    ids: List[Optional[int]] = []
    products: List[str] = []
    items = 0
    schema = pa.schema([(HASH_KEY, pa.int64()), (RANGE_KEY, pa.string())])
    try:
        with gzip.GzipFile(fileobj=body, mode="rb") as lines:
            for line in lines:
                if not line.strip():
                    continue
                items += 1
                a, p = _key_of_line(line, table, key)
                ids.append(a)  # None (never joined) when no day key can equal it: one row per item
                products.append(p)
                if len(ids) >= ROWS_PER_BATCH:
                    yield pa.RecordBatch.from_arrays(
                        [pa.array(ids, pa.int64()), pa.array(products, pa.string())], schema=schema
                    )
                    ids, products = [], []
    except (OSError, EOFError) as exc:
        if body.size:  # an empty object is an empty partition's file
            raise LookupFailed(
                f"DynamoDB table {table}: export file s3://{bucket}/{key} is not gzip: {exc}"
            ) from None
    body.drain()
    if ids:
        yield pa.RecordBatch.from_arrays(
            [pa.array(ids, pa.int64()), pa.array(products, pa.string())], schema=schema
        )
    if md5 is not None and body.md5() != md5:
        raise LookupFailed(
            f"DynamoDB table {table}: export file s3://{bucket}/{key}: MD5 {body.md5()}, "
            f"the manifest says {md5}"
        )
    if item_count is not None and items != item_count:
        raise LookupFailed(
            f"DynamoDB table {table}: export file s3://{bucket}/{key} holds {items:,} items but the "
            f"manifest says {item_count:,}; refusing an export that may have lost items"
        )


def _key_of_line(line: bytes, table: str, key: str):
    """(advertiser_id or None when no day key can equal it, product_id) of one exported item."""
    try:
        item = json.loads(line)["Item"]
        number, product = item[HASH_KEY]["N"], item[RANGE_KEY]["S"]
    except (ValueError, KeyError, TypeError):
        raise LookupFailed(
            f"DynamoDB table {table}: export file {key}: an item without {HASH_KEY} (N) and {RANGE_KEY} (S); "
            f"is the table's key schema (advertiser_id N, product_id S)?"
        ) from None
    return _long_or_none(number), product


def _long_or_none(number: str) -> Optional[int]:
    """DynamoDB's decimal text as a 64-bit integer; None when it is not one (never a day's key)."""
    try:
        value = Decimal(number)
    except InvalidOperation:
        return None
    if value != value.to_integral_value() or not _LONG_MIN <= value <= _LONG_MAX:
        return None
    return int(value)


class _Hashing:
    """A read-only stream that hashes (MD5) and counts every byte read through it."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._md5 = hashlib.md5()  # noqa: S324 - the manifest's checksum, not security
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n) if n is not None and n >= 0 else self._raw.read()
        self._md5.update(data)
        self.size += len(data)
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(1 << 20):
            pass
        self._raw.close()

    def md5(self) -> str:
        return base64.b64encode(self._md5.digest()).decode("ascii")
