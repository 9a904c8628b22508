"""kkp_cni_cilium_to_canal end to end, and the round trip Cilium -> Canal -> Cilium."""

from __future__ import annotations

import pytest

from tests.airflow_support import run_conf, run_dag, xcom
from tests.dags.test_canal_to_cilium import include_bare_pods
from tests.lab_state import client_writes, cni_state


@pytest.fixture
def cilium_iptables(lab_connections):
    """A Cilium cluster in iptables mode with the default workloads (the scenario's is ebpf)."""
    from lab import scenario
    from lab.kkp import objects
    from lab.kkp.usercluster import ClusterSpec

    kkp = lab_connections.kkp
    user = kkp.add_cluster(ClusterSpec("ops-cilium-iptables", "cilium", "1.19.4", "iptables"))
    kkp.lab.call(objects.apply_all, user.store, scenario.workloads())
    scenario.wait_settled(kkp)
    return user


@pytest.mark.parametrize("access", ["seed", "api"])
def test_round_trip_cilium_canal_cilium_keeps_every_workload(airflow_db, lab_connections, cilium_iptables, access):
    lab = lab_connections.lab
    before = cni_state(lab, cilium_iptables)
    assert before.cluster_cni == "cilium" and before.unmanaged_pods == []

    state, tasks, answers, run_id = run_dag("kkp_cni_cilium_to_canal",
                                            run_conf(cilium_iptables, access, canal_version="v3.31"),
                                            include_bare_pods)
    on_canal = cni_state(lab, cilium_iptables, canal_version="v3.31")
    assert state == "success", tasks
    assert on_canal.cluster_cni == "canal" and on_canal.canal_ready and not on_canal.cilium_ready
    assert on_canal.not_on_canal == [], on_canal.not_on_canal
    assert on_canal.workloads() == before.workloads()
    assert [a["task_id"] for a in answers] == ["step_1_2_switch_cni.approve_switch",
                                               "step_4_remove_cilium.approve_cilium_removal",
                                               "step_5_restart_pods.approve_pod_restart"]
    removed = xcom("kkp_cni_cilium_to_canal", run_id, "step_4_remove_cilium.delete_cilium_objects")
    assert removed["deleted"][0] == "ApplicationInstallation cilium"
    assert lab.call(lambda: [t.key for t in cilium_iptables.store.served() if t.group == "cilium.io"]) == []

    state, tasks, _, _ = run_dag("kkp_cni_canal_to_cilium", run_conf(cilium_iptables, access), include_bare_pods)
    back = cni_state(lab, cilium_iptables, canal_version="v3.31")
    assert state == "success", tasks
    assert back.cluster_cni == "cilium" and back.cilium_ready and back.unmanaged_pods == []
    assert back.canal_objects == []
    assert back.workloads() == before.workloads()
    assert back.pdb_violations == []


def test_ebpf_cluster_is_refused_before_any_change(airflow_db, lab_connections):
    user = lab_connections.clusters["analytics-cilium-ebpf"]
    writes = client_writes(lab_connections.lab, lab_connections.kkp)

    state, tasks, answers, run_id = run_dag("kkp_cni_cilium_to_canal", run_conf(user, "seed"))

    assert state == "failed" and answers == []
    assert "kube-proxy mode ebpf" in xcom("kkp_cni_cilium_to_canal", run_id, "preflight", key="error")
    assert client_writes(lab_connections.lab, lab_connections.kkp) == writes
    assert cni_state(lab_connections.lab, user).cluster_cni == "cilium"
