"""The Presto (Trino) side of the source: the SQL we send, the connection, and its errors.

Shared by both read modes and importable on executors (parallel mode ships `PrestoEndpoint`
inside the task closure). The day and the bucket are bound parameters: the trino client sends
them in `EXECUTE IMMEDIATE ... USING` (or PREPARE/EXECUTE on older servers), never formatted
into the statement. Identifiers from config are validated and double-quoted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, List, Optional, Sequence, Tuple

from spark_app.config import PrestoConfig
from spark_app.errors import ConfigError, SourceError
from spark_app.names import IDENTIFIER_RULE, is_plain_identifier
from spark_app.presto.retry import RetryPolicy, http_status

VIEW_EVENT_TYPE = "product_view"
RESULT_COLUMNS = ("advertiser_id", "product_id", "view_count")
_INTEGER_TYPES = {"tinyint", "smallint", "integer", "bigint"}
_STRING_TYPES = {"varchar", "char"}
EXPECTED_TYPES = {"advertiser_id": _INTEGER_TYPES, "product_id": _STRING_TYPES, "view_count": _INTEGER_TYPES}
# A key's bucket: Presto's xxhash64 of "advertiser_id:product_id", folded into [0, N).
# mod() keeps the sign of the hash, hence the second mod; abs() would overflow on Long.MIN_VALUE.
_BUCKET_HASH = (
    "from_big_endian_64(xxhash64(to_utf8(concat(CAST(advertiser_id AS varchar), ':', product_id))))"
)


def quote_identifier(name: str, what: str) -> str:
    """`name` double-quoted, after checking it is a plain identifier (config can't inject SQL)."""
    if not is_plain_identifier(name):
        raise ConfigError(f"presto.{what}: not a plain identifier ({IDENTIFIER_RULE}): {name!r}")
    return f'"{name}"'


def table_name(cfg: PrestoConfig) -> str:
    parts = (("catalog", cfg.catalog), ("schema", cfg.schema), ("table", cfg.table))
    return ".".join(quote_identifier(value, key) for key, value in parts)


def views_query(cfg: PrestoConfig, day: date, buckets: Optional[int] = None) -> Tuple[str, List[Any]]:
    """(SQL with `?` placeholders, parameters) counting the day's distinct product views per key.

    Reads partitions dt=D and dt=D+1 (late events land in the next day's folder) and keeps
    events whose UTC timestamp falls on D. With `buckets`, one more parameter selects the
    bucket: buckets are disjoint and together cover every key.
    """
    sql = (
        "SELECT advertiser_id, product_id, count(DISTINCT event_id) AS view_count\n"
        f"FROM {table_name(cfg)}\n"
        "WHERE dt IN (?, ?)\n"
        "  AND event_type = ?\n"
        "  AND CAST(ts AS date) = ?\n"
        "  AND advertiser_id IS NOT NULL AND product_id IS NOT NULL AND event_id IS NOT NULL"
    )
    params: List[Any] = [day.isoformat(), (day + timedelta(days=1)).isoformat(), VIEW_EVENT_TYPE, day]
    if buckets is not None:
        n = int(buckets)
        if n < 1:
            raise ConfigError(f"presto.buckets: must be at least 1, got {buckets}")
        sql += f"\n  AND mod(mod({_BUCKET_HASH}, {n}) + {n}, {n}) = ?"
    sql += "\nGROUP BY advertiser_id, product_id"
    return sql, params


def schema_probe(sql: str) -> str:
    """The query wrapped to return its columns and no rows: checks reachability, auth and shape."""
    return f"SELECT * FROM (\n{sql}\n) AS probe LIMIT 0"


def check_result_columns(description: Optional[Sequence[Any]], where: str) -> None:
    """Raise SourceError unless the result has our three columns with usable types."""
    if not description:
        raise SourceError(f"{where}: Presto returned no result columns")
    got = [(d[0], str(d[1]).split("(")[0].strip().lower()) for d in description]
    names = tuple(name for name, _ in got)
    if names != RESULT_COLUMNS:
        raise SourceError(f"{where}: result columns are {list(names)}, expected {list(RESULT_COLUMNS)}")
    bad = [
        f"{name} is {kind} (expected one of {sorted(EXPECTED_TYPES[name])})"
        for name, kind in got
        if kind not in EXPECTED_TYPES[name]
    ]
    if bad:
        raise SourceError(
            f"{where}: result schema does not match: {'; '.join(bad)}; check the events table's column types"
        )


@dataclass(frozen=True)
class PrestoEndpoint:
    """Everything a process needs to open a connection; secrets are kept out of repr."""

    host: str
    port: int
    http_scheme: str
    user: str
    catalog: str
    schema: str
    verify: bool
    request_timeout: float
    password: Optional[str] = field(default=None, repr=False)
    jwt: Optional[str] = field(default=None, repr=False)
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def secrets(self) -> List[str]:
        return [s for s in (self.password, self.jwt) if s]


def endpoint_from_config(cfg: PrestoConfig) -> PrestoEndpoint:
    """Resolve the secrets named in config from the environment (on the driver only)."""
    return PrestoEndpoint(
        host=cfg.host,
        port=cfg.port,
        http_scheme=cfg.http_scheme,
        user=cfg.user,
        catalog=cfg.catalog,
        schema=cfg.schema,
        verify=cfg.verify_tls,
        request_timeout=cfg.request_timeout_seconds,
        password=_secret_from_env(cfg.password_env, "password_env"),
        jwt=_secret_from_env(cfg.jwt_env, "jwt_env"),
        retry=RetryPolicy(cfg.retry_attempts, cfg.retry_backoff_seconds, cfg.retry_max_backoff_seconds),
    )


def _secret_from_env(var: Optional[str], key: str) -> Optional[str]:
    if not var:
        return None
    value = os.environ.get(var)
    if not value:
        raise ConfigError(f"presto.{key}: environment variable {var} is not set or empty")
    return value


def connect(ep: PrestoEndpoint):
    """A trino DB-API connection; basic auth or JWT when configured, session time zone UTC."""
    import trino.dbapi
    from trino.auth import BasicAuthentication, JWTAuthentication

    auth: Any = None
    if ep.password:
        auth = BasicAuthentication(ep.user, ep.password)
    elif ep.jwt:
        auth = JWTAuthentication(ep.jwt)
    return trino.dbapi.connect(
        http_session=_http_session(ep.verify),
        host=ep.host,
        port=ep.port,
        user=ep.user,
        catalog=ep.catalog,
        schema=ep.schema,
        http_scheme=ep.http_scheme,
        auth=auth,
        verify=ep.verify,
        request_timeout=ep.request_timeout,
        timezone="UTC",
        source="catalog-match-rate",
    )


def forget_statement_protocol(ep: PrestoEndpoint) -> None:
    """Make the trino client ask the server again whether it has EXECUTE IMMEDIATE.

    The client tries `EXECUTE IMMEDIATE 'SELECT 1'` once per host:port and keeps the verdict
    for an hour; a try that met a restarting coordinator would pin the legacy PREPARE path.
    Called before each retry; a client without that cache is left alone.
    """
    import trino.dbapi

    cache = getattr(trino.dbapi, "must_use_legacy_prepared_statements", None)
    entries, lock = getattr(cache, "cache", None), getattr(cache, "lock", None)
    if isinstance(entries, dict) and lock is not None:
        with lock:
            entries.pop((ep.host, ep.port), None)


def _http_session(verify: bool):
    """A requests session that keeps `verify=False` even when REQUESTS_CA_BUNDLE is set.

    requests lets the environment's CA bundle override a session's `verify=False`, which
    would silently turn `verify_tls: false` back on wherever that variable is exported.
    """
    import requests

    class _Session(requests.Session):
        def merge_environment_settings(self, url, proxies, stream, verify, cert):
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if self.verify is False:
                settings["verify"] = False
            return settings

    session = _Session()
    session.verify = verify
    return session


def describe_failure(exc: BaseException, ep: PrestoEndpoint, what: str) -> str:
    """A one-line reason for a failed Presto call, naming the server and probable cause, no secrets."""
    from trino import exceptions as tx

    where = f"Presto at {ep.http_scheme}://{ep.address}, {what}"
    if isinstance(exc, tx.TrinoQueryError):
        msg = f"{where}: query failed ({exc.error_name}, {exc.error_type}): {exc.message}"
    elif http_status(exc) == 401:
        msg = (
            f"{where}: authentication refused for user {ep.user!r} (HTTP 401); "
            "check the password or JWT in the configured environment variable"
        )
    elif isinstance(exc, tx.HttpError):
        msg = f"{where}: HTTP error from the coordinator: {str(exc)[:300]}"
    elif isinstance(exc, (tx.TrinoConnectionError, OSError)) or _is_requests_connection_error(exc):
        msg = (
            f"{where}: unreachable ({type(exc).__name__}); probable cause: coordinator down, "
            f"wrong host/port, TLS scheme mismatch, or a firewall/security group in the way: {str(exc)[:300]}"
        )
    else:
        msg = f"{where}: {type(exc).__name__}: {str(exc)[:300]}"
    return redact(msg, ep)


def redact(text: str, ep: PrestoEndpoint) -> str:
    for secret in ep.secrets():
        text = text.replace(secret, "***")
    return text


def _is_requests_connection_error(exc: BaseException) -> bool:
    try:
        import requests
    except ImportError:  # pragma: no cover - trino depends on requests
        return False
    return isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout))
