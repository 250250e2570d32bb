"""Which Deequ build the driver JVM loaded, and whether it is the one pydeequ expects for this Spark.

Runs on the driver, once at the start of a run (after the session starts, before any data is
read). The jar is found from where the JVM loaded `com.amazon.deequ.VerificationSuite` (its code
source); its build is read from the jar's `META-INF/maven/.../pom.properties`, else from its file
name (`deequ-2.0.7-spark-3.5.jar`). pydeequ names the build it expects per Spark line
(`pydeequ.configs.SPARK_TO_DEEQU_COORD_MAPPING`); requirements/pom.xml fetches that build.
A mismatch is a ConfigError naming the jar and the Spark version, never a Py4J error later.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import unquote, urlparse

from spark_app.errors import ConfigError

SUITE_CLASS = "com.amazon.deequ.VerificationSuite"
POM_PROPERTIES = "META-INF/maven/com.amazon.deequ/deequ/pom.properties"
_NAME_VERSION = re.compile(r"(\d+\.\d+\.\d+(?:-spark-\d+\.\d+)?)\.jar$")


@dataclass(frozen=True)
class DeequBuild:
    jar: str  # where the JVM loaded Deequ from (a path, or the code source URL)
    version: Optional[str]  # e.g. "2.0.7-spark-3.5"; None when neither the jar nor its name says


def spark_line(spark_version: str) -> str:
    """"3.5" of "3.5.3"."""
    return ".".join(spark_version.split(".")[:2])


def expected_version(spark_version: str) -> str:
    """The Deequ build pydeequ maps this Spark line to, e.g. "2.0.7-spark-3.5"."""
    os.environ.setdefault("SPARK_VERSION", spark_version)  # pydeequ.configs reads it at import
    from pydeequ.configs import SPARK_TO_DEEQU_COORD_MAPPING

    coordinate = SPARK_TO_DEEQU_COORD_MAPPING.get(spark_line(spark_version))
    if coordinate is None:
        known = ", ".join(sorted(SPARK_TO_DEEQU_COORD_MAPPING))
        raise ConfigError(
            f"pydeequ has no Deequ build for Spark {spark_version} (it knows Spark {known}); "
            "set quality.engine: native"
        )
    return coordinate.rsplit(":", 1)[1]


def loaded_build(spark: Any) -> Optional[DeequBuild]:
    """The Deequ build the driver JVM loads, or None when the class is not on its class path."""
    jvm = spark._jvm
    try:
        loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
        cls = jvm.java.lang.Class.forName(SUITE_CLASS, False, loader)
    except Exception:  # noqa: BLE001 - ClassNotFoundException (or a linkage error): not usable
        return None
    source = cls.getProtectionDomain().getCodeSource()
    location = str(source.getLocation().toString()) if source is not None else SUITE_CLASS
    jar = unquote(urlparse(location).path) if location.startswith("file:") else location
    return DeequBuild(jar, _version_of(jar))


def _version_of(jar: str) -> Optional[str]:
    if os.path.isfile(jar):
        try:
            with zipfile.ZipFile(jar) as zf:
                text = zf.read(POM_PROPERTIES).decode("utf-8", "replace")
        except (KeyError, OSError, zipfile.BadZipFile):
            text = ""
        for line in text.splitlines():
            if line.startswith("version="):
                return line.split("=", 1)[1].strip()
    match = _NAME_VERSION.search(os.path.basename(jar))
    return match.group(1) if match else None


def check_build(spark: Any, build: DeequBuild) -> None:
    """Raise ConfigError when `build` is not the Deequ build pydeequ expects for this Spark."""
    wanted = expected_version(spark.version)
    if build.version == wanted:
        return
    found = f"build {build.version}" if build.version else "a build that names no version"
    raise ConfigError(
        f"the Deequ jar {build.jar} is {found}, but this is Spark {spark.version}: pydeequ expects "
        f"deequ-{wanted}.jar (requirements/pom.xml; `make jars`, or emr.deequ_jar on EMR); "
        "put that jar on the class path instead, or set quality.engine: native"
    )


def missing_jar_message(spark: Any) -> str:
    wanted = expected_version(spark.version)
    return (
        f"quality.engine is 'deequ' but no Deequ jar is on the driver class path ({SUITE_CLASS} does "
        f"not load) of this Spark {spark.version}: expected deequ-{wanted}.jar. Locally run `make jars`; "
        "on EMR ship the Deequ jar with --jars (deploy.py upload does, or emr.deequ_jar); "
        "or set quality.engine: native"
    )
