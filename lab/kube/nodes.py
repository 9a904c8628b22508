"""Nodes: the manifest of a worker node and the controller that completes and readies joining nodes.

A node created without status (by a MachineDeployment, by kubectl) gets addresses, a pod CIDR,
capacity and nodeInfo, reports NotReady while its kubelet starts, and turns Ready after
`timing.NODE_JOIN`. A node created with a Ready condition (the bulk builder) is only completed.
"""

from __future__ import annotations

from lab.apiserver.store import Event, now_iso

from . import timing

KERNEL_ANNOTATION = "lab.kubermatic.io/kernel-version"
OS_IMAGE_ANNOTATION = "lab.kubermatic.io/os-image"
KUBELET_ANNOTATION = "lab.kubermatic.io/kubelet-version"
JOINING_REASON = "KubeletNotReady"
MAX_PODS = 110

# operatingSystem (machine-controller's providerSpec) -> (osImage, kernelVersion) of a current image
OS_DEFAULTS = {
    "ubuntu": ("Ubuntu 22.04.5 LTS", "5.15.0-126-generic"),
    "flatcar": ("Flatcar Container Linux by Kinvolk 4081.2.0 (Oklo)", "6.6.60-flatcar"),
    "rhel": ("Red Hat Enterprise Linux 8.6 (Ootpa)", "4.18.0-372.9.1.el8.x86_64"),
    "rockylinux": ("Rocky Linux 9.4 (Blue Onyx)", "5.14.0-427.13.1.el9_4.x86_64"),
    "amzn2": ("Amazon Linux 2", "5.10.228-219.884.amzn2.x86_64"),
}


def node_ready(node: dict | None) -> bool:
    if node is None or node["metadata"].get("deletionTimestamp"):
        return False
    for c in (node.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def internal_ip(node: dict) -> str:
    for a in (node.get("status") or {}).get("addresses") or ():
        if a.get("type") == "InternalIP":
            return a["address"]
    return ""


def _conditions(ready: bool, now: str) -> list[dict]:
    out = [{"type": t, "status": "False", "reason": f"KubeletHas{r}", "message": m,
            "lastHeartbeatTime": now, "lastTransitionTime": now}
           for t, r, m in (("MemoryPressure", "SufficientMemory", "kubelet has sufficient memory available"),
                           ("DiskPressure", "NoDiskPressure", "kubelet has no disk pressure"),
                           ("PIDPressure", "SufficientPID", "kubelet has sufficient PID available"))]
    out.append({"type": "Ready", "status": "True" if ready else "False",
                "reason": "KubeletReady" if ready else JOINING_REASON,
                "message": "kubelet is posting ready status" if ready else "container runtime is starting",
                "lastHeartbeatTime": now, "lastTransitionTime": now})
    return out


def node_manifest(name: str, *, labels: dict | None = None, annotations: dict | None = None,
                  os: str = "ubuntu", kernel: str | None = None, os_image: str | None = None,
                  kubelet_version: str = "", ready: bool = False) -> dict:
    """A worker node; `ready` nodes start Ready, others join like a freshly booted machine.

    The image (kernel, OS, kubelet version) rides on annotations until the controller writes the
    whole status.nodeInfo at once (clients reject a partial one)."""
    default_image, default_kernel = OS_DEFAULTS.get(os, OS_DEFAULTS["ubuntu"])
    meta = {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                     "kubernetes.io/arch": "amd64", **(labels or {})},
            "annotations": {KERNEL_ANNOTATION: kernel or default_kernel,
                            OS_IMAGE_ANNOTATION: os_image or default_image, **(annotations or {})}}
    if kubelet_version:
        meta["annotations"][KUBELET_ANNOTATION] = f"v{kubelet_version.lstrip('v')}"
    node = {"apiVersion": "v1", "kind": "Node", "metadata": meta, "spec": {}}
    if ready:
        node["status"] = {"conditions": _conditions(True, now_iso())}
    return node


