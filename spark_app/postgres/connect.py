"""How every part of the job connects to PostgreSQL, without ever printing the password.

`ConnectionSpec` is the one value the driver hands to executors: a URL without password plus
the password kept apart. It pickles (Spark ships it inside the task closure), but its repr and
str show `***`, the engine receives the password through `connect_args` rather than a formatted
URL, and `scrub` removes it from any error text we re-raise or record.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Optional

from spark_app.config import PostgresConfig
from spark_app.config_secrets import url_has_password
from spark_app.errors import SinkError
from spark_app.names import IDENTIFIER_RULE, is_plain_identifier

# libpq settings unless the URL sets them: an unreachable host fails in seconds instead of hanging a
# task, and TCP keepalives keep the run's lock connection alive (and detect a dead peer) while it
# idles through a long Spark stage.
_LIBPQ_DEFAULTS = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 5,
}
# Server-side settings of every session of ours, so that a driver or task that dies (kill -9, a
# lost node) holds no lock for long: PostgreSQL checks every few seconds that the client is still
# there, also while a query waits for a lock (client_connection_check_interval, PostgreSQL 14+), and
# probes a silent peer with TCP keepalives (a host that vanished sends no FIN).
_SERVER_KEEPALIVES = {"tcp_keepalives_idle": 30, "tcp_keepalives_interval": 10, "tcp_keepalives_count": 3}


@dataclass(frozen=True)
class ConnectionSpec:
    """A PostgreSQL URL (never with a password) and the password, kept apart."""

    url: str
    password: Optional[str] = None
    client_check_seconds: int = 5  # 0: no client_connection_check_interval (servers before 14)

    def __post_init__(self) -> None:
        from sqlalchemy.engine import make_url

        try:
            make_url(self.url)
        except Exception:
            raise SinkError("PostgreSQL URL is not valid: expected postgresql://user@host:port/db") from None
        if url_has_password(self.url):
            raise SinkError("PostgreSQL URL must not carry a password; pass it as ConnectionSpec.password")

    def __repr__(self) -> str:
        shown = "***" if self.password else "None"
        return f"ConnectionSpec(url={self.url!r}, password={shown})"

    __str__ = __repr__

    def sqlalchemy_url(self) -> Any:
        """The URL for SQLAlchemy's psycopg2 dialect; query options (sslmode, ...) pass to libpq."""
        from sqlalchemy.engine import make_url

        url = make_url(re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg2://", self.url))
        return url

    def engine(self, **kwargs: Any) -> Any:
        """A SQLAlchemy engine without pooling: each driver step or task owns its connections."""
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        url = self.sqlalchemy_url()
        connect_args = dict(kwargs.pop("connect_args", {}))
        if self.password is not None:
            connect_args["password"] = self.password
        for key, value in _LIBPQ_DEFAULTS.items():
            if key not in url.query:
                connect_args.setdefault(key, value)
        connect_args["options"] = " ".join(filter(None, [self.session_options(), url.query.get("options")]))
        return create_engine(url, poolclass=NullPool, connect_args=connect_args, **kwargs)

    def session_options(self) -> str:
        """libpq `options`: the server settings every session of ours starts with."""
        settings = dict(_SERVER_KEEPALIVES)
        if self.client_check_seconds > 0:
            settings["client_connection_check_interval"] = self.client_check_seconds * 1000
        return " ".join(f"-c {name}={value}" for name, value in settings.items())

    def describe(self) -> str:
        """host:port/database, for messages."""
        url = self.sqlalchemy_url()
        return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"

    def scrub(self, text: str) -> str:
        """`text` with every occurrence of the password replaced by ***."""
        if self.password:
            text = text.replace(self.password, "***")
        return text


def connection_spec(cfg: PostgresConfig, endpoint_url: Optional[str] = None) -> ConnectionSpec:
    """The spec for `cfg`, with the password resolved now (on the driver) from its configured source."""
    from spark_app.postgres.secrets import resolve_password

    password = resolve_password(cfg, endpoint_url=endpoint_url)
    return ConnectionSpec(url=cfg.url, password=password, client_check_seconds=cfg.client_check_seconds)


def check_identifier(name: str, what: str = "identifier") -> str:
    """`name` if it is a plain SQL identifier; SinkError otherwise (we never quote arbitrary text)."""
    if not is_plain_identifier(name):
        raise SinkError(f"{what} {name!r} is not a plain SQL identifier ({IDENTIFIER_RULE})")
    return name


def quote_ident(name: str) -> str:
    """The validated identifier in double quotes."""
    return '"' + check_identifier(name) + '"'


def qualified(schema: str, table: str) -> str:
    """schema.table, both validated and quoted."""
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def lock_key(*parts: object) -> int:
    """A stable signed 64-bit key for pg_advisory_lock from the parts' text (same on every host)."""
    digest = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def error_text(exc: BaseException, spec: Optional[ConnectionSpec] = None, limit: int = 2000) -> str:
    """A one-paragraph, password-free description of `exc` for messages and the runs table."""
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's exception
    base = orig if isinstance(orig, BaseException) else exc
    text = f"{type(base).__name__}: {base}".strip()
    text = re.sub(r"\s*\(Background on this error at: [^)]*\)", "", text)
    if spec is not None:
        text = spec.scrub(text)
    return text[:limit]
