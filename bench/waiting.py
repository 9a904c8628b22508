"""Shared by the wait benchmarks: the stand-in triggerer process (bench.waiter) driven from the
lab's side, and lab-side probes that note the moment a wait's condition became true.

A probe listens to the user cluster's store and judges with the product's own condition
functions, so "true" means the same thing on both sides; the listener runs at the store write,
before any watch event leaves the lab.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time

from kkp_migration import conditions

KS = "kube-system"


class Waiter:
    """The bench.waiter subprocess; `expect(id, event)` blocks for one of its reports."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.waiter"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self.events: dict[tuple, dict] = {}
        self.usages: queue.Queue = queue.Queue()
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            msg = json.loads(line)
            if msg["event"] == "usage":
                self.usages.put(msg)
                continue
            with self._cond:
                self.events[(msg["id"], msg["event"])] = msg
                self._cond.notify_all()

    def send(self, **cmd) -> None:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def wait(self, wid: str, kubeconfig: dict, name: str, args: dict | None = None, timeout: float = 120) -> None:
        self.send(op="wait", id=wid, kubeconfig=kubeconfig, wait=name, args=args or {}, timeout=timeout)

    def expect(self, wid: str, event: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while (wid, event) not in self.events:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the waiter did not report {event} for {wid} within {timeout:.0f}s")
                self._cond.wait(left)
            return self.events[(wid, event)]

    def usage(self) -> dict:
        self.send(op="usage")
        return self.usages.get(timeout=60)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.send(op="exit")
            self.proc.stdin.close()
            self.proc.wait(30)


class Probe:
    """Notes (time.time()) when `judge(store)` first holds, judging at every write to `watch`."""

    def __init__(self, lab, store, watch: list[tuple[str, str]], judge):
        self.at: float | None = None
        self._store, self._judge = store, judge

        def install():
            for group, plural in watch:
                store.listen(group, plural, self._on_event)
        lab.call(install)

    def _on_event(self, event) -> None:
        if self.at is None and self._judge(self._store):
            self.at = time.time()

    def wait(self, timeout: float = 120) -> float:
        deadline = time.monotonic() + timeout
        while self.at is None:
            if time.monotonic() > deadline:
                raise TimeoutError("the lab never made the condition true")
            time.sleep(0.01)
        return self.at


def _get(store, group: str, plural: str, name: str, ns: str | None = KS):
    return store.try_get(store.rtype(group, plural), ns, name)


def cilium_ready(lab, store) -> Probe:
    return Probe(lab, store, [("apps", "daemonsets"), ("apps", "deployments")], lambda s: conditions.cilium_ready(
        _get(s, "apps", "daemonsets", "cilium"), _get(s, "apps", "deployments", "cilium-operator")).done)


def proxy_mode(lab, store, mode: str) -> Probe:
    return Probe(lab, store, [("", "configmaps")],
                 lambda s: conditions.proxy_mode_is(_get(s, "", "configmaps", "kube-proxy"), mode).done)


def pods_managed(lab, store) -> Probe:
    def judge(s):
        cep_rt = s.types.get(("cilium.io", "ciliumendpoints"))
        ceps = {(e["metadata"]["namespace"], e["metadata"]["name"]) for e in s.items(cep_rt)} if cep_rt else set()
        return conditions.pods_managed(s.items(s.rtype("", "pods")), "cilium", ceps).done
    return Probe(lab, store, [("", "pods"), ("cilium.io", "ciliumendpoints")], judge)


def cilium_redeployed(lab, store, since: str) -> Probe:
    """To ebpf: every Cilium pod newer than the change, Cilium ready, kube-proxy gone."""
    def judge(s):
        pods = [p for p in s.items(s.rtype("", "pods"), KS) if (p["metadata"].get("labels") or {}).get("k8s-app")
                == "cilium"]
        return conditions.all_of(
            conditions.pods_created_after(pods, since, "cilium"),
            conditions.cilium_ready(_get(s, "apps", "daemonsets", "cilium"),
                                    _get(s, "apps", "deployments", "cilium-operator")),
            conditions.Progress(_get(s, "apps", "daemonsets", "kube-proxy") is None, "kube-proxy still there")).done
    return Probe(lab, store, [("", "pods"), ("apps", "daemonsets"), ("apps", "deployments")], judge)
