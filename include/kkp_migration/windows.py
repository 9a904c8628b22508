"""Maintenance windows: when a cluster may be changed, read from the fleet plan.

Two forms, both in a named time zone:
- weekly: `{days: [sat, sun], start: "02:00", duration: 3h, timezone: Europe/Berlin}`
- cron:   `{cron: "0 2 * * 6", duration: 3h, timezone: Europe/Berlin}` (five fields, local time)

Openings are wall-clock times in the window's zone; the duration is elapsed time. Daylight-saving
rules (the ones Airflow's cron timetables follow, via zoneinfo's fold=0):
- an opening that does not exist locally (spring forward, 02:30 on 2026-03-29 in Berlin) moves
  forward by the gap: it opens at 03:30 local, the same instant as "02:30 CET";
- an opening that exists twice (fall back, 02:30 on 2026-10-25 in Berlin) opens once, at the
  first occurrence (02:30 CEST);
- a window lasts its duration in real time, so a 3h window over a fall-back night ends an hour
  earlier on the wall clock;
- an opening that, after moving forward, is not later than the opening before it is dropped,
  so openings strictly increase.
Windows that overlap (duration longer than the gap between openings) are not merged: the window
in force is the one opened last. Plain Python (zoneinfo, croniter): no Airflow import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Mapping, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from .errors import BadInput

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CRON_DAY = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_DAY_NAMES = {**{d: d for d in DAYS}, **{full: full[:3] for full in (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")}}
_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")
_START_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_MAX_DURATION = timedelta(days=7)
# Local openings can reorder by at most a DST gap; start scanning this much earlier.
_SCAN_MARGIN = timedelta(days=1)

WEEKLY_KEYS = frozenset({"days", "start", "duration", "timezone"})
CRON_KEYS = frozenset({"cron", "duration", "timezone"})


class WindowError(ValueError):
    """A window spec that cannot be used; the message says which field and how to fix it."""


class Opening(NamedTuple):
    """One occurrence of a window, in UTC (show it with .astimezone(window.zone)); end exclusive."""

    start: datetime
    end: datetime


def parse_duration(text: Any) -> timedelta:
    """`3h`, `90m`, `1h30m`, `2d`: a positive duration of at most 7 days."""
    match = _DURATION_RE.match(str(text).strip()) if isinstance(text, str) else None
    if not match or not any(match.groups()):
        raise WindowError(f"duration {text!r} is not a duration; write it like 3h, 90m or 1h30m.")
    days, hours, minutes = (int(g or 0) for g in match.groups())
    value = timedelta(days=days, hours=hours, minutes=minutes)
    if not timedelta(0) < value <= _MAX_DURATION:
        raise WindowError(f"duration {text!r} must be more than 0 and at most 7 days.")
    return value


def format_duration(value: timedelta) -> str:
    """The shortest spelling parse_duration reads back: 3h, 1h30m, 2d."""
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n) or "0m"


def _zone(name: Any) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise WindowError("timezone is missing; name an IANA zone such as Europe/Berlin or UTC.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise WindowError(f"timezone {name!r} is not an IANA time zone; use a name such as Europe/Berlin.") from None


def _aware(at: datetime, what: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise WindowError(f"{what} must be timezone-aware, got naive {at.isoformat()}.")
    return at


@dataclass(frozen=True)
class MaintenanceWindow:
    """A recurring window: local openings from a cron expression, each lasting `duration`.

    The weekly form is kept as given (`days`, `start`) for its summary and spec, and runs on the
    cron expression it amounts to.
    """

    cron: str
    duration: timedelta
    timezone: str
    days: tuple[str, ...] = ()
    start: str = ""

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> "MaintenanceWindow":
        """Parse a window from the plan; raises WindowError naming the field and the fix."""
        if not isinstance(spec, Mapping):
            raise WindowError(f"a window is a mapping (days/start/duration/timezone or cron/duration/timezone), "
                              f"got {spec!r}.")
        weekly = "days" in spec or "start" in spec
        if weekly and "cron" in spec:
            raise WindowError("a window has either days+start or cron, not both; keep one.")
        if not weekly and "cron" not in spec:
            raise WindowError("a window needs days+start (weekly) or cron; add one of them.")
        allowed = WEEKLY_KEYS if weekly else CRON_KEYS
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise WindowError(f"unknown window key(s) {', '.join(map(str, unknown))}; a "
                              f"{'weekly' if weekly else 'cron'} window takes {', '.join(sorted(allowed))}.")
        missing = sorted(allowed - set(spec))
        if missing:
            raise WindowError(f"window is missing {', '.join(missing)}.")
        zone_name = str(spec["timezone"])
        _zone(spec["timezone"])
        duration = parse_duration(spec["duration"])
        if not weekly:
            return cls(cron=_check_cron(spec["cron"]), duration=duration, timezone=zone_name)
        days = _check_days(spec["days"])
        hour, minute = _check_start(spec["start"])
        cron = f"{minute} {hour} * * {','.join(str(_CRON_DAY[d]) for d in days)}"
        return cls(cron=cron, duration=duration, timezone=zone_name, days=days, start=f"{hour:02d}:{minute:02d}")

    def to_spec(self) -> dict[str, Any]:
        """The plan's spelling of this window; from_spec(to_spec()) gives it back."""
        head = {"days": list(self.days), "start": self.start} if self.days else {"cron": self.cron}
        return {**head, "duration": format_duration(self.duration), "timezone": self.timezone}

    @property
    def summary(self) -> str:
        """One line for people: `Sat,Sun 02:00 Europe/Berlin for 3h`."""
        when = (f"{','.join(d.capitalize() for d in self.days)} {self.start}" if self.days
                else f"cron '{self.cron}'")
        return f"{when} {self.timezone} for {format_duration(self.duration)}"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def openings(self, since: datetime) -> Iterator[Opening]:
        """Every window that opens at or after `since`, in order (endless)."""
        _aware(since, "since")
        for opening in self._scan(since - _SCAN_MARGIN):
            if opening.start >= since:
                yield opening

    def current(self, at: datetime) -> Opening | None:
        """The window open at `at`, or None when `at` is outside every window."""
        _aware(at, "at")
        found = None
        for opening in self._scan(at - self.duration - _SCAN_MARGIN):
            if opening.start > at:
                break
            found = opening
        return found if found is not None and at < found.end else None

    def is_open(self, at: datetime) -> bool:
        """Whether a change may be made at `at`."""
        return self.current(at) is not None

    def closes_at(self, at: datetime) -> datetime | None:
        """When the window open at `at` closes; None when it is closed at `at`."""
        opening = self.current(at)
        return opening.end if opening else None

    def next_opening(self, after: datetime) -> Opening:
        """The first window that opens strictly after `after`."""
        _aware(after, "after")
        return next(o for o in self.openings(after) if o.start > after)

    def _scan(self, since: datetime) -> Iterator[Opening]:
        """Openings from local wall-clock `since` on, with the DST rules of the module docstring."""
        zone = self.zone
        local_naive = since.astimezone(zone).replace(tzinfo=None)
        ticks = croniter(self.cron, local_naive - timedelta(minutes=1))
        previous = None
        while True:
            wall = ticks.get_next(datetime)
            # fold=0: a non-existent time takes the offset before the gap (moves forward), an
            # ambiguous one its first occurrence. UTC from here on: aware datetimes in a zone with
            # folds compare by wall time within the zone and never equal across zones (PEP 495).
            start = wall.replace(tzinfo=zone, fold=0).astimezone(timezone.utc)
            if previous is not None and start <= previous:
                continue
            previous = start
            yield Opening(start, start + self.duration)

