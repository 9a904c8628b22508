"""Maintenance windows with fixed clocks, across Europe/Berlin's 2026 daylight-saving changes
(spring forward 2026-03-29 02:00 CET -> 03:00 CEST, fall back 2026-10-25 03:00 CEST -> 02:00 CET)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import islice
from zoneinfo import ZoneInfo

import pytest

from kkp_migration.windows import MaintenanceWindow, WindowError, parse_duration

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def weekly(days=("sun",), start="02:30", duration="3h", tz="Europe/Berlin") -> MaintenanceWindow:
    return MaintenanceWindow.from_spec({"days": list(days), "start": start, "duration": duration, "timezone": tz})


def test_weekly_window_opens_and_closes_in_local_time():
    window = weekly(days=["sat", "sun"], start="02:00")
    assert window.summary == "Sat,Sun 02:00 Europe/Berlin for 3h"
    # Saturday 2026-01-10 02:00 CET = 01:00 UTC, until 04:00 UTC.
    assert not window.is_open(utc(2026, 1, 10, 0, 59))
    assert window.current(utc(2026, 1, 10, 1, 0)) == (utc(2026, 1, 10, 1, 0), utc(2026, 1, 10, 4, 0))
    assert window.closes_at(utc(2026, 1, 10, 3, 59)) == utc(2026, 1, 10, 4, 0)
    assert not window.is_open(utc(2026, 1, 10, 4, 0))  # end is exclusive
    assert window.closes_at(utc(2026, 1, 10, 4, 0)) is None
    assert window.next_opening(utc(2026, 1, 10, 1, 0)).start == utc(2026, 1, 11, 1, 0)
    assert window.next_opening(utc(2026, 1, 11, 2, 0)).start == utc(2026, 1, 17, 1, 0)  # Mon..Fri skipped


def test_spring_forward_moves_a_nonexistent_opening_forward_by_the_gap():
    window = weekly(start="02:30")  # 02:30 does not exist in Berlin on 2026-03-29
    opening = window.next_opening(utc(2026, 3, 28))
    assert opening.start == utc(2026, 3, 29, 1, 30)           # 03:30 CEST, same instant as "02:30 CET"
    assert opening.start.astimezone(BERLIN).isoformat() == "2026-03-29T03:30:00+02:00"
    assert opening.end - opening.start == timedelta(hours=3)  # elapsed time
    assert opening.end.astimezone(BERLIN).isoformat() == "2026-03-29T06:30:00+02:00"
    assert not window.is_open(utc(2026, 3, 29, 1, 29))
    assert window.is_open(utc(2026, 3, 29, 1, 30))
    # The week before and after open at 02:30 local in their own offsets.
    assert window.next_opening(utc(2026, 3, 21)).start == utc(2026, 3, 22, 1, 30)
    assert window.next_opening(utc(2026, 3, 30)).start == utc(2026, 4, 5, 0, 30)


def test_fall_back_opens_an_ambiguous_time_once_at_its_first_occurrence():
    window = weekly(start="02:30")  # 02:30 happens twice in Berlin on 2026-10-25
    openings = list(islice(window.openings(utc(2026, 10, 24)), 2))
    assert openings[0].start == utc(2026, 10, 25, 0, 30)  # 02:30 CEST, the first 02:30
    assert openings[0].start.astimezone(BERLIN).isoformat() == "2026-10-25T02:30:00+02:00"
    assert openings[0].end == utc(2026, 10, 25, 3, 30)     # 3 real hours: 04:30 CET on the wall clock
    assert openings[0].end.astimezone(BERLIN).isoformat() == "2026-10-25T04:30:00+01:00"
    assert openings[1].start == utc(2026, 11, 1, 1, 30)
    assert window.is_open(utc(2026, 10, 25, 1, 30))         # the second 02:30 is inside the same window
    assert window.closes_at(utc(2026, 10, 25, 1, 30)) == utc(2026, 10, 25, 3, 30)


def test_a_window_that_spans_the_spring_forward_gap_lasts_its_duration():
    window = weekly(start="01:30", duration="2h")  # 01:30 CET .. 04:30 CEST on the wall clock
    opening = window.current(utc(2026, 3, 29, 2, 0))
    assert opening == (utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 2, 30))
    assert opening.end.astimezone(BERLIN).isoformat() == "2026-03-29T04:30:00+02:00"


def test_cron_window_follows_the_same_dst_rules():
    window = MaintenanceWindow.from_spec({"cron": "30 2 * * *", "duration": "1h", "timezone": "Europe/Berlin"})
    starts = [o.start for o in islice(window.openings(utc(2026, 3, 28)), 3)]
    assert starts == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]
    starts = [o.start for o in islice(window.openings(utc(2026, 10, 24)), 3)]
    assert starts == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    assert window.summary == "cron '30 2 * * *' Europe/Berlin for 1h"


def test_openings_strictly_increase_when_the_gap_makes_times_coincide():
    window = MaintenanceWindow.from_spec({"cron": "*/30 1-4 29 3 *", "duration": "10m", "timezone": "Europe/Berlin"})
    starts = [o.start for o in islice(window.openings(utc(2026, 3, 29)), 6)]
    assert starts == sorted(set(starts))
    # 01:00, 01:30 CET; 02:00 -> 03:00 CEST, 02:30 -> 03:30 CEST; 03:00 and 03:30 coincide and are dropped.
    assert [s.astimezone(BERLIN).isoformat()[11:16] for s in starts] == ["01:00", "01:30", "03:00", "03:30", "04:00", "04:30"]


def test_spec_round_trips_and_days_are_normalised():
    window = weekly(days=["Sunday", "sat", "sat"], start="23:15", duration="1h30m", tz="UTC")
    assert window.days == ("sat", "sun")
    assert window.to_spec() == {"days": ["sat", "sun"], "start": "23:15", "duration": "1h30m", "timezone": "UTC"}
    assert MaintenanceWindow.from_spec(window.to_spec()) == window
    # a window over midnight: Saturday 23:15 UTC until Sunday 00:45
    assert window.is_open(utc(2026, 1, 11, 0, 44)) and not window.is_open(utc(2026, 1, 11, 0, 45))


@pytest.mark.parametrize("spec, message", [
    ({"days": ["sat"], "start": 120, "duration": "3h", "timezone": "UTC"}, "quote it"),
    ({"days": ["sat"], "start": "2am", "duration": "3h", "timezone": "UTC"}, "HH:MM"),
    ({"days": ["caturday"], "start": "02:00", "duration": "3h", "timezone": "UTC"}, "caturday not understood"),
    ({"days": ["sat"], "start": "02:00", "duration": "3 hours", "timezone": "UTC"}, "like 3h"),
    ({"days": ["sat"], "start": "02:00", "duration": "8d", "timezone": "UTC"}, "at most 7 days"),
    ({"days": ["sat"], "start": "02:00", "duration": "3h", "timezone": "Europe/Berlinn"}, "not an IANA"),
    ({"days": ["sat"], "start": "02:00", "duration": "3h"}, "missing timezone"),
    ({"cron": "0 2 * *", "duration": "3h", "timezone": "UTC"}, "five-field"),
    ({"cron": "0 2 * * 6", "start": "02:00", "duration": "3h", "timezone": "UTC"}, "not both"),
    ({"cron": "0 2 * * 6", "duration": "3h", "timezone": "UTC", "every": "week"}, "unknown window key(s) every"),
])
def test_bad_specs_are_refused_with_the_fix(spec, message):
    with pytest.raises(WindowError) as err:
        MaintenanceWindow.from_spec(spec)
    assert message in str(err.value)


def test_naive_datetimes_are_refused():
    with pytest.raises(WindowError, match="timezone-aware"):
        weekly().is_open(datetime(2026, 1, 10, 2, 0))


def test_parse_duration():
    assert parse_duration("1d2h3m") == timedelta(days=1, hours=2, minutes=3)
    assert parse_duration("90m") == timedelta(minutes=90)
