"""botocore event hooks of the catalog client: request counting and fault injection.

The hooks hang on the client's own event system, so every request the lookup makes passes
through them exactly as it would in production: a counted request is a request botocore
really tried to send, an injected throttle is a real HTTP 400 that botocore parses, retries
(by its retry mode) and raises as `ClientError`, and injected UnprocessedKeys arrive in the
parsed response the caller reads. Nothing in the lookup code knows that faults exist.

Events used (all for BatchGetItem only):
- `before-parameter-build`: remember the request's table and projection (for UnprocessedKeys);
- `before-send`: count the HTTP request; answer a throttling error instead of sending it;
- `needs-retry`: count throttling answers, including the ones botocore retries itself;
- `after-call`: move a share of the found items into UnprocessedKeys.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Dict, Iterator, List, Optional

from spark_app.config import FaultConfig
from spark_app.dynamo.counters import REQUESTS, THROTTLES

THROTTLE_CODES = frozenset(
    {"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded"}
)

_OP = "dynamodb.BatchGetItem"
_CONTEXT_KEY = "catalog_request_items"


def register_hooks(client: Any, faults: Optional[FaultConfig], counters: Any = None) -> None:
    """Attach the counting hooks (when `counters`) and the injectors of `faults` (when set)."""
    events = client.meta.events
    sends = _SendCounter()
    if counters is not None:
        events.register(f"before-send.{_OP}", _count_request(counters), unique_id="catalog-count-send")
        events.register(f"needs-retry.{_OP}", _count_throttle(counters), unique_id="catalog-count-throttle")
    if faults is None:
        return
    if faults.throttle_all or faults.throttle_first > 0:
        events.register(f"before-send.{_OP}", _throttler(faults, sends), unique_id="catalog-fault-throttle")
    if faults.unprocessed_share > 0:
        events.register(
            f"before-parameter-build.{_OP}", _remember_request, unique_id="catalog-fault-remember"
        )
        events.register(
            f"after-call.{_OP}", _unprocessor(faults.unprocessed_share), unique_id="catalog-fault-unprocessed"
        )


# --------------------------------------------------------------------------- counting


def _count_request(counters: Any):
    def hook(request: Any = None, **kwargs: Any) -> None:
        counters.add(REQUESTS, 1)
        return None  # never answer: the request is sent (or a later hook answers it)

    return hook


def _count_throttle(counters: Any):
    def hook(response: Any = None, **kwargs: Any) -> None:
        if response is not None and _error_code(response[1]) in THROTTLE_CODES:
            counters.add(THROTTLES, 1)
        return None  # never decide about retrying; botocore's handler does

    return hook


def _error_code(parsed: Any) -> Optional[str]:
    if isinstance(parsed, dict):
        return (parsed.get("Error") or {}).get("Code")
    return None


# --------------------------------------------------------------------------- throttling


class _SendCounter:
    """Requests this client has tried to send (thread-safe; one per client)."""

    def __init__(self) -> None:
        self._n = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._n += 1
            return self._n


def _throttler(faults: FaultConfig, sends: _SendCounter):
    def hook(request: Any = None, **kwargs: Any):
        n = sends.next()
        if faults.throttle_all:
            return _error_response(request, "ProvisionedThroughputExceededException")
        if n <= faults.throttle_first:
            return _error_response(request, "ThrottlingException")
        return None

    return hook


class _Body:
    """The `raw` of an AWSResponse: botocore reads it through `stream()`."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self._data


def _error_response(request: Any, code: str):
    """An HTTP 400 as DynamoDB sends it for a throttled request."""
    from botocore.awsrequest import AWSResponse

    body = json.dumps(
        {
            "__type": f"com.amazonaws.dynamodb.v20120810#{code}",
            "message": "Rate of requests exceeds the allowed throughput (injected fault).",
        }
    ).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "injected-fault"}
    return AWSResponse(getattr(request, "url", ""), 400, headers, _Body(body))


# --------------------------------------------------------------------------- unprocessed keys


def _remember_request(params: Dict[str, Any], context: Dict[str, Any], **kwargs: Any) -> None:
    context[_CONTEXT_KEY] = params.get("RequestItems", {})


def _unprocessor(share: float):
    def hook(http_response: Any = None, parsed: Any = None, context: Any = None, **kwargs: Any) -> None:
        if http_response is None or http_response.status_code >= 300 or not isinstance(parsed, dict):
            return
        asked = (context or {}).get(_CONTEXT_KEY, {})
        unprocessed = parsed.setdefault("UnprocessedKeys", {})
        for table, items in parsed.get("Responses", {}).items():
            kept, moved = _split_share(items, share)
            if not moved:
                continue
            parsed["Responses"][table] = kept
            entry = {k: v for k, v in asked.get(table, {}).items() if k != "Keys"}
            entry["Keys"] = unprocessed.get(table, {}).get("Keys", []) + [
                _key_only(i, asked, table) for i in moved
            ]
            unprocessed[table] = entry

    return hook


def _split_share(items: List[Dict[str, Any]], share: float):
    """Move int(n * share) items: rounding down, so a lone key always gets through eventually."""
    n_moved = int(len(items) * share)
    if n_moved <= 0:
        return items, []
    return items[: len(items) - n_moved], items[len(items) - n_moved :]


def _key_only(item: Dict[str, Any], asked: Dict[str, Any], table: str) -> Dict[str, Any]:
    """The item reduced to the attributes its request's keys carry."""
    keys = asked.get(table, {}).get("Keys") or []
    names = set(keys[0]) if keys else set(item)
    return {k: v for k, v in item.items() if k in names}
