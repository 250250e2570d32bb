"""Runs on executors: the records of a block decided in bulk (NumPy and Arrow), the rest one by one.

A JSON line takes the bulk path only when an anchored pattern proves its shape: one object, the
five fields first and in order, each exactly once, string values without escapes or control
characters, `advertiser_id` a positive integer token of at most 18 digits, later members simple
scalars. For such a line the strict parser (`spark_app.events.parse`) would read exactly the
text between the quotes, so the values are cut out of the block by the positions of its quote
characters. Every other line (escapes, other key orders, any doubt) goes through the strict
parser, which remains the single definition of the rules; tests hold the two paths to agreeing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from spark_app.events.parse import (
    MAX_PRODUCT_ID_BYTES,
    DayWindow,
    Record,
    classify_line,
    is_blank,
    outcome_of,
)

_KEY_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


def none_of(words, chars: str = _KEY_CHARS) -> str:
    """A regular expression for the strings over `chars` that are none of `words` (RE2 has no
    negative lookahead, so the complement is spelled out along the words' trie)."""
    ends = "" in words
    heads = sorted({w[0] for w in words if w})
    others = "".join(c for c in chars if c not in heads)
    options = [] if ends else [""]
    if others:
        options.append(f"[{others}][{chars}]*")
    for c in heads:
        options.append(c + none_of([w[1:] for w in words if w and w[0] == c], chars))
    return "(?:" + "|".join(options) + ")"


_STR = r'"[^"\\\x00-\x1f]+"'
_KEY = '"' + none_of(["event_id", "event_type", "ts", "advertiser_id", "product_id"]) + '"'  # no field twice
_SCALAR = r'(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|"[^"\\\x00-\x1f]*"|true|false|null)'
FAST_LINE = (
    r"^\{"
    rf'"event_id": ?{_STR}, ?"event_type": ?{_STR}, ?"ts": ?(?:{_STR}|[1-9][0-9]*), ?'
    rf'"advertiser_id": ?[1-9][0-9]{{0,17}}, ?"product_id": ?{_STR}'
    rf"(?:, ?{_KEY}: ?{_SCALAR})*\}}\r?\n?$"
)

_QUOTE, _SPACE, _COLON = 34, 32, 58
_EPOCH_MIN, _EPOCH_MAX = 10**11, 10**13  # 12 or 13 digits of epoch milliseconds


@dataclass
class BlockResult:
    """What one block (or one Parquet batch) holds: in-day events, counts, rejected raw records."""

    columns: Dict[str, list] = field(default_factory=dict)  # in-day events: Arrow arrays per field
    counts: Dict[str, int] = field(default_factory=dict)
    rejects: List[Tuple[bytes, str]] = field(default_factory=list)


def line_bounds(buf: np.ndarray) -> np.ndarray:
    """Offsets of the lines of `buf` (each line keeps its "\\n"; a last line may lack it)."""
    ends = np.flatnonzero(buf == 10) + 1
    if len(buf) and (not len(ends) or ends[-1] != len(buf)):
        ends = np.append(ends, len(buf))
    return np.concatenate([[0], ends]).astype(np.int64)


def classify_json_block(data: bytes, window: DayWindow) -> BlockResult:
    """Every line of `data` (whole lines only) -> in-day events, counts and rejects."""
    import pyarrow as pa
    import pyarrow.compute as pc

    buf = np.frombuffer(data, np.uint8)
    bounds = line_bounds(buf)
    n = len(bounds) - 1
    result = BlockResult(counts={"lines": n})
    fast = np.zeros(n, bool)
    if n and _is_utf8(data) and bounds[-1] < 2**31:
        lines = pa.StringArray.from_buffers(n, pa.py_buffer(bounds.astype(np.int32)), pa.py_buffer(data))
        fast = pc.match_substring_regex(lines, FAST_LINE).to_numpy(zero_copy_only=False)
    starts = bounds[:-1][fast]
    values, ok = _cut_fast_lines(buf, starts, bounds[1:][fast])
    fast_rows = np.flatnonzero(fast)
    slow = np.ones(n, bool)
    slow[fast_rows[ok]] = False
    future = _add_fast(result, values, ok, window)
    for i in fast_rows[future].tolist():
        result.rejects.append((data[bounds[i] : bounds[i + 1]].rstrip(b"\n"), "future_ts"))
    _add_slow(result, data, bounds, np.flatnonzero(slow), window)
    return result


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _cut_fast_lines(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray):
    """Field values of lines proven to have the fast shape, by the positions of their quotes."""
    quotes = np.flatnonzero(buf == _QUOTE)
    q0 = np.searchsorted(quotes, starts)

    def q(k):
        return quotes[q0 + k]

    ts_quoted = buf[_skip_space(buf, q(9) + 2)] == _QUOTE if len(starts) else np.zeros(0, bool)
    shift = np.where(ts_quoted, 2, 0)
    ts_start = np.where(ts_quoted, q(10) + 1, _skip_space(buf, q(9) + 2))
    ts_end = np.where(ts_quoted, q(11), _number_end(buf, q(10)))  # 16 or 18 quotes on every such line
    adv_key_close = quotes[q0 + 11 + shift]
    adv_start = _skip_space(buf, adv_key_close + 2)
    adv_end = _number_end(buf, quotes[q0 + 12 + shift])
    prod_start, prod_end = quotes[q0 + 14 + shift] + 1, quotes[q0 + 15 + shift]
    values = {
        "event_id": _strings(buf, q(2) + 1, q(3)),
        "event_type": _strings(buf, q(6) + 1, q(7)),
        "product_id": _strings(buf, prod_start, prod_end),
        "advertiser_id": _digits_value(buf, adv_start, adv_end),
    }
    ts_us, ts_ok = _ts_micros(buf, ts_start, ts_end, ts_quoted)
    values["ts_us"] = ts_us
    ok = ts_ok & (prod_end - prod_start <= MAX_PRODUCT_ID_BYTES) & (ends > starts)
    return values, ok


def _skip_space(buf, pos):
    return pos + (buf[pos] == _SPACE)


def _number_end(buf, next_key_open):
    """End of a number token followed by `,` or `, ` and the next key's opening quote."""
    return next_key_open - 1 - (buf[next_key_open - 1] == _SPACE)


def _strings(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray):
    """A string array of buf[starts[i]:ends[i]], gathered in one NumPy pass."""
    import pyarrow as pa

    lengths = (ends - starts).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    index = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)
    data = buf[index].tobytes()
    return pa.StringArray.from_buffers(len(starts), pa.py_buffer(offsets), pa.py_buffer(data))


