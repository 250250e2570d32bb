"""Where the PostgreSQL password comes from: AWS Secrets Manager, an environment variable, or libpq.

The password never lives in the YAML file or in the URL. On EMR the job reads it from Secrets
Manager with the instance role; locally an environment variable is enough. When neither is set
we return None and let libpq fall back to its own PGPASSWORD / ~/.pgpass lookup.
"""

from __future__ import annotations

import json
import os
from typing import Optional

from spark_app.config import PostgresConfig
from spark_app.errors import ConfigError, SinkError


def resolve_password(cfg: PostgresConfig, endpoint_url: Optional[str] = None) -> Optional[str]:
    """The password for `cfg.url`: Secrets Manager when `cfg.password_secret` is set, else the env var.

    `endpoint_url` points boto3 at a non-AWS endpoint (moto in tests); None means the AWS endpoint
    of `cfg.secret_region` (or the default region of the environment).
    """
    if cfg.password_secret:
        return _password_from_secret(cfg.password_secret, cfg.secret_region, endpoint_url)
    value = os.environ.get(cfg.password_env) if cfg.password_env else None
    return value if value else None


def _password_from_secret(secret_id: str, region: Optional[str], endpoint_url: Optional[str]) -> str:
    """Read the secret; a JSON object must carry "password", any other string is the password itself."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint_url)
        response = client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        raise SinkError(
            f"cannot read PostgreSQL password from Secrets Manager secret {secret_id!r} "
            f"(region {region or 'default'}): {code}; check the secret id and the role's "
            f"secretsmanager:GetSecretValue permission"
        ) from None
    except BotoCoreError as exc:
        raise SinkError(
            f"cannot reach Secrets Manager for secret {secret_id!r} (region {region or 'default'}): "
            f"{type(exc).__name__}"
        ) from None
    secret = response.get("SecretString")
    if secret is None:
        raise ConfigError(f"Secrets Manager secret {secret_id!r} holds binary data, expected a string")
    return _password_from_secret_string(secret_id, secret)


def _password_from_secret_string(secret_id: str, secret: str) -> str:
    stripped = secret.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            return secret  # a password that merely starts with "{"
        if not isinstance(data, dict) or not isinstance(data.get("password"), str):
            raise ConfigError(
                f"Secrets Manager secret {secret_id!r} is a JSON object without a string key 'password'"
            )
        return data["password"]
    return secret
