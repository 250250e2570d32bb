"""Is day D's input there? Checked before Spark starts, so a scheduler can retry cheaply.

`dt=D` must exist and be complete: at least `min_files` data files and, when the writers
are configured to drop one, a `_SUCCESS` marker. Otherwise `DataNotReady` (exit code 3):
the run did nothing and can be retried later. `dt=D+1` only holds late arrivals, so its
absence is a warning, not a failure: the day is computed without them.

S3 prefixes are listed with boto3 `list_objects_v2` (paginated; the endpoint comes from the
optional client, else from the `s3` config, else boto3's defaults); local folders with the
filesystem. Only the two folders the day needs are listed, never the whole root.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import List, Optional

from spark_app.config import EventsConfig, S3Config
from spark_app.errors import ConfigError, DataNotReady
from spark_app.events.files import day_folder, is_data_file_name, listing_error
from spark_app.events.files import s3_client as make_s3_client
from spark_app.s3_uri import is_s3_uri, split_s3_uri

log = logging.getLogger(__name__)

SUCCESS_MARKER = "_SUCCESS"


@dataclass(frozen=True)
class FolderListing:
    path: str
    exists: bool
    data_files: int = 0
    data_bytes: int = 0
    has_success_marker: bool = False


@dataclass(frozen=True)
class AvailabilityReport:
    day: date
    folder: FolderListing  # dt=D
    next_folder: FolderListing  # dt=D+1
    warnings: List[str] = field(default_factory=list)

    @property
    def next_day_present(self) -> bool:
        return self.next_folder.data_files > 0


def check_day_available(
    cfg: EventsConfig, day: date, s3_client=None, s3: Optional[S3Config] = None
) -> AvailabilityReport:
    """Raise DataNotReady unless dt=D is complete; report (and log) what dt=D+1 lacks."""
    client = s3_client or (make_s3_client(s3) if is_s3_uri(cfg.path) else None)
    this_day = list_folder(day_folder(cfg.path, day), client)
    next_day = list_folder(day_folder(cfg.path, day + timedelta(days=1)), client)
    if not this_day.exists and not root_exists(cfg.path, client):
        raise ConfigError(
            f"events.path: {cfg.path} does not exist (no dt=YYYY-MM-DD/ folder under it); "
            "check the path in the config: a missing root is not a day that is late"
        )
    _require_complete(cfg, day, this_day)
    warnings = _next_day_warnings(cfg, day, next_day)
    for warning in warnings:
        log.warning(warning)
    return AvailabilityReport(day=day, folder=this_day, next_folder=next_day, warnings=warnings)


def _require_complete(cfg: EventsConfig, day: date, listing: FolderListing) -> None:
    if not listing.exists:
        raise DataNotReady(f"events of {day}: {listing.path} does not exist yet; retry later")
    if cfg.require_success_marker and not listing.has_success_marker:
        raise DataNotReady(
            f"events of {day}: {listing.path} has no {SUCCESS_MARKER} marker; "
            f"the writer has not finished the day ({listing.data_files} data files so far)"
        )
    if listing.data_files < cfg.min_files:
        raise DataNotReady(
            f"events of {day}: {listing.path} holds {listing.data_files} data files, "
            f"fewer than min_files={cfg.min_files}; the day is incomplete"
        )


def _next_day_warnings(cfg: EventsConfig, day: date, listing: FolderListing) -> List[str]:
    if listing.data_files == 0:
        return [
            f"events of {day}: {listing.path} is {'empty' if listing.exists else 'absent'}; "
            f"events of {day} that arrived after midnight UTC will be missing"
        ]
    if cfg.require_success_marker and not listing.has_success_marker:
        return [f"events of {day}: {listing.path} is still being written; some late events may be missing"]
    return []


def root_exists(path: str, s3_client=None) -> bool:
    """True if the events root holds anything: a local folder, or at least one key under an S3 prefix."""
    if not is_s3_uri(path):
        return os.path.isdir(path[len("file://"):] if path.startswith("file://") else path)
    bucket, prefix = split_s3_uri(path.rstrip("/") + "/")
    client = s3_client or make_s3_client()
    try:
        return bool(client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0))
    except Exception as exc:  # noqa: BLE001 - botocore's errors share no useful base here
        raise listing_error(path, bucket, exc) from exc


def list_folder(path: str, s3_client=None, page_size: int = 1000) -> FolderListing:
    """What one day folder holds, on S3 (pages of `page_size` keys) or on the local filesystem."""
    if is_s3_uri(path):
        return _list_s3(path, s3_client, page_size)
    return _list_local(path)


def _list_local(path: str) -> FolderListing:
    folder = path[len("file://") :] if path.startswith("file://") else path
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
                files.append(entry.stat().st_size)
    return FolderListing(path, True, len(files), sum(files), marker)


def _list_s3(path: str, s3_client, page_size: int) -> FolderListing:
    """One paginated listing of the folder's prefix; S3 has no folders, a prefix with keys exists."""
    bucket, prefix = split_s3_uri(path.rstrip("/") + "/")
    client = s3_client or make_s3_client()
    files, marker, any_key = [], False, False
    try:
        paginator = client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size})
        for page in pages:
            for obj in page.get("Contents", []):
                any_key = True
                name = obj["Key"][len(prefix) :]
                if "/" in name:  # a deeper "folder": not read by Spark for this day
                    continue
                if name == SUCCESS_MARKER:
                    marker = True
                elif is_data_file_name(name) and obj["Size"] > 0:
                    files.append(obj["Size"])
    except Exception as exc:  # noqa: BLE001 - botocore's errors share no useful base here
        raise listing_error(path, bucket, exc) from exc
    return FolderListing(path, any_key, len(files), sum(files), marker)
