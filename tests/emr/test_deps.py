"""The dependency archive: the lock covers the shipped code, the wheels fit the cluster, builds repeat.

The archive is built for real from requirements/node.lock: `make deps` (which `make test` runs)
downloads the wheels once into .deps-wheels/ and packs dist/deps-<hash>.tar.gz; the tests rebuild
it from those wheels alone (no network) and import its modules with a real CPython 3.9 that has
nothing else on its path but the unpacked archive, the cluster zip and pyspark's python dir.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

from spark_app.emr import deps
from spark_app.emr.packaging import build_zip, zip_entries
from tests.support.paths import ROOT

PYENV39 = Path.home() / ".pyenv" / "versions" / "3.9.18" / "bin" / "python3.9"
PYTHON39 = os.environ.get("PYTHON39") or (str(PYENV39) if PYENV39.is_file() else "")
ON_THE_CLUSTER = {"pyspark", "py4j"}  # EMR's Spark provides them; the archive must not shadow them
OURS = {"spark_app", "pipelines", "process_data"}
LOCK_TEXT = (ROOT / deps.LOCK).read_text()


def shipped_modules() -> dict:
    """{module: source path} of what the cluster zip holds, plus the entry point."""
    out = {"process_data": ROOT / "process_data.py"}
    for entry in zip_entries(build_zip(ROOT)):
        if entry.endswith(".py"):
            name = entry[: -len(".py")].replace("/", ".")
            out[name[: -len(".__init__")] if name.endswith(".__init__") else name] = ROOT / entry
    return out


def _optional_imports(tree: ast.AST) -> set:
    """Imports under `try: ... except ImportError`: optional, the code runs without them."""
    optional = set()
    for node in ast.walk(tree):
        caught = [ast.unparse(h.type) for h in getattr(node, "handlers", []) if h.type is not None]
        if isinstance(node, ast.Try) and any(c in ("ImportError", "ModuleNotFoundError") for c in caught):
            optional |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return optional


def third_party_imports() -> dict:
    """{top-level module: [shipped modules importing it]} over every import statement of the shipped code."""
    found: dict = {}
    for name, path in shipped_modules().items():
        tree = ast.parse(path.read_text())
        optional = _optional_imports(tree)
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top not in sys.stdlib_module_names and top not in OURS | {"__future__"}:
                    found.setdefault(top, []).append(name)
    return found


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return deps.build_archive(ROOT, ROOT / "dist")  # the one `make deps` built (make test runs it)


def test_the_lock_covers_every_third_party_import_of_the_shipped_code():
    locked = deps.pinned(LOCK_TEXT)
    distributions = importlib.metadata.packages_distributions()
    imports = third_party_imports()
    assert {"boto3", "yaml", "psycopg2", "pyarrow", "sqlalchemy", "pydeequ"} <= set(imports)
    def locked_for(top: str) -> bool:
        return bool({deps.normalize(d) for d in distributions.get(top, [])} & set(locked))

    missing = {top: who for top, who in imports.items() if top not in ON_THE_CLUSTER and not locked_for(top)}
    assert missing == {}
    assert not set(locked) & ON_THE_CLUSTER


def test_the_lock_pins_everything_with_hashes_transitive_ones_included():
    locked = deps.pinned(LOCK_TEXT)
    assert {"urllib3", "jmespath", "s3transfer", "greenlet", "mako", "tzdata"} <= set(locked)
    blocks = LOCK_TEXT.split("==")[1:]
    assert len(blocks) == len(locked) and all("--hash=sha256:" in b for b in blocks)
    assert locked["urllib3"].startswith("1.26.")  # botocore's bound for Python 3.9


def test_lock_and_pyproject_agree_where_both_name_a_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    locked = deps.pinned(LOCK_TEXT)
    shared = [Requirement(r) for r in project if deps.normalize(Requirement(r).name) in locked]
    assert len(shared) >= 10
    disagree = [str(r) for r in shared
                if not r.specifier.contains(locked[deps.normalize(r.name)], prereleases=True)]
    assert disagree == []
    direct = deps.pinned((ROOT / "requirements" / "node.txt").read_text())
    assert {k: locked[k] for k in direct} == direct


def test_every_wheel_in_the_archive_is_for_cpython_3_9_on_manylinux_x86_64(archive):
    tags = deps.wheel_tags(archive.path)
    assert len(tags) == len(deps.pinned(LOCK_TEXT))
    wrong = {wheel: t for wheel, t in tags.items() if not any(deps.fits_cluster(tag) for tag in t)}
    assert wrong == {}
    assert any(tag.startswith("cp39-cp39-manylinux") for t in tags.values() for tag in t)
    assert not [t for t in tags.values() if any(tag.endswith("-any") for tag in t) and not
                any(tag.startswith("py3-none") for tag in t)]


def test_tag_check_refuses_other_pythons_and_platforms():
    assert deps.fits_cluster("cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64")
    assert deps.fits_cluster("py3-none-any") and deps.fits_cluster("cp37-abi3-manylinux2014_x86_64")
    for tag in ("cp311-cp311-manylinux2014_x86_64", "cp39-cp39-manylinux2014_aarch64",
                "cp39-cp39-macosx_11_0_arm64", "cp310-abi3-manylinux2014_x86_64", "cp39-cp39-win_amd64"):
        assert not deps.fits_cluster(tag), tag


def test_the_archive_is_reproducible_and_named_by_its_lock(archive, tmp_path):
    again = deps.build_archive(ROOT, tmp_path)
    assert again.name == archive.name == deps.archive_name(LOCK_TEXT.encode())
    assert again.path.read_bytes() == archive.path.read_bytes()
    with tarfile.open(archive.path) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert {(m.mtime, m.uid, m.gid, m.uname) for m in members} == {(0, 0, 0, "")}
    assert not [n for n in names if n.startswith("bin/") or "__pycache__" in n]
    assert deps.archive_name(LOCK_TEXT.encode() + b"#") != archive.name


def test_the_archive_holds_nothing_of_the_folder_it_was_built_in(archive):
    """The console scripts' RECORD lines (their hashes cover a shebang naming the builder's
    interpreter) stay out, so a checkout elsewhere packs the same bytes from the same lock."""
    with tarfile.open(archive.path) as tar:
        members = [m for m in tar.getmembers() if m.name.endswith(".dist-info/RECORD")]
        records = [tar.extractfile(m).read().decode() for m in members]
    assert records
    assert not [line for text in records for line in text.splitlines() if line.startswith("../")]
    here = "../../bin/idna,sha256=H04SaNZSpBG7Zgx5P4bPB0IUskpSJKD5SeX1QWhXvsk,167\n"
    there = "../../bin/idna,sha256=rRfnP2RpoeGOik4qj9pWyyDh22Q5llTAbB0XVsfmTxw,167\n"
    rest = "idna/core.py,sha256=a,1\nidna-3.20.dist-info/RECORD,,\n"
    packed = {deps.shipped_record((script + rest).encode()) for script in (here, there)}
    assert packed == {rest.encode()}


@pytest.mark.skipif(not PYTHON39, reason="no CPython 3.9 here (set PYTHON39)")
def test_every_shipped_module_imports_under_python_3_9_from_archive_zip_and_pyspark_alone(archive, tmp_path):
    unpacked = tmp_path / "deps"
    with tarfile.open(archive.path) as tar:
        tar.extractall(unpacked)
    zip_path = tmp_path / "spark_app.zip"
    zip_path.write_bytes(build_zip(ROOT))
    shutil.copy(ROOT / "process_data.py", tmp_path / "process_data.py")
    import pyspark

    spark_python = Path(pyspark.__file__).parent / "python" / "lib"  # as $SPARK_HOME/python/lib on EMR
    path = [str(unpacked), str(zip_path), *map(str, sorted(spark_python.glob("*.zip"))), str(tmp_path)]
    entries = zip_entries(zip_path.read_bytes())
    packages = {e.rsplit("/", 1)[0] for e in entries if e.endswith("/__init__.py")}
    # revision files (migrations/versions/, no __init__.py) are loaded by file, as alembic does; env.py is
    # alembic's runner script (it reads alembic.context.config at import), not a module to import alone
    scripts = [f"file:{e}" for e in entries if e.endswith(".py") and e.rsplit("/", 1)[0] not in packages]
    modules = [m for m, p in shipped_modules().items()
               if m != "process_data" and p.relative_to(ROOT).parent.as_posix() in packages]
    targets = sorted(m for m in modules if not m.endswith(".migrations.env")) + ["process_data"] + scripts
    env = {"PYTHONPATH": os.pathsep.join(path), "SPARK_VERSION": "3.5", "PATH": "/usr/bin:/bin",
           "PYTHONNOUSERSITE": "1"}
    done = subprocess.run([PYTHON39, "-S", "-s", "-c", IMPORT_ALL, str(zip_path), *targets],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == str(len(targets)) and len(scripts) >= 1 and len(modules) >= 30


IMPORT_ALL = """
import importlib, sys, zipfile
zip_path, names = sys.argv[1], sys.argv[2:]
for name in names:
    if name.startswith("file:"):
        entry = name[len("file:"):]
        exec(compile(zipfile.ZipFile(zip_path).read(entry), entry, "exec"), {"__name__": entry})
    else:
        importlib.import_module(name)
