"""The runbook's waits, by name: what to watch and when the wait is over.

A trigger is serialised with a wait's name and arguments, so every wait the DAGs use is
listed here: "Cilium is ready", "the kube-proxy ConfigMap says the new mode", and so on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import conditions
from .watch import Cache, Watched

KS = "/namespaces/kube-system"


@dataclass(frozen=True)
class Wait:
    watched: list[Watched]
    judge: Callable[[list[Cache]], conditions.Progress]


def _cilium_ready(args: dict) -> Wait:
    return Wait([Watched(f"/apis/apps/v1{KS}/daemonsets", "metadata.name=cilium"),
                 Watched(f"/apis/apps/v1{KS}/deployments", "metadata.name=cilium-operator")],
                lambda c: conditions.cilium_ready(c[0].one(), c[1].one()))


def _canal_ready(args: dict) -> Wait:
    return Wait([Watched(f"/apis/apps/v1{KS}/daemonsets", "metadata.name=canal"),
                 Watched(f"/apis/apps/v1{KS}/deployments", "metadata.name=calico-kube-controllers")],
                lambda c: conditions.canal_ready(c[0].one(), c[1].one()))


def _proxy_mode(args: dict) -> Wait:
    return Wait([Watched(f"/api/v1{KS}/configmaps", "metadata.name=kube-proxy")],
                lambda c: conditions.proxy_mode_is(c[0].one(), args["mode"]))


def _daemonset_rolled(args: dict) -> Wait:
    ns, name = args.get("namespace", "kube-system"), args["name"]
    return Wait([Watched(f"/apis/apps/v1/namespaces/{ns}/daemonsets", f"metadata.name={name}")],
                lambda c: conditions.daemonset_rolled(c[0].one(), f"{ns}/{name}"))


def _pods_managed(args: dict) -> Wait:
    return Wait([Watched("/api/v1/pods"), Watched("/apis/cilium.io/v2/ciliumendpoints", optional=True)],
                lambda c: conditions.pods_managed(c[0].values(), args["cni"], set(c[1].objects),
                                                  frozenset(args.get("exclude") or ())))


def _machines_rolled(args: dict) -> Wait:
    since = args.get("since_ns")

    def judge(c):
        mds = [md for md in c[0].values() if md["metadata"]["name"] in set(args["names"])]
        if len(mds) < len(args["names"]):
            return conditions.Progress(False, "some MachineDeployments are missing")
        return conditions.all_of(*(conditions.machine_deployment_rolled(md, since) for md in mds))
    return Wait([Watched(f"/apis/cluster.k8s.io/v1alpha1{KS}/machinedeployments")], judge)


def _proxy_mode_via_cilium(args: dict) -> Wait:
    """To or from ebpf: every Cilium pod redeployed, and kube-proxy gone (ebpf) or back in the new mode."""
    since, mode = args["since"], args["mode"]

    def judge(c):
        parts = [conditions.pods_created_after(c[1].values(), since, "cilium"),
                 conditions.cilium_ready(c[0].one(), c[2].one())]
        if mode == "ebpf":
            if c[3].one() is not None:
                parts.append(conditions.Progress(False, "the kube-proxy DaemonSet is still there"))
        else:
            parts += [conditions.proxy_mode_is(c[4].one(), mode),
                      conditions.daemonset_rolled(c[3].one(), "kube-system/kube-proxy")]
        return conditions.all_of(*parts)
    return Wait([Watched(f"/apis/apps/v1{KS}/daemonsets", "metadata.name=cilium"),
                 Watched(f"/api/v1{KS}/pods", label_selector="k8s-app=cilium"),
                 Watched(f"/apis/apps/v1{KS}/deployments", "metadata.name=cilium-operator"),
                 Watched(f"/apis/apps/v1{KS}/daemonsets", "metadata.name=kube-proxy"),
                 Watched(f"/api/v1{KS}/configmaps", "metadata.name=kube-proxy")], judge)


WAITS: dict[str, Callable[[dict], Wait]] = {
    "proxy_mode_via_cilium": _proxy_mode_via_cilium,
    "cilium_ready": _cilium_ready,
    "canal_ready": _canal_ready,
    "kube_proxy_mode": _proxy_mode,
    "daemonset_rolled": _daemonset_rolled,
    "pods_managed": _pods_managed,
    "machine_deployments_rolled": _machines_rolled,
}


def build(name: str, args: dict) -> Wait:
    if name not in WAITS:
        raise ValueError(f"unknown wait {name!r}; known: {', '.join(sorted(WAITS))}")
    return WAITS[name](args)
