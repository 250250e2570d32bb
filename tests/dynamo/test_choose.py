"""`dynamodb.lookup`: the cost model of docs/scaling.md, `auto` choosing each way on moto, and a
whole day computed through the export equal to the same day through BatchGetItem."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import date

import pytest
from chispa import assert_df_equality

from spark_app.config import DynamoConfig, config_from_mapping
from spark_app.config_dynamo import AutoConfig
from spark_app.dynamo.choose import enrich_day, estimate
from spark_app.dynamo.enrich import enrich_with_catalog
from spark_app.errors import LookupFailed
from spark_app.progress import Progress
from tests.support.dynamo import enable_pitr, export_config, load_catalog
from tests.support.s3 import client, s3_config

GiB = 2**30
ON_DEMAND = {"BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"}}
CATALOG_8B = {"ItemCount": 1_000_000_000, "TableSizeBytes": 200 * GiB, **ON_DEMAND}  # docs/scaling.md


# --------------------------------------------------------------------------- the model


def test_at_eight_billion_events_the_usual_day_stays_with_batch_get():
    est = estimate(80_000_000, CATALOG_8B, AutoConfig())

    assert est.choice == "batch_get"
    assert est.batch_get_dollars == pytest.approx(5.0) and est.export_dollars == pytest.approx(20.0)
    assert est.batch_get_minutes == pytest.approx(80e6 / 24_000 / 60)


def test_the_worst_day_every_view_a_new_key_goes_to_the_export():
    est = estimate(4_000_000_000, CATALOG_8B, AutoConfig())

    assert est.choice == "export"
    assert est.batch_get_dollars == pytest.approx(250.0) and est.export_dollars == pytest.approx(20.0)


def test_the_price_break_even_is_one_point_six_million_keys_per_gb():
    fast_export = AutoConfig(export_wait_minutes=0)  # time out of the way: price alone decides
    assert estimate(320_000_000, CATALOG_8B, fast_export).choice == "export"
    assert estimate(319_000_000, CATALOG_8B, fast_export).choice == "batch_get"


def test_a_reusable_export_costs_nothing_but_its_reading():
    near_all = estimate(900_000_000, CATALOG_8B, AutoConfig(), export_reusable=True)
    few = estimate(1_000, CATALOG_8B, AutoConfig(), export_reusable=True)

    assert (near_all.choice, near_all.export_dollars) == ("export", 0.0)
    assert few.choice == "batch_get"  # reading a billion items takes longer than 1,000 lookups


def test_a_provisioned_table_is_read_at_two_keys_per_read_unit():
    table = {"ItemCount": 10, "TableSizeBytes": 1000, "ProvisionedThroughput": {"ReadCapacityUnits": 500}}
    assert estimate(1, table, AutoConfig()).keys_per_second == 1000.0


def test_no_keys_never_export():
    assert estimate(0, {"ItemCount": 0, "TableSizeBytes": 0, **ON_DEMAND}, AutoConfig()).choice == "batch_get"


# --------------------------------------------------------------------------- auto on moto


@pytest.fixture()
def bucket(moto_server):
    name = f"exports-{uuid.uuid4().hex[:8]}"
    client(moto_server.endpoint_url).create_bucket(Bucket=name)
    return name


CATALOG = [(1, f"p{i}") for i in range(0, 400, 2)]
SLOW_TABLE = AutoConfig(keys_per_second=1.0, export_wait_minutes=1.0)  # break-even at about 61 keys


def auto_config(moto_server, table, bucket, auto=SLOW_TABLE) -> DynamoConfig:
    cfg = export_config(moto_server.endpoint_url, table, f"s3://{bucket}/exports", lookup="auto")
    return dataclasses.replace(cfg, auto=auto)


def job_config(dyn: DynamoConfig, moto_server):
    """A whole `Config` around `dyn`, as enrich_day takes it."""
    base = config_from_mapping(
        {
            "events": {"path": "/tmp/unused"},
            "dynamodb": {"table": "t", "region": "us-east-1"},
            "postgres": {"url": "postgresql://etl@db/x"},
        }
    )
    return dataclasses.replace(base, dynamodb=dyn, s3=s3_config(moto_server.endpoint_url))


@pytest.mark.parametrize(("keys", "way"), [(10, "batch_get"), (300, "export")])
def test_auto_chooses_by_the_number_of_keys_and_says_why(
    spark, dynamodb, catalog_table, bucket, moto_server, keys, way
):
    load_catalog(dynamodb, catalog_table, CATALOG)
    enable_pitr(dynamodb, catalog_table)
    dyn = auto_config(moto_server, catalog_table, bucket)
    df = spark.createDataFrame([(1, f"p{i}") for i in range(keys)], "advertiser_id long, product_id string")
    progress = Progress()

    with progress.stage("enrich") as st:
        enriched = enrich_day(
            df, job_config(dyn, moto_server), progress=progress, distinct_keys=keys, stage=st
        )
        assert_df_equality(enriched, enrich_with_catalog(df, dyn), ignore_row_order=True)

    detail = progress.as_stats()["stages"]["enrich"]
    assert detail["lookup"] == way and detail["keys"] == keys and detail["table_items"] == len(CATALOG)
    assert {"batch_get_dollars", "batch_get_minutes", "export_dollars", "export_minutes"} <= set(detail)
    (note,) = progress.notes
    assert note.startswith(
        f"dynamodb lookup: auto chose {way} for K={keys:,} keys against {len(CATALOG):,} items"
    )


def test_auto_falls_back_to_batch_get_when_the_export_cannot_be_had_and_says_so(
    spark, dynamodb, catalog_table, bucket, moto_server
):
    load_catalog(dynamodb, catalog_table, CATALOG)  # point-in-time recovery stays off
    dyn = auto_config(moto_server, catalog_table, bucket)
    df = spark.createDataFrame([(1, f"p{i}") for i in range(300)], "advertiser_id long, product_id string")
    progress = Progress()

    with progress.stage("enrich") as st:
        enriched = enrich_day(
            df, job_config(dyn, moto_server), progress=progress, distinct_keys=300, stage=st
        )
        assert enriched.where("matched").count() == 150

    assert progress.as_stats()["stages"]["enrich"]["lookup"] == "batch_get"
    chose, fell_back = progress.notes
    assert chose.startswith("dynamodb lookup: auto chose export")
    assert fell_back.startswith(
        "dynamodb lookup: the export could not be had, fell back to batch_get: DynamoDB"
    )
    assert "point-in-time recovery is off" in fell_back


def test_lookup_export_never_falls_back(spark, dynamodb, catalog_table, bucket, moto_server):
    load_catalog(dynamodb, catalog_table, CATALOG)
    dyn = export_config(moto_server.endpoint_url, catalog_table, f"s3://{bucket}/exports")
    df = spark.createDataFrame([(1, "p0")], "advertiser_id long, product_id string")

    with pytest.raises(LookupFailed, match="point-in-time recovery is off"):
        enrich_day(df, job_config(dyn, moto_server), distinct_keys=1)


def test_auto_without_an_export_section_is_batch_get_without_a_note(
    spark, dynamodb, catalog_table, moto_server
):
    load_catalog(dynamodb, catalog_table, CATALOG)
    dyn = dataclasses.replace(
        export_config(moto_server.endpoint_url, catalog_table, "s3://b"), lookup="auto", export=None
    )
    df = spark.createDataFrame([(1, "p0")], "advertiser_id long, product_id string")
    progress = Progress()

    with progress.stage("enrich") as st:
        enrich_day(df, job_config(dyn, moto_server), progress=progress, stage=st).collect()

    assert progress.notes == []
    stage = progress.as_stats()["stages"]["enrich"]
    assert (stage["lookup"], stage["lookup_reason"]) == ("batch_get", "dynamodb.export not set")


# --------------------------------------------------------------------------- a whole day both ways

DAY = date(2026, 11, 19)


def test_a_day_computed_through_the_export_equals_the_same_day_through_batch_get(
    spark, tmp_path, dynamodb, catalog_table, bucket, moto_server
):
    from pipelines.catalog_match_rate import compute_tables

    load_catalog(dynamodb, catalog_table, CATALOG + [(2, 'weird, "quoted"\tsku 🚀')])
    enable_pitr(dynamodb, catalog_table)
    folder = tmp_path / "events" / f"dt={DAY}"
    folder.mkdir(parents=True)
    views = [(1 + i % 3, f"p{i % 250}") for i in range(600)] + [(2, 'weird, "quoted"\tsku 🚀')]
    lines = [
        json.dumps(
            {
                "event_id": f"e{n}",
                "event_type": "product_view",
                "ts": f"{DAY}T10:00:00Z",
                "advertiser_id": a,
                "product_id": p,
            },
            ensure_ascii=False,
        )
        for n, (a, p) in enumerate(views)
    ]
    (folder / "part-00000.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    base = job_config(
        export_config(moto_server.endpoint_url, catalog_table, f"s3://{bucket}/exports"), moto_server
    )
    base = dataclasses.replace(base, events=dataclasses.replace(base.events, path=str(tmp_path / "events")))

    tables, stats = {}, {}
    for way in ("batch_get", "export"):
        cfg = dataclasses.replace(base, dynamodb=dataclasses.replace(base.dynamodb, lookup=way))
        progress = Progress()
        tables[way] = compute_tables(spark, cfg, DAY, progress, run_id=f"run-{way}")
        stats[way] = progress.as_stats()

    for name in tables["export"]:
        assert_df_equality(tables["export"][name], tables["batch_get"][name], ignore_row_order=True)
        for way in tables:
            tables[way][name].unpersist()
    assert stats["export"]["stages"]["enrich"]["lookup"] == "export"
    assert stats["batch_get"]["stages"]["enrich"]["lookup"] == "batch_get"
    assert stats["export"]["counts"] == stats["batch_get"]["counts"]
