"""A task process killed in the middle of the pod restart, on a real `airflow standalone`: Airflow
retries the task, and the retry finishes the restart without a second round: every pod the killed
try had already re-created is still there afterwards (by uid: a StatefulSet's pod keeps its name),
unless its workload went with Canal's removal, and the run ends migrated.
"""

from __future__ import annotations

import os
import signal

import pytest

from tests import figures
from tests.e2e.migration_run import CLUSTER, DAG, assert_migrated, register_lab_connections, run_answering_gates
from tests.lab_state import cni_state

pytestmark = pytest.mark.e2e

RESTART = "step_3_restart_pods.restart"


def pods_by_uid(lab, user) -> dict[str, tuple[str, tuple | None]]:
    """uid -> (namespace/name, controlling owner (namespace, kind, name)) of every pod not on the host network."""
    store = user.api.store

    def snap():
        out = {}
        for pod in store.items(store.rtype("", "pods")):
            if pod["spec"].get("hostNetwork"):
                continue
            meta = pod["metadata"]
            ref = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
            out[meta["uid"]] = (f"{meta['namespace']}/{meta['name']}",
                                (meta["namespace"], ref["kind"], ref["name"]) if ref else None)
        return out
    return lab.call(snap)


def test_a_restart_killed_mid_step_resumes_without_restarting_pods_twice(airflow, kkp_lab):
    lab, user = kkp_lab.lab, kkp_lab.clusters[CLUSTER]
    before = cni_state(lab, user)
    register_lab_connections(airflow.api, kkp_lab)
    killed: dict = {}
    at_start: dict = {}

    def kill_mid_restart(run_id: str) -> None:
        if killed:
            return
        ti = airflow.api.task_instance(DAG, run_id, RESTART)
        if ti["state"] != "running" or not ti.get("pid"):
            return
        if not at_start:
            lab.call(lambda: user.api.faults.update(latency=0.1))  # slow enough to land mid-step
            at_start.update(pods_by_uid(lab, user))
        moved = {uid: pod for uid, pod in pods_by_uid(lab, user).items() if uid not in at_start}
        if len(moved) >= 3:
            os.kill(ti["pid"], signal.SIGKILL)
            killed.update(pid=ti["pid"], moved=moved, try_number=ti["try_number"])
            lab.call(lambda: user.api.faults.update(latency=0.0))

    run_id, state, _ = run_answering_gates(airflow, {"cluster_id": user.id, "access": "seed", "parallelism": 2,
                                                     "restart_machine_deployments": False},
                                           on_poll=kill_mid_restart, timeout=300)

    after = cni_state(lab, user)
    restart = airflow.api.task_instance(DAG, run_id, RESTART)
    now = pods_by_uid(lab, user)
    owners = {owner for _, owner in now.values()}
    again = sorted(name for uid, (name, owner) in killed.get("moved", {}).items()
                   if uid not in now and (owner is None or owner in owners))
    figures.fault("kill of the restart's task process mid-step", injected=1 if killed else 0,
                  as_promised=state == "success" and not again,
                  pods_lost=len(set(before.bare_pods) - set(after.pod_names)), pdb_violations=len(after.pdb_violations))
    print(f"killed pid {killed.get('pid')} with {len(killed.get('moved', ()))} pods moved; "
          f"restart ended in try {restart['try_number']}")
    assert killed, "the restart ended before it could be killed mid-step"
    assert state == "success" and restart["try_number"] == killed["try_number"] + 1
    assert not again, f"pods the killed try had already restarted were restarted again: {again}"
    assert_migrated(kkp_lab, user, before)
    assert after.workloads() == before.workloads()
