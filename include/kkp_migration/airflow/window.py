"""The maintenance-window check in front of the run and of every destructive step.

A run's `maintenance_window` param (the fleet plan passes the cluster's window; empty means
"whenever approved") is checked three times: by the run's first task, so a run started outside
its window changes nothing, not even the cluster's lock; by each approval gate once answered, so a
late approval does not act after the window closed; and by each destructive step as it starts
(a retry or a clear outside the window). `outside_window` decides what a closed window means:
`wait` defers (no worker slot) until the next window opens, `stop` fails with the sentence that
says when it opens. A step already running is never interrupted.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import BaseOperator

from ..errors import BadInput, Refused
from ..windows import WindowVerdict, verdict, window_from_param
from .outcomes import fail

POLICIES = ("wait", "stop")


def check(params: dict, what: str, at: datetime | None = None) -> WindowVerdict:
    """The verdict for `what` under the run's window (BadInput for a malformed window)."""
    window = window_from_param(params.get("maintenance_window"), params.get("cluster_id") or "?")
    return verdict(window, at or datetime.now(timezone.utc), params.get("cluster_id") or "?", what)


def guard(params: dict, what: str) -> None:
    """For a destructive step as it starts: refuse when the window is closed (never waits here)."""
    result = check(params, what)
    if not result.open:
        raise Refused(f"{result.message} Clear this task inside that window.")


class WindowHold:
    """Mixin for an operator that must not go on outside the run's window: `hold` returns when
    the window is open, defers until it opens (outside_window=wait) or fails (stop)."""

    def hold(self, context, what: str, resume: str, kwargs: dict[str, Any] | None = None) -> WindowVerdict:
        params = context["params"]
        try:
            result = check(params, what)
        except BadInput as exc:
            fail(context["ti"], str(exc))
        if result.open:
            return result
        if params.get("outside_window", "wait") == "stop":
            fail(context["ti"], f"{result.message} The run stops (outside_window=stop); trigger it again inside "
                                "a window.")
        self.log.warning("%s Waiting for it (outside_window=wait).", result.message)
        self.defer(trigger=DateTimeTrigger(moment=result.next_opening), method_name=resume, kwargs=kwargs)


class MaintenanceWindowSensor(WindowHold, BaseOperator):
    """The run's first task: nothing, not even the lock, is taken outside the window."""

    ui_color = "#dde8f7"

    def __init__(self, *, what: str = "the migration", **kwargs):
        super().__init__(**kwargs)
        self.what = what

    def execute(self, context, event: Any = None) -> dict:
        result = self.hold(context, self.what, "execute")
        closes = result.closes_at.isoformat() if result.closes_at else None
        self.log.info("Inside the maintenance window%s.", f" until {closes}" if closes else " (none set)")
        return {"closes_at": closes}
