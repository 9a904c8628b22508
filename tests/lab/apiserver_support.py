"""Shared pieces of the API-server conformance tests: a bare user cluster, typed clients, kubectl.

The tests drive the lab only through real clients; `lab.call` is used to read the store's state
or to do what a controller or the kubelet would (there are no controllers in a bare cluster).
"""

from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace

import pytest
from kubernetes import client

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


@pytest.fixture
def u1(lab):
    """A bare user cluster: default namespaces only, no controllers."""
    return lab.add_cluster("u1")


@pytest.fixture
def api(u1, kube_client):
    """The `kubernetes` client's typed APIs for u1, as its admin."""
    c = kube_client(u1)
    return SimpleNamespace(
        raw=c, core=client.CoreV1Api(c), apps=client.AppsV1Api(c), custom=client.CustomObjectsApi(c),
        crds=client.ApiextensionsV1Api(c), policy=client.PolicyV1Api(c), rbac=client.RbacAuthorizationV1Api(c),
    )


@pytest.fixture
def kubectl(u1, kubeconfig_file, tmp_path):
    """`kubectl(*args, stdin=None, check=True)` against u1 -> CompletedProcess (text)."""
    config = kubeconfig_file(u1)

    def run(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["kubectl", "--kubeconfig", config, "--cache-dir", str(tmp_path / "kube-cache"),
                               *args], input=stdin, capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc
    return run


def stored(lab, cluster, group: str, plural: str, namespace: str | None, name: str) -> dict | None:
    """The object as the lab holds it (None when gone)."""
    store = cluster.store
    return lab.call(lambda: store.try_get(store.rtype(group, plural), namespace, name))


def pod(name: str, namespace: str = "default", labels: dict | None = None, node: str | None = None,
        host_network: bool | None = None, owner: dict | None = None) -> dict:
    spec = {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}]}
    if node:
        spec["nodeName"] = node
    if host_network is not None:
        spec["hostNetwork"] = host_network
    meta = {"name": name, "namespace": namespace, "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [owner]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def deployment(name: str, namespace: str = "default", replicas: int = 2) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                     {"name": "web", "image": "nginx:1.25"}, {"name": "sidecar", "image": "busybox:1.36"}]}}},
    }


def owner_ref(obj: dict, block: bool = False) -> dict:
    meta = obj["metadata"]
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"], "uid": meta["uid"],
            "blockOwnerDeletion": block}


def mark_running(api, name: str, namespace: str = "default", ready: bool = True) -> dict:
    """What the kubelet reports for a started pod, written through the /status subresource."""
    status = {"phase": "Running", "podIP": "10.0.0.1",
              "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
              "containerStatuses": [{"name": "app", "ready": ready, "restartCount": 0, "image": "pause",
                                     "imageID": "", "state": {"running": {}}}]}
    return api.core.patch_namespaced_pod_status(name, namespace, {"status": status}, _content_type=MERGE)


def status_body(exc) -> dict:
    """The Kubernetes Status object an ApiException carries."""
    return json.loads(exc.body)


def crd(group: str = "example.com", kind: str = "Widget", plural: str = "widgets",
        namespaced: bool = True) -> dict:
    from lab.apiserver.resources import crd_object
    return crd_object(group, "v1", kind, plural, namespaced, short_names=("wd",))
