"""Secrets never live in a config file: the checks `load_config` runs before anything else.

Two kinds of check, both naming the dotted key and never echoing the value:

- `postgres.url` must be a plain URL: a user name without `:`, `@`, `/`, `?`, `#` or `%`
  (anything else may hide a password from one parser and not from another), a database name
  that libpq cannot expand into connection parameters (no `=`, no URL), and no query option
  whose name looks like a secret (`password`, `sslpassword`, `passfile`, `*token*`, ...).
- any key anywhere in the file whose last part names a secret (`password`,
  `spark.hadoop.fs.s3a.secret.key`, ...) and holds a literal value. Keys that name *where* a
  secret comes from (`password_env`, `password_secret`, `jwt_env`, `secret_region`) are fine.
"""

from __future__ import annotations

import re
from typing import Any, Iterator, Tuple
from urllib.parse import parse_qsl

from spark_app.errors import ConfigError

SECRET_WORDS = re.compile(r"pass|secret|token|credential|private|access[._-]?key|api[._-]?key", re.I)
SECRET_REFERENCES = {"password_env", "password_secret", "jwt_env", "secret_region"}

_SCHEME = r"postgres(?:ql)?(?:\+\w+)?://"
_PLAIN_USER = re.compile(r"[A-Za-z0-9_.\-]+")
_HOST = r"(?:[A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:.]+\])(?::\d+)?"
_PLAIN_HOSTS = re.compile(rf"{_HOST}(?:,{_HOST})*")  # libpq accepts a list of hosts
_PLAIN_DATABASE = re.compile(r"[A-Za-z0-9_.$\-]+")


def refuse_secrets(data: Any, source: str) -> None:
    """Both checks on raw config data (as read from YAML), before any other validation."""
    check_no_literal_secrets(data, source)
    postgres = data.get("postgres") if isinstance(data, dict) else None
    if isinstance(postgres, dict) and isinstance(postgres.get("url"), str):
        check_postgres_url(postgres["url"], source)


def url_has_password(url: str) -> bool:
    """True when the URL's user part carries a password (`scheme://user:secret@...`), read as
    SQLAlchemy and libpq read it: the user name ends at the first ':' and the password at the next '@'.
    The one check of a password in a URL (the config, `check_postgres_url`, `ConnectionSpec`)."""
    m = re.match(r"^[\w+]+://[^:/]*:([^@]*)@", url)
    return bool(m and m.group(1))


def check_postgres_url(url: str, source: str, key: str = "postgres.url") -> None:
    """ConfigError naming `key` unless `url` is postgresql://user@host:port/database?options."""
    where = f"{source}: {key}"
    if url_has_password(url):
        raise ConfigError(
            f"{where}: must not carry a password; the password comes from the environment variable "
            "named by postgres.password_env (PGPASSWORD by default) or postgres.password_secret"
        )
    m = re.match(_SCHEME, url)
    if not m:
        raise ConfigError(f"{where}: expected postgresql://user@host:port/database")
    rest = url[m.end():]
    if "#" in rest:
        raise ConfigError(f"{where}: must not hold '#'; expected postgresql://user@host:port/database")
    authority, _, query = rest.partition("?")
    authority, _, database = authority.partition("/")
    if "@" in authority or "@" in database:
        _check_user(authority, database, where)
        authority = authority.rpartition("@")[2]
    if not _PLAIN_HOSTS.fullmatch(authority or "localhost"):
        raise ConfigError(f"{where}: the host part is not host[:port]; expected postgresql://user@host:port/db")
    if database and not _PLAIN_DATABASE.fullmatch(database):
        raise ConfigError(
            f"{where}: the database name must be a plain name (letters, digits, _ . $ -); libpq would "
            "read '=' or a URL in it as connection parameters, which may carry a password"
        )
    for name, _value in parse_qsl(query, keep_blank_values=True):
        if SECRET_WORDS.search(name):
            raise ConfigError(
                f"{where}: query option {name!r} carries a secret; set the environment variable "
                "named by postgres.password_env or postgres.password_secret instead"
            )


def _check_user(authority: str, database: str, where: str) -> None:
    user = authority.partition("@")[0] if "@" in authority else None
    if user is None or authority.count("@") > 1 or not _PLAIN_USER.fullmatch(user):
        raise ConfigError(
            f"{where}: the user part must be a plain user name (letters, digits, _ . -) followed by "
            "one '@': no password, ':', '@', '/', '?', '#' or '%'; the password comes from "
            "postgres.password_env or postgres.password_secret"
        )


def check_no_literal_secrets(data: Any, source: str) -> None:
    """ConfigError naming the first key whose name says it holds a secret and that has a value."""
    for dotted, value in _leaves(data, ""):
        last = dotted.rsplit(".", 1)[-1] if not _is_free_form(dotted) else _free_form_key(dotted)
        if last in SECRET_REFERENCES or last.endswith(_REFERENCE_ENDINGS) or value in (None, ""):
            continue
        if SECRET_WORDS.search(last):
            raise ConfigError(
                f"{source}: {dotted}: holds a secret; secrets come from the environment or AWS "
                "Secrets Manager, never from a config file"
            )


_REFERENCE_ENDINGS = ("_env", "provider")  # an environment variable's name, a credentials provider class
_FREE_FORM = ("spark.conf.", "emr.spark_conf.", "emr.tags.")


def _is_free_form(dotted: str) -> bool:
    return dotted.startswith(_FREE_FORM)


def _free_form_key(dotted: str) -> str:
    """For maps with dotted keys of their own (spark.conf), the whole map key."""
    for prefix in _FREE_FORM:
        if dotted.startswith(prefix):
            return dotted[len(prefix):]
    return dotted


def _leaves(data: Any, prefix: str) -> Iterator[Tuple[str, Any]]:
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _leaves(v, f"{prefix}[{i}]")
    else:
        yield prefix, data
