"""kkp_cni_canal_to_cilium end to end against the lab, gates answered as a person would."""

from __future__ import annotations

import pytest

from tests.airflow_support import run_dag, xcom


def include_bare_pods(task_id, subject, body, options):
    """Approve every gate, ticking "include pods without a controller" at the restart gate."""
    return options[0], ({"include_without_controller": True} if task_id.endswith("approve_pod_restart") else {})
from tests.lab_state import cni_state

DAG = "kkp_cni_canal_to_cilium"


def _conf(user, access: str, **extra) -> dict:
    conf = {"cluster_id": user.id, "access": access, "restart_machine_deployments": False, **extra}
    if access == "api":
        conf["project_id"] = user.project_id
    return conf


@pytest.mark.parametrize("access", ["seed", "api"])
def test_migrates_a_canal_cluster_and_loses_nothing(airflow_db, lab_connections, access):
    user = lab_connections.clusters["webshop-canal-iptables"]
    before = cni_state(lab_connections.lab, user)
    assert before.cluster_cni == "canal" and before.bare_pods

    state, tasks, answers, run_id = run_dag(DAG, _conf(user, access), include_bare_pods)

    after = cni_state(lab_connections.lab, user)
    assert state == "success", tasks
    assert after.cluster_cni == "cilium"
    assert after.cilium_ready
    assert after.unmanaged_pods == [], after.unmanaged_pods
    assert after.canal_objects == [], after.canal_objects
    assert set(before.bare_pods) <= set(after.pod_names), "a pod without a controller was lost"
    assert after.pdb_violations == []
    assert [a["task_id"] for a in answers] == ["step_1_2_switch_cni.approve_switch",
                                               "step_3_restart_pods.approve_pod_restart",
                                               "step_4_remove_canal.approve_canal_removal"]
    report = xcom(DAG, run_id, "report")
    assert report["outcome"] == "completed and verified"
