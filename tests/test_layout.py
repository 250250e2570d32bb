"""The layout is the architecture: one package per part, dependencies one way, deploy side apart.

Read from the source (the AST), so these hold for every module whether a test imports it or not.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Dict, Iterator, Set

import spark_app
from spark_app.emr.packaging import SHIPPED
from tests.support.paths import ROOT

LIBRARY = ROOT / "spark_app"
NEVER_SHIPPED = ("spark_app.emr", "spark_app.local")
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 250


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def library_modules() -> Dict[str, Path]:
    return {module_name(p): p for p in sorted(LIBRARY.rglob("*.py")) if "__pycache__" not in p.parts}


def shipped_modules() -> Dict[str, Path]:
    """What the cluster zip holds (its allow-list), plus the spark-submit entry point."""
    out = {}
    for package, subpackages in SHIPPED.items():
        base = ROOT / package
        paths = list(base.glob("*.py")) + [p for s in subpackages for p in (base / s).rglob("*.py")]
        out.update({module_name(p): p for p in paths})
    out["process_data"] = ROOT / "process_data.py"
    return out


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path) -> Iterator[str]:
    """Every module imported anywhere in the file (functions included), except under TYPE_CHECKING."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def walk(node: ast.AST) -> Iterator[str]:
        for child in ast.iter_child_nodes(node):
            if _type_checking_block(child):
                yield from (m for n in child.orelse for m in walk_one(n))
                continue
            yield from walk_one(child)

    def walk_one(node: ast.AST) -> Iterator[str]:
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            yield base
            yield from (f"{base}.{a.name}" for a in node.names)
        yield from walk(node)

    yield from walk(ast.parse(path.read_text()))


def library_graph() -> Dict[str, Set[str]]:
    modules = library_modules()
    return {
        name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()
    }


def find_cycle(graph: Dict[str, Set[str]]):
    state: Dict[str, int] = {}
    stack = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from spark_app.quality import gate\n")
    assert "spark_app.quality.gate" in set(imports_of_anywhere(module))


def imports_of_anywhere(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            yield from (f"{node.module}.{a.name}" for a in node.names)


def test_no_import_cycle_inside_the_library():
    assert find_cycle(library_graph()) is None


def test_the_library_never_imports_pipelines_and_shipped_code_never_imports_the_deploy_side():
    offenders = []
    for name, path in library_modules().items():
        offenders += [f"{name} -> {m}" for m in imports_of(path) if m.split(".")[0] == "pipelines"]
    for name, path in shipped_modules().items():
        offenders += [f"{name} -> {m}" for m in imports_of(path) if m.startswith(NEVER_SHIPPED)]
        local = ("deploy", "tests", "bench")
        offenders += [f"{name} -> {m}" for m in imports_of(path) if m.split(".")[0] in local]
    assert offenders == []


def test_migrations_are_frozen_snapshots_that_import_no_runtime_code():
    versions = LIBRARY / "postgres" / "migrations" / "versions"
    offenders = {
        p.name: [m for m in imports_of(p) if m.split(".")[0] in ("spark_app", "pipelines")]
        for p in versions.glob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    assert len(list(versions.glob("0*.py"))) >= 3


def test_no_module_or_class_is_too_long_to_read():
    long_modules, long_classes = {}, {}
    paths = list(library_modules().values()) + list((ROOT / "pipelines").glob("*.py"))
    paths += [ROOT / "process_data.py", ROOT / "deploy.py"]
    for path in paths:
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            long_modules[path.name] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                long_classes[node.name] = node.end_lineno - node.lineno + 1
    assert long_modules == {} and long_classes == {}


def test_every_subpackage_says_what_it_does_and_where_it_runs():
    for init in LIBRARY.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert doc, f"{init} has no docstring"
        assert any(w in doc for w in ("executor", "driver", "never shipped", "Local only")), init


def test_modules_that_run_on_executors_say_so_in_their_first_line():
    # Modules holding partition functions (mapInArrow / mapPartitions bodies).
    executor_side = [
        "spark_app.dynamo.lookup",
        "spark_app.postgres.load",
        "spark_app.events.files",
        "spark_app.events.scan",
        "spark_app.events.vector",
        "spark_app.events.parse",
        "spark_app.events.tables",
    ]
    for name in executor_side:
        doc = ast.get_docstring(ast.parse(library_modules()[name].read_text())) or ""
        assert doc.splitlines()[0].startswith("Runs on executors"), name


def test_every_public_export_of_every_package_imports():
    missing = [name for name in spark_app.__all__ if getattr(spark_app, name, None) is None]
    assert missing == []
    for name in library_modules():
        if ".migrations" in name:  # run by Alembic only, inside its context
            continue
        module = importlib.import_module(name)
        for export in getattr(module, "__all__", []):
            assert getattr(module, export, None) is not None, f"{name}.{export}"


def test_tests_mirror_the_library():
    parts = {p.name for p in LIBRARY.iterdir() if (p / "__init__.py").is_file()}
    mirrored = {p.name for p in (ROOT / "tests").iterdir() if (p / "__init__.py").is_file()}
    assert parts <= mirrored
