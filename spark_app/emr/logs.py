"""Read a failed step's logs from S3 and name the probable cause, not the whole log.

EMR copies logs to `<LogUri>/<cluster-id>/`: the step's `steps/<step-id>/stderr.gz` (what
spark-submit printed on the master) and each YARN container's
`containers/<application-id>/<container-id>/stderr.gz` (in cluster deploy mode the driver's
Python traceback lives in the first container of the application). As in mrjob's log
parsing, each log type has its own parser, each parser returns ranked `Cause`s, and the most
specific cause wins: a container killed for memory explains the generic "application
finished with failed status" that spark-submit prints after it.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Tuple

from spark_app.s3_uri import split_s3_uri

_APP_ID = re.compile(r"application_\d+_\d+")
_YARN_MEMORY = re.compile(
    r"(Container killed by YARN for exceeding (physical )?memory limits.*"
    r"|.*is running beyond physical memory limits.*)"
)
_JAVA_OOM = re.compile(r".*java\.lang\.OutOfMemoryError.*")
_EXIT_STATUS = re.compile(r"(?:User application exited with status|exitCode:|exit code:?)\s*(\d+)", re.I)
_JAVA_EXC = re.compile(
    r"^(?:Exception in thread \"[^\"]+\" |Caused by: )?([\w$.]+(?:Exception|Error))(?::\s?(.*))?$"
)

# process_data.py's exit codes (spark_app.errors), as YARN reports them for the driver
EXIT_MEANINGS = {
    2: "bad arguments or configuration (ConfigError)",
    3: "the day's input is not ready yet (DataNotReady): retry later",
    4: "an Error-level data-quality check failed (QualityGateFailed): nothing was published",
    5: "writing to PostgreSQL failed (SinkError)",
    6: "the DynamoDB catalog lookup failed (LookupFailed)",
    7: "a source could not be read (SourceError)",
}
_PY_HINTS = [
    (r"ModuleNotFoundError|ImportError", "a module is missing on the cluster: our own packages come from "
     "spark_app.zip (--py-files), third-party ones from the deps archive (spark.archives, "
     "PYTHONPATH=./deps): add the package to requirements/node.txt, run `make lock`, then `make deploy`"),
    (r"DataNotReady", "the input is not complete yet; the run can be retried later (exit code 3)"),
    (r"QualityGateFailed", "the data-quality gate stopped publishing; look at the failed checks above"),
    (r"ConfigError", "fix the config file shipped with the step (conf/emr.yaml)"),
    (r"SinkError|psycopg2|OperationalError", "check PostgreSQL: security group from the cluster's subnet, "
     "the secret holding the password, the table"),
    (r"LookupFailed|ProvisionedThroughputExceeded|Throttling", "DynamoDB throttled or failed: lower "
     "dynamodb.threads or raise the table's capacity"),
    (r"AccessDenied|NoCredentialsError|403",
     "the EC2 instance profile (emr.job_flow_role) lacks a permission"),
    (r"NoSuchKey|FileNotFound|Path does not exist", "an input or artifact path does not exist on S3"),
]


@dataclass(frozen=True)
class Cause:
    rank: int  # lower is more specific
    summary: str
    source: str
    evidence: List[str] = field(default_factory=list)
    suggestion: str = ""

    def render(self) -> str:
        lines = [f"Probable cause: {self.summary}", f"  (from {self.source})"]
        lines += [f"    {e}" for e in self.evidence]
        if self.suggestion:
            lines.append(f"Suggestion: {self.suggestion}")
        return "\n".join(lines)


def _hint(text: str) -> str:
    return next((hint for pattern, hint in _PY_HINTS if re.search(pattern, text)), "")


def last_python_traceback(lines: List[str]) -> Optional[List[str]]:
    """The last traceback: from 'Traceback (most recent call last):' to its exception line."""
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    if not starts:
        return None
    block = [lines[starts[-1]]]
    for line in lines[starts[-1] + 1 :]:
        block.append(line)
        if not line.startswith((" ", "\t")) and line.strip():
            break  # the first unindented line ends the traceback: the exception itself
    return block


def _python_cause(lines: List[str], source: str) -> Optional[Cause]:
    tb = last_python_traceback(lines)
    if not tb or len(tb) < 2:
        return None
    exc = tb[-1].strip()
    frames = [i for i, line in enumerate(tb) if line.lstrip().startswith('File "')]
    where = [ln.rstrip() for ln in tb[frames[-1] : -1]] if frames else []
    return Cause(3, exc, source, where + [exc], _hint(exc))


def _java_cause(lines: List[str], source: str) -> Optional[Cause]:
    """The deepest 'Caused by' of the last Java exception (the root of the chain)."""
    found: Optional[Tuple[str, str]] = None
    for line in lines:
        m = _JAVA_EXC.match(line.strip())
        if m and ("." in m.group(1)):
            found = (line.strip(), m.group(2) or "")
    if not found:
        return None
    return Cause(5, found[0], source, [found[0]], _hint(found[0]))


def _memory_cause(text: str, source: str) -> Optional[Cause]:
    m = _YARN_MEMORY.search(text)
    if m:
        return Cause(
            1,
            "a YARN container exceeded its memory limit (executor heap + overhead) and was killed",
            source,
            [m.group(0).strip()],
            "raise spark.executor.memoryOverhead in emr.spark_conf (e.g. to 20% of the executor's "
            "total), or give each executor fewer cores / the job more partitions so each task holds less",
        )
    m = _JAVA_OOM.search(text)
    if m:
        return Cause(
            2,
            "a JVM ran out of heap (java.lang.OutOfMemoryError)",
            source,
            [m.group(0).strip()],
            "raise spark.executor.memory (or spark.driver.memory if it is the driver), "
            "and avoid collecting large results to the driver",
        )
    return None


def _exit_cause(text: str, source: str) -> Optional[Cause]:
    codes = [int(c) for c in _EXIT_STATUS.findall(text)]
    known = [c for c in codes if c in EXIT_MEANINGS]
    if not known:
        return None
    code = known[-1]
    return Cause(4, f"process_data.py exited with code {code}: {EXIT_MEANINGS[code]}", source, [])


def _causes(text: str, source: str) -> List[Cause]:
    lines = text.splitlines()
    found = [
        _memory_cause(text, source),
        _python_cause(lines, source),
        _exit_cause(text, source),
        _java_cause(lines, source),
    ]
    return [c for c in found if c is not None]


def parse_step_stderr(text: str) -> Tuple[Optional[str], List[Cause]]:
    """A step's stderr (spark-submit on the master): the YARN application id and the causes it shows."""
    ids = _APP_ID.findall(text)
    return (ids[-1] if ids else None), _causes(text, "step stderr")


