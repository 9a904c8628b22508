"""Deletion as clients see it: graceful pods, finalizers, garbage collection, namespaces and CRDs."""

from __future__ import annotations

import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.lab.apiserver_support import (  # noqa: F401  (fixtures)
    MERGE, api, crd, deployment, kubectl, owner_ref, pod, stored, u1,
)


def _eventually(predicate, what: str, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _finish_pod(lab, cluster, namespace: str, name: str) -> None:
    """The kubelet's last step once a pod's containers stopped."""
    store = cluster.store
    uid = stored(lab, cluster, "", "pods", namespace, name)["metadata"]["uid"]
    lab.call(lambda: store.finish_graceful_delete(store.rtype("", "pods"), namespace, name, uid))


def test_scheduled_pod_deletion_is_graceful(lab, u1, api):
    api.core.create_namespaced_pod("default", pod("scheduled", node="n1"))
    api.core.create_namespaced_pod("default", pod("unscheduled"))

    answered = api.core.delete_namespaced_pod("scheduled", "default")
    assert answered.metadata.deletion_timestamp is not None
    terminating = stored(lab, u1, "", "pods", "default", "scheduled")
    assert terminating["metadata"]["deletionGracePeriodSeconds"] == 30 and terminating["metadata"]["deletionTimestamp"]
    assert api.core.read_namespaced_pod("scheduled", "default").metadata.deletion_timestamp is not None

    _finish_pod(lab, u1, "default", "scheduled")
    assert stored(lab, u1, "", "pods", "default", "scheduled") is None

    api.core.delete_namespaced_pod("unscheduled", "default")
    assert stored(lab, u1, "", "pods", "default", "unscheduled") is None


def test_zero_grace_period_deletes_a_scheduled_pod_at_once(lab, u1, api):
    api.core.create_namespaced_pod("default", pod("p", node="n1"))
    api.core.delete_namespaced_pod("p", "default", grace_period_seconds=0)
    assert stored(lab, u1, "", "pods", "default", "p") is None


def test_finalizers_keep_an_object_until_removed(lab, u1, api):
    api.core.create_namespaced_config_map("default", {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    api.core.delete_namespaced_config_map("held", "default")
    held = stored(lab, u1, "", "configmaps", "default", "held")
    assert held["metadata"]["deletionTimestamp"] and held["metadata"]["finalizers"] == ["example.com/hold"]

    api.core.delete_namespaced_config_map("held", "default")  # deleting again changes nothing
    assert stored(lab, u1, "", "configmaps", "default", "held") == held

    api.core.patch_namespaced_config_map("held", "default", {"metadata": {"finalizers": None}}, _content_type=MERGE)
    assert stored(lab, u1, "", "configmaps", "default", "held") is None


def _family(api, name: str = "web"):
    """A Deployment owning two pods (one of them also owned by a ConfigMap that stays)."""
    owner = api.apps.create_namespaced_deployment("default", deployment(name)).to_dict()
    owner = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": owner["metadata"]["name"],
                                                                         "uid": owner["metadata"]["uid"]}}
    other = api.core.create_namespaced_config_map("default", {"metadata": {"name": "other-owner"}})
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other-owner", "uid": other.metadata.uid}}
    api.core.create_namespaced_pod("default", pod(f"{name}-1", node="n1", owner=owner_ref(owner, block=True)))
    shared = pod(f"{name}-2", owner=owner_ref(owner, block=True))
    shared["metadata"]["ownerReferences"].append(owner_ref(other))
    api.core.create_namespaced_pod("default", shared)
    api.core.create_namespaced_pod("default", pod(f"{name}-3", owner=owner_ref(owner, block=True)))


def test_background_propagation_removes_dependents_after_the_owner(lab, u1, api):
    _family(api)
    api.apps.delete_namespaced_deployment("web", "default")
    assert stored(lab, u1, "apps", "deployments", "default", "web") is None
    _eventually(lambda: stored(lab, u1, "", "pods", "default", "web-3") is None, "web-3 to be collected")
    assert stored(lab, u1, "", "pods", "default", "web-1")["metadata"]["deletionTimestamp"]  # graceful: scheduled
    shared = stored(lab, u1, "", "pods", "default", "web-2")
    assert shared is not None and not shared["metadata"].get("deletionTimestamp")  # another owner still lives


def test_foreground_propagation_keeps_the_owner_until_dependents_are_gone(lab, u1, api):
    _family(api)
    api.apps.delete_namespaced_deployment("web", "default", propagation_policy="Foreground")
    owner = stored(lab, u1, "apps", "deployments", "default", "web")
    assert owner["metadata"]["deletionTimestamp"] and owner["metadata"]["finalizers"] == ["foregroundDeletion"]
    _eventually(lambda: stored(lab, u1, "", "pods", "default", "web-3") is None, "web-3 to be collected")
    _eventually(lambda: stored(lab, u1, "", "pods", "default", "web-2") is None, "web-2 to be collected")
    assert stored(lab, u1, "", "pods", "default", "web-1")["metadata"]["deletionTimestamp"]
    assert stored(lab, u1, "apps", "deployments", "default", "web") is not None  # web-1 still terminating

    _finish_pod(lab, u1, "default", "web-1")
    _eventually(lambda: stored(lab, u1, "apps", "deployments", "default", "web") is None, "the owner to go")


def test_orphan_propagation_leaves_dependents_without_the_owner_reference(lab, u1, api):
    _family(api)
    api.apps.delete_namespaced_deployment("web", "default", propagation_policy="Orphan")
    assert stored(lab, u1, "apps", "deployments", "default", "web") is None
    time.sleep(0.2)  # give a (wrong) collection the chance to run
    for name in ("web-1", "web-3"):
        left = stored(lab, u1, "", "pods", "default", name)
        assert left is not None and not left["metadata"].get("deletionTimestamp")
        assert not left["metadata"].get("ownerReferences")
    assert [r["kind"] for r in stored(lab, u1, "", "pods", "default", "web-2")["metadata"]["ownerReferences"]] == [
        "ConfigMap"]


def test_namespace_deletion_removes_its_objects(lab, u1, api):
    api.crds.create_custom_resource_definition(crd())
    api.core.create_namespace({"metadata": {"name": "team"}})
    api.core.create_namespaced_config_map("team", {"metadata": {"name": "cfg"}})
    api.core.create_namespaced_pod("team", pod("p", namespace="team", node="n1"))
    api.custom.create_namespaced_custom_object("example.com", "v1", "team", "widgets", {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "finalizers": ["example.com/x"]}})
    api.core.create_namespaced_config_map("default", {"metadata": {"name": "elsewhere"}})

    api.core.delete_namespace("team")
    assert api.core.read_namespace("team").status.phase == "Terminating"
    with pytest.raises(ApiException) as err:
        api.core.create_namespaced_config_map("team", {"metadata": {"name": "late"}})
    assert err.value.status == 403 and "being terminated" in err.value.body
    _eventually(lambda: stored(lab, u1, "", "configmaps", "team", "cfg") is None, "team's configmap to go")
    assert stored(lab, u1, "", "pods", "team", "p") is None
    assert stored(lab, u1, "", "namespaces", None, "team") is not None  # the widget's finalizer holds it

    api.custom.patch_namespaced_custom_object("example.com", "v1", "team", "widgets", "w",
                                              {"metadata": {"finalizers": None}})
    _eventually(lambda: stored(lab, u1, "", "namespaces", None, "team") is None, "the namespace to go")
    assert stored(lab, u1, "", "configmaps", "default", "elsewhere") is not None


