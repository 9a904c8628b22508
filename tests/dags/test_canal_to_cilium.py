"""kkp_cni_canal_to_cilium end to end against the lab, gates answered as a person would."""

from __future__ import annotations

import pytest

from tests.airflow_support import all_xcom_text, run_conf, run_dag, xcom


def include_bare_pods(task_id, subject, body, options):
    """Approve every gate, ticking "include pods without a controller" at the restart gate."""
    return options[0], ({"include_without_controller": True} if task_id.endswith("approve_pod_restart") else {})
from tests.lab_state import cni_state

DAG = "kkp_cni_canal_to_cilium"


@pytest.mark.parametrize("access", ["seed", "api"])
def test_migrates_a_canal_cluster_and_loses_nothing(airflow_db, lab_connections, access, capfd):
    user = lab_connections.clusters["webshop-canal-iptables"]
    before = cni_state(lab_connections.lab, user)
    assert before.cluster_cni == "canal" and before.bare_pods

    state, tasks, answers, run_id = run_dag(DAG, run_conf(user, access), include_bare_pods)

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
    secrets = [lab_connections.token, user.api.admin_token, lab_connections.lab.seed.admin_token]
    printed = capfd.readouterr()
    for secret in secrets:
        assert secret not in all_xcom_text(DAG, run_id), "a credential reached XCom"
        assert secret not in printed.out + printed.err, "a credential reached the task logs"


def test_the_runbooks_starting_point_with_proxy_mode_and_machine_restart(airflow_db, lab_connections):
    """Canal in ipvs mode without Konnectivity: step 5 leaves ipvs for iptables, step 6 rolls every machine."""
    lab = lab_connections.lab
    user = lab_connections.clusters["payments-canal-ipvs"]
    before = cni_state(lab, user)
    nodes_before = lab.call(lambda: {n["metadata"]["name"] for n in user.store.items(user.store.rtype("", "nodes"))})

    conf = {**run_conf(user, "seed"), "proxy_mode_after": "iptables", "restart_machine_deployments": True}
    state, tasks, answers, run_id = run_dag(DAG, conf, include_bare_pods)

    after = cni_state(lab, user, canal_version="v3.30")
    assert state == "success", tasks
    assert after.cluster_cni == "cilium" and after.unmanaged_pods == [] and after.canal_objects == []
    assert after.proxy_mode == "iptables" and after.proxy_configmap_mode == "iptables"
    assert tasks["step_5_proxy_mode.wait_kube_proxy_rolled"] == "success"
    nodes_after = lab.call(lambda: {n["metadata"]["name"] for n in user.store.items(user.store.rtype("", "nodes"))})
    assert nodes_after and not nodes_after & nodes_before, "every machine must have been replaced"
    assert after.workloads() == before.workloads()
    assert after.pdb_violations == []
    assert [a["task_id"] for a in answers][-2:] == ["step_5_proxy_mode.approve_proxy_mode",
                                                   "step_6_restart_machines.approve_machine_restart"]
