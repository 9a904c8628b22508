"""The lab's scenarios: user clusters as the runbook meets them, with system and user workloads.

`default`: three clusters with stable human-readable names (IDs are random, as in KKP):
- `payments-canal-ipvs`: Canal v3.30, ipvs, no Konnectivity (OpenVPN): the runbook's starting
  point. KKP 2.31 refuses to switch Konnectivity off, but clusters made by older KKP still run so.
- `webshop-canal-iptables`: Canal v3.31, iptables, Konnectivity.
- `analytics-cilium-ebpf`: Cilium 1.19.4 (an ApplicationInstallation), ebpf, Konnectivity.
Options scale it: `clusters` (a fleet cycles through the three), `nodes` and `pods` per cluster.
"""

from __future__ import annotations

import dataclasses

from lab.kkp import objects as o
from lab.kube import workloads as w
from lab.kkp.usercluster import ClusterSpec

FLAVOURS = (
    ClusterSpec("payments-canal-ipvs", "canal", "v3.30", "ipvs", konnectivity=False),
    ClusterSpec("webshop-canal-iptables", "canal", "v3.31", "iptables", konnectivity=True),
    ClusterSpec("analytics-cilium-ebpf", "cilium", "1.19.4", "ebpf", konnectivity=True),
)
DEFAULT_APP_PODS = 12     # frontend 3 + api 3 + postgres 3 + edge-proxy 1 + report 1 + debug-shell 1


def plans(clusters: int = 3, nodes: int = 3) -> list[ClusterSpec]:
    """Cluster specs: the three flavours, then `<flavour>-NN` for a larger fleet."""
    out = []
    for i in range(clusters):
        base = FLAVOURS[i % len(FLAVOURS)]
        name = base.name if i < len(FLAVOURS) else f"{base.name}-{i // len(FLAVOURS):02d}"
        out.append(dataclasses.replace(base, name=name, nodes=nodes))
    return out


def workloads(pods: int = DEFAULT_APP_PODS) -> list[dict]:
    """User workloads: Deployments with PDBs, a StatefulSet, a DaemonSet, a Job, a host-network
    Deployment and a bare pod with no controller. `pods` sizes the two stateless Deployments
    (the DaemonSet adds one pod per node on top)."""
    fixed = 3 + 1 + 1 + 1                                    # postgres, report, edge-proxy, debug-shell
    stateless = max(pods - fixed, 2)
    frontend, api = (stateless + 1) // 2, stateless // 2
    return [w.namespace(n) for n in ("shop", "data", "ops")] + [
        w.deployment("frontend", "shop", frontend, containers=["nginx"]),
        w.pdb("frontend", "shop", match_labels={"app": "frontend"}, min_available=max(frontend - 1, 1)),
        w.deployment("api", "shop", api, containers=["api", "envoy"]),
        w.pdb("api", "shop", match_labels={"app": "api"}, max_unavailable=1),
        w.statefulset("postgres", "data", 3),
        w.pdb("postgres", "data", match_labels={"app": "postgres"}, max_unavailable=1),
        w.daemonset("log-agent", "ops"),
        w.deployment("edge-proxy", "ops", host_network=True),
        w.job("report", "ops", run_seconds=60),
        w.pod("debug-shell", "default"),
    ]


def build(kkp, clusters: int = 3, nodes: int = 3, pods: int = DEFAULT_APP_PODS) -> list:
    """Create the scenario's user clusters with their workloads; returns the `UserCluster`s."""
    users = []
    manifests = workloads(pods)
    for spec in plans(clusters, nodes):
        user = kkp.add_cluster(spec)
        kkp.lab.call(o.apply_all, user.store, manifests)
        users.append(user)
    return users


def settled(kkp) -> bool:
    """Every user cluster at rest: nodes Ready, Deployments, StatefulSets and DaemonSets fully ready
    (runs on the lab's loop)."""
    for user in kkp.clusters.values():
        store = user.store
        nodes = store.items(store.rtype("", "nodes"))
        if len(nodes) < user.spec.nodes or not all(
                any(c["type"] == "Ready" and c["status"] == "True" for c in (n.get("status") or {}).get("conditions") or ())
                for n in nodes):
            return False
        for plural in ("deployments", "statefulsets"):
            for obj in store.items(store.rtype("apps", plural)):
                if (obj.get("status") or {}).get("readyReplicas", 0) < obj["spec"].get("replicas", 1):
                    return False
        for ds in store.items(store.rtype("apps", "daemonsets")):
            status = ds.get("status") or {}
            if not status.get("desiredNumberScheduled") or status.get("numberReady") != status["desiredNumberScheduled"]:
                return False
    return True


def wait_settled(kkp, timeout: float = 60.0) -> None:
    """Block (from a test or CLI thread) until `settled`; TimeoutError names what is not."""
    import time

    deadline = time.monotonic() + timeout
    while not kkp.lab.call(settled, kkp):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the lab's user clusters did not settle within {timeout:.0f}s")
        time.sleep(0.02)
