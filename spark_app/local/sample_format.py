"""The sample events' record shape and its encodings: JSON lines (plain or gzipped) and Parquet.

Each line carries every field the job reads, written the ways production writes them: ISO-8601
times with assorted offsets or epoch milliseconds, and a user id the job ignores.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path
from typing import List

import numpy as np

EVENT_TYPES = ("product_view", "add_to_cart", "purchase", "search", "page_view")
# (text appended to the local time, offset in minutes): UTC written several ways, and real zones.
OFFSETS = (
    ("Z", 0),
    ("+00:00", 0),
    ("+01:00", 60),
    ("+02:00", 120),
    ("+05:30", 330),
    ("+09:00", 540),
    ("-05:00", -300),
    ("-08:00", -480),
)


@dataclass(frozen=True)
class Universe:
    advertiser: np.ndarray  # int64 per key
    product: np.ndarray  # int64 per key: the number in "sku-%06d"
    in_catalog: np.ndarray  # bool per key
    popularity: np.ndarray  # float64 per key, sums to 1


@dataclass(frozen=True)
class Events:
    """Columns of a set of events (one row per delivered line once duplicates are added)."""

    event_id: np.ndarray  # uint64
    etype: np.ndarray  # uint8 index into EVENT_TYPES
    ts_ms: np.ndarray  # int64 UTC epoch ms
    offset: np.ndarray  # uint8 index into OFFSETS
    epoch: np.ndarray  # bool: ts written as a number
    key: np.ndarray  # int64 index into the universe
    user: np.ndarray  # int64
    late: np.ndarray  # bool: written under the next day's folder

    def take(self, mask: np.ndarray) -> Events:
        return Events(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))

    def __len__(self) -> int:
        return len(self.event_id)


def ts_tokens(ev: Events) -> List[str]:
    """ts as JSON: ISO-8601 local time with its offset, or epoch milliseconds."""
    off_min = np.array([m for _, m in OFFSETS], dtype=np.int64)[ev.offset]
    local = (ev.ts_ms + off_min * 60_000).astype("datetime64[ms]")
    iso = np.datetime_as_string(local, unit="ms").tolist()
    suffix = [OFFSETS[i][0] for i in range(len(OFFSETS))]
    return [
        str(ms) if ep else '"' + s + suffix[o] + '"'
        for s, o, ep, ms in zip(iso, ev.offset.tolist(), ev.epoch.tolist(), ev.ts_ms.tolist())
    ]


def json_lines(ev: Events, u: Universe) -> bytes:
    """JSON lines; every value is ASCII without quotes or backslashes, so no escaping is needed."""
    types = EVENT_TYPES
    lines = [
        f'{{"event_id":"{e:016x}","event_type":"{types[t]}","ts":{ts},'
        f'"advertiser_id":{a},"product_id":"sku-{p:06d}","user_id":{us}}}\n'
        for e, t, ts, a, p, us in zip(
            ev.event_id.tolist(),
            ev.etype.tolist(),
            ts_tokens(ev),
            u.advertiser[ev.key].tolist(),
            u.product[ev.key].tolist(),
            ev.user.tolist(),
        )
    ]
    return "".join(lines).encode("ascii")


def arrow_table(ev: Events, u: Universe):
    import pyarrow as pa

    ts = [t.strip('"') for t in ts_tokens(ev)]
    return pa.table(
        {
            "event_id": pa.array([f"{e:016x}" for e in ev.event_id.tolist()], pa.string()),
            "event_type": pa.array(np.array(EVENT_TYPES)[ev.etype].tolist(), pa.string()),
            "ts": pa.array(ts, pa.string()),
            "advertiser_id": pa.array(u.advertiser[ev.key], pa.int64()),
            "product_id": pa.array([f"sku-{p:06d}" for p in u.product[ev.key].tolist()], pa.string()),
            "user_id": pa.array(ev.user, pa.int64()),
        }
    )


def write_json_gz(path: Path, data: bytes, gzip_level: int) -> None:
    """Deterministic gzip: no file name and mtime 0 in the header, so equal input gives equal bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=gzip_level, mtime=0) as gz:
        gz.write(data)
    path.write_bytes(buf.getvalue())
