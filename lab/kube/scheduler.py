"""The scheduler: binds each unbound pod to the Ready, schedulable node with the fewest pods.

It honours spec.nodeSelector, the node a DaemonSet pod is pinned to (its required node affinity
on metadata.name; such pods tolerate cordoned nodes, as real DaemonSet pods do) and the node's
pod capacity. Pods that fit nowhere stay Pending with PodScheduled=False and are retried when a
node changes.
"""

from __future__ import annotations

from lab.apiserver.store import Event, now_iso

from .nodes import MAX_PODS, node_ready


def pinned_node(pod: dict) -> str | None:
    """The node a DaemonSet pod's required node affinity names, if any."""
    affinity = ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    for term in required.get("nodeSelectorTerms") or ():
        for expr in term.get("matchFields") or ():
            if expr.get("key") == "metadata.name" and expr.get("operator") == "In" and expr.get("values"):
                return expr["values"][0]
    return None


def pin_to_node(spec: dict, node: str) -> None:
    """Make a pod spec schedulable only on `node`, as the DaemonSet controller does."""
    affinity = spec.setdefault("affinity", {})
    affinity["nodeAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}}


class Scheduler:
    def __init__(self, kube):
        self.kube = kube
        self.store = kube.store
        self.pods_rt = kube.rt("", "pods")
        self.nodes_rt = kube.rt("", "nodes")
        self.unschedulable: set = set()
        self._nodes: list[tuple[str, dict, int, bool]] | None = None   # (name, labels, max pods, schedulable)
        self.queue = kube.queue("scheduler", self.reconcile)

    def start(self) -> None:
        for pod in self.store.items(self.pods_rt):
            if not (pod.get("spec") or {}).get("nodeName"):
                self.queue.add((pod["metadata"]["namespace"], pod["metadata"]["name"]))
        self.store.listen("", "pods", self._on_pod)
        self.store.listen("", "nodes", self._on_node)

    def _on_pod(self, event: Event) -> None:
        meta = event.obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if event.type == "DELETED":
            self.unschedulable.discard(key)
        elif key in self.unschedulable:
            return                              # retried when a node changes
        elif not (event.obj.get("spec") or {}).get("nodeName") and not meta.get("deletionTimestamp"):
            self.queue.add(key)

    def _on_node(self, event: Event) -> None:
        self._nodes = None
        for key in self.unschedulable:
            self.queue.add(key)
        self.unschedulable = set()

    def _candidates(self) -> list[tuple[str, dict, int, bool]]:
        if self._nodes is None:
            self._nodes = []
            for node in self.store.items(self.nodes_rt):
                alloc = ((node.get("status") or {}).get("allocatable") or {}).get("pods")
                schedulable = node_ready(node) and not (node.get("spec") or {}).get("unschedulable")
                self._nodes.append((node["metadata"]["name"], node["metadata"].get("labels") or {},
                                    int(alloc) if alloc else MAX_PODS, schedulable))
        return self._nodes

    def reconcile(self, key) -> None:
        pod = self.store.try_get(self.pods_rt, *key)
        if pod is None or (pod.get("spec") or {}).get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            return
        selector = pod["spec"].get("nodeSelector") or {}
        pinned = pinned_node(pod)
        best, best_count, reasons = None, 0, {}
        candidates = self._candidates()
        for name, labels, max_pods, schedulable in candidates:
            if pinned and name != pinned:
                reason = "didn't match Pod's node affinity/selector"
            elif any(labels.get(k) != v for k, v in selector.items()):
                reason = "didn't match Pod's node affinity/selector"
            elif not schedulable and not pinned:
                reason = "were unschedulable or not ready"
            elif self.kube.pods.count_on_node(name) >= max_pods:
                reason = "had too many pods"
            else:
                count = self.kube.pods.count_on_node(name)
                if best is None or count < best_count:
                    best, best_count = name, count
                continue
            reasons[reason] = reasons.get(reason, 0) + 1
        now = now_iso()
        if best is None:
            self.unschedulable.add(key)
            detail = ", ".join(f"{n} node(s) {r}" for r, n in sorted(reasons.items()))
            message = f"0/{len(candidates)} nodes are available: {detail}." if candidates else \
                "no nodes available to schedule pods"
            old = next((c for c in (pod.get("status") or {}).get("conditions") or () if c["type"] == "PodScheduled"
                        and c.get("status") == "False"), {})
            pending = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
                       "lastProbeTime": None, "lastTransitionTime": old.get("lastTransitionTime", now)}
            self.store.write_status(self.pods_rt, *key,
                                    {**(pod.get("status") or {}), "phase": "Pending", "conditions": [pending]})
            return

        def bind(p: dict) -> None:
            p["spec"]["nodeName"] = best
            p["status"] = {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now}]}
        self.store.mutate(self.pods_rt, key[0], key[1], bind)
