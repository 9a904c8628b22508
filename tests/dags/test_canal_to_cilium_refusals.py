"""kkp_cni_canal_to_cilium when it must not go on: a person says stop, Cilium never gets ready,
or the input is wrong. Each case ends with a plain explanation and the lab as it should be."""

from __future__ import annotations

import json

import pytest

from kkp_migration.kkp import MIGRATION_LABEL
from kkp_migration.lock import LOCK
from tests import figures
from tests.airflow_support import run_dag, xcom
from tests.lab_state import client_writes, cni_state

DAG = "kkp_cni_canal_to_cilium"


def stop_at(gate: str):
    def decide(task_id, subject, body, options):
        return (options[-1] if task_id.endswith(gate) else options[0]), {}
    return decide


def conf(user, **extra) -> dict:
    return {"cluster_id": user.id, "access": "seed", "restart_machine_deployments": False, **extra}


def cluster_object(kkp_lab, user) -> dict:
    seed = kkp_lab.lab.seed.store
    return kkp_lab.lab.call(lambda: seed.get(seed.rtype("kubermatic.k8c.io", "clusters"), None, user.id))


def test_stop_at_the_first_gate_changes_nothing(airflow_db, lab_connections):
    user = lab_connections.clusters["webshop-canal-iptables"]
    before = cluster_object(lab_connections, user)
    user_writes = lab_connections.lab.call(lambda: sum(
        n for (verb, _), n in user.api.requests.items() if verb not in ("get", "list", "watch")))

    state, tasks, answers, run_id = run_dag(DAG, conf(user), stop_at("approve_switch"))

    after_obj = cluster_object(lab_connections, user)
    assert after_obj["spec"] == before["spec"] and after_obj["metadata"].get("labels") == \
        before["metadata"].get("labels")
    assert not (after_obj["metadata"].get("annotations") or {}), "the run's lock must be released"
    assert lab_connections.lab.call(lambda: sum(
        n for (verb, _), n in user.api.requests.items() if verb not in ("get", "list", "watch"))) == user_writes
    after = cni_state(lab_connections.lab, user)
    assert after.cluster_cni == "canal" and after.canal_ready and not after.cilium_ready
    report = xcom(DAG, run_id, "report")
    assert report["outcome"].startswith("STOPPED at step_1_2_switch_cni.approve_switch by test-approver")
    assert tasks["step_1_2_switch_cni.label_and_switch"] == "skipped"
    assert state == "success"


def test_ipvs_with_cilium_is_a_warning_on_the_switch_gate(airflow_db, lab_connections):
    """The runbook's starting point without a proxy-mode change: allowed, but the approver is told
    about KKP's known issue before switching."""
    from kkp_migration.checks import IPVS_WARNING

    user = lab_connections.clusters["payments-canal-ipvs"]
    state, _, answers, run_id = run_dag(DAG, conf(user), stop_at("approve_switch"))

    assert state == "success" and [a["task_id"] for a in answers] == ["step_1_2_switch_cni.approve_switch"]
    assert {"level": "warning", "message": IPVS_WARNING} in xcom(DAG, run_id, "preflight")["findings"]
    assert f"- warning: {IPVS_WARNING}" in answers[0]["body"]
    assert cni_state(lab_connections.lab, user).cluster_cni == "canal"


def test_stop_after_the_switch_fails_the_run_with_the_rollback_conf(airflow_db, lab_connections):
    user = lab_connections.clusters["webshop-canal-iptables"]
    before = cni_state(lab_connections.lab, user)

    state, tasks, _, run_id = run_dag(DAG, conf(user), stop_at("approve_pod_restart"))

    after = cni_state(lab_connections.lab, user)
    assert state == "failed"
    assert after.cluster_cni == "cilium" and after.canal_ready, "Canal must still run: nothing was removed"
    assert set(before.pod_names) <= set(after.pod_names), "no pod may have been restarted"
    assert tasks["step_3_restart_pods.restart"] == "skipped"
    report = xcom(DAG, run_id, "report", key="report")
    holder = f"{DAG}/{run_id}"
    assert report["rollback"] == {"dag_id": "kkp_cni_cilium_to_canal",
                                  "conf": {"cluster_id": user.id, "access": "seed", "canal_version": "v3.31",
                                           "take_over_lock_from": holder}}
    assert "kkp_cni_cilium_to_canal" in report["markdown"]
    assert holder in cluster_object(lab_connections, user)["metadata"]["annotations"][LOCK], \
        "a half-way cluster stays locked by its run"

    # The rollback conf from the report takes the cluster back, taking the lock over.
    state, tasks, _, back_id = run_dag("kkp_cni_cilium_to_canal", report["rollback"]["conf"])
    assert state == "success", tasks
    back = cni_state(lab_connections.lab, user)
    assert back.cluster_cni == "canal" and back.canal_ready and not back.cilium_ready
    assert not (cluster_object(lab_connections, user)["metadata"].get("annotations") or {})


