"""Stage progress: which stage runs, how long each took, and the counts it produced.

Every stage logs a start line and an end line with its seconds and counts, so a cluster log
shows where a run is; the summary (also stored in `pipeline_runs.stats`) shows at a glance
which stage is the slowest.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional

log = logging.getLogger("spark_app.progress")


@dataclass
class StageRecord:
    name: str
    seconds: float = 0.0
    rows: Optional[int] = None
    detail: Dict[str, Any] = field(default_factory=dict)


class Progress:
    """Times named stages and keeps the run's counts."""

    def __init__(self, label: str = "") -> None:
        self.label = label
        self.stages: List[StageRecord] = []
        self.counts: Dict[str, int] = {}
        self.notes: List[str] = []  # what an operator must not miss (e.g. a guard overridden)
        self.facts: Dict[str, Any] = {}  # JSON-able facts kept in the run's stats (quarantine path, warnings)
        self._started = time.perf_counter()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[StageRecord]:
        record = StageRecord(name)
        log.info("%s> %s ...", self._prefix(), name)
        start = time.perf_counter()
        try:
            yield record
        except BaseException:
            record.seconds = time.perf_counter() - start
            self.stages.append(record)
            log.error("%sx %s failed after %.1f s", self._prefix(), name, record.seconds)
            raise
        record.seconds = time.perf_counter() - start
        self.stages.append(record)
        rows = f", {record.rows:,} rows" if record.rows is not None else ""
        extra = "".join(f", {k}={_fmt(v)}" for k, v in record.detail.items())
        log.info("%sdone %s in %.1f s%s%s", self._prefix(), name, record.seconds, rows, extra)

    def add_note(self, note: str, warn: bool = True) -> None:
        """A line for the summary; logged as a warning unless it only says what was chosen (`warn=False`)."""
        log.log(logging.WARNING if warn else logging.INFO, "%s%s", self._prefix(), note)
        self.notes.append(note)

    def add_counts(self, counts: Dict[str, int]) -> None:
        self.counts.update({k: int(v) for k, v in counts.items()})

    @property
    def total_seconds(self) -> float:
        return time.perf_counter() - self._started

    def as_stats(self) -> Dict[str, Any]:
        """JSON-able summary, stored in pipeline_runs.stats."""
        return {
            "stages": {
                s.name: {"seconds": round(s.seconds, 3), "rows": s.rows, **s.detail} for s in self.stages
            },
            "counts": dict(self.counts),
            "notes": list(self.notes),
            "total_seconds": round(self.total_seconds, 3),
            **self.facts,
        }

    def format_summary(self) -> str:
        lines = ["stage        seconds        rows"]
        slowest = max(self.stages, key=lambda s: s.seconds, default=None)
        for s in self.stages:
            mark = "  <- slowest" if s is slowest and len(self.stages) > 1 else ""
            rows = f"{s.rows:,}" if s.rows is not None else "-"
            lines.append(f"{s.name:<12} {s.seconds:>7.1f} {rows:>11}{mark}")
        lines.append(f"{'total':<12} {self.total_seconds:>7.1f}")
        if self.counts:
            width = max(len(k) for k in self.counts)
            lines.append("")
            lines += [f"{k:<{width}}  {v:>12,}" for k, v in self.counts.items()]
        if self.notes:
            lines += ["", *(f"NOTE: {n}" for n in self.notes)]
        return "\n".join(lines)

    def _prefix(self) -> str:
        return f"[{self.label}] " if self.label else ""


@contextlib.contextmanager
def step(steps: Optional[Dict[str, float]], name: str) -> Iterator[None]:
    """Add the seconds of the block to `steps[name]` (a stage's breakdown); nothing when `steps` is None."""
    start = time.perf_counter()
    try:
        yield
    finally:
        if steps is not None:
            steps[name] = round(steps.get(name, 0.0) + time.perf_counter() - start, 3)


def _fmt(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)
