"""The deferrable waits' trigger, run as the triggerer runs it, against the lab: it ends on the
event that makes its condition true (a watch, not a poll), and a timeout says what is missing."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import yaml

from kkp_migration import conditions
from kkp_migration.airflow.triggers import ClusterWaitTrigger


def first_event(trigger: ClusterWaitTrigger) -> dict:
    async def run():
        async for event in trigger.run():
            return event.payload
    return asyncio.run(run())


def trigger_for(user, wait: str, args: dict, seconds: float) -> ClusterWaitTrigger:
    return ClusterWaitTrigger(wait=wait, wait_args=args, cluster_id=user.id, project_id=None, access="seed",
                              seed_conn_id="kkp_seed", api_conn_id="kkp_api", deadline=time.time() + seconds)


def lists(lab, user) -> int:
    return lab.call(lambda: sum(n for (verb, _), n in user.api.requests.items() if verb == "list"))


def set_kube_proxy_mode(store, mode: str) -> None:
    """What KKP's addon controller does a while after a proxy-mode change."""
    def edit(cm):
        conf = yaml.safe_load(cm["data"]["config.conf"])
        conf["mode"] = mode
        cm["data"]["config.conf"] = yaml.safe_dump(conf)
    store.mutate(store.rtype("", "configmaps"), "kube-system", "kube-proxy", edit)


def test_configmap_wait_ends_on_the_change_without_polling(lab_connections):
    lab = lab_connections.lab
    user = lab_connections.clusters["payments-canal-ipvs"]
    changed_at = {}

    def change_later():
        time.sleep(2.0)
        changed_at["t"] = time.monotonic()
        lab.call(set_kube_proxy_mode, user.store, "iptables")

    threading.Thread(target=change_later, daemon=True).start()
    lists_before = lists(lab, user)
    event = first_event(trigger_for(user, "kube_proxy_mode", {"mode": "iptables"}, 60))
    latency = time.monotonic() - changed_at["t"]

    print(f"kube-proxy ConfigMap wait: event {latency * 1000:.0f} ms after the change")
    assert event["done"] and "mode iptables" in event["detail"]
    assert lists(lab, user) - lists_before == 1, "one list, then a watch: no polling"
    assert latency < 10, "hang detection only; the benchmark measures the latency"


def test_cilium_redeploy_wait_ends_when_every_cilium_pod_is_new(lab_connections):
    """To ebpf: KKP removes kube-proxy and restarts the Cilium pods; the wait ends when all are new."""
    lab = lab_connections.lab
    user = lab_connections.clusters["analytics-cilium-ebpf"]
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    lab.call(lambda: user.api.faults.update(cni_never_ready=False))

    def restart_cilium_later():
        time.sleep(1.5)

        def roll(ds):
            ds["spec"]["template"]["metadata"].setdefault("annotations", {})["lab/restart"] = since
        lab.call(lambda: user.store.mutate(user.store.rtype("apps", "daemonsets"), "kube-system", "cilium", roll))

    def redeployed(store) -> bool:
        pods = [p for p in store.items(store.rtype("", "pods"), "kube-system")
                if p["metadata"]["labels"].get("k8s-app") == "cilium"]
        daemonset = store.try_get(store.rtype("apps", "daemonsets"), "kube-system", "cilium")
        operator = store.try_get(store.rtype("apps", "deployments"), "kube-system", "cilium-operator")
        return conditions.all_of(conditions.pods_created_after(pods, since, "cilium"),
                                 conditions.cilium_ready(daemonset, operator)).done

    true_at = note_when_true(lab, user.store, redeployed)
    threading.Thread(target=restart_cilium_later, daemon=True).start()
    event = first_event(trigger_for(user, "proxy_mode_via_cilium", {"mode": "ebpf", "since": since}, 60))
    latency = time.monotonic() - true_at["t"]

    print(f"Cilium redeploy wait: event {latency * 1000:.0f} ms after the last Cilium pod was new and ready")
    assert event["done"], event
    assert "all" in event["detail"] and "cilium pods redeployed" in event["detail"]
    new = lab.call(lambda: [p["metadata"]["creationTimestamp"] for p in user.store.items(
        user.store.rtype("", "pods"), "kube-system") if p["metadata"]["labels"].get("k8s-app") == "cilium"])
    assert new and all(t >= since for t in new)
    assert latency < 10, "hang detection only; the benchmark measures the latency"


def note_when_true(lab, store, judge) -> dict:
    """{"t": time.monotonic()} of the first store write after which `judge(store)` holds, noted in
    the lab's own thread at the write, before any watch event leaves it."""
    noted: dict = {}

    def on_write(_event) -> None:
        if "t" not in noted and judge(store):
            noted["t"] = time.monotonic()

    def install():
        for group, plural in (("", "pods"), ("apps", "daemonsets"), ("apps", "deployments")):
            store.listen(group, plural, on_write)
    lab.call(install)
    return noted


@pytest.mark.parametrize("wait, args, missing", [
    ("kube_proxy_mode", {"mode": "iptables"}, "kube-proxy ConfigMap says mode ipvs, waiting for iptables"),
    ("proxy_mode_via_cilium", {"mode": "iptables", "since": "2999-01-01T00:00:00Z"}, "predate the change"),
])
def test_a_wait_that_never_ends_times_out_saying_what_is_missing(lab_connections, wait, args, missing):
    user = lab_connections.clusters["payments-canal-ipvs" if wait == "kube_proxy_mode" else "analytics-cilium-ebpf"]
    event = first_event(trigger_for(user, wait, args, 1.5))
    assert not event["done"] and missing in event["detail"]
