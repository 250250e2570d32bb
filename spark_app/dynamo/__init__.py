"""Catalog enrichment: is (advertiser_id, product_id) in the advertiser's DynamoDB catalog.

Two ways. BatchGetItem: `lookup` runs on executors (one client and thread pool per partition,
batched reads), `enrich` plans it on the driver. The export: `export` finds or requests a
DynamoDB export to S3 on the driver, `export_read` reads its files on executors, `export_join`
joins them with the day's keys. `choose` (driver) picks the way by `dynamodb.lookup` and its
cost model; `counters` and `faults` are shared by the BatchGetItem side; `catalog` is the
table's key schema.
"""

from __future__ import annotations
