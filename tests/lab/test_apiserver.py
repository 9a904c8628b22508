"""The lab's Kubernetes API through the `kubernetes` client: CRUD, patch types, metadata rules, errors.

Each test asserts on what the lab stores, not only on what the client was told.
"""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from urllib3.exceptions import MaxRetryError, ProtocolError, ReadTimeoutError

from tests.lab.apiserver_support import (  # noqa: F401  (fixtures)
    JSON_PATCH, MERGE, STRATEGIC, api, crd, deployment, kubectl, pod, status_body, stored, u1,
)


def test_namespaced_crud_round_trip(lab, u1, api):
    created = api.core.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    assert created.metadata.uid and created.metadata.resource_version and created.metadata.creation_timestamp

    got = api.core.read_namespaced_config_map("cfg", "default")
    assert got.data == {"a": "1"} and got.metadata.uid == created.metadata.uid
    assert [c.metadata.name for c in api.core.list_namespaced_config_map("default").items] == ["cfg"]

    got.data["b"] = "2"
    replaced = api.core.replace_namespaced_config_map("cfg", "default", got)
    assert stored(lab, u1, "", "configmaps", "default", "cfg")["data"] == {"a": "1", "b": "2"}
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)

    api.core.delete_namespaced_config_map("cfg", "default")
    assert stored(lab, u1, "", "configmaps", "default", "cfg") is None