print(len(names))
"""


def test_spark_conf_unpacks_the_archive_and_puts_it_on_every_pythonpath():
    conf = deps.spark_conf("s3://b/p/deps/deps-abc.tar.gz")
    assert conf == {
        "spark.archives": "s3://b/p/deps/deps-abc.tar.gz#deps",
        "spark.executorEnv.PYTHONPATH": "./deps",
        "spark.yarn.appMasterEnv.PYTHONPATH": "./deps",
        "spark.emr-serverless.driverEnv.PYTHONPATH": "./deps",
    }


@pytest.mark.skipif(not PYTHON39, reason="no CPython 3.9 here (set PYTHON39)")
@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_the_event_tasks_decide_and_count_alike_under_the_nodes_python_and_pyarrow(archive, tmp_path, fmt):
    # The tasks' code (bulk classification, buckets, dedup) gives the same answer under the
    # node's own interpreter and wheels (node.lock, CPython 3.9) as under the laptop's.
    from datetime import date

    from spark_app.local.sample_data import SampleSpec, write_day

    write_day(tmp_path / "day", date(2024, 3, 10), SampleSpec(events=20_000), fmt=fmt, files=2)
    unpacked = tmp_path / "deps"
    with tarfile.open(archive.path) as tar:
        tar.extractall(unpacked)
    zip_path = tmp_path / "spark_app.zip"
    zip_path.write_bytes(build_zip(ROOT))
    args = ["-c", EVENT_TASKS, str(tmp_path / "day"), fmt]
    node_env = {"PYTHONPATH": f"{unpacked}{os.pathsep}{zip_path}", "PATH": "/usr/bin:/bin",
                "PYTHONNOUSERSITE": "1"}
    on_node = subprocess.run([PYTHON39, "-S", "-s", *args], capture_output=True, text=True, env=node_env,
                             timeout=300)
    here = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert on_node.returncode == 0, on_node.stderr[-3000:]
    assert here.returncode == 0, here.stderr[-3000:]
    node_result, laptop_result = json.loads(on_node.stdout), json.loads(here.stdout)
    assert node_result["versions"]["pyarrow"] == deps.pinned(LOCK_TEXT)["pyarrow"]
    del node_result["versions"], laptop_result["versions"]
    assert node_result == laptop_result
    assert sum(r.get("in_day", 0) for r in node_result["reports"]) > 15_000


EVENT_TASKS = """
import glob, json, sys
from datetime import date, datetime, timezone
import numpy, pyarrow
from spark_app.events.buckets import BucketWriter, spark_labels, unpack
from spark_app.events.parse import DayWindow
from spark_app.events.scan import ScanSpec, file_outputs
from spark_app.events.views import views_per_key
root, fmt = sys.argv[1], sys.argv[2]
types = ("product_view", "add_to_cart", "purchase", "search", "page_view")
spec = ScanSpec(fmt, DayWindow.of(date(2024, 3, 10), datetime(2024, 3, 12, tzinfo=timezone.utc), 60, types))
labels = spark_labels(3)
writer = BucketWriter(labels, flush_events=5000)
reports, pairs = [], []
for path in sorted(glob.glob(root + "/dt=*/part-*")):
    for kind, item in file_outputs("file:" + path, spec):
        if kind == "report":
            reports.append(json.loads(item))
        else:
            pairs += list(writer.add(item))
pairs += list(writer.flush())
views, per_bucket = {}, {}
for label in labels:
    events = unpack([p for l, p in pairs if l == label])
    per_bucket[str(label)] = events.num_rows
    table = views_per_key(events)
    for a, p, v, o in zip(*(table.column(c).to_pylist() for c in table.schema.names)):
        total = views.setdefault(f"{a}/{p}", [0, 0])
        total[0], total[1] = total[0] + v, total[1] + o
versions = {"pyarrow": pyarrow.__version__, "numpy": numpy.__version__}
print(json.dumps({"reports": reports, "views": views, "per_bucket": per_bucket, "versions": versions}))
"""


def test_the_laptop_runs_the_versions_the_nodes_get():
    # `make setup` installs with requirements/node.txt as constraints: one version of each
    # shipped dependency from laptop to cluster.
    direct = deps.pinned((ROOT / "requirements" / "node.txt").read_text())
    installed = {name: importlib.metadata.version(name) for name in direct}
    assert installed == direct
