"""Event logs (S3 or local): is the day complete, read and validate it, count and quarantine.

Runs on the driver (`read`, `availability`: listing, planning, counts) and on executors (`scan`:
one task's files, `files`: opening them, `vector`: the bulk path, `parse`: the strict per-record
rules, `tables`: Parquet, inside Spark tasks).
"""

from __future__ import annotations
