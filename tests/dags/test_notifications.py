"""Notifications: a migration run announces a waiting approval, a failed step and its end, naming
the cluster, to the log and to the notifiers the deployment configured (kkp_migration.airflow.notify)."""

from __future__ import annotations

import pytest

from kkp_migration.airflow.notify import APPROVAL, FAILED, FINISHED
from tests.airflow_support import run_conf, run_dag
from tests.dags import recording_notifiers

DAG = "kkp_cni_canal_to_cilium"


@pytest.fixture
def notifiers(monkeypatch):
    """The recording notifiers plugged in through the setting, as AIRFLOW__KKP_MIGRATION__NOTIFIERS."""
    monkeypatch.setenv("AIRFLOW__KKP_MIGRATION__NOTIFIERS", recording_notifiers.SETTING)
    recording_notifiers.EVENTS.clear()
    recording_notifiers.TEXTS.clear()
    return recording_notifiers


def stop_here(task_id, subject, body, options):
    return options[-1], {}


def test_an_approval_request_and_the_end_of_the_run_are_announced(airflow_db, lab_connections, notifiers, caplog):
    user = lab_connections.clusters["webshop-canal-iptables"]

    state, tasks, answers, run_id = run_dag(DAG, run_conf(user), stop_here)

    assert state == "success" and [a["task_id"] for a in answers] == ["step_1_2_switch_cni.approve_switch"]
    events = [(e["event"], e["cluster_id"], e["task_id"]) for e in notifiers.EVENTS]
    assert events == [(APPROVAL, user.id, "step_1_2_switch_cni.approve_switch"), (FINISHED, user.id, "report")]
    approval, finished = notifiers.EVENTS
    assert approval["text"] == f"Cluster {user.id} waits for approval: {answers[0]['subject']}"
    assert finished["text"].startswith(f"Cluster {user.id}: {DAG} finished: STOPPED at "
                                       "step_1_2_switch_cni.approve_switch by test-approver")
    assert all(e["run_id"] == run_id and e["dag_id"] == DAG for e in notifiers.EVENTS)
    assert notifiers.TEXTS == [f"{APPROVAL}: {user.id}", f"{FINISHED}: {user.id}"], "a template was rendered once"
    assert f"kkp-migration {APPROVAL}: Cluster {user.id} waits for approval" in caplog.text, "the default: a log line"


def test_a_failed_step_is_announced_with_its_sentence(airflow_db, lab_connections, notifiers):
    user = lab_connections.clusters["webshop-canal-iptables"]

    state, tasks, answers, run_id = run_dag(DAG, run_conf(user, project_id="wrongproj1"))

    assert state == "failed" and tasks["preflight"] == "failed" and answers == []
    failed = {e["task_id"]: e for e in notifiers.EVENTS if e["event"] == FAILED}
    assert set(failed) == {"preflight", "report"} and len(notifiers.EVENTS) == 2, notifiers.EVENTS
    assert failed["preflight"]["cluster_id"] == user.id
    assert failed["preflight"]["text"].startswith(f"Cluster {user.id}: preflight failed: ")
    assert "belongs to project" in failed["preflight"]["text"]
    assert "FAILED at preflight" in failed["report"]["text"]
