"""The disruption controller: keeps each PodDisruptionBudget's status in line with the pods it selects."""

from __future__ import annotations

from collections import Counter

from lab.apiserver.disruption import budget_statuses
from lab.apiserver.store import Event, now_iso


class DisruptionBudgets:
    def __init__(self, kube):
        self.kube = kube
        self.store = kube.store
        self.rt = kube.rt("policy", "poddisruptionbudgets")
        self._budgets: Counter = Counter()        # namespace -> budgets in it
        self.queue = kube.queue("disruption", self.reconcile)

    def start(self) -> None:
        for pdb in self.store.items(self.rt):
            self._budgets[pdb["metadata"]["namespace"]] += 1
            self.queue.add(pdb["metadata"]["namespace"])
        self.store.listen("policy", "poddisruptionbudgets", self._on_pdb)
        self.store.listen("", "pods", self._on_pod)

    def _on_pdb(self, event: Event) -> None:
        ns = event.obj["metadata"]["namespace"]
        if event.type == "ADDED":
            self._budgets[ns] += 1
        elif event.type == "DELETED":
            self._budgets[ns] -= 1
        self.queue.add(ns)

    def _on_pod(self, event: Event) -> None:
        ns = event.obj["metadata"]["namespace"]
        if self._budgets[ns] > 0:
            self.queue.add(ns)

    def reconcile(self, namespace: str) -> None:
        pdbs = [p for p in self.store.items(self.rt, namespace) if not p["metadata"].get("deletionTimestamp")]
        for pdb, status in zip(pdbs, budget_statuses(pdbs, self.kube.pods.in_namespace(namespace))):
            status["conditions"] = [_with_transition_time(c, (pdb.get("status") or {}).get("conditions"))
                                    for c in status["conditions"]]
            self.store.write_status(self.rt, namespace, pdb["metadata"]["name"], status)


def _with_transition_time(cond: dict, previous: list | None) -> dict:
    """metav1.Condition requires lastTransitionTime; it moves only when the status does."""
    old = next((c for c in previous or () if c.get("type") == cond["type"]), None)
    if old is not None and old.get("status") == cond["status"] and old.get("lastTransitionTime"):
        return {**cond, "lastTransitionTime": old["lastTransitionTime"]}
    return {**cond, "lastTransitionTime": now_iso()}
