"""kubectl against a bare lab cluster: discovery, printing, and the runbook's own commands."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.lab.apiserver_support import (  # noqa: F401  (fixtures)
    api, crd, deployment, kubectl, mark_running, pod, stored, u1,
)

MANIFEST = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: widget-reader}
rules: [{apiGroups: [example.com], resources: [widgets], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: widget-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: widget-reader}
subjects: [{kind: ServiceAccount, name: default, namespace: kube-system}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: widget-config, namespace: kube-system}
data: {mode: fast}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: widget-agent, namespace: kube-system}
spec:
  selector: {matchLabels: {app: widget-agent}}
  template:
    metadata: {labels: {app: widget-agent}}
    spec:
      hostNetwork: true
      containers: [{name: agent, image: example.com/agent:1.0}]
"""


def test_api_resources_lists_builtin_and_crd_resources(u1, api, kubectl):
    api.crds.create_custom_resource_definition(crd())
    rows = {line.split()[0]: line.split() for line in kubectl("api-resources", "--no-headers").stdout.splitlines()}
    assert rows["pods"] == ["pods", "po", "v1", "true", "Pod"]
    assert rows["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert rows["clusterroles"] == ["clusterroles", "rbac.authorization.k8s.io/v1", "false", "ClusterRole"]
    assert rows["widgets"] == ["widgets", "wd", "example.com/v1", "true", "Widget"]


def test_get_core_apps_and_custom_resources(u1, api, kubectl):
    api.core.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}})
    api.apps.create_namespaced_deployment("default", deployment("web", replicas=3))
    api.crds.create_custom_resource_definition(crd())
    api.custom.create_namespaced_custom_object("example.com", "v1", "default", "widgets", {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}})

    cm = kubectl("get", "configmap", "cfg").stdout.splitlines()
    assert cm[0].split() == ["NAME", "DATA", "AGE"] and cm[1].split()[:2] == ["cfg", "2"]
    deploy = kubectl("get", "deploy", "web").stdout.splitlines()
    assert deploy[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert deploy[1].split()[:2] == ["web", "0/3"]
    widgets = kubectl("get", "wd").stdout.splitlines()
    assert widgets[0].split() == ["NAME", "AGE"] and widgets[1].split()[0] == "w1"
    assert kubectl("get", "widgets.example.com", "w1", "-o", "name").stdout.strip() == "widget.example.com/w1"


def test_get_namespaces_table(u1, api, kubectl):
    api.core.create_namespace({"metadata": {"name": "team"}})
    lines = kubectl("get", "namespaces").stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "AGE"]
    assert sorted(line.split()[:2] for line in lines[1:]) == [
        ["default", "Active"], ["kube-node-lease", "Active"], ["kube-public", "Active"], ["kube-system", "Active"],
        ["team", "Active"]]


def test_get_pods_all_namespaces_table(u1, api, kubectl):
    api.core.create_namespaced_pod("default", pod("pending"))
    api.core.create_namespaced_pod("kube-system", pod("running", namespace="kube-system", node="n1"))
    mark_running(api, "running", "kube-system")

    lines = kubectl("get", "pods", "-A").stdout.splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    rows = sorted(line.split()[:5] for line in lines[1:])
    assert rows == [["default", "pending", "0/1", "Pending", "0"], ["kube-system", "running", "1/1", "Running", "0"]]


def test_get_watch_prints_rows_of_one_table(lab, u1, api, kubeconfig_file):
    api.core.create_namespaced_pod("default", pod("p"))
    proc = subprocess.Popen(["kubectl", "--kubeconfig", kubeconfig_file(u1), "get", "pods", "-w"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        api.core.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"a": "b"}}},
                                      _content_type="application/merge-patch+json")
        lines.append(proc.stdout.readline())
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [line.split()[:3] for line in lines[1:]] == [["p", "0/1", "Pending"]] * 2


def test_get_output_yaml_is_the_stored_object(lab, u1, api, kubectl):
    api.apps.create_namespaced_deployment("default", deployment("web"))
    doc = yaml.safe_load(kubectl("get", "deployment", "web", "-o", "yaml").stdout)
    assert doc == stored(lab, u1, "apps", "deployments", "default", "web")
    listed = yaml.safe_load(kubectl("get", "deployments", "-A", "-o", "yaml").stdout)
    assert listed["kind"] == "List" and [i["metadata"]["name"] for i in listed["items"]] == ["web"]


