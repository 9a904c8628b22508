"""`Kkp`: KKP installed on the lab's seed: the Cluster CRD and its webhook, the cluster controller,
user clusters, and the REST API v2 with its token, projects, faults and request counters."""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass

from lab.faults import Faults

from . import admission
from .controller import ClusterController
from .crds import CLUSTER
from .usercluster import UP, ClusterSpec, UserCluster, new_id


@dataclass
class KkpOptions:
    rollout_delay: float = 120.0          # simulated seconds from a Cluster change to its rollout
    app_reconcile_delay: float = 30.0     # simulated seconds until deleted release objects come back
    kube_proxy_checksum: bool = True      # KKP >= 2.30: a mode change rolls kube-proxy by itself


class Kkp:
    def __init__(self, lab, options: KkpOptions | None = None, project_name: str = "kkp-lab"):
        self.lab = lab
        self.options = options or KkpOptions()
        self.seed = lab.seed
        self.token = secrets.token_urlsafe(24)
        self.project_id = new_id()
        self.projects = {self.project_id: project_name}       # the projects the token may see
        self.faults = Faults()                                # API faults (reject_token, error_rate, latency...)
        self.requests: Counter = Counter()                    # (method, route) -> count
        self.clusters: dict[str, UserCluster] = {}
        self.controller = ClusterController(self)
        self.url = ""

    def install(self) -> "Kkp":
        """CRD, webhook and controller on the seed (runs on the lab's loop)."""
        store = self.seed.store
        store.create(store.rtype("apiextensions.k8s.io", "customresourcedefinitions"), CLUSTER)
        store.admit("kubermatic.k8c.io", "clusters", admission.check)
        self.controller.install()
        return self

    def add_cluster(self, spec: ClusterSpec, cluster_id: str | None = None) -> UserCluster:
        """A new user cluster (from a test or CLI thread, not from the lab's loop)."""
        cluster_id = cluster_id or new_id()
        api = self.lab.add_cluster(cluster_id, spec.kube_version)
        user = UserCluster(self, cluster_id, self.project_id, spec, api)

        def create():
            user.create_on_seed()
            self.clusters[cluster_id] = user
            user.bootstrap()
        self.lab.call(create)
        return user

    def by_name(self, name: str) -> UserCluster:
        for user in self.clusters.values():
            if user.spec.name == name or user.id == name:
                return user
        raise KeyError(f"no user cluster named {name!r}")

    def airflow_connections(self, ca_file: str) -> dict:
        """The `kkp_seed` and `kkp_api` Airflow connections pointing at this lab, in the JSON shape
        `airflow connections import` and AIRFLOW_CONN_* variables take."""
        return {
            "kkp_seed": {"conn_type": "kubernetes", "extra": {"kube_config": self.lab.seed.kubeconfig()}},
            "kkp_api": {"conn_type": "http", "host": self.url, "password": self.token, "extra": {"ca_file": ca_file}},
        }

    def set_health(self, cluster_id: str, component: str, status: str) -> None:
        """Override one component of a cluster's extendedHealth (runs on the lab's loop)."""
        user = self.clusters[cluster_id]
        if status == UP:
            user.health_overrides.pop(component, None)
        else:
            user.health_overrides[component] = status
        user.write_status()

