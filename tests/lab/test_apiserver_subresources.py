"""Subresources: status, scale and eviction (with PodDisruptionBudgets)."""

from __future__ import annotations

import pytest
from kubernetes.client.rest import ApiException

from tests.lab.apiserver_support import (  # noqa: F401  (fixtures)
    MERGE, api, crd, deployment, kubectl, mark_running, pod, status_body, stored, u1,
)


def test_main_resource_update_ignores_status(lab, u1, api):
    api.apps.create_namespaced_deployment("default", deployment("web"))
    api.apps.patch_namespaced_deployment_status("web", "default", {"status": {"replicas": 2}}, _content_type=MERGE)
    current = api.apps.read_namespaced_deployment("web", "default")
    current.spec.replicas = 4
    current.status.replicas = 99
    api.apps.replace_namespaced_deployment("web", "default", current)
    obj = stored(lab, u1, "apps", "deployments", "default", "web")
    assert obj["spec"]["replicas"] == 4 and obj["status"] == {"replicas": 2}


def test_status_update_ignores_spec_and_metadata(lab, u1, api):
    api.apps.create_namespaced_deployment("default", deployment("web"))
    current = api.apps.read_namespaced_deployment("web", "default")
    current.spec.replicas = 7
    current.metadata.labels = {"sneaky": "yes"}
    current.status = {"replicas": 2, "readyReplicas": 1}
    api.apps.replace_namespaced_deployment_status("web", "default", current)
    obj = stored(lab, u1, "apps", "deployments", "default", "web")
    assert obj["spec"]["replicas"] == 2 and not obj["metadata"].get("labels")
    assert obj["status"] == {"replicas": 2, "readyReplicas": 1} and obj["metadata"]["generation"] == 1


def _workload(kind: str) -> dict:
    """A minimal object of an apps kind (or a Pod) named `x`."""
    if kind == "Pod":
        return pod("x")
    body = deployment("x")
    body["kind"] = kind
    if kind == "DaemonSet":
        del body["spec"]["replicas"]
    return body


# kind -> (client method suffix, plural, a status the kind's status model accepts)
STATUS_KINDS = {
    "Deployment": ("deployment", "deployments", {"replicas": 2, "readyReplicas": 1}),
    "DaemonSet": ("daemon_set", "daemonsets", {"currentNumberScheduled": 3, "desiredNumberScheduled": 3,
                                                "numberMisscheduled": 0, "numberReady": 2}),
    "ReplicaSet": ("replica_set", "replicasets", {"replicas": 2, "readyReplicas": 1}),
    "StatefulSet": ("stateful_set", "statefulsets", {"replicas": 2, "readyReplicas": 1}),
    "Pod": ("pod", "pods", {"phase": "Running", "podIP": "10.0.0.9"}),
}


@pytest.mark.parametrize("kind", list(STATUS_KINDS))
def test_status_subresource_writes_only_status_and_main_update_ignores_status(lab, u1, api, kind):
    suffix, plural, status = STATUS_KINDS[kind]
    typed, group = (api.core, "") if kind == "Pod" else (api.apps, "apps")
    create, read, replace, replace_status = (getattr(typed, f"{verb}_namespaced_{suffix}{tail}") for verb, tail in (
        ("create", ""), ("read", ""), ("replace", ""), ("replace", "_status")))
    spec_field = "activeDeadlineSeconds" if kind == "Pod" else "minReadySeconds"
    create("default", _workload(kind))

    sent = api.raw.sanitize_for_serialization(read("x", "default"))
    sent["spec"][spec_field] = 30
    sent["metadata"]["labels"] = {"sneaky": "yes"}
    sent["status"] = status
    replace_status("x", "default", sent)
    obj = stored(lab, u1, group, plural, "default", "x")
    assert obj["status"] == status and spec_field not in obj["spec"]
    assert "sneaky" not in (obj["metadata"].get("labels") or {})

    sent = api.raw.sanitize_for_serialization(read("x", "default"))
    sent["spec"][spec_field] = 30
    sent["status"] = {**status, "observedGeneration": 99} if kind != "Pod" else {"phase": "Failed"}
    replace("x", "default", sent)
    obj = stored(lab, u1, group, plural, "default", "x")
    assert obj["spec"][spec_field] == 30 and obj["status"] == status


