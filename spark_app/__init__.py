"""The catalog-match-rate library: one subpackage per part of the daily job.

    config, errors, session, logs, ...   the shared modules, at the root
    events/    the event-log source (S3 or local)        presto/    the Presto source
    dynamo/    catalog enrichment                        postgres/  load, publish, schema
    quality/   the data-quality gate                     report/    the catalog health report
    ops/       run metrics, report delivery, marker
    emr/       deploy side, never shipped                local/     laptop only, never shipped

The public API of the job's parts is re-exported here and imported on first use, so that
`import spark_app` stays cheap on executors and in the scheduler's Lambda package. Deploy-side
helpers are imported from their package (`spark_app.emr`), never through this one.

    from spark_app import load_config, build_session, read_day_events, enrich_with_catalog
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    # configuration and errors
    "Config": "config",
    "load_config": "config",
    "config_from_mapping": "config",
    "PipelineError": "errors",
    "ConfigError": "errors",
    "DataNotReady": "errors",
    "QualityGateFailed": "errors",
    "SinkError": "errors",
    "LookupFailed": "errors",
    "SourceError": "errors",
    # Spark
    "build_session": "session",
    "Progress": "progress",
    # sources
    "check_day_available": "events.availability",
    "read_day_events": "events.read",
    "read_presto_views": "presto.read",
    # enrichment
    "enrich_with_catalog": "dynamo.enrich",
    "make_client": "dynamo.lookup",
    "LookupCounters": "dynamo.counters",
    # PostgreSQL
    "connection_spec": "postgres.connect",
    "ConnectionSpec": "postgres.connect",
    "upgrade_schema": "postgres.schema",
    "DayRun": "postgres.publish",
    # data quality
    "verify": "quality.gate",
    "run_gate": "quality.gate",
    "suggest_constraints": "quality.suggest",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'spark_app' has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(list(globals()) + __all__)
