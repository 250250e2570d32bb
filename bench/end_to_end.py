"""The whole job on growing days: does time grow linearly and driver memory stay flat?

Days of 1, 2 and 4 million events (a tenth with SIZE=small; Zipf-like popularity over 20,000
keys, 80% of them in the catalog) go through `process_data.py` as a child process (local[2]),
against the harness's PostgreSQL and moto's DynamoDB. Each size gets its own database so every
run starts from the same empty state. The per-stage times come from `pipeline_runs.stats`, which
the pipeline writes when it publishes. Ratios: the job's time at 4x over 1x (goal <= 4.4,
linear plus 10%) and the peak RSS of the driver JVM and of any single Python worker at 4x over
1x (goal <= 1.2: nothing on the driver or in a worker grows with the data).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any, Dict, List, Optional

import psutil

from bench.common import BenchContext, BenchRow
from spark_app.local.catalog import load_catalog
from spark_app.local.sample_data import SampleSpec, catalog_keys, write_day

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 19)
SIZES = (1_000_000, 2_000_000, 4_000_000)
TABLE = "bench_e2e_catalog"
STAGE_ORDER = ("migrate", "extract", "enrich", "aggregate", "load", "quality", "publish")
NOTE: Optional[str] = None  # set when the module skips


def run(ctx: BenchContext) -> List[BenchRow]:
    global NOTE
    if not (ROOT / "process_data.py").exists() or not (ROOT / "pipelines" / "catalog_match_rate.py").exists():
        NOTE = "end_to_end: skipped, process_data.py or pipelines/catalog_match_rate.py is not there yet"
        return []
    load_catalog_table(ctx)
    results = []
    for base in SIZES:
        n = ctx.scaled(base)
        results.append(_run_size(ctx, n, label=f"{base // 1_000_000}x"))
        _say(_breakdown(results[-1]))
    return _rows(results)


def spec(n: int) -> SampleSpec:
    return SampleSpec(events=n, advertisers=20, products_per_advertiser=1000, catalog_share=0.8, seed=7)


def load_catalog_table(ctx: BenchContext) -> None:
    import boto3

    client = boto3.client("dynamodb", endpoint_url=ctx.moto.endpoint_url, region_name="us-east-1")
    start = time.perf_counter()
    n = load_catalog(client, TABLE, catalog_keys(spec(1)))
    _say(f"end_to_end: catalog of {n:,} keys loaded in {time.perf_counter() - start:.1f} s")


def _run_size(ctx: BenchContext, n: int, label: str) -> Dict[str, Any]:
    work = ctx.work_dir / f"e2e_{n}"
    start = time.perf_counter()
    write_day(work / "events", DAY, spec(n))
    _say(f"end_to_end: {n:,} events written in {time.perf_counter() - start:.1f} s")
    return run_job(ctx, work, n, label, database=f"bench_e2e_{n}")


def run_job(
    ctx: BenchContext, work: Path, n: int, label: str, database: str, fmt: str = "json"
) -> Dict[str, Any]:
    """`process_data.py` in a fresh process on the day under `work/events`, against a new database of
    the bench's PostgreSQL and the catalog in moto (`load_catalog_table`): its wall time, peaks, stats."""
    ctx.pg_server.create_database(database)
    url = f"postgresql://postgres@127.0.0.1:{ctx.pg_server.port}/{database}"
    conf = _write_conf(work, url, ctx.moto.endpoint_url, fmt)
    cmd = [sys.executable, "process_data.py", "--pipeline", "catalog_match_rate", "--date", str(DAY)]
    cmd += ["--conf", str(conf)]
    log_path = work / "job.log"
    _say(f"end_to_end: running the job on {n:,} events (log {log_path})")
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT)
        with TreePeak(proc.pid) as peak:
            code = proc.wait()
        wall = time.perf_counter() - start
    if code != 0:
        lines = log_path.read_text(errors="replace").strip().splitlines()
        causes = [ln.strip() for ln in lines if "Error" in ln or " ERROR " in ln]
        cause = causes[-1] if causes else "see the log"
        raise RuntimeError(f"job exit {code} on {n:,} events: {cause}\n" + "\n".join(lines[-12:]))
    status, stats = read_run(url)
    return {"n": n, "label": label, "wall": wall, "peak": peak, "status": status, "stats": stats or {}}


def _write_conf(work: Path, pg_url: str, dynamodb_url: str, fmt: str = "json") -> Path:
    conf = {
        "source": "events",
        "spark": {"master": "local[2]", "app_name": "bench-end-to-end"},
        "events": {
            "path": str(work / "events"),
            "format": fmt,
            "quarantine_path": str(work / "quarantine"),
        },
        "dynamodb": {"table": TABLE, "region": "us-east-1", "endpoint_url": dynamodb_url},
        "postgres": {"url": pg_url},
    }
    path = work / "conf.yaml"
    path.write_text(json.dumps(conf))  # JSON is YAML
    return path


