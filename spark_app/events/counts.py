"""Runs on the driver: the day's counts from the reports its one pass observed, and the bad share.

Every file task reports its lines, blank lines and outcomes (or the problem that made the file
unreadable); every dedup bucket reports the events it received and how many were distinct. The
sums must add up (`day_counts`), and every listed file must have reported (`check_every_file_reported`).
"""

from __future__ import annotations

import json
from typing import Dict, List, Tuple

from spark_app.errors import PipelineError
from spark_app.events.files import SourceFile
from spark_app.events.parse import REASONS


def day_counts(observed) -> Tuple[Dict[str, int], List[dict]]:
    """The day's counts from the observed reports (the files', and the buckets': the events they
    received and how many were distinct); raises when the lines read (counted from the bytes)
    and their outcomes do not add up, or when the buckets did not receive every in-day event."""
    reports = [json.loads(line) for line in (observed.get("reports") or "").split("\n") if line]
    total: Dict[str, int] = {}
    for report in reports:
        for key, value in report.items():
            if isinstance(value, int):
                total[key] = total.get(key, 0) + value
    counts = {f"rejected_{r}": total.get(f"rejected_{r}", 0) for r in REASONS}
    counts.update(
        {
            "lines_read": total.get("lines", 0) - total.get("blank", 0),
            "in_day": total.get("received", 0),
            "distinct_events": total.get("distinct", 0),
            "outside_day": total.get("outside_day", 0),
            "rejected": sum(counts.values()),
            "unknown_event_type": total.get("unknown_type", 0),
            "blank_lines": total.get("blank", 0),
        }
    )
    if total.get("received", 0) != total.get("in_day", 0):
        raise PipelineError(
            f"event counts do not add up: the files kept {total.get('in_day', 0):,} in-day events but "
            f"the dedup buckets received {total.get('received', 0):,}; refusing to go on"
        )
    accounted = counts["in_day"] + counts["outside_day"] + counts["rejected"]
    if accounted != counts["lines_read"]:
        raise PipelineError(
            f"event counts do not add up: {counts['lines_read']:,} lines read but {accounted:,} "
            f"accounted for ({counts}); refusing to go on with a day that may have lost lines"
        )
    return counts, reports


def check_every_file_reported(files: List[SourceFile], reports: List[dict]) -> None:
    """Each listed file reported exactly once: counts that add up over a missing file are no proof."""
    reported = sorted(r["path"] for r in reports if r.get("path"))
    listed = sorted(f.path for f in files)
    if reported != listed:
        missing = sorted(set(listed) - set(reported))[:3]
        raise PipelineError(
            f"event counts are incomplete: {len(listed)} files listed, {len(reported)} file reports "
            f"observed (missing e.g. {missing}); refusing to go on with a day that may have lost lines"
        )


def rejected_of(report: dict) -> int:
    return sum(v for k, v in report.items() if k.startswith("rejected_") and isinstance(v, int))


def by_folder(reports: List[dict]) -> Tuple[Dict[str, int], Dict[str, int]]:
    rejected: Dict[str, int] = {}
    lines: Dict[str, int] = {}
    for report in (r for r in reports if r.get("path")):  # the files' reports, not the buckets'
        folder = report["path"].rsplit("/", 1)[0]
        lines[folder] = lines.get(folder, 0) + int(report.get("lines", 0)) - int(report.get("blank", 0))
        if rejected_of(report):
            rejected[folder] = rejected.get(folder, 0) + rejected_of(report)
    return rejected, lines


def bad_share(counts: Dict[str, int], files: List[SourceFile], corrupt: Dict[str, str]) -> float:
    """Estimated share of the day's input lines that could not be used.

    c = bytes of unreadable files / bytes of all data files (their lines are unknown, so bytes
    stand in for lines); r = rejected / lines read from the readable files. The share is
    c + (1 - c) * r: the lost part plus the rejected part of what remained.
    """
    total = sum(f.size for f in files)
    lost = sum(f.size for f in files if f.path in corrupt)
    c = lost / total if total else 0.0
    r = counts["rejected"] / counts["lines_read"] if counts["lines_read"] else 0.0
    return c + (1.0 - c) * r
