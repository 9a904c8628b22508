"""RBAC in the lab: a ServiceAccount's token may do what the Roles and bindings in the cluster allow,
decided as Kubernetes' RBAC authorizer decides, and is refused with the API server's own 403."""

from __future__ import annotations

import subprocess

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab.rbac import service_account_user
from tests.lab.apiserver_support import api, pod, status_body, u1  # noqa: F401  (fixtures)

SA = service_account_user("ops", "bot")
RBAC = "rbac.authorization.k8s.io"


def role(kind: str, name: str, rules: list[dict], namespace: str | None = None) -> dict:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": f"{RBAC}/v1", "kind": kind, "metadata": meta, "rules": rules}


def binding(kind: str, name: str, role_kind: str, subject: dict, namespace: str | None = None) -> dict:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": f"{RBAC}/v1", "kind": kind, "metadata": meta, "subjects": [subject],
            "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": name}}


BOT = {"kind": "ServiceAccount", "name": "bot", "namespace": "ops"}


@pytest.fixture
def bot(lab, u1, api, kube_client):
    """`bot(cluster_rules, role_rules)` -> typed APIs as ServiceAccount ops/bot, whose ClusterRole
    (bound cluster-wide) and Role (bound in `default`) hold the given rules."""
    def make(cluster_rules: list[dict] = (), role_rules: list[dict] = ()):
        api.core.create_namespace({"metadata": {"name": "ops"}})
        api.core.create_namespaced_service_account("ops", {"metadata": {"name": "bot"}})
        api.rbac.create_cluster_role(role("ClusterRole", "bot", list(cluster_rules)))
        api.rbac.create_cluster_role_binding(binding("ClusterRoleBinding", "bot", "ClusterRole", BOT))
        api.rbac.create_namespaced_role("default", role("Role", "bot", list(role_rules), "default"))
        api.rbac.create_namespaced_role_binding("default", binding("RoleBinding", "bot", "Role", BOT, "default"))
        c = kube_client(u1, lab.call(lambda: u1.issue_token(SA)))
        return type("Bot", (), {"core": client.CoreV1Api(c), "apps": client.AppsV1Api(c), "raw": c,
                                "custom": client.CustomObjectsApi(c)})
    return make


def forbidden(call) -> dict:
    with pytest.raises(ApiException) as err:
        call()
    assert err.value.status == 403
    body = status_body(err.value)
    assert body["reason"] == "Forbidden" and body["kind"] == "Status"
    return body


def test_a_refused_request_gets_the_api_servers_403_word_for_word(bot, api):
    api.core.create_namespaced_pod("default", pod("web"))
    me = bot([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])

    assert me.core.read_namespaced_pod("web", "default").metadata.name == "web"
    body = forbidden(lambda: me.core.delete_namespaced_pod("web", "default"))
    assert body["message"] == (f'pods "web" is forbidden: User "{SA}" cannot delete resource "pods" in API '
                               'group "" in the namespace "default"')
    assert body["details"] == {"name": "web", "kind": "pods"}
    body = forbidden(lambda: me.core.list_pod_for_all_namespaces())
    assert body["message"] == (f'pods is forbidden: User "{SA}" cannot list resource "pods" in API group "" '
                               "at the cluster scope")
    body = forbidden(lambda: me.apps.patch_namespaced_daemon_set("agent", "kube-system", {}))
    assert body["message"] == (f'daemonsets.apps "agent" is forbidden: User "{SA}" cannot patch resource '
                               '"daemonsets" in API group "apps" in the namespace "kube-system"')


def test_a_subresource_needs_its_own_rule(bot, api):
    api.core.create_namespaced_pod("default", pod("web"))
    me = bot([{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}])
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web", "namespace": "default"}}

    body = forbidden(lambda: me.core.create_namespaced_pod_eviction("web", "default", eviction))
    assert 'cannot create resource "pods/eviction" in API group ""' in body["message"]
    assert body["message"].startswith('pods "web" is forbidden')