def test_cluster_scoped_crud_round_trip(lab, u1, api):
    role = {"metadata": {"name": "reader"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}
    api.rbac.create_cluster_role(role)
    api.rbac.patch_cluster_role("reader", {"metadata": {"labels": {"team": "net"}}}, _content_type=MERGE)
    in_lab = stored(lab, u1, "rbac.authorization.k8s.io", "clusterroles", None, "reader")
    assert in_lab["metadata"]["labels"] == {"team": "net"} and "namespace" not in in_lab["metadata"]
    assert [r.metadata.name for r in api.rbac.list_cluster_role(label_selector="team=net").items] == ["reader"]
    api.rbac.delete_cluster_role("reader")
    assert stored(lab, u1, "rbac.authorization.k8s.io", "clusterroles", None, "reader") is None


def test_merge_json_and_strategic_patches(lab, u1, api):
    api.apps.create_namespaced_deployment("default", deployment("web"))

    api.apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 5}}, _content_type=MERGE)
    api.apps.patch_namespaced_deployment("web", "default", [
        {"op": "test", "path": "/spec/replicas", "value": 5},
        {"op": "add", "path": "/metadata/labels", "value": {"tier": "front"}}])
    api.apps.patch_namespaced_deployment("web", "default", {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:1.27"}]}}}}, _content_type=STRATEGIC)

    obj = stored(lab, u1, "apps", "deployments", "default", "web")
    assert obj["spec"]["replicas"] == 5 and obj["metadata"]["labels"] == {"tier": "front"}
    assert [(c["name"], c["image"]) for c in obj["spec"]["template"]["spec"]["containers"]] == [
        ("web", "nginx:1.27"), ("sidecar", "busybox:1.36")]  # merged by name, sidecar untouched

    api.apps.patch_namespaced_deployment("web", "default", {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:1.28"}]}}}}, _content_type=MERGE)
    containers = stored(lab, u1, "apps", "deployments", "default", "web")["spec"]["template"]["spec"]["containers"]
    assert containers == [{"name": "web", "image": "nginx:1.28"}]  # a merge patch replaces lists


def test_failed_json_patch_test_op_is_422_and_changes_nothing(lab, u1, api):
    api.apps.create_namespaced_deployment("default", deployment("web"))
    before = stored(lab, u1, "apps", "deployments", "default", "web")
    with pytest.raises(ApiException) as err:
        api.apps.patch_namespaced_deployment("web", "default", [
            {"op": "test", "path": "/spec/replicas", "value": 9}, {"op": "replace", "path": "/spec/replicas",
                                                                   "value": 1}])
    assert err.value.status == 422
    assert stored(lab, u1, "apps", "deployments", "default", "web") == before


def test_custom_resources_crud_and_patch_types(lab, u1, api):
    api.crds.create_custom_resource_definition(crd())
    api.custom.create_namespaced_custom_object("example.com", "v1", "default", "widgets", {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 1}})

    api.custom.patch_namespaced_custom_object("example.com", "v1", "default", "widgets", "w1",
                                              {"spec": {"color": "red"}})
    api.custom.patch_namespaced_custom_object("example.com", "v1", "default", "widgets", "w1",
                                              [{"op": "replace", "path": "/spec/size", "value": 2}],
                                              _content_type=JSON_PATCH)
    assert stored(lab, u1, "example.com", "widgets", "default", "w1")["spec"] == {"size": 2, "color": "red"}

    before = stored(lab, u1, "example.com", "widgets", "default", "w1")
    with pytest.raises(ApiException) as err:
        api.custom.patch_namespaced_custom_object("example.com", "v1", "default", "widgets", "w1",
                                                  {"spec": {"size": 3}}, _content_type=STRATEGIC)
    assert err.value.status == 415 and status_body(err.value)["reason"] == "UnsupportedMediaType"
    assert stored(lab, u1, "example.com", "widgets", "default", "w1") == before

    listed = api.custom.list_namespaced_custom_object("example.com", "v1", "default", "widgets")
    assert listed["kind"] == "WidgetList" and [i["metadata"]["name"] for i in listed["items"]] == ["w1"]
    api.custom.delete_namespaced_custom_object("example.com", "v1", "default", "widgets", "w1")
    assert stored(lab, u1, "example.com", "widgets", "default", "w1") is None


def test_resource_version_changes_on_every_write_and_stale_update_conflicts(lab, u1, api):
    first = api.core.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    seen = {first.metadata.resource_version}
    second = api.core.patch_namespaced_config_map("cfg", "default", {"data": {"a": "2"}}, _content_type=MERGE)
    seen.add(second.metadata.resource_version)
    third = api.core.patch_namespaced_config_map("cfg", "default", {"metadata": {"labels": {"x": "y"}}},
                                                 _content_type=MERGE)
    seen.add(third.metadata.resource_version)
    assert len(seen) == 3 and third.metadata.uid == first.metadata.uid

    first.data = {"a": "stale"}
    with pytest.raises(ApiException) as err:
        api.core.replace_namespaced_config_map("cfg", "default", first)
    body = status_body(err.value)
    assert err.value.status == 409 and body["reason"] == "Conflict" and "has been modified" in body["message"]
    assert stored(lab, u1, "", "configmaps", "default", "cfg")["data"] == {"a": "2"}


def test_generation_bumps_on_spec_change_only(lab, u1, api):
    api.apps.create_namespaced_deployment("default", deployment("web"))
    gen = lambda: stored(lab, u1, "apps", "deployments", "default", "web")["metadata"]["generation"]  # noqa: E731
    assert gen() == 1
    api.apps.patch_namespaced_deployment("web", "default", {"metadata": {"labels": {"a": "b"}}}, _content_type=MERGE)
    assert gen() == 1
    api.apps.patch_namespaced_deployment_status("web", "default", {"status": {"replicas": 2}}, _content_type=MERGE)
    assert gen() == 1
    api.apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 3}}, _content_type=MERGE)
    assert gen() == 2


def test_create_twice_is_409_already_exists(lab, u1, api):
    api.core.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    with pytest.raises(ApiException) as err:
        api.core.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}, "data": {"a": "2"}})
    body = status_body(err.value)
    assert err.value.status == 409 and body["reason"] == "AlreadyExists"
    assert body["details"] == {"name": "cfg", "group": "", "kind": "configmaps"}
    assert stored(lab, u1, "", "configmaps", "default", "cfg")["data"] == {"a": "1"}


def test_missing_object_is_404_with_status_body(u1, api):
    with pytest.raises(ApiException) as err:
        api.apps.read_namespaced_deployment("nope", "default")
    body = status_body(err.value)
    assert err.value.status == 404
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["reason"] == "NotFound"
    assert body["message"] == 'deployments.apps "nope" not found'


def test_invalid_name_is_422(lab, u1, api):
    with pytest.raises(ApiException) as err:
        api.core.create_namespaced_config_map("default", {"metadata": {"name": "Not_Valid"}})
    body = status_body(err.value)
    assert err.value.status == 422 and body["reason"] == "Invalid" and "RFC 1123" in body["message"]
    assert stored(lab, u1, "", "configmaps", "default", "Not_Valid") is None