def test_custom_columns_show_none_for_unset_host_network(u1, api, kubectl):
    api.core.create_namespaced_pod("default", pod("app"))
    api.core.create_namespaced_pod("kube-system", pod("agent", namespace="kube-system", host_network=True))
    out = kubectl("get", "pods", "--all-namespaces", "-o", "custom-columns=NAMESPACE:.metadata.namespace,"
                  "NAME:.metadata.name,HOSTNETWORK:.spec.hostNetwork", "--no-headers=true").stdout
    assert sorted(line.split() for line in out.splitlines()) == [["default", "app", "<none>"],
                                                                  ["kube-system", "agent", "true"]]


def test_runbook_pipeline_deletes_pods_without_host_network(lab, u1, api, kubeconfig_file):
    """The runbook's one-liner that restarts every non-host-network pod, run as written."""
    for ns, name in (("default", "app"), ("kube-system", "coredns")):
        api.core.create_namespaced_pod(ns, pod(name, namespace=ns))
    api.core.create_namespaced_pod("kube-system", pod("agent", namespace="kube-system", host_network=True))
    pipeline = ("kubectl get pods --all-namespaces -o custom-columns=NAMESPACE:.metadata.namespace,"
                "NAME:.metadata.name,HOSTNETWORK:.spec.hostNetwork --no-headers=true | grep '<none>' | "
                "awk '{print \"-n \"$1\" \"$2}' | xargs -L 1 -r kubectl delete pod")
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "KUBECONFIG": kubeconfig_file(u1)})
    assert proc.returncode == 0, proc.stderr
    assert stored(lab, u1, "", "pods", "default", "app") is None
    assert stored(lab, u1, "", "pods", "kube-system", "coredns") is None
    assert stored(lab, u1, "", "pods", "kube-system", "agent") is not None


def test_create_then_delete_multi_document_manifest(lab, u1, kubectl, tmp_path):
    manifest = tmp_path / "widgets.yaml"
    manifest.write_text(MANIFEST)
    kubectl("create", "-f", str(manifest))
    assert stored(lab, u1, "apps", "daemonsets", "kube-system", "widget-agent") is not None
    assert stored(lab, u1, "rbac.authorization.k8s.io", "clusterrolebindings", None, "widget-reader") is not None

    out = kubectl("delete", "-f", str(manifest)).stdout
    assert 'customresourcedefinition.apiextensions.k8s.io "widgets.example.com" deleted' in out
    assert 'clusterrole.rbac.authorization.k8s.io "widget-reader" deleted' in out
    for group, plural, ns, name in (
            ("apiextensions.k8s.io", "customresourcedefinitions", None, "widgets.example.com"),
            ("rbac.authorization.k8s.io", "clusterroles", None, "widget-reader"),
            ("rbac.authorization.k8s.io", "clusterrolebindings", None, "widget-reader"),
            ("", "configmaps", "kube-system", "widget-config"),
            ("apps", "daemonsets", "kube-system", "widget-agent")):
        assert stored(lab, u1, group, plural, ns, name) is None, (plural, name)
    again = kubectl("delete", "-f", str(manifest), "--ignore-not-found")
    assert again.returncode == 0


def test_apply_twice_is_idempotent(lab, u1, kubectl, tmp_path):
    manifest = tmp_path / "widgets.yaml"
    manifest.write_text(MANIFEST)
    kubectl("apply", "-f", str(manifest))
    first = stored(lab, u1, "apps", "daemonsets", "kube-system", "widget-agent")
    out = kubectl("apply", "-f", str(manifest)).stdout
    assert "daemonset.apps/widget-agent unchanged" in out
    assert stored(lab, u1, "apps", "daemonsets", "kube-system", "widget-agent") == first


def test_rollout_restart_sets_restarted_at_on_the_template(lab, u1, api, kubectl):
    api.apps.create_namespaced_deployment("default", deployment("web"))
    kubectl("rollout", "restart", "deployment", "web")
    obj = stored(lab, u1, "apps", "deployments", "default", "web")
    assert "kubectl.kubernetes.io/restartedAt" in obj["spec"]["template"]["metadata"]["annotations"]
    assert obj["metadata"]["generation"] == 2


