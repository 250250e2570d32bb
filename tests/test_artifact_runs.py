"""The shipped artifacts alone run the job: spark-submit on local-cluster with --py-files spark_app.zip.

The zip is built, then process_data.py and a config are copied to a folder from which the
source tree is not importable, so every import of spark_app and pipelines - on the driver
and in the executor processes local-cluster starts - must come from the zip, as on EMR.

The hand-made day, 2026-11-19 (4 product views, 1 add_to_cart), and the catalog
{(1, sku-1), (2, sku-9)} give, by hand:
  product_views:          (1, sku-1, 2, true) (1, sku-2, 1, false) (2, sku-9, 1, true)
  advertiser_match_rates: adv 1: 2 products, 1 matched, 3 views, 2 matched, 2/3
                          adv 2: 1 product,  1 matched, 1 view,  1 matched, 1.0
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import psycopg2
import pytest
import yaml

from spark_app.emr.packaging import build
from tests.support.paths import ROOT

DAY = "2026-11-19"

pytestmark = pytest.mark.cluster


def _event(event_id, adv, product, ts, event_type="product_view"):
    event = {"event_id": event_id, "event_type": event_type, "ts": ts}
    return json.dumps({**event, "advertiser_id": adv, "product_id": product})


LINES = [
    _event("a1", 1, "sku-1", "2026-11-19T08:00:00Z"),
    _event("a2", 1, "sku-1", "2026-11-19T09:00:00Z"),
    _event("a3", 1, "sku-2", "2026-11-19T10:00:00Z"),
    _event("a4", 2, "sku-9", "2026-11-19T11:00:00Z"),
    _event("a5", 2, "sku-9", "2026-11-19T12:00:00Z", event_type="add_to_cart"),
]


def _spark_submit() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent / "bin" / "spark-submit"


@pytest.fixture()
def shipped(tmp_path, pg_url, moto_server, dynamodb, catalog_table):
    if not (ROOT / "process_data.py").exists() or not (ROOT / "pipelines" / "__init__.py").exists():
        pytest.skip("the pipeline (process_data.py, pipelines/) is not written yet")
    events = tmp_path / "events" / f"dt={DAY}"
    events.mkdir(parents=True)
    (events / "part-00000.json").write_text("\n".join(LINES) + "\n")
    for adv, product in [(1, "sku-1"), (2, "sku-9")]:
        dynamodb.put_item(
            TableName=catalog_table, Item={"advertiser_id": {"N": str(adv)}, "product_id": {"S": product}}
        )
    conf = {
        "spark": {"conf": {"spark.sql.shuffle.partitions": "2"}},
        "events": {"path": str(tmp_path / "events"), "quarantine_path": str(tmp_path / "quarantine")},
        "dynamodb": {"table": catalog_table, "region": "us-east-1", "endpoint_url": moto_server.endpoint_url},
        "postgres": {"url": pg_url},
    }
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "job.yaml").write_text(yaml.safe_dump(conf))
    release = build(ROOT, run_dir / "job.yaml")
    release.write(tmp_path / "dist")
    shutil.copy(tmp_path / "dist" / "process_data.py", run_dir / "process_data.py")
    return run_dir, tmp_path / "dist" / "spark_app.zip"


def _interesting(log: str) -> str:
    """The lines that explain a failure, not Spark's INFO chatter."""
    keep = [ln for ln in log.splitlines() if " INFO " not in ln and " WARN " not in ln]
    return "\n".join(keep)[-6000:]


def _fetch(pg_url, sql):
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_job_runs_from_the_zip_on_local_cluster(shipped, pg_url):
    run_dir, zip_path = shipped
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARK_HOME")}
    env.update({"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
                "SPARK_LOCAL_IP": "127.0.0.1"})
    probe = subprocess.run(
        [sys.executable, "-c", "import spark_app"], cwd=run_dir, env=env, stderr=subprocess.DEVNULL
    )
    assert probe.returncode != 0, "the source tree must not be importable from the run folder"

    cmd = [
        str(_spark_submit()),
        "--master", "local-cluster[2,1,1024]",
        "--conf", "spark.ui.enabled=false",
        "--py-files", str(zip_path),
        "process_data.py", "--pipeline", "catalog_match_rate", "--date", DAY, "--conf", "job.yaml",
    ]
    res = subprocess.run(cmd, cwd=run_dir, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, _interesting(res.stdout + res.stderr)

    detail = _fetch(pg_url, "SELECT day, advertiser_id, product_id, view_count, matched FROM product_views "
                            "ORDER BY advertiser_id, product_id")
    assert detail == [
        (date(2026, 11, 19), 1, "sku-1", 2, True),
        (date(2026, 11, 19), 1, "sku-2", 1, False),
        (date(2026, 11, 19), 2, "sku-9", 1, True),
    ]
    rates = _fetch(
        pg_url,
        "SELECT advertiser_id, total_products, matched_products, total_views, matched_views, match_rate "
        "FROM advertiser_match_rates ORDER BY advertiser_id",
    )
    assert [r[:5] for r in rates] == [(1, 2, 1, 3, 2), (2, 1, 1, 1, 1)]
    assert [r[5] for r in rates] == pytest.approx([2 / 3, 1.0])