def _digits_value(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The value of ASCII digit runs (at most 18 digits, so int64 holds them)."""
    value = np.zeros(len(starts), np.int64)
    width = ends - starts
    for k in range(int(width.max()) if len(width) else 0):
        has = k < width
        digit = buf[np.where(has, starts + k, 0)].astype(np.int64) - 48
        value = np.where(has, value * 10 + digit, value)
    return value


def _ts_micros(buf, starts, ends, quoted):
    """Epoch µs of ISO-8601 text or epoch milliseconds, and whether the bulk path could decide it."""
    n = len(starts)
    width = ends - starts
    ms = _digits_value(buf, starts, np.where(quoted, starts, ends))
    epoch_ok = ~quoted & (width <= 13) & (ms >= _EPOCH_MIN) & (ms < _EPOCH_MAX)
    iso_us, iso_ok = iso_micros(_strings(buf, starts, ends), buf, starts, width)
    iso_ok &= quoted
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, bool)
    return np.where(quoted, iso_us, ms * 1000), epoch_ok | iso_ok


def epoch_ms_text(buf, starts, width):
    """Epoch milliseconds written as text (12 or 13 digits, the strict rule's EPOCH_MS)."""
    ok = (width >= 12) & (width <= 13)
    value = np.zeros(len(starts), np.int64)
    for k in range(13):
        inside = ok & (k < width)
        d = buf[np.where(inside, starts + k, 0)].astype(np.int64) - 48
        ok &= ~inside | ((d >= 0) & (d <= 9))
        value = np.where(inside, value * 10 + d, value)
    return value, ok & (value >= _EPOCH_MIN) & (value < _EPOCH_MAX)


# The ISO-8601 shapes Arrow's parser reads exactly as the strict rules do: a year from 0001, a
# `T`, fields in range, one to six fraction digits, `Z` or ±hh:mm up to 18 hours. Arrow refuses
# a whole array for one impossible date (2024-02-30); such a batch takes the NumPy path instead.
ARROW_ISO = (
    r"^(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?(?:Z|[+-](?:0[0-9]|1[0-8]):[0-5][0-9])$"
)


def iso_micros(text, buf, starts, width):
    """Epoch µs of ISO-8601 values (`text`, a string array; `buf`, `starts`, `width`: the same
    values as bytes) and which were decided: Arrow's parser for the shapes of `ARROW_ISO`,
    `_iso_micros` for the rest."""
    import pyarrow as pa
    import pyarrow.compute as pc

    us, ok = np.zeros(len(starts), np.int64), np.zeros(len(starts), bool)
    proven = pc.fill_null(pc.match_substring_regex(text, ARROW_ISO), False)
    if pc.any(proven).as_py():
        try:
            parsed = pc.cast(text.filter(proven), pa.timestamp("us", tz="UTC"))
        except pa.ArrowInvalid:  # an impossible date among them
            pass
        else:
            mask = proven.to_numpy(zero_copy_only=False)
            us[mask] = parsed.cast(pa.int64()).to_numpy(zero_copy_only=False)
            ok[mask] = True
    rest = np.flatnonzero(~ok)
    if len(rest):
        us[rest], ok[rest] = _iso_micros(buf, starts[rest], width[rest])
    return us, ok


_ISO_MAX = 19 + 10 + 6  # seconds, a dot and nine digits, an offset
_ISO_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]


def _iso_micros(buf, starts, width):
    """`YYYY-MM-DD[T ]hh:mm:ss[.f{1,9}][Z|±hh:mm]` -> epoch µs; anything else is left undecided.

    One gather takes the first `_ISO_MAX` bytes of every value (a position x value matrix);
    each check is then a row of that matrix, not a gather of its own."""
    n = len(starts)
    ok = (width >= 19) & (width <= _ISO_MAX)
    if not ok.any():
        return np.zeros(n, np.int64), ok
    padded = np.concatenate([buf, np.zeros(_ISO_MAX, np.uint8)])
    windows = np.lib.stride_tricks.as_strided(padded, shape=(len(buf) + 1, _ISO_MAX), strides=(1, 1))
    at = np.where(ok, starts, 0)
    m = np.ascontiguousarray(windows[at].T)  # position x value
    d = m - np.uint8(48)  # a digit's value; above 9 for any other byte
    fixed = d[_ISO_DIGITS]
    ok &= (fixed <= 9).all(axis=0)
    ok &= (m[4] == 45) & (m[7] == 45) & ((m[10] == 84) | (m[10] == _SPACE))
    ok &= (m[13] == _COLON) & (m[16] == _COLON)
    v = fixed.astype(np.int32)
    year, month, day = v[0] * 1000 + v[1] * 100 + v[2] * 10 + v[3], v[4] * 10 + v[5], v[6] * 10 + v[7]
    hour, minute, second = v[8] * 10 + v[9], v[10] * 10 + v[11], v[12] * 10 + v[13]
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= _days_in_month(year, month))
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)  # year 0 is no date to the strict rules either
    fraction, rest = _fraction(m, d, width, ok)
    offset_min, suffix_ok = _offset(np.ascontiguousarray(windows[at + rest, :6].T), width - rest)
    ok &= suffix_ok
    days = _days_from_civil(year.astype(np.int64), month, day)
    seconds = days * 86400 + (hour * 3600 + minute * 60 + second - offset_min * 60)
    return seconds * 1_000_000 + fraction, ok


