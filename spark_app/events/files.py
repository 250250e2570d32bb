"""Runs on executors (each file opened and checked in its task) and the driver (listing the day).

Listing goes through the JVM's Hadoop FileSystem, so the same code reads `s3://` through EMRFS
on the cluster, through S3A locally (moto's server) and plain paths. Files are opened with
boto3 for `s3://`, at the endpoint of the `s3` config, which travels to the tasks in their
closure (never through the environment). The gzip check runs on the executors: Spark's own
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

from spark_app.config import S3Config
from spark_app.errors import SourceError
from spark_app.s3_uri import is_s3_uri, split_s3_uri

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
    """Non-hidden, non-empty files directly in `folder`; an absent folder gives an empty list.

    A store that refuses the listing (credentials, a missing bucket, no route to the endpoint)
    is a SourceError naming the folder and the store's own reason.
    """
    jvm = spark._jvm
    try:
        hpath = jvm.org.apache.hadoop.fs.Path(folder)
        fs = hpath.getFileSystem(spark._jsc.hadoopConfiguration())
        if not fs.exists(hpath):
            return []
        statuses = list(fs.listStatus(hpath))
    except Exception as exc:  # noqa: BLE001 - Py4J carries every JVM error alike
        raise SourceError(f"{folder}: listing failed: {_java_reason(exc)}") from exc
    files = []
    for status in statuses:
        name = status.getPath().getName()
        if status.isFile() and is_data_file_name(name) and status.getLen() > 0:
            files.append(SourceFile(status.getPath().toString(), int(status.getLen())))
    return sorted(files, key=lambda f: f.path)


def _java_reason(exc: BaseException) -> str:
    """The first line of a JVM exception's message (Py4J adds its own lines around it)."""
    java = getattr(exc, "java_exception", None)
    text = str(java.toString()) if java is not None else str(exc)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0][:500] if lines else type(exc).__name__


def gzip_problem(content) -> Optional[str]:
    """Why a gzip stream cannot be read to its end (None when it can).

    `content` is the file's bytes or a binary file object. Decompression goes chunk by chunk,
    so memory stays at one chunk; reading to the end makes Python verify each member's CRC
    and length, which is what catches a truncated upload or a file that is not gzip at all.
    """
    if content is None:
        return "no content"
    fileobj = io.BytesIO(content) if isinstance(content, (bytes, bytearray)) else content
    try:
        with gzip.GzipFile(fileobj=fileobj) as stream:
            while stream.read(_READ_CHUNK):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None


def find_corrupt_gzip(spark, files: List[SourceFile], s3: Optional[S3Config] = None) -> Dict[str, str]:
    """{path: problem} for the `.gz` files among `files` that cannot be decompressed to the end.

    One Spark job, one file per task: each task streams its file itself (the local filesystem,
    or S3 through boto3) and decompresses it chunk by chunk, so no file's bytes pass through
    the JVM and a task's memory is one chunk however large the file. Only the names and
    problems of the broken files come back to the driver. `s3` (the endpoint) goes with the tasks.
    """
    gz_paths = [f.path for f in files if f.gzipped]
    if not gz_paths:
        return {}
    checked = spark.sparkContext.parallelize(gz_paths, len(gz_paths)).map(lambda p: check_gzip_file(p, s3))
    return {path: problem for path, problem in checked.collect() if problem is not None}


def check_gzip_file(path: str, s3: Optional[S3Config] = None):
    """(path, problem or None); runs on an executor."""
    try:
        with open_source(path, s3) as stream:
            return path, gzip_problem(stream)
    except FileNotFoundError:
        return path, "file vanished after listing"
    except Exception as exc:  # noqa: BLE001 - an unreadable file is what this check reports
        return path, f"cannot open: {type(exc).__name__}: {exc}"


def s3_client(s3: Optional[S3Config] = None):
    """A boto3 S3 client at the configured endpoint (AWS's own when `s3` sets none)."""
    import boto3
    from botocore.config import Config as BotoConfig

    if s3 is None or (s3.endpoint_url is None and not s3.path_style_access):
        return boto3.client("s3")
    style = {"addressing_style": "path"} if s3.path_style_access else {}
    return boto3.client("s3", endpoint_url=s3.endpoint_url, config=BotoConfig(s3=style))


@contextlib.contextmanager
def open_source(path: str, s3: Optional[S3Config] = None) -> Iterator:
    """A binary stream of a listed file: `file:` paths directly, `s3://` through boto3 at `s3`'s endpoint."""
    if is_s3_uri(path):
        bucket, key = split_s3_uri(path)
        body = s3_client(s3).get_object(Bucket=bucket, Key=unquote(key))["Body"]
        try:
            yield body
        finally:
            body.close()
        return
    local = path[len("file:") :] if path.startswith("file:") else path
    local = "/" + local.lstrip("/") if path.startswith("file:") else local
    try:
        stream = open(local, "rb")
    except FileNotFoundError:
        stream = open(unquote(local), "rb")
    with stream:
        yield stream


