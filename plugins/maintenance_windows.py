"""A timetable that starts scheduled runs only when a cluster's maintenance window opens.

Use in a DAG file (the plugins folder is on sys.path):

    from maintenance_windows import MaintenanceWindowTimetable
    schedule=MaintenanceWindowTimetable({"days": ["sat", "sun"], "start": "02:00",
                                         "duration": "3h", "timezone": "Europe/Berlin"})

Each scheduled run starts at a window's opening; its data interval is the window (start..end),
so a task can tell how long it has left. A window that has closed is never run late, whatever
`catchup` says (running it now would run it outside its window): a migration that missed its
window waits for the next one; a window open now is run now. A manual run gets
the window open when it was triggered as its data interval, or an empty interval at the trigger
time when no window was open (the destructive steps' own window check decides what that means).
The window arithmetic, daylight-saving rules included, is kkp_migration.windows; this is the
Airflow adapter. Registered by the AirflowPlugin below so serialized DAGs can name it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import pendulum

from airflow.plugins_manager import AirflowPlugin
from airflow.timetables.base import DagRunInfo, DataInterval, Timetable, TimeRestriction
from kkp_migration.windows import MaintenanceWindow, Opening


def _now() -> datetime:
    """The scheduler's clock (a seam for tests with fixed clocks)."""
    return datetime.now(timezone.utc)


def _utc(at: datetime) -> pendulum.DateTime:
    return pendulum.instance(at.astimezone(timezone.utc))


def _interval(opening: Opening) -> DataInterval:
    return DataInterval(_utc(opening.start), _utc(opening.end))


class MaintenanceWindowTimetable(Timetable):
    """Runs at each opening of one maintenance window; data interval = the window."""

    periodic = True

    def __init__(self, window: Mapping[str, Any] | MaintenanceWindow):
        self.window = window if isinstance(window, MaintenanceWindow) else MaintenanceWindow.from_spec(window)
        self.description = f"In the maintenance window {self.window.summary}"

    @property
    def summary(self) -> str:
        return self.window.summary

    def serialize(self) -> dict[str, Any]:
        return {"window": self.window.to_spec()}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> "MaintenanceWindowTimetable":
        return cls(data["window"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MaintenanceWindowTimetable) and self.window == other.window

    def __hash__(self) -> int:
        return hash(self.window)

    def infer_manual_data_interval(self, *, run_after: datetime) -> DataInterval:
        opening = self.window.current(run_after)
        return _interval(opening) if opening else DataInterval.exact(_utc(run_after))

    def next_dagrun_info(self, *, last_automated_data_interval: DataInterval | None,
                         restriction: TimeRestriction) -> DagRunInfo | None:
        if last_automated_data_interval is not None:
            since = last_automated_data_interval.start + timedelta(microseconds=1)
        elif restriction.earliest is None:
            return None  # no start_date: nothing is scheduled
        else:
            since = restriction.earliest
        now = _now()
        # Only windows still open or to come: any of them opened after now - duration.
        since = max(since, now - self.window.duration)
        candidate = next(o for o in self.window.openings(since) if o.end > now)
        if restriction.latest is not None and candidate.start > restriction.latest:
            return None
        interval = _interval(candidate)
        return DagRunInfo(run_after=interval.start, data_interval=interval)


class MaintenanceWindowsPlugin(AirflowPlugin):
    name = "kkp_maintenance_windows"
    timetables = [MaintenanceWindowTimetable]