def read_run(url: str):
    """(status, stats) of the latest run of the day; stats as the pipeline stored them (may be None)."""
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT status, stats FROM pipeline_runs WHERE day = %s ORDER BY started_at DESC LIMIT 1",
                (DAY,),
            )
            row = cur.fetchone()
    finally:
        conn.close()
    if row is None:
        return None, None
    stats = row[1] if isinstance(row[1], dict) or row[1] is None else json.loads(row[1])
    return row[0], stats


def _stages(result: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    stages = result["stats"].get("stages") if isinstance(result["stats"], dict) else None
    found = {k: v for k, v in (stages or {}).items() if isinstance(v, dict) and "seconds" in v}
    # jsonb keeps no key order: show the stages in the order the job runs them
    order = {name: i for i, name in enumerate(STAGE_ORDER)}
    return dict(sorted(found.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def _job_seconds(result: Dict[str, Any]) -> float:
    """The pipeline's own total (no JVM start-up) when it recorded one, else the wall time."""
    total = result["stats"].get("total_seconds") if isinstance(result["stats"], dict) else None
    return float(total) if total else result["wall"]


def _breakdown(result: Dict[str, Any]) -> str:
    stages = _stages(result)
    head = f"end_to_end {result['label']} ({result['n']:,} events): wall {result['wall']:.1f} s"
    lines = [f"{head}, run {result['status']}"]
    slowest = max(stages, key=lambda s: stages[s]["seconds"], default=None)
    for name, st in stages.items():
        mark = "   <- slowest" if name == slowest else ""
        lines.append(f"  {name:<10} {st['seconds']:8.1f} s  rows {st.get('rows')}{mark}")
    return "\n".join(lines)


def _rows(results: List[Dict[str, Any]]) -> List[BenchRow]:
    base = results[0]
    rows = []
    for r in results:
        ratio = _job_seconds(r) / _job_seconds(base) if r is not base else None
        goal = f"(goal <= {1.1 * r['n'] / base['n']:.1f})"
        rows.append(
            BenchRow(
                f"end_to_end {r['label']}: process_data.py",
                r["n"],
                r["wall"],
                r["peak"].driver_mb or None,
                r["peak"].worker_mb or None,
                ratio,
                f"job time vs 1x {goal}" if ratio else "",
                extra={"job_seconds": _job_seconds(r), "status": r["status"], "stats": r["stats"]},
            )
        )
    big = results[-1]
    stages = _stages(big)
    slowest = max(stages, key=lambda s: stages[s]["seconds"], default=None)
    for name, st in stages.items():
        share = st["seconds"] / _job_seconds(big) if _job_seconds(big) else None
        label = "of the job" + ("  <- slowest" if name == slowest else "")
        # rows: the day's events, so rows/s compares the stages; the stage's own output rows in extra
        row = BenchRow(f"  {big['label']} stage {name}", big["n"], st["seconds"], None, None, share, label)
        row.extra = {"output_rows": st.get("rows")}
        rows.append(row)
    for what, attr in (("driver JVM", "driver_mb"), ("Python worker", "worker_mb")):
        lo, hi = getattr(base["peak"], attr), getattr(big["peak"], attr)
        rows.append(
            BenchRow(
                f"end_to_end: {what} peak {big['label']}/1x",
                big["n"],
                big["wall"],
                big["peak"].driver_mb if attr == "driver_mb" else None,
                big["peak"].worker_mb if attr == "worker_mb" else None,
                hi / lo if lo else None,
                "(goal <= 1.2)",
            )
        )
    return rows


class TreePeak:
    """Peak RSS in a process tree: the JVM (driver), the largest single Python worker, the job's Python."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.driver_mb = 0.0
        self.worker_mb = 0.0
        self.job_python_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            try:
                self.job_python_mb = max(self.job_python_mb, root.memory_info().rss / 2**20)
                children = root.children(recursive=True)
            except psutil.NoSuchProcess:
                return
            for child in children:
                try:
                    cmd = " ".join(child.cmdline())
                    rss = child.memory_info().rss / 2**20
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                if "java" in cmd.split(" ")[0]:
                    self.driver_mb = max(self.driver_mb, rss)
                elif "pyspark" in cmd or "worker_daemon" in cmd:  # Spark's daemon or ours (local runs)
                    self.worker_mb = max(self.worker_mb, rss)
            time.sleep(self.interval)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
