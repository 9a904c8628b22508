"""Scheduled migrations: each cluster the plan marks `scheduled: true` gets a DAG whose next run
is its next maintenance window; a plan with problems shows them as the file's import error."""

from __future__ import annotations

from datetime import datetime, timezone

import yaml

from tests.airflow_support import dag_bag

WINDOW = {"days": ["sun"], "start": "02:30", "duration": "3h", "timezone": "Europe/Berlin"}


def plan(*entries) -> dict:
    return {"clusters": [{"id": cluster_id, "wave": 0, "window": WINDOW, "scheduled": scheduled,
                          "migration": {"type": "canal_to_cilium", "cilium_version": "1.19.4"}}
                         for cluster_id, scheduled in entries]}


def test_a_scheduled_cluster_runs_its_migration_when_its_window_opens(tmp_path, monkeypatch):
    from airflow.timetables.base import TimeRestriction

    path = tmp_path / "clusters.yaml"
    path.write_text(yaml.safe_dump(plan(("sched00001", True), ("manual0001", False))))
    monkeypatch.setenv("KKP_FLEET_PLAN", str(path))

    bag = dag_bag()
    scheduled = sorted(d for d in bag.dags if d.startswith("kkp_scheduled_"))
    assert scheduled == ["kkp_scheduled_sched00001"], scheduled
    dag = bag.dags["kkp_scheduled_sched00001"]
    assert type(dag.timetable).__name__ == "MaintenanceWindowTimetable"
    assert dag.timetable.description == "In the maintenance window Sun 02:30 Europe/Berlin for 3h"
    info = dag.timetable.next_dagrun_info(last_automated_data_interval=None, restriction=TimeRestriction(
        earliest=dag.start_date, latest=None, catchup=False))
    start = info.data_interval.start.astimezone(dag.timetable.window.zone)
    assert (start.strftime("%a %H:%M"), info.run_after) == ("Sun 02:30", info.data_interval.start)
    assert info.data_interval.end - info.data_interval.start == dag.timetable.window.duration
    assert info.data_interval.end > datetime.now(timezone.utc)
    migrate = dag.get_task("migrate")
    assert migrate.trigger_dag_id == "kkp_cni_canal_to_cilium" and migrate.pool == "kkp_migrations"
    assert migrate.conf["maintenance_window"] == WINDOW and "fleet_approval" not in migrate.conf


def test_a_plan_with_problems_is_the_files_import_error(tmp_path, monkeypatch):
    path = tmp_path / "clusters.yaml"
    path.write_text(yaml.safe_dump(plan(("Not-An-Id", True))))
    monkeypatch.setenv("KKP_FLEET_PLAN", str(path))

    errors = {k.rsplit("/", 1)[-1]: v for k, v in dag_bag().import_errors.items()}
    assert list(errors) == ["kkp_scheduled_migrations.py"]
    assert "id 'Not-An-Id' is not a KKP cluster ID" in errors["kkp_scheduled_migrations.py"]
