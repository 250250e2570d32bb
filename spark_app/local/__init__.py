"""Local only, never shipped to the cluster: embedded servers, sample data and `make run`."""

from __future__ import annotations
