"""A stand-in Presto coordinator: the client protocol over HTTP, DuckDB behind it.

Only for what a real Trino (tests/support/trino.py) cannot be made to do on demand: a server
without EXECUTE IMMEDIATE (an older Presto), so the client's PREPARE fallback runs; and the
transient answers of a busy cluster (`transient_answers`: NO_NODES_AVAILABLE while workers
restart, HTTP 502/503/504 from a load balancer in front of the coordinator).

It speaks what the `trino` Python client sends and expects:

- `POST /v1/statement` with the SQL as body and `X-Trino-User/Catalog/Schema` headers; the
  answer is QUEUED with a `nextUri`. Each `GET` of a `nextUri` returns one page of at most
  `page_size` rows (`columns`, `data`, `stats`) and the next `nextUri`, none on the last page.
  A failed query answers `error` (`message`, `errorName`, `errorType`, `errorCode`).
- Parameters: `EXECUTE IMMEDIATE '<sql>' USING <literals>` (new servers), or the legacy
  `PREPARE name FROM <sql>` (answered with `X-Trino-Added-Prepare`), `EXECUTE name USING ...`
  (the statement comes back in `X-Trino-Prepared-Statement`) and `DEALLOCATE PREPARE name`.
  With `execute_immediate=False` the server refuses EXECUTE IMMEDIATE like an old Presto.
- `DELETE` of a `nextUri` cancels the query.

Translation to DuckDB is kept to three macros giving Presto's hash function names DuckDB's
own hash (`to_utf8`, `xxhash64`, `from_big_endian_64`): bucket numbers differ from a real
Presto, but each key still lands in exactly one bucket. Tables live in attached in-memory
catalogs, so `"hive"."default"."events"` resolves as written. Every statement received is kept
in `statements` for tests to inspect.
"""

from __future__ import annotations

import datetime
import decimal
import itertools
import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional

import duckdb

EVENT_COLUMNS = {
    "event_id": "VARCHAR",
    "event_type": "VARCHAR",
    "ts": "TIMESTAMP",
    "advertiser_id": "BIGINT",
    "product_id": "VARCHAR",
    "dt": "VARCHAR",
}

_SHIMS = [
    "CREATE MACRO to_utf8(s) AS s",
    "CREATE MACRO xxhash64(b) AS hash(b)",
    "CREATE MACRO from_big_endian_64(b) AS CAST(b >> 1 AS BIGINT)",
]

# DuckDB type -> Presto type; anything else is reported as varchar
_TYPES = {t: t.lower() for t in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "DOUBLE", "BOOLEAN", "VARCHAR",
                                 "DATE", "TIMESTAMP")}
_TYPES.update({"UBIGINT": "bigint", "FLOAT": "real"})


@dataclass
class Statement:
    """One POSTed statement: the raw text, and for parameterised ones the SQL and USING part."""

    text: str
    sql: str
    params: Optional[str] = None
    headers: Dict[str, str] = field(default_factory=dict)
    refusal: Optional[str] = None  # the server rejects the statement with this message


@dataclass
class _Query:
    id: str
    sql: str
    params: Optional[str]
    cursor: Any = None
    columns: Optional[List[Dict[str, Any]]] = None
    token: int = 0
    rows_sent: int = 0


