"""A real Trino server for tests and benchmarks: one coordinator that also runs the work.

`make trino` unpacks the server and its Hive plugin into `.trino/`. `LocalTrino` writes an
`etc/` folder in a temp dir (a free 127.0.0.1 port, a 1 GiB heap, a `hive` catalog backed by a
file metastore and the local file system), runs `bin/launcher run` under a Java 24+ JDK and
returns once queries really run, asking the server at each step, never sleeping a set time:
`/v1/info` says `starting: false`; `system.runtime.nodes` lists the node as `active`; a table
of the hive catalog is scanned (creating hive.default and a one-row table `trino_ready` the
first time), which is the first thing that needs the node to serve the catalog. Until then
any failure is retried, except a lasting one, told by its error name or HTTP status (401,
403, PERMISSION_DENIED, a certificate that does not verify). On failure it raises with the
end of the server log.

    with LocalTrino() as trino:
        create_event_tables(trino, "/data/events")   # <root>/dt=YYYY-MM-DD/part-*.json.gz
        rows = trino.query("SELECT count(*) FROM hive.default.events")

Keeping the single node schedulable on a loaded machine (Trino 476). The coordinator finds
its nodes, itself included, through the discovery service it embeds: each node re-announces
itself every 8 s (80 % of the announcement client's 10 s delay) and the discovery store
forgets an announcement older than `discovery.max-age`, 30 s by default. A JVM starved of
CPU on a loaded 2-core machine can miss that window; the coordinator then sees no node, and
every query fails with NO_NODES_AVAILABLE until the next announcement lands. The tests set
`discovery.max-age=1h`: with one node there is nothing else to forget. The failure detector
(`failure-detector.*`: heartbeat-interval, threshold, warmup-interval) plays no part here:
HeartbeatFailureDetector pings every node but the one it runs on, and this node is the only
one, so those settings are left at their defaults.

`kill()` ends the JVM at once (SIGKILL) and keeps its folder; `start()` then brings the same
server back on the same ports with its tables (the metastore lives in the folder).

With `tls=True` it also serves HTTPS on a second port with a self-signed certificate and
checks passwords from `users`, and JWTs signed (HS256) with `jwt_secret` when given
(`hs256_jwt` makes one); the `trino` client then needs `http_scheme="https"`,
`auth=BasicAuthentication(user, password)` and `verify=trino.cert_path`. Plain HTTP on `port`
stays open without a password (`http-server.authentication.allow-insecure-over-http`), so one
server serves both kinds of test: the session's server (tests/conftest.py) is such a server,
with `AUTH_USERS` and `AUTH_JWT_SECRET`.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import datetime
import hashlib
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from spark_app.events.parse import EPOCH_MS, ISO_TS, POSITIVE_BIGINT
from spark_app.presto.retry import causes, http_status

REPO = Path(__file__).resolve().parents[2]
DEFAULT_VERSION = os.environ.get("TRINO_VERSION", "476")
JAVA_CANDIDATES = ("/usr/lib/jvm/temurin-25-jdk-amd64", "/usr/lib/jvm/temurin-24-jdk-amd64")
MIN_JAVA = 24
# The users (and JWT key) of the session's server, which test_auth.py signs in with.
AUTH_USERS = {"etl": "s3cret-pw-\u00e9-%41"}
AUTH_JWT_SECRET = b"a-jwt-signing-key-of-at-least-32-bytes!!"
# The one-row table whose scan tells that the node serves the hive catalog.
READY_TABLE = "hive.default.trino_ready"


class TrinoStartError(RuntimeError):
    """The server did not come up (or did not answer queries) in time; carries the log tail."""


def trino_home(version: str = DEFAULT_VERSION) -> Path:
    """The unpacked server: $TRINO_HOME, else .trino/trino-server-<version> (made by `make trino`)."""
    home = Path(os.environ.get("TRINO_HOME") or REPO / ".trino" / f"trino-server-{version}")
    if not (home / "bin" / "launcher").exists() or not (home / "plugin" / "hive").is_dir():
        raise FileNotFoundError(f"no Trino server with the Hive plugin at {home}: run `make trino`")
    return home


def _java_major(java_home: Path) -> int:
    release = java_home / "release"
    if release.exists():
        for line in release.read_text().splitlines():
            if line.startswith("JAVA_VERSION="):
                return int(line.split("=", 1)[1].strip('"').split(".")[0])
    return 0


def find_java_home() -> Path:
    """$TRINO_JAVA_HOME, else a known Java 24+ JDK, else $JAVA_HOME when it is recent enough."""
    candidates = [os.environ.get("TRINO_JAVA_HOME"), *JAVA_CANDIDATES, os.environ.get("JAVA_HOME")]
    for candidate in candidates:
        if candidate and (Path(candidate) / "bin" / "java").exists():
            if _java_major(Path(candidate)) >= MIN_JAVA:
                return Path(candidate)
    raise FileNotFoundError(f"Trino needs Java {MIN_JAVA}+: set TRINO_JAVA_HOME to such a JDK")


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies, so no JVM outlives a crash.

    The launcher execs java in place, so the setting reaches the JVM (Linux only, else a no-op).
    """
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM
    except (OSError, AttributeError):
        pass


