"""Is day D's input there? Checked before Spark starts, so a scheduler can retry cheaply.

`dt=D` must exist and be complete: at least `min_files` data files and, when the writers
are configured to drop one, a `_SUCCESS` marker. Otherwise `DataNotReady` (exit code 3):
the run did nothing and can be retried later. `dt=D+1` only holds late arrivals, so its
absence is a warning, not a failure: the day is computed without them.

S3 prefixes are listed with boto3 `list_objects_v2` (paginated; the endpoint comes from the
optional client, else from the `s3` config, else boto3's defaults); local folders with the
filesystem (`spark_app.events.files.list_folder`). Only the two folders the day needs are
listed, never the whole root, and once per run: the read takes its files from the report's
`folders`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import List, Optional, Tuple

from spark_app.config import EventsConfig, S3Config
from spark_app.errors import ConfigError, DataNotReady
from spark_app.events.files import (
    SUCCESS_MARKER,
    FolderListing,
    day_folder,
    list_folder,
    listing_error,
)
from spark_app.events.files import s3_client as make_s3_client
from spark_app.s3_uri import is_s3_uri, local_path, split_s3_uri

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class AvailabilityReport:
    day: date
    folder: FolderListing  # dt=D
    next_folder: FolderListing  # dt=D+1
    warnings: List[str] = field(default_factory=list)

    @property
    def next_day_present(self) -> bool:
        return self.next_folder.data_files > 0

    @property
    def folders(self) -> Tuple[FolderListing, FolderListing]:
        """dt=D and dt=D+1 as listed here: the read takes its files from them instead of listing again."""
        return self.folder, self.next_folder


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
        return [
            f"events of {day}: {listing.path} is still being written (no _SUCCESS yet); late events may be "
            f"missing: re-run {day} once that folder is complete (the re-run replaces the day)"
        ]
    return []


def root_exists(path: str, s3_client=None) -> bool:
    """True if the events root holds anything: a local folder, or at least one key under an S3 prefix."""
    if not is_s3_uri(path):
        return os.path.isdir(local_path(path))
    bucket, prefix = split_s3_uri(path.rstrip("/") + "/")
    client = s3_client or make_s3_client()
    try:
        return bool(client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0))
    except Exception as exc:  # noqa: BLE001 - botocore's errors share no useful base here
        raise listing_error(path, bucket, exc) from exc