def test_a_half_way_cluster_is_refused_then_resumed_not_taken_for_done(airflow_db, lab_connections):
    """Stopped after the switch, the Cluster says Cilium while Canal still runs: a new run must not
    call that "nothing to do". It is refused while the first run holds the lock, and taking the
    lock over resumes the migration from the Canal version the lock recorded."""
    user = lab_connections.clusters["webshop-canal-iptables"]
    state, _, _, first_id = run_dag(DAG, conf(user), stop_at("approve_pod_restart"))
    assert state == "failed" and cni_state(lab_connections.lab, user).canal_ready

    state, tasks, answers, refused_id = run_dag(DAG, conf(user))
    assert state == "failed" and answers == [] and tasks["preflight"] == "failed"
    assert f"held by run {DAG}/{first_id}" in xcom(DAG, refused_id, "preflight", key="error")

    state, tasks, _, resumed_id = run_dag(DAG, conf(user, take_over_lock_from=f"{DAG}/{first_id}"))
    assert state == "success", tasks
    assert xcom(DAG, resumed_id, "preflight")["original"]["cni_version"] == "v3.31"
    after = cni_state(lab_connections.lab, user)
    assert after.cilium_ready and after.canal_objects == []
    assert after.unmanaged_pods == ["default/debug-shell"], "only the pod without a controller, left alone by default"
    assert LOCK not in (cluster_object(lab_connections, user)["metadata"].get("annotations") or {})


def test_a_second_run_on_a_locked_cluster_is_refused_naming_the_holder(airflow_db, lab_connections):
    user = lab_connections.clusters["webshop-canal-iptables"]
    seed = lab_connections.lab.seed.store
    lab_connections.lab.call(lambda: seed.mutate(
        seed.rtype("kubermatic.k8c.io", "clusters"), None, user.id,
        lambda c: c["metadata"].setdefault("annotations", {}).__setitem__(
            LOCK, '{"run": "kkp_proxy_mode/manual__x", "since": "2026-11-25T10:00:00Z"}')))

    state, tasks, answers, run_id = run_dag(DAG, conf(user))

    assert state == "failed" and answers == []
    error = xcom(DAG, run_id, "preflight", key="error")
    assert "held by run kkp_proxy_mode/manual__x" in error and "take_over_lock_from" in error
    assert cni_state(lab_connections.lab, user).cluster_cni == "canal"


def test_cilium_that_never_gets_ready_times_out_saying_what_is_missing(airflow_db, lab_connections):
    user = lab_connections.clusters["webshop-canal-iptables"]
    lab_connections.lab.call(lambda: user.api.faults.update(cni_never_ready=True))

    before = cni_state(lab_connections.lab, user)
    state, tasks, _, run_id = run_dag(DAG, conf(user, cni_ready_timeout_minutes=0.05))

    report = xcom(DAG, run_id, "report", key="report")
    after = cni_state(lab_connections.lab, user)
    figures.fault(f"{DAG} Cilium never ready", injected=1, as_promised=state == "failed" and bool(report["rollback"]),
                  pods_lost=len(set(before.bare_pods) - set(after.pod_names)), pdb_violations=len(after.pdb_violations))
    assert state == "failed"
    assert tasks["step_1_2_switch_cni.wait_cilium_ready"] == "failed"
    assert tasks["step_3_restart_pods.restart"] == "upstream_failed"
    error = report["errors"]["step_1_2_switch_cni.wait_cilium_ready"]
    assert "still missing: DaemonSet kube-system/cilium" in error and "ready 0" in error
    assert report["rollback"]["dag_id"] == "kkp_cni_cilium_to_canal"
    assert after.canal_ready, "pods keep Canal's network while Cilium is not ready"


def test_a_budget_that_blocks_every_eviction_stops_the_restart_saying_which_pods(airflow_db, lab_connections):
    user = lab_connections.clusters["webshop-canal-iptables"]
    lab_connections.lab.call(lambda: user.api.faults.update(block_evictions=True))

    before = cni_state(lab_connections.lab, user)
    state, tasks, _, run_id = run_dag(DAG, conf(user, pdb_wait_seconds=1))

    after = cni_state(lab_connections.lab, user)
    figures.fault(f"{DAG} a budget blocks every eviction", injected=1,
                  as_promised=state == "failed" and bool(xcom(DAG, run_id, "report", key="report")["rollback"]),
                  pods_lost=len(set(before.bare_pods) - set(after.pod_names)), pdb_violations=len(after.pdb_violations))
    assert state == "failed"
    assert tasks["step_3_restart_pods.restart"] == "failed"
    assert tasks["step_4_remove_canal.delete_canal_objects"] == "upstream_failed", "Canal must stay"
    error = xcom(DAG, run_id, "step_3_restart_pods.restart", key="error")
    planned = xcom(DAG, run_id, "step_3_restart_pods.plan_pod_restart")["to_restart"]
    assert f"disruption budgets kept {len(planned)} pod(s)" in error and "block_evictions" in error
    assert after.canal_ready and after.pdb_violations == []


