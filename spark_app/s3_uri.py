"""S3 URIs: the one place that tells an S3 location from a local path, splits it, and strips `file:`."""

from __future__ import annotations

from typing import Tuple

S3_SCHEMES = ("s3://", "s3a://", "s3n://")


def is_s3_uri(path: str) -> bool:
    return path.startswith(S3_SCHEMES)


def split_s3_uri(uri: str) -> Tuple[str, str]:
    """s3://bucket/a/b (or s3a://, s3n://) -> ("bucket", "a/b"); ValueError for anything else."""
    if not is_s3_uri(uri):
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    return bucket, key


def local_path(path: str) -> str:
    """The filesystem path of a local location: `file:/a/b` (Hadoop's form) and `file:///a/b` give
    `/a/b`, `file:a` gives `a`, a plain path is returned as it is."""
    if not path.startswith("file:"):
        return path
    rest = path[len("file:") :]
    return "/" + rest.lstrip("/") if rest.startswith("/") else rest
