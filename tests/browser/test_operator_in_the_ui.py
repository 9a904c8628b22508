"""Canal -> Cilium the way an operator does it: in Airflow's web UI, in headless Chromium.

Sign in, fill the DAG's trigger form for a lab cluster, open each pending approval from Browse ->
Required Actions, read it, click the option that goes on (ticking "include pods without a
controller" at the pod restart), watch the run page until it says Success and open the run's
Migration report tab. Screenshots of the filled form, the pod-restart approval and the finished
run with its report are saved to .artifacts/browser/. Afterwards the run is checked through the
REST API and the lab like the e2e tier checks it.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By

from scripts import airflow_home
from tests.browser.airflow_ui import AirflowUI
from tests.e2e.migration_run import CLUSTER, DAG, RUN_TIMEOUT, assert_migrated, register_lab_connections
from tests.lab_state import cni_state

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

RESTART_GATE = "step_3_restart_pods.approve_pod_restart"
# Each gate's option that goes on, named for what it does.
PROCEED = {"step_1_2_switch_cni.approve_switch": r"Switch to Cilium 1\.\d+\.\d+",
           RESTART_GATE: r"Restart \d+ pods?",
           "step_4_remove_canal.approve_canal_removal": r"Delete \d+ Canal objects?"}
# An operator reads a request before answering. Airflow 3.3.2's worker may report a parked gate's exit
# up to [workers] min_heartbeat_interval after the request appears (1 s: scripts/airflow_home.stack_env);
# an answer the scheduler sees before that exit makes it fail the gate and ask again after a retry delay.
READING_SECONDS = 3.0


def admin_password(home) -> str:
    return json.loads((home / airflow_home.PASSWORD_FILE).read_text())["admin"]


def trigger_through_the_form(ui: AirflowUI, cluster_id: str) -> None:
    """The form with what an operator types for a lab cluster: its id, and no machine roll (step 6)."""
    form = ui.open_trigger_form(DAG)
    ui.field(form, "cluster_id").send_keys(cluster_id)
    ui.set_switch(form, "restart_machine_deployments", False)
    ui.screenshot("1-trigger-form")
    ui.submit_trigger(form)


def approve_in_the_ui(airflow, ui: AirflowUI, run_id: str) -> list[tuple[str, str]]:
    """Answer every request of the run from Required Actions until the run ends, each once it is
    READING_SECONDS old (the pod-restart request is photographed). Returns [(task id, option clicked)]."""
    answered = []
    deadline = time.monotonic() + RUN_TIMEOUT
    while airflow.api.run_state(DAG, run_id) not in ("success", "failed"):
        airflow.check_running()
        assert time.monotonic() < deadline, f"run {run_id} did not end within {RUN_TIMEOUT} s"
        pending = ui.pending_request(min_age=READING_SECONDS)
        if pending is None:
            time.sleep(0.5)
            continue
        task_id, link = pending
        proceed, *others = ui.open_request(link)
        assert re.fullmatch(PROCEED[task_id], proceed.text), f"{task_id} offers {proceed.text!r}"
        assert [o.text for o in others] == ["Stop here"], f"{task_id} offers {[o.text for o in others]}"
        if task_id == RESTART_GATE:
            ui.set_switch(ui.driver, "include_without_controller", True)
            headers = [th.text.lower() for th in ui.request_body().find_elements(By.CSS_SELECTOR, "table th")]
            assert ["namespace", "pods to restart"] == headers[:2], f"no per-namespace table: {headers}"
            ui.screenshot("2-approval-request")
        answered.append((task_id, proceed.text))
        ui.choose(proceed)
    return answered


def test_an_operator_migrates_a_cluster_in_the_ui(airflow, kkp_lab, browser, artifacts):
    api = airflow.api
    user = kkp_lab.clusters[CLUSTER]
    before = cni_state(kkp_lab.lab, user)
    register_lab_connections(api, kkp_lab)
    ui = AirflowUI(browser, api.base_url, artifacts)
    ui.log_in("admin", admin_password(airflow.home))

    trigger_through_the_form(ui, user.id)
    run_id = airflow.wait_until("the run the form triggered",
                                lambda: next((r["dag_run_id"] for r in api.dag_runs(DAG)), None), 30)
    airflow.runs.append((DAG, run_id))
    answered = approve_in_the_ui(airflow, ui, run_id)
    ui.wait_for_run_state(DAG, run_id, "success", 30)
    report_text = ui.open_run_tab("Migration report")
    ui.screenshot("3-finished-run")

    assert [task for task, _ in answered] == list(PROCEED), answered
    assert sorted(p.name for p in artifacts.glob("*.png")) == [
        "1-trigger-form.png", "2-approval-request.png", "3-finished-run.png"]
    run = api.call("GET", f"/api/v2/dags/{DAG}/dagRuns/{quote(run_id)}")
    assert (run["conf"]["cluster_id"], run["conf"]["access"], run["conf"]["restart_machine_deployments"]) == \
        (user.id, "seed", False)
    retried = {ti["task_id"]: ti["try_number"] for ti in api.task_instances(DAG, run_id) if ti["try_number"] > 1}
    assert not retried, f"tasks needed a retry: {retried}"
    report = api.xcom(DAG, run_id, "report")
    assert report["outcome"] == "completed and verified", report
    assert [(a["gate"], a["answer"], a["by"]) for a in report["approvals"]] == \
        [(task, option, "admin") for task, option in answered]
    assert next(a for a in report["approvals"] if a["gate"] == RESTART_GATE)["params"] == \
        {"include_without_controller": True}
    assert "completed and verified" in report_text and all(option in report_text for _, option in answered), \
        f"the Migration report tab shows:\n{report_text}"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{api.base_url}/kkp-report/{DAG}/{quote(run_id)}", timeout=10)
    assert refused.value.code in (401, 403), "the report page must need a signed-in user"
    assert_migrated(kkp_lab, user, before)
