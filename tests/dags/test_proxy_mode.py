"""kkp_proxy_mode end to end: ipvs -> iptables -> ebpf -> iptables on one cluster, and its refusals."""

from __future__ import annotations

import pytest

from tests.airflow_support import run_conf, run_dag, xcom
from tests.lab_state import client_writes, cni_state

DAG = "kkp_proxy_mode"


def add_cluster(kkp_lab, name: str, cni: str, version: str, mode: str, konnectivity: bool = True):
    from lab import scenario
    from lab.kkp import objects
    from lab.kkp.usercluster import ClusterSpec

    user = kkp_lab.kkp.add_cluster(ClusterSpec(name, cni, version, mode, konnectivity=konnectivity))
    kkp_lab.lab.call(objects.apply_all, user.store, scenario.workloads())
    scenario.wait_settled(kkp_lab.kkp)
    return user


def cilium_pods(lab, user) -> set[str]:
    def names():
        store = user.api.store
        return {p["metadata"]["name"] for p in store.items(store.rtype("", "pods"), "kube-system")
                if (p["metadata"].get("labels") or {}).get("k8s-app") == "cilium"}
    return lab.call(names)


def node_names(lab, user) -> set[str]:
    return lab.call(lambda: {n["metadata"]["name"] for n in user.store.items(user.store.rtype("", "nodes"))})


@pytest.mark.parametrize("access", ["seed", "api"])
def test_ipvs_iptables_ebpf_iptables(airflow_db, lab_connections, access):
    lab = lab_connections.lab
    user = add_cluster(lab_connections, "proxy-cilium-ipvs", "cilium", "1.19.4", "ipvs")
    workloads = cni_state(lab, user).workloads()

    nodes = node_names(lab, user)
    state, tasks, _, run_id = run_dag(DAG, run_conf(user, access, proxy_mode="iptables",
                                                    restart_machine_deployments=True))
    after = cni_state(lab, user)
    assert state == "success", tasks
    assert after.proxy_mode == "iptables" and after.proxy_configmap_mode == "iptables"
    assert tasks["step_1_3_change_proxy_mode.wait_cilium_redeployed"] == "skipped"
    assert tasks["step_1_3_change_proxy_mode.wait_kube_proxy_rolled"] == "success"
    assert node_names(lab, user) and not node_names(lab, user) & nodes, "step 4: every machine replaced"

    agents = cilium_pods(lab, user)
    state, tasks, _, _ = run_dag(DAG, run_conf(user, access, proxy_mode="ebpf"))
    after = cni_state(lab, user)
    assert state == "success", tasks
    assert after.proxy_mode == "ebpf" and after.proxy_configmap_mode is None, "kube-proxy must be gone"
    assert not agents & cilium_pods(lab, user), "every Cilium pod must have been redeployed"
    assert tasks["step_1_3_change_proxy_mode.wait_kube_proxy_configmap"] == "skipped"

    state, tasks, _, run_id = run_dag(DAG, run_conf(user, access, proxy_mode="iptables"))
    after = cni_state(lab, user)
    assert state == "success", tasks
    assert after.proxy_mode == "iptables" and after.proxy_configmap_mode == "iptables"
    assert after.cilium_ready and after.unmanaged_pods == []
    assert after.workloads() == workloads
    assert xcom(DAG, run_id, "report")["outcome"] == "completed and verified"


@pytest.mark.parametrize("name, cni, version, mode, konnectivity, says", [
    ("vpn-cilium", "cilium", "1.19.4", "iptables", False, "needs Konnectivity"),
    ("still-canal", "canal", "v3.31", "iptables", True, "works only with Cilium"),
])
def test_ebpf_is_refused_before_any_change(airflow_db, lab_connections, name, cni, version, mode, konnectivity,
                                           says):
    user = add_cluster(lab_connections, name, cni, version, mode, konnectivity)
    writes = client_writes(lab_connections.lab, lab_connections.kkp)

    state, tasks, answers, run_id = run_dag(DAG, run_conf(user, proxy_mode="ebpf"))

    assert state == "failed" and answers == []
    assert says in xcom(DAG, run_id, "preflight", key="error")
    assert client_writes(lab_connections.lab, lab_connections.kkp) == writes
    assert cni_state(lab_connections.lab, user).proxy_mode == mode


def test_same_mode_is_a_no_op(airflow_db, lab_connections):
    user = lab_connections.clusters["webshop-canal-iptables"]
    state, tasks, answers, run_id = run_dag(DAG, run_conf(user, proxy_mode="iptables"))
    assert state == "success" and answers == [] and tasks["preflight"] == "skipped"
    assert "already runs kube-proxy mode iptables" in xcom(DAG, run_id, "preflight", key="noop")
