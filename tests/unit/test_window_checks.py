"""The window check a run makes before it starts and before each destructive step: the verdict
(plain Python) and what the Airflow side does with it (proceed, defer to the next opening, stop)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kkp_migration.errors import BadInput
from kkp_migration.windows import verdict, window_from_param

SATURDAY_NIGHTS = {"days": ["sat"], "start": "02:00", "duration": "3h", "timezone": "Europe/Berlin"}
WEDNESDAY = datetime(2026, 11, 25, 17, 0, tzinfo=timezone.utc)
SATURDAY_0230_CET = datetime(2026, 11, 28, 1, 30, tzinfo=timezone.utc)


def test_no_window_means_whenever_approved():
    assert window_from_param(None, "abcde12345") is None
    assert verdict(None, WEDNESDAY, "abcde12345", "the pod restart").open


def test_inside_the_window_says_when_it_closes():
    result = verdict(window_from_param(SATURDAY_NIGHTS, "abcde12345"), SATURDAY_0230_CET, "abcde12345", "x")
    assert result.open and result.closes_at == datetime(2026, 11, 28, 4, 0, tzinfo=timezone.utc)


def test_outside_the_window_names_the_cluster_the_step_and_the_next_opening():
    result = verdict(window_from_param(SATURDAY_NIGHTS, "abcde12345"), WEDNESDAY, "abcde12345", "the pod restart")
    assert not result.open
    assert result.next_opening == datetime(2026, 11, 28, 1, 0, tzinfo=timezone.utc)
    assert result.message == ("Cluster abcde12345: the pod restart does not start, its maintenance window (Sat 02:00 "
                              "Europe/Berlin for 3h) is closed at 2026-11-25 17:00 UTC; the next one opens "
                              "2026-11-28 02:00 CET.")


def test_a_malformed_window_is_bad_input_naming_the_cluster_and_the_fix():
    with pytest.raises(BadInput, match=r"^Cluster abcde12345: maintenance_window timezone 'Berlin' is not an IANA"):
        window_from_param({**SATURDAY_NIGHTS, "timezone": "Berlin"}, "abcde12345")


class RecordingTI:
    """The one TaskInstance call the check makes: pushing the error the run's report shows."""

    def __init__(self):
        self.pushed: dict = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


def closed_window_context(policy: str) -> dict:
    return {"params": {"cluster_id": "abcde12345", "maintenance_window": SATURDAY_NIGHTS, "outside_window": policy},
            "ti": RecordingTI()}


def test_outside_the_window_the_run_defers_until_the_next_opening(monkeypatch):
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger
    from airflow.sdk.exceptions import TaskDeferred

    from kkp_migration.airflow import window
    from kkp_migration.airflow.window import MaintenanceWindowSensor

    real_check = window.check
    monkeypatch.setattr(window, "check", lambda params, what, at=None: real_check(params, what, WEDNESDAY))
    with pytest.raises(TaskDeferred) as deferred:
        MaintenanceWindowSensor(task_id="maintenance_window").execute(closed_window_context("wait"))

    assert isinstance(deferred.value.trigger, DateTimeTrigger)
    assert deferred.value.trigger.moment == datetime(2026, 11, 28, 1, 0, tzinfo=timezone.utc)
    assert deferred.value.method_name == "execute"


def test_outside_the_window_with_stop_the_run_fails_with_the_sentence(monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from kkp_migration.airflow import window
    from kkp_migration.airflow.window import MaintenanceWindowSensor

    real_check = window.check
    monkeypatch.setattr(window, "check", lambda params, what, at=None: real_check(params, what, WEDNESDAY))
    context = closed_window_context("stop")
    with pytest.raises(AirflowFailException, match="the migration does not start, its maintenance window"):
        MaintenanceWindowSensor(task_id="maintenance_window").execute(context)
    assert "outside_window=stop" in context["ti"].pushed["error"]


def test_a_destructive_step_refuses_outside_the_window(monkeypatch):
    from kkp_migration.airflow import window
    from kkp_migration.errors import Refused

    real_check = window.check
    monkeypatch.setattr(window, "check", lambda params, what, at=None: real_check(params, what, WEDNESDAY))
    with pytest.raises(Refused, match=r"the machine restart does not start.*Clear this task inside that window\.$"):
        window.guard(closed_window_context("wait")["params"], "the machine restart")
