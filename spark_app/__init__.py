"""The catalog-match-rate library: config, Spark session, sources, enrichment, sinks, quality, EMR.

The public API is re-exported here and imported on first use, so that `import spark_app`
stays cheap on executors and in the scheduler's Lambda package.

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
    "check_day_available": "availability",
    "read_day_events": "events",
    "read_presto_views": "presto",
    # enrichment
    "enrich_with_catalog": "dynamo",
    "make_client": "dynamo",
    "LookupCounters": "dynamo_counters",
    # PostgreSQL
    "connection_spec": "pg_connect",
    "ConnectionSpec": "pg_connect",
    "upgrade_schema": "pg_schema",
    "DayRun": "pg_publish",
    # data quality
    "verify": "quality",
    "run_gate": "quality",
    "suggest_constraints": "quality_suggest",
    # EMR
    "compute_sizing": "sizing",
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
