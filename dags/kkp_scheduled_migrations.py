"""Scheduled migrations: one DAG per cluster the fleet plan marks `scheduled: true`, started by
Airflow as the cluster's maintenance window opens (its next window is the DAG's next run).

The plan is read when this file is parsed (dynamic DAGs from one config file, as Airflow's docs
describe), so the UI shows each window; a plan with problems shows them as this file's import
error. New DAGs are paused: unpausing one arms that cluster's migration for its next window.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import dag
from maintenance_windows import MaintenanceWindowTimetable

from kkp_migration.airflow import fleet
from kkp_migration.fleetplan import load_plan


def scheduled_migration(entry):
    @dag(
        dag_id=f"kkp_scheduled_{entry.cluster_id}",
        schedule=MaintenanceWindowTimetable(entry.window),
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        max_active_runs=1,
        doc_md=f"""
# Scheduled: `{entry.dag_id}` for cluster `{entry.cluster_id}` {entry.name}

Starts when the cluster's maintenance window opens ({entry.window.summary}), with the conf of
its fleet plan entry. Each step still waits for its approval and acts only inside the window.
""",
        tags=["kkp", "cni-migration", "scheduled"],
        default_args={"owner": "platform", "retries": 0, "retry_delay": timedelta(seconds=20)},
    )
    def scheduled():
        fleet.migrate_in_window(entry)
    return scheduled()


for _entry in load_plan().entries:
    if _entry.scheduled:
        scheduled_migration(_entry)
