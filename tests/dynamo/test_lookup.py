"""The catalog lookup without Spark: requests, retry rounds and failures, counted at the client."""

from __future__ import annotations

import pytest

from spark_app.config import FaultConfig
from spark_app.dynamo.counters import LocalTally
from spark_app.dynamo.lookup import CatalogLookup
from spark_app.errors import LookupFailed
from tests.support.dynamo import catalog_config, load_catalog


@pytest.fixture()
def endpoint(moto_server):
    return moto_server.endpoint_url


def test_one_request_per_hundred_distinct_keys(dynamodb, catalog_table, endpoint):
    present = [(7, f"p{i}") for i in range(0, 250, 2)]  # 125 of the 250 asked keys exist
    load_catalog(dynamodb, catalog_table, present)
    tally = LocalTally()
    with CatalogLookup(catalog_config(endpoint, catalog_table), tally) as lookup:
        found = lookup.find([(7, f"p{i}") for i in range(250)])

    assert found == set(present)
    counts = tally.snapshot()
    assert counts["requests"] == 3  # ceil(250 / 100)
    assert counts["keys_asked"] == 250
    assert counts["keys_found"] == 125
    assert counts["unprocessed_retried"] == 0


def test_repeated_keys_in_later_batches_are_not_asked_again(dynamodb, catalog_table, endpoint):
    load_catalog(dynamodb, catalog_table, [(1, "a"), (2, "b")])
    tally = LocalTally()
    with CatalogLookup(catalog_config(endpoint, catalog_table), tally) as lookup:
        first = lookup.matched([1, 2, 3, 1], ["a", "b", "c", "a"])
        second = lookup.matched([2, 3], ["b", "c"])

    assert first == [True, True, False, True]
    assert second == [True, False]
    assert tally.snapshot()["requests"] == 1


def test_batches_streamed_through_share_requests(dynamodb, catalog_table, endpoint):
    present = [(4, f"k{i}") for i in range(0, 350, 5)]
    load_catalog(dynamodb, catalog_table, present)
    batches = [[(4, f"k{i}") for i in range(j * 70, j * 70 + 70)] for j in range(5)]  # 350 distinct keys
    batches.append(batches[0][:10])  # already answered: asked no more
    tally = LocalTally()
    with CatalogLookup(catalog_config(endpoint, catalog_table), tally) as lookup:
        answered = list(lookup.answers((n, keys) for n, keys in enumerate(batches)))

    assert [n for n, _ in answered] == [0, 1, 2, 3, 4, 5]
    assert [flags for _, flags in answered] == [[k in set(present) for k in keys] for keys in batches]
    assert tally.snapshot()["requests"] == 4  # ceil(350 / 100), not one partial request per batch
    assert tally.snapshot()["keys_asked"] == 350


def test_keys_no_item_can_have_are_false_without_asking(dynamodb, catalog_table, endpoint):
    tally = LocalTally()
    with CatalogLookup(catalog_config(endpoint, catalog_table), tally) as lookup:
        flags = lookup.matched([None, 5, 5], ["a", None, "é" * 513])  # null, null, 1026 bytes

    assert flags == [False, False, False]
    assert tally.snapshot()["requests"] == 0


def test_unprocessed_keys_are_merged_into_full_requests_until_none_is_left(dynamodb, catalog_table, endpoint):
    keys = [(3, f"sku-{i}") for i in range(200)]
    load_catalog(dynamodb, catalog_table, keys)
    cfg = catalog_config(endpoint, catalog_table, faults=FaultConfig(unprocessed_share=0.5))
    tally = LocalTally()
    with CatalogLookup(cfg, tally) as lookup:
        found = lookup.find(keys)

    assert found == set(keys)
    counts = tally.snapshot()
    # Round 1: 2 requests leave 50 + 50; then one request per round for 100, 50, 25, 12, 6, 3, 1
    # keys (half of each answer comes back unprocessed, rounded down, so the last key gets through).
    assert counts["requests"] == 2 + 7
    assert counts["unprocessed_retried"] == 100 + 50 + 25 + 12 + 6 + 3 + 1
    assert counts["backoff_seconds"] > 0


def test_first_three_requests_throttled_are_retried(dynamodb, catalog_table, endpoint):
    load_catalog(dynamodb, catalog_table, [(9, "x")])
    cfg = catalog_config(endpoint, catalog_table, threads=1, faults=FaultConfig(throttle_first=3))
    tally = LocalTally()
    with CatalogLookup(cfg, tally) as lookup:
        found = lookup.find([(9, "x"), (9, "y")])

    assert found == {(9, "x")}
    counts = tally.snapshot()
    assert counts["throttles"] == 3
    assert counts["requests"] == 4
    assert counts["unprocessed_retried"] == 3 * 2


def test_botocore_retries_count_every_attempt(dynamodb, catalog_table, endpoint):
    cfg = catalog_config(endpoint, catalog_table, max_attempts=3, faults=FaultConfig(throttle_first=2))
    tally = LocalTally()
    with CatalogLookup(cfg, tally) as lookup:
        assert lookup.find([(1, "a")]) == set()

    counts = tally.snapshot()
    assert (counts["requests"], counts["throttles"], counts["unprocessed_retried"]) == (3, 2, 0)


def test_every_request_throttled_fails_naming_table_and_keys_left(dynamodb, catalog_table, endpoint):
    cfg = catalog_config(
        endpoint, catalog_table, max_unprocessed_retries=2, faults=FaultConfig(throttle_all=True)
    )
    tally = LocalTally()
    with CatalogLookup(cfg, tally) as lookup, pytest.raises(LookupFailed) as failure:
        lookup.find([(1, f"k{i}") for i in range(150)])

    message = str(failure.value)
    assert f"DynamoDB table {catalog_table}: 150 keys left unprocessed after 2 retry rounds" in message
    assert "\n" not in message
    assert tally.snapshot()["requests"] == 2 * 3  # two requests per round, three rounds


def test_unreachable_endpoint_fails_naming_the_endpoint(refused_endpoint):
    endpoint = refused_endpoint
    cfg = catalog_config(endpoint, "catalog", connect_timeout_seconds=1.0)
    with CatalogLookup(cfg) as lookup, pytest.raises(LookupFailed) as failure:
        lookup.find([(1, "a")])

    assert f"DynamoDB table catalog: cannot reach {endpoint}" in str(failure.value)
    assert "probable cause" in str(failure.value)


def test_missing_table_fails_naming_the_table(endpoint):
    cfg = catalog_config(endpoint, "no_such_table")
    with CatalogLookup(cfg) as lookup, pytest.raises(LookupFailed) as failure:
        lookup.find([(1, "a")])

    assert "DynamoDB table no_such_table: BatchGetItem failed with ResourceNotFoundException" in str(
        failure.value
    )
