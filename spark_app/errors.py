"""Exceptions of the library, each mapped to a distinct process exit code.

Library code raises; only the command-line entry points (`process_data.py`, `deploy.py`)
turn an exception into an exit code, so a scheduler can tell "retry later" from "broken".
"""

from __future__ import annotations


class PipelineError(Exception):
    """A run failed; the message says what and, where known, the probable cause."""

    exit_code = 1


class ConfigError(PipelineError):
    """Bad arguments or configuration, detected before Spark starts."""

    exit_code = 2


class DataNotReady(PipelineError):
    """The day's input is missing or incomplete; a scheduler should retry later."""

    exit_code = 3


class QualityGateFailed(PipelineError):
    """An Error-level data-quality constraint failed; nothing was published."""

    exit_code = 4


class SinkError(PipelineError):
    """Writing to PostgreSQL failed; nothing was published."""

    exit_code = 5


class LookupFailed(PipelineError):
    """The DynamoDB enrichment could not complete (keys left after retries, endpoint down)."""

    exit_code = 6


class SourceError(PipelineError):
    """A source (event files, Presto) could not be read, or gave a result of the wrong shape."""

    exit_code = 7
