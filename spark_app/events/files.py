"""Runs on executors (each file opened and checked in its task) and the driver (listing the day).

The driver lists the day's folders itself (boto3 for `s3://`, the filesystem otherwise) and hands
each task literal file names: nothing is globbed, so a root holding `[1]` or a file named
`part-0000*.json.gz` is read as what it is. `s3://` files are listed and opened with boto3 at the
endpoint of the `s3` config, which travels to the tasks in their closure (never through the
environment). A task opens its file with `open_source`; `compression` tells what it holds by its
first bytes, never by its name.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterator, List, Optional
from urllib.parse import unquote

from spark_app.config import S3Config
from spark_app.errors import SourceError
from spark_app.s3_uri import is_s3_uri, split_s3_uri

log = logging.getLogger(__name__)


class Unreadable(Exception):
    """A file that cannot be read to its end; its lines are left out and its bytes count as lost."""


@dataclass(frozen=True)
class SourceFile:
    path: str  # as Hadoop names it: file:/..., s3://bucket/...
    size: int  # bytes on storage (compressed size for a compressed file)


def day_folder(root: str, day: date) -> str:
    """`<root>/dt=YYYY-MM-DD`: the layout the event writers use."""
    return f"{root.rstrip('/')}/dt={day.isoformat()}"


def day_folders(root: str, day: date) -> List[str]:
    """The folders day D needs: dt=D, and dt=D+1 for events that arrived after midnight."""
    return [day_folder(root, day), day_folder(root, day + timedelta(days=1))]


def is_data_file_name(name: str) -> bool:
    """Spark's own rule: names starting with `_` or `.` are markers and checksums, not data."""
    return bool(name) and not name.startswith(("_", "."))


def list_source_files(folder: str, s3_client=None) -> List[SourceFile]:
    """Non-hidden, non-empty files directly in `folder` (absent: none), sorted by name."""
    if is_s3_uri(folder):
        return _list_s3_files(folder, s3_client)
    local = folder[len("file:") :] if folder.startswith("file:") else folder
    if not os.path.isdir(local):
        return []
    files = []
    with os.scandir(local) as entries:
        for entry in entries:
            if entry.is_file() and is_data_file_name(entry.name) and entry.stat().st_size > 0:
                files.append(SourceFile("file:" + os.path.abspath(entry.path), entry.stat().st_size))
    return sorted(files, key=lambda f: f.path)


def _list_s3_files(folder: str, s3_client) -> List[SourceFile]:
    bucket, prefix = split_s3_uri(folder.rstrip("/") + "/")
    scheme = folder.split("://", 1)[0]
    client = s3_client or make_s3_client()
    files = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix) :]
                if "/" not in name and is_data_file_name(name) and obj["Size"] > 0:
                    files.append(SourceFile(f"{scheme}://{bucket}/{obj['Key']}", int(obj["Size"])))
    except Exception as exc:  # noqa: BLE001 - botocore's errors share no useful base here
        raise listing_error(folder, bucket, exc) from exc
    return sorted(files, key=lambda f: f.path)


def listing_error(path: str, bucket: str, exc: BaseException) -> SourceError:
    """The clear error for a refused S3 listing: missing bucket, refused credentials (never the key)."""
    code = _error_code(exc)
    if code == "NoSuchBucket":
        return SourceError(f"{path}: bucket {bucket} does not exist; check events.path")
    if code in _REFUSED_CREDENTIALS:
        return SourceError(
            f"{path}: S3 refused the credentials ({code}); check the AWS credentials "
            f"of this run (and s3.endpoint_url)"
        )
    return SourceError(f"{path}: listing failed: {exc}")


_REFUSED_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken"}


def _error_code(exc: BaseException) -> Optional[str]:
    response: Optional[dict] = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if response else None


def s3_client(s3: Optional[S3Config] = None):
    """A boto3 S3 client at the configured endpoint (AWS's own when `s3` sets none)."""
    import boto3
    from botocore.config import Config as BotoConfig

    if s3 is None or (s3.endpoint_url is None and not s3.path_style_access):
        return boto3.client("s3")
    style = {"addressing_style": "path"} if s3.path_style_access else {}
    return boto3.client("s3", endpoint_url=s3.endpoint_url, config=BotoConfig(s3=style))


make_s3_client = s3_client  # for callers whose own argument is named s3_client


@contextlib.contextmanager
def open_source(path: str, s3: Optional[S3Config] = None) -> Iterator:
    """A binary stream of a listed file: `file:` paths directly, `s3://` through boto3 (`s3`'s endpoint)."""
    if is_s3_uri(path):
        bucket, key = split_s3_uri(path)
        body = s3_client(s3).get_object(Bucket=bucket, Key=key)["Body"]  # listed keys are literal
        try:
            yield body
        finally:
            body.close()
        return
    local = path[len("file:") :] if path.startswith("file:") else path
    local = "/" + local.lstrip("/") if path.startswith("file:") else local
    try:
        stream = open(local, "rb")
    except FileNotFoundError:
        stream = open(unquote(local), "rb")
    with stream:
        yield stream


