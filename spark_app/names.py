"""Plain SQL identifiers: the one check used before any name from config is put into SQL."""

from __future__ import annotations

import re

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
IDENTIFIER_RULE = "[A-Za-z_][A-Za-z0-9_]{0,62}"  # as users read it in messages


def is_plain_identifier(name: object) -> bool:
    """True for a name that needs no quoting in PostgreSQL or Presto (and fits PostgreSQL's 63 bytes)."""
    return isinstance(name, str) and _IDENTIFIER.fullmatch(name) is not None
