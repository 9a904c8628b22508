"""The fleet rollout on a real `airflow standalone`: six lab clusters in two waves, the canary
first; the pool's limit on clusters migrating at once, measured from the runs' own start and
end times; and a failed canary that keeps the next wave from touching its clusters.

Only the fleet's wave gates are answered (through the REST API, as the UI's button does): the
migration runs the fleet starts stand on the wave's approval, and must never ask on their own.
"""

from __future__ import annotations

import time
from datetime import datetime

import pytest
import yaml

from tests.dags.test_proxy_mode import add_cluster
from tests.e2e.migration_run import REACTION_SECONDS, _age, register_lab_connections
from tests.lab_state import cni_state

pytestmark = pytest.mark.e2e

FLEET = "kkp_fleet_rollout"
MIGRATIONS = ("kkp_cni_canal_to_cilium", "kkp_cni_cilium_to_canal", "kkp_proxy_mode")
POOL, LIMIT = "kkp_migrations", 2
ALWAYS_OPEN = {"cron": "0 0 * * *", "duration": "1d", "timezone": "UTC"}
TO_CILIUM = {"type": "canal_to_cilium", "cilium_version": "1.19.4", "restart_machine_deployments": False}
FLEET_TIMEOUT = 600


def write_plan(path, waves: list[list[tuple]]) -> str:
    """waves: [[(user cluster, migration), ...], ...] -> the plan file, every cluster always in its window."""
    clusters = [{"id": user.id, "name": user.spec.name, "project": user.project_id, "access": "seed",
                 "wave": number, "window": "always", "migration": migration}
                for number, wave in enumerate(waves) for user, migration in wave]
    path.write_text(yaml.safe_dump({"windows": {"always": ALWAYS_OPEN}, "clusters": clusters}))
    return str(path)


def run_fleet(airflow, plan_path: str) -> tuple[str, str, list[str]]:
    """Trigger the fleet, approve each wave gate a moment after it asks, wait for the end.
    Returns (run id, state, the wave gates answered in order); fails if a migration run asks."""
    api = airflow.api
    api.put_pool(POOL, LIMIT)
    for dag_id in (FLEET, *MIGRATIONS):
        api.unpause(dag_id)
    run_id = api.trigger(FLEET, {"plan_path": plan_path})
    airflow.runs.append((FLEET, run_id))
    answered: list[str] = []
    deadline = time.monotonic() + FLEET_TIMEOUT
    while (state := api.run_state(FLEET, run_id)) not in ("success", "failed"):
        airflow.check_running()
        assert time.monotonic() < deadline, f"fleet run {run_id} still {state} after {FLEET_TIMEOUT} s"
        for request in api.pending_approvals(FLEET, run_id):
            if _age(request["created_at"]) >= REACTION_SECONDS:
                task_id = request["task_instance"]["task_id"]
                api.answer(FLEET, run_id, task_id, request["options"][0], {})
                answered.append(task_id)
        for dag_id in MIGRATIONS:
            for child in api.dag_runs(dag_id):
                assert not api.pending_approvals(dag_id, child["dag_run_id"]), \
                    f"{child['dag_run_id']} asked for an approval the fleet's wave had given"
        time.sleep(1)
    return run_id, state, answered


def children(api, fleet_run_id: str) -> dict[str, dict]:
    """cluster id -> the migration run this fleet run started for it."""
    return {run["dag_run_id"].split("__")[1]: {**run, "dag_id": dag_id}
            for dag_id in MIGRATIONS for run in api.dag_runs(dag_id)
            if run["dag_run_id"].endswith("__" + fleet_run_id)}


