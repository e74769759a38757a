"""IANA time zones as people write them: canonical names, links, abbreviations, offsets and
Windows zone names.

:func:`canonical_zone` turns what a person wrote for a zone into the canonical IANA name the API
accepts, or an :class:`~etl.values.Invalid` saying why not (with the zone most likely meant, when
there is one). The mapping checks the zones it names with it; :mod:`etl.normalize` checks the
zone cells of a list and infers a row's zone from its phones.

Source: the IANA tz database as shipped by the ``tzdata`` package, read from its own
``tzdata.zi`` (``Z`` lines are zones, ``L target link`` lines are links, so ``US/Eastern`` is sent
as ``America/New_York`` whatever the operating system ships); Windows names and display names
from CLDR through ``babel``. Abbreviations and fixed offsets are refused even where the database
keeps a link for them (docs/mapping.md, "Values").
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import re
import zoneinfo
from typing import Any

import babel
import babel.core

from etl.values import Invalid, clean, fold_text

__all__ = ["canonical_zone", "same_clock", "windows_zone", "zones_at_offset"]


#: The zones an abbreviation most likely means, most likely first (standard and summer names
#: that mean the same zones share a line).
_ABBREVIATION_HINTS = {
    abbreviation: zones
    for abbreviations, zones in {
        "EST EDT": ("America/New_York", "America/Toronto"),
        "ET": ("America/New_York",),
        "CST": ("America/Chicago", "America/Mexico_City"),
        "CDT CT": ("America/Chicago",),
        "MST": ("America/Denver", "America/Phoenix"),
        "MDT MT": ("America/Denver",),
        "PST": ("America/Los_Angeles", "America/Vancouver"),
        "PDT PT": ("America/Los_Angeles",),
        "AKST AKDT": ("America/Anchorage",),
        "HST": ("Pacific/Honolulu",),
        "GMT": ("Europe/London", "Europe/Dublin"),
        "BST UTC": ("Europe/London",),
        "WET WEST": ("Europe/Lisbon",),
        "CET": ("Europe/Berlin", "Europe/Paris", "Europe/Madrid"),
        "CEST": ("Europe/Berlin", "Europe/Paris"),
        "MET": ("Europe/Berlin",),
        "EET EEST": ("Europe/Athens", "Europe/Helsinki", "Europe/Kyiv"),
        "IST": ("Asia/Kolkata", "Europe/Dublin"),
        "AEST": ("Australia/Sydney", "Australia/Melbourne", "Australia/Brisbane"),
        "AEDT": ("Australia/Sydney", "Australia/Melbourne"),
        "ACST": ("Australia/Adelaide", "Australia/Darwin"),
        "AWST": ("Australia/Perth",),
        "NZST": ("Pacific/Auckland",),
        "JST": ("Asia/Tokyo",),
        "KST": ("Asia/Seoul",),
        "HKT": ("Asia/Hong_Kong",),
        "SGT": ("Asia/Singapore",),
        "MSK": ("Europe/Moscow",),
        "SAST": ("Africa/Johannesburg",),
        "AST": ("America/Halifax", "America/Puerto_Rico"),
        "ADT": ("America/Halifax",),
        "NST": ("America/St_Johns",),
        "BRT": ("America/Sao_Paulo",),
        "ART": ("America/Argentina/Buenos_Aires",),
        # German: Mitteleuropäische (Sommer)Zeit, Ost-, Westeuropäische
        "MEZ MESZ": ("Europe/Berlin", "Europe/Vienna", "Europe/Zurich"),
        "OEZ OESZ": ("Europe/Athens", "Europe/Helsinki"),
        "WEZ WESZ": ("Europe/Lisbon", "Atlantic/Canary"),
        # French (Canada): heure normale / avancée de l'Est, du Centre; heure d'Europe centrale
        "HNE HAE": ("America/Toronto", "America/New_York"),
        "HNC": ("America/Winnipeg", "America/Chicago"),
        "HEC": ("Europe/Paris", "Europe/Brussels"),
    }.items()
    for abbreviation in abbreviations.split()
}
_REGIONAL_AREAS = frozenset(
    {
        "Africa",
        "America",
        "Antarctica",
        "Arctic",
        "Asia",
        "Atlantic",
        "Australia",
        "Europe",
        "Indian",
        "Pacific",
    }
)
_OFFSET = re.compile(r"^(?:GMT|UTC|UT|Z)?\s*[+\-\u2212]\s*\d{1,2}(?::?\d{2})?$", re.IGNORECASE)


@functools.lru_cache(maxsize=1)
def _tz_names() -> tuple[dict[str, str], dict[str, str]]:
    """Read zone and link names from tzdata's ``tzdata.zi``.

    Returns:
        ``(by_folded_name, link_target)``: every zone and link name keyed by its case-folded
        form, and each link's target zone.
    """
    text = importlib.resources.files("tzdata.zoneinfo").joinpath("tzdata.zi").read_text("utf-8")
    by_folded: dict[str, str] = {}
    links: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("Z "):
            name = line.split()[1]
            by_folded[name.casefold()] = name
        elif line.startswith("L "):
            _, target, link = line.split()[:3]
            links[link] = target
            by_folded[link.casefold()] = link
    return by_folded, links


#: Zones people mean when they write an offset, west to east.
_COMMON_ZONES = (
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Phoenix",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Halifax",
    "America/Sao_Paulo",
    "Atlantic/Azores",
    "Europe/London",
    "Europe/Lisbon",
    "Europe/Berlin",
    "Europe/Paris",
    "Africa/Lagos",
    "Europe/Athens",
    "Africa/Johannesburg",
    "Europe/Istanbul",
    "Europe/Moscow",
    "Asia/Dubai",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Dhaka",
    "Asia/Bangkok",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Adelaide",
    "Australia/Brisbane",
    "Australia/Sydney",
    "Pacific/Auckland",
)
_OFFSET_PARTS = re.compile(
    r"^(?:GMT|UTC|UT|Z)?([+\-\u2212])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE
)


@functools.lru_cache(maxsize=128)
def zones_at_offset(minutes: int) -> tuple[str, ...]:
    """Common IANA zones whose UTC offset is ``minutes`` in January or in July of this year
    (so ``-300``, UTC-5, gives New York in winter and Chicago in summer)."""
    return tuple(name for name in _COMMON_ZONES if minutes in _offsets(name))


@functools.lru_cache(maxsize=1024)
def _offsets(zone: str) -> tuple[int, int]:
    """A zone's UTC offsets in minutes on 15 January and 15 July of this year."""
    tz = zoneinfo.ZoneInfo(zone)
    year = dt.date.today().year
    out = []
    for month in (1, 7):
        offset = dt.datetime(year, month, 15, 12, tzinfo=tz).utcoffset()
        out.append(int(offset.total_seconds()) // 60 if offset is not None else 0)
    return out[0], out[1]


def _offset_minutes(text: str) -> int | None:
    """Minutes east of UTC that ``UTC-5``, ``GMT+2``, ``+05:30`` name; ``None`` for any other text
    (``UTC`` alone included)."""
    match = _OFFSET_PARTS.match(text.replace(" ", ""))
    if match is None:
        return None
    sign = -1 if match[1] in "-\u2212" else 1
    return sign * (int(match[2]) * 60 + int(match[3] or 0))


def _first_hint(text: str) -> str | None:
    """The zone most likely meant by an abbreviation or an offset, or ``None``."""
    hints = _ABBREVIATION_HINTS.get(text.upper())
    if hints:
        return hints[0]
    minutes = _offset_minutes(text)
    if minutes is None and text.upper() in {"Z", "UTC", "GMT", "UT", "UCT", "ZULU"}:
        minutes = 0
    if minutes is None:
        return None
    zones = zones_at_offset(minutes)
    # the zone whose standard (winter) time it is: GMT+1 is Berlin more than London
    standard = [z for z in zones if min(_offsets(z)) == minutes]
    return next(iter(standard or zones), None)


def _suggest_for_offset(text: str) -> str:
    """Likely zones for ``UTC-5``, ``GMT+2``, ``+05:30``; ``UTC`` alone suggests London."""
    zones = zones_at_offset(_offset_minutes(text) or 0)[:4]
    if zones:
        return "; did you mean " + " or ".join(zones) + "? (the place, not today's offset)"
    return _suggest("")


def _suggest(text: str) -> str:
    hints = _ABBREVIATION_HINTS.get(text.upper())
    if hints:
        return "; did you mean " + " or ".join(hints) + "?"
    return "; write the lead's IANA zone, e.g. America/New_York or Europe/London"


@functools.lru_cache(maxsize=4096)
def canonical_zone(value: str | None) -> str | Invalid | None:
    """The canonical IANA name of a zone written any way, or why it is refused.

    ``us/eastern`` → ``America/New_York``; ``Europe/Kiev`` → ``Europe/Kyiv``. Abbreviations
    (``EST``, ``PST``, ``CET``, all-capital link names such as ``GB``) and fixed offsets
    (``GMT+2``, ``UTC-5``, ``Etc/…``) are refused with a suggestion, even where the tz database
    keeps them, because a dialer needs the place, not today's offset.

    Returns:
        The canonical name, ``None`` for an empty cell, or :class:`Invalid`.
    """
    text = clean(value)
    if text is None:
        return None
    by_folded, links = _tz_names()
    compact = text.replace(" ", "")
    if _OFFSET.match(compact) or compact.upper() in {"Z", "UTC", "GMT", "UT", "UCT", "ZULU"}:
        why = f"a fixed UTC offset, not a place{_suggest_for_offset(compact)}"
        return Invalid(text, why, _first_hint(compact))
    name = by_folded.get(text.casefold()) or by_folded.get(compact.casefold())
    if name is None:
        windows = windows_zone(text)
        if windows is not None:
            return windows
        if re.fullmatch(r"[A-Za-z]{2,5}", text):
            why = f"an abbreviation, not an IANA zone{_suggest(text)}"
            return Invalid(text, why, _first_hint(text))
        return Invalid(text, f"not an IANA time zone{_suggest(text)}")
    if name.startswith("Etc/") or name in {"GMT+0", "GMT-0", "GMT0", "Greenwich", "Universal"}:
        why = f"a fixed UTC offset, not a place{_suggest(text)}"
        return Invalid(text, why, _first_hint(text))
    if re.fullmatch(r"[A-Z0-9+-]+", name) and "/" not in name:
        why = f"an abbreviation, not an IANA zone{_suggest(name)}"
        return Invalid(text, why, _first_hint(name))
    canonical = links.get(name, name)
    if canonical.split("/", 1)[0] not in _REGIONAL_AREAS:
        return Invalid(text, f"not a regional IANA time zone{_suggest(text)}")
    return canonical


# --- Windows zone names -------------------------------------------------------------------------
#
# Windows (and so Outlook, Dynamics and the exports of many CRMs) names zones its own way: an id
# (``Eastern Standard Time``, ``W. Europe Standard Time``) and a display name
# (``(UTC-05:00) Eastern Time (US & Canada)``, ``(UTC+01:00) Amsterdam, Berlin, Bern, Rome,
# Stockholm, Vienna``). Unlike ``EST``, each names one set of rules, so both are accepted and sent
# as the IANA zone. The ids come from CLDR's windowsZones data as Babel ships it
# (``babel.core.get_global("windows_zone_mapping")``: id → the zone CLDR gives territory 001).
# No maintained package carries the display names (they live in the Windows registry), so they
# are read through maintained data instead, see :func:`_display_zone`.

_DISPLAY = re.compile(
    r"^\(\s*(?:UTC|GMT)\s*(?:([+\-\u2212])\s*(\d{1,2})(?::?(\d{2}))?)?\s*\)\s*(.+)$",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=1)
def _windows_ids() -> dict[str, str]:
    """Folded Windows zone id → its IANA zone (CLDR windowsZones, territory 001)."""
    mapping = babel.core.get_global("windows_zone_mapping")
    return {fold_text(win): zone for win, zone in mapping.items()}


def _add_place(table: dict[str, list[str]], name: str | None, zone: str) -> None:
    """File ``zone`` under the folded ``name`` (once; nothing for no name)."""
    if name:
        zones = table.setdefault(fold_text(name), [])
        if zone not in zones:
            zones.append(zone)


def _city_names() -> dict[str, list[str]]:
    """Folded city → zones: each zone's tz database city, then CLDR's English exemplar city."""
    cities: dict[str, list[str]] = {}
    by_folded, _links = _tz_names()
    for name in by_folded.values():
        if name.split("/", 1)[0] in _REGIONAL_AREAS:  # not US/Eastern: no city
            _add_place(cities, name.rsplit("/", 1)[1].replace("_", " "), name)
    for zone, names in babel.Locale("en").time_zones.items():
        _add_place(cities, names.get("city"), zone)
    return cities


def _region_names() -> dict[str, list[str]]:
    """Folded region → zones: CLDR's English metazone names without ``time`` (the best-known
    zone first), then the Windows ids without ``standard time``."""
    regions: dict[str, list[str]] = {}
    metazones: dict[str, list[str]] = {}
    for zone, meta in babel.core.get_global("meta_zones").items():
        metazones.setdefault(meta, []).append(zone)
    windows = babel.core.get_global("windows_zone_mapping")
    windows_targets = set(windows.values())
    english = babel.Locale("en")
    for meta, zones in metazones.items():
        names = english.meta_zones.get(meta, {}).get("long", {})
        generic = names.get("generic") or names.get("standard") or ""
        if generic.lower().endswith(" time"):
            # the best-known zone of a metazone first: a common zone, then a Windows one
            ranked = sorted(zones, key=lambda z: (z not in _COMMON_ZONES, z not in windows_targets))
            for zone in ranked:
                _add_place(regions, generic[: -len(" time")], zone)
    for win, zone in windows.items():
        if win.endswith(" Standard Time"):
            _add_place(regions, win[: -len(" Standard Time")], zone)
    return regions


@functools.lru_cache(maxsize=1)
def _place_names() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Folded place name → ``(zones of cities, zones of region names)``, maintained data only.

    Cities:

    * every zone's city: the last part of its tz database name (``Mexico_City`` → ``mexico
      city``) and CLDR's English exemplar city where it differs (``Asia/Calcutta`` → Kolkata);
    * CLDR's English metazone names without ``time`` (``Eastern Time`` → ``eastern``,
      ``Alaska Time`` → ``alaska``): the metazone's zones;
    * each Windows id without ``standard time`` (``Central America Standard Time`` → ``central
      america``; ``Eastern Standard Time (Mexico)`` → ``eastern (mexico)`` stays apart).
    """
    cities, regions = _city_names(), _region_names()
    names = set(cities) | set(regions)
    return {n: (tuple(cities.get(n, ())), tuple(regions.get(n, ()))) for n in names}


def _display_zone(text: str) -> str | Invalid | None:
    """The zone of a Windows display name, ``None`` when ``text`` is not one.

    Read from the name itself and maintained data: the bracketed offset (``UTC+01:00``) and
    the places after it, split at commas and colons, each without a bracketed qualifier
    (``Eastern Time (US & Canada)`` → ``Eastern Time``, then ``Eastern``). A place is the
    Windows id ``<place> Standard Time``, a CLDR metazone's English name, or a zone's city
    (:func:`_place_names`). Its zones count only when they keep the written offset in January
    or July. All the places found must keep the same clock; the answer is the zone CLDR gives
    the matching Windows id, else the first place's zone. A display name with no place found
    (``(UTC-07:00) Arizona``) is refused with zones at its offset to choose from.
    """
    match = _DISPLAY.match(text)
    if not match:
        return None
    minutes = 0
    if match[2]:
        sign = -1 if match[1] in "-\u2212" else 1
        minutes = sign * (int(match[2]) * 60 + int(match[3] or 0))
    places = _place_names()
    windows = _windows_ids()
    targets = set(windows.values())
    by_city: list[str] = []
    by_name: list[str] = []
    for part in re.split(r"\s*[,:;]\s*", match[4]):
        bare = fold_text(re.sub(r"\([^)]*\)", " ", part))
        keys = [bare, bare[: -len(" time")]] if bare.endswith(" time") else [bare]
        for key in keys:
            cities, names = places.get(key, ((), ()))
            if key + " standard time" in windows:
                names = (windows[key + " standard time"], *names)
            city = _zone_at(cities, minutes)
            name = None if city else _zone_at(names, minutes)
            if city:
                by_city.append(city)
            if name:
                by_name.append(name)
            if city or name:
                break
    found = by_city or by_name  # a city says more than a region name
    if not found:
        zones = zones_at_offset(minutes)[:4]
        hint = " or ".join(zones) if zones else "America/New_York or Europe/London"
        why = f"a Windows zone name whose places are not known here; did you mean {hint}?"
        return Invalid(text, why, zones[0] if zones else None)
    if not all(same_clock(zone, (found[0],)) for zone in found):
        shown = " and ".join(dict.fromkeys(found))
        return Invalid(text, f"a Windows zone name whose places keep different clocks ({shown})")
    return next((zone for zone in found if zone in targets), found[0])


def _zone_at(zones: tuple[str, ...], minutes: int) -> str | None:
    """The first of ``zones`` (canonicalised) that keeps the offset ``minutes``, or ``None``."""
    for zone in zones:
        canonical = canonical_zone(zone)
        if isinstance(canonical, str) and minutes in _offsets(canonical):
            return canonical
    return None


def windows_zone(value: str) -> str | Invalid | None:
    """The canonical IANA zone of a Windows zone id or display name; ``None`` when ``value`` is
    neither (see the section comment above for the sources).

    ``Eastern Standard Time`` → ``America/New_York``; ``W. Europe Standard Time`` →
    ``Europe/Berlin``; ``(GMT-05:00) Eastern Time (US & Canada)`` → ``America/New_York``;
    ``(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna`` → ``Europe/Berlin``. An id
    CLDR maps to a fixed offset (``UTC-11``, ``Dateline Standard Time``) is refused as one.
    """
    zone = _windows_ids().get(fold_text(value))
    if zone is not None:
        canonical = canonical_zone(zone)
        if isinstance(canonical, Invalid):
            why = f"a Windows name for a fixed UTC offset, not a place{_suggest('')}"
            return Invalid(value, why)
        return canonical
    return _display_zone(value)


@functools.lru_cache(maxsize=4096)
def same_clock(zone: str, others: tuple[str, ...]) -> bool:
    """Whether ``zone`` keeps the same UTC offsets in January and July as one of ``others``
    (``America/Indiana/Indianapolis`` and ``America/New_York`` do: no call at a wrong hour)."""

    def offsets(name: str) -> tuple[Any, ...]:
        tz = zoneinfo.ZoneInfo(name)
        year = dt.date.today().year
        return tuple(dt.datetime(year, m, 15, 12, tzinfo=tz).utcoffset() for m in (1, 7))

    mine = offsets(zone)
    return any(zone == other or offsets(other) == mine for other in others)
