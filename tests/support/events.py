"""One event log line as the job reads it, for tests that write their own days."""

from __future__ import annotations

import json


def event_line(event_id, ts, advertiser_id, product_id, event_type="product_view", **extra) -> str:
    """A JSON line of the five fields (and `extra`); a field given as `...` is left out."""
    record = {
        "event_id": event_id,
        "event_type": event_type,
        "ts": ts,
        "advertiser_id": advertiser_id,
        "product_id": product_id,
        **extra,
    }
    return json.dumps({k: v for k, v in record.items() if v is not ...}, ensure_ascii=False)
