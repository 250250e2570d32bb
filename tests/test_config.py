"""The config loader refuses what would publish a wrong day or leak a secret, naming file and key."""

from __future__ import annotations

import pytest
import yaml

from spark_app.config import config_from_mapping, load_config
from spark_app.errors import ConfigError

GOOD = {
    "events": {"path": "/tmp/events"},
    "dynamodb": {"table": "catalog", "region": "us-east-1"},
    "postgres": {"url": "postgresql://etl@db:5432/catalog?sslmode=require"},
}
SECRET = "s3cr3t-Value"


def with_postgres(**changes):
    return {**GOOD, "postgres": {**GOOD["postgres"], **changes}}


def refusal(data) -> str:
    with pytest.raises(ConfigError) as err:
        config_from_mapping(data, source="job.yaml")
    assert err.value.exit_code == 2
    return str(err.value)


@pytest.mark.parametrize("rows", [0, -1, -10000])
def test_a_copy_batch_of_no_rows_is_refused(rows):
    message = refusal(with_postgres(copy_batch_rows=rows))
    assert "job.yaml: postgres.copy_batch_rows: must be at least 1" in message


def test_the_default_and_a_positive_copy_batch_are_accepted():
    assert config_from_mapping(GOOD).postgres.copy_batch_rows == 10000
    assert config_from_mapping(with_postgres(copy_batch_rows=1)).postgres.copy_batch_rows == 1


@pytest.mark.parametrize("key", ["password", "PASSWORD", "sslpassword", "passfile", "api_token", "secret"])
def test_a_secret_like_query_option_is_refused_naming_the_key_not_the_value(key):
    message = refusal(with_postgres(url=f"postgresql://etl@db:5432/catalog?sslmode=require&{key}={SECRET}"))
    assert f"job.yaml: postgres.url: query option '{key}'" in message
    assert SECRET not in message


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://etl:{SECRET}@db/catalog",
        f"postgresql://etl:a/{SECRET}@db/catalog",  # '/' in the password hides it from a naive parser
        f"postgresql://etl:a?{SECRET}@db/catalog",
        f"postgresql://etl:a#{SECRET}@db/catalog",
        f"postgresql://etl@x:{SECRET}@db/catalog",  # two '@'
        f"postgresql://etl%3A{SECRET}@db/catalog",  # percent-encoded ':'
        f"postgresql://etl%40x:{SECRET}@db/catalog",
    ],
)
def test_tricks_in_the_user_part_are_refused_without_echoing_it(url):
    message = refusal(with_postgres(url=url))
    assert "job.yaml: postgres.url:" in message
    assert SECRET not in message


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://etl@db/catalog password={SECRET}",  # libpq expands a dbname holding '='
        f"postgresql://etl@db/dbname=catalog%20password={SECRET}",
        f"postgresql://etl@db/postgresql:%2F%2Fetl:{SECRET}@db",
    ],
)
def test_conninfo_in_the_database_name_is_refused_without_echoing_it(url):
    message = refusal(with_postgres(url=url))
    assert "job.yaml: postgres.url:" in message and "database" in message
    assert SECRET not in message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://etl@db:5432/catalog?sslmode=require&application_name=cmr",
        "postgresql+psycopg2://etl@db.example.internal/analytics",
        "postgresql://etl@10.0.0.1:5432/catalog",
        "postgres://etl@db/catalog?sslrootcert=/etc/ssl/rds.pem&connect_timeout=5",
    ],
)
def test_plain_urls_are_accepted(url):
    assert config_from_mapping(with_postgres(url=url)).postgres.url == url


@pytest.mark.parametrize(
    "section, key",
    [
        ("spark", "spark.hadoop.fs.s3a.secret.key"),
        ("spark", "spark.hadoop.fs.s3a.access.key"),
        ("spark", "spark.datasource.password"),
    ],
)
def test_a_literal_secret_anywhere_in_the_file_is_refused_naming_the_key(section, key):
    data = {**GOOD, section: {"conf": {key: SECRET}}}
    message = refusal(data)
    assert f"job.yaml: {section}.conf.{key}:" in message
    assert SECRET not in message


def test_references_to_secrets_are_not_secrets():
    refs = with_postgres(password_env="PG_PW", password_secret="prod/db", secret_region="eu-west-1")
    cfg = config_from_mapping(refs)
    assert cfg.postgres.password_secret == "prod/db"


def test_a_config_file_that_is_not_utf8_exits_2_naming_the_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(yaml.safe_dump(GOOD).encode() + "# caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"{path}: not UTF-8 text") as err:
        load_config(path)
    assert err.value.exit_code == 2
