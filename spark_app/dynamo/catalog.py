"""The catalog table's key schema, and creating it for local stacks, tests and benchmarks."""

from __future__ import annotations

HASH_KEY = "advertiser_id"  # partition key, type N
RANGE_KEY = "product_id"  # sort key, type S


def create_catalog_table(client, table: str) -> None:
    """Create the catalog table in the shape the lookup expects, unless it exists.

    Partition key `advertiser_id` (number), sort key `product_id` (string), on-demand
    capacity. For local stacks, tests and benchmarks; production tables are managed apart.
    """
    try:
        client.describe_table(TableName=table)
        return
    except client.exceptions.ResourceNotFoundException:
        pass
    client.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "advertiser_id", "KeyType": "HASH"},
            {"AttributeName": "product_id", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "advertiser_id", "AttributeType": "N"},
            {"AttributeName": "product_id", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
