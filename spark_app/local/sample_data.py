"""Realistic, deterministic event logs for local runs, tests and benchmarks.

Every calendar day X has one fixed set of events E(X), drawn from (seed, X) alone. Most of
E(X) is written under `dt=X`; a `late_share` of it arrives a day late under `dt=X+1`. So the
folder `dt=X` always holds the same lines: the on-time events of X plus the late arrivals of
X-1 (which are outside day X). `write_day(D)` writes `dt=D` completely (with `_SUCCESS`) and
`dt=D+1` partially (D's late arrivals plus a `next_day_share` of genuine D+1 events, no
`_SUCCESS`), unless `dt=D+1` is already complete. Writing several days into one root therefore
stays consistent, and the truth of day D (`SampleDay.expected_views`) never depends on which
other days were written.

Popularity is Zipf-like over all (advertiser, product) keys, so a few products get most views
and a long tail gets few or none; a `catalog_share` of the keys is in the catalog, chosen
independently of popularity. Lines are built in chunks and compressed in a second thread
(zlib releases the GIL), which is what makes millions of events take seconds.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import threading
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from spark_app.local.sample_format import (
    EVENT_TYPES,
    OFFSETS,
    Events,
    Universe,
    arrow_table,
    json_lines,
    write_json_gz,
)

_DAY_MS = 86_400_000
NEXT_DAY_HOURS = 6  # genuine D+1 events written by write_day(D) fall in D+1's first hours
_EPOCH = date(1970, 1, 1)

Key = Tuple[int, str]


@dataclass(frozen=True)
class SampleSpec:
    """What a generated day looks like; `events` is the size of one day's event set E(D)."""

    events: int = 200_000
    advertisers: int = 20
    products_per_advertiser: int = 1000  # distinct product keys = advertisers x this
    catalog_share: float = 0.8  # share of the keys present in the catalog
    zipf_exponent: float = 1.1  # popularity of the key of rank r is proportional to 1 / r**s
    duplicate_share: float = 0.01  # events delivered twice (same event_id)
    late_share: float = 0.02  # events of day D written under dt=D+1
    next_day_share: float = 0.05  # genuine D+1 events under dt=D+1 (relative to events; at most ~0.25)
    other_type_share: float = 0.3  # add_to_cart, purchase, search, page_view
    epoch_ms_share: float = 0.1  # ts written as epoch milliseconds (a JSON number)
    seed: int = 7
    # A visible catalog problem for the report: from `drop_from` (ISO date; "" for none) on, a
    # `drop_share` of the events of the `drop_advertisers` most viewed advertisers go to a few new
    # products missing from their catalog; the k-th of them starts k days later.
    drop_advertisers: int = 0
    drop_share: float = 0.4
    drop_from: str = ""
    drop_products: int = 8  # new products per dropping advertiser

    @property
    def product_keys(self) -> int:
        return self.advertisers * self.products_per_advertiser


@dataclass
class SampleDay:
    """What `write_day` wrote and the truth a correct pipeline must reproduce for `day`."""

    day: date
    root: Path
    fmt: str
    spec: SampleSpec
    files: List[Path]  # data files written (both folders)
    catalog_keys: List[Key]
    expected_views: Dict[Key, int]  # product views of day D per key, after dedup by event_id
    counts: Dict[str, int] = field(default_factory=dict)

    def expected_rates(self) -> Dict[int, Dict[str, float]]:
        """The `advertiser_match_rates` row (minus day) per advertiser, recomputed from the truth."""
        catalog = set(self.catalog_keys)
        rates: Dict[int, Dict[str, float]] = {}
        for (adv, pid), views in self.expected_views.items():
            r = rates.setdefault(
                adv,
                {"total_products": 0, "matched_products": 0, "total_views": 0, "matched_views": 0},
            )
            matched = (adv, pid) in catalog
            r["total_products"] += 1
            r["matched_products"] += int(matched)
            r["total_views"] += views
            r["matched_views"] += views if matched else 0
        for r in rates.values():
            r["match_rate"] = r["matched_views"] / r["total_views"] if r["total_views"] else 0.0
        return rates


