"""The extract stage as a run pays for it: `process_data.py` in a fresh process, against DuckDB's
first run in a fresh Python process, on the same 4,000,000-event day (a tenth with SIZE=small).

Both formats (gzip JSON and Parquet, 8 files per folder, dt=D complete and dt=D+1 partial, the
end-to-end bench's keys and catalog) go through the whole job (`bench.end_to_end.run_job`: the
bench's PostgreSQL, moto's DynamoDB, local[2]). The row's seconds are the extract stage's from
`pipeline_runs.stats` (listing, availability, the pass, counts, everything before enrich starts;
not the JVM's start), its steps in `extra`. The peer is `bench.extract.duckdb_views` (2 threads,
the same validation, UTC day, dedup and views per key) in a new Python process: its time from
before `import duckdb` to the result, so it pays its own cold start too. Ratio: DuckDB's seconds
over the stage's (1 = as fast; goal >= 0.33, that is within 3 x; the moonshot 0.5).

    python -m bench.extract_stage --duckdb ROOT FORMAT DAY   # the peer's child: prints JSON
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any, Dict, List

from bench.common import BenchContext, BenchRow
from bench.end_to_end import DAY, ROOT, load_catalog_table, run_job, spec
from spark_app.local.sample_data import write_day

EVENTS = 4_000_000
FILES = 8
FORMATS = (("json", "gzip JSON"), ("parquet", "Parquet"))


def run(ctx: BenchContext) -> List[BenchRow]:
    load_catalog_table(ctx)
    n = ctx.scaled(EVENTS)
    rows = []
    for fmt, label in FORMATS:
        work = ctx.work_dir / f"stage_{fmt}"
        start = time.perf_counter()
        write_day(work / "events", DAY, spec(n), fmt=fmt, files=FILES)
        _say(f"extract_stage: {n:,} events as {label} written in {time.perf_counter() - start:.1f} s")
        duck = duckdb_cold(work / "events", fmt, DAY)
        job = run_job(ctx, work, n, f"extract stage {fmt}", database=f"bench_stage_{fmt}", fmt=fmt)
        rows.append(_row(n, label, job, duck))
        shutil.rmtree(work / "events", ignore_errors=True)  # the job log stays for the run
    return rows


def duckdb_cold(root: Path, fmt: str, day: date) -> Dict[str, Any]:
    """The peer's first run in a fresh Python process: its seconds, views and the process's wall time."""
    cmd = [sys.executable, "-m", "bench.extract_stage", "--duckdb", str(root), fmt, day.isoformat()]
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=str(ROOT), check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["process_seconds"] = round(time.perf_counter() - start, 2)
    _say(f"extract_stage: DuckDB cold {fmt}: {result['seconds']:.2f} s ({result['process_seconds']:.2f} s "
         f"with the interpreter), {result['views']:,} views")
    return result


def _row(n: int, label: str, job: Dict[str, Any], duck: Dict[str, Any]) -> BenchRow:
    stages = job["stats"].get("stages", {}) if isinstance(job["stats"], dict) else {}
    stage = stages.get("extract") or {}
    seconds = float(stage.get("seconds") or 0.0)
    steps = stage.get("steps") or {}
    counts = job["stats"].get("counts", {}) if isinstance(job["stats"], dict) else {}
    _say(f"extract_stage: {label} stage {seconds:.2f} s, steps {steps}, run {job['status']}")
    return BenchRow(
        f"extract stage {n // 1000:,}k: {label}, process_data.py in a fresh process (ours)",
        int(counts.get("lines_read") or n),
        seconds,
        driver_peak_mb=job["peak"].driver_mb or None,
        worker_peak_mb=job["peak"].worker_mb or None,
        ratio=duck["seconds"] / seconds if seconds else None,
        ratio_label="x DuckDB's first run in a fresh process (goal >= 0.33, moonshot 0.5)",
        extra={
            "steps": steps,
            "duckdb_seconds": duck["seconds"],
            "duckdb_process_seconds": duck["process_seconds"],
            "views": counts.get("product_view_events"),
            "duckdb_views": duck["views"],
            "job_wall_seconds": round(job["wall"], 2),
            "status": job["status"],
        },
    )


def _duckdb_child(root: str, fmt: str, day: str) -> None:
    from bench.extract import duckdb_views  # the harness (it imports duckdb only when called)

    start = time.perf_counter()
    import duckdb  # noqa: F401 - its import is part of a cold run

    views, found = duckdb_views(Path(root), fmt, date.fromisoformat(day))
    seconds = round(time.perf_counter() - start, 3)
    print(json.dumps({"seconds": seconds, "views": views, "keys": found["keys"]}))


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


if __name__ == "__main__" and sys.argv[1:2] == ["--duckdb"]:
    _duckdb_child(*sys.argv[2:5])
