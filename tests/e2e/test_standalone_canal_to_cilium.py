"""Canal -> Cilium the way users run it: a real `airflow standalone` against the lab.

The connections are created and the run triggered (with conf) through the REST API, every approval
gate is answered through the REST API's human-in-the-loop endpoint (ticking "include pods without
a controller" at the pod restart), the waits must defer to the triggerer, and the lab must end up
migrated with nothing lost.
"""

from __future__ import annotations

import pytest

from tests.e2e.migration_run import (CLUSTER, DAG, GATES, assert_migrated, deferral_evidence,
                                     register_lab_connections, run_answering_gates)
from tests.lab_state import cni_state

pytestmark = pytest.mark.e2e

SENSORS = ["step_1_2_switch_cni.wait_cilium_ready", "step_3_restart_pods.wait_pods_managed_by_cilium"]


def migrate_and_check(airflow, kkp_lab, conf: dict) -> None:
    user = kkp_lab.clusters[CLUSTER]
    before = cni_state(kkp_lab.lab, user)
    assert before.cluster_cni == "canal" and before.bare_pods and not before.cilium_ready
    register_lab_connections(airflow.api, kkp_lab)

    run_id, state, answers = run_answering_gates(airflow, {"cluster_id": user.id, **conf})

    api = airflow.api
    assert state == "success"
    tis = {ti["task_id"]: ti for ti in api.task_instances(DAG, run_id)}
    retried = {t: ti["try_number"] for t, ti in tis.items() if ti["try_number"] > 1}
    assert not retried, f"tasks needed a retry: {retried}"
    assert [a["task_id"] for a in answers] == GATES
    assert all(a["responded_by"]["name"] == "admin" for a in answers), answers
    assert answers[1]["params_input"] == {"include_without_controller": True}
    for sensor in SENSORS:
        assert tis[sensor]["state"] == "success"
        assert deferral_evidence(api, run_id, sensor) == (True, True), f"{sensor} did not wait in the triggerer"
    report = api.xcom(DAG, run_id, "report")
    assert report["outcome"] == "completed and verified", report
    assert_migrated(kkp_lab, user, before)


def test_migrates_through_the_seed(airflow, kkp_lab):
    migrate_and_check(airflow, kkp_lab, {"access": "seed", "restart_machine_deployments": False})


def test_migrates_through_the_kkp_api(airflow, kkp_lab):
    user = kkp_lab.clusters[CLUSTER]
    migrate_and_check(airflow, kkp_lab, {"access": "api", "project_id": user.project_id,
                                         "restart_machine_deployments": False})
