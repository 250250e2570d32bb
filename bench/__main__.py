"""`make bench`: every stage's benchmark against one PostgreSQL and one moto, one table.

    python -m bench [--size default|small] [--only extract,load] [--timeout 480]

One embedded PostgreSQL (TCP) and one moto server serve the whole run. Each `bench/<stage>.py`
runs in its own child process (`python -m bench --child <stage> ...`), so every module gets a
fresh JVM with the Spark settings it wants and no memory leaks from one module into the next's
figures. A missing module is skipped with a note; a failing or timed-out one is a FAILED row
with its error, and the others still run. The table is printed and written to
`.bench/latest.json` with the machine's description.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from bench.common import SIZES, BenchContext, BenchRow, format_table

STAGES = (
    "enrich", "enrich_export", "load", "extract", "extract_stage", "presto", "quality", "deequ", "end_to_end",
    "report",
)
# whole jobs (end_to_end, extract_stage) / a Trino server / a catalog into moto; others DEFAULT_TIMEOUT
TIMEOUTS = {"end_to_end": 1200.0, "extract_stage": 1200.0, "presto": 1200.0, "enrich_export": 1200.0}
DEFAULT_TIMEOUT = 480.0
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".bench" / "latest.json"


def parse_args(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--size", choices=sorted(SIZES), default="default")
    p.add_argument("--only", help="comma-separated stages (default: all of " + ", ".join(STAGES) + ")")
    p.add_argument("--timeout", type=float, help="seconds per stage module (default: 480, some 1200)")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--child", help=argparse.SUPPRESS)  # internal: run one module, write its rows
    p.add_argument("--work-dir", help=argparse.SUPPRESS)
    p.add_argument("--pg", help=argparse.SUPPRESS)  # data_dir:port:database
    p.add_argument("--moto-port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--rows-out", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# --------------------------------------------------------------------------- parent


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")  # pgserver's import, harmless
    if args.child:
        return run_child(args)
    stages = [s.strip() for s in args.only.split(",")] if args.only else list(STAGES)
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        print(f"unknown stage(s): {', '.join(unknown)}; known: {', '.join(STAGES)}", file=sys.stderr)
        return 2
    from spark_app.local.servers import LocalMoto, LocalPostgres, free_port
    from spark_app.session import fake_aws_credentials, prepare_local_environment

    prepare_local_environment()
    fake_aws_credentials()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        pg = LocalPostgres(Path(work) / "pg", free_port(), database="bench")
        moto = LocalMoto(free_port())
        _say(f"bench: size={args.size}; PostgreSQL on :{pg.port}, moto on :{moto.port}; work dir {work}")
        try:
            pg.start()
            moto.start()
            rows, notes = run_stages(stages, args, Path(work), pg, moto)
        finally:
            moto.stop()
            pg.stop()
    total = time.perf_counter() - started
    print(format_table(rows))
    for note in notes:
        print(f"note: {note}")
    print(f"total {total:.0f} s on {machine_info()['cores']} cores; written to {args.out}")
    write_json(Path(args.out), args.size, rows, notes, total)
    return 1 if any(r.extra.get("failed") for r in rows) else 0


def run_stages(stages: List[str], args, work: Path, pg, moto) -> Tuple[List[BenchRow], List[str]]:
    rows: List[BenchRow] = []
    notes: List[str] = []
    for stage in stages:
        if importlib.util.find_spec(f"bench.{stage}") is None:
            notes.append(f"{stage}: skipped, bench/{stage}.py does not exist yet")
            continue
        _say(f"\n== bench {stage}")
        stage_rows, note = run_in_child(stage, args, work, pg, moto)
        rows += stage_rows
        if note:
            notes.append(note)
        with contextlib.suppress(Exception):
            moto.reset()  # free moto's memory; every module creates what it needs
    return rows, notes


def run_in_child(stage: str, args, work: Path, pg, moto) -> Tuple[List[BenchRow], Optional[str]]:
    """Run one module in its own process; a crash or timeout becomes a FAILED row."""
    stage_dir = work / stage
    stage_dir.mkdir()
    rows_out = stage_dir / "rows.json"
    cmd = [sys.executable, "-m", "bench", "--child", stage, "--size", args.size, "--work-dir", str(stage_dir)]
    cmd += ["--pg", f"{pg.data_dir}:{pg.port}:{pg.database}", "--moto-port", str(moto.port)]
    cmd += ["--rows-out", str(rows_out)]
    timeout = args.timeout or TIMEOUTS.get(stage, DEFAULT_TIMEOUT)
    start = time.perf_counter()
    # its own process group, so a timeout (or Ctrl-C) also ends the JVM and any job it started
    proc = subprocess.Popen(cmd, cwd=str(ROOT), stdout=sys.stderr, start_new_session=True)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return [_failed(stage, time.perf_counter() - start, f"timed out after {timeout:.0f} s")], None
    except KeyboardInterrupt:
        _kill_group(proc)
        raise
    seconds = time.perf_counter() - start
    result = json.loads(rows_out.read_text()) if rows_out.exists() else {}
    if code != 0 or "error" in result:
        return [_failed(stage, seconds, result.get("error") or f"exit code {code}")], None
    rows = [_row_from_dict(d) for d in result.get("rows", [])]
    if not rows:
        return [], f"{stage}: skipped: {result.get('note') or 'the module reported no rows'}"
    return rows, result.get("note")


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _failed(stage: str, seconds: float, error: str) -> BenchRow:
    first = error.strip().splitlines()[0] if error.strip() else "no message"
    return BenchRow(f"{stage}: FAILED ({first[:100]})", 0, seconds, extra={"failed": True, "error": error})


def _row_from_dict(d: Dict[str, Any]) -> BenchRow:
    fields = ("stage", "rows", "seconds", "driver_peak_mb", "worker_peak_mb", "ratio", "ratio_label", "extra")
    return BenchRow(**{k: d[k] for k in fields if k in d})


# --------------------------------------------------------------------------- child


def _shared_postgres_class():
    from spark_app.local.servers import LocalPostgres

    class SharedPostgres(LocalPostgres):
        """The parent's server: start() attaches (it is running), stop() leaves it to the parent."""

        def stop(self) -> None:
            pass

    return SharedPostgres