# --------------------------------------------------------------------------- the key universe


_UNIVERSE_CACHE: Dict[SampleSpec, Universe] = {}
_UNIVERSE_LOCK = threading.Lock()


def _universe(spec: SampleSpec) -> Universe:
    """Keys, catalog membership and popularity: fixed by the seed, the same every day."""
    cache_key = SampleSpec(
        advertisers=spec.advertisers,
        products_per_advertiser=spec.products_per_advertiser,
        catalog_share=spec.catalog_share,
        zipf_exponent=spec.zipf_exponent,
        seed=spec.seed,
    )
    with _UNIVERSE_LOCK:
        if cache_key not in _UNIVERSE_CACHE:
            _UNIVERSE_CACHE[cache_key] = _draw_universe(spec)
        return _UNIVERSE_CACHE[cache_key]


def _draw_universe(spec: SampleSpec) -> Universe:
    rng = np.random.default_rng([spec.seed, 0])
    ppa = spec.products_per_advertiser
    advertisers = np.sort(rng.choice(np.arange(1000, 1_000_000), spec.advertisers, replace=False))
    products = np.concatenate([np.sort(rng.choice(1_000_000, ppa, replace=False)) for _ in advertisers])
    n_keys = spec.product_keys
    in_catalog = np.zeros(n_keys, dtype=bool)
    in_catalog[rng.permutation(n_keys)[: int(round(n_keys * spec.catalog_share))]] = True
    ranks = rng.permutation(n_keys) + 1
    weights = 1.0 / ranks.astype(np.float64) ** spec.zipf_exponent
    return Universe(
        advertiser=np.repeat(advertisers.astype(np.int64), ppa),
        product=products.astype(np.int64),
        in_catalog=in_catalog,
        popularity=weights / weights.sum(),
    )


def catalog_keys(spec: SampleSpec) -> List[Key]:
    """The (advertiser_id, product_id) pairs of the catalog."""
    u = _universe(spec)
    idx = np.flatnonzero(u.in_catalog)
    return [(a, f"sku-{p:06d}") for a, p in zip(u.advertiser[idx].tolist(), u.product[idx].tolist())]


# --------------------------------------------------------------------------- one day's events


def _day_events(day: date, spec: SampleSpec) -> Events:
    """E(day): the unique events whose UTC date is `day` (no duplicates yet)."""
    ordinal = (day - _EPOCH).days
    rng = np.random.default_rng([spec.seed, 1, ordinal])
    n = spec.events
    u = _universe(spec)
    key = np.searchsorted(np.cumsum(u.popularity), rng.random(n), side="right")
    key = np.minimum(key, len(u.popularity) - 1)
    key = _with_drop(key, day, spec, u)
    other = rng.random(n) < spec.other_type_share
    etype = np.where(other, rng.integers(1, len(EVENT_TYPES), n), 0).astype(np.uint8)
    # unique within the day by the low 32 bits, across days by the top 16
    salt = rng.integers(0, 1 << 16, n).astype(np.uint64)
    event_id = (
        (np.uint64(ordinal & 0xFFFF) << np.uint64(48))
        | (salt << np.uint64(32))
        | np.arange(n, dtype=np.uint64)
    )
    return Events(
        event_id=event_id,
        etype=etype,
        ts_ms=ordinal * _DAY_MS + rng.integers(0, _DAY_MS, n),
        offset=rng.integers(0, len(OFFSETS), n).astype(np.uint8),
        epoch=rng.random(n) < spec.epoch_ms_share,
        key=key.astype(np.int64),
        user=rng.integers(1, 5_000_000, n),
        late=rng.random(n) < spec.late_share,
    )


