"""KKP's seed-side reaction to Cluster changes: a while after `spec.cniPlugin` or
`spec.clusterNetwork.proxyMode` change, the user cluster gets the new CNI / kube-proxy config.

The delay (default 120 simulated seconds; the runbook says "up to 5 minutes") runs from the
first change that is not yet rolled out; the rollout then applies the Cluster as it is by then.
"""

from __future__ import annotations

import logging

from lab.apiserver.store import Event

log = logging.getLogger("lab.kkp")


def _wanted(cluster: dict) -> tuple:
    spec = cluster.get("spec") or {}
    cni = spec.get("cniPlugin") or {}
    return cni.get("type"), cni.get("version"), (spec.get("clusterNetwork") or {}).get("proxyMode")


class ClusterController:
    def __init__(self, kkp):
        self.kkp = kkp
        self._pending: set[str] = set()

    def install(self) -> None:
        self.kkp.seed.store.listen("kubermatic.k8c.io", "clusters", self._on_event)

    def _on_event(self, event: Event) -> None:
        if event.type != "MODIFIED" or event.old is None or _wanted(event.obj) == _wanted(event.old):
            return
        cluster_id = event.obj["metadata"]["name"]
        if cluster_id in self.kkp.clusters and cluster_id not in self._pending:
            self._pending.add(cluster_id)
            self.kkp.seed.clock.later(self.kkp.options.rollout_delay, self._rollout, cluster_id)

    def _rollout(self, cluster_id: str) -> None:
        self._pending.discard(cluster_id)
        store = self.kkp.seed.store
        cluster = store.try_get(store.rtype("kubermatic.k8c.io", "clusters"), None, cluster_id)
        user = self.kkp.clusters.get(cluster_id)
        if cluster is None or user is None:
            return
        try:
            user.reconcile(cluster)
        except Exception:  # KKP's controller retries; the lab logs and waits for the next change
            log.exception("rolling out cluster %s failed", cluster_id)