class NodeLifecycle:
    def __init__(self, kube):
        self.kube = kube
        self.store = kube.store
        self.rt = kube.rt("", "nodes")
        self._cidrs: dict[str, int] = {}          # node -> index of its 10.244.<i>.0/24
        self._joining: set[str] = set()
        self.queue = kube.queue("nodes", self.reconcile)

    def start(self) -> None:
        for node in self.store.items(self.rt):
            self._note_cidr(node)
        for node in self.store.items(self.rt):
            self.queue.add(node["metadata"]["name"])
        self.store.listen("", "nodes", self._on_event)

    def _note_cidr(self, node: dict) -> None:
        cidr = (node.get("spec") or {}).get("podCIDR") or ""
        if cidr.startswith("10.244."):
            self._cidrs[node["metadata"]["name"]] = int(cidr.split(".")[2])

    def _on_event(self, event: Event) -> None:
        name = event.obj["metadata"]["name"]
        if event.type == "DELETED":
            self._cidrs.pop(name, None)
            self._joining.discard(name)
        else:
            self.queue.add(name)

    def _free_index(self) -> int:
        used = set(self._cidrs.values())
        return next(i for i in range(1, 1 << 16) if i not in used)

    def reconcile(self, name: str) -> None:
        node = self.store.try_get(self.rt, None, name)
        if node is None:
            return
        if not (node.get("spec") or {}).get("podCIDR") and name not in self._cidrs:
            self._cidrs[name] = self._free_index()
        index = self._cidrs.get(name)
        self.store.mutate(self.rt, None, name, lambda n: self._complete(n, index))
        node = self.store.get(self.rt, None, name)
        ready = next((c for c in node["status"]["conditions"] if c["type"] == "Ready"), {})
        if ready.get("reason") == JOINING_REASON and name not in self._joining:
            self._joining.add(name)
            self.kube.clock.later(timing.NODE_JOIN, self._join, name, node["metadata"]["uid"])

    def _complete(self, node: dict, index: int | None) -> None:
        spec, meta = node.setdefault("spec", {}), node["metadata"]
        if not spec.get("podCIDR") and index is not None:
            spec["podCIDR"] = f"10.244.{index % 256}.0/24" if index < 256 else f"10.{index >> 8}.{index % 256}.0/24"
            spec["podCIDRs"] = [spec["podCIDR"]]
        status = node.setdefault("status", {})
        if not status.get("conditions"):
            status["conditions"] = _conditions(False, now_iso())
        if not any(a.get("type") == "InternalIP" for a in status.get("addresses") or ()):
            octets = (index or 0) + 10
            status["addresses"] = [{"type": "InternalIP", "address": f"10.0.{octets >> 8}.{octets % 256}"},
                                   {"type": "Hostname", "address": meta["name"]}]
        resources = {"cpu": "4", "memory": "16331164Ki", "ephemeral-storage": "101430960Ki", "pods": str(MAX_PODS)}
        status.setdefault("capacity", resources)
        status.setdefault("allocatable", {**resources, "memory": "16228764Ki"})
        status.setdefault("daemonEndpoints", {"kubeletEndpoint": {"Port": 10250}})
        annotations = meta.get("annotations") or {}
        info = status.setdefault("nodeInfo", {})
        info.setdefault("kernelVersion", annotations.get(KERNEL_ANNOTATION, OS_DEFAULTS["ubuntu"][1]))
        info.setdefault("osImage", annotations.get(OS_IMAGE_ANNOTATION, OS_DEFAULTS["ubuntu"][0]))
        info.setdefault("containerRuntimeVersion", "containerd://1.7.24")
        info.setdefault("kubeletVersion", annotations.get(KUBELET_ANNOTATION, f"v{self.kube.cluster.kube_version}"))
        info.setdefault("kubeProxyVersion", info["kubeletVersion"])
        info.setdefault("operatingSystem", "linux")
        info.setdefault("architecture", "amd64")
        for key in ("machineID", "systemUUID", "bootID"):
            info.setdefault(key, meta.get("uid", "").replace("-", "") if key == "machineID" else meta.get("uid", ""))

    def _join(self, name: str, uid: str) -> None:
        node = self.store.try_get(self.rt, None, name)
        self._joining.discard(name)
        if node is None or node["metadata"]["uid"] != uid:
            return

        def ready(n: dict) -> None:
            n["status"]["conditions"] = [c for c in n["status"]["conditions"] if c["type"] != "Ready"] + \
                [c for c in _conditions(True, now_iso()) if c["type"] == "Ready"]
        self.store.mutate(self.rt, None, name, ready)
