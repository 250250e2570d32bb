"""`process_data.py quality` and `suggest` as a user types them, on a small real day.

The day (2026-11-19): advertiser 1 viewed sku-0 .. sku-49, advertiser 2 sku-49 .. sku-98 (so
sku-49 belongs to both: 100 rows, 99 distinct product ids), advertiser 3 three products; the
catalog holds the even skus. Real Spark (local), moto's DynamoDB over HTTP, the project's
PostgreSQL, the Deequ jar; the commands run as child processes with their output in pipes.

- `suggest` prints constraints that, pasted under `quality.checks` and loaded by the real config
  loader, pass the gate on the same day (uniqueness only where it holds: the key, not product_id);
- `quality` judges the day as a run does, with the history stored in PostgreSQL, and writes
  nothing: a shrunk day exits 4 like the run, and no table changes;
- what a person reads is on the terminal, the rest (Spark's log, pydeequ's prints, Python
  warnings, the extract's count dict) in the log file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta

import psycopg2
import pytest
import yaml

from spark_app.config import load_config
from tests.support.paths import ROOT

DAY = "2026-11-19"
PRODUCTS = {1: [f"sku-{i}" for i in range(50)], 2: [f"sku-{i}" for i in range(49, 99)], 3: ["a", "b", "c"]}
# Printed by pydeequ, pyspark, the extract, Spark's console progress bar, Janino and Deequ's profiler:
NOISE = [
    "Python Callback server",
    "PythonCallback server restarted!",
    "DataFrame constructor is internal",
    "{'rejected_malformed_json'",
    "[Stage ",
    "CodeGenerator",
    "CompileException",
    "Unable to map type",
    "Setting default log level",
    "NativeCodeLoader",
]


def view(n: int, adv: int, product: str, ts: str) -> str:
    return json.dumps({"event_id": f"e{n}", "event_type": "product_view", "ts": ts,
                       "advertiser_id": adv, "product_id": product})


@pytest.fixture(scope="module")
def day(tmp_path_factory, pg_url, moto_server):
    """The day's files, its catalog in DynamoDB, and a config like conf/local.yaml's."""
    import boto3

    from spark_app.dynamo.catalog import create_catalog_table

    tmp = tmp_path_factory.mktemp("commands")
    lines, n = [], 0
    for adv, products in PRODUCTS.items():
        for i, product in enumerate(products):
            for _ in range(1 + i % 3):  # 1 to 3 views each
                n += 1
                lines.append(view(n, adv, product, f"{DAY}T{n % 24:02d}:00:00Z"))
    (tmp / "events" / f"dt={DAY}").mkdir(parents=True)
    (tmp / "events" / f"dt={DAY}" / "part-00000.json").write_text("\n".join(lines) + "\n")
    (tmp / "events" / "dt=2026-11-20").mkdir()
    late = tmp / "events" / "dt=2026-11-20" / "part-00000.json"
    late.write_text(view(0, 1, "late", "2026-11-20T01:00:00Z") + "\n")
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    table = "commands_catalog"
    create_catalog_table(dynamodb, table)
    for adv, products in PRODUCTS.items():
        for product in products[::2]:
            item = {"advertiser_id": {"N": str(adv)}, "product_id": {"S": product}}
            dynamodb.put_item(TableName=table, Item=item)
    conf = {
        "spark": {"master": "local[2]",
                  "conf": {"spark.sql.shuffle.partitions": "2", "spark.ui.showConsoleProgress": "true"}},
        "events": {"path": str(tmp / "events"), "quarantine_path": str(tmp / "quarantine")},
        "dynamodb": {"table": table, "region": "us-east-1", "endpoint_url": moto_server.endpoint_url},
        "postgres": {"url": pg_url},
    }
    yield tmp, conf
    dynamodb.delete_table(TableName=table)


def write_conf(path, conf):
    path.write_text(yaml.safe_dump(conf))
    return path


def command(conf_path, name, log_file):
    """process_data.py NAME on the day, output in pipes (not a terminal), as a user would type it."""
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "CATALOG_LOG_FILE": str(log_file)}
    args = [sys.executable, str(ROOT / "process_data.py"), *([name] if name != "run" else []),
            "--pipeline", "catalog_match_rate", "--conf", str(conf_path), "--date", DAY]
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def assert_quiet(result):
    """None of the noise on the terminal, in stdout or stderr."""
    for text in NOISE:
        assert text not in result.stdout and text not in result.stderr, text


def pasted_checks(stdout: str):
    """The `# as config (quality.checks)` blocks of suggest's output, merged per table."""
    checks = {}
    blocks = stdout.split("# as config (quality.checks), ")[1:]
    for block in blocks:
        yaml_text = block.split("\n", 1)[1].split("\n\n", 1)[0]
        for table, items in yaml.safe_load(yaml_text).items():
            for item in items or []:
                if item not in checks.setdefault(table, []):
                    checks[table].append(item)
    return checks


