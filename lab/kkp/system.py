"""The system workloads KKP runs in every user cluster besides CNI and kube-proxy.

Shapes as the runbook's listings show them: coredns, konnectivity-agent or openvpn-client,
user-ssh-keys-agent and dashboard-metrics-scraper use the pod network (the runbook restarts
them); node-local-dns runs on the host network.
"""

from __future__ import annotations

from . import objects as o

NS = "kube-system"
DASHBOARD_NS = "kubernetes-dashboard"


def manifest(konnectivity: bool) -> list[dict]:
    coredns_labels = {"k8s-app": "kube-dns"}
    coredns = o.deployment("coredns", NS, coredns_labels, o.pod_template(
        coredns_labels, [o.container("coredns", "registry.k8s.io/coredns/coredns:v1.12.1")],
        service_account="coredns"), replicas=2)
    tunnel_name = "konnectivity-agent" if konnectivity else "openvpn-client"
    tunnel_labels = {"app": tunnel_name}
    tunnel_image = "registry.k8s.io/kas-network-proxy/proxy-agent:v0.33.0" if konnectivity \
        else "quay.io/kubermatic/openvpn:v2.5.2-r0"
    tunnel = o.deployment(tunnel_name, NS, tunnel_labels, o.pod_template(
        tunnel_labels, [o.container(tunnel_name, tunnel_image)]), replicas=2 if konnectivity else 1)
    ssh_labels = {"app": "user-ssh-keys-agent"}
    ssh = o.daemonset("user-ssh-keys-agent", NS, ssh_labels, o.pod_template(
        ssh_labels, [o.container("user-ssh-keys-agent", "quay.io/kubermatic/user-ssh-keys-agent:v2.31.0")],
        tolerate_all=True))
    nld_labels = {"app": "node-local-dns"}
    nld = o.daemonset("node-local-dns", NS, nld_labels, o.pod_template(
        nld_labels, [o.container("node-cache", "registry.k8s.io/dns/k8s-dns-node-cache:1.26.0")],
        host_network=True, tolerate_all=True))
    scraper_labels = {"k8s-app": "dashboard-metrics-scraper"}
    scraper = o.deployment("dashboard-metrics-scraper", DASHBOARD_NS, scraper_labels, o.pod_template(
        scraper_labels, [o.container("dashboard-metrics-scraper", "docker.io/kubernetesui/metrics-scraper:v1.0.9")]),
        replicas=2)
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DASHBOARD_NS}},
        o.service_account("coredns", NS), coredns,
        o.pdb("coredns", NS, coredns_labels, min_available=1),
        tunnel, ssh, nld, scraper,
    ]
