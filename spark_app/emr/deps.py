"""The dependency archive: every runtime dependency of the shipped code, built here, unpacked by Spark.

`requirements/node.txt` names the direct dependencies; `make lock` resolves them, transitive
ones included, for the cluster's Python (CPython 3.9, manylinux x86_64) into
`requirements/node.lock`, every file pinned by its SHA-256. `build_archive` installs exactly
those wheels (binary only, hashes required, no dependency resolution of its own) into a folder
and packs it as one tar.gz: entries sorted, owner root, modes 0644/0755, mtime 0, gzip header
without a timestamp, so the same lock gives the same bytes. Spark unpacks it in every YARN
container and on every EMR Serverless worker (`spark.archives=<uri>#deps`) and the job finds
the packages through PYTHONPATH=./deps, so no node installs anything or reaches PyPI.

The archive's name carries a hash of the lock and of the build's target, which fixes its
content (the lock pins every wheel's hash): a dry run can name it without building 90 MB.

Graviton nodes (arm64) take a second archive built the same way from `requirements/node-aarch64.lock`
(`make lock` resolves both with the same pins; `make deps ARCH=aarch64` builds it): every function
taking `arch` serves x86_64 (the default) or aarch64.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Dict, List, Optional, Sequence

from spark_app.errors import ConfigError

LOCK = "requirements/node.lock"
PLATFORM = "manylinux2014_x86_64"
X86_64, AARCH64 = "x86_64", "aarch64"
ARCHES = (X86_64, AARCH64)
LOCKS = {X86_64: LOCK, AARCH64: "requirements/node-aarch64.lock"}
PLATFORMS = {X86_64: PLATFORM, AARCH64: "manylinux2014_aarch64"}
PYTHON_VERSION = "3.9"
ABI = "cp39"
ALIAS = "deps"  # the folder the archive is unpacked into, in each container's working directory
PYTHONPATH = f"./{ALIAS}"
_FORMAT = "2"  # bump when the archive's layout changes for the same lock
_SKIP_TOP = {"bin"}  # console scripts: their shebang names this machine's interpreter


def _arch(arch: str) -> str:
    if arch not in ARCHES:
        raise ConfigError(f"no dependency archive for architecture {arch!r} (known: {', '.join(ARCHES)})")
    return arch


def lock_path(root: str | Path, arch: str = X86_64) -> Path:
    return Path(root) / LOCKS[_arch(arch)]


def read_lock(root: str | Path, arch: str = X86_64) -> bytes:
    path = lock_path(root, arch)
    if not path.is_file():
        raise ConfigError(f"{path}: no lock file; run `make lock`")
    return path.read_bytes()


def archive_name(lock: bytes, arch: str = X86_64) -> str:
    """deps-<hash>.tar.gz, the hash over the lock and the target it is built for."""
    h = hashlib.sha256(f"{_FORMAT}\0{PLATFORMS[_arch(arch)]}\0{PYTHON_VERSION}\0{ABI}\0".encode())
    h.update(lock)
    return f"{ALIAS}-{h.hexdigest()[:12]}.tar.gz"


def pinned(lock_text: str) -> Dict[str, str]:
    """{normalized name: version} of every `name==version` line of a lock or requirements file."""
    out = {}
    for line in lock_text.splitlines():
        line = line.split("#", 1)[0].strip().rstrip("\\").strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==", 1)
            out[normalize(name.split("[")[0])] = version.split(";")[0].strip()
    return out


def normalize(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


WHEELS = ".deps-wheels"  # the lock's wheels, downloaded once (ignored); builds install from here alone
WHEEL_DIRS = {X86_64: WHEELS, AARCH64: ".deps-wheels-aarch64"}


def _target(arch: str = X86_64) -> List[str]:
    return ["--platform", PLATFORMS[_arch(arch)], "--python-version", PYTHON_VERSION,
            "--implementation", "cp", "--abi", ABI, "--abi", "abi3", "--abi", "none", "--only-binary=:all:",
            "--require-hashes", "--no-deps"]


def pip_download_command(lock: Path, wheels: Path, cache_dir: Optional[Path] = None,
                         arch: str = X86_64) -> List[str]:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
           "--dest", str(wheels), *_target(arch), "-r", str(lock)]
    return cmd + (["--cache-dir", str(cache_dir)] if cache_dir else [])


def pip_install_command(lock: Path, target: Path, wheels: Path, arch: str = X86_64) -> List[str]:
    """Offline: only the downloaded wheels (their hashes checked against the lock again)."""
    return [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-index", "--find-links", str(wheels), "--target", str(target), *_target(arch),
            "--no-compile", "-r", str(lock)]


def missing_wheels(lock: Path, wheels: Path) -> List[str]:
    """The lock's name==version pins that have no wheel in `wheels` yet."""
    have = {normalize(p.name.split("-")[0]) + "==" + p.name.split("-")[1] for p in wheels.glob("*.whl")}
    pins = pinned(lock.read_text()).items()
    return sorted(f"{n}=={v}" for n, v in pins if f"{normalize(n)}=={v}" not in have)


def download(lock: Path, wheels: Path, cache_dir: Optional[Path] = None, arch: str = X86_64) -> None:
    """Fetch the lock's wheels for the cluster's Python into `wheels`, unless all are there already."""
    wheels.mkdir(parents=True, exist_ok=True)
    if not missing_wheels(lock, wheels):
        return
    _pip(pip_download_command(lock, wheels, cache_dir, arch), f"download {lock}", arch)


