"""The ReplicaSet controller: keeps spec.replicas active pods and reports how many are ready.

A pod counts once Ready as available (minReadySeconds is not simulated).
"""

from __future__ import annotations

from lab.apiserver.disruption import pod_ready
from lab.apiserver.store import Event

from .ownership import is_active, owned, owner_key, pod_from_template

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _scale_down_order(pods: list[dict]) -> list[dict]:
    """Which pods a scale-down removes first: unscheduled, then not running, not ready; newest first among equals."""
    newest_first = sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)
    return sorted(newest_first, key=lambda p: (bool((p.get("spec") or {}).get("nodeName")),
                                               _PHASE_RANK.get((p.get("status") or {}).get("phase"), 0), pod_ready(p)))


class ReplicaSets:
    def __init__(self, kube):
        self.kube = kube
        self.store = kube.store
        self.rt = kube.rt("apps", "replicasets")
        self.pods_rt = kube.rt("", "pods")
        self.queue = kube.queue("replicaset", self.reconcile)

    def start(self) -> None:
        for rs in self.store.items(self.rt):
            self.queue.add((rs["metadata"]["namespace"], rs["metadata"]["name"]))
        self.store.listen("apps", "replicasets", self._on_rs)
        self.store.listen("", "pods", self._on_pod)

    def _on_rs(self, event: Event) -> None:
        if event.type != "DELETED":
            self.queue.add((event.obj["metadata"]["namespace"], event.obj["metadata"]["name"]))

    def _on_pod(self, event: Event) -> None:
        key = owner_key(event.obj, "ReplicaSet")
        if key:
            self.queue.add(key)

    def reconcile(self, key) -> None:
        rs = self.store.try_get(self.rt, *key)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        spec = rs.get("spec") or {}
        want = spec.get("replicas", 1)
        active = [p for p in owned(self.store, rs, "Pod") if is_active(p)]
        if len(active) < want:
            for _ in range(want - len(active)):
                self.store.create(self.pods_rt, pod_from_template(rs, spec.get("template") or {}), key[0])
        elif len(active) > want:
            for pod in _scale_down_order(active)[:len(active) - want]:
                self.store.delete(self.pods_rt, key[0], pod["metadata"]["name"])
        active = [p for p in owned(self.store, rs, "Pod") if is_active(p)]
        ready = sum(1 for p in active if pod_ready(p))
        self.store.write_status(self.rt, key[0], key[1], {
            "replicas": len(active), "fullyLabeledReplicas": len(active), "readyReplicas": ready,
            "availableReplicas": ready, "observedGeneration": rs["metadata"].get("generation", 1)})
