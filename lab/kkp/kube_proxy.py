"""KKP's `kube-proxy` addon: DaemonSet and ConfigMap `kube-proxy` in kube-system (absent with ebpf).

From KKP 2.30 the pod template carries a checksum of the config, so a mode change rolls the
pods by itself; `checksum=False` models older KKP, where the runbook restarts the DaemonSet.
"""

from __future__ import annotations

import yaml

from . import objects as o

NS = "kube-system"
LABELS = {"k8s-app": "kube-proxy"}
CHECKSUM_ANNOTATION = "kubermatic.k8c.io/config-checksum"
ADDON_LABELS = {"kubermatic-addon": "kube-proxy"}


def config(mode: str, strict_arp: bool, pod_cidr: str) -> str:
    """config.conf: a KubeProxyConfiguration with a top-level `mode:` line, as the runbook greps it."""
    return yaml.safe_dump({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
        "bindAddress": "0.0.0.0", "clusterCIDR": pod_cidr, "clientConnection": {"kubeconfig": "/var/lib/kube-proxy/kubeconfig.conf"},
        "mode": mode,
        "ipvs": {"strictARP": bool(strict_arp), "scheduler": "", "syncPeriod": "30s", "minSyncPeriod": "0s"},
        "iptables": {"masqueradeAll": False, "syncPeriod": "30s", "minSyncPeriod": "1s"},
        "metricsBindAddress": "0.0.0.0:10249",
    }, sort_keys=False)


def manifest(mode: str, strict_arp: bool, pod_cidr: str, kube_version: str, checksum: bool) -> list[dict]:
    cm = o.config_map("kube-proxy", NS, {"config.conf": config(mode, strict_arp, pod_cidr)}, ADDON_LABELS)
    annotations = {CHECKSUM_ANNOTATION: o.checksum(cm["data"])} if checksum else None
    template = o.pod_template(LABELS, [o.container("kube-proxy", f"registry.k8s.io/kube-proxy:v{kube_version}")],
                              host_network=True, service_account="kube-proxy", annotations=annotations,
                              tolerate_all=True)
    template["spec"]["priorityClassName"] = "system-node-critical"
    ds = o.daemonset("kube-proxy", NS, LABELS, template)
    ds["metadata"]["labels"].update(ADDON_LABELS)
    return [o.service_account("kube-proxy", NS, ADDON_LABELS), cm, ds]
