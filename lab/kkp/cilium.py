"""Cilium as KKP deploys it: the `cilium` Helm chart of an ApplicationInstallation (>= 1.13) or the
old `cilium` addon (v1.11, v1.12), plus what the agent and operator create at run time (CRDs).

Object lists come from the shared data file `cilium_objects.yaml`; this module gives each a body
with the shapes the lab's kubelet and the runbook look for (pods `k8s-app=cilium`, operator pods
`io.cilium/app=operator`, `kube-proxy-replacement` in `cilium-config`).
"""

from __future__ import annotations

import yaml

from . import objects as o
from . import versions
from .crds import cni_crd

NS = "kube-system"
RELEASE = "kube-system-cilium"
CONFIG_CHECKSUM = "cilium.io/cilium-configmap-checksum"


def _table() -> dict:
    return versions.data("cilium_objects.yaml")


def _ref_key(ref: dict) -> tuple:
    return ref["apiVersion"], ref["kind"], ref["name"], ref.get("namespace")


def _layered(base: list, changes: dict, version: str, key=_ref_key) -> list:
    """Base, then every change at a version <= `version`: drop `remove`, append `add`."""
    out = list(base)
    target = versions.parse(version)
    for at, change in sorted((changes or {}).items(), key=lambda kv: versions.parse(kv[0])):
        if versions.parse(at) <= target:
            gone = {key(r) for r in change.get("remove") or []}
            out = [r for r in out if key(r) not in gone] + list(change.get("add") or [])
    return out


def object_refs(version: str) -> list[dict]:
    """The chart's (or the addon's) objects of a version, optional ones left out."""
    part = _table()["application" if versions.is_application("cilium", version) else "addon"]
    return [r for r in _layered(part["base"], part.get("changes"), version) if not r.get("optional")]


def runtime_crds(version: str) -> list[dict]:
    """The cilium.io CRDs the agent and operator of a version create (not part of the release)."""
    crds = _table()["runtime"]["crds"]
    return [cni_crd(name) for name in _layered(crds["base"], crds.get("changes"), version, key=lambda n: n)]


def values(proxy_mode: str, pod_cidr: str, api_host: str) -> dict:
    """The Helm values KKP enforces that matter here: kube-proxy replacement with ebpf, the pod CIDR."""
    ebpf = proxy_mode == "ebpf"
    out = {"kubeProxyReplacement": "true" if ebpf else "false", "cni": {"exclusive": False},
           "ipam": {"operator": {"clusterPoolIPv4PodCIDRList": [pod_cidr]}}, "operator": {"replicas": 1}}
    if ebpf:
        out.update({"k8sServiceHost": api_host, "k8sServicePort": 6443})
    else:
        out["cni"]["chainingMode"] = "portmap"
    return out


def manifest(version: str, vals: dict) -> list[dict]:
    """Rendered objects of the chart or addon for `version` and `vals` (hook objects marked `hook`)."""
    helm = versions.is_application("cilium", version)
    out = []
    for ref in object_refs(version):
        obj = _render(ref, version, vals, helm)
        obj["apiVersion"], obj["kind"] = ref["apiVersion"], ref["kind"]
        labels = obj["metadata"].setdefault("labels", {})
        if helm:
            labels.update({"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/part-of": "cilium"})
            obj["metadata"].setdefault("annotations", {}).update(
                {"meta.helm.sh/release-name": RELEASE, "meta.helm.sh/release-namespace": NS})
            if ref.get("hook"):
                obj["metadata"]["annotations"]["helm.sh/hook"] = ref["hook"]
        else:
            labels["kubermatic-addon"] = "cilium"
        out.append(obj)
    return out


def is_hook(obj: dict) -> bool:
    return "helm.sh/hook" in (obj["metadata"].get("annotations") or {})


def config_data(version: str, vals: dict) -> dict:
    kpr = vals["kubeProxyReplacement"]
    if not versions.is_application("cilium", version):      # the old agents spoke strict/disabled
        kpr = "strict" if kpr == "true" else "disabled"
    data = {"kube-proxy-replacement": kpr, "ipam": "cluster-pool", "cni-exclusive": "false",
            "cluster-pool-ipv4-cidr": vals["ipam"]["operator"]["clusterPoolIPv4PodCIDRList"][0],
            "cluster-pool-ipv4-mask-size": "24", "routing-mode": "tunnel", "tunnel-protocol": "vxlan",
            "enable-hubble": "true", "cilium-version": version}
    if "k8sServiceHost" in vals:
        data["k8s-service-host"] = vals["k8sServiceHost"]
        data["k8s-service-port"] = str(vals["k8sServicePort"])
    return data


