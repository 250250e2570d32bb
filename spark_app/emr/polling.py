"""One poll loop for every run the deploy side follows: EMR steps and EMR Serverless job runs."""

from __future__ import annotations

from typing import Any, Callable, Optional


def poll(
    read: Callable[[], Any],
    phase: Callable[[Any], Any],
    poll_seconds: float,
    max_poll_seconds: float,
    timeout_seconds: Optional[float],
    echo: Callable[[str], None],
    sleep: Callable[[float], None],
) -> Any:
    """Call `read` until its status is `done` (or the timeout passed), echoing its `line()` each time
    its `phase` changes; returns the last status (EMR steps and EMR Serverless job runs alike).

    The interval grows by half each poll up to `max_poll_seconds`: a run lasts minutes to hours,
    so fast polling only burns the API's request quota.
    """
    last, delay, waited = None, poll_seconds, 0.0
    while True:
        now = read()
        if phase(now) != last:
            echo(now.line())
            last = phase(now)
        if now.done or (timeout_seconds is not None and waited >= timeout_seconds):
            return now
        sleep(delay)
        waited += delay
        delay = min(delay * 1.5, max_poll_seconds)