def most_at_once(runs: list[dict]) -> int:
    """The largest number of runs whose [start, end] intervals overlap."""
    edges = sorted([(datetime.fromisoformat(r["start_date"]), 1) for r in runs] +
                   [(datetime.fromisoformat(r["end_date"]), -1) for r in runs], key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def cluster_resource_version(kkp_lab, user) -> str:
    store = kkp_lab.lab.seed.store
    return kkp_lab.lab.call(lambda: store.get(store.rtype("kubermatic.k8c.io", "clusters"), None, user.id)
                            ["metadata"]["resourceVersion"])


def test_six_clusters_in_two_waves_within_the_limit(airflow, kkp_lab, tmp_path):
    c = kkp_lab.clusters
    extra = [add_cluster(kkp_lab, f"fleet-{n}", "canal", "v3.31", "iptables") for n in "abc"]
    canary = c["webshop-canal-iptables"]
    wave_1 = [(c["payments-canal-ipvs"], {**TO_CILIUM, "proxy_mode_after": "iptables"}),
              (c["analytics-cilium-ebpf"], {"type": "proxy_mode", "proxy_mode": "iptables",
                                            "restart_machine_deployments": False}),
              *((user, TO_CILIUM) for user in extra)]
    before = {user.id: cni_state(kkp_lab.lab, user) for user, _ in [(canary, None), *wave_1]}
    register_lab_connections(airflow.api, kkp_lab)

    run_id, state, answered = run_fleet(airflow, write_plan(tmp_path / "plan.yaml", [[(canary, TO_CILIUM)], wave_1]))

    api = airflow.api
    assert answered == ["wave_0.approve_wave", "wave_1.approve_wave"]
    assert state == "success", api.task_states(FLEET, run_id)
    runs = children(api, run_id)
    assert set(runs) == set(before) and all(r["state"] == "success" for r in runs.values()), runs
    canary_run = runs.pop(canary.id)
    assert all(r["start_date"] > canary_run["end_date"] for r in runs.values()), "wave 1 started before the canary ended"
    peak = most_at_once(list(runs.values()))
    print(f"wave 1: {len(runs)} clusters, at most {peak} migrating at once (pool {POOL}: {LIMIT} slots)")
    assert peak == LIMIT
    for user, _ in [(canary, None), *wave_1]:
        run = runs.get(user.id, canary_run)
        report = api.xcom(run["dag_id"], run["dag_run_id"], "report")
        assert report["outcome"] == "completed and verified", report
        assert report["approvals"] and all(a["by"].startswith("admin (fleet wave") for a in report["approvals"])
        after = cni_state(kkp_lab.lab, user)
        assert after.cluster_cni == "cilium" and after.cilium_ready
        # the wave's approval keeps the pod restart's default: pods without a controller are left alone
        assert set(after.unmanaged_pods) <= set(before[user.id].bare_pods)
        assert set(before[user.id].bare_pods) <= set(after.pod_names), "a pod without a controller was lost"
        assert after.proxy_mode == "iptables"
        assert after.workloads() == before[user.id].workloads() and after.pdb_violations == []
    summary = api.xcom(FLEET, run_id, "summary")
    assert set(summary["clusters"].values()) == {"done"} and len(summary["clusters"]) == 6


def test_a_failed_canary_stops_the_next_wave(airflow, kkp_lab, tmp_path):
    c = kkp_lab.clusters
    canary, later = c["webshop-canal-iptables"], [c["payments-canal-ipvs"], c["analytics-cilium-ebpf"]]
    kkp_lab.lab.call(lambda: canary.api.faults.update(error_rate=1.0, error_codes=(403,)))
    untouched = {user.id: cluster_resource_version(kkp_lab, user) for user in later}
    register_lab_connections(airflow.api, kkp_lab)
    plan = write_plan(tmp_path / "plan.yaml", [[(canary, TO_CILIUM)], [(later[0], TO_CILIUM), (
        later[1], {"type": "proxy_mode", "proxy_mode": "iptables", "restart_machine_deployments": False})]])

    run_id, state, answered = run_fleet(airflow, plan)

    api = airflow.api
    assert state == "failed" and answered == ["wave_0.approve_wave"]
    states = api.task_states(FLEET, run_id)
    assert states["wave_1.approve_wave"] == "upstream_failed" and states["summary"] == "failed", states
    assert set(children(api, run_id)) == {canary.id}
    summary = api.xcom(FLEET, run_id, "summary", key="report")
    assert summary["clusters"] == {canary.id: "failed", later[0].id: "not started", later[1].id: "not started"}
    print(summary["markdown"])
    assert {user.id: cluster_resource_version(kkp_lab, user) for user in later} == untouched


def test_a_scheduled_cluster_shows_its_next_window_as_the_next_run(airflow):
    from kkp_migration.fleetplan import load_plan

    entry = next(e for e in load_plan().entries if e.scheduled)      # the example plan's canary
    dag = airflow.api.dag(f"kkp_scheduled_{entry.cluster_id}")

    assert dag["timetable_description"] == f"In the maintenance window {entry.window.summary}"
    start = datetime.fromisoformat(dag["next_dagrun_data_interval_start"])
    end = datetime.fromisoformat(dag["next_dagrun_data_interval_end"])
    assert entry.window.current(start) is not None and entry.window.current(start).start == start
    assert end - start == entry.window.duration and end > datetime.now(start.tzinfo)
    assert datetime.fromisoformat(dag["next_dagrun_run_after"]) == start
