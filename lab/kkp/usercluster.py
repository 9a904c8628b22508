"""One KKP user cluster: its Cluster object and control-plane namespace on the seed, its own API
server with the lab's Kubernetes controllers, and what KKP puts into it (nodes through a
MachineDeployment, the CNI, kube-proxy, system workloads).

`deploy_cni` and `set_proxy_mode` are what KKP's controllers do after a Cluster change; the
seed-side `ClusterController` decides when.
"""

from __future__ import annotations

import base64
import secrets
import string
from dataclasses import dataclass

import yaml

from lab.apiserver.store import now_iso
from lab.cluster import Cluster
from lab.kube import workloads

from . import canal, cilium, kube_proxy, system, versions
from . import objects as o
from .applications import ApplicationController, installation

ID_ALPHABET = string.ascii_lowercase + string.digits
HEALTH_COMPONENTS = ("apiserver", "scheduler", "controller", "machineController", "etcd",
                     "cloudProviderInfrastructure", "userClusterControllerManager", "applicationController",
                     "operatingSystemManager", "kubernetesDashboard")
UP = "HealthStatusUp"
MD_GROUP, MD_PLURAL = "cluster.k8s.io", "machinedeployments"


def new_id(rng=None) -> str:
    """A cluster ID as KKP makes them: 10 random lower-case letters and digits."""
    choice = rng.choice if rng else secrets.choice
    return "".join(choice(ID_ALPHABET) for _ in range(10))


@dataclass
class ClusterSpec:
    """What a lab user cluster looks like when it is created."""
    name: str
    cni_type: str = "canal"
    cni_version: str = ""
    proxy_mode: str = "ipvs"
    konnectivity: bool = True
    nodes: int = 3
    kube_version: str = "1.33.4"
    os: str = "ubuntu"
    pod_cidr: str = "172.25.0.0/16"
    service_cidr: str = "10.240.16.0/20"

    def cluster_network(self) -> dict:
        return {"ipFamily": "IPv4", "pods": {"cidrBlocks": [self.pod_cidr]},
                "services": {"cidrBlocks": [self.service_cidr]}, "dnsDomain": "cluster.local",
                "proxyMode": self.proxy_mode, "ipvs": {"strictArp": self.proxy_mode == "ipvs"},
                "nodeCidrMaskSizeIPv4": 24, "konnectivityEnabled": self.konnectivity,
                "nodeLocalDNSCacheEnabled": True}


