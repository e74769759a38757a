"""etl.calls: local times in a zone, calling windows and the operator's hours (exact values)."""

from __future__ import annotations

import datetime as dt

import pytest

from etl.calls import (
    CallingWindow,
    callable_hours,
    format_hours,
    machine_zone,
    parse_local,
    to_utc,
)
from etl.normalize import Invalid


def test_local_times_in_their_forms_and_refusals() -> None:
    assert parse_local("2026-03-10 14:30") == dt.datetime(2026, 3, 10, 14, 30)
    assert parse_local("2026/03/10T14:30:15.250") == dt.datetime(2026, 3, 10, 14, 30, 15)
    assert parse_local("46091.375") == dt.datetime(2026, 3, 10, 9, 0)  # an Excel day number
    assert str(parse_local("2026-03-10")) == "2026-03-10"
    day_only = parse_local("2026-03-10")
    assert isinstance(day_only, Invalid) and day_only.reason.startswith("a date without a time")
    bad = parse_local("2026-02-30 10:00")
    assert isinstance(bad, Invalid) and "day is out of range" in bad.reason


def test_utc_across_both_changes_of_a_year() -> None:
    ny = "America/New_York"
    assert to_utc(dt.datetime(2026, 3, 8, 1, 59), ny) == dt.datetime(
        2026, 3, 8, 6, 59, tzinfo=dt.UTC
    )
    assert to_utc(dt.datetime(2026, 3, 8, 3, 0), ny) == dt.datetime(2026, 3, 8, 7, 0, tzinfo=dt.UTC)
    assert isinstance(to_utc(dt.datetime(2026, 3, 8, 2, 0), ny), Invalid)  # the gap starts
    assert isinstance(to_utc(dt.datetime(2026, 11, 1, 1, 30), ny), Invalid)  # the fold
    assert to_utc(dt.datetime(2026, 11, 1, 2, 0), ny) == dt.datetime(
        2026, 11, 1, 7, 0, tzinfo=dt.UTC
    )


def test_windows_wrap_midnight_and_reach_24() -> None:
    night = CallingWindow.parse("22:00–06:00")
    assert str(night) == "22:00-06:00"
    assert night.contains(dt.time(23, 59)) and night.contains(dt.time(5, 59))
    assert not night.contains(dt.time(6, 0))
    assert str(CallingWindow.parse("00:00-24:00")) == "00:00-24:00"
    for bad in ("8-21", "08:00-25:00", "09:00-09:00", "08:60-21:00"):
        with pytest.raises(ValueError):
            CallingWindow.parse(bad)
    day = dt.date(2026, 12, 1)
    assert callable_hours("UTC", night, "UTC", day) == (0, 1, 2, 3, 4, 5, 22, 23)
    assert format_hours((0, 1, 2, 3, 4, 5, 22, 23)) == "22:00-06:00"
    assert format_hours((1, 2, 7, 23)) == "01:00-03:00, 07:00-08:00, 23:00-24:00"
    assert format_hours(()) == ""


def test_an_operator_hour_the_clock_skips_counts_no_lead() -> None:
    window = CallingWindow.parse("00:00-24:00")
    hours = callable_hours("UTC", window, "Europe/Berlin", dt.date(2026, 3, 29))
    assert 2 not in hours and len(hours) == 23


def test_machine_zone_from_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "US/Eastern")
    assert machine_zone() == "America/New_York"


def test_window_counter_works_each_zone_out_once_and_counts_every_lead() -> None:
    from collections import Counter

    from etl.calls import CallContext, WindowCounter

    ctx = CallContext(
        dt.datetime(2026, 1, 15, 14, 0, tzinfo=dt.UTC),
        CallingWindow.parse("08:00-21:00"),
        "America/New_York",
    )
    zones = ["Europe/London", "America/New_York", "Europe/London", "Asia/Tokyo"] * 3
    counter = WindowCounter()
    got = counter.add_many(zones[:5], ctx) + [counter.add(z, ctx) for z in zones[5:]]
    assert [w.zone for w in got] == zones
    assert got[0] is got[2]  # one window per distinct zone
    london, new_york, tokyo = got[0], got[1], got[3]
    assert (london.local_time, london.hours, london.now) == (
        "2026-01-15 14:00",
        "03:00-16:00",
        True,
    )
    assert (new_york.local_time, new_york.hours, new_york.now) == (
        "2026-01-15 09:00",
        "08:00-21:00",
        True,
    )
    assert (tokyo.local_time, tokyo.hours, tokyo.now) == ("2026-01-15 23:00", "18:00-07:00", False)
    assert (counter.leads, counter.now) == (12, 9)
    day = dt.date(2026, 1, 15)
    expected: list[Counter[str]] = [Counter() for _ in range(24)]
    for zone in zones:
        for hour in callable_hours(zone, ctx.window, ctx.operator_zone, day):
            expected[hour][zone] += 1
    assert counter.by_hour == expected
    by_hour = counter.summary(ctx)["callable_by_hour"]
    assert by_hour[3] == {
        "hour": 3,
        "leads": 9,
        "by_zone": {"Asia/Tokyo": 3, "Europe/London": 6},
    }
    assert by_hour[8]["leads"] == 9 and by_hour[20]["by_zone"]["Asia/Tokyo"] == 3
