"""The StatefulSet controller: pods <name>-0 .. <name>-(n-1), each recreated under its name when deleted.

OrderedReady (the default) creates a pod only when all lower ordinals are Ready; Parallel creates
them at once. Scale-down and RollingUpdate go from the highest ordinal, one pod at a time.
"""

from __future__ import annotations

from lab.apiserver.disruption import pod_ready

from .ownership import OwnerController, is_active, owned, pod_from_template, template_hash

REVISION_LABEL = "controller-revision-hash"


def _ordinal(sts_name: str, pod: dict) -> int | None:
    suffix = pod["metadata"]["name"][len(sts_name) + 1:]
    return int(suffix) if pod["metadata"]["name"].startswith(sts_name + "-") and suffix.isdigit() else None


class StatefulSets(OwnerController):
    kind, group, plural = "StatefulSet", "apps", "statefulsets"
    child_group, child_plural = "", "pods"

    def __init__(self, kube):
        super().__init__(kube)
        self.pods_rt = kube.rt("", "pods")

    def reconcile(self, key) -> None:
        sts = self.store.try_get(self.rt, *key)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return
        ns, name = key
        spec = sts.get("spec") or {}
        replicas = spec.get("replicas", 1)
        revision = f"{name}-{template_hash(spec.get('template') or {})}"
        ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        pods = {}
        for pod in owned(self.store, sts, "Pod"):
            ordinal = _ordinal(name, pod)
            if ordinal is not None:
                pods[ordinal] = pod
        settled = True                      # every lower ordinal exists, is Ready and not terminating
        for i in range(replicas):
            pod = pods.get(i)
            if pod is None:
                if self.store.try_get(self.pods_rt, ns, f"{name}-{i}") is None:
                    self._create(sts, i, revision)
                settled = False
            elif not is_active(pod) or not pod_ready(pod):
                settled = False
            if ordered and not settled:
                break
        extra = sorted((i for i, p in pods.items() if i >= replicas and is_active(p)), reverse=True)
        if extra and (settled or not ordered):
            self.store.delete(self.pods_rt, ns, f"{name}-{extra[0]}")
        elif settled and not extra and all(i in pods for i in range(replicas)):
            self._roll(sts, pods, replicas, revision)
        self._write_status(sts, revision)

    def _create(self, sts: dict, ordinal: int, revision: str) -> None:
        name = sts["metadata"]["name"]
        spec = sts.get("spec") or {}
        pod = pod_from_template(sts, spec.get("template") or {}, name=f"{name}-{ordinal}", labels={
            REVISION_LABEL: revision, "statefulset.kubernetes.io/pod-name": f"{name}-{ordinal}",
            "apps.kubernetes.io/pod-index": str(ordinal)})
        pod["spec"]["hostname"] = f"{name}-{ordinal}"
        if spec.get("serviceName"):
            pod["spec"]["subdomain"] = spec["serviceName"]
        self.store.create(self.pods_rt, pod, sts["metadata"]["namespace"])

    def _roll(self, sts: dict, pods: dict, replicas: int, revision: str) -> None:
        strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        partition = (strategy.get("rollingUpdate") or {}).get("partition", 0)
        for i in range(replicas - 1, partition - 1, -1):
            if (pods[i]["metadata"].get("labels") or {}).get(REVISION_LABEL) != revision:
                self.store.delete(self.pods_rt, sts["metadata"]["namespace"], pods[i]["metadata"]["name"])
                return

    def _write_status(self, sts: dict, revision: str) -> None:
        active = [p for p in owned(self.store, sts, "Pod") if is_active(p)]
        previous = sts.get("status") or {}
        updated = sum(1 for p in active if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == revision)
        replicas = (sts.get("spec") or {}).get("replicas", 1)
        current_revision = previous.get("currentRevision") or revision
        if updated == replicas == len(active):
            current_revision = revision
        current = sum(1 for p in active
                      if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == current_revision)
        ready = sum(1 for p in active if pod_ready(p))
        self.store.write_status(self.rt, sts["metadata"]["namespace"], sts["metadata"]["name"], {
            "observedGeneration": sts["metadata"].get("generation", 1), "replicas": len(active),
            "readyReplicas": ready, "currentReplicas": current, "updatedReplicas": updated,
            "availableReplicas": ready, "currentRevision": current_revision, "updateRevision": revision,
            "collisionCount": 0})
