"""A per-cluster migration lock, held on the KKP Cluster object itself.

An annotation names the run that holds it, so no two runs, from any DAG, manual or scheduled,
act on one cluster at once, whichever Airflow started them. It is taken in the preflight and
released by the run's report, except when the run stopped half-way: then it stays with that run
until a later run takes it over, explicitly and in its log (`take_over_lock_from`).
"""

from __future__ import annotations

import json
import logging
import time

from .errors import BadInput, MigrationError
from .kkp import KkpAccess, StaleCluster

LOCK = "kkp-cni-migration.kubermatic.io/lock"
log = logging.getLogger(__name__)


class Locked(BadInput):
    """Another run holds the cluster."""


def holder(annotations: dict) -> dict | None:
    raw = (annotations or {}).get(LOCK)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"run": raw, "since": "?"}


def claimable(kkp: KkpAccess, annotations: dict, run: str, take_over_from: str = "") -> dict | None:
    """Who holds the cluster, read only: None when nobody does, the holder's record when `run` may
    have it (it holds it already, or takes it over as `take_over_from` asks); Locked otherwise."""
    current = holder(annotations)
    if current and current["run"] not in (run, take_over_from):
        raise Locked(f"Cluster {kkp.cluster_id} is held by run {current['run']} (since {current['since']}); wait "
                     "for it to finish, or, if that run is gone for good, trigger again with "
                     f"take_over_lock_from={current['run']!r}.")
    return current


def acquire(kkp: KkpAccess, run: str, take_over_from: str = "", original: dict | None = None,
            attempts: int = 5) -> dict:
    """Take the lock for `run` (again, if it already holds it); refuse if another run holds it,
    unless that run is named in `take_over_from`. The lock records `original`, the cluster as it
    was before the first run began, so that a run which resumes or takes over a half-way cluster
    knows where it came from. On the seed the write is conditional on the Cluster as read
    (resourceVersion): a change in between (KKP updating the Cluster, another run locking it)
    means read and decide again. The KKP API has no precondition, so the lock is read back there
    too: the last writer wins and the other refuses."""
    for _ in range(attempts):
        info = kkp.get_cluster()
        current = claimable(kkp, info.annotations, run, take_over_from)
        if current and current["run"] == run:
            return current
        if current:
            log.warning("taking over the lock of cluster %s from run %s, as take_over_lock_from asks",
                        kkp.cluster_id, current["run"])
        mine = {"run": run, "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if original:
            mine["original"] = original
        try:
            kkp.update_cluster(annotations={LOCK: json.dumps(mine, sort_keys=True)},
                               expect_version=info.resource_version)
        except StaleCluster:
            continue
        now = holder(kkp.get_cluster().annotations)
        if not now or now["run"] != run:      # another run wrote in between: it wins
            raise Locked(f"Cluster {kkp.cluster_id} was locked by run {now and now['run']} at the same moment; "
                         "try again when that run has finished.")
        return {**mine, "took_over_from": current["run"] if current else None}
    raise MigrationError(f"Cluster {kkp.cluster_id} kept changing while its lock was taken ({attempts} tries); "
                         "clear this task to try again.")


def release(kkp: KkpAccess, run: str) -> bool:
    """Release the lock if `run` holds it; True when released."""
    current = holder(kkp.get_cluster().annotations)
    if not current or current["run"] != run:
        return False
    kkp.update_cluster(annotations={LOCK: None})
    if holder(kkp.get_cluster().annotations):
        raise MigrationError(f"Cluster {kkp.cluster_id}: the lock annotation {LOCK} could not be removed.")
    return True