def _fraction(m, d, width, ok):
    """Microseconds of an optional `.digits` (one to nine) after the seconds, and where the
    suffix starts; digits past the sixth are truncated."""
    has_dot = ok & (width > 19) & (m[19] == 46)
    running = has_dot.copy()
    run = np.zeros(len(width), np.int64)
    micros = np.zeros(len(width), np.int64)
    for k in range(9):
        running &= (d[20 + k] <= 9) & (20 + k < width)
        run += running
        if k < 6:
            micros += d[20 + k].astype(np.int64) * running * 10 ** (5 - k)
    ok &= ~has_dot | (run > 0)
    return micros, np.where(has_dot, 20 + run, 19)


def _offset(c, width):
    """Offset minutes of an empty suffix, `Z` or `±hh:mm` (at most 18 hours); `c`: its first six
    bytes (position x value)."""
    c = c.astype(np.int64)
    zulu = (width == 1) & (c[0] == 90)
    digits_ok = np.ones(len(width), bool)
    for k in (1, 2, 4, 5):
        digits_ok &= (c[k] >= 48) & (c[k] <= 57)
    hh, mm = (c[1] - 48) * 10 + c[2] - 48, (c[4] - 48) * 10 + c[5] - 48
    hhmm = (width == 6) & ((c[0] == 43) | (c[0] == 45)) & (c[3] == _COLON) & digits_ok
    hhmm &= (hh <= 18) & (mm <= 59)
    sign = np.where(c[0] == 45, -1, 1)
    return np.where(hhmm, sign * (hh * 60 + mm), 0), (width == 0) | zulu | hhmm


