"""Runs on executors: the batched catalog lookup, does DynamoDB hold (advertiser_id, product_id)?

The lookup runs inside `mapInArrow` (see `spark_app.dynamo.enrich`): per partition one boto3 client and one
thread pool; the partition's keys are de-duplicated (keys answered earlier in the partition are
not asked again) and asked with BatchGetItem, 100 keys per request, several requests in flight,
projecting the key attributes only. One Arrow batch is held back so requests stay full across
batch boundaries. Keys DynamoDB leaves unprocessed
and throttled requests are asked again in rounds, merged into full requests, with
exponential backoff and full jitter. Keys still open after the last round fail the task
with `LookupFailed`: a key is never reported "not matched" because it was not answered.

Memory is bounded by two Arrow batches (`spark.sql.execution.arrow.maxRecordsPerBatch`) plus
a capped cache of answered keys, never by the partition.
"""

from __future__ import annotations

import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Iterable, Iterator, List, Optional, Set, Tuple

from spark_app.config import DynamoConfig
from spark_app.dynamo.catalog import HASH_KEY, RANGE_KEY
from spark_app.dynamo.counters import (
    BACKOFF_SECONDS,
    KEYS_ASKED,
    KEYS_FOUND,
    UNPROCESSED_RETRIED,
    LookupCounters,
)
from spark_app.dynamo.faults import THROTTLE_CODES, register_hooks
from spark_app.errors import LookupFailed

__all__ = [
    "BATCH_GET_LIMIT",
    "CatalogLookup",
    "arrow_partition",
    "make_client",
    "pandas_partition",
    "row_keys",
]

BATCH_GET_LIMIT = 100  # keys per BatchGetItem request (DynamoDB's limit)
MAX_KEY_BYTES = 1024  # a sort key longer than this (UTF-8) cannot be stored, so is never matched
CACHE_MAX_KEYS = 200_000  # answered keys remembered per partition (some 50 MB at most)

Key = Tuple[int, str]


def make_client(cfg: DynamoConfig, counters: Any = None):
    """The one DynamoDB client factory: pool, retries and timeouts from `cfg`, plus hooks.

    Call it where the client is used (inside the partition function on executors): clients
    are not picklable, and one per partition shares its connection pool among the threads.
    `counters` is anything with `add(name, amount)` (`LookupCounters`, `LocalTally`).
    """
    from botocore.config import Config

    config = Config(
        region_name=cfg.region,
        parameter_validation=False,  # requests are built here, not by users; saves ~15% client CPU
        max_pool_connections=max(cfg.max_pool_connections, cfg.threads),
        # botocore's "max_attempts" counts retries only; "total_max_attempts" counts every
        # attempt, which is what dynamodb.max_attempts means (1 = botocore never retries).
        retries={"mode": cfg.retry_mode, "total_max_attempts": cfg.max_attempts},
        connect_timeout=cfg.connect_timeout_seconds,
        read_timeout=cfg.read_timeout_seconds,
    )
    client = _session().client("dynamodb", endpoint_url=cfg.endpoint_url, config=config)
    register_hooks(client, cfg.faults, counters)
    return client


_SESSIONS: Dict[int, Any] = {}
_SESSION_LOCK = threading.Lock()


def _session():
    """One boto3 session per process: a new one reloads the service model (~60 ms CPU).

    Python workers are reused across tasks, so each partition gets a new client (its own
    hooks and counters) from a session that already holds the parsed model. Keyed by pid
    because pyspark.daemon forks workers.
    """
    import boto3

    with _SESSION_LOCK:
        pid = os.getpid()
        if pid not in _SESSIONS:
            _SESSIONS.clear()
            _SESSIONS[pid] = boto3.session.Session()
        return _SESSIONS[pid]


# --------------------------------------------------------------------------- the lookup


