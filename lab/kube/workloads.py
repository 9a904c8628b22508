"""Compact builders for the objects a scenario puts into a user cluster, and `create` to store them.

Builders return plain manifests (usable with the store or through any client); `create` stores
them on the lab's loop: `lab.call(lambda: create(cluster, *objs))`.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from .kubelet import RUN_SECONDS_ANNOTATION
from .machinedeployment import GROUP, VERSION
from .nodes import KERNEL_ANNOTATION, node_manifest

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"


def namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def nodes(count: int, prefix: str = "worker", *, labels: dict | None = None, os: str = "ubuntu",
          kernel: str | None = None, ready: bool = True, first: int = 1) -> list[dict]:
    """`count` nodes named <prefix>-<n>; Ready at once unless `ready` is False (then they join)."""
    return [node_manifest(f"{prefix}-{i}", labels=labels, os=os, kernel=kernel, ready=ready)
            for i in range(first, first + count)]


def pod_spec(containers: Sequence[str] | str, *, image: str = PAUSE_IMAGE, host_network: bool = False,
             node_selector: dict | None = None, restart_policy: str = "Always") -> dict:
    names = [containers] if isinstance(containers, str) else list(containers)
    spec = {"containers": [{"name": n, "image": image} for n in names], "restartPolicy": restart_policy,
            "terminationGracePeriodSeconds": 30}
    if host_network:
        spec["hostNetwork"] = True
        spec["dnsPolicy"] = "ClusterFirstWithHostNet"
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    return spec


def _meta(name: str, namespace_: str, labels: dict, annotations: dict | None = None) -> dict:
    meta = {"name": name, "namespace": namespace_, "labels": dict(labels)}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def _template(labels: dict, spec: dict, annotations: dict | None = None) -> dict:
    meta: dict = {"labels": dict(labels)}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"metadata": meta, "spec": spec}


def _workload(kind: str, group: str, name: str, namespace_: str, labels: dict | None, pod: dict,
              extra_spec: dict, pod_annotations: dict | None = None) -> dict:
    labels = labels or {"app": name}
    return {"apiVersion": f"{group}/v1", "kind": kind, "metadata": _meta(name, namespace_, labels),
            "spec": {"selector": {"matchLabels": dict(labels)}, "template": _template(labels, pod, pod_annotations),
                     **extra_spec}}


def deployment(name: str, namespace: str = "default", replicas: int = 1, *, labels: dict | None = None,
               containers: Sequence[str] | None = None, host_network: bool = False,
               node_selector: dict | None = None, strategy: dict | None = None) -> dict:
    extra = {"replicas": replicas, **({"strategy": strategy} if strategy else {})}
    return _workload("Deployment", "apps", name, namespace, labels,
                     pod_spec(containers or name, host_network=host_network, node_selector=node_selector), extra)


def statefulset(name: str, namespace: str = "default", replicas: int = 1, *, labels: dict | None = None,
                containers: Sequence[str] | None = None, parallel: bool = False) -> dict:
    extra = {"replicas": replicas, "serviceName": name,
             "podManagementPolicy": "Parallel" if parallel else "OrderedReady"}
    return _workload("StatefulSet", "apps", name, namespace, labels, pod_spec(containers or name), extra)


def daemonset(name: str, namespace: str = "default", *, labels: dict | None = None,
              containers: Sequence[str] | None = None, host_network: bool = False,
              node_selector: dict | None = None, max_unavailable: int | str = 1) -> dict:
    extra = {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": max_unavailable}}}
    return _workload("DaemonSet", "apps", name, namespace, labels,
                     pod_spec(containers or name, host_network=host_network, node_selector=node_selector), extra)


def job(name: str, namespace: str = "default", *, completions: int = 1, parallelism: int = 1,
        run_seconds: float | None = None, containers: Sequence[str] | None = None) -> dict:
    """A Job whose pods succeed after `run_seconds` of simulated time (the kubelet's default otherwise)."""
    obj = _workload("Job", "batch", name, namespace, {"job-name": name},
                    pod_spec(containers or name, restart_policy="Never"),
                    {"completions": completions, "parallelism": parallelism, "backoffLimit": 6},
                    {RUN_SECONDS_ANNOTATION: str(run_seconds)} if run_seconds is not None else None)
    del obj["spec"]["selector"]            # the API server's job controller picks it from the uid
    return obj


def pdb(name: str, namespace: str = "default", *, match_labels: dict, min_available: int | str | None = None,
        max_unavailable: int | str | None = None) -> dict:
    spec: dict = {"selector": {"matchLabels": dict(match_labels)}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name,
                                                                                   "namespace": namespace},
            "spec": spec}


def pod(name: str, namespace: str = "default", *, labels: dict | None = None,
        containers: Sequence[str] | None = None, host_network: bool = False, node_name: str | None = None) -> dict:
    """A bare pod (no controller), e.g. what the runbook's restart step leaves alone when it is host-network."""
    spec = pod_spec(containers or name, host_network=host_network)
    if node_name:
        spec["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _meta(name, namespace, labels or {"app": name}),
            "spec": spec}


def machine_deployment(name: str, replicas: int, *, namespace: str = "kube-system", os: str = "ubuntu",
                       kernel: str | None = None, kubelet: str = "1.33.4", cloud: str = "aws") -> dict:
    annotations = {KERNEL_ANNOTATION: kernel} if kernel else {}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MachineDeployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas,
                     "selector": {"matchLabels": {"machine": name}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"machine": name}, "annotations": annotations},
                                  "spec": {"metadata": {"labels": {}},
                                           "providerSpec": {"value": {"cloudProvider": cloud, "operatingSystem": os}},
                                           "versions": {"kubelet": kubelet}}}}}


def create(cluster, *objs: dict | Iterable[dict]) -> list[dict]:
    """Store manifests (or lists of them) in `cluster`; run on the lab's loop."""
    store, out = cluster.store, []
    by_kind = {(rt.api_version, rt.kind): rt for rt in store.served()}
    for item in objs:
        for obj in ([item] if isinstance(item, dict) else item):
            rt = by_kind[(obj["apiVersion"], obj["kind"])]
            out.append(store.create(rt, obj, obj["metadata"].get("namespace")))
    return out
