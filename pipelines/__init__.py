"""Jobs composed from the `spark_app` library; `process_data.py --pipeline NAME` runs one.

A pipeline module exposes `NAME`, `run(spark, cfg, day, progress)` and
`compute_tables(spark, cfg, day, progress, run_id)` (the day's tables, nothing written),
and `check_quality(spark, cfg, tables, day, run_id, spec=None, record=True)` (the day's verdict
against the history in `spec`; `record=False` writes nothing).
"""

from __future__ import annotations

from importlib import import_module

from spark_app.errors import ConfigError

PIPELINES = ("catalog_match_rate",)


def load_pipeline(name: str):
    if name not in PIPELINES:
        raise ConfigError(f"--pipeline: unknown pipeline {name!r} (known: {', '.join(PIPELINES)})")
    return import_module(f"pipelines.{name}")
