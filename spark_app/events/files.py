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
from typing import Iterator, List, Optional, Tuple
from urllib.parse import unquote

from spark_app.config import S3Config
from spark_app.errors import SourceError
from spark_app.s3_uri import is_s3_uri, local_path, split_s3_uri

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


SUCCESS_MARKER = "_SUCCESS"


@dataclass(frozen=True)
class FolderListing:
    """One day folder as listed once per run: its data files (literal names, sorted) and its marker."""

    path: str  # as the config names it
    exists: bool  # a local folder, or an S3 prefix holding at least one key
    files: Tuple[SourceFile, ...] = ()  # non-hidden, non-empty files directly in the folder
    has_success_marker: bool = False

    @property
    def data_files(self) -> int:
        return len(self.files)

    @property
    def data_bytes(self) -> int:
        return sum(f.size for f in self.files)


def list_folder(path: str, s3_client=None, page_size: int = 1000) -> FolderListing:
    """What one day folder holds, on S3 (pages of `page_size` keys) or on the local filesystem."""
    if is_s3_uri(path):
        return _list_s3(path, s3_client, page_size)
    return _list_local(path)


def list_source_files(folder: str, s3_client=None) -> List[SourceFile]:
    """Non-hidden, non-empty files directly in `folder` (absent: none), sorted by name."""
    return list(list_folder(folder, s3_client).files)


def _list_local(path: str) -> FolderListing:
    folder = local_path(path)
    if not os.path.isdir(folder):
        return FolderListing(path, exists=False)
    files, marker = [], False
    with os.scandir(folder) as entries:
        for entry in entries:
            if not entry.is_file():
                continue
            if entry.name == SUCCESS_MARKER:
                marker = True
            elif is_data_file_name(entry.name) and entry.stat().st_size > 0:
                files.append(SourceFile("file:" + os.path.abspath(entry.path), entry.stat().st_size))
    return FolderListing(path, True, tuple(sorted(files, key=lambda f: f.path)), marker)


def _list_s3(path: str, s3_client, page_size: int) -> FolderListing:
    """One paginated listing of the folder's prefix; S3 has no folders, a prefix with keys exists."""
    bucket, prefix = split_s3_uri(path.rstrip("/") + "/")
    scheme = path.split("://", 1)[0]
    client = s3_client or make_s3_client()
    files, marker, any_key = [], False, False
    try:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}
        )
        for page in pages:
            for obj in page.get("Contents", []):
                any_key = True
                name = obj["Key"][len(prefix) :]
                if "/" in name:  # a deeper "folder": not read by Spark for this day
                    continue
                if name == SUCCESS_MARKER:
                    marker = True
                elif is_data_file_name(name) and obj["Size"] > 0:
                    files.append(SourceFile(f"{scheme}://{bucket}/{obj['Key']}", int(obj["Size"])))
    except Exception as exc:  # noqa: BLE001 - botocore's errors share no useful base here
        raise listing_error(path, bucket, exc) from exc
    return FolderListing(path, any_key, tuple(sorted(files, key=lambda f: f.path)), marker)


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
    local = local_path(path)
    try:
        stream = open(local, "rb")
    except FileNotFoundError:
        stream = open(unquote(local), "rb")
    with stream:
        yield stream