def is_lasting(exc: BaseException) -> bool:
    """A failure that waiting will not cure: a refused password or user (HTTP 401 or 403,
    PERMISSION_DENIED) or a certificate that does not verify. Told by name or status only."""
    if http_status(exc) in (401, 403) or getattr(exc, "error_name", None) == "PERMISSION_DENIED":
        return True
    return any(isinstance(e, ssl.SSLCertVerificationError) for e in causes(exc))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _properties(path: Path, props: Dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))


def pbkdf2_entry(user: str, password: str, iterations: int = 1000) -> str:
    """A line of Trino's password file: user:iterations:salt:hash (PBKDF2WithHmacSHA1, hex).

    Trino accepts bcrypt or PBKDF2 hashes; PBKDF2 needs only hashlib (at least 1000 rounds).
    """
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha1", password.encode(), salt, iterations, dklen=32)
    return f"{user}:{iterations}:{salt.hex()}:{digest.hex()}"


def hs256_jwt(secret: bytes, subject: str, lifetime_seconds: int = 3600) -> str:
    """A JWT for `subject` signed with HMAC-SHA256 (what `jwt_secret` servers accept)."""
    import hmac

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = part(json.dumps({"sub": subject, "exp": int(time.time()) + lifetime_seconds}).encode())
    signature = hmac.new(secret, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{part(signature)}"


def self_signed_pem(path: Path, host: str = "127.0.0.1") -> None:
    """A PEM file with a new private key and a self-signed certificate for `host` and localhost."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(key_pem + cert.public_bytes(serialization.Encoding.PEM))


class LocalTrino:
    """One Trino coordinator on 127.0.0.1 with a `hive` catalog on the local file system.

    `fast_start` runs the JIT at C1 only (faster start-up and short tests, slower long queries:
    leave it off for benchmarks).
    """

    def __init__(
        self,
        home: Optional[Path] = None,
        java_home: Optional[Path] = None,
        work_dir: Optional[Path] = None,
        heap: str = "1G",
        query_max_memory: str = "512MB",
        fast_start: bool = True,
        tls: bool = False,
        users: Optional[Dict[str, str]] = None,
        jwt_secret: Optional[bytes] = None,
        catalog_properties: Optional[Dict[str, Any]] = None,
        startup_timeout: float = 180.0,
        port: int = 0,
    ) -> None:
        self.home = Path(home) if home else trino_home()
        self.java_home = Path(java_home) if java_home else find_java_home()
        self._own_work_dir = work_dir is None
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="trino-"))
        self.heap = heap
        self.query_max_memory = query_max_memory
        self.fast_start = fast_start
        self.tls = tls
        self.users = dict(users or {"test": "test-password"}) if tls else {}
        self.jwt_secret = jwt_secret if tls else None
        self.extra_catalog_properties = dict(catalog_properties or {})
        self.startup_timeout = startup_timeout
        self.port = port  # 0: a free port, chosen when the configuration is written
        self.https_port = 0
        self.process: Optional[subprocess.Popen] = None
        self.startup_seconds: Optional[float] = None

    # -- paths ---------------------------------------------------------------------------------
    @property
    def etc_dir(self) -> Path:
        return self.work_dir / "etc"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "server.log"

    @property
    def warehouse_dir(self) -> Path:
        """Where managed tables go (hive.default.* without external_location): the file
        metastore insists on its own folder, <metastore>/<schema>/<table>."""
        return self.work_dir / "metastore"

    @property
    def cert_path(self) -> Path:
        return self.etc_dir / "tls.pem"

    # -- configuration -------------------------------------------------------------------------
    def catalog_properties(self) -> Dict[str, Any]:
        props: Dict[str, Any] = {
            "connector.name": "hive",
            "hive.metastore": "file",
            "hive.metastore.catalog.dir": f"local://{self.work_dir / 'metastore'}",
            # The native local file system; locations are local:///abs/path or file:///abs/path.
            "fs.native-local.enabled": "true",
            "local.location": "/",
            "hive.non-managed-table-writes-enabled": "true",
            "hive.allow-register-partition-procedure": "true",
            "hive.max-partitions-per-scan": "100000",
        }
        props.update(self.extra_catalog_properties)
        return props

    def jvm_options(self) -> List[str]:
        options = [
            "-server",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-XX:+ExitOnOutOfMemoryError",
            "-XX:-OmitStackTraceInFastThrow",
            "-XX:ReservedCodeCacheSize=256M",
            "-XX:PerMethodRecompilationCutoff=10000",
            "-XX:PerBytecodeRecompilationCutoff=10000",
            "-XX:+EnableDynamicAgentLoading",
            "-Djdk.attach.allowAttachSelf=true",
            "-Djdk.nio.maxCachedBufferSize=2000000",
            "-Dfile.encoding=UTF-8",
            # Java 24+ warns about these at start-up; Trino and its libraries still use them.
            "--enable-native-access=ALL-UNNAMED",
            "--sun-misc-unsafe-memory-access=allow",
            # A small machine: few GC and compiler threads.
            "-XX:ParallelGCThreads=2",
            "-XX:ConcGCThreads=1",
            "-XX:CICompilerCount=2",
        ]
        if self.fast_start:
            options.append("-XX:TieredStopAtLevel=1")
        return options

    def write_config(self) -> None:
        self.port = self.port or free_port()
        etc = self.etc_dir
        (self.work_dir / "data").mkdir(parents=True, exist_ok=True)
        (self.work_dir / "metastore").mkdir(parents=True, exist_ok=True)
        self.warehouse_dir.mkdir(parents=True, exist_ok=True)
        _properties(etc / "node.properties", {
            "node.environment": "test",
            "node.id": f"test-{self.port}",
            "node.data-dir": self.work_dir / "data",
            "node.internal-address": "127.0.0.1",
        })
        config: Dict[str, Any] = {
            "coordinator": "true",
            "node-scheduler.include-coordinator": "true",
            "http-server.http.port": self.port,
            "discovery.uri": f"http://127.0.0.1:{self.port}",
            "query.max-memory": self.query_max_memory,
            "query.max-memory-per-node": self.query_max_memory,
            "memory.heap-headroom-per-node": "256MB",
            "query.max-history": 50,
            "task.concurrency": 2,
            "task.max-worker-threads": 4,
            "catalog.config-dir": etc / "catalog",
            "plugin.dir": self.home / "plugin",
            "http-server.log.enabled": "false",
            # The node's announcement outlives a starved JVM (see the module's docstring).
            "discovery.max-age": "1h",
        }
        if self.tls:
            self.https_port = self.https_port or free_port()
            self_signed_pem(self.cert_path)
            lines = [pbkdf2_entry(user, password) + "\n" for user, password in self.users.items()]
            (etc / "password.db").write_text("".join(lines))
            if self.jwt_secret:
                (etc / "jwt.key").write_text(base64.b64encode(self.jwt_secret).decode())
                config["http-server.authentication.jwt.key-file"] = etc / "jwt.key"
            _properties(etc / "password-authenticator.properties", {
                "password-authenticator.name": "file",
                "file.password-file": etc / "password.db",
            })
            config.update({
                "http-server.https.enabled": "true",
                "http-server.https.port": self.https_port,
                "http-server.https.keystore.path": self.cert_path,
                "http-server.authentication.type": "PASSWORD,JWT" if self.jwt_secret else "PASSWORD",
                "http-server.authentication.allow-insecure-over-http": "true",
                "internal-communication.shared-secret": secrets.token_urlsafe(32),
                "password-authenticator.config-files": etc / "password-authenticator.properties",
            })
        _properties(etc / "config.properties", config)
        (etc / "jvm.config").write_text("".join(o + "\n" for o in self.jvm_options()))
        _properties(etc / "log.properties", {
            "Bootstrap": "WARN",
            "io.trino": "WARN",
            "io.trino.server.TrinoServer": "INFO",
            "io.airlift": "WARN",
            "org.eclipse.jetty": "WARN",
        })
        _properties(etc / "catalog" / "hive.properties", self.catalog_properties())

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> LocalTrino:
        if self.process is not None:
            return self
        if not (self.etc_dir / "config.properties").exists():
            self.write_config()  # once: a restart keeps the ports, certificate and tables
        env = dict(os.environ, JAVA_HOME=str(self.java_home))
        env["PATH"] = f"{self.java_home / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        cmd = [
            str(self.home / "bin" / "launcher"),
            f"--etc-dir={self.etc_dir}",
            f"--data-dir={self.work_dir / 'data'}",
            f"--jvm-dir={self.java_home}",
            "run",  # in the foreground; the launcher execs java, so stop() signals the JVM itself
        ]
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                cwd=self.work_dir, start_new_session=True, preexec_fn=_die_with_parent,
            )
        atexit.register(self.stop)
        try:
            self._wait_ready(started + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _fail(self, why: str) -> None:
        raise TrinoStartError(
            f"Trino at {self.home} {why}; last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def _wait_ready(self, deadline: float) -> None:
        last_error: Any = None
        # 1. the HTTP server answers and the coordinator says it has finished starting
        while True:
            self._check_alive(deadline, f"did not finish starting ({last_error})")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v1/info", timeout=2) as r:
                    if json.load(r).get("starting") is False:
                        break
            except OSError as e:
                last_error = e
            time.sleep(0.25)
        # 2. the node is announced and active; 3. it serves the hive catalog (the file metastore
        # starts empty: hive.default gets a folder under the warehouse); 4. HTTPS lets a user in
        (self.warehouse_dir / "default").mkdir(parents=True, exist_ok=True)
        self._until(deadline, "SELECT count(*) FROM system.runtime.nodes WHERE state = 'active'",
                    accept=lambda rows: rows[0][0] > 0)
        self._until(deadline, "CREATE SCHEMA IF NOT EXISTS hive.default "
                              f"WITH (location = 'local://{self.warehouse_dir}/default')")
        self._until(deadline, f"CREATE TABLE IF NOT EXISTS {READY_TABLE} AS SELECT 1 AS ready")
        self._until(deadline, f"SELECT count(*) FROM {READY_TABLE}", accept=lambda rows: rows == [[1]])
        if self.tls:
            self._until(deadline, "SELECT 1", https=True)

    def _check_alive(self, deadline: float, why: str) -> None:
        if self.process.poll() is not None:
            self._fail(f"exited with code {self.process.returncode}")
        if time.monotonic() > deadline:
            self._fail(f"{why} after {self.startup_timeout:.0f}s")

    def _until(self, deadline: float, sql: str, accept=lambda rows: True, https: bool = False) -> None:
        """Run `sql` until it succeeds with rows `accept` takes; a lasting failure fails at once."""
        last: Any = None
        while True:
            self._check_alive(deadline, f"answers no queries: {sql}: {last}")
            try:
                rows = self.query(sql, https=https)
                if accept(rows):
                    return
                last = f"got {rows}"
            except Exception as e:  # noqa: BLE001 - anything but a lasting failure: ask again
                if is_lasting(e):
                    self._fail(f"refuses the client: {sql}: {e}")
                last = e
            time.sleep(0.25)

    def kill(self) -> None:
        """End the JVM at once (SIGKILL), keeping its folder: `start()` brings it back as it was."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
            process.wait(30)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server (SIGTERM to its process group, then SIGKILL) and remove its temp dir."""
        process, self.process = self.process, None
        atexit.unregister(self.stop)
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, 15)
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait(10)
            except ProcessLookupError:
                pass
        if self._own_work_dir and not os.environ.get("TRINO_KEEP_WORK_DIR"):
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> LocalTrino:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- helpers -------------------------------------------------------------------------------
    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def rss_bytes(self) -> int:
        """Resident memory of the server's JVM (the launcher execs java, so it is the same pid)."""
        if self.process is None:
            return 0
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def connection_kwargs(self, user: Optional[str] = None, https: bool = False) -> Dict[str, Any]:
        """Arguments for trino.dbapi.connect: plain HTTP, or (`https`) HTTPS with a password."""
        kwargs: Dict[str, Any] = {"host": "127.0.0.1", "catalog": "hive", "schema": "default"}
        if https:
            from trino.auth import BasicAuthentication

            user = user or next(iter(self.users))
            kwargs.update(port=self.https_port, http_scheme="https", verify=str(self.cert_path),
                          auth=BasicAuthentication(user, self.users[user]))
        else:
            kwargs.update(port=self.port, http_scheme="http")
        kwargs["user"] = user or "test"
        return kwargs

    def connect(self, https: bool = False, **overrides: Any):
        import trino.dbapi

        kwargs = {**self.connection_kwargs(overrides.pop("user", None), https), **overrides}
        if kwargs.get("http_scheme") == "https" and "http_session" not in kwargs:
            kwargs["http_session"] = _session_verifying(kwargs.get("verify", True))
        return trino.dbapi.connect(**kwargs)

    def query(self, sql: str, params: Optional[Sequence[Any]] = None, https: bool = False) -> List[List[Any]]:
        conn = self.connect(https, request_timeout=60)
        try:
            cur = conn.cursor()
            cur.execute(sql, params) if params is not None else cur.execute(sql)
            return cur.fetchall()
        finally:
            conn.close()


def _session_verifying(verify: Any):
    """A requests session that checks the server against `verify` even with REQUESTS_CA_BUNDLE set.

    requests lets that variable replace a session's own `verify` (a CA file or False) on every
    request, so a client given the server's self-signed certificate would still fail with
    CERTIFICATE_VERIFY_FAILED wherever the variable is exported.
    """
    import requests

    class _Session(requests.Session):
        def merge_environment_settings(self, url, proxies, stream, verify, cert):
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            settings["verify"] = self.verify
            return settings

    session = _Session()
    session.verify = verify
    return session


# -- the project's event logs ------------------------------------------------------------------

# Each line of <root>/dt=YYYY-MM-DD/part-*.json.gz as one text column: a malformed line is a
# row the view leaves out, not a failed query (Hive's JSON SerDe fails the whole scan).
# The default field delimiter \001 never appears raw in JSON (it would be escaped as \u0001).
RAW_TABLE_SQL = """CREATE TABLE hive.{schema}.{raw} (line varchar, dt varchar)
WITH (format = 'TEXTFILE', external_location = '{location}', partitioned_by = ARRAY['dt'])"""

# The valid events, by the rules of the event-log path (spark_app/events/parse.py): a JSON
# object whose five fields are present and not empty, a positive bigint advertiser id, a ts in
# ISO-8601 (no offset means UTC) or 12-13 digit epoch milliseconds, no NUL in the product id;
# the same regular expressions as that path.
# Each line is parsed once (json_parse): json_extract_scalar alone reads a truncated line up to
# the break and would keep what it found there.
EVENTS_VIEW_SQL = """CREATE OR REPLACE VIEW hive.{schema}.{view} SECURITY INVOKER AS
WITH fields AS (
  SELECT
    json_extract_scalar(j, '$.event_id') AS event_id,
    json_extract_scalar(j, '$.event_type') AS event_type,
    json_extract_scalar(j, '$.ts') AS ts_text,
    json_extract_scalar(j, '$.advertiser_id') AS advertiser_text,
    json_extract_scalar(j, '$.product_id') AS product_id,
    dt
  FROM (SELECT try(json_parse(line)) AS j, dt FROM hive.{schema}.{raw})
  WHERE j IS NOT NULL
), typed AS (
  SELECT
    event_id,
    event_type,
    CAST(CASE
      WHEN regexp_like(ts_text, '{epoch_ms}')
        THEN from_unixtime_nanos(CAST(ts_text AS bigint) * 1000000)
      WHEN regexp_like(ts_text, '{iso_ts}')
        THEN try(from_iso8601_timestamp(replace(ts_text, ' ', 'T')))
    END AT TIME ZONE 'UTC' AS timestamp(3)) AS ts,
    CASE WHEN regexp_like(advertiser_text, '{positive_bigint}') THEN try_cast(advertiser_text AS bigint) END
      AS advertiser_id,
    product_id,
    dt
  FROM fields
)
SELECT event_id, event_type, ts, advertiser_id, product_id, dt
FROM typed
WHERE event_id <> '' AND event_type <> '' AND product_id <> '' AND strpos(product_id, chr(0)) = 0
  AND advertiser_id > 0 AND ts IS NOT NULL"""


def create_event_tables(trino: LocalTrino, root: Path, schema: str = "default", raw: str = "raw_events",
                        view: str = "events") -> None:
    """External text table over `root` (partitions found from its dt=... folders) and the typed view."""
    location = f"local://{Path(root).resolve()}"
    if schema != "default":
        trino.query(f"CREATE SCHEMA IF NOT EXISTS hive.{schema}")
    trino.query(f"DROP TABLE IF EXISTS hive.{schema}.{raw}")
    trino.query(RAW_TABLE_SQL.format(schema=schema, raw=raw, location=location))
    sync_partitions(trino, schema, raw)
    patterns = {k: getattr(v, "pattern", v) for k, v in
                (("iso_ts", ISO_TS), ("epoch_ms", EPOCH_MS), ("positive_bigint", POSITIVE_BIGINT))}
    trino.query(EVENTS_VIEW_SQL.format(schema=schema, view=view, raw=raw, **patterns))


def sync_partitions(trino: LocalTrino, schema: str = "default", raw: str = "raw_events") -> None:
    """Register every dt=... folder now under the table's location (and forget removed ones)."""
    trino.query(f"CALL hive.system.sync_partition_metadata('{schema}', '{raw}', 'FULL')")


def write_event_folders(root: Path, lines_by_dt: Dict[str, Sequence[str]], compress: bool = True) -> Path:
    """`root/dt=<dt>/part-00000.json[.gz]` with each folder's lines (and a _SUCCESS marker)."""
    import gzip

    for dt, lines in lines_by_dt.items():
        folder = Path(root) / f"dt={dt}"
        folder.mkdir(parents=True, exist_ok=True)
        text = "".join(line + "\n" for line in lines)
        if compress:
            with gzip.open(folder / "part-00000.json.gz", "wt", encoding="utf-8") as f:
                f.write(text)
        else:
            (folder / "part-00000.json").write_text(text, encoding="utf-8")
        (folder / "_SUCCESS").touch()
    return Path(root)


def load_event_day(trino: LocalTrino, root: Path, view: str, lines_by_dt: Dict[str, Sequence[str]],
                   compress: bool = True) -> str:
    """The lines as event-log folders under `root`, readable as the view hive.default.<view>."""
    write_event_folders(root, lines_by_dt, compress)
    create_event_tables(trino, root, raw=f"raw_{view}", view=view)
    return view
