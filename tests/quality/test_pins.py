"""One pydeequ and one Deequ build from laptop to cluster: every place that names them agrees.

pydeequ is pinned in pyproject.toml (laptop, CI) and requirements/node.txt (EMR nodes); pydeequ maps
each Spark line to a Deequ build (pydeequ.configs); requirements/pom.xml fetches a Deequ build into
.jars/ (`make jars`); `deploy.py upload` puts that jar beside the release and the EMR step ships it
with --jars. A change to any one of them without the others fails here.
"""

from __future__ import annotations

import re
import zipfile
from importlib.metadata import version

import pytest

from spark_app.config import config_from_mapping
from spark_app.emr.launch import deequ_jar, spark_submit_step
from spark_app.emr.packaging import deequ_jar_artifact
from spark_app.jvm import deequ_jar_name, jar_for, pom_property
from spark_app.quality.deequ_jar import POM_PROPERTIES, expected_version
from tests.support.paths import ROOT

EMR_SPARK = "3.5.2"  # EMR 7.x (launch.SPARK_MAJOR_MINOR)


def pinned(path, package="pydeequ"):
    text = (ROOT / path).read_text()
    found = re.findall(rf'^\s*"?{package}==([^"\s,;#]+)', text, flags=re.M)
    assert len(found) == 1, f"{path}: expected one {package}== pin, found {found}"
    return found[0]


def test_pydeequ_is_one_version_in_pyproject_node_requirements_and_this_venv():
    ours = pinned("pyproject.toml")
    assert pinned("requirements/node.txt") == ours
    assert version("pydeequ") == ours  # importlib.metadata: pydeequ 1.4.0's __version__ says 1.2.0


def test_the_pom_fetches_the_deequ_build_pydeequ_expects_for_this_spark_and_emrs(spark):
    from spark_app.emr.launch import SPARK_MAJOR_MINOR

    built = pom_property("deequ.version")
    assert expected_version(spark.version) == built
    assert expected_version(EMR_SPARK) == built and EMR_SPARK.startswith(SPARK_MAJOR_MINOR)
    assert built.endswith(f"-spark-{SPARK_MAJOR_MINOR}")


def test_the_fetched_jar_is_that_build():
    jar = jar_for("deequ-")
    assert jar is not None, "no Deequ jar in .jars/: run `make jars`"
    assert jar.endswith(deequ_jar_name())
    with zipfile.ZipFile(jar) as zf:
        props = zf.read(POM_PROPERTIES).decode()
    assert f"version={pom_property('deequ.version')}" in props.splitlines()


def test_deploy_uploads_that_jar_and_the_step_ships_it_with_jars():
    cfg = config_from_mapping(
        {
            "dynamodb": {"table": "c", "region": "us-east-1"},
            "postgres": {"url": "postgresql://etl@h/db"},
            "events": {"path": "s3://b/e"},
            "emr": {"bucket": "art", "prefix": "cmr"},
        }
    )
    artifact = deequ_jar_artifact(ROOT)
    assert artifact.name == deequ_jar_name()
    assert artifact.data == open(jar_for("deequ-"), "rb").read()
    shipped = deequ_jar(cfg, "v1")
    assert shipped == f"s3://art/cmr/v1/{artifact.name}"
    args = spark_submit_step(cfg, "v1", ["--x"], "emr.yaml", "n")["HadoopJarStep"]["Args"]
    assert args[args.index("--jars") + 1] == shipped


@pytest.mark.parametrize("spark_version", ["3.4.1", "4.0.0"])
def test_a_spark_line_pydeequ_has_no_build_for_is_a_config_error(spark_version):
    from spark_app.errors import ConfigError

    with pytest.raises(ConfigError, match=f"pydeequ has no Deequ build for Spark {spark_version}"):
        expected_version(spark_version)
