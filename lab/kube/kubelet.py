"""The kubelets of all nodes (one object per cluster): pod start, CNI wiring, termination, pod GC.

A bound pod is accepted (Pending, ContainerCreating) and runs after `timing.POD_START`, once its
node is Ready and, unless it uses the host network, a CNI agent on the node can wire it. Graceful
deletes finish after the pod's grace period; pods of vanished nodes are deleted (the pod GC).
Job-style pods (restartPolicy Never/OnFailure) succeed after their run time.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from lab.apiserver.store import Event, now_iso

from . import podstatus, timing
from .network import agent_cni, needs_network
from .nodes import internal_ip, node_ready

RUN_SECONDS_ANNOTATION = "lab.kubermatic.io/run-seconds"
CEP_CRD = "ciliumendpoints.cilium.io"


def _startable(node: dict | None) -> bool:
    return node_ready(node) and bool(internal_ip(node)) and bool((node.get("spec") or {}).get("podCIDR"))


class Kubelet:
    def __init__(self, kube):
        self.kube = kube
        self.store = kube.store
        self.clock = kube.clock
        self.network = kube.network
        self.pods_rt = kube.rt("", "pods")
        self.nodes_rt = kube.rt("", "nodes")
        self.starting: dict[str, asyncio.TimerHandle] = {}      # pod uid -> container start
        self.running: dict[str, asyncio.TimerHandle] = {}       # pod uid -> next crash or the job's end
        self.terminating: dict[str, asyncio.TimerHandle] = {}   # pod uid -> end of its grace period
        self.crash_fault: set[str] = set()                      # created while crashloop_after_restart was set
        self.never_ready: set[str] = set()                      # CNI agents created while cni_never_ready was set
        self.waiting: dict[str, set] = defaultdict(set)         # node -> pods waiting for a CNI
        self._ips: dict[str, set[int]] = defaultdict(set)       # node -> last octets in use
        self._ip_of: dict[str, tuple[str, int]] = {}            # pod uid -> (node, octet)
        self.queue = kube.queue("kubelet", self.reconcile)
        self.network.on_ready = self._network_ready
        self.network.on_gone = self._network_gone

    def start(self) -> None:
        for pod in self.store.items(self.pods_rt):
            status, node = pod.get("status") or {}, (pod.get("spec") or {}).get("nodeName")
            if node and status.get("podIP") and not pod["spec"].get("hostNetwork"):
                octet = int(status["podIP"].rsplit(".", 1)[1])
                self._ips[node].add(octet)
                self._ip_of[pod["metadata"]["uid"]] = (node, octet)
            self.queue.add((pod["metadata"]["namespace"], pod["metadata"]["name"]))
        self.store.listen("", "pods", self._on_pod)
        self.store.listen("", "nodes", self._on_node)
        self.store.listen("apiextensions.k8s.io", "customresourcedefinitions", self._on_crd)

    # ---- events ----------------------------------------------------------------------------------

    def _on_pod(self, event: Event) -> None:
        meta = event.obj["metadata"]
        key, uid = (meta["namespace"], meta["name"]), meta["uid"]
        if event.type == "DELETED":
            self._forget(uid, key, (event.obj.get("spec") or {}).get("nodeName"))
            return
        if event.type == "ADDED":
            faults = self.kube.cluster.faults
            if faults.crashloop_after_restart and needs_network(event.obj):
                self.crash_fault.add(uid)
            if faults.cni_never_ready and agent_cni(event.obj):
                self.never_ready.add(uid)
        self.queue.add(key)

    def _on_node(self, event: Event) -> None:
        name = event.obj["metadata"]["name"]
        now_ok = event.type != "DELETED" and _startable(event.obj)
        if event.type == "DELETED" or (now_ok and not _startable(event.old)):
            for key in self.kube.pods.keys_on_node(name):
                self.queue.add(key)

    def _on_crd(self, event: Event) -> None:
        if event.type == "ADDED" and event.obj["metadata"]["name"] == CEP_CRD:
            asyncio.get_running_loop().call_soon(self._retry_waiting, None)

    def _network_ready(self, node: str) -> None:
        self._retry_waiting(node)

    def _retry_waiting(self, node: str | None) -> None:
        for name in ([node] if node else list(self.waiting)):
            for key in self.waiting.pop(name, ()):
                self.queue.add(key)

    def _forget(self, uid: str, key, node: str | None) -> None:
        for timers in (self.starting, self.running, self.terminating):
            handle = timers.pop(uid, None)
            if handle:
                handle.cancel()
        self.crash_fault.discard(uid)
        self.never_ready.discard(uid)
        if node:
            self.waiting.get(node, set()).discard(key)
        held = self._ip_of.pop(uid, None)
        if held:
            self._ips[held[0]].discard(held[1])

    # ---- the pod's life ------------------------------------------------------------------------------

    def reconcile(self, key) -> None:
        ns, name = key
        pod = self.store.try_get(self.pods_rt, ns, name)
        if pod is None:
            return
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        uid, node_name = meta["uid"], spec.get("nodeName")
        if not node_name:
            return
        node = self.store.try_get(self.nodes_rt, None, node_name)
        if meta.get("deletionTimestamp"):
            self._terminate(pod, node is None)
            return
        if node is None:                       # the pod GC: a pod bound to a node that no longer exists
            self.store.delete(self.pods_rt, ns, name, grace_seconds=0)
            return
        if status.get("phase") in ("Running", "Succeeded", "Failed") or uid in self.starting:
            return
        if not _startable(node):
            return
        if not self._is_creating(status):
            self.store.write_status(self.pods_rt, ns, name, podstatus.creating(pod, internal_ip(node), now_iso()))
        if needs_network(pod) and self._cni(node_name) is None:
            self.waiting[node_name].add(key)
            return
        self.starting[uid] = self.clock.later(timing.POD_START, self._start, key, uid)

    @staticmethod
    def _is_creating(status: dict) -> bool:
        return status.get("phase") == "Pending" and bool(status.get("containerStatuses"))

    def _cni(self, node: str) -> str | None:
        cni = self.network.cni_for(node)
        return cni if cni and self.network.can_wire(cni) else None

    def _start(self, key, uid: str) -> None:
        self.starting.pop(uid, None)
        pod = self.store.try_get(self.pods_rt, *key)
        if pod is None or pod["metadata"]["uid"] != uid or pod["metadata"].get("deletionTimestamp"):
            return
        node_name = pod["spec"]["nodeName"]
        node = self.store.try_get(self.nodes_rt, None, node_name)
        if not _startable(node):
            self.queue.add(key)
            return
        cni = None
        if needs_network(pod):
            cni = self._cni(node_name)
            if cni is None:
                self.waiting[node_name].add(key)
                return
        host_ip, now = internal_ip(node), now_iso()
        pod_ip = self._allocate(node, uid) if cni else host_ip
        annotations = self.network.wire(pod, cni, pod_ip, host_ip) if cni else {}
        started = (pod.get("status") or {}).get("startTime") or now
        if uid in self.crash_fault:
            status = podstatus.crashlooping(pod, host_ip, pod_ip, now, started, 0, timing.CRASH_BACKOFF)
            self.running[uid] = self.clock.later(timing.CRASH_BACKOFF, self._crash, key, uid, 1)
        else:
            status = podstatus.running(pod, host_ip, pod_ip, now, started, ready=uid not in self.never_ready)
            if pod["spec"].get("restartPolicy") in ("Never", "OnFailure"):
                run = float((pod["metadata"].get("annotations") or {}).get(RUN_SECONDS_ANNOTATION, timing.JOB_RUN))
                self.running[uid] = self.clock.later(run, self._complete, key, uid)
        if annotations:
            def wired(p: dict) -> None:
                p["metadata"]["annotations"] = {**(p["metadata"].get("annotations") or {}), **annotations}
                p["status"] = status
            self.store.mutate(self.pods_rt, key[0], key[1], wired)
        else:
            self.store.write_status(self.pods_rt, key[0], key[1], status)

    def _allocate(self, node: dict, uid: str) -> str:
        name = node["metadata"]["name"]
        used = self._ips[name]
        octet = next((i for i in range(2, 255) if i not in used), 254)
        used.add(octet)
        self._ip_of[uid] = (name, octet)
        return node["spec"]["podCIDR"].rsplit(".", 1)[0] + f".{octet}"

    def _live(self, key, uid: str) -> dict | None:
        pod = self.store.try_get(self.pods_rt, *key)
        if pod is None or pod["metadata"]["uid"] != uid or pod["metadata"].get("deletionTimestamp"):
            return None
        return pod

    def _crash(self, key, uid: str, restarts: int) -> None:
        self.running.pop(uid, None)
        pod = self._live(key, uid)
        if pod is None:
            return
        status, now = pod["status"], now_iso()
        backoff = min(timing.CRASH_BACKOFF * 2 ** restarts, timing.CRASH_BACKOFF_MAX)
        new = podstatus.crashlooping(pod, status["hostIP"], status.get("podIP", ""), now, status["startTime"],
                                     restarts, backoff)
        if uid in self.network.lost:
            new = podstatus.network_lost(new, self.network.wired.get(uid, ""), pod["spec"]["nodeName"], now)
        self.store.write_status(self.pods_rt, key[0], key[1], new)
        self.running[uid] = self.clock.later(backoff, self._crash, key, uid, restarts + 1)

    def _complete(self, key, uid: str) -> None:
        self.running.pop(uid, None)
        pod = self._live(key, uid)
        if pod is not None and pod["status"].get("phase") == "Running":
            self.store.write_status(self.pods_rt, key[0], key[1], podstatus.succeeded(pod, pod["status"], now_iso()))

    def _terminate(self, pod: dict, node_gone: bool) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        for timers in (self.starting, self.running):
            handle = timers.pop(uid, None)
            if handle:
                handle.cancel()
        if node_gone:
            self._finish(meta["namespace"], meta["name"], uid)
        elif uid not in self.terminating:
            grace = meta.get("deletionGracePeriodSeconds") or 0
            self.terminating[uid] = self.clock.later(grace, self._finish, meta["namespace"], meta["name"], uid)

    def _finish(self, ns: str, name: str, uid: str) -> None:
        self.terminating.pop(uid, None)
        self.store.finish_graceful_delete(self.pods_rt, ns, name, uid)

    # ---- network loss -----------------------------------------------------------------------------------

    def _network_gone(self, node: str, cni: str) -> None:
        """Pods whose interface `cni` made on `node` stay broken until they are recreated."""
        now = now_iso()
        for pod in self.kube.pods.on_node(node):
            meta, status = pod["metadata"], pod.get("status") or {}
            uid = meta["uid"]
            if (self.network.wired.get(uid) != cni or uid in self.network.lost or meta.get("deletionTimestamp")
                    or status.get("phase") != "Running"):
                continue
            self.network.lost.add(uid)
            self.store.write_status(self.pods_rt, meta["namespace"], meta["name"],
                                    podstatus.network_lost(status, cni, node, now))
