"""Loading the sample catalog into DynamoDB (moto locally): BatchWriteItem, 25 keys a request."""

from __future__ import annotations

import concurrent.futures
import time
from typing import List, Tuple

Key = Tuple[int, str]


def load_catalog(dynamodb_client, table: str, keys: List[Key], threads: int = 8) -> int:
    """Create the catalog table if missing and put every key (BatchWriteItem, 25 per request)."""
    from spark_app.dynamo.catalog import create_catalog_table

    create_catalog_table(dynamodb_client, table)
    batches = [keys[i : i + 25] for i in range(0, len(keys), 25)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        list(pool.map(lambda b: _put_batch(dynamodb_client, table, b), batches))
    return len(keys)


def _put_batch(client, table: str, batch: List[Key], max_rounds: int = 10) -> None:
    """One BatchWriteItem, resending UnprocessedItems with exponential backoff."""
    requests = [
        {"PutRequest": {"Item": {"advertiser_id": {"N": str(a)}, "product_id": {"S": p}}}} for a, p in batch
    ]
    for attempt in range(max_rounds):
        resp = client.batch_write_item(RequestItems={table: requests})
        requests = resp.get("UnprocessedItems", {}).get(table, [])
        if not requests:
            return
        time.sleep(min(2.0, 0.05 * 2**attempt))
    raise RuntimeError(
        f"DynamoDB table {table}: {len(requests)} catalog items still unprocessed after retries"
    )
