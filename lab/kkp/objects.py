"""Kubernetes manifests the simulated KKP writes into user clusters, and the apply/delete it does.

KKP's addon manager and Helm both converge a cluster on a set of manifests: create what is
missing, update what differs, leave everything else alone. `apply` is that, on the lab store.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging

from lab.apiserver.resources import ResourceType
from lab.apiserver.store import Store

log = logging.getLogger("lab.kkp")

def rtype(store: Store, obj: dict) -> ResourceType | None:
    """The served resource type of a manifest (by apiVersion group and kind), None when not served."""
    group = obj["apiVersion"].rpartition("/")[0]
    for rt in store.served():
        if rt.group == group and rt.kind == obj["kind"]:
            return rt
    return None


def apply(store: Store, obj: dict) -> dict:
    """Create `obj`, or bring the stored object's labels, annotations and content in line with it."""
    rt = rtype(store, obj)
    if rt is None:
        raise ValueError(f"{obj['apiVersion']} {obj['kind']} is not served by lab cluster {store.name}")
    m = obj["metadata"]
    current = store.try_get(rt, m.get("namespace"), m["name"])
    if current is None:
        if obj["kind"] == "Namespace":
            obj = {**obj, "status": {"phase": "Active"}}
        return store.create(rt, obj, m.get("namespace"))

    def converge(stored: dict) -> None:
        for field in ("labels", "annotations"):
            if m.get(field):
                stored["metadata"][field] = {**(stored["metadata"].get(field) or {}), **m[field]}
        for key, value in obj.items():
            if key not in ("metadata", "status", "apiVersion", "kind"):
                stored[key] = copy.deepcopy(value)
    return store.mutate(rt, m.get("namespace"), m["name"], converge)


def apply_all(store: Store, objs: list[dict]) -> list[dict]:
    """Apply in order; objects of a type the cluster does not serve are skipped, as an addon apply
    that fails on them leaves the rest in place (e.g. policy/v1beta1 in Canal v3.21 on Kubernetes 1.33)."""
    applied = []
    for obj in objs:
        if rtype(store, obj) is None:
            log.warning("lab cluster %s does not serve %s %s; %s not applied", store.name, obj["apiVersion"],
                        obj["kind"], obj["metadata"]["name"])
            continue
        applied.append(apply(store, obj))
    return applied


def delete(store: Store, obj: dict) -> bool:
    """Delete the object a manifest names; False when it was not there (or its type is not served)."""
    rt = rtype(store, obj)
    m = obj["metadata"]
    if rt is None or store.try_get(rt, m.get("namespace"), m["name"]) is None:
        return False
    store.delete(rt, m.get("namespace"), m["name"])
    return True


def checksum(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def meta(name: str, namespace: str | None = None, labels: dict | None = None,
         annotations: dict | None = None) -> dict:
    out: dict = {"name": name}
    if namespace:
        out["namespace"] = namespace
    if labels:
        out["labels"] = dict(labels)
    if annotations:
        out["annotations"] = dict(annotations)
    return out


def container(name: str, image: str) -> dict:
    return {"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}}}


def pod_template(labels: dict, containers: list[dict], *, host_network: bool = False,
                 service_account: str | None = None, annotations: dict | None = None,
                 tolerate_all: bool = False, restart_policy: str = "Always") -> dict:
    spec: dict = {"containers": containers, "restartPolicy": restart_policy, "terminationGracePeriodSeconds": 30,
                  "dnsPolicy": "ClusterFirstWithHostNet" if host_network else "ClusterFirst"}
    if host_network:
        spec["hostNetwork"] = True
    if service_account:
        spec["serviceAccountName"] = service_account
    if tolerate_all:
        spec["tolerations"] = [{"operator": "Exists"}]
    tmeta: dict = {"labels": dict(labels)}
    if annotations:
        tmeta["annotations"] = dict(annotations)
    return {"metadata": tmeta, "spec": spec}


def deployment(name: str, namespace: str, labels: dict, template: dict, replicas: int = 1) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": meta(name, namespace, labels),
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)}, "template": template,
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}}}


def daemonset(name: str, namespace: str, labels: dict, template: dict) -> dict:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta(name, namespace, labels),
            "spec": {"selector": {"matchLabels": dict(labels)}, "template": template,
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}}}


def job(name: str, namespace: str, labels: dict, template: dict, completions: int = 1) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta(name, namespace, labels),
            "spec": {"completions": completions, "parallelism": 1, "backoffLimit": 6, "template": template}}


def pdb(name: str, namespace: str, labels: dict, *, min_available=None, max_unavailable=None) -> dict:
    spec: dict = {"selector": {"matchLabels": dict(labels)}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta(name, namespace, labels),
            "spec": spec}


def service_account(name: str, namespace: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(name, namespace, labels)}


def config_map(name: str, namespace: str, data: dict, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(name, namespace, labels), "data": dict(data)}


def cluster_role(name: str, rules: list[dict], labels: dict | None = None) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta(name, None, labels),
            "rules": rules}


def cluster_role_binding(name: str, role: str, subjects: list[tuple[str, str]], labels: dict | None = None) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": meta(name, None, labels),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": n, "namespace": ns} for n, ns in subjects]}