def test_generate_name_creates_a_unique_name(u1, api):
    a = api.core.create_namespaced_config_map("default", {"metadata": {"generateName": "cfg-"}})
    b = api.core.create_namespaced_config_map("default", {"metadata": {"generateName": "cfg-"}})
    assert a.metadata.name.startswith("cfg-") and b.metadata.name.startswith("cfg-")
    assert a.metadata.name != b.metadata.name


def test_bad_selectors_are_400(u1, api):
    with pytest.raises(ApiException) as err:
        api.core.list_namespaced_pod("default", label_selector="app in (web")
    assert err.value.status == 400 and "label selector" in status_body(err.value)["message"]
    with pytest.raises(ApiException) as err:
        api.core.list_namespaced_pod("default", field_selector="spec.containers=x")
    assert err.value.status == 400
    assert status_body(err.value)["message"] == "field label not supported: spec.containers"
    with pytest.raises(ApiException) as err:
        api.core.list_namespaced_config_map("default", field_selector="data.a=1")
    assert err.value.status == 400 and "field label not supported" in status_body(err.value)["message"]


def test_pod_field_and_label_selectors(lab, u1, api):
    api.core.create_namespaced_pod("default", pod("a", labels={"app": "web", "tier": "front"}, node="n1"))
    api.core.create_namespaced_pod("default", pod("b", labels={"app": "web"}, node="n2", host_network=True))
    api.core.create_namespaced_pod("kube-system", pod("c", namespace="kube-system", labels={"app": "dns"}))
    api.core.patch_namespaced_pod_status("a", "default", {"status": {"phase": "Running"}}, _content_type=MERGE)

    def names(**kw):
        return sorted(p.metadata.name for p in api.core.list_pod_for_all_namespaces(**kw).items)

    assert names(field_selector="spec.nodeName=n1") == ["a"]
    assert names(field_selector="spec.nodeName=") == ["c"]
    assert names(field_selector="status.phase=Running") == ["a"]
    assert names(field_selector="status.phase!=Running") == ["b", "c"]
    assert names(field_selector="spec.hostNetwork=true") == ["b"]
    assert names(field_selector="spec.hostNetwork=false") == ["a", "c"]  # unset counts as false
    assert names(field_selector="metadata.namespace=kube-system") == ["c"]
    assert names(field_selector="spec.nodeName=n2,spec.hostNetwork=true") == ["b"]
    assert names(label_selector="app=web,tier!=front") == ["b"]
    assert names(label_selector="app in (dns, web),!tier") == ["b", "c"]
    assert names(label_selector="tier") == ["a"]


def test_unauthorized_without_or_with_wrong_token_or_rejected_token(lab, u1, kube_client, tmp_path):
    from kubernetes import client

    api = client.CoreV1Api(kube_client(u1, token="not-a-token"))
    with pytest.raises(ApiException) as err:
        api.list_namespace()
    assert err.value.status == 401 and status_body(err.value)["reason"] == "Unauthorized"

    anonymous = client.Configuration()
    anonymous.host = u1.server_url
    anonymous.ssl_ca_cert = tmp_path / "ca.crt"
    anonymous.ssl_ca_cert.write_bytes(lab.tls.ca_pem)
    with client.ApiClient(anonymous) as plain, pytest.raises(ApiException) as err:
        client.CoreV1Api(plain).list_namespace()
    assert err.value.status == 401

    admin = client.CoreV1Api(kube_client(u1))
    assert len(admin.list_namespace().items) == 4
    lab.call(lambda: u1.faults.update(reject_token=True))
    with pytest.raises(ApiException) as err:
        admin.list_namespace()
    assert err.value.status == 401


@pytest.mark.parametrize("code", [500, 503])
def test_error_fault_answers_with_a_status(lab, u1, api, code):
    lab.call(lambda: u1.faults.update(error_rate=1.0, error_codes=[code]))
    with pytest.raises(ApiException) as err:
        api.core.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}})
    body = status_body(err.value)
    assert err.value.status == code and body["kind"] == "Status" and body["code"] == code
    assert stored(lab, u1, "", "configmaps", "default", "cfg") is None
    lab.call(u1.faults.clear)
    api.core.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}})
    assert stored(lab, u1, "", "configmaps", "default", "cfg") is not None