def _with_drop(key: np.ndarray, day: date, spec: SampleSpec, u: Universe) -> np.ndarray:
    """Move a share of the dropping advertisers' events to their new, uncatalogued products."""
    if not (spec.drop_advertisers and spec.drop_from):
        return key
    started = (day - date.fromisoformat(spec.drop_from)).days  # >= k: the k-th advertiser drops
    if started < 0:
        return key
    ppa = spec.products_per_advertiser
    per_advertiser = np.bincount(np.arange(len(u.popularity)) // ppa, weights=u.popularity)
    dropping = np.argsort(-per_advertiser, kind="stable")[: spec.drop_advertisers]
    rng = np.random.default_rng([spec.seed, 4, (day - _EPOCH).days])
    moved = rng.random(len(key)) < spec.drop_share
    pick = rng.random(len(key))
    key = key.copy()
    for adv in dropping[: started + 1].tolist():
        own = np.arange(adv * ppa, (adv + 1) * ppa)
        new = own[~u.in_catalog[own]][: spec.drop_products]  # the same few products every day
        if not len(new):
            continue
        chosen = moved & (key // ppa == adv)
        key[chosen] = new[(pick[chosen] * len(new)).astype(np.int64)]
    return key


def _with_duplicates(ev: Events, spec: SampleSpec, day: date) -> Events:
    """Append a second copy of a `duplicate_share` of the events (a retried delivery)."""
    dup = _dup_mask(day, spec, len(ev))
    both = np.concatenate([np.arange(len(ev)), np.flatnonzero(dup)])
    return ev.take(both)


def _concat(parts: List[Events]) -> Events:
    names = list(Events.__dataclass_fields__)
    return Events(*(np.concatenate([getattr(p, f) for p in parts]) for f in names))


def _folder_events(day: date, spec: SampleSpec) -> Events:
    """Everything the complete folder dt=day holds: on-time E(day) and late E(day-1)."""
    today = _with_duplicates(_day_events(day, spec), spec, day)
    prev_day = day - timedelta(days=1)
    yesterday = _with_duplicates(_day_events(prev_day, spec), spec, prev_day)
    return _concat([today.take(~today.late), yesterday.take(yesterday.late)])


def _partial_next_folder(day: date, spec: SampleSpec) -> Events:
    """What write_day(day) puts under dt=day+1: day's late arrivals and some next-day events."""
    today = _with_duplicates(_day_events(day, spec), spec, day)
    nxt_day = day + timedelta(days=1)
    nxt = _day_events(nxt_day, spec)
    head = np.zeros(len(nxt), dtype=bool)
    # the folder as a run at 06:00 UTC on D+1 finds it: only the first hours of D+1 are there yet
    early = nxt.ts_ms < (nxt_day - _EPOCH).days * _DAY_MS + NEXT_DAY_HOURS * 3_600_000
    head[np.flatnonzero(early)[: int(round(spec.next_day_share * spec.events))]] = True
    chosen = _with_duplicates(nxt, spec, nxt_day)
    # a duplicate copy follows its original, so keep both copies of the chosen head events
    chosen = chosen.take(np.concatenate([head, head[np.flatnonzero(_dup_mask(nxt_day, spec, len(nxt)))]]))
    return _concat([today.take(today.late), chosen.take(~chosen.late)])


def _dup_mask(day: date, spec: SampleSpec, n: int) -> np.ndarray:
    rng = np.random.default_rng([spec.seed, 2, (day - _EPOCH).days])
    return rng.random(n) < spec.duplicate_share


# --------------------------------------------------------------------------- writing


def _write_folder(
    folder: Path, ev: Events, spec: SampleSpec, day: date, fmt: str, files: int, gzip_level: Optional[int]
) -> List[Path]:
    """Shuffle the lines, split them into `files` parts, write them (replacing older parts)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in list(folder.glob("part-*")) + [folder / "_SUCCESS"]:
        old.unlink(missing_ok=True)
    rng = np.random.default_rng([spec.seed, 3, (day - _EPOCH).days])
    order = rng.permutation(len(ev))
    u = _universe(spec)
    suffix = ".parquet" if fmt == "parquet" else (".json.gz" if gzip_level else ".json")
    paths = [folder / f"part-{i:05d}{suffix}" for i in range(files)]

    def write_one(i: int, rows: np.ndarray) -> None:
        part = ev.take(rows)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(arrow_table(part, u), paths[i], compression="snappy")
        elif gzip_level:
            write_json_gz(paths[i], json_lines(part, u), gzip_level)
        else:
            paths[i].write_bytes(json_lines(part, u))

    # two threads: one formats (holds the GIL) while the other compresses (zlib releases it)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for f in [pool.submit(write_one, i, rows) for i, rows in enumerate(np.array_split(order, files))]:
            f.result()
    return paths


def write_day(
    root: str | os.PathLike[str],
    day: date,
    spec: Optional[SampleSpec] = None,
    fmt: str = "json",
    files: int = 4,
    gzip: bool = True,
    gzip_level: int = 1,
) -> SampleDay:
    """Write dt=D (complete, with `_SUCCESS`) and dt=D+1 (partial) under `root`; return the truth."""
    spec = spec or SampleSpec()
    if fmt not in ("json", "parquet"):
        raise ValueError(f"fmt must be 'json' or 'parquet', got {fmt!r}")
    root = Path(root)
    level = gzip_level if (gzip and fmt == "json") else None
    written = _write_folder(_day_dir(root, day), _folder_events(day, spec), spec, day, fmt, files, level)
    (_day_dir(root, day) / "_SUCCESS").write_bytes(b"")
    nxt = day + timedelta(days=1)
    if not (_day_dir(root, nxt) / "_SUCCESS").exists():
        written += _write_folder(
            _day_dir(root, nxt), _partial_next_folder(day, spec), spec, nxt, fmt, files, level
        )
    (_day_dir(root, day) / "_SAMPLE_SPEC.json").write_text(json.dumps(asdict(spec), sort_keys=True))
    return describe_day(root, day, spec, fmt, written)


def describe_day(
    root: str | os.PathLike[str],
    day: date,
    spec: Optional[SampleSpec] = None,
    fmt: str = "json",
    files: Optional[List[Path]] = None,
) -> SampleDay:
    """The truth of `day` for `spec`, without writing anything (the generator is deterministic)."""
    spec = spec or SampleSpec()
    u = _universe(spec)
    ev = _day_events(day, spec)
    views = ev.key[ev.etype == 0]
    per_key = np.bincount(views, minlength=len(u.popularity))
    idx = np.flatnonzero(per_key)
    expected = {
        (a, f"sku-{p:06d}"): c
        for a, p, c in zip(u.advertiser[idx].tolist(), u.product[idx].tolist(), per_key[idx].tolist())
    }
    with_dups = _with_duplicates(ev, spec, day)
    counts = {
        "events": len(ev),
        "product_views": int(len(views)),
        "duplicate_lines": len(with_dups) - len(ev),
        "late_lines": int(with_dups.late.sum()),
        "distinct_keys_viewed": len(expected),
        "catalog_keys": int(u.in_catalog.sum()),
    }
    return SampleDay(day, Path(root), fmt, spec, list(files or []), catalog_keys(spec), expected, counts)


def read_spec(root: str | os.PathLike[str], day: date) -> Optional[SampleSpec]:
    """The spec a day folder was generated with, or None when it was not generated here."""
    path = _day_dir(Path(root), day) / "_SAMPLE_SPEC.json"
    if not path.exists():
        return None
    return SampleSpec(**json.loads(path.read_text()))


def _day_dir(root: Path, day: date) -> Path:
    return root / f"dt={day.isoformat()}"
