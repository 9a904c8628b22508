"""The scheduler and the triggerer killed while a run waits for Cilium, then started again, as
their supervisor would: the wait resumes in the new triggerer and the run finishes, with nothing
done twice (the CNI switch patched the Cluster's spec once, no task needed a second try).
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.migration_run import CLUSTER, DAG, assert_migrated, register_lab_connections, run_answering_gates
from tests.lab_state import cni_state

pytestmark = pytest.mark.e2e

WAIT = "step_1_2_switch_cni.wait_cilium_ready"
SWITCH = "step_1_2_switch_cni.label_and_switch"


def cluster_generation(kkp_lab, user) -> int:
    store = kkp_lab.lab.seed.store
    return kkp_lab.lab.call(lambda: store.get(store.rtype("kubermatic.k8c.io", "clusters"), None, user.id)
                            ["metadata"]["generation"])


class KillSchedulerAndTriggerer:
    """`on_poll` of the run: once the Cilium wait is deferred, kill both, wait, start both again."""

    def __init__(self, airflow):
        self.airflow = airflow
        self.done = False

    def __call__(self, run_id: str) -> None:
        if self.done or self.airflow.api.task_instance(DAG, run_id, WAIT)["state"] != "deferred":
            return
        for name in ("scheduler", "triggerer"):
            self.airflow.stack.kill(name)
        time.sleep(5)
        for name in ("scheduler", "triggerer"):
            self.airflow.stack.restart(name)
        self.done = True


def test_a_run_survives_its_scheduler_and_triggerer_being_killed_mid_wait(airflow, kkp_lab):
    user = kkp_lab.clusters[CLUSTER]
    before = cni_state(kkp_lab.lab, user)
    generation = cluster_generation(kkp_lab, user)
    register_lab_connections(airflow.api, kkp_lab)
    kill = KillSchedulerAndTriggerer(airflow)

    run_id, state, _ = run_answering_gates(
        airflow, {"cluster_id": user.id, "access": "seed", "restart_machine_deployments": False},
        on_poll=kill, timeout=300)

    api = airflow.api
    assert kill.done, "the Cilium wait was never seen deferred"
    assert state == "success"
    tis = {ti["task_id"]: ti for ti in api.task_instances(DAG, run_id)}
    retried = {t: ti["try_number"] for t, ti in tis.items() if ti["try_number"] > 1}
    assert not retried, f"a task needed a second try after the restart: {retried}"
    assert api.xcom(DAG, run_id, SWITCH)["changed"] is True
    assert cluster_generation(kkp_lab, user) == generation + 1, "the Cluster's spec was changed more than once"
    assert api.xcom(DAG, run_id, "report")["outcome"] == "completed and verified"
    assert_migrated(kkp_lab, user, before)