def parse_container_stderr(text: str, container_id: str) -> List[Cause]:
    """A YARN container's stderr: the driver's or an executor's traceback, OOM, exit status."""
    return _causes(text, f"container {container_id} stderr")


def best_cause(causes: List[Cause]) -> Optional[Cause]:
    """The most specific cause; among equals, the first seen (step log, then driver container)."""
    return min(causes, key=lambda c: c.rank) if causes else None


# --------------------------------------------------------------------------- S3


def read_gz(s3: Any, bucket: str, key: str) -> str:
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        data = gzip.decompress(data)
    except OSError:
        pass  # EMR gzips its logs; a plain copy is read as it is
    return data.decode("utf-8", errors="replace")


def step_stderr_key(log_uri: str, cluster_id: str, step_id: str) -> Tuple[str, str]:
    bucket, prefix = split_s3_uri(log_uri)
    base = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
    return bucket, f"{base}{cluster_id}/steps/{step_id}/stderr.gz"


@dataclass(frozen=True)
class Diagnosis:
    cause: Optional[Cause]
    logs_read: List[str]
    application_id: Optional[str] = None

    def render(self) -> str:
        if self.cause:
            return self.cause.render()
        if not self.logs_read:
            return (
                "No step log on S3 yet: EMR copies logs there about every five minutes, "
                "so try again shortly (or check emr.log_uri)."
            )
        return "No known failure pattern in: " + ", ".join(self.logs_read)


def diagnose(s3: Any, log_uri: str, cluster_id: str, step_id: str) -> Diagnosis:
    """Read the step's stderr, then the application's container stderrs, and pick the best cause."""
    from botocore.exceptions import ClientError

    bucket, key = step_stderr_key(log_uri, cluster_id, step_id)
    read, causes = [], []
    app_id = None
    try:
        app_id, causes = parse_step_stderr(read_gz(s3, bucket, key))
        read.append(f"s3://{bucket}/{key}")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
            raise
    if app_id:
        base = key.split(f"{cluster_id}/steps/")[0] + f"{cluster_id}/containers/{app_id}/"
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base)
        keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []))
        for ckey in (k for k in keys if k.endswith("/stderr.gz")):
            container = ckey[len(base) :].split("/")[0]
            causes += parse_container_stderr(read_gz(s3, bucket, ckey), container)
            read.append(f"s3://{bucket}/{ckey}")
    return Diagnosis(best_cause(causes), read, app_id)


