"""KKP's `canal` addon: the objects of `addons/canal/canal_<version>.yaml`, as KKP renders them.

Which objects a version has comes from the shared data file `canal_objects.yaml`; this module
gives each of them a body (images of the version, the cluster's pod CIDR, the canal pod shape
the lab's kubelet looks for: `k8s-app=canal`, host network, calico-node + kube-flannel).
"""

from __future__ import annotations

from . import objects as o
from . import versions
from .crds import cni_crd

NS = "kube-system"
ADDON_LABELS = {"kubermatic-addon": "canal"}
_BINDING_ROLE = {"canal-calico": "calico-node", "canal-flannel": "flannel"}


def _key(ref: dict) -> tuple:
    return ref["apiVersion"], ref["kind"], ref["name"], ref.get("namespace")


def object_refs(version: str) -> list[dict]:
    """apiVersion/kind/name/namespace of every object of the version (optional ones left out), CRDs last."""
    table = versions.data("canal_objects.yaml")
    target = versions.parse(version)
    refs = list(table["base"]["objects"])
    crds = list(table["base"]["crds"])
    for at, change in sorted(table.get("changes", {}).items(), key=lambda kv: versions.parse(kv[0])):
        if versions.parse(at) > target:
            continue
        gone = {_key(r) for r in change.get("remove") or []}
        refs = [r for r in refs if _key(r) not in gone] + list(change.get("add") or [])
        crds += list(change.get("add_crds") or [])
    refs = [r for r in refs if not r.get("optional")]
    return refs + [{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "name": c}
                   for c in crds]


def manifest(version: str, pod_cidr: str = "172.25.0.0/16") -> list[dict]:
    """The full rendered addon: what KKP applies, and what the runbook's `kubectl delete -f` removes."""
    return [_render(ref, version, pod_cidr) for ref in object_refs(version)]


def _image_tag(version: str) -> str:
    return f"{version}.0"


def _render(ref: dict, version: str, pod_cidr: str) -> dict:
    kind, name, ns = ref["kind"], ref["name"], ref.get("namespace")
    if kind == "CustomResourceDefinition":
        obj = cni_crd(name)
    elif kind == "DaemonSet":
        obj = _daemonset(version)
    elif kind == "Deployment":
        obj = _kube_controllers(version)
    elif kind == "PodDisruptionBudget":
        obj = o.pdb(name, ns, {"k8s-app": "calico-kube-controllers"}, max_unavailable=1)
    elif kind == "ConfigMap":
        obj = o.config_map(name, ns, _config(pod_cidr))
    elif kind == "ServiceAccount":
        obj = o.service_account(name, ns)
    elif kind == "ClusterRole":
        obj = o.cluster_role(name, [{"apiGroups": ["", "crd.projectcalico.org"], "resources": ["*"],
                                     "verbs": ["get", "list", "watch"]}])
    elif kind == "ClusterRoleBinding":
        sa = "calico-kube-controllers" if name == "calico-kube-controllers" else \
            "calico-cni-plugin" if name == "calico-cni-plugin" else "canal"
        obj = o.cluster_role_binding(name, _BINDING_ROLE.get(name, name), [(sa, NS)])
    elif kind == "NetworkPolicy":
        obj = {"kind": "NetworkPolicy", "metadata": o.meta(name, ns),
               "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]}}
    else:
        raise ValueError(f"the lab cannot render a Canal {kind} ({name})")
    obj["apiVersion"] = ref["apiVersion"]
    obj["kind"] = kind
    obj["metadata"]["labels"] = {**(obj["metadata"].get("labels") or {}), **ADDON_LABELS}
    return obj


def _config(pod_cidr: str) -> dict:
    return {
        "typha_service_name": "none", "calico_backend": "none", "canal_iface": "", "masquerade": "true",
        "veth_mtu": "1450",
        "cni_network_config": '{"name": "k8s-pod-network", "cniVersion": "0.3.1", "plugins": ['
                              '{"type": "calico", "ipam": {"type": "host-local", "subnet": "usePodCidr"}}, '
                              '{"type": "portmap", "snat": true, "capabilities": {"portMappings": true}}]}',
        "net-conf.json": '{"Network": "%s", "Backend": {"Type": "vxlan"}}' % pod_cidr,
    }


def _daemonset(version: str) -> dict:
    labels = {"k8s-app": "canal"}
    template = o.pod_template(labels, [o.container("calico-node", f"quay.io/calico/node:{_image_tag(version)}"),
                                       o.container("kube-flannel", "quay.io/flannel/flannel:v0.26.7")],
                              host_network=True, service_account="canal", tolerate_all=True)
    template["spec"]["priorityClassName"] = "system-node-critical"
    return o.daemonset("canal", NS, labels, template)


def _kube_controllers(version: str) -> dict:
    labels = {"k8s-app": "calico-kube-controllers"}
    template = o.pod_template(labels, [o.container("calico-kube-controllers",
                                                   f"quay.io/calico/kube-controllers:{_image_tag(version)}")],
                              service_account="calico-kube-controllers")
    template["spec"]["tolerations"] = [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                                       {"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}]
    dep = o.deployment("calico-kube-controllers", NS, labels, template, replicas=1)
    dep["spec"]["strategy"] = {"type": "Recreate"}
    return dep
