"""Build the artifacts shipped to EMR and upload them to S3 under a content-hash version.

Artifacts: `spark_app.zip` (what runs on the cluster: see `SHIPPED`, for `--py-files`),
`process_data.py` (the entry point), the bootstrap scripts, the job's config file and the
lock of the dependency archive (the archive itself, deps-<hash>.tar.gz, is built by
spark_app.emr.deps and uploaded once per lock under <prefix>/deps/). Builds are reproducible -
same sources, same bytes - because zip entries are sorted and carry a fixed timestamp and fixed
permissions; so the version (a hash of every artifact's hash) changes exactly when something
shipped changes, and an upload of an unchanged build sends nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from spark_app.config import read_config_mapping
from spark_app.config_secrets import refuse_secrets
from spark_app.errors import ConfigError

# The cluster zip is an allow-list: each package's own modules plus exactly the subpackages named
# here, all that runs on the cluster. spark_app.emr and spark_app.local (deploy side, laptop) never
# ship, nor does any new subpackage until it is named here.
SHIPPED: Dict[str, Tuple[str, ...]] = {
    "spark_app": ("events", "presto", "dynamo", "postgres", "quality", "report", "ops"),
    "pipelines": (),
}
ZIP_NAME = "spark_app.zip"
ENTRY_POINT = "process_data.py"
REQUIREMENTS = "requirements/node.lock"  # what the deps archive holds, shipped as its record
REQUIREMENTS_NAME = "requirements-node.lock"
BOOTSTRAP_DIR = "bootstrap"
MANIFEST_NAME = "current.json"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_SKIP_DIRS = {"__pycache__", "tests", "test", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".swp", "~")


@dataclass(frozen=True)
class Artifact:
    name: str
    data: bytes = field(repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Build:
    version: str
    artifacts: List[Artifact]

    def by_name(self) -> Dict[str, Artifact]:
        return {a.name: a for a in self.artifacts}

    def write(self, out_dir: str | Path) -> List[Path]:
        """Write every artifact into `out_dir` (e.g. dist/), returning the paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for a in self.artifacts:
            (out / a.name).write_bytes(a.data)
            paths.append(out / a.name)
        return paths

    def describe(self) -> Dict[str, Any]:
        return {
            "version": self.version,
            "files": {a.name: {"sha256": a.sha256, "size": len(a.data)} for a in self.artifacts},
        }


def _shipped(path: Path, package_root: Path) -> bool:
    rel = path.relative_to(package_root)
    if any(part in _SKIP_DIRS or part.startswith(".") for part in rel.parts):
        return False
    name = path.name
    return path.is_file() and not name.endswith(_SKIP_SUFFIXES) and not name.startswith("test_")


def build_zip(root: str | Path, shipped: Mapping[str, Tuple[str, ...]] = SHIPPED) -> bytes:
    """The `--py-files` zip: allow-listed files in sorted order, fixed time and mode, no caches or tests."""
    root = Path(root)
    files = []
    for package, subpackages in shipped.items():
        base = root / package
        for folder in [base] + [base / name for name in subpackages]:
            if not (folder / "__init__.py").is_file():
                raise ConfigError(f"{folder}: not a Python package (no __init__.py); cannot package it")
        files += [p for p in base.iterdir() if _shipped(p, root)]
        files += [p for name in subpackages for p in (base / name).rglob("*") if _shipped(p, root)]
    return reproducible_zip(sorted((p.relative_to(root).as_posix(), p.read_bytes()) for p in files))


def reproducible_zip(entries: Iterable[Tuple[str, bytes]]) -> bytes:
    """A zip of (name, data) in the given order whose bytes depend on nothing else: fixed time and mode."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the mode below is honoured the same everywhere
            info.external_attr = (0o100644 & 0xFFFF) << 16
            zf.writestr(info, data, compresslevel=9)
    return buf.getvalue()


def zip_entries(data: bytes) -> List[str]:
    """The file names inside a built zip, in order: what the cluster will import."""
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


def content_version(artifacts: List[Artifact]) -> str:
    """A short hash over every artifact's name and hash: equal builds, equal versions."""
    h = hashlib.sha256()
    for a in sorted(artifacts, key=lambda a: a.name):
        h.update(f"{a.name}\0{a.sha256}\n".encode())
    return h.hexdigest()[:12]


