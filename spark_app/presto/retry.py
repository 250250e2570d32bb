"""Transient Presto answers, retried with a bounded exponential backoff.

A Trino cluster answers `NO_NODES_AVAILABLE` or `SERVER_STARTING_UP` while its workers or
coordinator restart or scale, a load balancer in front of it answers HTTP 502, 503 or 504,
and a restarting coordinator refuses connections. These pass; anything else (a missing table,
a type error, a refused password, a wrong certificate, a timeout) is lasting and fails at once.

`run_with_retries` retries a whole query: the callers only ever hand it work that has not yet
given a row to anyone (spark_app/presto/read.py), so a retry never duplicates a row. Importable
on executors (parallel mode runs it inside the bucket tasks): no Spark, trino imported lazily.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Callable, Optional, TypeVar

from spark_app.errors import ConfigError, SourceError

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_ERROR_NAMES = frozenset({"NO_NODES_AVAILABLE", "SERVER_STARTING_UP"})
TRANSIENT_HTTP_STATUS = frozenset({502, 503, 504})
CONNECTION_REFUSED = "CONNECTION_REFUSED"


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries of a query in all; before try n+1 it waits
    min(`max_backoff_seconds`, `backoff_seconds` x 2^(n-1))."""

    attempts: int = 8
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"presto.retry_attempts: must be at least 1, got {self.attempts}")
        if self.backoff_seconds < 0:
            got = self.backoff_seconds
            raise ConfigError(f"presto.retry_backoff_seconds: must not be negative, got {got}")
        if self.max_backoff_seconds < self.backoff_seconds:
            raise ConfigError(
                f"presto.retry_max_backoff_seconds: must be at least retry_backoff_seconds "
                f"({self.backoff_seconds}), got {self.max_backoff_seconds}"
            )

    def delay(self, failed_attempt: int) -> float:
        """Seconds to wait after attempt `failed_attempt` (from 1) failed."""
        return min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (failed_attempt - 1))

    def total_wait(self) -> float:
        return sum(self.delay(n) for n in range(1, self.attempts))


def http_status(exc: BaseException) -> Optional[int]:
    """The HTTP status of a trino client HttpError (its class, or its text `error <status>...`)."""
    from trino import exceptions as tx

    if not isinstance(exc, tx.HttpError):
        return None
    for cls, status in ((tx.Http502Error, 502), (tx.Http503Error, 503), (tx.Http504Error, 504)):
        if isinstance(exc, cls):
            return status
    found = re.match(r"error (\d{3})\b", str(exc))
    return int(found.group(1)) if found else None


def causes(exc: BaseException):
    """The exception and everything it was raised from or wraps (requests/urllib3 keep the
    socket error as a cause, a context, a `reason` or an argument)."""
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen or not isinstance(e, BaseException):
            continue
        seen.add(id(e))
        yield e
        todo.extend([e.__cause__, e.__context__, getattr(e, "reason", None)])
        todo.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))


def is_connection_refused(exc: BaseException) -> bool:
    return any(isinstance(e, ConnectionRefusedError) for e in causes(exc))


def transient_name(exc: BaseException) -> Optional[str]:
    """The name of a transient failure (`NO_NODES_AVAILABLE`, `HTTP 503`, `CONNECTION_REFUSED`, ...),
    None for a lasting one."""
    from trino import exceptions as tx

    if isinstance(exc, tx.TrinoQueryError):
        return exc.error_name if exc.error_name in TRANSIENT_ERROR_NAMES else None
    status = http_status(exc)
    if status is not None:
        return f"HTTP {status}" if status in TRANSIENT_HTTP_STATUS else None
    if is_connection_refused(exc):
        return CONNECTION_REFUSED
    return None


def run_with_retries(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    what: str,
    describe: Callable[[BaseException], str],
    before_retry: Optional[Callable[[], None]] = None,
) -> T:
    """`attempt()` until it returns, retrying transient failures as `policy` allows.

    A SourceError from `attempt` (e.g. a result of the wrong shape) passes through; a lasting
    failure, or a transient one after the last attempt, becomes SourceError(describe(exc)).
    `before_retry` runs after each transient failure that will be retried.
    """
    for number in range(1, policy.attempts + 1):
        try:
            return attempt()
        except SourceError:
            raise
        except Exception as exc:  # the trino client raises several unrelated types
            name = transient_name(exc)
            if name is None:
                raise SourceError(describe(exc)) from None
            if number == policy.attempts:
                raise SourceError(f"{describe(exc)}; gave up after {number} attempt(s) ({name})") from None
            delay = policy.delay(number)
            log.warning("Presto %s: %s on attempt %d of %d; retrying in %.1f s",
                        what, name, number, policy.attempts, delay)
            if before_retry is not None:
                before_retry()
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
