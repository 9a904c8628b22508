"""Canal -> Cilium on Airflow's distributed setup: CeleryExecutor on PostgreSQL and Redis, two workers,
and the worker running the pod restart killed half-way.

The run of tests/e2e (connections, trigger and every approval through the REST API), machine
deployments rolled too. Once the restart has evicted its first pods (slowed by the lab's latency
fault so that it is still running when the test looks), the worker running it is SIGKILLed with
everything it started. The scheduler must find the task without a heartbeat, its retry must run on
the other worker, and the lab must end up migrated with nothing lost.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from scripts.celery_stack import WORKERS
from tests.e2e.migration_run import (CLUSTER, DAG, GATES, assert_migrated, deferral_evidence,
                                     register_lab_connections, run_answering_gates)
from tests.lab_state import cni_state

pytestmark = pytest.mark.e2e

PLAN, RESTART_GATE, RESTART = ("step_3_restart_pods.plan_pod_restart", "step_3_restart_pods.approve_pod_restart",
                               "step_3_restart_pods.restart")
MACHINE_GATE = "step_6_restart_machines.approve_machine_restart"
SENSORS = ["step_1_2_switch_cni.wait_cilium_ready", "step_3_restart_pods.wait_pods_managed_by_cilium",
           "step_6_restart_machines.wait_machines_rolled"]
# Seconds the lab adds to each request to the user cluster while the restart runs: the kill must land
# while it evicts, seconds before it deletes and re-creates the pod without a controller.
LATENCY = 2.0
EVICTION = ("create", "pods/eviction")
RUN_TIMEOUT = 240    # the run, plus the heartbeat timeout and the retry delay the kill costs


class KillRestartWorker:
    """`on_poll` of the run: slows the user cluster once the restart's gate waits, and when the
    restart runs and the lab has seen its first eviction, kills the worker running it."""

    def __init__(self, airflow, kkp_lab, user):
        self.airflow, self.lab, self.user = airflow, kkp_lab.lab, user
        self.slowed = False
        self.victim: str | None = None
        self.evicted_before = 0
        self.killed_at: datetime | None = None

    def __call__(self, run_id: str) -> None:
        if self.victim:
            return
        api = self.airflow.api
        if not self.slowed:
            if api.task_instance(DAG, run_id, RESTART_GATE)["state"] == "awaiting_input":
                self.lab.call(lambda: self.user.api.faults.update(latency=LATENCY))
                self.slowed = True
            return
        restart = api.task_instance(DAG, run_id, RESTART)
        evicted = self.lab.call(lambda: self.user.api.requests[EVICTION])
        if restart["state"] == "running" and restart["hostname"] and evicted:
            self.airflow.stack.kill(restart["hostname"])
            self.killed_at = datetime.now(timezone.utc)
            self.victim, self.evicted_before = restart["hostname"], evicted
            self.lab.call(lambda: self.user.api.faults.update(latency=0.0))


def test_migrates_on_two_workers_and_survives_a_killed_worker(airflow, kkp_lab):
    user = kkp_lab.clusters[CLUSTER]
    before = cni_state(kkp_lab.lab, user)
    assert before.cluster_cni == "canal" and before.bare_pods and not before.cilium_ready
    register_lab_connections(airflow.api, kkp_lab)
    kill = KillRestartWorker(airflow, kkp_lab, user)

    started = datetime.now(timezone.utc)
    run_id, state, answers = run_answering_gates(
        airflow, {"cluster_id": user.id, "access": "seed", "restart_machine_deployments": True},
        on_poll=kill, timeout=RUN_TIMEOUT)
    ended = datetime.now(timezone.utc)

    api = airflow.api
    assert state == "success"
    assert kill.victim in WORKERS, "the restart was never seen running on a worker, so no worker was killed"
    survivor = next(w for w in WORKERS if w != kill.victim)
    assert [a["task_id"] for a in answers] == [*GATES, MACHINE_GATE]

    tries = api.task_tries(DAG, run_id, RESTART)
    assert [(t["try_number"], t["hostname"], t["state"]) for t in tries] == \
        [(1, kill.victim, "failed"), (2, survivor, "success")], "the killed try failed, the retry on the other worker"
    # The retry re-planned: pods the killed try had already moved are spared, the rest restarted, and
    # the pod without a controller (the killed try had not reached it) re-created.
    planned = len(api.xcom(DAG, run_id, PLAN)["to_restart"])
    retry = api.xcom(DAG, run_id, RESTART)
    assert 0 < retry["planned"] < planned, (retry["planned"], planned)
    assert sorted(retry["recreated"]) == before.bare_pods
    tis = {ti["task_id"]: ti for ti in api.task_instances(DAG, run_id)}
    retried = {t: ti["try_number"] for t, ti in tis.items() if ti["try_number"] > 1}
    assert retried == {RESTART: 2}, f"only the killed task should have needed a retry: {retried}"
    # Both workers ran tasks: the restart's tries say so. Which worker Celery hands a task to is up to
    # the broker, so how the tasks before the kill spread is printed, not asserted.
    on_workers = {t: ti for t, ti in tis.items() if ti["hostname"]}     # EmptyOperators run nowhere
    before_kill = {w: sorted(t for t, ti in on_workers.items() if ti["hostname"] == w
                             and datetime.fromisoformat(ti["end_date"]) < kill.killed_at) for w in WORKERS}
    after_kill = sorted(t for t, ti in on_workers.items() if datetime.fromisoformat(ti["start_date"]) > kill.killed_at)
    assert {on_workers[t]["hostname"] for t in after_kill} == {survivor}
    for sensor in SENSORS:
        assert deferral_evidence(api, run_id, sensor) == (True, True), f"{sensor} did not wait in the triggerer"
    assert api.xcom(DAG, run_id, "report")["outcome"] == "completed and verified"
    assert_migrated(kkp_lab, user, before)

    def at(timestamp: str) -> str:
        return f"{(datetime.fromisoformat(timestamp) - started).total_seconds():.0f} s"
    print(f"\nrun {run_id}: {state} after {(ended - started).total_seconds():.0f} s")
    print(f"  {kill.victim} killed at {(kill.killed_at - started).total_seconds():.0f} s, {kill.evicted_before} "
          f"evictions into {RESTART}; try 1 failed for want of a heartbeat at {at(tries[0]['end_date'])}, "
          f"try 2 on {survivor} from {at(tries[1]['start_date'])} to {at(tries[1]['end_date'])}: "
          f"{retry['planned']} of the {planned} pods planned still to restart, {retry['recreated']} re-created")
    for worker, task_ids in before_kill.items():
        print(f"  before the kill, {worker} ran {len(task_ids)}: {', '.join(task_ids)}")
    print(f"  after the kill, {survivor} ran {len(after_kill)}: {', '.join(after_kill)}")