def build(root: str | Path, conf_path: str | Path, shipped: Mapping[str, Tuple[str, ...]] = SHIPPED) -> Build:
    """Every artifact of a release, in memory; `Build.write` puts them in dist/."""
    root = Path(root)
    conf = Path(conf_path) if Path(conf_path).is_absolute() else root / conf_path
    refuse_secrets(read_config_mapping(conf), str(conf))  # a config holding a secret is never shipped
    artifacts = [Artifact(ZIP_NAME, build_zip(root, shipped))]
    for rel, name in ((ENTRY_POINT, ENTRY_POINT), (REQUIREMENTS, REQUIREMENTS_NAME)):
        artifacts.append(Artifact(name, _read(root / rel, "artifact")))
    artifacts.append(Artifact(conf.name, _read(conf, "config file")))
    scripts = sorted((root / BOOTSTRAP_DIR).glob("*.sh"))
    if not scripts:
        raise ConfigError(f"{root / BOOTSTRAP_DIR}: no bootstrap scripts (*.sh) to ship")
    artifacts += [Artifact(p.name, p.read_bytes()) for p in scripts]
    names = [a.name for a in artifacts]
    if len(set(names)) != len(names):
        raise ConfigError(f"two artifacts share a file name: {sorted(names)}")
    return Build(content_version(artifacts), artifacts)


def deequ_jar_artifact(root: str | Path) -> Artifact:
    """The Deequ jar requirements/pom.xml lists, from .jars/, to upload beside the release."""
    from spark_app.jvm import JARS_DIR, deequ_jar_name

    path = Path(root) / JARS_DIR / deequ_jar_name(root)
    if not path.is_file():
        raise ConfigError(
            f"{path}: the Deequ jar to upload beside the release is missing; run `make jars` "
            "(or set emr.deequ_jar to a jar already on S3)"
        )
    return Artifact(path.name, path.read_bytes())


def _read(path: Path, what: str) -> bytes:
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found; run from the project root")
    return path.read_bytes()


# --------------------------------------------------------------------------- S3


@dataclass(frozen=True)
class UploadReport:
    version: str
    bucket: str
    uploaded: List[str]
    skipped: List[str]
    manifest_key: str
    manifest_written: bool


def version_prefix(prefix: str, version: str) -> str:
    return f"{prefix.strip('/')}/{version}"


def manifest_key(prefix: str) -> str:
    return f"{prefix.strip('/')}/{MANIFEST_NAME}"


def _remote_sha(s3: Any, bucket: str, key: str) -> Optional[str]:
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return head.get("Metadata", {}).get("sha256")


def read_manifest(s3: Any, bucket: str, prefix: str) -> Optional[Dict[str, Any]]:
    """The current manifest, or None when nothing was uploaded yet."""
    from botocore.exceptions import ClientError

    try:
        body = s3.get_object(Bucket=bucket, Key=manifest_key(prefix))["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return json.loads(body)


def upload(
    s3: Any,
    build_: Build,
    bucket: str,
    prefix: str,
    extra: Optional[List[Artifact]] = None,
    now: Optional[datetime] = None,
) -> UploadReport:
    """Put each artifact at s3://bucket/prefix/version/name unless S3 already holds those bytes.

    The sha256 travels as object metadata, so "already there" is one HEAD per file. The
    manifest (prefix/current.json) is rewritten only when the version or a file changed.
    """
    artifacts = list(build_.artifacts) + list(extra or [])
    base = version_prefix(prefix, build_.version)
    uploaded, skipped, files = [], [], {}
    for a in artifacts:
        key = f"{base}/{a.name}"
        files[a.name] = {"key": key, "sha256": a.sha256, "size": len(a.data)}
        if _remote_sha(s3, bucket, key) == a.sha256:
            skipped.append(a.name)
            continue
        s3.put_object(Bucket=bucket, Key=key, Body=a.data, Metadata={"sha256": a.sha256})
        uploaded.append(a.name)
    current = read_manifest(s3, bucket, prefix)
    changed = not current or current.get("version") != build_.version or current.get("files") != files
    if changed:
        stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
        manifest = {"version": build_.version, "files": files, "uploaded_at": stamp}
        s3.put_object(
            Bucket=bucket,
            Key=manifest_key(prefix),
            Body=json.dumps(manifest, indent=2, sort_keys=True).encode(),
            ContentType="application/json",
        )
    return UploadReport(build_.version, bucket, uploaded, skipped, manifest_key(prefix), changed)
