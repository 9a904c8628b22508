"""MaintenanceWindowTimetable with fixed clocks, and Airflow loading it from plugins/."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = {"days": ["sun"], "start": "02:30", "duration": "3h", "timezone": "Europe/Berlin"}


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def plugin():
    """plugins/maintenance_windows.py imported as Airflow's plugin loader names it."""
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="kkp-airflow-unit-"))
    spec = importlib.util.spec_from_file_location("maintenance_windows", ROOT / "plugins" / "maintenance_windows.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def at(plugin, monkeypatch):
    """at(datetime): fix the timetable's clock."""
    def set_clock(now: datetime) -> None:
        monkeypatch.setattr(plugin, "_now", lambda: now)
    return set_clock


def restriction(earliest, catchup=True, latest=None):
    from airflow.timetables.base import TimeRestriction
    return TimeRestriction(earliest=earliest, latest=latest, catchup=catchup)


def test_first_run_is_the_next_opening_across_spring_forward(plugin, at):
    at(utc(2026, 3, 20))
    info = plugin.MaintenanceWindowTimetable(SPEC).next_dagrun_info(
        last_automated_data_interval=None, restriction=restriction(utc(2026, 3, 23)))
    assert info.run_after == utc(2026, 3, 29, 1, 30)  # 02:30 does not exist: 03:30 CEST
    assert (info.data_interval.start, info.data_interval.end) == (utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 4, 30))


def test_after_a_run_the_next_window_follows_across_fall_back(plugin, at):
    from airflow.timetables.base import DataInterval
    at(utc(2026, 10, 19))
    last = DataInterval(utc(2026, 10, 18, 0, 30), utc(2026, 10, 18, 3, 30))
    table = plugin.MaintenanceWindowTimetable(SPEC)
    info = table.next_dagrun_info(last_automated_data_interval=last, restriction=restriction(utc(2026, 1, 1)))
    assert info.data_interval == (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 3, 30))  # first 02:30, CEST
    after = table.next_dagrun_info(last_automated_data_interval=info.data_interval,
                                   restriction=restriction(utc(2026, 1, 1)))
    assert after.run_after == utc(2026, 11, 1, 1, 30)  # 02:30 CET


@pytest.mark.parametrize("catchup", [True, False])
def test_closed_windows_are_never_run_late(plugin, at, catchup):
    at(utc(2026, 3, 30, 12))  # the 2026-03-29 window has closed
    info = plugin.MaintenanceWindowTimetable(SPEC).next_dagrun_info(
        last_automated_data_interval=None, restriction=restriction(utc(2026, 3, 1), catchup=catchup))
    assert info.run_after == utc(2026, 4, 5, 0, 30)


def test_a_window_open_now_runs_now(plugin, at):
    at(utc(2026, 4, 5, 2))
    info = plugin.MaintenanceWindowTimetable(SPEC).next_dagrun_info(
        last_automated_data_interval=None, restriction=restriction(utc(2026, 3, 1), catchup=False))
    assert info.data_interval == (utc(2026, 4, 5, 0, 30), utc(2026, 4, 5, 3, 30))


def test_no_start_date_or_past_end_date_schedules_nothing(plugin, at):
    at(utc(2026, 4, 1))
    table = plugin.MaintenanceWindowTimetable(SPEC)
    assert table.next_dagrun_info(last_automated_data_interval=None, restriction=restriction(None)) is None
    assert table.next_dagrun_info(last_automated_data_interval=None,
                                  restriction=restriction(utc(2026, 3, 1), latest=utc(2026, 4, 4))) is None


def test_manual_run_gets_the_open_window_or_an_empty_interval(plugin):
    table = plugin.MaintenanceWindowTimetable(SPEC)
    assert table.infer_manual_data_interval(run_after=utc(2026, 4, 5, 1)) == (utc(2026, 4, 5, 0, 30),
                                                                              utc(2026, 4, 5, 3, 30))
    assert table.infer_manual_data_interval(run_after=utc(2026, 4, 6, 9)) == (utc(2026, 4, 6, 9), utc(2026, 4, 6, 9))


def test_serialize_round_trip_and_summary(plugin):
    table = plugin.MaintenanceWindowTimetable({**SPEC, "days": ["sat", "sun"], "start": "02:00"})
    assert table.summary == "Sat,Sun 02:00 Europe/Berlin for 3h"
    data = json.loads(json.dumps(table.serialize()))
    assert plugin.MaintenanceWindowTimetable.deserialize(data) == table


DAG_FILE = '''
from airflow.sdk import dag, task
import pendulum
from maintenance_windows import MaintenanceWindowTimetable

@dag(dag_id="windowed", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False,
     schedule=MaintenanceWindowTimetable({"days": ["sat", "sun"], "start": "02:00", "duration": "3h",
                                          "timezone": "Europe/Berlin"}))
def windowed():
    @task
    def noop():
        pass
    noop()

windowed()
'''

CHECK = '''
import json
from airflow import plugins_manager
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization

bag = DagBag(dag_folder=DAGS, safe_mode=False)
dag = bag.dags.get("windowed")
data = DagSerialization.to_dict(dag)
loaded = DagSerialization.from_dict(data)
print(json.dumps({
    "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
    "plugin_errors": plugins_manager._get_plugins()[1],
    "registered": sorted(plugins_manager.get_timetables_plugins()),
    "timetable": data["dag"]["timetable"],
    "summary": loaded.timetable.summary,
}))
'''


def test_airflow_loads_the_plugin_and_a_dag_using_it_serializes(tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "windowed.py").write_text(DAG_FILE)
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "home"), "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "include"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", f"DAGS = {str(dags)!r}\n" + textwrap.dedent(CHECK)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["import_errors"] == {} and result["plugin_errors"] == {}
    assert "maintenance_windows.MaintenanceWindowTimetable" in result["registered"]
    assert result["timetable"]["__type"] == "maintenance_windows.MaintenanceWindowTimetable"
    assert result["timetable"]["__var"] == {"window": {"days": ["sat", "sun"], "start": "02:00", "duration": "3h",
                                                       "timezone": "Europe/Berlin"}}
    assert result["summary"] == "Sat,Sun 02:00 Europe/Berlin for 3h"
