"""What every benchmark module shares: the row it reports and the memory sampler.

A benchmark module `bench/<stage>.py` exposes `run(ctx: BenchContext) -> list[BenchRow]`.
Figures are printed, never asserted: a ratio is measured against a peer or a limit in the
same run, on the same machine.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import psutil

SIZES = {"small": 0.1, "default": 1.0}


@dataclass
class BenchRow:
    stage: str  # "load: COPY via Arrow (ours)"
    rows: int
    seconds: float
    driver_peak_mb: Optional[float] = None
    worker_peak_mb: Optional[float] = None
    ratio: Optional[float] = None  # ours / peer (or / limit); > 1 means ours is faster
    ratio_label: str = ""  # "x Spark JDBC writer (goal >= 1.5)"
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")

    def as_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["rows_per_second"] = round(self.rows_per_second, 1)
        return d


@dataclass
class BenchContext:
    size: str  # "small" | "default"
    work_dir: Path  # scratch space for this run
    pg_server: Any = None  # spark_app.local.servers.LocalPostgres
    moto: Any = None  # spark_app.local.servers.LocalMoto
    spark: Any = None  # a shared local[2] SparkSession, when the stage wants one

    def scaled(self, n: int) -> int:
        """`n` at the default size; a tenth of it with SIZE=small."""
        return max(1, int(n * SIZES[self.size]))


class PeakMemory:
    """Samples RSS of this process's JVM child (the Spark driver) and of Python workers.

    Use as a context manager around a measured block; read `driver_mb` and `worker_mb`
    after. The JVM is a child of this Python process in local mode; Python workers are
    children of the JVM (pyspark.daemon and its forks). A worker's peak is the largest RSS
    of any single worker process, which is what batch-size bounds should hold.
    """

    def __init__(self, interval: float = 0.05, exclude: Sequence[int] = ()) -> None:
        self.interval = interval
        self.exclude = set(exclude)  # pids not to count, e.g. a server started by the benchmark
        self.driver_mb = 0.0
        self.worker_mb = 0.0
        self.python_driver_mb = 0.0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _loop(self) -> None:
        me = psutil.Process(os.getpid())
        while not self._stop.is_set():
            self._sample(me)
            time.sleep(self.interval)

    def _sample(self, me: psutil.Process) -> None:
        try:
            self.python_driver_mb = max(self.python_driver_mb, me.memory_info().rss / 2**20)
            for child in me.children(recursive=True):
                if child.pid in self.exclude:
                    continue
                try:
                    name = " ".join(child.cmdline()[:3])
                    rss = child.memory_info().rss / 2**20
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                if "java" in name:
                    self.driver_mb = max(self.driver_mb, rss)
                elif "python" in name:
                    self.worker_mb = max(self.worker_mb, rss)
        except psutil.NoSuchProcess:
            pass


def timed(fn, *args, **kwargs):
    """(result, seconds) of one call."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def format_table(rows: List[BenchRow]) -> str:
    headers = ["stage", "rows", "seconds", "rows/s", "driver MB", "worker MB", "ratio"]
    body = [
        [
            r.stage,
            f"{r.rows:,}",
            f"{r.seconds:.2f}",
            f"{r.rows_per_second:,.0f}",
            f"{r.driver_peak_mb:.0f}" if r.driver_peak_mb else "-",
            f"{r.worker_peak_mb:.0f}" if r.worker_peak_mb else "-",
            f"{r.ratio:.2f} {r.ratio_label}" if r.ratio is not None else "",
        ]
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *body)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(b) for b in body])
