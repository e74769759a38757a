"""Times of a call centre: callbacks, meetings and notes read in a lead's zone, calling windows.

* :func:`parse_local` reads a cell as a wall-clock time (``2026-03-08 09:30``,
  ``2026-03-08T09:30:00``, ``2026/03/08 09:30``, or an Excel day number with a fraction).
* :func:`to_utc` places it in an IANA zone. A time the zone skips (the spring gap) or has twice
  (the autumn fold) is refused with the reason, never shifted: ``zoneinfo`` gives such a time an
  offset either way (PEP 495), so both ``fold`` values are tried and the answer is checked by a
  round trip through UTC.
* :class:`CallingWindow` is the local time of day a lead may be dialled (default 08:00–21:00);
  :func:`callable_hours` says in which whole hours of the operator's day (in the operator's zone)
  a lead of a zone may be called.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from etl.errors import ConfigError
from etl.values import Caveat, Invalid
from etl.zones import canonical_zone

__all__ = [
    "CallContext",
    "CallingWindow",
    "LeadWindow",
    "WindowCounter",
    "call_context",
    "machine_zone",
    "DEFAULT_WINDOW",
    "callable_hours",
    "format_hours",
    "format_utc",
    "note_time",
    "parse_local",
    "task_time",
    "TaskTime",
    "to_utc",
]

#: The calling window when neither the command line nor the mapping gives one.
DEFAULT_WINDOW = "08:00-21:00"

_LOCAL = re.compile(
    r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?"
)
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)


def parse_local(text: str) -> dt.datetime | Invalid:
    """A cell as a naive wall-clock time (seconds kept, fractions dropped).

    Accepted: ``YYYY-MM-DD HH:MM[:SS]`` with ``-``, ``/`` or ``.`` between the date's parts and a
    space or ``T`` before the time (a workbook's date-time cell arrives as ISO text), and an
    Excel day number with a fraction from 10000 on (``46089.375`` is 2026-03-08 09:00).
    A date without a time is refused: a callback needs the hour.

    Returns:
        The naive datetime, or :class:`~etl.values.Invalid` with the reason.
    """
    text = text.strip()
    m = _LOCAL.fullmatch(text)
    if m:
        parts = [int(p) if p else 0 for p in m.groups()]
        try:
            return dt.datetime(*parts)  # type: ignore[arg-type]
        except ValueError as exc:
            return Invalid(text, f"not a date and time ({exc})")
    try:
        number = float(text)
    except ValueError:
        number = 0.0
    if 10000 <= number < 2958466 and "." in text:
        return (_EXCEL_EPOCH + dt.timedelta(days=number)).replace(microsecond=0)
    if re.fullmatch(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}", text):
        return Invalid(text, "a date without a time; write the hour too (2026-03-10 14:30)")
    return Invalid(text, "not a date and time; write it as 2026-03-10 14:30")


def to_utc(local: dt.datetime, zone: str) -> dt.datetime | Invalid:
    """The UTC instant of a wall-clock time in ``zone``.

    Raises nothing; a time the zone skips (clocks jump forward) or shows twice (clocks go
    back) is an :class:`~etl.values.Invalid` naming the change, since either reading could
    be wrong by an hour (the tz database, through ``zoneinfo``).
    """
    tz = ZoneInfo(zone)
    first = local.replace(tzinfo=tz, fold=0)
    second = local.replace(tzinfo=tz, fold=1)
    shown = local.strftime("%Y-%m-%d %H:%M")
    if first.utcoffset() != second.utcoffset():
        back = first.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None)
        if back != local:
            return Invalid(
                shown,
                f"not a time in {zone}: {shown} is skipped when the clocks jump forward that "
                "night (daylight saving time starts); give a time before or after the jump",
            )
        offsets = " or ".join(_offset(t) for t in (first, second))
        return Invalid(
            shown,
            f"ambiguous in {zone}: {shown} happens twice when the clocks go back that night "
            f"(UTC{offsets}); give a time outside that hour",
        )
    return first.astimezone(dt.UTC)


def _offset(when: dt.datetime) -> str:
    minutes = int((when.utcoffset() or dt.timedelta()).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def format_utc(when: dt.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` of an aware datetime (docs/api.md, "The task")."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class CallingWindow:
    """The local times of day a lead may be called: from ``start`` up to ``end`` (exclusive).

    ``end`` at or before ``start`` wraps past midnight (``22:00-06:00``); ``end`` may be
    ``24:00``. Written ``HH:MM-HH:MM``.
    """

    start: int  # minutes after midnight
    end: int

    @classmethod
    def parse(cls, text: str) -> CallingWindow:
        """Read ``HH:MM-HH:MM`` (an en dash also separates).

        Raises:
            ValueError: not that form, an hour past 24 or minutes past 59, or an empty window;
                the message says what is expected.
        """
        m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*", str(text))
        if not m:
            raise ValueError(f"{text!r} is not a calling window; write it as 08:00-21:00")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(f"{text!r}: hours run 00-24 and minutes 00-59")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if start == end:
            raise ValueError(f"{text!r}: the window is empty")
        return cls(start, end)

    def __str__(self) -> str:
        a, b = divmod(self.start, 60), divmod(self.end, 60)
        return f"{a[0]:02d}:{a[1]:02d}-{b[0]:02d}:{b[1]:02d}"

    def contains(self, local: dt.datetime | dt.time) -> bool:
        """Whether a local time of day is inside the window."""
        minute = local.hour * 60 + local.minute
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def whole_hour(self, local: dt.datetime) -> bool:
        """Whether the hour that starts at ``local`` lies entirely inside the window."""
        first = local.hour * 60 + local.minute
        if self.start < self.end:
            return self.start <= first and first + 60 <= self.end
        return first >= self.start or first + 60 <= self.end


@functools.lru_cache(maxsize=4096)
def callable_hours(
    zone: str, window: CallingWindow, operator_zone: str, day: dt.date
) -> tuple[int, ...]:
    """The hours ``0``–``23`` of the operator's ``day`` (in ``operator_zone``) during which a
    lead in ``zone`` may be called: the whole hour, read on the lead's clock, is inside
    ``window``. An hour the operator's clock skips is left out."""
    op = ZoneInfo(operator_zone)
    tz = ZoneInfo(zone)
    out = []
    for hour in range(24):
        start = dt.datetime(day.year, day.month, day.day, hour, tzinfo=op)
        if start.astimezone(dt.UTC).astimezone(op).hour != hour:
            continue  # the operator's clock jumps over this hour
        if window.whole_hour(start.astimezone(tz)):
            out.append(hour)
    return tuple(out)


def format_hours(hours: tuple[int, ...]) -> str:
    """Hours as ranges of the clock: ``(13, …, 23, 0, 1)`` → ``13:00-02:00``; several runs are
    joined by ``, ``; no hour gives ``""``."""
    if not hours:
        return ""
    if len(hours) == 24:
        return "00:00-24:00"
    have = set(hours)
    starts = [h for h in hours if (h - 1) % 24 not in have]
    runs = []
    for start in sorted(starts):
        end = start
        while (end + 1) % 24 in have:
            end = (end + 1) % 24
        runs.append(f"{start:02d}:00-{(end + 1) % 24:02d}:00".replace("-00:00", "-24:00"))
    return ", ".join(runs)


@dataclass(frozen=True)
class CallContext:
    """What task and window checks need from the run.

    Attributes:
        now: the run's time (aware); times before it are past. Injectable so tests are exact.
        window: the calling window of every lead.
        operator_zone: the zone the operator's hours are counted in.
    """

    now: dt.datetime
    window: CallingWindow
    operator_zone: str


@dataclass(frozen=True)
class TaskTime:
    """A task's times, checked: ``trigger``/``finish`` in UTC as sent
    (``YYYY-MM-DDTHH:MM:SSZ``), ``local`` the start on the lead's clock (``YYYY-MM-DD HH:MM``)."""

    trigger: str
    finish: str | None
    local: str


def task_time(
    kind: str,
    start: str | None,
    end: str | None,
    zone: str,
    lead_zone: str,
    past: str,
    ctx: CallContext,
) -> tuple[TaskTime | Invalid | None, Caveat | None]:
    """Check one row's task cells.

    Args:
        kind: ``callback`` or ``meeting`` (for messages).
        start, end: the cells (cleaned; ``None`` when empty). A meeting needs both or neither.
        zone: the zone the cells are read in; ``lead_zone`` the lead's (for the window).
        past: ``reject`` or ``skip`` for a start before ``ctx.now``.

    Returns:
        ``(value, warning)``: the :class:`TaskTime` (or ``None``: no task, an empty cell or a
        skipped past time) or an :class:`~etl.values.Invalid` with every reason, and a
        :class:`~etl.values.Caveat` (outside the calling window, or skipped as past).
    """
    if start is None and end is None:
        return None, None
    if start is None or (kind == "meeting" and end is None):
        missing = "start" if start is None else "end"
        return Invalid(
            start or end or "", f"a meeting needs a start and an end; the {missing} is empty"
        ), None
    times: list[dt.datetime] = []
    for cell in (start, end) if end is not None else (start,):
        local = parse_local(cell)
        if isinstance(local, Invalid):
            return Invalid(cell, f"{cell!r}: {local.reason}"), None
        utc = to_utc(local, zone)
        if isinstance(utc, Invalid):
            return utc, None
        times.append(utc)
    if len(times) == 2 and times[1] <= times[0]:
        return Invalid(end or "", f"ends before it starts: {start} to {end}"), None
    lead_local = times[0].astimezone(ZoneInfo(lead_zone))
    shown = lead_local.strftime("%Y-%m-%d %H:%M")
    if times[0] < ctx.now:
        at = ctx.now.astimezone(ZoneInfo(lead_zone)).strftime("%Y-%m-%d %H:%M")
        why = f"in the past: {kind} {shown} ({lead_zone}), the run started at {at} there"
        if past == "skip":
            return None, Caveat(
                kind,
                f"in the past: {kind} …, the run started at … there",
                f"{why}; not sent",
                start,
            )
        return Invalid(start, f"{why}; fix the time, or set {kind}.past: skip"), None
    warning = None
    if not ctx.window.contains(lead_local):
        warning = Caveat(
            kind,
            f"{kind} at … is outside the calling window …",
            f"{kind} at {shown} {lead_zone} is outside the calling window {ctx.window}; "
            "sent anyway",
            shown,
        )
    finish = format_utc(times[1]) if len(times) == 2 else None
    return TaskTime(format_utc(times[0]), finish, shown), warning


def note_time(cell: str | None, zone: str) -> str | Invalid | None:
    """A note's ``dateTime`` from a cell read in the lead's zone: UTC ``YYYY-MM-DDTHH:MM:SSZ``,
    ``None`` for an empty cell (the run's time is used), or the reason it cannot be read."""
    if cell is None:
        return None
    local = parse_local(cell)
    if isinstance(local, Invalid):
        return Invalid(cell, f"{cell!r}: {local.reason}")
    utc = to_utc(local, zone)
    return utc if isinstance(utc, Invalid) else format_utc(utc)


def machine_zone() -> str:
    """The IANA name of this machine's zone: ``TZ`` when it names one, else where
    ``/etc/localtime`` links into the tz database, else ``UTC``."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        target = os.readlink("/etc/localtime")
        candidates.append(target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else "")
    except OSError:
        pass
    for name in candidates:
        if name:
            found = canonical_zone(name)
            if isinstance(found, str):
                return found
    return "UTC"


def call_context(window: str | None, operator_zone: str | None, now: dt.datetime) -> CallContext:
    """The run's :class:`CallContext` from the options (``None``: 08:00-21:00, the machine's
    zone).

    Raises:
        ConfigError: the window or the zone cannot be read (exit 78), with what to write.
    """
    try:
        parsed = CallingWindow.parse(window or DEFAULT_WINDOW)
    except ValueError as exc:
        raise ConfigError(f"--calling-window: {exc}") from None
    zone: Any = machine_zone() if operator_zone is None else canonical_zone(operator_zone)
    if not isinstance(zone, str):
        why = zone.reason if isinstance(zone, Invalid) else "expected an IANA zone"
        raise ConfigError(f"--operator-timezone: {operator_zone!r}: {why}")
    return CallContext(now, parsed, zone)


@dataclass(frozen=True)
class LeadWindow:
    """When one lead may be called (loaded.csv): its zone, its clock when the run started
    (``YYYY-MM-DD HH:MM``), the operator's hours (:func:`format_hours`), and whether now."""

    zone: str
    local_time: str
    hours: str
    now: bool


