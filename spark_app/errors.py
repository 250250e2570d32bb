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


class NoPublishedRun(DataNotReady):
    """A report was asked for a day with no successful run of the pipeline (nothing to show yet)."""


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


def from_executor_failure(exc: BaseException) -> PipelineError | None:
    """Recover one of our errors raised inside a Spark task.

    An exception raised on an executor reaches the driver wrapped in a Py4J or Python
    exception whose text holds the worker's traceback. The last line naming one of our
    error classes gives the original type and message; anything else returns None.
    """
    import re

    classes = {cls.__name__: cls for cls in _all_error_classes()}
    pattern = re.compile(r"(?:spark_app\.errors\.)?(" + "|".join(classes) + r"): (.+)")
    found = None
    for line in str(exc).splitlines():
        m = pattern.search(line.strip())
        if m:
            found = m
    if not found:
        return None
    return classes[found.group(1)](found.group(2).strip())


def _all_error_classes() -> list[type[PipelineError]]:
    out, todo = [], [PipelineError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return out


class translate_task_errors:
    """Context manager: re-raise a failure from inside Spark tasks as our own error, when it is one.

    Used around the part of a run that triggers Spark jobs, so that what is recorded and
    printed is "LookupFailed: 120 keys left ..." rather than a page of JVM stack.
    """

    def __enter__(self) -> translate_task_errors:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or isinstance(exc, PipelineError) or not isinstance(exc, Exception):
            return False
        ours = from_executor_failure(exc)
        if ours is not None:
            raise ours from None
        return False
