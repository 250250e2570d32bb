"""Runs on executors: the strict per-record rules, one record at a time, in plain Python.

This is the reference: the vectorised path (`spark_app.events.vector`) only decides records it can
prove this module would decide the same way, and hands every other record here.

A JSON line is parsed strictly (RFC 8259): single quotes, `NaN`, two objects on one line, bytes
that are not UTF-8 outside `product_id` are `malformed_json`; a repeated key among the five
fields is `duplicate_field`. Every field is then taken as text (a number keeps its token's text)
and validated, so a value of the wrong type gets a reason instead of becoming a silent null.

Each record gets exactly one outcome: `rejected` (with the first failing reason, in the order
of REASONS), `outside_day` or `in_day`; a line of JSON whitespace alone is `blank`, not a record.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Dict, Optional, Tuple

FIELDS = ("event_id", "event_type", "ts", "advertiser_id", "product_id")
_FIELD_SET = frozenset(FIELDS)

# Checked in this order; a record is counted under the first reason that applies.
REASONS = (
    "malformed_json",  # not one strict JSON object (syntax, single quotes, two objects, not UTF-8)
    "duplicate_field",  # one of the five fields appears twice in the object
    "missing_field",  # a required field absent, null or empty
    "bad_advertiser_id",  # not a positive integer that fits a bigint
    "bad_ts",  # neither ISO-8601 date-time nor 12-13 digit epoch milliseconds
    "nul_in_product_id",  # PostgreSQL text cannot hold U+0000
    "bad_product_id",  # not valid Unicode text, or over MAX_PRODUCT_ID_BYTES in UTF-8
    "future_ts",  # later than now + max_future_minutes
)

MAX_PRODUCT_ID_BYTES = 1024  # DynamoDB's limit for a sort key; also keeps PostgreSQL's index happy
BIGINT_MAX = 2**63 - 1
JSON_WHITESPACE = b" \t\r\n"

# ISO-8601 date-time with seconds; offset Z, +hh, +hhmm or +hh:mm; none means UTC.
ISO_TS = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.]([0-9]{1,9}))?"
    r"(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
# Epoch milliseconds of 12 or 13 digits (1973-03-03 .. 2286-11-20): a shorter number is far more
# likely epoch seconds or a bare year than an event of the 1970s, so it is rejected as bad_ts.
EPOCH_MS = re.compile(r"[0-9]{12,13}")
POSITIVE_BIGINT = re.compile(r"[0-9]{1,19}")
MAX_OFFSET_HOURS = 18  # java.time.ZoneOffset's range, which Spark used to apply


@dataclass(frozen=True)
class DayWindow:
    """What makes a valid record `in_day`, `outside_day` or `future_ts`; epoch microseconds, UTC."""

    start_us: int
    end_us: int
    future_limit_us: int
    known_types: Tuple[str, ...]

    @classmethod
    def of(cls, day: date, now: datetime, max_future_minutes: int, known_types) -> DayWindow:
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        limit = now + timedelta(minutes=max_future_minutes)
        return cls(_micros(start), _micros(start + timedelta(days=1)), _micros(limit), tuple(known_types))


@dataclass(frozen=True)
class Record:
    """One classified record; `reason` is None for a valid one."""

    reason: Optional[str]
    event_id: Optional[str] = None
    event_type: Optional[str] = None
    ts_us: Optional[int] = None
    advertiser_id: Optional[int] = None
    product_id: Optional[str] = None


def is_blank(line: bytes) -> bool:
    return not line.strip(JSON_WHITESPACE)


def classify_line(line: bytes, window: DayWindow) -> Record:
    """One JSON line (without its newline) -> a Record; the caller has set blank lines aside."""
    values, reason = strict_json_fields(line)
    if reason is not None:
        return Record(reason)
    return classify_values(values, window)


def strict_json_fields(line: bytes) -> Tuple[Dict[str, Optional[str]], Optional[str]]:
    """The five fields as text (None when absent or null), or a syntax-level reason."""
    try:
        text = line.decode("utf-8")
        bad_bytes = False
    except UnicodeDecodeError:
        text, bad_bytes = line.decode("utf-8", "surrogateescape"), True
    try:
        obj = json.loads(
            text,
            object_pairs_hook=_Object,
            parse_int=str,
            parse_float=str,
            parse_constant=_reject_constant,
        )
    except (ValueError, RecursionError):
        return {}, "malformed_json"
    if not isinstance(obj, _Object):
        return {}, "malformed_json"
    if obj.repeated & _FIELD_SET:
        return {}, "duplicate_field"
    values = {f: _as_text(obj.get(f)) for f in FIELDS}
    if bad_bytes and not _holds_surrogates(values["product_id"]):
        return {}, "malformed_json"  # bytes that are not UTF-8 somewhere else than product_id
    return values, None


def classify_values(values: Dict[str, Optional[str]], window: DayWindow) -> Record:
    """Five text values (JSON tokens or Parquet cells) -> a Record, by the rules of REASONS."""
    if any(not values.get(f) for f in FIELDS):
        return Record("missing_field")
    advertiser_id = parse_advertiser_id(values["advertiser_id"])
    if advertiser_id is None:
        return Record("bad_advertiser_id")
    ts_us = parse_ts_micros(values["ts"])
    if ts_us is None:
        return Record("bad_ts")
    product_id = values["product_id"]
    if "\x00" in product_id:
        return Record("nul_in_product_id")
    if not is_good_product_id(product_id):
        return Record("bad_product_id")
    if ts_us > window.future_limit_us:
        return Record("future_ts")
    event_id, event_type = values["event_id"], values["event_type"]
    if _holds_surrogates(event_id) or _holds_surrogates(event_type):
        return Record("malformed_json")  # \ud800 escapes: text no column can hold
    return Record(None, event_id, event_type, ts_us, advertiser_id, product_id)


def outcome_of(record: Record, window: DayWindow) -> str:
    if record.reason is not None:
        return "rejected"
    return "in_day" if window.start_us <= record.ts_us < window.end_us else "outside_day"


def parse_advertiser_id(text: str) -> Optional[int]:
    if not POSITIVE_BIGINT.fullmatch(text):
        return None
    value = int(text)
    return value if 0 < value <= BIGINT_MAX else None


def parse_ts_micros(text: str) -> Optional[int]:
    """ISO-8601 (no offset = UTC, whatever any session time zone says) or epoch ms -> epoch µs."""
    if EPOCH_MS.fullmatch(text):
        return int(text) * 1000
    m = ISO_TS.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError:
        return None  # 2024-02-30, 25:00:00
    offset = _offset_minutes(m.group(8))
    if offset is None:
        return None
    fraction = int((m.group(7) or "").ljust(6, "0")[:6])  # microseconds; finer digits truncated
    return _micros(moment) + fraction - offset * 60_000_000


def is_good_product_id(product_id: str) -> bool:
    """Valid Unicode text (no lone surrogates) of at most MAX_PRODUCT_ID_BYTES in UTF-8."""
    try:
        encoded = product_id.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return len(encoded) <= MAX_PRODUCT_ID_BYTES


def _offset_minutes(text: Optional[str]) -> Optional[int]:
    if not text or text == "Z":
        return 0
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > MAX_OFFSET_HOURS or minutes > 59:
        return None
    sign = -1 if text[0] == "-" else 1
    return sign * (hours * 60 + minutes)


def _micros(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class _Object(dict):
    """A JSON object that remembers which of its keys appeared more than once."""

    def __init__(self, pairs):
        super().__init__()
        self.repeated = set()
        for key, value in pairs:
            if key in self:
                self.repeated.add(key)
            self[key] = value


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _as_text(value) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _holds_surrogates(text: Optional[str]) -> bool:
    return bool(text) and any("\ud800" <= ch <= "\udfff" for ch in text)
