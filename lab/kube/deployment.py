"""The Deployment controller: one ReplicaSet per pod template, rolled over step by step.

A changed template (as `kubectl rollout restart` makes it) gets a new ReplicaSet named
`<deployment>-<pod-template-hash>`; RollingUpdate surges it by maxSurge and scales old ones down
while at most maxUnavailable pods are unavailable (defaults 25% / 25%); Recreate empties the old
ReplicaSets first. Each pass takes one step; ReplicaSet status changes bring the next pass.
"""

from __future__ import annotations

import copy

from lab.apiserver.store import now_iso

from .ownership import OwnerController, condition, controller_ref, owned, scaled_count, template_hash

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"


def _replicas(obj: dict) -> int:
    return (obj.get("spec") or {}).get("replicas", 0)


def _revision(obj: dict) -> int:
    return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))


class Deployments(OwnerController):
    kind, group, plural = "Deployment", "apps", "deployments"
    child_group, child_plural = "apps", "replicasets"

    def __init__(self, kube):
        super().__init__(kube)
        self.rs_rt = kube.rt("apps", "replicasets")

    def reconcile(self, key) -> None:
        d = self.store.try_get(self.rt, *key)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return
        spec = d.get("spec") or {}
        replicas = spec.get("replicas", 1)
        h = template_hash(spec.get("template") or {})
        sets = owned(self.store, d, "ReplicaSet")
        new = next((rs for rs in sets if (rs["metadata"].get("labels") or {}).get(HASH_LABEL) == h), None)
        old = sorted((rs for rs in sets if rs is not new), key=_revision)
        if new is None:
            new = self._create_rs(d, h, max((_revision(rs) for rs in old), default=0) + 1)
        if not spec.get("paused"):
            strategy = spec.get("strategy") or {}
            if strategy.get("type") == "Recreate":
                self._recreate(key, replicas, new, old)
            else:
                surge, unavailable = self._limits(strategy, replicas)
                self._roll(key, replicas, surge, unavailable, new, old)
            self._prune(key, spec.get("revisionHistoryLimit", 10), old)
        self._write_status(d, replicas, new["metadata"]["name"])

    @staticmethod
    def _limits(strategy: dict, replicas: int) -> tuple[int, int]:
        rolling = strategy.get("rollingUpdate") or {}
        surge = scaled_count(rolling.get("maxSurge", "25%"), replicas, round_up=True)
        unavailable = scaled_count(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        return surge, unavailable

    def _create_rs(self, d: dict, h: str, revision: int) -> dict:
        spec = d["spec"]
        template = copy.deepcopy(spec.get("template") or {})
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), HASH_LABEL: h}
        selector = copy.deepcopy(spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: h}
        name = f"{d['metadata']['name']}-{h}"
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": name, "namespace": d["metadata"]["namespace"], "labels": tmeta["labels"],
                           "annotations": {REVISION: str(revision),
                                           "deployment.kubernetes.io/desired-replicas": str(spec.get("replicas", 1))},
                           "ownerReferences": [controller_ref(d)]},
              "spec": {"replicas": 0, "selector": selector, "template": template}}
        def annotate(o: dict) -> None:
            o["metadata"]["annotations"] = {**(o["metadata"].get("annotations") or {}), REVISION: str(revision)}
        self.store.mutate(self.rt, d["metadata"]["namespace"], d["metadata"]["name"], annotate)
        return self.store.create(self.rs_rt, rs, d["metadata"]["namespace"])

    def _scale(self, ns: str, rs: dict, replicas: int) -> dict:
        if _replicas(rs) == replicas:
            return rs
        return self.store.mutate(self.rs_rt, ns, rs["metadata"]["name"],
                                 lambda o: o["spec"].__setitem__("replicas", replicas))

    def _recreate(self, key, replicas: int, new: dict, old: list[dict]) -> None:
        for rs in old:
            self._scale(key[0], rs, 0)
        if all((rs.get("status") or {}).get("replicas", 0) == 0 for rs in old):
            self._scale(key[0], new, replicas)

    def _roll(self, key, replicas: int, surge: int, unavailable: int, new: dict, old: list[dict]) -> None:
        total = _replicas(new) + sum(_replicas(rs) for rs in old)
        if _replicas(new) > replicas:
            new = self._scale(key[0], new, replicas)
        elif _replicas(new) < replicas and total < replicas + surge:
            new = self._scale(key[0], new, min(replicas, _replicas(new) + replicas + surge - total))
        total = _replicas(new) + sum(_replicas(rs) for rs in old)
        new_unavailable = _replicas(new) - (new.get("status") or {}).get("availableReplicas", 0)
        can_remove = total - (replicas - unavailable) - max(0, new_unavailable)
        for rs in old:
            unhealthy = _replicas(rs) - (rs.get("status") or {}).get("availableReplicas", 0)
            take = min(_replicas(rs), max(0, can_remove) + max(0, unhealthy))
            if take > 0:
                self._scale(key[0], rs, _replicas(rs) - take)
                can_remove -= take

    def _prune(self, key, limit: int, old: list[dict]) -> None:
        empty = [rs for rs in old if _replicas(rs) == 0 and (rs.get("status") or {}).get("replicas", 0) == 0]
        for rs in empty[:max(0, len(empty) - limit)]:
            self.store.delete(self.rs_rt, key[0], rs["metadata"]["name"])

    def _write_status(self, d: dict, replicas: int, new_name: str) -> None:
        ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
        sets = owned(self.store, d, "ReplicaSet")
        st = [rs.get("status") or {} for rs in sets]
        new_status = next((rs.get("status") or {} for rs in sets if rs["metadata"]["name"] == new_name), {})
        total = sum(s.get("replicas", 0) for s in st)
        available = sum(s.get("availableReplicas", 0) for s in st)
        updated = new_status.get("replicas", 0)
        _, max_unavailable = self._limits(d["spec"].get("strategy") or {}, replicas)
        previous, now = (d.get("status") or {}).get("conditions"), now_iso()
        complete = updated == replicas and total == replicas and available == replicas
        status = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": total, "updatedReplicas": updated,
            "readyReplicas": sum(s.get("readyReplicas", 0) for s in st), "availableReplicas": available,
            "unavailableReplicas": max(0, sum(_replicas(rs) for rs in sets) - available),
            "conditions": [
                condition(previous, "Available", available >= replicas - max_unavailable,
                          "MinimumReplicasAvailable" if available >= replicas - max_unavailable
                          else "MinimumReplicasUnavailable",
                          "Deployment has minimum availability." if available >= replicas - max_unavailable
                          else "Deployment does not have minimum availability.", now),
                condition(previous, "Progressing", True,
                          "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                          f'ReplicaSet "{new_name}" has successfully progressed.' if complete
                          else f'ReplicaSet "{new_name}" is progressing.', now),
            ],
        }
        for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"):
            if not status[k]:
                del status[k]
        self.store.write_status(self.rt, ns, name, status)

