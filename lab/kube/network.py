"""Pod networking as the runbook describes it: which CNI agent wires a pod, and what its removal breaks.

A CNI agent is a pod in kube-system labelled `k8s-app=cilium` or `k8s-app=canal`; it serves its
node once Ready. When both serve a node, Cilium wires new pods (its 05-cilium.conflist sorts before
Canal's 10-canal.conflist). Pods keep the interface of the CNI that wired them: Canal-wired pods
stay on Canal when Cilium arrives, and lose networking only when that CNI's agent leaves their
node for good (no agent pod on the node and no agent DaemonSet that will bring one back).
A restarted agent re-adopts the pods it wired (Cilium re-creates their CiliumEndpoints).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections import defaultdict

from lab.apiserver.disruption import pod_ready
from lab.apiserver.store import Event

CILIUM, CANAL = "cilium", "canal"
PRECEDENCE = (CILIUM, CANAL)
AGENT_NAMESPACE = "kube-system"
AGENT_LABEL = "k8s-app"
CEP_KEY = ("cilium.io", "ciliumendpoints")
CALICO_IP = "cni.projectcalico.org/podIP"
CALICO_IPS = "cni.projectcalico.org/podIPs"
CALICO_CONTAINER = "cni.projectcalico.org/containerID"


def agent_cni(pod: dict | None) -> str | None:
    """The CNI whose agent `pod` is, if it is one."""
    if pod is None or pod["metadata"].get("namespace") != AGENT_NAMESPACE:
        return None
    value = (pod["metadata"].get("labels") or {}).get(AGENT_LABEL)
    return value if value in PRECEDENCE else None


def _daemonset_cni(ds: dict | None) -> str | None:
    if ds is None or ds["metadata"].get("namespace") != AGENT_NAMESPACE:
        return None
    labels = (((ds.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    value = labels.get(AGENT_LABEL)
    return value if value in PRECEDENCE else None


def needs_network(pod: dict) -> bool:
    """Pods other than host-network pods and the CNI agents themselves need a CNI to start."""
    return not (pod.get("spec") or {}).get("hostNetwork") and agent_cni(pod) is None


class Network:
    def __init__(self, kube):
        self.kube = kube
        self.store = kube.store
        self.present = {c: defaultdict(set) for c in PRECEDENCE}   # node -> agent pods not terminating
        self.ready = {c: defaultdict(set) for c in PRECEDENCE}     # node -> Ready agent pods
        self.daemonsets = {c: set() for c in PRECEDENCE}           # agent DaemonSets not being deleted
        self.wired: dict[str, str] = {}                            # pod uid -> CNI that made its interface
        self.lost: set[str] = set()                                # pod uids whose CNI left their node
        self._identities: dict[tuple, int] = {}
        self._endpoint_ids = itertools.count(100)
        self.on_ready = lambda node: None                          # set by the kubelet
        self.on_gone = lambda node, cni: None

    def start(self) -> None:
        pods_rt = self.kube.rt("", "pods")
        for pod in self.store.items(pods_rt):
            self._track_agent(pod, None)
            if (pod["metadata"].get("annotations") or {}).get(CALICO_IP):
                self.wired[pod["metadata"]["uid"]] = CANAL
        cep_rt = self.store.types.get(CEP_KEY)
        for cep in self.store.items(cep_rt) if cep_rt else ():
            for ref in cep["metadata"].get("ownerReferences") or ():
                if ref.get("kind") == "Pod":
                    self.wired[ref["uid"]] = CILIUM
        for ds in self.store.items(self.kube.rt("apps", "daemonsets"), AGENT_NAMESPACE):
            self._track_daemonset(ds, None)
        self.store.listen("", "pods", self._on_pod)
        self.store.listen("apps", "daemonsets", self._on_daemonset)

    # ---- which CNI serves a node ----------------------------------------------------------------

    def cni_for(self, node: str) -> str | None:
        """The CNI whose plugin the kubelet on `node` calls for a new pod, if any agent is Ready."""
        return next((c for c in PRECEDENCE if self.ready[c].get(node)), None)

    def can_wire(self, cni: str) -> bool:
        """Cilium cannot finish an endpoint without its CiliumEndpoint CRD."""
        return cni != CILIUM or CEP_KEY in self.store.types

    def _gone(self, node: str, cni: str) -> bool:
        return not self.present[cni].get(node) and not self.daemonsets[cni]

    # ---- agent tracking ----------------------------------------------------------------------------

    def _on_pod(self, event: Event) -> None:
        if event.type == "DELETED":
            uid = event.obj["metadata"]["uid"]
            self.wired.pop(uid, None)
            self.lost.discard(uid)
        self._track_agent(event.obj if event.type != "DELETED" else None, event.old if event.old else None,
                          key_from=event.obj)

    def _track_agent(self, pod: dict | None, old: dict | None, key_from: dict | None = None) -> None:
        cni = agent_cni(pod) or agent_cni(old)
        if cni is None:
            return
        meta = (key_from or pod)["metadata"]
        key = (meta["namespace"], meta["name"])
        nodes = {(p.get("spec") or {}).get("nodeName") for p in (pod, old) if p is not None} - {None, ""}
        was_ready = {n: bool(self.ready[cni].get(n)) for n in nodes}
        was_present = {n: bool(self.present[cni].get(n)) for n in nodes}
        for n in nodes:
            self.present[cni][n].discard(key)
            self.ready[cni][n].discard(key)
        node = (pod.get("spec") or {}).get("nodeName") if pod is not None else None
        if node and agent_cni(pod) == cni and not pod["metadata"].get("deletionTimestamp"):
            self.present[cni][node].add(key)
            if pod_ready(pod):
                self.ready[cni][node].add(key)
        loop = asyncio.get_running_loop()
        for n in nodes:
            if not was_ready[n] and self.ready[cni][n]:
                loop.call_soon(self._agent_ready, n, cni)
            if was_present[n] and self._gone(n, cni):
                loop.call_soon(self._check_gone, n, cni)

    def _on_daemonset(self, event: Event) -> None:
        self._track_daemonset(event.obj if event.type != "DELETED" else None, event.old, key_from=event.obj)

    def _track_daemonset(self, ds: dict | None, old: dict | None, key_from: dict | None = None) -> None:
        cni = _daemonset_cni(ds) or _daemonset_cni(old)
        if cni is None:
            return
        meta = (key_from or ds)["metadata"]
        key = (meta["namespace"], meta["name"])
        had = bool(self.daemonsets[cni])
        self.daemonsets[cni].discard(key)
        if ds is not None and _daemonset_cni(ds) == cni and not ds["metadata"].get("deletionTimestamp"):
            self.daemonsets[cni].add(key)
        if had and not self.daemonsets[cni]:
            loop = asyncio.get_running_loop()
            for node in self.store.items(self.kube.rt("", "nodes")):
                loop.call_soon(self._check_gone, node["metadata"]["name"], cni)

    def _check_gone(self, node: str, cni: str) -> None:
        if self._gone(node, cni):
            self.on_gone(node, cni)

    def _agent_ready(self, node: str, cni: str) -> None:
        if cni == CILIUM:
            self._readopt(node)
        self.on_ready(node)

    # ---- wiring --------------------------------------------------------------------------------------

    def wire(self, pod: dict, cni: str, pod_ip: str, host_ip: str) -> dict:
        """Give `pod` its interface; returns the annotations the CNI plugin writes on the pod."""
        self.wired[pod["metadata"]["uid"]] = cni
        if cni == CANAL:
            return {CALICO_IP: f"{pod_ip}/32", CALICO_IPS: f"{pod_ip}/32", CALICO_CONTAINER: secrets.token_hex(32)}
        self._ensure_endpoint(pod, pod_ip, host_ip)
        return {}

    def _readopt(self, node: str) -> None:
        """A (re)started Cilium agent restores the endpoints of the pods it wired on its node."""
        for pod in self.kube.pods.on_node(node):
            uid = pod["metadata"]["uid"]
            status = pod.get("status") or {}
            if self.wired.get(uid) == CILIUM and uid not in self.lost and status.get("podIP"):
                self._ensure_endpoint(pod, status["podIP"], status.get("hostIP", ""))

    def _ensure_endpoint(self, pod: dict, pod_ip: str, host_ip: str) -> None:
        rt = self.store.types.get(CEP_KEY)
        if rt is None:
            return
        meta = pod["metadata"]
        ns, name = meta["namespace"], meta["name"]
        current = self.store.try_get(rt, ns, name)
        if current is not None:
            if any(r.get("uid") == meta["uid"] for r in current["metadata"].get("ownerReferences") or ()):
                return
            self.store.delete(rt, ns, name)
        labels = sorted(f"k8s:{k}={v}" for k, v in (meta.get("labels") or {}).items())
        labels.append(f"k8s:io.kubernetes.pod.namespace={ns}")
        identity = self._identities.setdefault(tuple(labels), 10000 + len(self._identities))
        self.store.create(rt, {
            "apiVersion": rt.api_version, "kind": rt.kind,
            "metadata": {"name": name, "namespace": ns,
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": name, "uid": meta["uid"],
                                              "blockOwnerDeletion": True}]},
            "status": {"id": next(self._endpoint_ids), "state": "ready",
                       "identity": {"id": identity, "labels": labels},
                       "networking": {"addressing": [{"ipv4": pod_ip}], "node": host_ip},
                       "external-identifiers": {"k8s-namespace": ns, "k8s-pod-name": name, "pod-name": f"{ns}/{name}",
                                                "container-id": secrets.token_hex(32)},
                       "encryption": {}, "policy": {"ingress": {"state": "<status disabled>"},
                                                    "egress": {"state": "<status disabled>"}}},
        }, ns)