def install(lock: Path, target: Path, wheels: Path, arch: str = X86_64) -> None:
    """Install the lock's wheels for the cluster's Python into `target` (binary only, offline)."""
    _pip(pip_install_command(lock, target, wheels, arch), f"install {lock}", arch)


def _pip(cmd: List[str], what: str, arch: str = X86_64) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ConfigError(f"pip could not {what} for CPython {PYTHON_VERSION} {PLATFORMS[arch]}:\n"
                          f"{done.stderr.strip()[-2000:]}")


def _files(folder: Path) -> List[Path]:
    paths = [p for p in folder.rglob("*") if p.relative_to(folder).parts[0] not in _SKIP_TOP]
    return sorted((p for p in paths if p.is_file() and "__pycache__" not in p.parts),
                  key=lambda p: p.relative_to(folder).as_posix())


def pack(folder: Path, out: BinaryIO) -> None:
    """A reproducible tar.gz of `folder`'s files into `out`: sorted, root-owned, fixed modes and times."""
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0, filename="") as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in _files(folder):
                info = tarfile.TarInfo(path.relative_to(folder).as_posix())
                data = path.read_bytes()
                if path.name == "RECORD" and path.parent.name.endswith(".dist-info"):
                    data = shipped_record(data)
                info.size, info.mtime, info.uid, info.gid = len(data), 0, 0, 0
                info.uname = info.gname = ""
                info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
                tar.addfile(info, io.BytesIO(data))


def shipped_record(record: bytes) -> bytes:
    """A wheel's RECORD without the lines of files outside the archive (`../../bin/...`): their
    hashes name the building machine's interpreter (the scripts' shebang), so two checkouts in
    different folders packed different bytes from one lock."""
    lines = record.decode("utf-8").splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("../")).encode("utf-8")


@dataclass(frozen=True)
class Archive:
    name: str
    path: Path
    size: int
    seconds: float

    def describe(self) -> Dict[str, object]:
        return {"name": self.name, "path": str(self.path), "size": self.size,
                "seconds": round(self.seconds, 1)}


def build_archive(root: str | Path, out_dir: str | Path, cache_dir: Optional[Path] = None,
                  arch: str = X86_64) -> Archive:
    """dist/deps-<hash>.tar.gz from the architecture's lock; reused when that file already exists.

    The wheels are downloaded once into `<root>/.deps-wheels` (`.deps-wheels-aarch64`; the only
    step that needs PyPI); the install that fills the archive reads them alone.
    """
    started = time.monotonic()
    lock = read_lock(root, arch)
    out = Path(out_dir) / archive_name(lock, arch)
    if not out.is_file():
        wheels = Path(root) / WHEEL_DIRS[_arch(arch)]
        download(lock_path(root, arch), wheels, cache_dir, arch)
        with tempfile.TemporaryDirectory(prefix="deps-") as tmp:
            install(lock_path(root, arch), Path(tmp) / ALIAS, wheels, arch)
            out.parent.mkdir(parents=True, exist_ok=True)
            partial = out.with_name(out.name + ".partial")
            with partial.open("wb") as fh:
                pack(Path(tmp) / ALIAS, fh)
        partial.replace(out)
    return Archive(out.name, out, out.stat().st_size, time.monotonic() - started)


def wheel_tags(archive: Path) -> Dict[str, List[str]]:
    """{dist-info folder: its WHEEL file's Tag values}: what each installed wheel was built for."""
    tags: Dict[str, List[str]] = {}
    with tarfile.open(archive, mode="r:gz") as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "WHEEL":
                text = tar.extractfile(member).read().decode()
                tags[parts[0]] = [ln.split(":", 1)[1].strip() for ln in text.splitlines()
                                  if ln.startswith("Tag:")]
    return tags


def fits_cluster(tag: str, arch: str = X86_64) -> bool:
    """A wheel tag CPython 3.9 on manylinux `arch` can load: cp39/abi3/py3, manylinux `arch` or any."""
    interpreter, abi, platform = tag.split("-")
    stable = abi == "abi3" and interpreter.startswith("cp3") and int(interpreter[2:]) <= 39
    py_ok = interpreter in ("cp39", "py3", "py2.py3") or stable
    abi_ok = abi in ("cp39", "abi3", "none")
    plat_ok = platform == "any" or all(
        p.startswith("manylinux") and p.endswith("_" + _arch(arch)) for p in platform.split(".")
    )
    return py_ok and abi_ok and plat_ok


def spark_conf(archive_uri: str, existing_pythonpath: Sequence[str] = ()) -> Dict[str, str]:
    """The archive and the PYTHONPATH that finds it, for YARN containers and Serverless workers alike."""
    path = ":".join([PYTHONPATH, *existing_pythonpath])
    return {
        "spark.archives": f"{archive_uri}#{ALIAS}",
        "spark.executorEnv.PYTHONPATH": path,
        "spark.yarn.appMasterEnv.PYTHONPATH": path,
        "spark.emr-serverless.driverEnv.PYTHONPATH": path,
    }


def upload_archive(s3: Any, path: Path, bucket: str, key: str) -> bool:
    """Put the archive at s3://bucket/key unless it is there already (its name is its content)."""
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
    with path.open("rb") as body:  # one PUT (up to 5 GB), so AWS's refusals surface as ClientError
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    return True