def test_resource_names_hold_for_get_and_for_a_list_or_watch_pinned_by_name(bot, api):
    for name in ("kube-proxy", "other"):
        api.core.create_namespaced_config_map("default", {"metadata": {"name": name}})
    me = bot(role_rules=[{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"],
                          "resourceNames": ["kube-proxy"]}])

    assert me.core.read_namespaced_config_map("kube-proxy", "default").metadata.name == "kube-proxy"
    forbidden(lambda: me.core.read_namespaced_config_map("other", "default"))
    pinned = me.core.list_namespaced_config_map("default", field_selector="metadata.name=kube-proxy")
    assert [c.metadata.name for c in pinned.items] == ["kube-proxy"]
    watched = me.core.list_namespaced_config_map("default", field_selector="metadata.name=kube-proxy", watch=True,
                                                 timeout_seconds=1, _preload_content=False)
    assert b"kube-proxy" in watched.data
    body = forbidden(lambda: me.core.list_namespaced_config_map("default"))
    assert body["message"].startswith("configmaps is forbidden")


def test_a_role_allows_only_in_its_namespace(bot, api):
    me = bot(role_rules=[{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}])

    me.core.create_namespaced_config_map("default", {"metadata": {"name": "mine"}})
    body = forbidden(lambda: me.core.create_namespaced_config_map("kube-system", {"metadata": {"name": "mine"}}))
    assert body["message"].endswith('in the namespace "kube-system"')


def test_a_cluster_role_bound_in_a_namespace_allows_there_only(lab, u1, api, kube_client):
    api.core.create_namespace({"metadata": {"name": "ops"}})
    api.rbac.create_cluster_role(role("ClusterRole", "reader", [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]))
    api.rbac.create_namespaced_role_binding("ops", {**binding("RoleBinding", "r", "ClusterRole", {
        "kind": "Group", "name": "system:serviceaccounts:ops"}, "ops"), "roleRef": {
        "apiGroup": RBAC, "kind": "ClusterRole", "name": "reader"}})
    me = client.CoreV1Api(kube_client(u1, lab.call(lambda: u1.issue_token(SA))))

    assert me.list_namespaced_config_map("ops").items == []
    forbidden(lambda: me.list_namespaced_config_map("default"))
    forbidden(lambda: me.list_config_map_for_all_namespaces())


def test_authorization_comes_before_the_resource_lookup(bot):
    """A refused request learns nothing about what the server serves; an allowed one gets the 404."""
    me = bot([{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["list"]}])

    with pytest.raises(ApiException) as err:
        me.custom.list_cluster_custom_object("example.com", "v1", "widgets")
    assert err.value.status == 404
    body = forbidden(lambda: me.custom.list_cluster_custom_object("example.com", "v1", "gadgets"))
    assert body["message"].startswith("gadgets.example.com is forbidden")


def test_discovery_needs_no_rule_and_kubectl_prints_the_refusal(lab, u1, kubeconfig_file, tmp_path, bot):
    bot()
    config = kubeconfig_file(u1, lab.call(lambda: u1.issue_token(SA)))

    def kubectl(*args):
        return subprocess.run(["kubectl", "--kubeconfig", config, "--cache-dir", str(tmp_path / "cache"), *args],
                              capture_output=True, text=True, timeout=60)

    assert kubectl("api-resources", "--no-headers").returncode == 0
    refused = kubectl("get", "pods", "-n", "default")
    assert refused.returncode == 1
    assert (f'Error from server (Forbidden): pods is forbidden: User "{SA}" cannot list resource "pods" in API '
            'group "" in the namespace "default"') in refused.stderr


def test_the_admin_token_and_unknown_tokens_are_unchanged(lab, u1, api, kube_client, bot):
    bot()
    assert api.core.list_pod_for_all_namespaces().items == []   # the admin: no binding needed
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(kube_client(u1, "not-a-token")).list_namespace()
    assert err.value.status == 401


def test_each_allowed_request_is_counted_with_every_rule_that_allowed_it(lab, u1, bot):
    me = bot([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
             [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "create"]}])

    me.core.list_namespaced_config_map("default")
    me.core.list_config_map_for_all_namespaces()

    assert dict(u1.grants) == {
        (SA, "list", "", "configmaps", (("ClusterRole", "", "bot", 0), ("Role", "default", "bot", 0))): 1,
        (SA, "list", "", "configmaps", (("ClusterRole", "", "bot", 0),)): 1}
