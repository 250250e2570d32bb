"""Catalog enrichment: is (advertiser_id, product_id) in the advertiser's DynamoDB catalog.

`lookup` runs on executors (one client and thread pool per partition, batched reads);
`enrich` plans it on the driver; `counters` and `faults` are shared by both; `catalog` is the
table's key schema.
"""

from __future__ import annotations
