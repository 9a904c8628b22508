"""Preflight checks: read-only, each returns findings instead of raising halfway.

The preflight step runs them all, reports every finding, and refuses with the first error
before anything in the cluster changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .kkp import ClusterInfo

CILIUM_MIN_KERNEL = (5, 4)
CILIUM_MIN_KERNEL_RHEL = (4, 18)        # RHEL 8.6 backports what Cilium needs
IPVS_WARNING = ("kube-proxy runs in ipvs mode: with Cilium, pod-to-NodePort traffic to pods on other nodes "
                "breaks (KKP known issue; cilium/cilium#18610). Change the proxy mode to iptables or ebpf "
                "(proxy_mode_after, runbook step 5).")


@dataclass(frozen=True)
class Finding:
    level: str        # "error" or "warning"
    message: str

    def as_dict(self) -> dict:
        return {"level": self.level, "message": self.message}


def error(msg: str) -> Finding:
    return Finding("error", msg)


def warning(msg: str) -> Finding:
    return Finding("warning", msg)


def health(info: ClusterInfo) -> list[Finding]:
    bad = info.unhealthy()
    if bad:
        return [error(f"Cluster {info.id} is not healthy ({', '.join(f'{k}: {info.health[k]}' for k in bad)}); "
                      "fix its control plane before migrating.")]
    return []


def _kernel(version: str) -> tuple[int, int] | None:
    m = re.match(r"^(\d+)\.(\d+)", version or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def cilium_kernels(cluster_id: str, nodes: list[dict]) -> list[Finding]:
    """Cilium's system requirement readable from the API: the kernel of every node."""
    too_old = []
    for node in nodes:
        info = (node.get("status") or {}).get("nodeInfo") or {}
        kernel = _kernel(info.get("kernelVersion", ""))
        rhel = "Red Hat Enterprise Linux" in info.get("osImage", "") and re.search(r" 8\.(\d+)", info["osImage"])
        minimum = CILIUM_MIN_KERNEL_RHEL if rhel and int(rhel.group(1)) >= 6 else CILIUM_MIN_KERNEL
        if kernel is None or kernel < minimum:
            too_old.append(f"{node['metadata']['name']} ({info.get('kernelVersion') or 'unknown kernel'})")
    if too_old:
        return [error(f"Cluster {cluster_id}: Cilium needs Linux >= 5.4 (4.18 on RHEL 8.6+), but node(s) "
                      f"{', '.join(sorted(too_old))} run older kernels; upgrade those nodes' images first.")]
    if not nodes:
        return [error(f"Cluster {cluster_id} has no nodes; a CNI migration needs running nodes.")]
    return []


def proxy_mode_for_cilium(info: ClusterInfo, proxy_mode_after: str) -> list[Finding]:
    target = info.proxy_mode if proxy_mode_after in ("", "keep") else proxy_mode_after
    if target == "ebpf" and not info.konnectivity:
        return [error(f"Cluster {info.id}: proxy mode ebpf needs Konnectivity, which is disabled on this cluster; "
                      "choose iptables or keep.")]
    if target == "ipvs":
        return [warning(IPVS_WARNING)]
    return []
