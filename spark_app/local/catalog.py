"""Loading the sample catalog into DynamoDB (moto locally): BatchWriteItem, 25 keys a request."""

from __future__ import annotations

import concurrent.futures
import time
from typing import List, Tuple

Key = Tuple[int, str]


def load_catalog(dynamodb_client, table: str, keys: List[Key], threads: int = 8) -> int:
    """Create the catalog table if missing and put every key (BatchWriteItem, 25 per request).

    Each advertiser's first key is put before the others go out in parallel: moto keeps a
    table's items in one map per partition key, created on that key's first write, and two
    first writes of one advertiser at once (threads of its server) each create a map; the items
    put into the map that is replaced are lost, without an error. Writes to an advertiser whose
    map exists are safe in parallel.
    """
    from spark_app.dynamo.catalog import create_catalog_table

    create_catalog_table(dynamodb_client, table)
    firsts: List[Key] = []
    rest: List[Key] = []
    seen = set()
    for key in keys:
        (rest if key[0] in seen else firsts).append(key)
        seen.add(key[0])
    for batch in _batches(firsts):  # one request at a time
        _put_batch(dynamodb_client, table, batch)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        list(pool.map(lambda b: _put_batch(dynamodb_client, table, b), _batches(rest)))
    return len(keys)


def _batches(keys: List[Key]) -> List[List[Key]]:
    return [keys[i : i + 25] for i in range(0, len(keys), 25)]


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
