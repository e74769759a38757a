"""Values a dialer can trust: names, e-mails, E.164 phones, IANA time zones and dates.

Every function here takes one text value as a person typed it and returns either the normalised
value or an :class:`Invalid` that says why not. Nothing raises for bad data. Results are cached
by value, because lead lists repeat the same zones, regions and (after duplicates) numbers.

Sources of the rules:

* Phones: libphonenumber through ``phonenumbers`` (``parse``, ``is_valid_number``, E.164 format,
  ``phonenumbers.timezone`` for zone inference).
* Zones: the IANA tz database as shipped by the ``tzdata`` package, read from its own
  ``tzdata.zi`` (``Z`` lines are zones, ``L target link`` lines are links, so ``US/Eastern`` is sent
  as ``America/New_York`` whatever the operating system ships). Abbreviations and fixed offsets are
  refused even where the database keeps a link for them (docs/mapping.md, "Values").
* E-mails: the addr-spec of RFC 5322 restricted to what mail systems accept (``email-validator``'s
  rules without DNS): one ``@``, a dot-atom local part, a domain of LDH labels with a dot.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import re
import unicodedata
import zoneinfo
from dataclasses import dataclass
from typing import Any

import email_validator
import pandas as pd
import phonenumbers
from phonenumbers import timezone as phone_timezone

__all__ = [
    "Invalid",
    "PhoneResult",
    "canonical_zone",
    "clean",
    "normalize_date",
    "normalize_email",
    "normalize_emails",
    "normalize_name",
    "normalize_region",
    "parse_phone",
    "region_of",
    "same_clock",
    "split_phones",
    "zones_for_number",
]


@dataclass(frozen=True)
class Invalid:
    """A value that could not be normalised.

    Attributes:
        raw: the value as it was in the file (trimmed).
        reason: why, in words a person understands, with what to do.
    """

    raw: str
    reason: str

    def __str__(self) -> str:
        return self.raw


_WS = re.compile(r"\s+", re.UNICODE)
_EDGE = re.compile(r"^[\s\u200b\u200c\u200d\u2060\ufeff]+|[\s\u200b\u200c\u200d\u2060\ufeff]+$")


def clean(value: object) -> str | None:
    """Trim all Unicode whitespace (including no-break space); empty becomes ``None``.

    Only an empty or all-whitespace cell is missing: ``NA``, ``NULL``, ``None``, ``-`` are text.
    (The value ``None`` and a float NaN, pandas' own markers for a missing cell, are missing too;
    the readers never produce them, but frames built by hand may.)
    """
    if value is None or (isinstance(value, float) and value != value):
        return None
    if not isinstance(value, str):
        value = str(value)
    # \s covers Unicode whitespace, including U+00A0 and U+3000; add the zero-width ones, in any
    # interleaving (so that cleaning twice changes nothing).
    text = _EDGE.sub("", value)
    return text or None


def normalize_name(value: object) -> str | None:
    """Trim and collapse inner whitespace of a name; case and accents are kept."""
    text = clean(value)
    if text is None:
        return None
    return _WS.sub(" ", unicodedata.normalize("NFC", text))


_LOCAL_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = rf"{_LOCAL_ATOM}(?:\.{_LOCAL_ATOM})*"
_LABEL = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*\.[A-Za-z]{{2,63}}"
EMAIL_PATTERN = rf"^{_LOCAL}@{_DOMAIN}$"
#: Top-level names no mail goes to (RFC 6761 and friends), as email-validator refuses them.
_SPECIAL_USE = frozenset(email_validator.SPECIAL_USE_DOMAIN_NAMES)
_EMAIL = re.compile(EMAIL_PATTERN)


@functools.lru_cache(maxsize=65536)
def normalize_email(value: str | None) -> str | Invalid | None:
    """Trim, lower-case and check one e-mail address.

    The common ASCII form passes a regular expression (the fast path, also used vectorised by
    :func:`normalize_emails`); anything else is judged by ``email-validator``
    (``check_deliverability=False``: syntax only, no DNS), so what is valid follows its rules,
    internationalised addresses included.

    Returns:
        The lower-cased address, ``None`` when the cell is empty, or :class:`Invalid` when the
        cell holds something that is not exactly one address (``a@b.com; c@d.com`` is refused).
    """
    text = clean(value)
    if text is None:
        return None
    lowered = text.lower()
    if (
        _EMAIL.match(lowered)
        and len(lowered) <= 254
        and len(lowered.split("@")[0]) <= 64
        and lowered.rsplit(".", 1)[-1] not in _SPECIAL_USE
    ):
        return lowered
    if re.search(r"[\s,;]", lowered) and lowered.count("@") > 1:
        return Invalid(text, "more than one e-mail address in one cell; keep one")
    if "@" not in lowered:
        return Invalid(text, "not an e-mail address (no @)")
    if lowered.count("@") > 1:
        return Invalid(text, "not an e-mail address (more than one @)")
    local, _, domain = lowered.partition("@")
    if not domain:
        return Invalid(text, "not an e-mail address (nothing after @)")
    if not local:
        return Invalid(text, "not an e-mail address (nothing before @)")
    try:
        email_validator.validate_email(lowered, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        return Invalid(text, f"not a valid e-mail address: {exc}")
    return lowered


def normalize_emails(values: pd.Series) -> pd.Series:
    """:func:`normalize_email` over a column, vectorised for the common case.

    Args:
        values: object Series of cells (str or ``None``), any index.

    Returns:
        An object Series, same index: lower-cased addresses, ``None`` or :class:`Invalid`.
    """
    text = values.astype(object).where(values.notna(), "").astype(str).str.strip().str.lower()
    fast = text.str.fullmatch(EMAIL_PATTERN) & (text.str.len() <= 254)
    fast &= text.str.split("@").str[0].str.len() <= 64
    fast &= ~text.str.rsplit(".", n=1).str[-1].isin(_SPECIAL_USE)
    out = text.astype(object).where(fast, None)
    slow = ~fast
    if slow.any():
        out[slow] = [normalize_email(v) for v in values[slow]]
    return out


# --- phones -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhoneResult:
    """One parsed phone.

    Attributes:
        e164: the number in E.164 (``+14155552671``).
        region: the ISO 3166 region libphonenumber assigns to it (``US``), or ``None``.
        extension: a trailing extension as written (``x12``, ``ext. 12``, ``#12`` → ``12``).
    """

    e164: str
    region: str | None
    extension: str | None = None


_SCIENTIFIC = re.compile(r"^[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+$")
_SPLIT = re.compile(r"\s*(?:/|;|,|\bor\b|\boder\b|\bou\b)\s*", re.IGNORECASE)
_REASONS = {
    phonenumbers.ValidationResult.TOO_SHORT: "too short",
    phonenumbers.ValidationResult.TOO_LONG: "too long",
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    phonenumbers.ValidationResult.INVALID_LENGTH: "wrong length",
}


def split_phones(value: str) -> list[str]:
    """Split a cell that holds several numbers (``/``, ``;``, ``,`` or ``or``) into parts.

    The cell is split only when every part holds at least 6 digits, so a German ``030/23125-226``
    (area code, slash, number) stays one number.
    """
    parts = [part for part in _SPLIT.split(value) if part.strip()]
    if len(parts) > 1 and all(sum(ch.isdigit() for ch in part) >= 6 for part in parts):
        return parts
    return [value]


@functools.lru_cache(maxsize=65536)
def parse_phone(value: str, region: str | None) -> PhoneResult | Invalid:
    """Parse one phone number with libphonenumber and format it as E.164.

    Args:
        value: the number as written: ``(415) 555-2671``, ``+44 20 7946 0958``, ``0044 …``,
            ``tel:+1-415-555-2671``, full-width digits; a trailing extension is dropped.
        region: ISO 3166 alpha-2 region for numbers written without ``+country`` (``US``).

    Returns:
        A :class:`PhoneResult`, or :class:`Invalid` with the reason: letters only, precision
        lost (scientific notation, what Excel leaves in a CSV), too short, too long, not valid for
        the region.
    """
    text = clean(value)
    if text is None:
        return Invalid("", "empty")
    if _SCIENTIFIC.match(text.replace(" ", "")):
        return Invalid(
            text,
            "precision lost: the number is in scientific notation (Excel shortened it); "
            "re-export the column as text",
        )
    if not any(ch.isdigit() for ch in text):
        return Invalid(text, "not a phone number (no digits)")
    if text.lower().startswith("tel:"):
        text = text[4:]
    try:
        number = phonenumbers.parse(text, region or None)
        if not phonenumbers.is_valid_number(number):
            # "0044 20 …" written where 00 is not the region's international prefix (the US
            # dials 011): read 00 as "+", the common European form.
            compact = re.sub(r"[\s().-]", "", text)
            if compact.startswith("00") and not compact.startswith("000"):
                retry = phonenumbers.parse("+" + compact[2:], None)
                if phonenumbers.is_valid_number(retry):
                    number = retry
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            if not region and not text.lstrip("( ").startswith(("+", "\uff0b")):
                return Invalid(text, "no country code and no region: write it as +<country>…")
            return Invalid(text, "unknown country code")
        if exc.error_type in (
            phonenumbers.NumberParseException.TOO_SHORT_NSN,
            phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD,
        ):
            return Invalid(text, "too short")
        if exc.error_type == phonenumbers.NumberParseException.TOO_LONG:
            return Invalid(text, "too long")
        return Invalid(text, "not a phone number")
    if not phonenumbers.is_valid_number(number):
        possible = phonenumbers.is_possible_number_with_reason(number)
        reason = _REASONS.get(possible)
        cc_region = phonenumbers.region_code_for_country_code(number.country_code or 0)
        where = (
            phonenumbers.region_code_for_number(number)
            or (cc_region if cc_region != "ZZ" else None)
            or region
            or "its country"
        )
        if reason:
            return Invalid(text, f"{reason} for {where}")
        return Invalid(text, f"not a valid number for {where}")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return PhoneResult(e164, phonenumbers.region_code_for_number(number), number.extension or None)


@functools.lru_cache(maxsize=65536)
def region_of(e164: str) -> str:
    """The ISO 3166 region of an E.164 number (``+442079460958`` → ``GB``; ``ZZ`` if none)."""
    return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None)) or "ZZ"


#: North American area codes whose territory straddles two zones, where libphonenumber names
#: only one (from NANPA's area code maps): a number there does not say which side it is on.
_SPLIT_NANP = {
    "208": ("America/Boise", "America/Los_Angeles"),  # Idaho: north panhandle Pacific
    "219": ("America/Chicago", "America/New_York"),  # NW Indiana (Gary: Central)
    "270": ("America/Chicago", "America/New_York"),  # western Kentucky
    "308": ("America/Chicago", "America/Denver"),  # western Nebraska
    "423": ("America/Chicago", "America/New_York"),  # east Tennessee (Chattanooga: Eastern)
    "541": ("America/Boise", "America/Los_Angeles"),  # Oregon (Malheur County: Mountain)
    "605": ("America/Chicago", "America/Denver"),  # South Dakota
    "606": ("America/Chicago", "America/New_York"),  # eastern Kentucky
    "620": ("America/Chicago", "America/Denver"),  # southern Kansas
    "701": ("America/Chicago", "America/Denver"),  # North Dakota
    "785": ("America/Chicago", "America/Denver"),  # northern Kansas
    "806": ("America/Chicago", "America/Denver"),  # Texas panhandle
    "812": ("America/Chicago", "America/New_York"),  # southern Indiana (Evansville: Central)
    "850": ("America/Chicago", "America/New_York"),  # Florida panhandle (Pensacola: Central)
    "906": ("America/Chicago", "America/Detroit"),  # Michigan's Upper Peninsula
    "915": ("America/Chicago", "America/Denver"),  # far west Texas
    "931": ("America/Chicago", "America/New_York"),  # middle Tennessee
    "432": ("America/Chicago", "America/Denver"),  # west Texas
}


@functools.lru_cache(maxsize=65536)
def zones_for_number(e164: str) -> tuple[str, ...]:
    """IANA zones a number may be in: libphonenumber's, canonical names, sorted, widened for
    North American area codes that straddle two zones (:data:`_SPLIT_NANP`).

    A mobile number says where it was issued, not where its owner lives; a zone column is
    always better. Returns an empty tuple when nothing is known (``Etc/Unknown``).
    """
    number = phonenumbers.parse(e164, None)
    zones = set()
    for zone in phone_timezone.time_zones_for_number(number):
        canonical = canonical_zone(zone)
        if isinstance(canonical, str):
            zones.add(canonical)
    if number.country_code == 1:
        zones.update(_SPLIT_NANP.get(str(number.national_number)[:3], ()))
    return tuple(sorted(zones))


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


_COUNTRY_NAMES = {
    "UK": "GB",
    "UNITED KINGDOM": "GB",
    "GREAT BRITAIN": "GB",
    "ENGLAND": "GB",
    "SCOTLAND": "GB",
    "WALES": "GB",
    "USA": "US",
    "UNITED STATES": "US",
    "UNITED STATES OF AMERICA": "US",
    "AMERICA": "US",
    "GERMANY": "DE",
    "DEUTSCHLAND": "DE",
    "AUSTRALIA": "AU",
    "CANADA": "CA",
    "FRANCE": "FR",
    "IRELAND": "IE",
    "SPAIN": "ES",
    "ITALY": "IT",
    "NETHERLANDS": "NL",
    "AUSTRIA": "AT",
    "SWITZERLAND": "CH",
    "NEW ZEALAND": "NZ",
    "INDIA": "IN",
    "MEXICO": "MX",
    "BRAZIL": "BR",
    "POLAND": "PL",
    "SWEDEN": "SE",
    # ISO 3166 alpha-3 codes of the same countries
    "GBR": "GB",
    "DEU": "DE",
    "AUS": "AU",
    "CAN": "CA",
    "FRA": "FR",
    "IRL": "IE",
    "ESP": "ES",
    "ITA": "IT",
    "NLD": "NL",
    "AUT": "AT",
    "CHE": "CH",
    "NZL": "NZ",
    "IND": "IN",
    "MEX": "MX",
    "BRA": "BR",
    "POL": "PL",
    "SWE": "SE",
}


@functools.lru_cache(maxsize=4096)
def normalize_region(value: str | None) -> str | None:
    """Turn a country cell (``GB``, ``United Kingdom``, ``44``, ``+44``) into an ISO region.

    Returns ``None`` when the cell is empty or not recognised (the caller falls back to
    ``defaults.region``).
    """
    text = clean(value)
    if text is None:
        return None
    upper = text.upper()
    if upper in phonenumbers.SUPPORTED_REGIONS:
        return upper
    if upper in _COUNTRY_NAMES:
        return _COUNTRY_NAMES[upper]
    digits = upper.lstrip("+")
    if digits.isdigit():
        region = phonenumbers.region_code_for_country_code(int(digits))
        return None if region == "ZZ" else region
    return None


# --- time zones ---------------------------------------------------------------------------------

_ABBREVIATION_HINTS = {
    "EST": ("America/New_York", "America/Toronto"),
    "EDT": ("America/New_York", "America/Toronto"),
    "ET": ("America/New_York",),
    "CST": ("America/Chicago", "America/Mexico_City"),
    "CDT": ("America/Chicago",),
    "CT": ("America/Chicago",),
    "MST": ("America/Denver", "America/Phoenix"),
    "MDT": ("America/Denver",),
    "MT": ("America/Denver",),
    "PST": ("America/Los_Angeles", "America/Vancouver"),
    "PDT": ("America/Los_Angeles",),
    "PT": ("America/Los_Angeles",),
    "AKST": ("America/Anchorage",),
    "HST": ("Pacific/Honolulu",),
    "GMT": ("Europe/London", "Europe/Dublin"),
    "BST": ("Europe/London",),
    "UTC": ("Europe/London",),
    "WET": ("Europe/Lisbon",),
    "CET": ("Europe/Berlin", "Europe/Paris", "Europe/Madrid"),
    "CEST": ("Europe/Berlin", "Europe/Paris"),
    "MET": ("Europe/Berlin",),
    "EET": ("Europe/Athens", "Europe/Helsinki", "Europe/Kyiv"),
    "IST": ("Asia/Kolkata", "Europe/Dublin"),
    "AEST": ("Australia/Sydney", "Australia/Melbourne", "Australia/Brisbane"),
    "AEDT": ("Australia/Sydney", "Australia/Melbourne"),
    "ACST": ("Australia/Adelaide", "Australia/Darwin"),
    "AWST": ("Australia/Perth",),
    "NZST": ("Pacific/Auckland",),
    "JST": ("Asia/Tokyo",),
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
    year = dt.date.today().year
    found = []
    for name in _COMMON_ZONES:
        zone = zoneinfo.ZoneInfo(name)
        for month in (1, 7):
            offset = dt.datetime(year, month, 15, 12, tzinfo=zone).utcoffset()
            if offset is not None and offset == dt.timedelta(minutes=minutes):
                found.append(name)
                break
    return tuple(found)


def _suggest_for_offset(text: str) -> str:
    """Likely zones for ``UTC-5``, ``GMT+2``, ``+05:30``; ``UTC`` alone suggests London."""
    match = _OFFSET_PARTS.match(text.replace(" ", ""))
    minutes = 0
    if match:
        sign = -1 if match[1] in "-\u2212" else 1
        minutes = sign * (int(match[2]) * 60 + int(match[3] or 0))
    zones = zones_at_offset(minutes)[:4]
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
        return Invalid(text, f"a fixed UTC offset, not a place{_suggest_for_offset(compact)}")
    name = by_folded.get(text.casefold()) or by_folded.get(compact.casefold())
    if name is None:
        if re.fullmatch(r"[A-Za-z]{2,5}", text):
            return Invalid(text, f"an abbreviation, not an IANA zone{_suggest(text)}")
        return Invalid(text, f"not an IANA time zone{_suggest(text)}")
    if name.startswith("Etc/") or name in {"GMT+0", "GMT-0", "GMT0", "Greenwich", "Universal"}:
        return Invalid(text, f"a fixed UTC offset, not a place{_suggest(text)}")
    if re.fullmatch(r"[A-Z0-9+-]+", name) and "/" not in name:
        return Invalid(text, f"an abbreviation, not an IANA zone{_suggest(name)}")
    canonical = links.get(name, name)
    if canonical.split("/", 1)[0] not in _REGIONAL_AREAS:
        return Invalid(text, f"not a regional IANA time zone{_suggest(text)}")
    return canonical


# --- dates --------------------------------------------------------------------------------------

_EXCEL_EPOCH = dt.date(1899, 12, 30)
_ISO_DATE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?Z?$"
)
_SERIAL = re.compile(r"^\d{1,7}(?:\.\d+)?$")
#: Smallest Excel serial read as a date: 10000 is 1927-05-18.
MIN_SERIAL = 10_000


@functools.lru_cache(maxsize=65536)
def normalize_date(value: str | None) -> str | Invalid | None:
    """A date cell as ``YYYY-MM-DD``.

    Accepts ISO dates and date-times (``2024-03-10``, ``2024-03-10T14:30:00``, ``2024/03/10``)
    and Excel serial day numbers (``45292`` → ``2024-01-01``; the fraction, a time of day, is
    dropped; the 1900 system with its 1899-12-30 epoch) from :data:`MIN_SERIAL` on: a smaller
    number (``2024`` typed for a year, a count) is far likelier a mistake than a date before
    1927. Day-first and month-first forms such as ``03/04/2024`` are refused as ambiguous.
    """
    text = clean(value)
    if text is None:
        return None
    match = _ISO_DATE.match(text.replace("/", "-"))
    if match:
        try:
            return dt.date(int(match[1]), int(match[2]), int(match[3])).isoformat()
        except ValueError:
            return Invalid(text, "not a calendar date")
    if _SERIAL.match(text):
        serial = float(text)
        if MIN_SERIAL <= serial < 2958466:  # .. 9999-12-31, the end of Excel's range
            return (_EXCEL_EPOCH + dt.timedelta(days=int(serial))).isoformat()
        if serial.is_integer() and 1900 <= serial <= 2100:
            return Invalid(text, "looks like a year, not a date; write it as YYYY-MM-DD")
        if serial < MIN_SERIAL:
            return Invalid(text, "a number too small for an Excel date; write it as YYYY-MM-DD")
    return Invalid(text, "not a date; write it as YYYY-MM-DD")
