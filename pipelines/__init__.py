"""Jobs composed from the `spark_app` library; `process_data.py --pipeline NAME` runs one.

A pipeline module exposes `NAME`, `run(spark, cfg, day, progress)` and
`compute_tables(spark, cfg, day, progress, run_id)` (the day's tables, nothing written),
and `check_quality(spark, cfg, tables, day, run_id, spec=None, record=True)` (the day's verdict
against the history in `spec`; `record=False` writes nothing).
"""

from __future__ import annotations

from importlib import import_module

from spark_app.run_days import PIPELINES, check_pipeline  # the names, checked by deploy.py too

__all__ = ["PIPELINES", "check_pipeline", "load_pipeline"]


def load_pipeline(name: str):
    return import_module(f"pipelines.{check_pipeline(name)}")