def _image(name: str, version: str) -> str:
    return f"quay.io/cilium/{name}:v{version.lstrip('v')}"


def _render(ref: dict, version: str, vals: dict, helm: bool) -> dict:
    kind, name, ns = ref["kind"], ref["name"], ref.get("namespace")
    if kind == "DaemonSet":
        labels = {"k8s-app": "cilium"}
        template = o.pod_template(labels, [o.container("cilium-agent", _image("cilium", version))],
                                  host_network=True, service_account="cilium", tolerate_all=True,
                                  annotations={CONFIG_CHECKSUM: o.checksum(config_data(version, vals))})
        template["spec"]["priorityClassName"] = "system-node-critical"
        return o.daemonset(name, ns, labels, template)
    if kind == "Deployment" and name == "cilium-operator":
        labels = {"io.cilium/app": "operator", "name": "cilium-operator"}
        template = o.pod_template(labels, [o.container("cilium-operator", _image("operator-generic", version))],
                                  host_network=True, service_account="cilium-operator", tolerate_all=True,
                                  annotations={CONFIG_CHECKSUM: o.checksum(config_data(version, vals))})
        return o.deployment(name, ns, labels, template, replicas=vals["operator"]["replicas"])
    if kind == "Deployment":                                  # hubble-relay, hubble-ui: on the pod network
        labels = {"k8s-app": name}
        return o.deployment(name, ns, labels, o.pod_template(labels, [o.container(name, _image(name, version))],
                                                             service_account=name))
    if kind == "ConfigMap" and name == "cilium-config":
        return o.config_map(name, ns, config_data(version, vals))
    if kind == "ConfigMap":
        return o.config_map(name, ns, {"config.yaml": yaml.safe_dump({"peer-service": "hubble-peer"})})
    if kind == "ServiceAccount":
        return o.service_account(name, ns)
    if kind in ("ClusterRole", "Role"):
        obj = o.cluster_role(name, [{"apiGroups": ["", "cilium.io"], "resources": ["*"],
                                     "verbs": ["get", "list", "watch"]}])
        obj["metadata"] = o.meta(name, ns)
        return obj
    if kind in ("ClusterRoleBinding", "RoleBinding"):
        sa = name if name in ("cilium", "cilium-operator", "hubble-ui", "hubble-generate-certs") else \
            ("cilium-operator" if "operator" in name else "cilium")
        obj = o.cluster_role_binding(name, name, [(sa, NS)])
        obj["metadata"] = o.meta(name, ns)
        if kind == "RoleBinding":
            obj["roleRef"]["kind"] = "Role"
        return obj
    if kind == "Service":
        selector = {"k8s-app": "cilium"} if name == "hubble-peer" else {"k8s-app": name}
        return {"metadata": o.meta(name, ns), "spec": {"type": "ClusterIP", "selector": selector,
                                                      "ports": [{"port": 80 if name == "hubble-ui" else 443,
                                                                 "protocol": "TCP"}]}}
    if kind in ("Job", "CronJob"):
        labels = {"k8s-app": "hubble-generate-certs"}
        template = o.pod_template(labels, [o.container("certgen", "quay.io/cilium/certgen:v0.2.1")],
                                  service_account="hubble-generate-certs", restart_policy="OnFailure")
        if kind == "CronJob":
            return {"metadata": o.meta(name, ns, labels),
                    "spec": {"schedule": "0 0 1 */4 *", "jobTemplate": {"spec": {"template": template}}}}
        job_name = name.replace("*", o.checksum(template)[:5]) if name.endswith("*") else name
        return o.job(job_name, ns, labels, template)
    if kind == "Namespace":
        return {"metadata": {"name": name}}
    if kind == "NetworkPolicy":
        return {"metadata": o.meta(name, ns), "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                                                       "ingress": [{}]}}
    raise ValueError(f"the lab cannot render a Cilium {kind} ({name})")
