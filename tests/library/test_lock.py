"""The per-cluster lock against a write that lands between its read and its own write, on the
seed, where the write is conditional on the Cluster as read (resourceVersion)."""

from __future__ import annotations

import json

import pytest

from kkp_migration import lock
from kkp_migration.kkp import SeedAccess
from kkp_migration.kube import Kube


class WriteInBetween:
    """SeedAccess whose first read is followed at once by someone else's write to the Cluster."""

    def __init__(self, kkp_lab, user, change):
        self.seed = SeedAccess(Kube(kkp_lab.lab.seed.kubeconfig(), "seed"), user.id)
        self.cluster_id = user.id
        self.pending = change
        self.kkp_lab, self.user = kkp_lab, user

    def get_cluster(self):
        info = self.seed.get_cluster()
        if self.pending:
            store = self.kkp_lab.lab.seed.store
            change, self.pending = self.pending, None
            self.kkp_lab.lab.call(lambda: store.mutate(store.rtype("kubermatic.k8c.io", "clusters"), None,
                                                       self.user.id, change))
        return info

    def update_cluster(self, **kw):
        return self.seed.update_cluster(**kw)


def annotations(kkp_lab, user) -> dict:
    store = kkp_lab.lab.seed.store
    return kkp_lab.lab.call(lambda: store.get(store.rtype("kubermatic.k8c.io", "clusters"), None, user.id)
                            ["metadata"].get("annotations") or {})


def test_another_run_locking_in_between_wins_and_this_one_refuses(kkp_lab):
    user = kkp_lab.clusters["webshop-canal-iptables"]
    other = json.dumps({"run": "kkp_proxy_mode/manual__other", "since": "2026-11-25T17:00:00Z"})
    kkp = WriteInBetween(kkp_lab, user, lambda c: c["metadata"].setdefault("annotations", {}).__setitem__(
        lock.LOCK, other))

    with pytest.raises(lock.Locked, match="held by run kkp_proxy_mode/manual__other"):
        lock.acquire(kkp, "kkp_cni_canal_to_cilium/manual__mine")
    assert annotations(kkp_lab, user)[lock.LOCK] == other, "the run that wrote first keeps the lock"


def test_an_unrelated_change_in_between_is_read_again_and_the_lock_taken(kkp_lab):
    user = kkp_lab.clusters["webshop-canal-iptables"]
    kkp = WriteInBetween(kkp_lab, user, lambda c: c["metadata"].setdefault("labels", {}).__setitem__(
        "team", "payments"))

    held = lock.acquire(kkp, "kkp_cni_canal_to_cilium/manual__mine")

    assert held["run"] == "kkp_cni_canal_to_cilium/manual__mine"
    assert json.loads(annotations(kkp_lab, user)[lock.LOCK])["run"] == held["run"]
    assert lock.release(kkp.seed, held["run"]) and lock.LOCK not in annotations(kkp_lab, user)
