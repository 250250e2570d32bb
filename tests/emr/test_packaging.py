"""Packaging: reproducible artifacts, a content-hash version, uploads that skip unchanged bytes."""

from __future__ import annotations

import io
import json
import os
import uuid
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest

from spark_app.emr.packaging import build, build_zip, read_manifest, upload
from spark_app.errors import ConfigError
from tests.support.paths import ROOT


def _source_tree(root: Path) -> Path:
    """A minimal project: two packages (with caches and tests to leave out) and the shipped files."""
    files = {
        "spark_app/__init__.py": "",
        "spark_app/a.py": "A = 1\n",
        "spark_app/sub/__init__.py": "",
        "spark_app/sub/b.py": "B = 2\n",
        "spark_app/sub/deeper/__init__.py": "",
        "spark_app/deploy_side/__init__.py": "",
        "spark_app/deploy_side/c.py": "C = 3\n",
        "spark_app/__pycache__/a.cpython-311.pyc": "junk",
        "spark_app/a.pyc": "junk",
        "spark_app/test_a.py": "def test(): pass\n",
        "pipelines/__init__.py": "",
        "pipelines/job.py": "JOB = 'x'\n",
        "pipelines/tests/test_job.py": "",
        "pipelines/.hidden/x.py": "",
        "process_data.py": "print('run')\n",
        "requirements/node.lock": "pyyaml==6.0.2\n",
        "bootstrap/setup.sh": "#!/usr/bin/env bash\n",
        "conf/emr.yaml": "emr: {}\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


SHIPPED = {"spark_app": ("sub",), "pipelines": ()}


def test_zip_holds_the_allow_listed_sources_only(tmp_path):
    names = zipfile.ZipFile(io.BytesIO(build_zip(_source_tree(tmp_path), SHIPPED))).namelist()
    assert names == [
        "pipelines/__init__.py",
        "pipelines/job.py",
        "spark_app/__init__.py",
        "spark_app/a.py",
        "spark_app/sub/__init__.py",
        "spark_app/sub/b.py",
        "spark_app/sub/deeper/__init__.py",
    ]


def test_a_subpackage_named_in_the_allow_list_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="nowhere: not a Python package"):
        build_zip(_source_tree(tmp_path), {"spark_app": ("nowhere",)})


def test_zip_entries_carry_fixed_time_and_mode(tmp_path):
    zf = zipfile.ZipFile(io.BytesIO(build_zip(_source_tree(tmp_path), SHIPPED)))
    for info in zf.infolist():
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.external_attr >> 16 == 0o100644


def test_same_sources_give_same_bytes_and_version_despite_mtimes(tmp_path):
    root = _source_tree(tmp_path / "a")
    first = build(root, "conf/emr.yaml", SHIPPED)
    for path in root.rglob("*"):
        os.utime(path, (1_900_000_000, 1_900_000_000))
    (root / "spark_app" / "a.py").chmod(0o600)
    second = build(root, "conf/emr.yaml", SHIPPED)
    assert second.version == first.version
    assert [(a.name, a.data) for a in second.artifacts] == [(a.name, a.data) for a in first.artifacts]


def test_a_changed_source_changes_the_version(tmp_path):
    root = _source_tree(tmp_path)
    before = build(root, "conf/emr.yaml", SHIPPED).version
    (root / "pipelines" / "job.py").write_text("JOB = 'y'\n")
    assert build(root, "conf/emr.yaml", SHIPPED).version != before
    assert len(before) == 12


def test_build_lists_every_artifact(tmp_path):
    b = build(_source_tree(tmp_path), "conf/emr.yaml", SHIPPED)
    assert sorted(a.name for a in b.artifacts) == [
        "emr.yaml",
        "process_data.py",
        "requirements-node.lock",
        "setup.sh",
        "spark_app.zip",
    ]
    written = b.write(tmp_path / "dist")
    assert (tmp_path / "dist" / "process_data.py").read_text() == "print('run')\n"
    assert len(written) == 5


def test_a_missing_entry_point_is_a_config_error(tmp_path):
    root = _source_tree(tmp_path)
    (root / "process_data.py").unlink()
    with pytest.raises(ConfigError, match="process_data.py: artifact not found"):
        build(root, "conf/emr.yaml", SHIPPED)


def test_real_project_zip_has_the_job_and_no_deploy_side_local_tests_or_caches():
    b = build(ROOT, "conf/emr.yaml")
    names = zipfile.ZipFile(io.BytesIO(b.by_name()["spark_app.zip"].data)).namelist()
    assert "pipelines/catalog_match_rate.py" in names and "spark_app/dynamo/lookup.py" in names
    assert "spark_app/postgres/migrations/versions/0001_match_rate_tables.py" in names
    assert [n for n in names if n.startswith(("spark_app/emr/", "spark_app/local/"))] == []
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/tests/" in n]
    assert b.by_name()["requirements-node.lock"].data == (ROOT / "requirements/node.lock").read_bytes()


@pytest.fixture()
def s3(moto_server):
    client = boto3.client("s3", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    bucket = f"art-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


def test_upload_puts_every_artifact_under_the_version_and_a_manifest(s3, tmp_path):
    client, bucket = s3
    b = build(_source_tree(tmp_path), "conf/emr.yaml", SHIPPED)
    when = datetime(2026, 11, 20, 6, 0, tzinfo=timezone.utc)
    report = upload(client, b, bucket, "cmr", now=when)
    assert sorted(report.uploaded) == sorted(a.name for a in b.artifacts) and report.skipped == []
    for a in b.artifacts:
        body = client.get_object(Bucket=bucket, Key=f"cmr/{b.version}/{a.name}")["Body"].read()
        assert body == a.data
    manifest = json.loads(client.get_object(Bucket=bucket, Key="cmr/current.json")["Body"].read())
    assert manifest["version"] == b.version
    assert manifest["uploaded_at"] == "2026-11-20T06:00:00Z"
    zip_entry = manifest["files"]["spark_app.zip"]
    assert zip_entry["key"] == f"cmr/{b.version}/spark_app.zip"
    assert zip_entry["sha256"] == b.by_name()["spark_app.zip"].sha256
    assert zip_entry["size"] == len(b.by_name()["spark_app.zip"].data)


def test_second_upload_of_the_same_build_sends_nothing(s3, tmp_path):
    client, bucket = s3
    b = build(_source_tree(tmp_path), "conf/emr.yaml", SHIPPED)
    upload(client, b, bucket, "cmr", now=datetime(2026, 11, 20, tzinfo=timezone.utc))
    again = upload(client, b, bucket, "cmr", now=datetime(2026, 11, 21, tzinfo=timezone.utc))
    assert again.uploaded == [] and len(again.skipped) == 5
    assert again.manifest_written is False
    assert read_manifest(client, bucket, "cmr")["uploaded_at"] == "2026-11-20T00:00:00Z"


def test_only_changed_bytes_are_sent_again(s3, tmp_path):
    client, bucket = s3
    b = build(_source_tree(tmp_path), "conf/emr.yaml", SHIPPED)
    upload(client, b, bucket, "cmr")
    key = f"cmr/{b.version}/setup.sh"
    client.put_object(Bucket=bucket, Key=key, Body=b"tampered", Metadata={"sha256": "0" * 64})
    report = upload(client, b, bucket, "cmr")
    assert report.uploaded == ["setup.sh"]
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"#!/usr/bin/env bash\n"


def test_manifest_is_none_before_the_first_upload(s3):
    client, bucket = s3
    assert read_manifest(client, bucket, "cmr") is None
