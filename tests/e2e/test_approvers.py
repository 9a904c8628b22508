"""Named approvers on a real `airflow standalone` with two users: a run triggered with
`approvers: [alice]` asks alice only. The admin's answer is refused by Airflow (403), alice's
goes through, and the run's report says alice approved each step, and when.
"""

from __future__ import annotations

import json
import time

import pytest

from scripts.airflow_home import PASSWORD_FILE
from tests.e2e.airflow_rest import AirflowREST, AirflowRestError
from tests.e2e.migration_run import CLUSTER, DAG, REACTION_SECONDS, _age, register_lab_connections
from tests.lab_state import cni_state

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", autouse=True)
def two_users():
    """SimpleAuthManager with a second user, set before the module's standalone starts."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,alice:admin")
        yield


def test_only_the_named_approver_can_approve(airflow, kkp_lab):
    user = kkp_lab.clusters[CLUSTER]
    before = cni_state(kkp_lab.lab, user)
    register_lab_connections(airflow.api, kkp_lab)
    alice = AirflowREST(airflow.api.base_url)
    alice.login("alice", json.loads((airflow.home / PASSWORD_FILE).read_text())["alice"])
    admin = airflow.api
    admin.unpause(DAG)
    run_id = admin.trigger(DAG, {"cluster_id": user.id, "access": "seed", "restart_machine_deployments": False,
                                 "approvers": ["alice"]})
    airflow.runs.append((DAG, run_id))

    refused, answered = [], []
    deadline = time.monotonic() + 240
    while (state := admin.run_state(DAG, run_id)) not in ("success", "failed"):
        airflow.check_running()
        assert time.monotonic() < deadline, f"run {run_id} still {state}"
        for request in admin.pending_approvals(DAG, run_id):
            if _age(request["created_at"]) < REACTION_SECONDS:
                continue
            task_id = request["task_instance"]["task_id"]
            assert request["assigned_users"] == [{"id": "alice", "name": "alice"}], request
            if task_id not in refused:
                with pytest.raises(AirflowRestError) as error:
                    admin.answer(DAG, run_id, task_id, request["options"][0], {})
                assert error.value.status == 403 and "not a respondent" in str(error.value)
                refused.append(task_id)
            alice.answer(DAG, run_id, task_id, request["options"][0], {})
            answered.append(task_id)
        time.sleep(0.5)

    assert state == "success"
    assert refused == answered and len(answered) == 3, answered
    report = admin.xcom(DAG, run_id, "report")
    assert [a["by"] for a in report["approvals"]] == ["alice"] * 3 and all(a["at"] for a in report["approvals"])
    after = cni_state(kkp_lab.lab, user)
    assert after.cluster_cni == "cilium" and after.cilium_ready and after.canal_objects == []
    assert set(after.unmanaged_pods) <= set(before.bare_pods) <= set(after.pod_names)
    assert after.pdb_violations == []
