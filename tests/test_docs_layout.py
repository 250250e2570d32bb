"""What the docs say each package holds and what ships, read against the tree and the real zip.

The zip is built by `spark_app.emr.packaging.build_zip` from this checkout, so a claim such as
"`report` is not in the cluster's zip" or a package map that forgets a package fails here, not
in a reader's head. Checked: the README's Layout (every module of every package, the executor tags,
"never shipped") and its list of what ships, the package map in `spark_app/__init__.py`, each
package's own docstring, and any "not in the cluster's zip" in docs/.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Set, Tuple

import spark_app
from spark_app.emr.packaging import build_zip, zip_entries
from tests.support.paths import ROOT

LIBRARY = ROOT / "spark_app"
NOT_SHIPPED = re.compile(r"never shipped|not in the cluster's (?:`spark_app\.zip`|zip)")


@lru_cache(maxsize=1)
def zipped_subpackages() -> Set[str]:
    """The spark_app subpackages inside the zip a release ships."""
    names = zip_entries(build_zip(ROOT))
    return {n.split("/")[1] for n in names if n.startswith("spark_app/") and n.count("/") >= 2}


def subpackages() -> Set[str]:
    return {p.parent.name for p in LIBRARY.glob("*/__init__.py")}


def package_contents(folder: Path) -> Set[str]:
    """Its modules by name, and its own subpackages as `name/`."""
    modules = {p.stem for p in folder.glob("*.py") if p.name != "__init__.py"}
    return modules | {p.parent.name + "/" for p in folder.glob("*/__init__.py")}


def runs_on_executors(module: Path) -> bool:
    doc = ast.get_docstring(ast.parse(module.read_text())) or ""
    return doc.startswith("Runs on executors")


def readme_layout() -> List[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Layout") :]
    return section.split("```", 2)[1].strip("\n").splitlines()


def layout_entries() -> Tuple[Dict[str, List[Tuple[str, bool]]], Dict[str, str], Set[str]]:
    """From the Layout block: per package its (module, tagged executors) list and its description,
    and the root modules. A package line is `  name/  modules  description` (`pipelines/` at the
    left margin), continued on lines indented further; columns are set apart by two spaces."""
    entries: Dict[str, List[Tuple[str, bool]]] = {}
    descriptions: Dict[str, str] = {}
    root: Set[str] = set()
    current = None
    for line in readme_layout():
        package = re.match(r"^(?:  (\w+)|(pipelines))/\s{2,}(.*)$", line)
        if package:
            current = package.group(1) or package.group(2)
            columns = re.split(r"\s{2,}", package.group(3).strip())
        elif current and re.match(r"^\s{4,}\S", line):
            columns = re.split(r"\s{2,}", line.strip())
        else:
            current = None
            if re.fullmatch(r"  \w+\.py( \w+\.py)*", line):
                root = {name[: -len(".py")] for name in line.split()}
            continue
        for token in (t.strip() for t in columns[0].split(",") if t.strip()):
            listed = re.fullmatch(r"(\w+/?)( \(executors\))?", token)
            assert listed, f"README Layout, {current}/: {token!r} is not `module` or `module (executors)`"
            name, tag = listed.groups()
            entries.setdefault(current, []).append((name, bool(tag)))
        descriptions[current] = " ".join([descriptions.get(current, "")] + columns[1:]).strip()
    return entries, descriptions, root


def test_the_readme_layout_lists_every_module_of_every_package_and_nothing_else():
    entries, _, root = layout_entries()
    assert root == {p.stem for p in LIBRARY.glob("*.py") if p.name != "__init__.py"}
    assert set(entries) == subpackages() | {"pipelines"}
    for package, listed in entries.items():
        folder = ROOT / package if package == "pipelines" else LIBRARY / package
        names = [name for name, _ in listed]
        assert sorted(names) == sorted(package_contents(folder)), package


def test_the_readme_tags_exactly_the_modules_that_say_they_run_on_executors():
    entries, _, _ = layout_entries()
    for package, listed in entries.items():
        folder = ROOT / package if package == "pipelines" else LIBRARY / package
        tagged = {name for name, tag in listed if tag}
        modules = [name for name, _ in listed if not name.endswith("/")]
        said = {name for name in modules if runs_on_executors(folder / f"{name}.py")}
        assert tagged == said, package


def test_the_readme_says_never_shipped_of_exactly_the_packages_left_out_of_the_zip():
    _, descriptions, _ = layout_entries()
    claimed = {p for p, text in descriptions.items() if NOT_SHIPPED.search(text)}
    assert claimed == subpackages() - zipped_subpackages()


def test_the_readme_names_what_ships_as_the_zip_holds_it():
    text = (ROOT / "README.md").read_text()
    sentence = text[text.index("What ships to the cluster") :].split("; `deploy.py package`", 1)[0]
    named = set(re.findall(r"`(\w+)/?`", sentence))
    assert named == zipped_subpackages() | {"pipelines"}


def test_the_package_map_names_every_subpackage_and_says_never_shipped_of_those_left_out():
    doc = spark_app.__doc__ or ""
    described = dict(re.findall(r"(\w+)/ +(.+?)(?= {2,}\w+/|$)", doc, flags=re.M))
    assert set(described) == subpackages()
    claimed = {name for name, text in described.items() if NOT_SHIPPED.search(text)}
    assert claimed == subpackages() - zipped_subpackages()


def test_each_package_says_it_is_not_shipped_exactly_when_the_zip_leaves_it_out():
    docs = {name: ast.get_docstring(ast.parse((LIBRARY / name / "__init__.py").read_text())) or ""
            for name in subpackages()}
    claimed = {name for name, doc in docs.items() if NOT_SHIPPED.search(doc)}
    assert claimed == subpackages() - zipped_subpackages()


def test_no_page_of_the_docs_says_a_shipped_package_is_left_out_of_the_zip():
    pages = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
    claims = [
        (page.name, name)
        for page in pages
        for sentence in re.split(r"(?<=[.;:])\s", page.read_text())
        if NOT_SHIPPED.search(sentence)
        for name in re.findall(r"`spark_app[/.](\w+)", sentence)
    ]
    assert [(page, name) for page, name in claims if name in zipped_subpackages()] == []
