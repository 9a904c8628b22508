"""The resource types a lab cluster serves: built-in ones and those its CRDs define."""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
_META_FIELDS = {"metadata.name": "", "metadata.namespace": ""}


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()          # "status", "scale", "eviction"
    field_selectors: dict = field(default_factory=dict, hash=False, compare=False)
    printer_columns: tuple = ()                 # CRD additionalPrinterColumns
    builtin: bool = True
    categories: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        """Storage key: group and plural (one stored version per resource in the lab)."""
        return (self.group, self.plural)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def selectable_fields(self) -> dict:
        return {**_META_FIELDS, **self.field_selectors}


def _rt(group, version, kind, plural, namespaced, short=(), sub=(), fields=None, categories=()):
    return ResourceType(group, version, kind, plural, namespaced, tuple(short), tuple(sub), fields or {},
                        categories=tuple(categories))


POD_FIELDS = {
    "spec.nodeName": "", "spec.restartPolicy": "", "spec.schedulerName": "", "spec.serviceAccountName": "",
    "spec.hostNetwork": "false", "status.phase": "", "status.podIP": "", "status.nominatedNodeName": "",
}

BUILTIN = [
    _rt("", "v1", "Namespace", "namespaces", False, ["ns"], ["status"], {"status.phase": ""}),
    _rt("", "v1", "Node", "nodes", False, ["no"], ["status"], {"spec.unschedulable": "false"}),
    _rt("", "v1", "Pod", "pods", True, ["po"], ["status", "eviction"], POD_FIELDS, ["all"]),
    _rt("", "v1", "ConfigMap", "configmaps", True, ["cm"]),
    _rt("", "v1", "Secret", "secrets", True, (), (), {"type": ""}),
    _rt("", "v1", "ServiceAccount", "serviceaccounts", True, ["sa"]),
    _rt("", "v1", "Service", "services", True, ["svc"], ["status"], None, ["all"]),
    _rt("", "v1", "Endpoints", "endpoints", True, ["ep"]),
    _rt("", "v1", "Event", "events", True, ["ev"]),
    _rt("apps", "v1", "Deployment", "deployments", True, ["deploy"], ["status", "scale"], None, ["all"]),
    _rt("apps", "v1", "ReplicaSet", "replicasets", True, ["rs"], ["status", "scale"], {"status.replicas": ""}, ["all"]),
    _rt("apps", "v1", "DaemonSet", "daemonsets", True, ["ds"], ["status"], None, ["all"]),
    _rt("apps", "v1", "StatefulSet", "statefulsets", True, ["sts"], ["status", "scale"], None, ["all"]),
    _rt("apps", "v1", "ControllerRevision", "controllerrevisions", True),
    _rt("batch", "v1", "Job", "jobs", True, (), ["status"], {"status.successful": ""}, ["all"]),
    _rt("batch", "v1", "CronJob", "cronjobs", True, ["cj"], ["status"], None, ["all"]),
    _rt("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ["pdb"], ["status"]),
    _rt("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _rt("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _rt("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    _rt("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    _rt("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ["netpol"]),
    _rt("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False,
        ["crd", "crds"], ["status"]),
]


def from_crd(crd: dict) -> list[ResourceType]:
    """The resource types a CustomResourceDefinition serves (one per served version)."""
    spec = crd["spec"]
    names = spec["names"]
    out = []
    for ver in spec.get("versions") or []:
        if not ver.get("served", True):
            continue
        sub = []
        if "status" in (ver.get("subresources") or {}):
            sub.append("status")
        if "scale" in (ver.get("subresources") or {}):
            sub.append("scale")
        out.append(ResourceType(
            spec["group"], ver["name"], names["kind"], names["plural"], spec.get("scope") == "Namespaced",
            tuple(names.get("shortNames") or ()), tuple(sub), {},
            tuple(ver.get("additionalPrinterColumns") or ()), builtin=False,
            categories=tuple(names.get("categories") or ()),
        ))
    return out


def crd_object(group: str, version: str, kind: str, plural: str, namespaced: bool, *,
               short_names=(), status=True, printer_columns=(), categories=()) -> dict:
    """A CustomResourceDefinition manifest, as CNI charts and KKP ship them (schema left open)."""
    ver = {
        "name": version, "served": True, "storage": True,
        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    }
    if status:
        ver["subresources"] = {"status": {}}
    if printer_columns:
        ver["additionalPrinterColumns"] = list(printer_columns)
    names = {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": kind + "List"}
    if short_names:
        names["shortNames"] = list(short_names)
    if categories:
        names["categories"] = list(categories)
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "names": names, "scope": "Namespaced" if namespaced else "Cluster",
                 "versions": [ver]},
    }
