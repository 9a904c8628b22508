"""`Lab`: the whole simulated KKP installation, started in-process or by `python -m lab up`."""

from __future__ import annotations

from .clock import Clock
from .cluster import Cluster
from .server import LabServer, kube_app
from .tls import make_tls

SEED = "seed"


class Lab:
    """A seed cluster, user clusters and (once KKP is installed on it) the KKP REST API.

    Everything runs on one event loop in a background thread; `call()` runs code on it.
    """

    def __init__(self, time_factor: float = 1.0, host: str = "127.0.0.1", kube_port: int = 0):
        self.clock = Clock(time_factor)
        self.tls = make_tls((host, "localhost"))
        self.server = LabServer(host, ssl_context=self.tls.server_context())
        self.clusters: dict[str, Cluster] = {}
        self.host = host
        self._kube_port = kube_port
        self.kube_url = ""
        self.kkp = None                  # lab.kkp.Kkp once install_kkp() ran

    def start(self) -> "Lab":
        self.server.start()
        port = self.server.serve("kube", kube_app(self.clusters), self._kube_port)
        self.kube_url = f"https://{self.host}:{port}"
        self.add_cluster(SEED)
        return self

    def stop(self) -> None:
        self.server.stop()

    def call(self, fn, *args, timeout: float = 60.0):
        return self.server.call(fn, *args, timeout=timeout)

    def add_cluster(self, name: str, kube_version: str = "1.33.4") -> Cluster:
        """A new empty API server (with the default namespaces) served under /k8s/<name>."""
        cluster = Cluster(name, self.clock, kube_version)
        cluster.base_url = self.kube_url
        cluster.ca_data = self.tls.ca_data

        def bootstrap():
            ns = cluster.store.rtype("", "namespaces")
            for name_ in ("default", "kube-system", "kube-public", "kube-node-lease"):
                cluster.store.create(ns, {"metadata": {"name": name_}, "status": {"phase": "Active"}})
        self.call(bootstrap)
        self.clusters[name] = cluster
        return cluster

    def install_kkp(self, options=None, port: int = 0):
        """KKP on the seed (Cluster CRD, webhook, controllers) and its REST API v2 on its own port."""
        from .kkp import Kkp
        from .kkp.api import make_app

        kkp = Kkp(self, options)
        self.call(kkp.install)
        kkp_port = self.server.serve("kkp", make_app(kkp), port)
        kkp.url = f"https://{self.host}:{kkp_port}"
        self.kkp = kkp
        return kkp

    @property
    def seed(self) -> Cluster:
        return self.clusters[SEED]