def test_label_and_patch_types(lab, u1, api, kubectl):
    api.apps.create_namespaced_deployment("default", deployment("web"))
    kubectl("label", "deployment", "web", "tier=front")
    kubectl("patch", "deployment", "web", "--type", "merge", "-p", '{"spec":{"replicas":4}}')
    kubectl("patch", "deployment", "web", "--type", "json", "-p",
            '[{"op":"add","path":"/metadata/annotations","value":{"owner":"net"}}]')
    kubectl("patch", "deployment", "web", "--type", "strategic", "-p",
            '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.37"}]}}}}')
    obj = stored(lab, u1, "apps", "deployments", "default", "web")
    assert obj["metadata"]["labels"] == {"tier": "front"} and obj["metadata"]["annotations"] == {"owner": "net"}
    assert obj["spec"]["replicas"] == 4
    assert [c["image"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["nginx:1.25", "busybox:1.37"]
    assert kubectl("get", "deploy", "-l", "tier=front", "-o", "name").stdout.split() == ["deployment.apps/web"]


def test_strategic_patch_of_a_custom_resource_is_refused(lab, u1, api, kubectl):
    api.crds.create_custom_resource_definition(crd())
    api.custom.create_namespaced_custom_object("example.com", "v1", "default", "widgets", {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 1}})
    refused = kubectl("patch", "widget", "w1", "-p", '{"spec":{"size":2}}', check=False)
    assert refused.returncode != 0 and "strategic-merge-patch" in refused.stderr
    kubectl("patch", "widget", "w1", "--type", "merge", "-p", '{"spec":{"size":3}}')
    assert stored(lab, u1, "example.com", "widgets", "default", "w1")["spec"] == {"size": 3}


def test_wait_for_pod_ready(u1, api, kubectl):
    api.core.create_namespaced_pod("default", pod("p", node="n1"))
    assert kubectl("wait", "--for=condition=Ready", "pod/p", "--timeout=1s", check=False).returncode != 0
    mark_running(api, "p")
    assert "pod/p condition met" in kubectl("wait", "--for=condition=Ready", "pod/p", "--timeout=20s").stdout


def installed_kubectls() -> list[str]:
    """`kubectl` on PATH, and the versioned binaries beside it where a dispatcher picks one per server
    (the google-cloud-sdk layout: kubectl.1.27 ... kubectl.1.33)."""
    found = shutil.which("kubectl")
    beside = sorted(Path(found).resolve().parent.glob("kubectl.1.*")) if found else []
    return ["kubectl", *(str(p) for p in beside)]


@pytest.mark.parametrize("binary", installed_kubectls(), ids=lambda b: Path(b).name)
def test_imperative_creates_work_with_every_installed_kubectl(u1, lab, kubeconfig_file, tmp_path, binary):
    """kubectl 1.32+ sends what it creates without a manifest as protobuf (no JSON fallback); the lab
    reads those kinds."""
    ns = "ns-" + Path(binary).name.replace(".", "-")
    base = [binary, "--kubeconfig", kubeconfig_file(u1), "--cache-dir", str(tmp_path / "cache")]
    for args in (["create", "namespace", ns],
                 ["create", "configmap", "settings", "-n", ns, "--from-literal=mode=ipvs"],
                 ["create", "secret", "generic", "token", "-n", ns, "--from-literal=token=s3cret"],
                 ["create", "serviceaccount", "migrator", "-n", ns],
                 ["label", "configmap", "settings", "-n", ns, "team=platform"]):
        proc = subprocess.run([*base, *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"{binary} {' '.join(args)}: {proc.stderr}"
    assert stored(lab, u1, "", "namespaces", None, ns)["metadata"]["name"] == ns
    config = stored(lab, u1, "", "configmaps", ns, "settings")
    assert config["data"] == {"mode": "ipvs"} and config["metadata"]["labels"] == {"team": "platform"}
    assert stored(lab, u1, "", "secrets", ns, "token")["data"] == {"token": "czNjcmV0"}
    assert stored(lab, u1, "", "serviceaccounts", ns, "migrator") is not None

    refused = subprocess.run([*base, "create", "deployment", "web", "-n", ns, "--image=nginx"],
                             capture_output=True, text=True, timeout=60)
    if refused.returncode:  # 1.32+: protobuf for a kind the lab does not read
        assert "create it from a YAML or JSON manifest" in refused.stderr, refused.stderr
    else:
        assert stored(lab, u1, "apps", "deployments", ns, "web") is not None
