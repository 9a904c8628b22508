"""2. Wait detection: from the moment the lab makes a condition true to the trigger's event
(the stand-in triggerer of bench.waiter, in its own process), for the three conditions the
issue names and the Cilium redeploy after a change to ebpf, one fresh small cluster per
sample; then, through dag.test(), to the sensor task's success in Airflow (see
bench.airflow_waits for that half).
"""

from __future__ import annotations

import time

from . import labkit, waiting
from .report import at_most, percentile, row

SAMPLES = 15                  # clusters; each gives one sample of each condition
TIME_FACTOR = 0.01
ROLLOUT_DELAY = 30.0          # simulated seconds until KKP rolls a change out (0.3 s here)
BENCH = "2 wait detection"


def restart_network_pods(store) -> None:
    """Delete every network pod with a controller (the pod restart, done by the lab itself)."""
    rt = store.rtype("", "pods")
    for pod in store.items(rt):
        if not pod["spec"].get("hostNetwork") and pod["metadata"].get("ownerReferences"):
            store.delete(rt, pod["metadata"]["namespace"], pod["metadata"]["name"])


def sample(waiter, lab, user, wid: str, wait: str, args: dict, probe, make_true) -> float:
    """Seconds from the lab's condition becoming true to the waiter's event."""
    waiter.wait(wid, user.api.kubeconfig(), wait, args)
    waiter.expect(wid, "watching")
    make_true()
    true_at = probe.wait()
    done = waiter.expect(wid, "done")
    if not done["done"]:
        raise RuntimeError(f"wait {wait} on {user.id} ended without the condition: {done['detail']}")
    return done["at"] - true_at


def measure_trigger() -> dict[str, list[float]]:
    lab, kkp = labkit.start(TIME_FACTOR, rollout_delay=ROLLOUT_DELAY)
    waiter = waiting.Waiter()
    out: dict[str, list[float]] = {"cilium_ready": [], "kube_proxy_mode": [], "pods_managed": [],
                                   "cilium_redeployed": []}
    try:
        users = [kkp.add_cluster(labkit.ClusterSpec(f"wait-{i:02d}", "canal", "v3.31", "iptables", nodes=2))
                 for i in range(SAMPLES)]
        labkit.settle(kkp, 120)
        for i, user in enumerate(users):
            store = user.store
            out["cilium_ready"].append(sample(
                waiter, lab, user, f"c{i}", "cilium_ready", {}, waiting.cilium_ready(lab, store),
                lambda: labkit.switch_cluster(lab, user, cni=("cilium", "1.19.4"))))
            out["kube_proxy_mode"].append(sample(
                waiter, lab, user, f"k{i}", "kube_proxy_mode", {"mode": "ipvs"}, waiting.proxy_mode(lab, store, "ipvs"),
                lambda: labkit.switch_cluster(lab, user, proxy_mode="ipvs")))
            out["pods_managed"].append(sample(
                waiter, lab, user, f"p{i}", "pods_managed", {"cni": "cilium"}, waiting.pods_managed(lab, store),
                lambda: lab.call(restart_network_pods, store)))
            since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            out["cilium_redeployed"].append(sample(
                waiter, lab, user, f"e{i}", "proxy_mode_via_cilium", {"mode": "ebpf", "since": since},
                waiting.cilium_redeployed(lab, store, since), lambda: labkit.switch_cluster(lab, user, proxy_mode="ebpf")))
    finally:
        waiter.close()
        lab.stop()
    return out


def run(results_dir: str) -> dict:
    from . import airflow_waits

    trigger = measure_trigger()
    rows = []
    for name, values in trigger.items():
        p50, p95 = percentile(values, 50), percentile(values, 95)
        rows.append(row(BENCH, f"condition true -> trigger event: {name} ({len(values)} samples)",
                        f"p50 {1000 * p50:.0f} ms, p95 {1000 * p95:.0f} ms", "p95 < 1 s", at_most(p95, 1.0, " s")))
    airflow = airflow_waits.measure(results_dir)
    rows += airflow["rows"]
    return {"rows": rows, "raw": {"trigger": trigger, "airflow": airflow["raw"]}}
