"""The data-quality gate: Deequ-style checks computed by PyDeequ or a native engine.

Runs on the driver (the engines launch Spark jobs). `results` holds the result types, below
`checks` (the catalogue), the engines (`native`, `deequ`), `store` (metrics history) and
`gate`, which ties them together; `suggest` proposes checks for a table.
"""

from __future__ import annotations
