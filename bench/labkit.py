"""Starting the lab for a benchmark: KKP with user clusters of a given size, and files clients need.

The benchmark workload is sized exactly: `pods` non-host-network pods in total (KKP's system pods
counted), spread over Deployments that each carry a PodDisruptionBudget, so the restart step has
budgets to honour and the runbook's pipeline has budgets to break.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import yaml

from lab import scenario
from lab.kkp import ClusterSpec, KkpOptions
from lab.kkp import objects as o
from lab.kube import workloads as w
from lab.runtime import Lab

__all__ = ["ClusterSpec", "add_cluster", "kubeconfig_file", "network_pods", "settle", "start", "switch_cluster"]

DEPLOYMENTS = 40             # user Deployments the pods are spread over, in NAMESPACES namespaces
NAMESPACES = 10
PDB_MAX_UNAVAILABLE = "25%"  # Kubernetes' own default rolling-update budget


def start(time_factor: float, **kkp_options) -> tuple[Lab, object]:
    """A started lab with KKP installed; stop it with `lab.stop()`."""
    lab = Lab(time_factor=time_factor).start()
    return lab, lab.install_kkp(KkpOptions(**kkp_options))


def network_pods(store) -> int:
    """Pods a CNI wires (not host-network), as the runbook's `grep '<none>'` selects them."""
    return sum(1 for p in store.items(store.rtype("", "pods")) if not p["spec"].get("hostNetwork"))


def user_workloads(pods: int) -> list[dict]:
    """`pods` pods over DEPLOYMENTS Deployments, each with a PDB of PDB_MAX_UNAVAILABLE."""
    out = [w.namespace(f"team-{i:02d}") for i in range(NAMESPACES)]
    for i in range(DEPLOYMENTS):
        name, ns = f"svc-{i:02d}", f"team-{i % NAMESPACES:02d}"
        replicas = pods // DEPLOYMENTS + (1 if i < pods % DEPLOYMENTS else 0)
        out += [w.deployment(name, ns, replicas, containers=["app"]),
                w.pdb(name, ns, match_labels={"app": name}, max_unavailable=PDB_MAX_UNAVAILABLE)]
    return out


def add_cluster(kkp, name: str, *, pods: int, nodes: int, cni: str = "canal", proxy_mode: str = "iptables",
                settle_timeout: float = 300.0):
    """A user cluster with exactly `pods` network pods (system pods included), settled."""
    version = "v3.31" if cni == "canal" else "1.19.4"
    user = kkp.add_cluster(ClusterSpec(name, cni, version, proxy_mode, nodes=nodes))
    settle(kkp, settle_timeout)
    system = kkp.lab.call(network_pods, user.store)
    if pods > system:
        kkp.lab.call(o.apply_all, user.store, user_workloads(pods - system))
        settle(kkp, settle_timeout)
    return user


def settle(kkp, timeout: float) -> None:
    """Every user cluster at rest (nodes joined, workloads ready)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            scenario.wait_settled(kkp, timeout=max(1.0, deadline - time.monotonic()))
            return
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


def kubeconfig_file(cluster, directory: str | None = None) -> str:
    """A kubeconfig file for a lab cluster (kubectl and the clients read it)."""
    path = Path(directory or tempfile.mkdtemp(prefix="kkp-bench-")) / f"{cluster.name}.kubeconfig"
    path.write_text(yaml.safe_dump(cluster.kubeconfig()))
    return str(path)


def switch_cluster(lab, user, *, cni: tuple[str, str] | None = None, proxy_mode: str | None = None) -> None:
    """Change the Cluster on the seed as the DAG's step 2 does (label included); KKP rolls it out later."""
    def change():
        store = lab.seed.store
        rt = store.rtype("kubermatic.k8c.io", "clusters")

        def edit(obj):
            obj["metadata"].setdefault("labels", {})["unsafe-cni-migration"] = "true"
            if cni:
                obj["spec"]["cniPlugin"] = {"type": cni[0], "version": cni[1]}
            if proxy_mode:
                obj["spec"]["clusterNetwork"]["proxyMode"] = proxy_mode
        store.mutate(rt, None, user.id, edit)
    lab.call(change)
