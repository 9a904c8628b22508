"""A Canal -> Cilium run the way users drive it, for the tiers that start a real Airflow (tests/e2e, tests/celery).

The lab's connections are created, the run triggered (with conf) and every approval gate answered
through the REST API (ticking "include pods without a controller" at the pod restart); afterwards
the lab must be migrated with nothing lost.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from tests.lab_state import cni_state

DAG = "kkp_cni_canal_to_cilium"
CLUSTER = "webshop-canal-iptables"
GATES = ["step_1_2_switch_cni.approve_switch", "step_3_restart_pods.approve_pod_restart",
         "step_4_remove_canal.approve_canal_removal"]
TRIGGER_LOGGER = "kkp_migration.airflow.triggers.ClusterWaitTrigger"
RUN_TIMEOUT = 150
# A person reads the request before answering. Answering within a scheduler loop of the gate parking
# races Airflow 3.3.2's scheduler: the parked workload's exit is taken for the resumed one, the gate
# is "killed externally" and retried, and the question is asked again.
REACTION_SECONDS = 2.0


def register_lab_connections(api, kkp_lab) -> None:
    """kkp_seed and kkp_api pointing at this test's lab, as a user would create them."""
    for conn_id, conn in kkp_lab.kkp.airflow_connections(kkp_lab.ca_file).items():
        api.put_connection(conn_id, conn["conn_type"], conn["extra"], host=conn.get("host"),
                           password=conn.get("password"))


def gate_input(task_id: str) -> dict:
    return {"include_without_controller": True} if task_id.endswith(".approve_pod_restart") else {}


def _age(timestamp: str) -> float:
    return (datetime.now(timezone.utc) - datetime.fromisoformat(timestamp)).total_seconds()


def run_answering_gates(airflow, conf: dict, on_poll=None,
                        timeout: float = RUN_TIMEOUT) -> tuple[str, str, list[dict]]:
    """Trigger the DAG, approve each gate with its first option, and wait for the run to end.

    `on_poll(run_id)` is called on every poll (about twice a second), for a test that acts mid-run.
    Returns the run id, its end state and the answers the HITL endpoint acknowledged, in order.
    """
    api = airflow.api
    api.unpause(DAG)
    run_id = api.trigger(DAG, conf)
    airflow.runs.append((DAG, run_id))
    answers: list[dict] = []
    deadline = time.monotonic() + timeout
    while (state := api.run_state(DAG, run_id)) not in ("success", "failed"):
        airflow.check_running()
        assert time.monotonic() < deadline, f"run {run_id} still {state} after {timeout:.0f} s"
        if on_poll:
            on_poll(run_id)
        for request in api.pending_approvals(DAG, run_id):
            if _age(request["created_at"]) < REACTION_SECONDS:
                continue
            task_id = request["task_instance"]["task_id"]
            answer = api.answer(DAG, run_id, task_id, request["options"][0], gate_input(task_id),
                                request["task_instance"]["map_index"])
            answers.append({"task_id": task_id, **answer})
        time.sleep(0.5)
    return run_id, state, answers


def deferral_evidence(api, run_id: str, task_id: str) -> tuple[bool, bool]:
    """(the task paused itself as DEFERRED, our trigger logged from the triggerer) per its log."""
    events = [e for e in api.task_log(DAG, run_id, task_id, 1) if isinstance(e, dict)]
    paused = any(str(e.get("event", "")).startswith("Pausing task as DEFERRED") for e in events)
    triggered = any(e.get("logger") == TRIGGER_LOGGER for e in events) and \
        any(e.get("event") == "Trigger fired event" for e in events)
    return paused, triggered


def assert_migrated(kkp_lab, user, before) -> None:
    """The lab's own view after a successful run: Cilium everywhere, Canal gone, nothing lost."""
    after = cni_state(kkp_lab.lab, user)
    assert (after.cluster_cni, after.cilium_ready, after.canal_ready) == ("cilium", True, False)
    assert after.unmanaged_pods == [], "pods Cilium does not manage"
    assert after.canal_objects == [], "Canal objects left"
    assert set(before.bare_pods) <= set(after.pod_names), "a pod without a controller was lost"
    assert after.pdb_violations == []
