"""The two dependency archives, x86_64 and aarch64 (Graviton): the same distributions at the same versions,
every wheel and every native library built for its architecture.

Both archives are built for real from their locks (`make deps`, `make deps ARCH=aarch64`): the x86_64 one
`make test` builds; the aarch64 one this module builds when dist/ lacks it, from wheels downloaded
once into .deps-wheels-aarch64/ (about 88 MB the first time, offline afterwards). Nothing here skips.
No arm64 CPython 3.9 runs here, so the aarch64 archive's native modules are checked by their ELF
headers (machine AArch64), not imported.
"""

from __future__ import annotations

import struct
import tarfile

import pytest

from spark_app.emr import deps
from tests.support.paths import ROOT

ELF_MACHINE = {"x86_64": 62, "aarch64": 183}  # e_machine: EM_X86_64, EM_AARCH64


@pytest.fixture(scope="module")
def archives():
    """Per architecture, read in one pass: distributions, wheel tags, ELF machine of each native library."""
    return {arch: _read(deps.build_archive(ROOT, ROOT / "dist", arch=arch).path) for arch in deps.ARCHES}


def _read(archive) -> dict:
    dists, tags, machines = {}, {}, {}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts, name = member.name.split("/"), member.name.rsplit("/", 1)[-1]
            if parts[0].endswith(".dist-info"):
                dist, version = parts[0][: -len(".dist-info")].rsplit("-", 1)
                dists[deps.normalize(dist)] = version
                if parts[1:] == ["WHEEL"]:
                    text = tar.extractfile(member).read().decode()
                    tags[parts[0]] = [ln.split(":", 1)[1].strip() for ln in text.splitlines()
                                      if ln.startswith("Tag:")]
            elif member.isfile() and (name.endswith(".so") or ".so." in name):
                head = tar.extractfile(member).read(20)
                assert head[:4] == b"\x7fELF", member.name
                machines[member.name] = struct.unpack("<H", head[18:20])[0]
    return {"dists": dists, "tags": tags, "machines": machines}


def test_both_locks_pin_the_same_distributions_at_the_same_versions():
    x86 = deps.pinned(deps.read_lock(ROOT, "x86_64").decode())
    arm = deps.pinned(deps.read_lock(ROOT, "aarch64").decode())
    assert arm == x86 and len(x86) >= 25


def test_the_archives_are_named_by_lock_and_architecture():
    names = {deps.archive_name(deps.read_lock(ROOT, a), a) for a in deps.ARCHES}
    assert len(names) == 2
    x86 = deps.archive_name(deps.read_lock(ROOT, "x86_64"), "x86_64")
    assert deps.archive_name(deps.read_lock(ROOT)) == x86  # the default stays x86_64


def test_both_archives_hold_the_same_distributions_at_the_same_versions(archives):
    x86, arm = (archives[a]["dists"] for a in deps.ARCHES)
    assert x86 == arm == deps.pinned(deps.read_lock(ROOT).decode())


@pytest.mark.parametrize("arch", deps.ARCHES)
def test_every_wheel_is_for_cpython_3_9_on_its_architecture(archives, arch):
    other = next(a for a in deps.ARCHES if a != arch)
    tags = archives[arch]["tags"]
    assert len(tags) == len(deps.pinned(deps.read_lock(ROOT, arch).decode()))
    wrong = {wheel: t for wheel, t in tags.items() if not any(deps.fits_cluster(tag, arch) for tag in t)}
    assert wrong == {}
    native = {wheel for wheel, t in tags.items() if not any(tag.endswith("-any") for tag in t)}
    assert len(native) >= 8  # pyarrow, numpy, pandas, psycopg2, sqlalchemy, greenlet, pyyaml, ...
    assert not [w for w in native if any(deps.fits_cluster(tag, other) for tag in tags[w])]


@pytest.mark.parametrize("arch", deps.ARCHES)
def test_every_native_library_in_an_archive_is_built_for_its_architecture(archives, arch):
    machines = archives[arch]["machines"]
    assert len(machines) >= 50
    assert {m for m in machines.values()} == {ELF_MACHINE[arch]}


def test_the_tag_check_tells_the_architectures_apart():
    assert deps.fits_cluster("cp39-cp39-manylinux_2_17_aarch64.manylinux2014_aarch64", "aarch64")
    assert not deps.fits_cluster("cp39-cp39-manylinux_2_17_aarch64.manylinux2014_aarch64")
    assert not deps.fits_cluster("cp39-cp39-manylinux2014_x86_64", "aarch64")
    assert deps.fits_cluster("py3-none-any", "aarch64")