def driver_stdout(s3: Any, log_uri: str, cluster_id: str, step_id: str) -> Tuple[Optional[str], str]:
    """The driver's stdout of a step (cluster mode: the application's first container), and its URI."""
    from botocore.exceptions import ClientError

    bucket, key = step_stderr_key(log_uri, cluster_id, step_id)
    try:
        app_id, _ = parse_step_stderr(read_gz(s3, bucket, key))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
            raise
        return None, ""
    if not app_id:
        return None, ""
    base = key.split(f"{cluster_id}/steps/")[0] + f"{cluster_id}/containers/{app_id}/"
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base)
    keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []))
    keys = [k for k in keys if k.endswith("/stdout.gz")]
    if not keys:
        return None, ""
    return f"s3://{bucket}/{keys[0]}", read_gz(s3, bucket, keys[0])  # container ..._000001: the driver


# --------------------------------------------------------------------------- bootstrap actions

_NODE_LOG = re.compile(r"/node/(i-[0-9a-f]+)/bootstrap-actions/(\d+)/stderr(?:\.gz)?$")
_REASON_NODE = re.compile(r"\b(i-[0-9a-f]+)\b")
_REASON_ACTION = re.compile(r"bootstrap action (\d+)", re.I)
TAIL_LINES = 10


def bootstrap_failed(reason: str) -> bool:
    """Whether EMR's termination reason blames a bootstrap action."""
    return "bootstrap action" in reason.lower()


def diagnose_bootstrap(
    s3: Any, log_uri: str, cluster_id: str, reason: str, action_names: List[str]
) -> Diagnosis:
    """Which node, which action, the tail of its stderr (after mrjob's logs/bootstrap.py).

    EMR names the failing node and action number in the cluster's state-change reason; the
    action's stderr is at <LogUri>/<cluster>/node/<instance>/bootstrap-actions/<n>/stderr.gz. Without
    a reason naming them, the first non-empty stderr of any node is taken.
    """
    bucket, prefix = split_s3_uri(log_uri)
    base = (prefix.rstrip("/") + "/" if prefix.strip("/") else "") + f"{cluster_id}/node/"
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base)
    logs = sorted((m.group(1), int(m.group(2)), o["Key"]) for page in pages for o in page.get("Contents", [])
                  for m in [_NODE_LOG.search(o["Key"])] if m)
    node, action = _REASON_NODE.search(reason), _REASON_ACTION.search(reason)
    wanted = [entry for entry in logs if (not node or entry[0] == node.group(1))
              and (not action or entry[1] == int(action.group(1)))]
    read = []
    for instance, number, key in wanted or logs:
        lines = [ln for ln in read_gz(s3, bucket, key).splitlines() if ln.strip()]
        read.append(f"s3://{bucket}/{key}")
        if not lines:
            continue
        name = action_names[number - 1] if 0 < number <= len(action_names) else "?"
        failed = [ln.split("FAILED:", 1)[1].strip() for ln in lines if "FAILED:" in ln]
        summary = f"bootstrap action {number} ({name}) failed on node {instance}"
        hint = failed[-1] if failed else reason
        return Diagnosis(Cause(0, summary, f"s3://{bucket}/{key}", lines[-TAIL_LINES:], hint), read)
    return Diagnosis(None, read)


def diagnose_failure(s3: Any, log_uri: str, cluster_id: str, step_id: Optional[str],
                     action_names: List[str], reason_of: Callable[[], str]) -> Diagnosis:
    """The step's logs first; with no step, or no cause there and a reason blaming a bootstrap action,
    the bootstrap action's node log. `reason_of` gives the cluster's state-change reason when needed."""
    found = diagnose(s3, log_uri, cluster_id, step_id) if step_id else None
    if found is not None and found.cause is not None:
        return found
    reason = reason_of()
    if found is None or bootstrap_failed(reason):
        return diagnose_bootstrap(s3, log_uri, cluster_id, reason, action_names)
    return found