def test_latency_fault_still_answers(lab, u1, api):
    lab.call(lambda: u1.faults.update(latency=0.2))
    started = time.monotonic()
    api.core.create_namespaced_config_map("default", {"metadata": {"name": "slow"}})
    assert api.core.read_namespaced_config_map("slow", "default").metadata.name == "slow"
    assert time.monotonic() - started >= 2 * 0.2          # each of the two requests waited the latency
    assert stored(lab, u1, "", "configmaps", "default", "slow") is not None


def test_hanging_requests_time_out_a_short_client_timeout_then_get_dropped(lab, u1, api):
    lab.call(lambda: u1.faults.update(timeout_rate=1.0, hang_seconds=30.0))
    with pytest.raises(MaxRetryError) as err:       # urllib3 retries the GET, each try times out
        api.core.list_namespaced_config_map("default", _request_timeout=0.2)
    assert isinstance(err.value.reason, ReadTimeoutError)

    lab.call(lambda: u1.faults.update(hang_seconds=0.3))
    started = time.monotonic()
    with pytest.raises(MaxRetryError) as err:       # a patient client: the lab drops the connection
        api.core.list_namespaced_config_map("default", _request_timeout=20)
    assert isinstance(err.value.reason, ProtocolError) and time.monotonic() - started >= 0.3

    lab.call(u1.faults.clear)
    assert api.core.list_namespaced_config_map("default", _request_timeout=20).items == []


def test_services_and_endpoints_crud(lab, u1, api):
    api.core.create_namespaced_service("default", {
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    assert api.core.read_namespaced_service("web", "default").spec.selector == {"app": "web"}
    api.core.patch_namespaced_service("web", "default", {"spec": {"ports": [  # merged by `port`
        {"port": 80, "targetPort": 8081}, {"name": "metrics", "port": 9090}]}}, _content_type=STRATEGIC)
    ports = stored(lab, u1, "", "services", "default", "web")["spec"]["ports"]
    assert [(p.get("name"), p["port"], p.get("targetPort")) for p in ports] == [
        ("http", 80, 8081), ("metrics", 9090, None)]
    assert [s.metadata.name for s in api.core.list_namespaced_service("default", label_selector="app=web").items] \
        == ["web"]

    api.core.create_namespaced_endpoints("default", {
        "metadata": {"name": "web"},
        "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "http", "port": 8080}]}]})
    endpoints = api.core.read_namespaced_endpoints("web", "default")
    endpoints.subsets[0].addresses.append(client.V1EndpointAddress(ip="10.0.0.2"))
    api.core.replace_namespaced_endpoints("web", "default", endpoints)
    subset = stored(lab, u1, "", "endpoints", "default", "web")["subsets"][0]
    assert [a["ip"] for a in subset["addresses"]] == ["10.0.0.1", "10.0.0.2"]
    assert [e.metadata.name for e in api.core.list_endpoints_for_all_namespaces().items] == ["web"]

    api.core.delete_namespaced_endpoints("web", "default")
    api.core.delete_namespaced_service("web", "default")
    assert stored(lab, u1, "", "endpoints", "default", "web") is None
    assert stored(lab, u1, "", "services", "default", "web") is None


def test_version_through_the_client_and_kubectl(u1, api, kubectl):
    info = client.VersionApi(api.raw).get_code()
    assert (info.major, info.minor, info.git_version) == ("1", "33", "v1.33.4") and info.platform == "linux/amd64"
    server = json.loads(kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert (server["major"], server["minor"], server["gitVersion"]) == ("1", "33", "v1.33.4")


def test_custom_resource_put_replaces_and_a_stale_put_conflicts(lab, u1, api):
    api.crds.create_custom_resource_definition(crd())
    args = ("example.com", "v1", "default", "widgets")
    first = api.custom.create_namespaced_custom_object(*args, {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 1, "a": 1}})
    current = api.custom.get_namespaced_custom_object(*args, "w1")
    current["spec"] = {"size": 2}
    replaced = api.custom.replace_namespaced_custom_object(*args, "w1", current)
    assert stored(lab, u1, "example.com", "widgets", "default", "w1")["spec"] == {"size": 2}
    assert replaced["metadata"]["uid"] == first["metadata"]["uid"]
    assert int(replaced["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])

    first["spec"] = {"size": 3}
    with pytest.raises(ApiException) as err:
        api.custom.replace_namespaced_custom_object(*args, "w1", first)
    assert err.value.status == 409 and status_body(err.value)["reason"] == "Conflict"
    assert stored(lab, u1, "example.com", "widgets", "default", "w1")["spec"] == {"size": 2}
