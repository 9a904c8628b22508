"""KKP in the lab: the Cluster resource and its webhook, the delayed CNI and kube-proxy rollouts,
the cilium ApplicationInstallation, and the REST API v2, through the real clients and kubectl."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import requests
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab.kkp import KkpOptions

DENIED = 'admission webhook "clusters.kubermatic.io" denied the request: '
MIGRATION_REFUSED = DENIED + ("spec.cniPlugin.type: Forbidden: cannot change CNI plugin type, "
                              "unless unsafe-cni-migration label is present")


def eventually(check, timeout: float = 20.0):
    """Poll `check` until it returns something truthy (a hang detector, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {check.__doc__ or check}")
        time.sleep(0.02)


@pytest.fixture
def seed_api(kkp_lab, kube_client):
    return client.CustomObjectsApi(kube_client(kkp_lab.lab.seed))


@pytest.fixture
def user_api(kkp_lab, kube_client):
    """`user_api(name)` -> typed clients of a user cluster, from its admin kubeconfig."""
    def make(name):
        c = kube_client(kkp_lab.clusters[name].api)
        return type("Api", (), {"core": client.CoreV1Api(c), "apps": client.AppsV1Api(c),
                                "custom": client.CustomObjectsApi(c), "crds": client.ApiextensionsV1Api(c),
                                "batch": client.BatchV1Api(c), "policy": client.PolicyV1Api(c)})
    return make


@pytest.fixture
def rest(kkp_lab):
    """`rest(method, path, **kw)` against the KKP API as the lab's token."""
    def call(method, path, token=None, **kw):
        headers = {"Authorization": f"Bearer {token or kkp_lab.token}", **kw.pop("headers", {})}
        return requests.request(method, kkp_lab.url + path, headers=headers, verify=kkp_lab.ca_file,
                                timeout=30, **kw)
    return call


def cluster_path(kkp_lab, name: str) -> str:
    return f"/api/v2/projects/{kkp_lab.project_id}/clusters/{kkp_lab.clusters[name].id}"


def patch_seed(seed_api, cluster_id: str, body: dict) -> dict:
    return seed_api.patch_cluster_custom_object("kubermatic.k8c.io", "v1", "clusters", cluster_id, body)


def seed_refusal(seed_api, cluster_id: str, body: dict) -> tuple[int, str]:
    with pytest.raises(ApiException) as err:
        patch_seed(seed_api, cluster_id, body)
    return err.value.status, json.loads(err.value.body)["message"]


def stored(kkp_lab, user, group, plural, namespace, name):
    store = user.store
    return kkp_lab.lab.call(lambda: store.try_get(store.types[(group, plural)], namespace, name)
                            if (group, plural) in store.types else None)


# ---- the seed ------------------------------------------------------------------------------------------


def test_kubectl_lists_the_clusters_of_the_seed(kkp_lab, kubeconfig_file, tmp_path):
    config = kubeconfig_file(kkp_lab.lab.seed)
    out = subprocess.run(["kubectl", "--kubeconfig", config, "--cache-dir", str(tmp_path / "cache"),
                          "get", "clusters"], capture_output=True, text=True, timeout=60, check=True).stdout
    header, *rows = out.strip().splitlines()
    assert header.split()[:3] == ["NAME", "HUMANREADABLENAME", "OWNER"]
    assert sorted(r.split()[1] for r in rows) == sorted(kkp_lab.clusters)
    assert {r.split()[0] for r in rows} == {u.id for u in kkp_lab.clusters.values()}


def test_cluster_object_and_admin_kubeconfig_secret(kkp_lab, seed_api, kube_client):
    user = kkp_lab.clusters["payments-canal-ipvs"]
    obj = seed_api.get_cluster_custom_object("kubermatic.k8c.io", "v1", "clusters", user.id)
    assert len(user.id) == 10 and obj["metadata"]["labels"]["project-id"] == kkp_lab.project_id
    assert obj["spec"]["cniPlugin"] == {"type": "canal", "version": "v3.30"}
    net = obj["spec"]["clusterNetwork"]
    assert (net["proxyMode"], net["konnectivityEnabled"], net["ipvs"]["strictArp"]) == ("ipvs", False, True)
    assert obj["status"]["namespaceName"] == f"cluster-{user.id}"
    assert set(obj["status"]["extendedHealth"].values()) == {"HealthStatusUp"}
    assert "openvpn" in obj["status"]["extendedHealth"]
    secret = client.CoreV1Api(kube_client(kkp_lab.lab.seed)).read_namespaced_secret(
        "admin-kubeconfig", f"cluster-{user.id}")
    import base64
    config = yaml.safe_load(base64.b64decode(secret.data["kubeconfig"]))
    from kubernetes import config as kconfig
    cfg = client.Configuration()
    kconfig.load_kube_config_from_dict(config, client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        nodes = client.CoreV1Api(api).list_node().items
    assert len(nodes) == 3


def test_user_clusters_run_their_cni_kube_proxy_and_system_pods(kkp_lab, user_api):
    canal = user_api("payments-canal-ipvs")
    pods = canal.core.list_pod_for_all_namespaces().items
    by_app = {}
    for p in pods:
        key = (p.metadata.labels or {}).get("k8s-app") or (p.metadata.labels or {}).get("app")
        by_app.setdefault(key, []).append(p)
    assert len(by_app["canal"]) == 3 and all(p.spec.host_network for p in by_app["canal"])
    assert [c.name for c in by_app["canal"][0].spec.containers] == ["calico-node", "kube-flannel"]
    assert all(p.spec.host_network for p in by_app["kube-proxy"] + by_app["node-local-dns"])
    for name in ("calico-kube-controllers", "kube-dns", "openvpn-client", "user-ssh-keys-agent",
                 "dashboard-metrics-scraper", "frontend", "api", "postgres", "log-agent", "edge-proxy"):
        assert by_app.get(name), name
    assert not by_app.get("konnectivity-agent")
    bare = canal.core.read_namespaced_pod("debug-shell", "default")
    assert not bare.metadata.owner_references
    cm = canal.core.read_namespaced_config_map("kube-proxy", "kube-system")
    assert yaml.safe_load(cm.data["config.conf"])["mode"] == "ipvs"
    crds = {c.metadata.name for c in canal.crds.list_custom_resource_definition().items}
    assert "adminnetworkpolicies.policy.networking.k8s.io" in crds
    assert "baselineadminnetworkpolicies.policy.networking.k8s.io" in crds

    cil = user_api("analytics-cilium-ebpf")
    with pytest.raises(ApiException) as err:
        cil.core.read_namespaced_config_map("kube-proxy", "kube-system")
    assert err.value.status == 404
    assert cil.core.read_namespaced_config_map("cilium-config", "kube-system").data["kube-proxy-replacement"] == "true"
    app = cil.custom.get_namespaced_custom_object("apps.kubermatic.k8c.io", "v1", "kube-system",
                                                  "applicationinstallations", "cilium")
    assert app["spec"]["applicationRef"] == {"name": "cilium", "version": "1.19.4"}
    assert app["metadata"]["finalizers"]
    assert len(cil.core.list_pod_for_all_namespaces(label_selector="k8s-app=cilium").items) == 3
    assert cil.core.list_pod_for_all_namespaces(label_selector="io.cilium/app=operator,name=cilium-operator").items


def test_default_scenario_has_its_workloads_konnectivity_and_node_info(kkp_lab, user_api, seed_api):
    for name, user in kkp_lab.clusters.items():
        api = user_api(name)
        assert api.batch.read_namespaced_job("report", "ops")
        assert api.core.list_namespaced_pod("ops", label_selector="job-name=report").items, name
        sts = api.apps.read_namespaced_stateful_set("postgres", "data")
        assert (sts.spec.replicas, sts.status.ready_replicas) == (3, 3)
        assert [p.metadata.name for p in api.core.list_namespaced_pod("data", label_selector="app=postgres").items] \
            == ["postgres-0", "postgres-1", "postgres-2"]
        budgets = {(b.metadata.namespace, b.metadata.name)
                   for b in api.policy.list_pod_disruption_budget_for_all_namespaces().items}
        assert {("shop", "frontend"), ("shop", "api"), ("data", "postgres"), ("kube-system", "coredns")} <= budgets
        nodes = api.core.list_node().items
        assert len(nodes) == 3
        for node in nodes:
            info = node.status.node_info
            assert info.os_image == "Ubuntu 22.04.5 LTS" and info.container_runtime_version.startswith("containerd://")
            assert info.kernel_version and info.kubelet_version == "v1.33.4"

    webshop = kkp_lab.clusters["webshop-canal-iptables"]
    obj = seed_api.get_cluster_custom_object("kubermatic.k8c.io", "v1", "clusters", webshop.id)
    assert obj["spec"]["clusterNetwork"]["konnectivityEnabled"] is True
    assert "openvpn" not in obj["status"]["extendedHealth"]
    core = user_api("webshop-canal-iptables").core
    agents = core.list_namespaced_pod("kube-system", label_selector="app=konnectivity-agent").items
    assert len(agents) == 2 and all(p.status.phase == "Running" for p in agents)
    assert not core.list_namespaced_pod("kube-system", label_selector="app=openvpn-client").items


# ---- admission -----------------------------------------------------------------------------------------


def test_type_change_without_label_is_refused_with_kkps_message(kkp_lab, seed_api, rest):
    user = kkp_lab.clusters["webshop-canal-iptables"]
    change = {"spec": {"cniPlugin": {"type": "cilium", "version": "1.19.4"}}}
    code, message = seed_refusal(seed_api, user.id, change)
    assert (code, message) == (422, MIGRATION_REFUSED)
    resp = rest("PATCH", cluster_path(kkp_lab, "webshop-canal-iptables"), json=change,
                headers={"Content-Type": "application/merge-patch+json"})
    assert resp.status_code == 422
    assert resp.json() == {"error": {"code": 422, "message": MIGRATION_REFUSED}}
    obj = seed_api.get_cluster_custom_object("kubermatic.k8c.io", "v1", "clusters", user.id)
    assert obj["spec"]["cniPlugin"]["type"] == "canal"


@pytest.mark.parametrize("name, body, expected", [
    ("webshop-canal-iptables", {"spec": {"cniPlugin": {"version": "v3.32"}}},
     'spec.cniPlugin.version: Unsupported value: "v3.32": supported values: '),
    ("webshop-canal-iptables", {"spec": {"cniPlugin": {"version": "v3.29"}}},
     "spec.cniPlugin.version: Forbidden: cannot upgrade CNI from v3.31 to v3.29, only one minor version "
     "difference is allowed unless unsafe-cni-upgrade label is present"),
    ("webshop-canal-iptables", {"metadata": {"labels": {"unsafe-cni-migration": "true"}},
                                "spec": {"clusterNetwork": {"proxyMode": "ebpf"}}},
     'spec.clusterNetwork.proxyMode: Invalid value: "ebpf": ebpf proxy mode is not valid for canal CNI'),
    ("payments-canal-ipvs", {"metadata": {"labels": {"unsafe-cni-migration": "true"}},
                             "spec": {"cniPlugin": {"type": "cilium", "version": "1.19.4"},
                                      "clusterNetwork": {"proxyMode": "ebpf"}}},
     'spec.clusterNetwork.proxyMode: Invalid value: "ebpf": ebpf proxy mode can be used only when '
     "Konnectivity is enabled"),
    ("webshop-canal-iptables", {"spec": {"clusterNetwork": {"proxyMode": "ipvs"}}},
     'spec.clusterNetwork.proxyMode: Invalid value: "ipvs": field is immutable'),
    ("webshop-canal-iptables", {"spec": {"clusterNetwork": {"konnectivityEnabled": False}}},
     "spec.clusterNetwork.konnectivityEnabled: Forbidden: Konnectivity can no longer be disabled"),
    ("analytics-cilium-ebpf", {"metadata": {"labels": {"unsafe-cni-migration": "true"}},
                               "spec": {"cniPlugin": {"type": "canal", "version": "v3.31"}}},
     'spec.clusterNetwork.proxyMode: Invalid value: "ebpf": ebpf proxy mode is not valid for canal CNI'),
])
def test_admission_refusals_through_seed_and_api(kkp_lab, seed_api, rest, name, body, expected):
    user = kkp_lab.clusters[name]
    code, message = seed_refusal(seed_api, user.id, body)
    assert code == 422 and message.startswith(DENIED + expected), message
    api_body = {**({"labels": body["metadata"]["labels"]} if "metadata" in body else {}),
                "spec": body["spec"]}
    resp = rest("PATCH", cluster_path(kkp_lab, name), json=api_body)
    assert resp.status_code == 422 and resp.json()["error"]["message"] == message
    obj = seed_api.get_cluster_custom_object("kubermatic.k8c.io", "v1", "clusters", user.id)
    assert "unsafe-cni-migration" not in obj["metadata"]["labels"]


def test_cni_plugin_cannot_be_removed(kkp_lab, rest):
    resp = rest("PATCH", cluster_path(kkp_lab, "webshop-canal-iptables"), json={"spec": {"cniPlugin": None}})
    assert resp.status_code == 422
    assert resp.json()["error"]["message"] == DENIED + "spec.cniPlugin: Required value: CNI plugin settings cannot be removed"


def test_allowed_changes_pass(kkp_lab, seed_api):
    webshop = kkp_lab.clusters["webshop-canal-iptables"].id
    patch_seed(seed_api, webshop, {"spec": {"cniPlugin": {"version": "v3.30"}}})         # one minor down
    patch_seed(seed_api, webshop, {"metadata": {"labels": {"unsafe-cni-upgrade": ""}},
                                   "spec": {"cniPlugin": {"version": "v3.28"}}})          # label allows a jump
    analytics = kkp_lab.clusters["analytics-cilium-ebpf"].id
    done = patch_seed(seed_api, analytics, {"metadata": {"labels": {"unsafe-cni-migration": "true"}},
                                            "spec": {"cniPlugin": {"type": "canal", "version": "v3.31"},
                                                     "clusterNetwork": {"proxyMode": "iptables"}}})
    assert done["spec"]["cniPlugin"]["type"] == "canal"


# ---- rollouts ------------------------------------------------------------------------------------------


def test_cni_switch_deploys_cilium_after_the_delay_and_leaves_canal(kkp_lab, seed_api, user_api):
    user = kkp_lab.clusters["payments-canal-ipvs"]
    api = user_api("payments-canal-ipvs")
    patch_seed(seed_api, user.id, {"metadata": {"labels": {"unsafe-cni-migration": "true"}},
                                   "spec": {"cniPlugin": {"type": "cilium", "version": "1.19.4"}}})
    # KKP takes a while (120 simulated seconds = 1.2 s here): nothing is there right after the change
    assert stored(kkp_lab, user, "apps.kubermatic.k8c.io", "applicationinstallations", "kube-system", "cilium") is None

    def cilium_running():
        pods = api.core.list_namespaced_pod("kube-system", label_selector="k8s-app=cilium").items
        return len(pods) == 3 and all(p.status and p.status.phase == "Running" for p in pods)
    eventually(cilium_running)
    app = api.custom.get_namespaced_custom_object("apps.kubermatic.k8c.io", "v1", "kube-system",
                                                  "applicationinstallations", "cilium")
    assert app["status"]["helmRelease"]["info"]["status"] == "deployed"
    assert api.core.read_namespaced_config_map("cilium-config", "kube-system").data["kube-proxy-replacement"] == "false"
    assert len(api.core.list_namespaced_pod("kube-system", label_selector="k8s-app=canal").items) == 3
    api.apps.read_namespaced_daemon_set("canal", "kube-system")
    api.crds.read_custom_resource_definition("ciliumendpoints.cilium.io")

    # images and labels as KKP's cilium chart deploys them (a digest may follow the tag)
    agent = api.apps.read_namespaced_daemon_set("cilium", "kube-system").spec.template
    operator = api.apps.read_namespaced_deployment("cilium-operator", "kube-system").spec.template
    assert [(c.name, c.image.split("@")[0]) for c in agent.spec.containers] == [
        ("cilium-agent", "quay.io/cilium/cilium:v1.19.4")]
    assert [(c.name, c.image.split("@")[0]) for c in operator.spec.containers] == [
        ("cilium-operator", "quay.io/cilium/operator-generic:v1.19.4")]
    assert agent.metadata.labels["k8s-app"] == "cilium"
    assert {"io.cilium/app": "operator", "name": "cilium-operator"}.items() <= operator.metadata.labels.items()
    running = api.core.list_namespaced_pod("kube-system", label_selector="io.cilium/app=operator").items
    assert running and {c.image for p in running for c in p.spec.containers} == {operator.spec.containers[0].image}


def test_new_cni_never_ready_fault(kkp_lab, seed_api, user_api):
    user = kkp_lab.clusters["payments-canal-ipvs"]
    kkp_lab.lab.call(lambda: user.api.faults.update(cni_never_ready=True))
    patch_seed(seed_api, user.id, {"metadata": {"labels": {"unsafe-cni-migration": "true"}},
                                   "spec": {"cniPlugin": {"type": "cilium", "version": "1.19.4"}}})
    api = user_api("payments-canal-ipvs")
    pods = eventually(lambda: [p for p in api.core.list_namespaced_pod(
        "kube-system", label_selector="k8s-app=cilium").items if p.status and p.status.phase] or None)
    assert pods and not any(c.type == "Ready" and c.status == "True" for p in pods for c in p.status.conditions or [])


def test_application_installation_reinstalls_deleted_objects_and_uninstalls_on_delete(kkp_lab, user_api):
    user = kkp_lab.clusters["analytics-cilium-ebpf"]
    api = user_api("analytics-cilium-ebpf")
    old_uid = api.apps.read_namespaced_daemon_set("cilium", "kube-system").metadata.uid
    api.apps.delete_namespaced_daemon_set("cilium", "kube-system")
    api.core.delete_namespaced_config_map("cilium-config", "kube-system")

    def back():
        ds = stored(kkp_lab, user, "apps", "daemonsets", "kube-system", "cilium")
        cm = stored(kkp_lab, user, "", "configmaps", "kube-system", "cilium-config")
        return ds and cm and ds["metadata"]["uid"] != old_uid
    eventually(back)

    api.custom.delete_namespaced_custom_object("apps.kubermatic.k8c.io", "v1", "kube-system",
                                               "applicationinstallations", "cilium")

    def gone():
        return all(stored(kkp_lab, user, *ref) is None for ref in (
            ("apps.kubermatic.k8c.io", "applicationinstallations", "kube-system", "cilium"),
            ("apps", "daemonsets", "kube-system", "cilium"), ("apps", "deployments", "kube-system", "cilium-operator"),
            ("", "configmaps", "kube-system", "cilium-config"), ("", "serviceaccounts", "kube-system", "cilium")))
    eventually(gone)
    # what Cilium's operator made at run time is not part of the release: it stays
    api.crds.read_custom_resource_definition("ciliumendpoints.cilium.io")


def test_proxy_mode_change_rewrites_kube_proxy_config_after_the_delay(kkp_lab, seed_api, user_api):
    user = kkp_lab.clusters["webshop-canal-iptables"]
    api = user_api("webshop-canal-iptables")
    before = api.apps.read_namespaced_daemon_set("kube-proxy", "kube-system").spec.template.metadata.annotations
    patch_seed(seed_api, user.id, {"metadata": {"labels": {"unsafe-cni-migration": "true"}},
                                   "spec": {"clusterNetwork": {"proxyMode": "ipvs"}}})
    assert "mode: iptables" in api.core.read_namespaced_config_map("kube-proxy", "kube-system").data["config.conf"]
    eventually(lambda: "mode: ipvs" in api.core.read_namespaced_config_map(
        "kube-proxy", "kube-system").data["config.conf"])
    after = api.apps.read_namespaced_daemon_set("kube-proxy", "kube-system").spec.template.metadata.annotations
    assert after != before                                   # KKP >= 2.30 rolls kube-proxy by itself


def test_older_kkp_leaves_the_kube_proxy_pods_alone(kube_client):
    from lab.kkp import ClusterSpec
    from lab.runtime import Lab

    lab = Lab(time_factor=0.01).start()
    try:
        kkp = lab.install_kkp(KkpOptions(kube_proxy_checksum=False))
        user = kkp.add_cluster(ClusterSpec("old-kkp", "canal", "v3.31", "ipvs", nodes=1))
        seed_api = client.CustomObjectsApi(kube_client(lab.seed))
        apps = client.AppsV1Api(kube_client(user.api))
        core = client.CoreV1Api(kube_client(user.api))
        before = apps.read_namespaced_daemon_set("kube-proxy", "kube-system").spec.template
        assert not before.metadata.annotations
        patch_seed(seed_api, user.id, {"metadata": {"labels": {"unsafe-cni-migration": "true"}},
                                       "spec": {"clusterNetwork": {"proxyMode": "iptables"}}})
        eventually(lambda: "mode: iptables" in core.read_namespaced_config_map(
            "kube-proxy", "kube-system").data["config.conf"])
        assert apps.read_namespaced_daemon_set("kube-proxy", "kube-system").spec.template == before
    finally:
        lab.stop()


def test_leaving_ebpf_brings_kube_proxy_back_and_restarts_cilium(kkp_lab, seed_api, user_api):
    user = kkp_lab.clusters["analytics-cilium-ebpf"]
    api = user_api("analytics-cilium-ebpf")
    before = api.apps.read_namespaced_daemon_set("cilium", "kube-system").spec.template.metadata.annotations
    patch_seed(seed_api, user.id, {"metadata": {"labels": {"unsafe-cni-migration": "true"}},
                                   "spec": {"clusterNetwork": {"proxyMode": "iptables"}}})
    eventually(lambda: stored(kkp_lab, user, "", "configmaps", "kube-system", "kube-proxy"))
    eventually(lambda: stored(kkp_lab, user, "", "configmaps", "kube-system", "cilium-config")["data"][
        "kube-proxy-replacement"] == "false")
    assert api.apps.read_namespaced_daemon_set("cilium", "kube-system").spec.template.metadata.annotations != before
    eventually(lambda: len(api.core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-proxy").items) == 3)


def test_entering_ebpf_removes_kube_proxy_and_restarts_cilium_with_kube_proxy_replacement(kkp_lab, seed_api,
                                                                                         user_api):
    from lab import scenario
    from lab.kkp import ClusterSpec

    user = kkp_lab.kkp.add_cluster(ClusterSpec("ml-cilium-iptables", "cilium", "1.19.4", "iptables", nodes=2))
    kkp_lab.clusters[user.spec.name] = user
    scenario.wait_settled(kkp_lab.kkp)
    api = user_api("ml-cilium-iptables")

    def cilium_pods():
        return api.core.list_namespaced_pod("kube-system", label_selector="k8s-app=cilium").items
    before = {p.metadata.uid for p in cilium_pods()}
    assert len(before) == 2 and len(api.core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-proxy")
                                    .items) == 2
    patch_seed(seed_api, user.id, {"metadata": {"labels": {"unsafe-cni-migration": "true"}},
                                   "spec": {"clusterNetwork": {"proxyMode": "ebpf"}}})

    eventually(lambda: stored(kkp_lab, user, "", "configmaps", "kube-system", "kube-proxy") is None
               and stored(kkp_lab, user, "apps", "daemonsets", "kube-system", "kube-proxy") is None)
    eventually(lambda: not api.core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-proxy").items)
    eventually(lambda: (pods := cilium_pods()) and len(pods) == 2 and not before & {p.metadata.uid for p in pods}
               and all(p.status and p.status.phase == "Running" and not p.metadata.deletion_timestamp for p in pods))

    config = api.core.read_namespaced_config_map("cilium-config", "kube-system").data
    assert config["kube-proxy-replacement"] == "true"
    assert config["k8s-service-host"] and config["k8s-service-port"] == "6443"
    app = api.custom.get_namespaced_custom_object("apps.kubermatic.k8c.io", "v1", "kube-system",
                                                  "applicationinstallations", "cilium")
    values = yaml.safe_load(app["spec"]["valuesBlock"])
    assert values["kubeProxyReplacement"] == "true" and values["k8sServiceHost"] == config["k8s-service-host"]
    assert app["status"]["helmRelease"]["version"] == 2


# ---- REST API ------------------------------------------------------------------------------------------


def test_rest_cluster_shape_and_label_removal(kkp_lab, rest, seed_api):
    path = cluster_path(kkp_lab, "webshop-canal-iptables")
    body = rest("GET", path).json()
    user = kkp_lab.clusters["webshop-canal-iptables"]
    assert (body["id"], body["name"]) == (user.id, "webshop-canal-iptables")
    assert body["spec"]["cniPlugin"] == {"type": "canal", "version": "v3.31"}
    assert body["spec"]["clusterNetwork"]["proxyMode"] == "iptables"
    assert body["status"]["url"] == user.api.server_url and "project-id" not in body["labels"]
    resp = rest("PATCH", path, json={"labels": {"unsafe-cni-migration": "true"}},
                headers={"Content-Type": "application/merge-patch+json"})
    assert resp.status_code == 200 and resp.json()["labels"] == {"unsafe-cni-migration": "true"}
    rest("PATCH", path, json={"labels": {"unsafe-cni-migration": None}})
    obj = seed_api.get_cluster_custom_object("kubermatic.k8c.io", "v1", "clusters", user.id)
    assert obj["metadata"]["labels"] == {"project-id": kkp_lab.project_id}


def test_rest_errors(kkp_lab, rest):
    path = cluster_path(kkp_lab, "webshop-canal-iptables")
    bad = rest("GET", path, token="not-the-token")
    assert bad.status_code == 401 and bad.json()["error"]["code"] == 401
    other = rest("GET", f"/api/v2/projects/someoneelse/clusters/{kkp_lab.clusters['webshop-canal-iptables'].id}")
    assert other.status_code == 403 and other.json()["error"]["code"] == 403
    missing = rest("GET", f"/api/v2/projects/{kkp_lab.project_id}/clusters/nosuchclus")
    assert missing.status_code == 404 and "nosuchclus" in missing.json()["error"]["message"]
    kkp_lab.lab.call(lambda: kkp_lab.kkp.faults.update(reject_token=True))
    assert rest("GET", path).status_code == 401
    assert kkp_lab.kkp.requests[("GET", "/api/v2/projects/{project_id}/clusters/{cluster_id}")] >= 4


def test_rest_health_kubeconfig_and_versions(kkp_lab, rest, tmp_path):
    path = cluster_path(kkp_lab, "payments-canal-ipvs")
    health = rest("GET", path + "/health").json()
    assert health["apiserver"] == "HealthStatusUp" and health["machineController"] == "HealthStatusUp"
    user = kkp_lab.clusters["payments-canal-ipvs"]
    kkp_lab.lab.call(kkp_lab.kkp.set_health, user.id, "etcd", "HealthStatusDown")
    assert rest("GET", path + "/health").json()["etcd"] == "HealthStatusDown"

    config = tmp_path / "user.kubeconfig"
    config.write_text(rest("GET", path + "/kubeconfig").text)
    out = subprocess.run(["kubectl", "--kubeconfig", str(config), "--cache-dir", str(tmp_path / "cache"),
                          "get", "nodes", "-o", "name"], capture_output=True, text=True, timeout=60, check=True)
    assert len(out.stdout.split()) == 3

    assert rest("GET", "/api/v2/cni/canal/versions").json() == {
        "cniPluginType": "canal", "cniDefaultVersion": "v3.31", "versions": ["v3.29", "v3.30", "v3.31"]}
    assert rest("GET", "/api/v2/cni/cilium/versions").json()["cniDefaultVersion"] == "1.19.4"
    assert rest("GET", path + "/cniversions").json() == {"cniPluginType": "canal",
                                                         "versions": ["v3.29", "v3.30", "v3.31"]}


def test_rest_machine_deployment_restart(kkp_lab, rest, user_api):
    path = cluster_path(kkp_lab, "webshop-canal-iptables")
    mds = rest("GET", path + "/machinedeployments").json()
    assert len(mds) == 1 and mds[0]["id"] == mds[0]["name"] and mds[0]["spec"]["replicas"] == 3
    resp = rest("POST", f"{path}/machinedeployments/{mds[0]['id']}/restart")
    assert resp.status_code == 200
    md = user_api("webshop-canal-iptables").custom.get_namespaced_custom_object(
        "cluster.k8s.io", "v1alpha1", "kube-system", "machinedeployments", mds[0]["id"])
    stamp = md["spec"]["template"]["metadata"]["annotations"]["forceRestart"]
    assert stamp.isdigit() and abs(int(stamp) - time.time_ns()) < 600 * 10**9
    assert rest("POST", f"{path}/machinedeployments/nope/restart").status_code == 404


def test_options_are_per_installation():
    assert KkpOptions().rollout_delay == 120.0 and KkpOptions().kube_proxy_checksum is True


def test_cilium_to_canal_deploys_canal_and_keeps_the_application_installation(kkp_lab, seed_api, user_api,
                                                                             kubeconfig_file, tmp_path):
    from lab.kkp import canal

    user = kkp_lab.clusters["analytics-cilium-ebpf"]
    api = user_api("analytics-cilium-ebpf")
    patch_seed(seed_api, user.id, {"metadata": {"labels": {"unsafe-cni-migration": "true"}},
                                   "spec": {"cniPlugin": {"type": "canal", "version": "v3.31"},
                                            "clusterNetwork": {"proxyMode": "iptables"}}})
    eventually(lambda: len(api.core.list_namespaced_pod("kube-system", label_selector="k8s-app=canal").items) == 3)
    eventually(lambda: stored(kkp_lab, user, "", "configmaps", "kube-system", "kube-proxy"))
    eventually(lambda: [p for p in api.core.list_namespaced_pod(
        "kube-system", label_selector="k8s-app=calico-kube-controllers").items
        if p.status and p.status.phase == "Running"])
    controllers = api.apps.read_namespaced_deployment("calico-kube-controllers", "kube-system").spec.template
    assert [c.image for c in controllers.spec.containers] == ["quay.io/calico/kube-controllers:v3.31.0"]
    # every object of KKP's canal_v3.31.yaml addon is there: `kubectl get -f` finds them all
    manifest = tmp_path / "canal_v3.31.yaml"
    docs = canal.manifest("v3.31")
    manifest.write_text(yaml.safe_dump_all(docs))

    def kubectl_get_all():
        return subprocess.run(["kubectl", "--kubeconfig", kubeconfig_file(user.api), "--cache-dir",
                               str(tmp_path / "cache"), "get", "-f", str(manifest), "-o", "name"],
                              capture_output=True, text=True, timeout=60)
    got = eventually(lambda: (out := kubectl_get_all()).returncode == 0 and out)
    assert len(got.stdout.split()) == len(docs) and "poddisruptionbudget.policy/calico-kube-controllers" in got.stdout
    app = api.custom.get_namespaced_custom_object("apps.kubermatic.k8c.io", "v1", "kube-system",
                                                  "applicationinstallations", "cilium")
    assert not app["metadata"].get("deletionTimestamp")
    assert api.apps.read_namespaced_daemon_set("cilium", "kube-system")
    # KKP manages Cilium's values only while Cilium is the cluster's CNI: the left-behind one keeps them
    assert api.core.read_namespaced_config_map("cilium-config", "kube-system").data["kube-proxy-replacement"] == "true"


def test_scenario_scales_to_a_fleet():
    from lab import scenario

    names = [p.name for p in scenario.plans(clusters=8, nodes=5)]
    assert len(set(names)) == 8 and names[:3] == [f.name for f in scenario.FLAVOURS]
    assert all(p.nodes == 5 for p in scenario.plans(clusters=8, nodes=5))
    deployments = {w["metadata"]["name"]: w for w in scenario.workloads(pods=5000) if w["kind"] == "Deployment"}
    assert deployments["frontend"]["spec"]["replicas"] + deployments["api"]["spec"]["replicas"] == 5000 - 6
