"""Counters of the DynamoDB lookup: what was asked, what came back, how long we waited.

`LookupCounters` is built on the driver from Spark accumulators and pickled into the tasks;
the executors add to it, the driver reads `.snapshot()` after an action. `LocalTally` has the
same `add`/`snapshot` interface without Spark (plain Python callers, benchmarks).

Both are safe to update from the lookup's worker threads: the client hooks run on whichever
thread sends the request, and a Spark accumulator's `add` is a read-modify-write.

Accumulators updated inside a transformation count once per task *attempt*: a retried or
recomputed task adds again. The figures are operational telemetry, not exactly-once totals.
"""

from __future__ import annotations

import threading
from typing import Dict

# Names of the counters, in the order they are reported.
REQUESTS = "requests"  # BatchGetItem HTTP requests sent by the client (every attempt)
KEYS_ASKED = "keys_asked"  # distinct keys the stage asked about (first asks only)
KEYS_FOUND = "keys_found"  # keys the table holds
UNPROCESSED_RETRIED = "unprocessed_retried"  # keys asked again (UnprocessedKeys or a throttled request)
THROTTLES = "throttles"  # responses that were a throttling error
BACKOFF_SECONDS = "backoff_seconds"  # seconds slept between retry rounds

COUNTER_NAMES = (REQUESTS, KEYS_ASKED, KEYS_FOUND, UNPROCESSED_RETRIED, THROTTLES, BACKOFF_SECONDS)

_LOCK = threading.Lock()  # one per process: executors deserialize their own copy of the module


class LookupCounters:
    """Spark accumulators for the lookup; create on the driver, pass into `enrich_with_catalog`."""

    def __init__(self, sc) -> None:
        # sc.accumulator picks the int or float parameter from the initial value.
        self._acc = {name: sc.accumulator(0.0 if name == BACKOFF_SECONDS else 0) for name in COUNTER_NAMES}

    def add(self, name: str, amount: float = 1) -> None:
        """Add on an executor (any thread)."""
        with _LOCK:
            self._acc[name].add(amount)

    def snapshot(self) -> Dict[str, float]:
        """Totals so far; read on the driver after an action."""
        return {name: acc.value for name, acc in self._acc.items()}


class LocalTally:
    """The same interface as `LookupCounters` for code that runs without Spark."""

    def __init__(self) -> None:
        self._values: Dict[str, float] = {name: 0 for name in COUNTER_NAMES}
        self._values[BACKOFF_SECONDS] = 0.0
        self._lock = threading.Lock()

    def add(self, name: str, amount: float = 1) -> None:
        with self._lock:
            self._values[name] += amount

    def snapshot(self) -> Dict[str, float]:
        with self._lock:
            return dict(self._values)