class WindowCounter:
    """Counts valid leads callable per hour of the operator's day, by zone (summary.json).

    A lead's :class:`LeadWindow` depends only on its zone and the run's :class:`CallContext`, so
    it is worked out once per distinct ``(zone, context)`` and shared by every lead of that zone;
    the hour counts are kept per zone and spread over the hours when read (:attr:`by_hour`).
    """

    def __init__(self) -> None:
        self.now = 0
        self.leads = 0
        self._windows: dict[tuple[str, CallContext], tuple[LeadWindow, tuple[int, ...]]] = {}
        self._counts: Counter[tuple[str, CallContext]] = Counter()

    @property
    def by_hour(self) -> list[Counter[str]]:
        """Per hour ``0``–``23`` of the operator's day: leads callable then, by zone."""
        out: list[Counter[str]] = [Counter() for _ in range(24)]
        for key, n in self._counts.items():
            for hour in self._windows[key][1]:
                out[hour][key[0]] += n
        return out

    def _window(self, zone: str, ctx: CallContext) -> LeadWindow:
        key = (zone, ctx)
        known = self._windows.get(key)
        if known is None:
            local = ctx.now.astimezone(ZoneInfo(zone))
            day = ctx.now.astimezone(ZoneInfo(ctx.operator_zone)).date()
            hours = callable_hours(zone, ctx.window, ctx.operator_zone, day)
            window = LeadWindow(
                zone,
                local.strftime("%Y-%m-%d %H:%M"),
                format_hours(hours),
                ctx.window.contains(local),
            )
            known = self._windows[key] = (window, hours)
        return known[0]

    def add(self, zone: str, ctx: CallContext) -> LeadWindow:
        """Count one lead of ``zone``; returns its :class:`LeadWindow`."""
        return self.add_many([zone], ctx)[0]

    def add_many(self, zones: Iterable[str], ctx: CallContext) -> list[LeadWindow]:
        """Count one lead per item of ``zones`` (IANA names); returns their
        :class:`LeadWindow` objects in the same order (one object per distinct zone)."""
        zones = list(zones)
        counts = Counter(zones)
        windows = {zone: self._window(zone, ctx) for zone in counts}
        for zone, n in counts.items():
            self._counts[(zone, ctx)] += n
            self.now += n * windows[zone].now
        self.leads += len(zones)
        return [windows[zone] for zone in zones]

    def summary(self, ctx: CallContext | None) -> dict[str, Any]:
        """The summary keys: ``calling_window``, ``operator_timezone``, ``operator_day``,
        ``callable_now`` and ``callable_by_hour`` (24 entries ``{hour, leads, by_zone}``)."""
        if ctx is None:
            return {}
        return {
            "calling_window": str(ctx.window),
            "operator_timezone": ctx.operator_zone,
            "operator_day": ctx.now.astimezone(ZoneInfo(ctx.operator_zone)).date().isoformat(),
            "callable_now": self.now,
            "callable_by_hour": [
                {"hour": h, "leads": sum(c.values()), "by_zone": dict(sorted(c.items()))}
                for h, c in enumerate(self.by_hour)
            ],
        }