def fetch(url, sql):
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_pasted_suggestions_load_and_pass_the_gate_on_their_day_and_the_terminal_shows_only_them(
    day, pg_url
):
    tmp, conf = day
    log_file = tmp / "logs" / "suggest.log"
    suggested = command(write_conf(tmp / "job.yaml", conf), "suggest", log_file)
    assert suggested.returncode == 0, suggested.stderr[-3000:]
    assert "(Deequ's ConstraintSuggestionRunner)" in suggested.stdout  # both suggesters ran
    assert_quiet(suggested)

    checks = pasted_checks(suggested.stdout)
    views = checks["product_views"]
    assert {"check": "isUnique", "column": "product_id"} not in views  # 99 of 100 distinct: not a key
    assert {"check": "isUnique", "columns": ["day", "advertiser_id", "product_id"]} in views
    assert all("It should be" not in v for c in views for v in c.get("values", []))
    pasted = write_conf(tmp / "pasted.yaml", {**conf, "quality": {"checks": checks}})
    assert load_config(str(pasted)).quality.checks["product_views"]  # the real loader takes it

    judged = command(pasted, "quality", tmp / "logs" / "quality.log")
    assert judged.returncode == 0, judged.stdout[-3000:] + judged.stderr[-3000:]
    assert "quality gate PASSED" in judged.stdout
    assert_quiet(judged)
    assert fetch(pg_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
    kept = log_file.read_text()  # the rest is in the log file
    assert "{'rejected_malformed_json'" in kept and "Unable to map type DateType" in kept
    assert "PythonCallback server restarted!" in (tmp / "logs" / "quality.log").read_text()


def test_quality_on_a_shrunk_day_exits_4_as_the_run_does_and_writes_nothing(day, pg_url):
    from spark_app.postgres.connect import ConnectionSpec
    from spark_app.postgres.schema import upgrade_schema
    from spark_app.quality.results import Metric
    from spark_app.quality.store import save_metrics

    tmp, conf = day
    guarded = {**conf, "postgres": {**conf["postgres"], "schema": "guarded"}}
    conf_path = write_conf(tmp / "guarded.yaml", guarded)
    spec = ConnectionSpec(pg_url)
    upgrade_schema(spec, "guarded")
    for back in (3, 2, 1):  # three earlier days of about 1,000 rows and 2,000 views
        earlier = date.fromisoformat(DAY) - timedelta(days=back)
        metrics = [Metric("Dataset", "*", "Size", 1000.0 + back),
                   Metric("Column", "view_count", "Sum", 2000.0)]
        save_metrics(spec, "catalog_match_rate", "product_views", earlier, metrics, f"earlier-{back}",
                     "guarded")
    tables = "SELECT tablename FROM pg_tables WHERE schemaname = 'guarded' ORDER BY 1"
    counts = ("SELECT (SELECT count(*) FROM guarded.quality_metrics),"
              " (SELECT count(*) FROM guarded.pipeline_runs), (SELECT count(*) FROM guarded.product_views)")
    before = fetch(pg_url, tables), fetch(pg_url, counts)

    judged = command(conf_path, "quality", tmp / "logs" / "guarded-quality.log")

    assert judged.returncode == 4, judged.stdout[-3000:] + judged.stderr[-3000:]
    assert "shrink guard: Size(*) vs the 14-day median" in judged.stderr
    assert "below the median 1002 of 3 stored day(s)" in judged.stdout
    assert "quality gate FAILED" in judged.stdout
    assert (fetch(pg_url, tables), fetch(pg_url, counts)) == before  # no metrics, no run, no staging
    assert_quiet(judged)

    ran = command(conf_path, "run", tmp / "logs" / "guarded-run.log")
    assert ran.returncode == 4, ran.stderr[-3000:]
    assert "shrink guard: Size(*) vs the 14-day median" in ran.stderr
    assert "lines_read" in ran.stdout  # the run's summary
    assert_quiet(ran)
