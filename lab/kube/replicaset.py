"""The ReplicaSet controller: keeps spec.replicas active pods and reports how many are ready.

A pod counts once Ready as available (minReadySeconds is not simulated).
"""

from __future__ import annotations

from lab.apiserver.disruption import pod_ready

from .ownership import OwnerController, is_active, owned, pod_from_template

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _scale_down_order(pods: list[dict]) -> list[dict]:
    """Which pods a scale-down removes first: unscheduled, then not running, not ready; newest first among equals."""
    newest_first = sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)
    return sorted(newest_first, key=lambda p: (bool((p.get("spec") or {}).get("nodeName")),
                                               _PHASE_RANK.get((p.get("status") or {}).get("phase"), 0), pod_ready(p)))


class ReplicaSets(OwnerController):
    kind, group, plural = "ReplicaSet", "apps", "replicasets"
    child_group, child_plural = "", "pods"

    def __init__(self, kube):
        super().__init__(kube)
        self.pods_rt = kube.rt("", "pods")

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
