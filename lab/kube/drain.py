"""Cordon and drain a node the way `kubectl drain` and machine-controller do: evict, retry, wait.

Evictions follow the eviction subresource's rules (PodDisruptionBudgets, the block_evictions
fault); a refused eviction is retried every `timing.EVICTION_RETRY`. DaemonSet pods are left to
die with the node.
"""

from __future__ import annotations

from lab.apiserver.disruption import check_eviction
from lab.apiserver.errors import ApiError
from lab.apiserver.store import now_iso

from . import timing
from .ownership import controller_of

UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def evict(kube, pod: dict) -> None:
    """POST pods/<name>/eviction, as done from inside the cluster; raises ApiError 429 when refused."""
    ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    if kube.cluster.faults.block_evictions:
        raise ApiError(429, "Cannot evict pod as it would violate the pod's disruption budget.", "TooManyRequests")
    pdb_rt = kube.rt("policy", "poddisruptionbudgets")
    taken = check_eviction(pod, kube.store.items(pdb_rt, ns), now_iso(), lambda: kube.pods.in_namespace(ns))
    kube.store.delete(kube.rt("", "pods"), ns, name)
    if taken:
        kube.store.write_status(pdb_rt, ns, *taken)


def cordon(kube, node: str) -> None:
    def mark(n: dict) -> None:
        n["spec"]["unschedulable"] = True
        taints = n["spec"].setdefault("taints", [])
        if not any(t.get("key") == UNSCHEDULABLE_TAINT["key"] for t in taints):
            taints.append(dict(UNSCHEDULABLE_TAINT))
    kube.store.mutate(kube.rt("", "nodes"), None, node, mark)


def _evictable(pod: dict) -> bool:
    ref = controller_of(pod)
    return not (ref and ref.get("kind") == "DaemonSet") and "kubernetes.io/config.mirror" not in (
        pod["metadata"].get("annotations") or {})


async def drain_and_delete(kube, node: str) -> None:
    """Cordon `node`, evict its pods until none is left, then delete the node."""
    nodes_rt = kube.rt("", "nodes")
    if kube.store.try_get(nodes_rt, None, node) is None:
        return
    cordon(kube, node)
    while True:
        pods = [p for p in kube.pods.on_node(node) if _evictable(p)]
        if not pods:
            break
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            try:
                evict(kube, pod)
            except ApiError as err:
                if err.code != 429:
                    raise
        await kube.clock.sleep(timing.EVICTION_RETRY)
    if kube.store.try_get(nodes_rt, None, node) is not None:
        kube.store.delete(nodes_rt, None, node)
