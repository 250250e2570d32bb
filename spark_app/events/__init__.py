"""Event logs (S3 or local): is the day complete, read and validate it, count and quarantine.

Runs on the driver (listing, availability, planning) and on executors (`files`: opening and
checking each file, `parse`: the per-line rules, inside Spark tasks).
"""

from __future__ import annotations
