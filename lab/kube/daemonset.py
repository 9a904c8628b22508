"""The DaemonSet controller: one pod per eligible node, rolled node by node on a template change.

Eligible nodes are those matching the template's nodeSelector (taints and tolerations are not
simulated). Pods are pinned to their node through node affinity and left to the scheduler.
RollingUpdate replaces old pods while at most maxUnavailable (default 1) nodes lack an available
pod; a node's new pod is created only after its old one has terminated. OnDelete waits for the
user to delete pods.
"""

from __future__ import annotations

from collections import defaultdict

from lab.apiserver.disruption import pod_ready
from lab.apiserver.store import Event

from .ownership import is_active, owned, owner_key, pod_from_template, scaled_count, template_hash
from .scheduler import pin_to_node, pinned_node

HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
TOLERATIONS = [
    {"key": f"node.kubernetes.io/{t}", "operator": "Exists", "effect": e}
    for t, e in (("not-ready", "NoExecute"), ("unreachable", "NoExecute"), ("disk-pressure", "NoSchedule"),
                 ("memory-pressure", "NoSchedule"), ("pid-pressure", "NoSchedule"), ("unschedulable", "NoSchedule"))
]


class DaemonSets:
    def __init__(self, kube):
        self.kube = kube
        self.store = kube.store
        self.rt = kube.rt("apps", "daemonsets")
        self.pods_rt = kube.rt("", "pods")
        self.nodes_rt = kube.rt("", "nodes")
        self.queue = kube.queue("daemonset", self.reconcile)

    def start(self) -> None:
        self._enqueue_all()
        self.store.listen("apps", "daemonsets", self._on_ds)
        self.store.listen("", "pods", self._on_pod)
        self.store.listen("", "nodes", self._on_node)

    def _enqueue_all(self) -> None:
        for ds in self.store.items(self.rt):
            self.queue.add((ds["metadata"]["namespace"], ds["metadata"]["name"]))

    def _on_ds(self, event: Event) -> None:
        if event.type != "DELETED":
            self.queue.add((event.obj["metadata"]["namespace"], event.obj["metadata"]["name"]))

    def _on_pod(self, event: Event) -> None:
        key = owner_key(event.obj, "DaemonSet")
        if key:
            self.queue.add(key)

    def _on_node(self, event: Event) -> None:
        old_labels = (event.old or {}).get("metadata", {}).get("labels")
        if event.type != "MODIFIED" or old_labels != event.obj["metadata"].get("labels"):
            self._enqueue_all()

    def reconcile(self, key) -> None:
        ds = self.store.try_get(self.rt, *key)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        selector = (template.get("spec") or {}).get("nodeSelector") or {}
        h = template_hash(template)
        nodes = [n["metadata"]["name"] for n in self.store.items(self.nodes_rt)
                 if all((n["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
        eligible = set(nodes)
        active, terminating = defaultdict(list), set()
        for pod in owned(self.store, ds, "Pod"):
            node = _target(pod)
            if is_active(pod):
                active[node].append(pod)
            elif pod["metadata"].get("deletionTimestamp"):
                terminating.add(node)
        for node, pods in active.items():
            pods.sort(key=lambda p: _labels(p).get(HASH_LABEL) != h)      # keep an up-to-date pod first
            for pod in (pods if node not in eligible else pods[1:]):
                self._delete(key, pod)
        for node in nodes:
            if not active.get(node) and node not in terminating:
                self._create(ds, template, h, node)
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            budget = scaled_count((strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1), len(nodes),
                                  round_up=True) or 1
            self._roll(key, h, nodes, active, budget)
        self._write_status(ds, h, eligible)

    def _roll(self, key, h: str, nodes: list[str], active: dict, budget: int) -> None:
        current = {n: active[n][0] for n in nodes if active.get(n)}
        unavailable = sum(1 for n in nodes if n not in current or not pod_ready(current[n]))
        old = [p for p in current.values() if _labels(p).get(HASH_LABEL) != h]
        for pod in sorted(old, key=pod_ready):
            if not pod_ready(pod):
                self._delete(key, pod)
            elif unavailable < budget:
                self._delete(key, pod)
                unavailable += 1

    def _create(self, ds: dict, template: dict, h: str, node: str) -> None:
        pod = pod_from_template(ds, template, labels={HASH_LABEL: h,
                                                      GENERATION_LABEL: str(ds["metadata"].get("generation", 1))})
        pin_to_node(pod["spec"], node)
        tolerations = pod["spec"].setdefault("tolerations", [])
        tolerations.extend(t for t in TOLERATIONS if t not in tolerations)
        self.store.create(self.pods_rt, pod, ds["metadata"]["namespace"])

    def _delete(self, key, pod: dict) -> None:
        self.store.delete(self.pods_rt, key[0], pod["metadata"]["name"])

    def _write_status(self, ds: dict, h: str, eligible: set[str]) -> None:
        scheduled = misscheduled = ready = updated = 0
        for pod in owned(self.store, ds, "Pod"):
            if not is_active(pod):
                continue
            if _target(pod) not in eligible:
                misscheduled += 1
                continue
            scheduled += 1
            ready += pod_ready(pod)
            updated += _labels(pod).get(HASH_LABEL) == h
        status = {"desiredNumberScheduled": len(eligible), "currentNumberScheduled": scheduled,
                  "numberMisscheduled": misscheduled, "numberReady": ready, "numberAvailable": ready,
                  "updatedNumberScheduled": updated, "observedGeneration": ds["metadata"].get("generation", 1)}
        if len(eligible) - ready > 0:
            status["numberUnavailable"] = len(eligible) - ready
        self.store.write_status(self.rt, ds["metadata"]["namespace"], ds["metadata"]["name"], status)


def _labels(pod: dict) -> dict:
    return pod["metadata"].get("labels") or {}


def _target(pod: dict) -> str | None:
    return pod["spec"].get("nodeName") or pinned_node(pod)