def _check_cron(expr: Any) -> str:
    text = str(expr).strip() if isinstance(expr, str) else ""
    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise WindowError(f"cron {expr!r} is not a five-field cron expression (minute hour day month weekday), "
                          "e.g. \"0 2 * * 6\" for Saturdays 02:00.")
    return text


def _check_days(days: Any) -> tuple[str, ...]:
    if not isinstance(days, (list, tuple)) or not days:
        raise WindowError(f"days {days!r} must be a list of weekdays such as [sat, sun].")
    bad = [str(d) for d in days if str(d).lower() not in _DAY_NAMES]
    if bad:
        raise WindowError(f"days {', '.join(bad)} not understood; use {', '.join(DAYS)}.")
    return tuple(sorted({_DAY_NAMES[str(d).lower()] for d in days}, key=DAYS.index))


def _check_start(start: Any) -> tuple[int, int]:
    if isinstance(start, int) and not isinstance(start, bool):
        raise WindowError(f"start {start!r} was read by YAML as a number (sexagesimal); quote it, "
                          f"e.g. start: \"{start // 60:02d}:{start % 60:02d}\".")
    match = _START_RE.match(start) if isinstance(start, str) else None
    if not match:
        raise WindowError(f"start {start!r} is not a 24-hour time HH:MM such as \"02:00\".")
    return int(match.group(1)), int(match.group(2))



def window_from_param(raw: Any, cluster_id: str) -> MaintenanceWindow | None:
    """The run's `maintenance_window` param: None (act whenever approved) or a window spec."""
    if raw in (None, "", {}):
        return None
    try:
        return MaintenanceWindow.from_spec(raw)
    except WindowError as exc:
        raise BadInput(f"Cluster {cluster_id}: maintenance_window {exc.args[0].rstrip('.')}; fix it in the "
                       "run's conf or the fleet plan.") from None


@dataclass(frozen=True)
class WindowVerdict:
    """Whether `what` may start now; when not, the sentence that says so and when it may."""

    open: bool
    message: str = ""
    next_opening: datetime | None = None
    closes_at: datetime | None = None


def verdict(window: MaintenanceWindow | None, at: datetime, cluster_id: str, what: str) -> WindowVerdict:
    """May `what` start at `at`? Always with no window; otherwise only inside one."""
    if window is None:
        return WindowVerdict(True)
    closes = window.closes_at(at)
    if closes is not None:
        return WindowVerdict(True, closes_at=closes)
    following = window.next_opening(at)
    local = following.start.astimezone(window.zone)
    return WindowVerdict(False, f"Cluster {cluster_id}: {what} does not start, its maintenance window "
                                f"({window.summary}) is closed at {at.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC; "
                                f"the next one opens {local:%Y-%m-%d %H:%M %Z}.", next_opening=following.start)