class CatalogLookup:
    """Answers "does the catalog hold this key?" for one partition (or one plain program).

    Keys are queued in arrival order; while more batches may come only full requests of 100
    go out, the remainder when a batch's answer is needed. `answers` streams
    batches through with one batch of look-ahead, so a batch's last partial request is
    filled with the next batch's keys: a partition costs ceil(distinct keys / 100) requests
    however its rows are cut into Arrow batches.
    """

    def __init__(self, cfg: DynamoConfig, counters: Any = None, client: Any = None) -> None:
        self.cfg = cfg
        self.counters = counters
        self.client = client if client is not None else make_client(cfg, counters)
        self._pool = ThreadPoolExecutor(max_workers=max(1, cfg.threads))
        self._known: Dict[Key, bool] = {}
        self._pending: List[Key] = []
        self._pending_set: Set[Key] = set()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> CatalogLookup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def matched(self, advertiser_ids: List[Optional[int]], product_ids: List[Optional[str]]) -> List[bool]:
        """One flag per row, answered now; rows whose key no item can have are False unasked."""
        keys = row_keys(advertiser_ids, product_ids)
        self.add(keys)
        flags = self.flags(keys)
        self._trim(keep=keys)
        return flags

    def answers(self, batches: Iterable[Tuple[Any, List[Optional[Key]]]]) -> Iterator[Tuple[Any, List[bool]]]:
        """(payload, flags) for each (payload, keys), in order, holding one batch back."""
        held = None
        for payload, keys in batches:
            self._queue(keys)
            self._ask_full_requests()
            if held is not None:
                yield held[0], self.flags(held[1])
                self._trim(keep=keys)
            held = (payload, keys)
        if held is not None:
            yield held[0], self.flags(held[1])

    def add(self, keys: Iterable[Optional[Key]]) -> None:
        """Queue the keys not answered yet and ask them all."""
        self._queue(keys)
        self._flush()

    def flags(self, keys: List[Optional[Key]]) -> List[bool]:
        """One flag per key; asks what is still queued when any of `keys` waits for an answer."""
        if any(k in self._pending_set for k in keys):
            self._flush()
        return [k is not None and self._known[k] for k in keys]

    def _queue(self, keys: Iterable[Optional[Key]]) -> None:
        for k in keys:
            if k is not None and k not in self._known and k not in self._pending_set:
                self._pending.append(k)
                self._pending_set.add(k)

    def _ask_full_requests(self) -> None:
        self._answer(len(self._pending) // BATCH_GET_LIMIT * BATCH_GET_LIMIT)

    def _flush(self) -> None:
        self._answer(len(self._pending))

    def _answer(self, n: int) -> None:
        if n <= 0:
            return
        asked, self._pending = self._pending[:n], self._pending[n:]
        found = self.find(asked)
        self._pending_set.difference_update(asked)
        self._known.update((k, k in found) for k in asked)

    def _trim(self, keep: List[Optional[Key]]) -> None:
        """Bound the answer cache: past its cap keep only the answers `keep` still needs."""
        if len(self._known) > CACHE_MAX_KEYS:
            self._known = {k: self._known[k] for k in keep if k is not None and k in self._known}

    def find(self, keys: Iterable[Key]) -> Set[Key]:
        """The subset of `keys` the table holds; raises LookupFailed when any key stays open."""
        pending = list(keys)
        self._add(KEYS_ASKED, len(pending))
        found: Set[Key] = set()
        rounds = self.cfg.max_unprocessed_retries
        for attempt in range(rounds + 1):
            chunks = [pending[i : i + BATCH_GET_LIMIT] for i in range(0, len(pending), BATCH_GET_LIMIT)]
            pending = []
            for got, left in self._pool.map(self._ask, chunks):
                found.update(got)
                pending.extend(left)
            if not pending:
                break
            if attempt < rounds:
                self._add(UNPROCESSED_RETRIED, len(pending))
                self._sleep(attempt)
        else:
            raise LookupFailed(
                f"DynamoDB table {self.cfg.table}: {len(pending)} keys left unprocessed after "
                f"{rounds} retry rounds (throttled or UnprocessedKeys); probable cause: the table's "
                f"read capacity is too low for this job, lower dynamodb.threads or raise capacity"
            )
        self._add(KEYS_FOUND, len(found))
        return found

    # -- one request

    def _ask(self, chunk: List[Key]) -> Tuple[List[Key], List[Key]]:
        """(found, still open) for one BatchGetItem request of up to 100 keys."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            resp = self.client.batch_get_item(RequestItems={self.cfg.table: _request(chunk)})
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in THROTTLE_CODES:
                return [], chunk
            raise LookupFailed(_client_error_message(self.cfg, code, exc)) from None
        except BotoCoreError as exc:
            raise LookupFailed(_connection_message(self.cfg, exc)) from None
        got = [_key_of(item) for item in resp.get("Responses", {}).get(self.cfg.table, [])]
        left = [_key_of(k) for k in resp.get("UnprocessedKeys", {}).get(self.cfg.table, {}).get("Keys", [])]
        return got, left

    def _sleep(self, attempt: int) -> None:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)] (AWS architecture blog)."""
        delay = random.uniform(
            0, min(self.cfg.backoff_max_seconds, self.cfg.backoff_base_seconds * 2**attempt)
        )
        self._add(BACKOFF_SECONDS, delay)
        time.sleep(delay)

    def _add(self, name: str, amount: float) -> None:
        if self.counters is not None:
            self.counters.add(name, amount)


def row_keys(advertiser_ids: List[Optional[int]], product_ids: List[Optional[str]]) -> List[Optional[Key]]:
    """The key of each row, None where no item can have it."""
    return [_key_or_none(a, p) for a, p in zip(advertiser_ids, product_ids)]


def _key_or_none(advertiser_id: Optional[int], product_id: Optional[str]) -> Optional[Key]:
    """The key to ask, or None when no item can have it (null, empty, over 1024 bytes)."""
    if advertiser_id is None or not product_id or len(product_id.encode("utf-8")) > MAX_KEY_BYTES:
        return None
    return (int(advertiser_id), product_id)


def _request(chunk: List[Key]) -> Dict[str, Any]:
    return {
        "Keys": [{HASH_KEY: {"N": str(a)}, RANGE_KEY: {"S": p}} for a, p in chunk],
        "ProjectionExpression": "#a, #p",
        "ExpressionAttributeNames": {"#a": HASH_KEY, "#p": RANGE_KEY},
        "ConsistentRead": False,
    }


def _key_of(item: Dict[str, Any]) -> Key:
    return (int(item[HASH_KEY]["N"]), item[RANGE_KEY]["S"])


def _client_error_message(cfg: DynamoConfig, code: str, exc: Exception) -> str:
    causes = {
        "ResourceNotFoundException": "the table does not exist in this region/account",
        "AccessDeniedException": "the instance role lacks dynamodb:BatchGetItem on the table",
        "ValidationException": "the table's key schema is not (advertiser_id N, product_id S)",
    }
    cause = causes.get(code, "see the error code")
    text = " ".join(str(exc).split())
    return (
        f"DynamoDB table {cfg.table}: BatchGetItem failed with {code or 'an error'}: {text}; "
        f"probable cause: {cause}"
    )


def _connection_message(cfg: DynamoConfig, exc: Exception) -> str:
    endpoint = cfg.endpoint_url or f"the AWS endpoint of region {cfg.region}"
    text = " ".join(str(exc).split())
    if type(exc).__name__ == "NoCredentialsError":
        return (
            f"DynamoDB table {cfg.table}: no AWS credentials on the executor ({text}); probable cause: "
            f"the instance profile is missing, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are unset"
        )
    return (
        f"DynamoDB table {cfg.table}: cannot reach {endpoint}: {text}; probable cause: wrong "
        f"dynamodb.endpoint_url or region, no network route (VPC endpoint, security group) "
        f"or the service is down"
    )


# --------------------------------------------------------------------------- partition functions


def arrow_partition(cfg: DynamoConfig, counters: Optional[LookupCounters]):
    """The mapInArrow function: one CatalogLookup per partition, `matched` appended per batch."""

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        keyed = (
            (b, row_keys(b.column(HASH_KEY).to_pylist(), b.column(RANGE_KEY).to_pylist())) for b in batches
        )
        with CatalogLookup(cfg, counters) as lookup:
            for batch, flags in lookup.answers(keyed):
                yield pa.RecordBatch.from_arrays(
                    batch.columns + [pa.array(flags, type=pa.bool_())],
                    names=batch.schema.names + ["matched"],
                )

    return run


def pandas_partition(cfg: DynamoConfig, counters: Optional[LookupCounters]):
    """The same through mapInPandas, kept to compare the two adapters."""

    def run(frames: Iterator[Any]) -> Iterator[Any]:
        keyed = ((pdf, row_keys(*_pandas_columns(pdf))) for pdf in frames)
        with CatalogLookup(cfg, counters) as lookup:
            for pdf, flags in lookup.answers(keyed):
                yield pdf.assign(matched=flags)

    return run


def _pandas_columns(pdf: Any) -> Tuple[List[Optional[int]], List[Optional[str]]]:
    ids = [None if v != v else int(v) for v in pdf[HASH_KEY].tolist()]  # NaN stands for null
    products = [p if isinstance(p, str) else None for p in pdf[RANGE_KEY].tolist()]
    return ids, products
