"""What the workload controllers share: controller references, owned objects, pod templates and hashes."""

from __future__ import annotations

import copy
import hashlib
import json

from lab.apiserver.store import Store

HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"   # the letters Kubernetes uses for generated names
DONE_PHASES = ("Succeeded", "Failed")


def controller_ref(owner: dict) -> dict:
    meta = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def controller_of(obj: dict) -> dict | None:
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def owner_key(obj: dict, kind: str):
    """(namespace, name) of the `kind` controlling `obj`, or None."""
    ref = controller_of(obj)
    if ref is None or ref.get("kind") != kind:
        return None
    return obj["metadata"].get("namespace") or "", ref["name"]


def owned(store: Store, owner: dict, kind: str) -> list[dict]:
    """The `kind` objects whose controller is `owner` (found through the store's owner index)."""
    uid = owner["metadata"]["uid"]
    out = []
    for obj in store.by_owner(uid):
        ref = controller_of(obj)
        if obj.get("kind") == kind and ref is not None and ref["uid"] == uid:
            out.append(obj)
    return out


def template_hash(template: dict) -> str:
    """A short stable hash of a pod (or machine) template, spelled like pod-template-hash values."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(HASH_ALPHABET[b % len(HASH_ALPHABET)] for b in digest[:10])


def is_active(pod: dict) -> bool:
    """Counts towards a controller's replicas: not terminating and not finished."""
    return not pod["metadata"].get("deletionTimestamp") and (pod.get("status") or {}).get("phase") not in DONE_PHASES


def pod_from_template(owner: dict, template: dict, *, name: str | None = None, labels: dict | None = None) -> dict:
    """A pod as a controller creates it: the template's labels, annotations and spec plus a controller ref."""
    tmeta = template.get("metadata") or {}
    spec = copy.deepcopy(template.get("spec") or {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    meta = {"namespace": owner["metadata"]["namespace"],
            "labels": {**(tmeta.get("labels") or {}), **(labels or {})},
            "ownerReferences": [controller_ref(owner)]}
    if name:
        meta["name"] = name
    else:
        meta["generateName"] = owner["metadata"]["name"] + "-"
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def scaled_count(value, total: int, round_up: bool) -> int:
    """An int-or-percent field (maxSurge, maxUnavailable) resolved against `total`."""
    if isinstance(value, str) and value.endswith("%"):
        exact = total * int(value[:-1]) / 100
        return int(-(-exact // 1)) if round_up else int(exact)
    return int(value)


def condition(previous: list | None, type_: str, status: bool, reason: str, message: str, now: str) -> dict:
    """A status condition that keeps its transition time while its status and reason stay the same."""
    value = "True" if status else "False"
    for old in previous or ():
        if old.get("type") == type_ and old.get("status") == value and old.get("reason") == reason:
            return {**old, "message": message}
    return {"type": type_, "status": value, "lastUpdateTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}


class OwnerController:
    """A controller of one kind that owns objects of another: it reconciles an owner when the owner
    changes and when one of its children does (the ReplicaSet, Deployment, StatefulSet and Job
    controllers). Subclasses name the two resources and write `reconcile(key)`."""

    kind = group = plural = child_group = child_plural = ""

    def __init__(self, kube):
        self.kube = kube
        self.store = kube.store
        self.rt = kube.rt(self.group, self.plural)
        self.queue = kube.queue(self.kind.lower(), self.reconcile)

    def start(self) -> None:
        for obj in self.store.items(self.rt):
            self.queue.add((obj["metadata"]["namespace"], obj["metadata"]["name"]))
        self.store.listen(self.group, self.plural, self._on_owner)
        self.store.listen(self.child_group, self.child_plural, self._on_child)

    def _on_owner(self, event) -> None:
        if event.type != "DELETED":
            self.queue.add((event.obj["metadata"]["namespace"], event.obj["metadata"]["name"]))

    def _on_child(self, event) -> None:
        key = owner_key(event.obj, self.kind)
        if key:
            self.queue.add(key)

    def reconcile(self, key) -> None:
        raise NotImplementedError
