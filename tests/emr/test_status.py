"""`wait` follows step and cluster states until the step is done, printing each transition.

moto's EMR steps never change state by themselves, and a moto server in another process
exposes no way to move them. So these tests - only these - run moto in-process
(`moto.mock_aws`) and move the step and cluster through their states from the `sleep`
callback `wait` calls between polls, exactly as EMR would between two polls.
"""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emr.models import emr_backends

from spark_app.emr.launch import status, wait


@pytest.fixture()
def cluster():
    with mock_aws():
        client = boto3.client("emr", region_name="us-east-1")
        cluster_id = client.run_job_flow(
            Name="t",
            ReleaseLabel="emr-7.5.0",
            ServiceRole="EMR_DefaultRole",
            JobFlowRole="EMR_EC2_DefaultRole",
            Instances={"MasterInstanceType": "m5.xlarge", "KeepJobFlowAliveWhenNoSteps": False},
            Steps=[{"Name": "s", "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["true"]}}],
        )["JobFlowId"]
        step_id = client.list_steps(ClusterId=cluster_id)["Steps"][0]["Id"]
        fake = emr_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].clusters[cluster_id]
        yield client, cluster_id, step_id, fake


def _script(fake, states):
    """A `sleep` that applies the next (cluster state, step state, reason) each time it is called."""
    pending = list(states)
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        cluster_state, step_state, reason = pending.pop(0)
        fake.state = cluster_state
        fake.steps[0].state = step_state
        if reason:
            fake.steps[0].last_state_change_reason = reason

    return sleep, sleeps


def test_wait_prints_each_transition_once_and_stops_at_completed(cluster):
    client, cluster_id, step_id, fake = cluster
    fake.state, fake.steps[0].state = "STARTING", "PENDING"
    sleep, sleeps = _script(
        fake,
        [
            ("BOOTSTRAPPING", "PENDING", None),
            ("BOOTSTRAPPING", "PENDING", None),
            ("RUNNING", "RUNNING", None),
            ("RUNNING", "RUNNING", None),
            ("TERMINATING", "COMPLETED", None),
        ],
    )
    seen = []
    final = wait(
        client, cluster_id, step_id, poll_seconds=10, max_poll_seconds=20, echo=seen.append, sleep=sleep
    )
    assert seen == [
        f"cluster {cluster_id} STARTING step {step_id} PENDING",
        f"cluster {cluster_id} BOOTSTRAPPING step {step_id} PENDING",
        f"cluster {cluster_id} RUNNING step {step_id} RUNNING",
        f"cluster {cluster_id} TERMINATING step {step_id} COMPLETED",
    ]
    assert final.ok and final.step_state == "COMPLETED"
    assert sleeps == [10, 15, 20, 20, 20]  # grows by half up to the cap


def test_wait_stops_at_a_failed_step_and_keeps_emrs_reason(cluster):
    client, cluster_id, step_id, fake = cluster
    fake.state, fake.steps[0].state = "RUNNING", "RUNNING"
    sleep, _ = _script(fake, [("TERMINATING", "FAILED", "Step failed with exitCode 1")])
    seen = []
    final = wait(client, cluster_id, step_id, poll_seconds=1, echo=seen.append, sleep=sleep)
    assert not final.ok and final.step_state == "FAILED"
    assert final.reason == "Step failed with exitCode 1"
    assert seen[-1].endswith("FAILED: Step failed with exitCode 1")


def test_wait_stops_when_the_cluster_dies_before_the_step_runs(cluster):
    client, cluster_id, step_id, fake = cluster
    fake.state, fake.steps[0].state = "BOOTSTRAPPING", "PENDING"
    sleep, _ = _script(fake, [("TERMINATED_WITH_ERRORS", "PENDING", None)])
    final = wait(client, cluster_id, step_id, poll_seconds=1, echo=lambda _: None, sleep=sleep)
    assert final.cluster_state == "TERMINATED_WITH_ERRORS" and not final.ok


def test_wait_gives_up_after_the_timeout_with_the_last_state(cluster):
    client, cluster_id, step_id, fake = cluster
    fake.state, fake.steps[0].state = "RUNNING", "RUNNING"
    sleep, sleeps = _script(fake, [("RUNNING", "RUNNING", None)] * 10)
    final = wait(
        client, cluster_id, step_id, poll_seconds=10, timeout_seconds=30, echo=lambda _: None, sleep=sleep
    )
    assert final.step_state == "RUNNING" and not final.done
    assert sleeps == [10, 15, 22.5]


def test_status_without_a_step_reports_the_cluster(cluster):
    client, cluster_id, _, fake = cluster
    fake.state = "TERMINATED"
    s = status(client, cluster_id)
    assert (s.cluster_state, s.step_id, s.ok, s.done) == ("TERMINATED", None, True, True)