def test_a_cluster_already_on_cilium_is_a_no_op(airflow_db, lab_connections):
    user = lab_connections.clusters["analytics-cilium-ebpf"]
    writes = client_writes(lab_connections.lab, lab_connections.kkp)

    state, tasks, answers, run_id = run_dag(DAG, conf(user))

    assert state == "success" and answers == []
    assert tasks["preflight"] == "skipped"
    assert "already runs Cilium" in xcom(DAG, run_id, "preflight", key="noop")
    assert client_writes(lab_connections.lab, lab_connections.kkp) == writes


def _bad(user, kkp_lab, monkeypatch):
    """name -> (conf, what the failure must say); some cases break a connection first."""
    def break_seed():
        monkeypatch.setenv("AIRFLOW_CONN_KKP_SEED", json.dumps({"conn_type": "kubernetes",
                                                                "extra": {"kube_config": "not: [a kubeconfig"}}))

    def expire_token():
        kkp_lab.lab.call(lambda: kkp_lab.kkp.faults.update(reject_token=True))

    def edit_cluster(edit):
        """A Cluster as KKP could hold it, written past KKP's admission check."""
        seed = kkp_lab.lab.seed.store
        return lambda: kkp_lab.lab.call(lambda: seed.mutate(seed.rtype("kubermatic.k8c.io", "clusters"), None,
                                                            user.id, edit))

    def old_kernel_on_one_node():
        store = user.store
        node = kkp_lab.lab.call(lambda: store.items(store.rtype("", "nodes"))[0])
        node["status"]["nodeInfo"]["kernelVersion"] = "4.15.0-213-generic"
        kkp_lab.lab.call(lambda: store.write_status(store.rtype("", "nodes"), None, node["metadata"]["name"],
                                                    node["status"]))

    return {
        "unknown cluster": ({"cluster_id": "zz9zz9zz9z"}, None, "does not exist in the seed"),
        "malformed id": ({"cluster_id": "Not-An-Id!"}, None, "is not a KKP cluster ID"),
        "wrong project (seed)": ({"project_id": "wrongproj1"}, None, "belongs to project"),
        "wrong project (api)": ({"access": "api", "project_id": "wrongproj1"}, None, "project wrongproj1"),
        "api without project": ({"access": "api"}, None, "needs project_id"),
        "unknown conf key": ({"clusterid": "x"}, None, "Unknown parameter(s) clusterid"),
        "broken seed connection": ({}, break_seed, "kube_config is not a kubeconfig"),
        "expired API token": ({"access": "api", "project_id": user.project_id}, expire_token, "refused the token"),
        "ebpf without Konnectivity": ({"cluster_id": kkp_lab.clusters["payments-canal-ipvs"].id,
                                       "proxy_mode_after": "ebpf"}, None, "needs Konnectivity"),
        "not on Canal": ({}, edit_cluster(lambda c: (c["metadata"]["labels"].__setitem__(MIGRATION_LABEL, "true"),
                                                     c["spec"].__setitem__("cniPlugin", {"type": "none",
                                                                                         "version": ""}))),
                         "runs CNI 'none', not Canal"),
        "Kubernetes too old for the Cilium version": (
            {}, edit_cluster(lambda c: c["spec"].__setitem__("version", "1.20.15")), "needs Kubernetes >= 1.21"),
        "unhealthy control plane": ({}, edit_cluster(lambda c: c["status"]["extendedHealth"].__setitem__(
            "etcd", "HealthStatusDown")), "is not healthy (etcd: HealthStatusDown)"),
        "node kernel too old for Cilium": ({}, old_kernel_on_one_node, "(4.15.0-213-generic) run older kernels"),
    }


@pytest.mark.parametrize("case", ["unknown cluster", "malformed id", "wrong project (seed)", "wrong project (api)",
                                  "api without project", "unknown conf key", "broken seed connection",
                                  "expired API token", "ebpf without Konnectivity", "not on Canal",
                                  "Kubernetes too old for the Cilium version", "unhealthy control plane",
                                  "node kernel too old for Cilium"])
def test_bad_input_fails_in_preflight_before_any_write(airflow_db, lab_connections, monkeypatch, case):
    user = lab_connections.clusters["webshop-canal-iptables"]
    extra, breakage, says = _bad(user, lab_connections, monkeypatch)[case]
    if breakage:
        breakage()
    before = cni_state(lab_connections.lab, user).cluster_cni
    writes = client_writes(lab_connections.lab, lab_connections.kkp)

    state, tasks, answers, run_id = run_dag(DAG, conf(user, **extra))

    assert state == "failed" and answers == []
    assert tasks["preflight"] == "failed"
    assert says in xcom(DAG, run_id, "preflight", key="error")
    assert client_writes(lab_connections.lab, lab_connections.kkp) == writes
    assert cni_state(lab_connections.lab, user).cluster_cni == before


def test_a_version_kkp_does_not_offer_is_refused_by_the_form(airflow_db, lab_connections):
    from airflow.sdk.definitions.param import ParamValidationError

    user = lab_connections.clusters["webshop-canal-iptables"]
    with pytest.raises(ParamValidationError):
        run_dag(DAG, conf(user, cilium_version="1.99.0"))
