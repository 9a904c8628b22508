"""The maintenance window in a migration run: a run started outside its window changes nothing,
an approval that comes after the window closed does not start its step, and a fleet approval
that no fleet run gave is refused. Each ends with one sentence and the lab as it was."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from tests.airflow_support import run_conf, run_dag, xcom
from tests.lab_state import client_writes, cni_state

DAG = "kkp_cni_canal_to_cilium"
SWITCH = "step_1_2_switch_cni.label_and_switch"


def cluster_object(kkp_lab, user) -> dict:
    seed = kkp_lab.lab.seed.store
    return kkp_lab.lab.call(lambda: seed.get(seed.rtype("kubermatic.k8c.io", "clusters"), None, user.id))


def window_opening_in(minutes: int, duration: str = "1m") -> dict:
    """A daily window whose next opening is `minutes` from now (UTC, on the minute)."""
    at = datetime.now(timezone.utc) + timedelta(minutes=minutes)
    return {"cron": f"{at.minute} {at.hour} * * *", "duration": duration, "timezone": "UTC"}


def test_a_run_started_outside_its_window_changes_nothing(airflow_db, lab_connections):
    lab, user = lab_connections.lab, lab_connections.clusters["webshop-canal-iptables"]
    writes = client_writes(lab, lab_connections.kkp)

    state, tasks, answers, run_id = run_dag(DAG, run_conf(user, maintenance_window=window_opening_in(30),
                                                          outside_window="stop"))

    assert state == "failed" and answers == []
    assert tasks["maintenance_window"] == "failed" and tasks["preflight"] == "upstream_failed"
    error = xcom(DAG, run_id, "maintenance_window", key="error")
    print(error)
    assert f"Cluster {user.id}: the migration does not start, its maintenance window (cron" in error
    assert "the next one opens" in error and "outside_window=stop" in error
    assert client_writes(lab, lab_connections.kkp) == writes, "a run outside its window wrote to the lab"
    assert xcom(DAG, run_id, "report", key="report")["outcome"].startswith("FAILED at maintenance_window: Cluster")


def test_an_approval_after_the_window_closed_does_not_start_the_step(airflow_db, lab_connections):
    lab, user = lab_connections.lab, lab_connections.clusters["webshop-canal-iptables"]
    if datetime.now(timezone.utc).second > 40:        # leave the run's preflight 20 s of open window
        time.sleep(61 - datetime.now(timezone.utc).second)
    now = datetime.now(timezone.utc)
    window = {"cron": f"{now.minute} {now.hour} * * *", "duration": "1m", "timezone": "UTC"}
    closes = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    before = cluster_object(lab_connections, user)

    def late(task_id, subject, body, options):
        time.sleep(max(0.0, (closes - datetime.now(timezone.utc)).total_seconds()) + 1)
        return options[0], {}

    state, tasks, answers, run_id = run_dag(DAG, run_conf(user, maintenance_window=window, outside_window="stop"),
                                            late)

    assert tasks["maintenance_window"] == "success" and tasks["preflight"] == "success"
    assert [a["task_id"] for a in answers] == ["step_1_2_switch_cni.approve_switch"]
    assert tasks["step_1_2_switch_cni.approve_switch"] == "failed" and tasks[SWITCH] == "upstream_failed"
    error = xcom(DAG, run_id, "step_1_2_switch_cni.approve_switch", key="error")
    print(error)
    assert "the switch to Cilium does not start, its maintenance window" in error
    after = cluster_object(lab_connections, user)
    assert after["spec"] == before["spec"] and after["metadata"].get("labels") == before["metadata"].get("labels")
    assert not (after["metadata"].get("annotations") or {}), "the run's lock must be released"
    assert cni_state(lab, user).cluster_cni == "canal"
    assert state == "failed"


def test_a_fleet_approval_no_fleet_gave_is_refused(airflow_db, lab_connections):
    user = lab_connections.clusters["webshop-canal-iptables"]
    forged = {"dag_id": "kkp_fleet_rollout", "run_id": "manual__2026-11-25T00:00:00+00:00", "wave": 0}
    before = cluster_object(lab_connections, user)

    state, tasks, answers, run_id = run_dag(DAG, run_conf(user, fleet_approval=forged))

    assert state == "failed" and answers == [], "a fleet-approved gate must not ask, nor pass unchecked"
    assert tasks["step_1_2_switch_cni.approve_switch"] == "failed" and tasks[SWITCH] == "upstream_failed"
    error = xcom(DAG, run_id, "step_1_2_switch_cni.approve_switch", key="error")
    assert error.startswith(f"Cluster {user.id}: fleet_approval ") and "names no approved fleet wave" in error
    assert cluster_object(lab_connections, user)["spec"] == before["spec"]
