"""Deploy side, never shipped to the cluster: packaging, launch, logs, sizing and schedule on EMR.

Runs on a laptop or CI (and `schedule.handler` in its own Lambda package).
"""

from __future__ import annotations