class PrestoTestServer:
    def __init__(
        self,
        page_size: int = 1000,
        execute_immediate: bool = True,
    ) -> None:
        self.page_size = page_size
        self.execute_immediate = execute_immediate
        self.db = duckdb.connect()
        for shim in _SHIMS:
            self.db.execute(shim)
        self.statements: List[Statement] = []
        # Given, in order, instead of running the next POSTed statements (the client's probe
        # `EXECUTE IMMEDIATE 'SELECT 1'` excepted): an HTTP status, or a query error's name.
        self.transient_answers: List[Any] = []
        self.cancelled: List[str] = []
        self._queries: Dict[str, _Query] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> PrestoTestServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
        self.db.close()

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ data

    def create_table(self, catalog: str, schema: str, table: str, columns: Dict[str, str]) -> str:
        """Create `"catalog"."schema"."table"` (catalog attached in memory on first use)."""
        attached = {r[0] for r in self.db.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
        if catalog not in attached:
            self.db.execute(f"ATTACH ':memory:' AS \"{catalog}\"")
        self.db.execute(f'CREATE SCHEMA IF NOT EXISTS "{catalog}"."{schema}"')
        name = f'"{catalog}"."{schema}"."{table}"'
        cols = ", ".join(f'"{c}" {t}' for c, t in columns.items())
        self.db.execute(f"CREATE OR REPLACE TABLE {name} ({cols})")
        return name

    def load_json_lines(
        self,
        path: str,
        table: str = "events",
        catalog: str = "hive",
        schema: str = "default",
        columns: Optional[Dict[str, str]] = None,
    ) -> str:
        """A table holding the JSON lines file at `path`, typed as the Presto events table."""
        columns = columns or EVENT_COLUMNS
        name = self.create_table(catalog, schema, table, columns)
        spec = "{" + ", ".join(f"'{c}': '{t}'" for c, t in columns.items()) + "}"
        self.db.execute(f"INSERT INTO {name} SELECT * FROM read_json('{path}', format='newline_delimited', "
                        f"columns={spec}, timestampformat='%Y-%m-%d %H:%M:%S')")
        return name

    def execute(self, sql: str) -> List[Any]:
        """Run setup SQL directly in DuckDB."""
        return self.db.execute(sql).fetchall()

    # ------------------------------------------------------------------ protocol

    def submit(self, text: str, headers: Dict[str, str]) -> tuple:
        """(status body, extra headers) for a POSTed statement."""
        qid = f"20261120_000000_{next(self._ids):05d}_test"
        stmt = self._parse(text, headers)
        self.statements.append(stmt)
        extra: Dict[str, str] = {}
        if stmt.refusal:
            return self._error(qid, stmt.refusal, "SYNTAX_ERROR", 1), extra
        prepare = re.match(r"(?is)^\s*PREPARE\s+(\w+)\s+FROM\s+(.*)$", text)
        if prepare:
            extra["X-Trino-Added-Prepare"] = f"{prepare.group(1)}={urllib.parse.quote_plus(prepare.group(2))}"
            return self._finished(qid, "PREPARE"), extra
        deallocate = re.match(r"(?is)^\s*DEALLOCATE\s+PREPARE\s+(\w+)\s*$", text)
        if deallocate:
            extra["X-Trino-Deallocated-Prepare"] = deallocate.group(1)
            return self._finished(qid, "DEALLOCATE"), extra
        with self._lock:
            self._queries[qid] = _Query(qid, stmt.sql, stmt.params)
        return self._status(qid, "QUEUED", next_uri=self._next_uri("queued", qid, 0)), extra

    def advance(self, qid: str, token: int) -> dict:
        """The next page of a query, running it in DuckDB on the first fetch."""
        with self._lock:
            q = self._queries.get(qid)
        if q is None:
            return self._error(qid, f"Query {qid} not found (finished or cancelled)", "NOT_FOUND", 29)
        try:
            if q.cursor is None:
                q.cursor, q.columns = self._run(q)
            rows = q.cursor.fetchmany(self.page_size)
        except duckdb.Error as exc:
            self._forget(qid)
            return self._error(qid, str(exc).split("\n")[0], _error_name(exc), 2)
        q.rows_sent += len(rows)
        q.token = token + 1
        last = len(rows) < self.page_size
        if last:
            self._forget(qid)
        body = self._status(qid, "FINISHED" if last else "RUNNING",
                            next_uri=None if last else self._next_uri("executing", qid, q.token))
        body["columns"] = q.columns
        body["data"] = [[_json_value(v) for v in row] for row in rows]
        return body

    def cancel(self, qid: str) -> None:
        self.cancelled.append(qid)
        self._forget(qid)

    # ------------------------------------------------------------------ internals

    def _parse(self, text: str, headers: Dict[str, str]):
        immediate = re.match(r"(?is)^\s*EXECUTE\s+IMMEDIATE\s+'((?:[^']|'')*)'\s*(?:USING\s+(.*))?$", text)
        if immediate:
            if not self.execute_immediate:
                return Statement(text, "", refusal="line 1:9: mismatched input 'IMMEDIATE'")
            return Statement(text, immediate.group(1).replace("''", "'"), immediate.group(2), headers)
        execute = re.match(r"(?is)^\s*EXECUTE\s+(\w+)\s*(?:USING\s+(.*))?$", text)
        if execute:
            prepared = _prepared_statements(headers.get("X-Trino-Prepared-Statement", ""))
            sql = prepared.get(execute.group(1), f"<unknown prepared statement {execute.group(1)}>")
            return Statement(text, sql, execute.group(2), headers)
        return Statement(text, text, None, headers)

    def _run(self, q: _Query):
        cursor = self.db.cursor()
        if q.params:
            cursor.execute(f"PREPARE q AS {q.sql}")
            cursor.execute(f"EXECUTE q({q.params})")
        else:
            cursor.execute(q.sql)
        columns = [_column(name, type_) for name, type_, *_ in cursor.description or []]
        return cursor, columns

    def _forget(self, qid: str) -> None:
        with self._lock:
            q = self._queries.pop(qid, None)
        if q is not None and q.cursor is not None:
            q.cursor.close()

    def _next_uri(self, phase: str, qid: str, token: int) -> str:
        return f"{self.base_url}/v1/statement/{phase}/{qid}/{token}"

    def _status(self, qid: str, state: str, next_uri: Optional[str] = None) -> dict:
        body = {
            "id": qid,
            "infoUri": f"{self.base_url}/ui/query.html?{qid}",
            "stats": {"state": state, "queued": state == "QUEUED", "scheduled": state != "QUEUED"},
            "warnings": [],
        }
        if next_uri:
            body["nextUri"] = next_uri
        return body

    def _finished(self, qid: str, update_type: str) -> dict:
        body = self._status(qid, "FINISHED")
        body["updateType"] = update_type
        return body

    def transient_answer(self, text: str) -> Optional[Any]:
        with self._lock:
            if self.transient_answers and text.strip() != "EXECUTE IMMEDIATE 'SELECT 1'":
                return self.transient_answers.pop(0)
        return None

    def _error(self, qid: str, message: str, name: str, code: int, kind: str = "USER_ERROR") -> dict:
        body = self._status(qid, "FAILED")
        body["error"] = {"message": message, "errorCode": code, "errorName": name, "errorType": kind,
                         "failureInfo": {"type": "io.trino.spi.TrinoException", "message": message}}
        return body

def _handler(server: PrestoTestServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: Optional[dict] = None, headers: Optional[Dict[str, str]] = None):
            payload = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:  # noqa: N802
            text = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            if self.path != "/v1/statement":
                return self._send(404, {"message": f"no such path {self.path}"})
            answer = server.transient_answer(text)
            if isinstance(answer, int):
                return self._send(answer)
            if answer:
                qid = f"20261120_000000_{next(server._ids):05d}_test"
                error = server._error(qid, f"{answer} (stand-in)", answer, 65540, "INTERNAL_ERROR")
                return self._send(200, error)
            body, extra = server.submit(text, {k: v for k, v in self.headers.items()})
            self._send(200, body, extra)

        def do_GET(self) -> None:  # noqa: N802
            m = re.match(r"^/v1/statement/(?:queued|executing)/([^/]+)/(\d+)$", self.path)
            if not m:
                return self._send(404, {"message": f"no such path {self.path}"})
            self._send(200, server.advance(m.group(1), int(m.group(2))))

        def do_DELETE(self) -> None:  # noqa: N802
            m = re.match(r"^/v1/statement/(?:queued|executing)/([^/]+)/(\d+)$", self.path)
            if m:
                server.cancel(m.group(1))
            self._send(204)

    return Handler


def _prepared_statements(header: str) -> Dict[str, str]:
    out = {}
    for item in filter(None, header.split(",")):
        name, _, sql = item.partition("=")
        out[name.strip()] = urllib.parse.unquote_plus(sql)
    return out


def _column(name: str, duck_type: Any) -> Dict[str, Any]:
    presto = _TYPES.get(str(duck_type).upper(), "varchar")
    args: List[Dict[str, Any]] = []
    if presto == "varchar":
        args = [{"kind": "LONG", "value": 2147483647}]
    elif presto == "timestamp":
        args = [{"kind": "LONG", "value": 6}]
    type_text = presto if presto != "timestamp" else "timestamp(6)"
    return {"name": name, "type": type_text, "typeSignature": {"rawType": presto, "arguments": args}}


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, duckdb.CatalogException):
        return "TABLE_NOT_FOUND" if "Table" in str(exc) else "NOT_FOUND"
    if isinstance(exc, duckdb.ParserException):
        return "SYNTAX_ERROR"
    if isinstance(exc, duckdb.BinderException):
        return "COLUMN_NOT_FOUND"
    return "GENERIC_USER_ERROR"
