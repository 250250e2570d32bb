"""A lost executor does not cost the day: one is killed mid-stage, the day still publishes exactly.

What a Spot interruption does to the job on EMR: a task node goes away with its executors and the
shuffle files they wrote. Here the shipped artifacts run on local-cluster[2,1,1024] (as in
test_artifact_runs.py); DynamoDB throttles each lookup client's first requests (the job's own fault
injection), which keeps the lookup tasks running for seconds; the test asks the driver's REST API for
a running task, kills its executor's process (only a descendant of this spark-submit, of this
application), and lets Spark recover: the task and the lost map output are recomputed on a new
executor and the day is published with the numbers worked out by hand.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest
import yaml

from spark_app.local.servers import free_port
from tests.test_artifact_runs import DAY, _fetch, _interesting, _spark_submit, shipped  # noqa: F401

pytestmark = pytest.mark.cluster


def _get(port: int, path: str):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/{path}", timeout=5) as r:
            return json.load(r)
    except (OSError, ValueError):
        return None  # the UI is not up yet ("Spark is starting up"), or already gone


def _running_task_executor(port: int):
    """(application id, executor id) of a task the driver reports RUNNING, or None."""
    apps = _get(port, "applications") or []
    for app in apps:
        for stage in _get(port, f"applications/{app['id']}/stages?status=active") or []:
            path = f"applications/{app['id']}/stages/{stage['stageId']}/{stage['attemptId']}/taskList"
            for task in _get(port, f"{path}?status=RUNNING") or []:
                if task.get("executorId") not in (None, "driver"):
                    return app["id"], task["executorId"]
    return None


def _executor_process(submit: psutil.Process, app_id: str, executor_id: str):
    for proc in submit.children(recursive=True):
        try:
            args = proc.cmdline()
        except psutil.Error:
            continue
        if "--app-id" in args and app_id in args and "--executor-id" in args:
            if args[args.index("--executor-id") + 1] == executor_id:
                return proc
    return None


def test_an_executor_killed_mid_stage_does_not_cost_the_day(shipped, pg_url):  # noqa: F811
    run_dir, zip_path = shipped
    conf = yaml.safe_load((run_dir / "job.yaml").read_text())
    conf["dynamodb"].update({"faults": {"throttle_first": 12}, "max_attempts": 1,
                             "max_unprocessed_retries": 40, "backoff_base_seconds": 0.5,
                             "backoff_max_seconds": 1.0})
    (run_dir / "job.yaml").write_text(yaml.safe_dump(conf))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARK_HOME")}
    env.update({"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
                "SPARK_LOCAL_IP": "127.0.0.1"})
    port = free_port()
    cmd = [
        str(_spark_submit()), "--master", "local-cluster[2,1,1024]",
        "--conf", "spark.ui.enabled=true", "--conf", f"spark.ui.port={port}",
        "--conf", "spark.port.maxRetries=0", "--conf", "spark.ui.showConsoleProgress=false",
        "--py-files", str(zip_path),
        "process_data.py", "--pipeline", "catalog_match_rate", "--date", DAY, "--conf", "job.yaml",
    ]
    log = run_dir / "spark-submit.log"
    with log.open("w") as out:
        submit = subprocess.Popen(cmd, cwd=run_dir, env=env, stdout=out, stderr=subprocess.STDOUT)
        killed = None
        try:
            parent = psutil.Process(submit.pid)
            while killed is None and submit.poll() is None:
                found = _running_task_executor(port)  # ask the driver; nothing is running yet
                proc = _executor_process(parent, *found) if found else None
                if proc is not None:
                    proc.send_signal(signal.SIGKILL)
                    killed = found[1]
                else:
                    time.sleep(0.2)  # between two questions to the driver, not a wait for a state
            code = submit.wait(timeout=900)
        finally:
            if submit.poll() is None:
                submit.kill()
    text = log.read_text()
    assert killed is not None, "no running task was seen: the job ended before one could be killed"
    assert code == 0, _interesting(text)
    assert f"Lost executor {killed}" in text or f"Executor {killed} " in text, _interesting(text)

    detail = _fetch(pg_url, "SELECT advertiser_id, product_id, view_count, matched FROM product_views "
                            "ORDER BY advertiser_id, product_id")
    assert detail == [(1, "sku-1", 2, True), (1, "sku-2", 1, False), (2, "sku-9", 1, True)]
    rates = _fetch(pg_url, "SELECT advertiser_id, total_products, matched_products, total_views, "
                           "matched_views FROM advertiser_match_rates ORDER BY advertiser_id")
    assert rates == [(1, 2, 1, 3, 2), (2, 1, 1, 1, 1)]
