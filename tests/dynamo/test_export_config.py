"""`dynamodb.lookup`, `dynamodb.export` and `dynamodb.auto`: typed, with defaults, refused when wrong."""

from __future__ import annotations

import pytest

from spark_app.config import DynamoConfig, FaultConfig, config_from_mapping
from spark_app.errors import ConfigError

BASE = {
    "events": {"path": "/tmp/events"},
    "postgres": {"url": "postgresql://etl@db:5432/catalog?sslmode=require"},
}


def with_dynamodb(**section):
    return {**BASE, "dynamodb": {"table": "catalog", "region": "us-east-1", **section}}


def refusal(data) -> str:
    with pytest.raises(ConfigError) as err:
        config_from_mapping(data, source="job.yaml")
    assert err.value.exit_code == 2
    return str(err.value)


def test_the_default_is_auto_with_no_export_and_the_cost_model_of_the_scaling_note():
    cfg = config_from_mapping(with_dynamodb()).dynamodb
    assert isinstance(cfg, DynamoConfig) and cfg.lookup == "auto" and cfg.export is None
    assert (cfg.auto.price_per_million_reads, cfg.auto.price_per_gb_exported) == (0.125, 0.10)
    assert cfg.auto.keys_per_second == 24_000
    assert FaultConfig().throttle_all is False  # still importable from spark_app.config


def test_an_export_section_is_typed_with_its_defaults():
    cfg = config_from_mapping(with_dynamodb(lookup="export", export={"s3_prefix": "s3://b/exports"})).dynamodb
    assert cfg.export.s3_prefix == "s3://b/exports"
    ex = cfg.export
    assert (ex.max_age_hours, ex.wait_minutes, ex.format) == (24.0, 60.0, "DYNAMODB_JSON")


def test_batch_get_needs_no_export_section():
    assert config_from_mapping(with_dynamodb(lookup="batch_get")).dynamodb.lookup == "batch_get"


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"lookup": "scan"}, "dynamodb.lookup: 'scan' is not one of 'auto', 'batch_get', 'export'"),
        ({"lookup": "export"}, "dynamodb.export: required when dynamodb.lookup is 'export'"),
        ({"export": {}}, "dynamodb.export.s3_prefix: required"),
        ({"export": {"s3_prefix": "/tmp/exports"}}, "dynamodb.export.s3_prefix: want s3://bucket[/prefix]"),
        ({"export": {"s3_prefix": "s3:///x"}}, "dynamodb.export.s3_prefix: want s3://bucket[/prefix]"),
        ({"export": {"s3_prefix": "s3://b", "format": "ION"}}, "dynamodb.export.format: 'ION' is not one of"),
        ({"export": {"s3_prefix": "s3://b", "wait_minutes": -1}}, "export.wait_minutes: must not be"),
        ({"export": {"s3_prefix": "s3://b", "max_age_hours": "1d"}}, "export.max_age_hours: expected a"),
        ({"export": {"s3_prefix": "s3://b", "bucket": "b"}}, "dynamodb.export.bucket: unknown key"),
        ({"auto": {"keys_per_second": 0}}, "dynamodb.auto.keys_per_second: must be positive"),
    ],
)
def test_a_wrong_lookup_setting_is_refused_naming_the_key(section, expected):
    message = refusal(with_dynamodb(**section))
    assert message.startswith("job.yaml: dynamodb.") and expected in message