def test_crd_deletion_removes_its_resources_and_its_api(lab, u1, api, kubectl):
    api.crds.create_custom_resource_definition(crd())
    for name in ("w1", "w2"):
        api.custom.create_namespaced_custom_object("example.com", "v1", "default", "widgets", {
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}})
    assert "widgets.example.com" in kubectl("api-resources", "-o", "name").stdout.split()
    assert "example.com" in [g.name for g in client.ApisApi(api.raw).get_api_versions().groups]

    api.crds.delete_custom_resource_definition("widgets.example.com")
    assert stored(lab, u1, "apiextensions.k8s.io", "customresourcedefinitions", None, "widgets.example.com") is None
    assert lab.call(lambda: ("example.com", "widgets") in u1.store.types) is False
    assert "widgets.example.com" not in kubectl("api-resources", "-o", "name").stdout.split()
    with pytest.raises(ApiException) as err:
        api.custom.list_namespaced_custom_object("example.com", "v1", "default", "widgets")
    assert err.value.status == 404
    assert "example.com" not in [g.name for g in client.ApisApi(api.raw).get_api_versions().groups]

    api.crds.create_custom_resource_definition(crd())  # recreated, it starts empty
    assert api.custom.list_namespaced_custom_object("example.com", "v1", "default", "widgets")["items"] == []