def test_custom_resource_status_subresource(lab, u1, api):
    api.crds.create_custom_resource_definition(crd())
    api.custom.create_namespaced_custom_object("example.com", "v1", "default", "widgets", {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1},
        "status": {"phase": "ignored on create"}})
    assert "status" not in stored(lab, u1, "example.com", "widgets", "default", "w")
    api.custom.patch_namespaced_custom_object_status("example.com", "v1", "default", "widgets", "w",
                                                     {"spec": {"size": 5}, "status": {"phase": "Ready"}})
    api.custom.patch_namespaced_custom_object("example.com", "v1", "default", "widgets", "w",
                                              {"status": {"phase": "Broken"}})
    obj = stored(lab, u1, "example.com", "widgets", "default", "w")
    assert obj["spec"] == {"size": 1} and obj["status"] == {"phase": "Ready"}


def test_scale_subresource_get_and_patch(lab, u1, api, kubectl):
    api.apps.create_namespaced_deployment("default", deployment("web", replicas=2))
    scale = api.apps.read_namespaced_deployment_scale("web", "default")
    assert scale.spec.replicas == 2 and scale.status.selector == "app=web"

    api.apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 5}}, _content_type=MERGE)
    obj = stored(lab, u1, "apps", "deployments", "default", "web")
    assert obj["spec"]["replicas"] == 5 and obj["metadata"]["generation"] == 2

    kubectl("scale", "deployment", "web", "--replicas=1")
    assert stored(lab, u1, "apps", "deployments", "default", "web")["spec"]["replicas"] == 1


def _eviction(name: str, namespace: str = "default") -> dict:
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}}


def _ready_pods(api, count: int, app: str = "web") -> list[str]:
    names = [f"{app}-{i}" for i in range(count)]
    for name in names:
        api.core.create_namespaced_pod("default", pod(name, labels={"app": app}, node="n1"))
        mark_running(api, name)
    return names


def test_eviction_without_budget_deletes_the_pod(lab, u1, api):
    _ready_pods(api, 1)
    _, code, _ = api.core.create_namespaced_pod_eviction_with_http_info("web-0", "default", _eviction("web-0"))
    assert code == 201
    assert stored(lab, u1, "", "pods", "default", "web-0")["metadata"]["deletionTimestamp"]


@pytest.mark.parametrize("budget, allowed", [
    ({"minAvailable": 3}, 1),
    ({"minAvailable": "50%"}, 2),
    ({"maxUnavailable": 1}, 1),
    ({"maxUnavailable": "30%"}, 2),  # 30% of 4 rounds up to 2
])
def test_eviction_respects_the_disruption_budget(lab, u1, api, budget, allowed):
    names = _ready_pods(api, 4)
    api.policy.create_namespaced_pod_disruption_budget("default", {
        "metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, **budget}})

    evicted = []
    for name in names:
        try:
            api.core.create_namespaced_pod_eviction(name, "default", _eviction(name))
        except ApiException as err:
            body = status_body(err)
            assert err.status == 429 and body["reason"] == "TooManyRequests"
            assert body["details"]["causes"][0]["reason"] == "DisruptionBudget"
            assert not stored(lab, u1, "", "pods", "default", name)["metadata"].get("deletionTimestamp")
            break
        evicted.append(name)
    assert evicted == names[:allowed]
    for name in evicted:
        assert stored(lab, u1, "", "pods", "default", name)["metadata"]["deletionTimestamp"]


def test_block_evictions_fault_refuses_every_eviction_with_429(lab, u1, api):
    _ready_pods(api, 1)                                  # no budget: the eviction would be allowed
    lab.call(lambda: u1.faults.update(block_evictions=True))
    with pytest.raises(ApiException) as err:
        api.core.create_namespaced_pod_eviction("web-0", "default", _eviction("web-0"))
    body = status_body(err.value)
    assert err.value.status == 429 and body["reason"] == "TooManyRequests" and body["code"] == 429
    assert body["details"]["causes"][0]["reason"] == "DisruptionBudget"
    assert not stored(lab, u1, "", "pods", "default", "web-0")["metadata"].get("deletionTimestamp")

    lab.call(lambda: u1.faults.update(block_evictions=False))
    api.core.create_namespaced_pod_eviction("web-0", "default", _eviction("web-0"))
    assert stored(lab, u1, "", "pods", "default", "web-0")["metadata"]["deletionTimestamp"]


def test_pending_pods_are_evictable_regardless_of_budget(lab, u1, api):
    _ready_pods(api, 2)
    api.core.create_namespaced_pod("default", pod("web-pending", labels={"app": "web"}))
    api.policy.create_namespaced_pod_disruption_budget("default", {
        "metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "minAvailable": 2}})
    with pytest.raises(ApiException) as err:
        api.core.create_namespaced_pod_eviction("web-0", "default", _eviction("web-0"))
    assert err.value.status == 429
    api.core.create_namespaced_pod_eviction("web-pending", "default", _eviction("web-pending"))
    assert stored(lab, u1, "", "pods", "default", "web-pending") is None  # unscheduled: deleted at once