class UserCluster:
    def __init__(self, kkp, cluster_id: str, project_id: str, spec: ClusterSpec, api: Cluster):
        self.kkp = kkp
        self.id = cluster_id
        self.project_id = project_id
        self.spec = spec
        self.api = api                                     # the user cluster's lab API server
        self.store = api.store
        self.applied_cni: tuple[str, str] = ("", "")
        self.applied_proxy_mode = ""
        self.health_overrides: dict[str, str] = {}
        self.apps = ApplicationController(api, kkp.options.app_reconcile_delay)
        self.kubeconfig_token: str | None = None          # what KKP hands out; None: the admin's token

    @property
    def namespace(self) -> str:
        return f"cluster-{self.id}"

    # ---- the seed side -----------------------------------------------------------------------------

    def seed_object(self) -> dict:
        s = self.spec
        return {
            "apiVersion": "kubermatic.k8c.io/v1", "kind": "Cluster",
            "metadata": {"name": self.id, "labels": {"project-id": self.project_id}},
            "spec": {"humanReadableName": s.name, "version": s.kube_version,
                     "cloud": {"dc": "lab-dc", "providerName": "bringyourown", "bringyourown": {}},
                     "cniPlugin": {"type": s.cni_type, "version": s.cni_version or versions.default(s.cni_type)},
                     "clusterNetwork": s.cluster_network(), "exposeStrategy": "NodePort",
                     "enableUserSSHKeyAgent": True, "enableOperatingSystemManager": True,
                     "containerRuntime": "containerd", "pause": False, "features": {"apiserverNetworkPolicy": True}},
        }

    def create_on_seed(self) -> None:
        seed = self.kkp.seed.store
        clusters = seed.rtype("kubermatic.k8c.io", "clusters")
        seed.create(clusters, self.seed_object())
        seed.create(seed.rtype("", "namespaces"), {"metadata": {"name": self.namespace,
                                                               "labels": {"cluster": self.id}},
                                                  "status": {"phase": "Active"}})
        seed.create(seed.rtype("", "secrets"), {
            "metadata": {"name": "admin-kubeconfig", "namespace": self.namespace}, "type": "Opaque",
            "data": self._kubeconfig_data()})
        self.write_status()

    def handed_out_kubeconfig(self) -> dict:
        """The kubeconfig KKP hands out for this cluster (the admin-kubeconfig Secret, the REST API)."""
        user = self.api.tokens[self.kubeconfig_token].rsplit(":", 1)[-1] if self.kubeconfig_token else "admin"
        return self.api.kubeconfig(self.kubeconfig_token, user)

    def hand_out_kubeconfig(self, token: str) -> None:
        """Hand out a kubeconfig carrying `token` (a least-privilege ServiceAccount's) in place of the
        admin's, on both of KKP's paths: every user-cluster request the migration makes then goes
        through that token's RBAC, which is how the tests hold it to deploy/rbac/user-cluster.yaml."""
        self.kubeconfig_token = token
        seed = self.kkp.seed.store
        seed.mutate(seed.rtype("", "secrets"), self.namespace, "admin-kubeconfig",
                    lambda secret: secret.__setitem__("data", self._kubeconfig_data()))

    def _kubeconfig_data(self) -> dict:
        kubeconfig = yaml.safe_dump(self.handed_out_kubeconfig())
        return {"kubeconfig": base64.b64encode(kubeconfig.encode()).decode()}

    def write_status(self) -> None:
        seed = self.kkp.seed.store
        clusters = seed.rtype("kubermatic.k8c.io", "clusters")
        current = seed.try_get(clusters, None, self.id)
        if current is None:
            return
        old = current.get("status") or {}
        health = {c: self.health_overrides.get(c, UP) for c in HEALTH_COMPONENTS}
        if not current["spec"]["clusterNetwork"].get("konnectivityEnabled", True):
            health["openvpn"] = self.health_overrides.get("openvpn", UP)
        healthy = all(v == UP for v in health.values())
        stamp = (old.get("conditions") or {}).get("ClusterControllerReconciledSuccessfully", {}).get(
            "lastHeartbeatTime") or now_iso()
        cond = {"status": "True", "kubermaticVersion": "v2.31.0", "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp}
        version = current["spec"]["version"]
        status = {
            "namespaceName": self.namespace, "userEmail": "lab-admin@kubermatic.lab",
            "phase": "Running" if healthy else "Updating",
            "address": {"url": self.api.server_url, "externalName": self.api.server_url, "port": 443},
            "versions": {"controlPlane": version, "apiserver": version, "controllerManager": version,
                         "scheduler": version},
            "extendedHealth": health,
            "conditions": {"ClusterControllerReconciledSuccessfully": cond,
                           "AddonControllerReconciledSuccessfully": cond,
                           "ClusterInitialized": {**cond, "reason": "ClusterInitialized"},
                           "ApplicationInstallationControllerReconciledSuccessfully": cond},
        }
        seed.write_status(clusters, None, self.id, status)

    # ---- the user cluster side ------------------------------------------------------------------------

    def bootstrap(self) -> None:
        """Everything KKP puts into a new user cluster; the initial CNI without any delay."""
        from lab import kube
        kube.install(self.api)
        self.apps.install()
        s = self.spec
        o.apply_all(self.store, system.manifest(s.konnectivity))
        self.deploy_cni(s.cni_type, s.cni_version or versions.default(s.cni_type), s.proxy_mode)
        self.set_proxy_mode(s.proxy_mode)
        o.apply(self.store, self.machine_deployment(s.nodes))

    def machine_deployment(self, replicas: int) -> dict:
        """The worker MachineDeployment KKP's dashboard creates with the cluster."""
        md = workloads.machine_deployment(f"{self.id}-worker-{self.id[:5]}", replicas, os=self.spec.os,
                                          kubelet=self.spec.kube_version, cloud="bringyourown")
        md["spec"]["template"]["spec"]["metadata"]["labels"]["system/cluster"] = self.id
        return md

    def cilium_values(self, proxy_mode: str) -> dict:
        return cilium.values(proxy_mode, self.spec.pod_cidr, self.api.server_url)

    def deploy_cni(self, cni_type: str, version: str, proxy_mode: str) -> None:
        """Roll out a CNI (the old one stays: KKP never removes a CNI). Same type: an in-place update."""
        old_type, old_version = self.applied_cni
        if cni_type == "canal":
            objs = canal.manifest(version, self.spec.pod_cidr)
            applied = o.apply_all(self.store, objs)
            if old_type == "canal" and old_version != version:     # the addon manager prunes
                keep = {(x["kind"], x["metadata"]["name"]) for x in applied}
                for stale in canal.manifest(old_version, self.spec.pod_cidr):
                    if (stale["kind"], stale["metadata"]["name"]) not in keep:
                        o.delete(self.store, stale)
        elif cni_type == "cilium" and versions.is_application(cni_type, version):
            o.apply(self.store, installation(version, self.cilium_values(proxy_mode)))
        elif cni_type == "cilium":
            for crd in cilium.runtime_crds(version):
                o.apply(self.store, crd)
            o.apply_all(self.store, cilium.manifest(version, self.cilium_values(proxy_mode)))
        self.applied_cni = (cni_type, version)

    def set_proxy_mode(self, mode: str) -> None:
        """kube-proxy's config (or its removal with ebpf), and Cilium's kube-proxy replacement."""
        s = self.spec
        kp = kube_proxy.manifest(mode, self._strict_arp(), s.pod_cidr, s.kube_version,
                                 self.kkp.options.kube_proxy_checksum)
        if mode == "ebpf":
            for obj in kp:
                o.delete(self.store, obj)
        else:
            o.apply_all(self.store, kp)
        was_ebpf = self.applied_proxy_mode == "ebpf"
        self.applied_proxy_mode = mode
        cni_type, version = self.applied_cni
        if cni_type == "cilium" and (was_ebpf or mode == "ebpf"):
            self.deploy_cni(cni_type, version, mode)

    def _strict_arp(self) -> bool:
        seed = self.kkp.seed.store
        current = seed.try_get(seed.rtype("kubermatic.k8c.io", "clusters"), None, self.id)
        net = (current or self.seed_object())["spec"]["clusterNetwork"]
        return bool((net.get("ipvs") or {}).get("strictArp", True))

    def reconcile(self, cluster: dict) -> None:
        """Bring the user cluster in line with the seed's Cluster object (the delayed part of KKP)."""
        spec = cluster["spec"]
        cni = spec.get("cniPlugin") or {}
        mode = spec["clusterNetwork"]["proxyMode"]
        if (cni.get("type"), cni.get("version")) != self.applied_cni:
            self.deploy_cni(cni["type"], cni["version"], mode)
        if mode != self.applied_proxy_mode:
            self.set_proxy_mode(mode)
        self.write_status()
