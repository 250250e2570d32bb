"""The files of a day: listing them through Hadoop, and finding the unreadable gzip files by name.

Listing goes through the JVM's Hadoop FileSystem, so the same code reads `s3://` through EMRFS
on the cluster and plain paths locally. The gzip check runs on the executors: Spark's own
`ignoreCorruptFiles` would skip a broken file without saying which one, and a job that fails
on the first broken file names only that one. Checking every `.gz` file in one job names all.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import zlib
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Dict, Iterator, List, Optional
from urllib.parse import unquote

log = logging.getLogger(__name__)

_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class SourceFile:
    path: str  # as Hadoop names it: file:/..., s3://bucket/...
    size: int  # bytes on storage (compressed size for .gz)

    @property
    def gzipped(self) -> bool:
        return self.path.endswith(".gz")


def day_folder(root: str, day: date) -> str:
    """`<root>/dt=YYYY-MM-DD`: the layout the event writers use."""
    return f"{root.rstrip('/')}/dt={day.isoformat()}"


def day_folders(root: str, day: date) -> List[str]:
    """The folders day D needs: dt=D, and dt=D+1 for events that arrived after midnight."""
    return [day_folder(root, day), day_folder(root, day + timedelta(days=1))]


def is_data_file_name(name: str) -> bool:
    """Spark's own rule: names starting with `_` or `.` are markers and checksums, not data."""
    return bool(name) and not name.startswith(("_", "."))


def list_data_files(spark, folder: str) -> List[SourceFile]:
    """Non-hidden, non-empty files directly in `folder`; an absent folder gives an empty list."""
    jvm = spark._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(folder)
    fs = hpath.getFileSystem(spark._jsc.hadoopConfiguration())
    if not fs.exists(hpath):
        return []
    files = []
    for status in fs.listStatus(hpath):
        name = status.getPath().getName()
        if status.isFile() and is_data_file_name(name) and status.getLen() > 0:
            files.append(SourceFile(status.getPath().toString(), int(status.getLen())))
    return sorted(files, key=lambda f: f.path)


def gzip_problem(content: Optional[bytes]) -> Optional[str]:
    """Why a gzip file cannot be read to its end (None when it can).

    Decompresses in chunks, so memory stays at one chunk beyond the compressed bytes; reading
    to the end makes Python verify each member's CRC and length, which is what catches a
    truncated upload or a file that is not gzip at all.
    """
    if content is None:
        return "no content"
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(content)) as stream:
            while stream.read(_READ_CHUNK):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None


def find_corrupt_gzip(spark, files: List[SourceFile]) -> Dict[str, str]:
    """{path: problem} for the `.gz` files among `files` that cannot be decompressed to the end.

    One Spark job: the binaryFile source hands each file's bytes to a Python UDF on the
    executors, and only the names and problems of the broken files come back to the driver.
    """
    gz_paths = [f.path for f in files if f.gzipped]
    if not gz_paths:
        return {}
    from pyspark.sql import functions as F

    problem = F.udf(gzip_problem, "string")
    checked = (
        spark.read.format("binaryFile")
        .load(gz_paths)
        .select(F.col("path"), problem(F.col("content")).alias("problem"))
        .where(F.col("problem").isNotNull())
    )
    with _one_file_per_task(spark):
        rows = checked.collect()
    found = {_canonical(row["path"]): row["problem"] for row in rows}
    by_canonical = {_canonical(p): p for p in gz_paths}
    return {by_canonical.get(k, k): v for k, v in found.items()}


@contextlib.contextmanager
def _one_file_per_task(spark) -> Iterator[None]:
    """A task holds one file's bytes at a time, not a 128 MB split's worth of small files.

    The Python UDF receives rows in batches; with several files per split a batch would hold
    all of their contents at once in the JVM and in the worker.
    """
    keys = {"spark.sql.files.maxPartitionBytes": "1", "spark.sql.files.openCostInBytes": "0"}
    saved = {k: spark.conf.get(k, None) for k in keys}
    for k, v in keys.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


def _canonical(path: str) -> str:
    """`file:///x`, `file:/x` and a %-encoded form name the same file; compare them alike."""
    path = unquote(path)
    if path.startswith("file:"):
        return "file:/" + path[len("file:") :].lstrip("/")
    return path
