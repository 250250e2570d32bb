"""Puts the generated sample day into moto's S3, so the local job reads `s3://` like on EMR.

Laptop and tests only (moto keeps objects in memory, so every fresh server needs the upload).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

from spark_app.s3_uri import split_s3_uri


def ensure_bucket(client, bucket: str) -> bool:
    """Create `bucket` unless it exists; True when this call created it."""
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket in existing:
        return False
    client.create_bucket(Bucket=bucket)
    return True


def upload_tree(client, local_dir: str | os.PathLike[str], uri: str) -> List[str]:
    """Every file under `local_dir` to the same relative key under `uri`; the keys, in order.

    `_SUCCESS` markers go last in each folder, as a writer that finished the folder would.
    """
    bucket, prefix = split_s3_uri(uri.rstrip("/") + "/")
    root = Path(local_dir)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    files.sort(key=lambda p: (str(p.parent), p.name == "_SUCCESS"))
    keys = []
    for path in files:
        key = prefix + path.relative_to(root).as_posix()
        client.upload_file(str(path), bucket, key)
        keys.append(key)
    return keys
