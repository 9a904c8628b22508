"""Every step run twice reaches the same end state, and the second run does no harm: what
clearing a task after a crash relies on. The steps are driven directly, as the tasks call them."""

from __future__ import annotations

import asyncio
import time

from kkp_migration import steps
from kkp_migration.kkp import SeedAccess
from kkp_migration.kube import Kube
from kkp_migration.usercluster import UserCluster
from kkp_migration.watch import wait_on_cluster
from tests.lab_state import cni_state


def until(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    return result


def test_each_canal_to_cilium_step_twice(kkp_lab, caplog):
    lab, user = kkp_lab.lab, kkp_lab.clusters["webshop-canal-iptables"]
    kkp = SeedAccess(Kube(lab.seed.kubeconfig(), "seed"), user.id)
    uc = UserCluster(Kube(kkp.admin_kubeconfig(), f"user cluster {user.id}"), user.id)

    first = steps.switch_cni(kkp, "cilium", "1.19.4")
    again = steps.switch_cni(kkp, "cilium", "1.19.4")
    assert first["changed"] and not again["changed"]
    until(lambda: uc.cilium_state().done)

    with caplog.at_level("INFO", logger="kkp_migration"):
        done = steps.restart_pods(uc, "cilium", include_without_controller=True, parallelism=8, pdb_wait_seconds=60)
    assert done["evicted"] > 0 and done["recreated"] == ["default/debug-shell"]
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("restart: ")]
    assert progress[-1] == f"restart: {done['evicted']}/{done['planned']} evicted, 0 held by disruption " \
                           "budgets, 0 failed", "the task log shows how far the restart got"
    until(lambda: uc.pods_managed("cilium").done)
    pods = set(cni_state(lab, user).pod_names)
    second = steps.restart_pods(uc, "cilium", include_without_controller=True, parallelism=8, pdb_wait_seconds=60)
    assert second["planned"] == 0 and second["evicted"] == 0 and second["recreated"] == []
    assert set(cni_state(lab, user).pod_names) == pods, "no pod may be restarted twice"

    removed = steps.remove_cni(uc, "canal", "v3.31", keep_shared_crds=True)
    assert removed["deleted"] and not removed["already_gone"]
    until(lambda: cni_state(lab, user).canal_objects == [])
    assert steps.remove_cni(uc, "canal", "v3.31", keep_shared_crds=True)["deleted"] == []

    start = time.time_ns()
    rolled = steps.restart_machine_deployments(kkp, uc, start)
    assert rolled["restarted"] == rolled["machine_deployments"] != []
    assert steps.restart_machine_deployments(kkp, uc, start)["restarted"] == [], "one machine roll per run"


def test_a_pod_without_a_controller_that_an_interrupted_try_deleted_comes_back(kkp_lab):
    lab, user = kkp_lab.lab, kkp_lab.clusters["webshop-canal-iptables"]
    kkp = SeedAccess(Kube(lab.seed.kubeconfig(), "seed"), user.id)
    uc = UserCluster(Kube(kkp.admin_kubeconfig(), f"user cluster {user.id}"), user.id)
    steps.switch_cni(kkp, "cilium", "1.19.4")
    until(lambda: uc.cilium_state().done)
    plan = steps.plan_restart(uc, "cilium")
    assert [m["metadata"]["name"] for m in plan["kept_manifests"]] == ["debug-shell"]
    old_uid = uc.get("v1", "pods", "debug-shell", "default")["metadata"]["uid"]
    uc.kube.delete("/api/v1/namespaces/default/pods/debug-shell")      # what the killed try got to do

    out = steps.restart_pods(uc, "cilium", include_without_controller=True, parallelism=8, pdb_wait_seconds=60,
                             kept_manifests=plan["kept_manifests"])

    assert out["restored"] == ["default/debug-shell"] and out["recreated"] == []
    back = uc.get("v1", "pods", "debug-shell", "default")
    assert back is not None and back["metadata"]["uid"] != old_uid
    assert "default/debug-shell" in cni_state(lab, user).pod_names
    again = steps.restart_pods(uc, "cilium", include_without_controller=True, parallelism=8, pdb_wait_seconds=60,
                               kept_manifests=plan["kept_manifests"])
    assert again["restored"] == [] and again["recreated"] == [], "a pod brought back is not restarted again"


def test_a_proxy_mode_change_run_again_waits_for_the_same_redeploy(kkp_lab):
    """A retry after a crash just past the patch must wait for Cilium pods newer than the change,
    not newer than itself (which would never come)."""
    lab, user = kkp_lab.lab, kkp_lab.clusters["analytics-cilium-ebpf"]
    kkp = SeedAccess(Kube(lab.seed.kubeconfig(), "seed"), user.id)

    first = steps.set_proxy_mode(kkp, "iptables")
    time.sleep(1.1)            # the stamps have a resolution of one second
    again = steps.set_proxy_mode(kkp, "iptables")

    assert first["changed"] and not again["changed"]
    assert again["changed_at"] == first["changed_at"]
    verdict = asyncio.run(wait_on_cluster(kkp.admin_kubeconfig(), "proxy_mode_via_cilium",
                                          {"mode": "iptables", "since": again["changed_at"]}, 60))
    assert verdict.done, verdict.detail
    assert cni_state(lab, user).proxy_mode == "iptables"
