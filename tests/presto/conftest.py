"""What the Presto tests share: the retries the source logged."""

from __future__ import annotations

import logging
import re

import pytest

_RETRY = re.compile(r": (\S+(?: \d{3})?) on attempt (\d+) of (\d+); retrying in ")


@pytest.fixture()
def retries(caplog):
    """A function giving the transient failures the Presto source retried so far, by name and
    in order (`["CONNECTION_REFUSED", "HTTP 503", ...]`), from its log on this process."""
    caplog.set_level(logging.WARNING, logger="spark_app.presto.retry")

    def names():
        return [m.group(1) for r in caplog.records if (m := _RETRY.search(r.getMessage()))]

    return names