def _days_in_month(year, month):
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    table = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)
    return table[np.clip(month, 0, 12)] + (leap & (month == 2))


def _days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _add_fast(result: BlockResult, values, ok, window: DayWindow) -> np.ndarray:
    """Count the bulk-decided lines and keep their in-day events."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ts = values["ts_us"]
    future = ok & (ts > window.future_limit_us)
    valid = ok & ~future
    in_day = valid & (ts >= window.start_us) & (ts < window.end_us)
    _bump(result.counts, "rejected_future_ts", int(future.sum()))
    _bump(result.counts, "outside_day", int((valid & ~in_day).sum()))
    _bump(result.counts, "in_day", int(in_day.sum()))
    mask = pa.array(in_day)
    types = values["event_type"].filter(mask)
    known = pc.is_in(types, value_set=pa.array(list(window.known_types), pa.string()))
    _bump(result.counts, "unknown_type", int(len(types) - pc.sum(known).as_py() if len(types) else 0))
    result.columns = {
        "event_id": [values["event_id"].filter(mask)],
        "event_type": [types],
        "ts_us": [pa.array(ts[in_day], pa.int64())],
        "advertiser_id": [pa.array(values["advertiser_id"][in_day], pa.int64())],
        "product_id": [values["product_id"].filter(mask)],
    }
    return future


def _add_slow(result: BlockResult, data: bytes, bounds, rows, window: DayWindow) -> None:
    """The strict parser for every line the bulk path did not decide."""
    kept: List[Record] = []
    for i in rows.tolist():
        raw = data[bounds[i] : bounds[i + 1]]
        line = raw[:-1] if raw.endswith(b"\n") else raw
        if is_blank(line):
            _bump(result.counts, "blank", 1)
            continue
        record = classify_line(line, window)
        if tally_strict(result, record, outcome_of(record, window), window, kept):
            result.rejects.append((line, record.reason))
    if kept:
        append_records(result, kept)


def tally_strict(result: BlockResult, record: Record, outcome: str, window: DayWindow, kept: list) -> bool:
    """Count a record the strict rules decided and keep it when it is of the day; True when it
    was rejected (the caller adds its raw text to the rejects)."""
    _bump(result.counts, outcome if outcome != "rejected" else f"rejected_{record.reason}", 1)
    if outcome == "in_day":
        kept.append(record)
        if record.event_type not in window.known_types:
            _bump(result.counts, "unknown_type", 1)
    return outcome == "rejected"


def append_records(result: BlockResult, records: List[Record]) -> None:
    import pyarrow as pa

    cols = {
        "event_id": pa.array([r.event_id for r in records], pa.string()),
        "event_type": pa.array([r.event_type for r in records], pa.string()),
        "ts_us": pa.array([r.ts_us for r in records], pa.int64()),
        "advertiser_id": pa.array([r.advertiser_id for r in records], pa.int64()),
        "product_id": pa.array([r.product_id for r in records], pa.string()),
    }
    for name, array in cols.items():
        result.columns.setdefault(name, []).append(array)


def _bump(counts: Dict[str, int], key: str, n: int) -> None:
    if n:
        counts[key] = counts.get(key, 0) + n