def run_child(args: argparse.Namespace) -> int:
    """Inside the child: build the context on the shared servers, run the module, write its rows."""
    from spark_app.local.servers import LocalMoto
    from spark_app.session import fake_aws_credentials, prepare_local_environment

    prepare_local_environment()
    fake_aws_credentials()
    _SharedPostgres = _shared_postgres_class()
    data_dir, port, database = args.pg.rsplit(":", 2)
    ctx = BenchContext(
        size=args.size,
        work_dir=Path(args.work_dir),
        pg_server=_SharedPostgres(data_dir, int(port), database),
        moto=LocalMoto(args.moto_port),  # already answering: stop() leaves it alone
    )
    out = Path(args.rows_out)
    try:
        module = importlib.import_module(f"bench.{args.child}")
        rows = module.run(ctx)
        note = getattr(module, "NOTE", None)
        out.write_text(json.dumps({"rows": [r.as_dict() for r in rows], "note": note}, default=str))
        return 0
    except Exception as exc:
        traceback.print_exc()
        out.write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    finally:
        if ctx.spark is not None:
            ctx.spark.stop()


# --------------------------------------------------------------------------- output


def machine_info() -> Dict[str, Any]:
    import psutil

    return {
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "java": _java_version(),
        "platform": platform.platform(),
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": _git_commit(),
    }


def _java_version() -> Optional[str]:
    java = Path(os.environ["JAVA_HOME"]) / "bin" / "java" if os.environ.get("JAVA_HOME") else "java"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        res = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30)
        return (res.stderr or res.stdout).strip().splitlines()[0]
    return None


def _git_commit() -> Optional[str]:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        res = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        )
        return res.stdout.strip() or None
    return None


def write_json(path: Path, size: str, rows: List[BenchRow], notes: List[str], total: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "size": size,
        "total_seconds": round(total, 1),
        "machine": machine_info(),
        "rows": [r.as_dict() for r in rows],
        "notes": notes,
    }
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
