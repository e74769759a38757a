"""Values a dialer can trust: names, e-mails, E.164 phones, IANA time zones and dates.

Every function here takes one text value as a person typed it and returns either the normalised
value or an :class:`Invalid` that says why not. Nothing raises for bad data. Results are cached
by value, because lead lists repeat the same zones, regions and (after duplicates) numbers.

Sources of the rules:

* Phones: libphonenumber through ``phonenumbers`` (``parse``, ``is_valid_number``, E.164 format,
  ``phonenumbers.timezone`` for zone inference).
* Zones: zone names are read by :mod:`etl.zones` (the IANA tz database of the ``tzdata``
  package); a row's zone is inferred here from its phones (:func:`zones_of_phones`,
  :func:`infer_zone`). :class:`Invalid`, :func:`clean` and :func:`fold_text` come from
  :mod:`etl.values` and are re-exported.
* E-mails: the addr-spec of RFC 5322 restricted to what mail systems accept (``email-validator``'s
  rules without DNS): one ``@``, a dot-atom local part, a domain of LDH labels with a dot.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass

import babel
import babel.core
import babel.localedata
import email_validator
import pandas as pd
import phonenumbers
from phonenumbers import timezone as phone_timezone

from etl.values import Invalid, clean, fold_text, reason_kind
from etl.zones import canonical_zone, same_clock, windows_zone

__all__ = [
    "DateOrder",
    "Invalid",
    "PhoneResult",
    "canonical_zone",
    "clean",
    "current_form",
    "date_reading",
    "fold_text",
    "infer_zone",
    "normalize_date",
    "normalize_email",
    "normalize_emails",
    "normalize_name",
    "normalize_region",
    "parse_country",
    "parse_phone",
    "reason_kind",
    "region_of",
    "same_clock",
    "split_phones",
    "visible_phone_text",
    "windows_zone",
    "zones_for_number",
    "zones_of_phones",
]


_WS = re.compile(r"\s+", re.UNICODE)


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
_EMAIL_FULL = _EMAIL.fullmatch


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
    cells = values.tolist()
    out: list[object] = [_common_email(cell) for cell in cells]
    for n in [n for n, found in enumerate(out) if found is None]:
        out[n] = normalize_email(cells[n])
    return pd.Series(out, index=values.index, dtype=object)


def _common_email(cell: object) -> str | None:
    """The address of a cell in the common ASCII form (stripped, lower-cased; the fast path of
    :func:`normalize_email`), else ``None``: one pass per cell instead of one per check."""
    if type(cell) is not str:
        return None
    text = cell.strip().lower()
    if (
        _EMAIL_FULL(text)
        and len(text) <= 254
        and len(text.split("@", 1)[0]) <= 64
        and text.rsplit(".", 1)[-1] not in _SPECIAL_USE
    ):
        return text
    return None


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


#: Characters that never belong to a number but ride along from web pages, PDFs, right-to-left
#: text and phones' contact cards: format characters (Unicode category Cf: LRM/RLM U+200E/F,
#: zero-width space and joiners, the BOM U+FEFF, word joiner U+2060) and variation selectors.
_INVISIBLE = re.compile(r"[\u180e\ufe00-\ufe0f\U000e0100-\U000e01ef]")


def visible_phone_text(text: str) -> str:
    """Pre-processing of a phone cell: drop invisible characters, make every Unicode space an
    ASCII space.

    Dropped: category ``Cf`` (LRM/RLM ``U+200E``/``U+200F``, zero-width space ``U+200B``,
    joiners, ``U+2060``, the BOM ``U+FEFF``, bidi embeddings and isolates) and the variation
    selectors ``U+FE00``–``U+FE0F`` and ``U+E0100``–``U+E01EF``. Spaces (category ``Zs``:
    no-break ``U+00A0``, narrow no-break ``U+202F``, thin ``U+2009``, ideographic ``U+3000``…)
    become ``" "``. Pure, cheap, and the same for any reader of the number.
    """
    if text.isascii():
        return text
    text = _INVISIBLE.sub("", text)
    return "".join(
        " " if cat == "Zs" else ch for ch in text if (cat := unicodedata.category(ch)) != "Cf"
    )


#: Mexico's numbering before August 2019 (IFT's plan): mobiles dialled ``044`` (local) or
#: ``045`` (long distance) before the 10 digits at home and ``+52 1`` from abroad; ``01`` was
#: the long-distance prefix. Since then every number is the 10 digits after ``+52``, and the old
#: prefixes are what libphonenumber refuses ("too long"); the 10 digits reach the subscriber.
_MX_OLD = re.compile(r"^(?:044|045|01|1)(\d{10})$")


def current_form(number: phonenumbers.PhoneNumber) -> phonenumbers.PhoneNumber | None:
    """Post-processing of a number libphonenumber refuses: the current form of an outdated
    dialling convention, or ``None``.

    Handled (each converts to a number libphonenumber then finds valid, or nothing happens):

    * Mexico (+52): ``+52 1 55 3320 5716`` (old mobile-from-abroad ``1``), ``044 33 2735 5743``
      and ``045 …`` (old mobile prefixes), ``01 55 …`` (old long-distance prefix), each → the
      10-digit national number (``+525533205716``).

    Conventions libphonenumber already reads are not repeated here: the trunk zero in
    brackets (``+44 (0)20 7946 0958``, ``+49 (0)30 …``), Argentina's ``15`` mobile prefix
    (``011 15 2345-6789`` → ``+5491123456789``) and ``+54 11 15 …``, Russia's trunk ``8``, Brazil's
    carrier codes (``0 21 11 …``).
    """
    if number.country_code == 52:
        nsn = phonenumbers.national_significant_number(number)
        match = _MX_OLD.match(nsn)
        if match:
            fixed = phonenumbers.parse("+52" + match[1], None)
            if phonenumbers.is_valid_number(fixed):
                return fixed
    return None


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
    text = _phone_text(value)
    if isinstance(text, Invalid):
        return text
    parsed = _parse_number(text, region)
    if isinstance(parsed, Invalid):
        return parsed
    number, text = parsed
    if not phonenumbers.is_valid_number(number):
        return _invalid_number(number, text, region)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return PhoneResult(e164, phonenumbers.region_code_for_number(number), number.extension or None)


def _phone_text(value: str) -> str | Invalid:
    """The text of a phone cell to parse (visible characters, no ``tel:``), or why there is no
    number in it (empty, scientific notation, no digits)."""
    text = clean(value)
    if text is None:
        return Invalid("", "empty")
    text = visible_phone_text(text)
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
    return text


def _parse_number(text: str, region: str | None) -> tuple[phonenumbers.PhoneNumber, str] | Invalid:
    """libphonenumber's reading of ``text`` (valid or not) and the text it read (``00…`` read
    as ``+…`` when there is no region), the current form of an old number when there is one;
    or why it cannot be read at all."""
    try:
        compact = re.sub(r"[\s().-]", "", text)
        if not region and compact.startswith("00") and not compact.startswith("000"):
            text = "+" + compact[2:]  # no region to dial from: 00 is the usual "+"
        number = phonenumbers.parse(text, region or None)
        if not phonenumbers.is_valid_number(number):
            tries = [number]
            # "0044 20 …" written where 00 is not the region's international prefix (the US
            # dials 011): read 00 as "+", the common European form.
            if compact.startswith("00") and not compact.startswith("000"):
                tries.append(phonenumbers.parse("+" + compact[2:], None))
            for attempt in tries:
                current = attempt if phonenumbers.is_valid_number(attempt) else None
                current = current or current_form(attempt)
                if current is not None:
                    number = current
                    break
    except phonenumbers.NumberParseException as exc:
        return _unreadable(exc, text, region)
    return number, text


def _unreadable(exc: phonenumbers.NumberParseException, text: str, region: str | None) -> Invalid:
    """Why libphonenumber could not read ``text`` at all."""
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


def _invalid_number(number: phonenumbers.PhoneNumber, text: str, region: str | None) -> Invalid:
    """Why a number libphonenumber read is not valid (too short, too long... for where)."""
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


def zones_of_phones(
    phones: tuple[str, ...], known: dict[str, tuple[str, ...]] | None = None
) -> tuple[str, ...]:
    """The zones any of a row's numbers may be in (all of them: a 415 mobile and a 212 office
    line together do not name one zone); ``known``: zones of numbers looked up already."""
    zones: set[str] = set()
    for phone in phones:
        found = known.get(phone) if known is not None else None
        zones.update(found if found is not None else zones_for_number(phone))
    return tuple(sorted(zones))


def infer_zone(
    phones: str,
    candidates: tuple[str, ...],
    default: str | None,
    use_default: bool = False,
    has_column: bool = True,
) -> tuple[str | Invalid | None, str | None]:
    """Zone of a row whose file gives none: from its phones when they name one zone, else default.

    Rules (libphonenumber's ``phonenumbers.timezone``, with area codes known to straddle two
    zones widened): one candidate over all the row's numbers → it; several → the mapping's
    ``defaults.timezone`` when it is among them (or ``use_default``:
    ``defaults.ambiguous_timezone: default``), else refused as ambiguous; none → the default.
    """
    if len(candidates) == 1:
        return candidates[0], "phone"
    if len(candidates) > 1:
        if default in candidates or (use_default and default):
            return default, "default"
        shown = ", ".join(candidates[:6]) + (" …" if len(candidates) > 6 else "")
        fix = "fill the time zone column" if has_column else "map a time zone column"
        if default:
            fix += " (or set defaults.ambiguous_timezone: default)"
        return Invalid("", f"zone ambiguous: {phones} could be in {shown}; {fix}"), None
    if default:
        return default, "default"
    return None, None


#: Forms people write that no CLDR locale lists as a territory's name (CLDR's own names, in
#: every locale, come from Babel; see :func:`_country_names`). Keys are :func:`fold_text` forms.
_COMMON_COUNTRY_FORMS = {
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "grossbritannien": "GB",  # German
    "grande bretagne": "GB",  # French
    "gran bretagna": "GB",  # Italian
    "gra bretanha": "GB",  # Portuguese
    "groot brittannie": "GB",  # Dutch
    "united states of america": "US",
    "vereinigte staaten von amerika": "US",
    "etats unis d amerique": "US",
    "estados unidos de america": "US",
    "eeuu": "US",  # Spanish "EE.UU."
    "ee uu": "US",
    "uae": "AE",
    "holland": "NL",
    "republic of ireland": "IE",
}


@dataclass(frozen=True)
class _CountryNames:
    """Folded country name → ISO region, and the folded names that mean several regions."""

    regions: dict[str, str]
    clashes: dict[str, tuple[str, ...]]


def _add_names(table: dict[str, set[str]], names: AbcMapping[str, str]) -> None:
    for code, name in names.items():
        if code in phonenumbers.SUPPORTED_REGIONS:
            table.setdefault(fold_text(name), set()).add(code)


def _settle(table: dict[str, set[str]]) -> _CountryNames:
    regions = {name: next(iter(codes)) for name, codes in table.items() if len(codes) == 1}
    clashes = {name: tuple(sorted(codes)) for name, codes in table.items() if len(codes) > 1}
    return _CountryNames(regions, clashes)


@functools.lru_cache(maxsize=1)
def _english_country_names() -> _CountryNames:
    """ISO alpha-3 codes (CLDR's territory aliases), English CLDR names (``United Kingdom``,
    ``UK``-style short forms are codes or :data:`_COMMON_COUNTRY_FORMS`) and the common forms."""
    table: dict[str, set[str]] = {}
    for alias, targets in babel.core.get_global("territory_aliases").items():
        if len(alias) == 3 and alias.isalpha() and len(targets) == 1:
            if targets[0] in phonenumbers.SUPPORTED_REGIONS:
                table.setdefault(alias.casefold(), set()).add(targets[0])
    _add_names(table, babel.Locale("en").territories)
    for name, code in _COMMON_COUNTRY_FORMS.items():
        table[name] = {code}
    return _settle(table)


@functools.lru_cache(maxsize=1)
def _country_names() -> _CountryNames:
    """Every territory name of every CLDR locale Babel ships (``Vereinigtes Königreich``,
    ``Großbritannien``, ``Royaume-Uni``, ``Reino Unido``, ``Соединенное Королевство``…).

    Loading the ~1,100 locales takes about two seconds, once per process, and only when a value
    is not a code or an English name. A folded name that two locales give to different
    regions (``Kongo``: CD in one language, CG in another) is a clash, and names no region;
    an English name wins over other languages' (``America`` is the US).
    """
    pairs: set[tuple[str, str]] = set()  # (name, region): locales repeat most names
    for locale in babel.localedata.locale_identifiers():
        names = babel.localedata.load(locale, merge_inherited=False).get("territories", {})
        pairs.update((name, code) for code, name in names.items())
        _forget_locale(locale)
    table: dict[str, set[str]] = {}
    for name, code in pairs:
        if code in phonenumbers.SUPPORTED_REGIONS:
            table.setdefault(fold_text(name), set()).add(code)
    english = _english_country_names()
    for name, code in english.regions.items():
        table[name] = {code}
    return _settle(table)


def _forget_locale(locale: str) -> None:
    """Drop a locale Babel keeps after :func:`babel.localedata.load` (its module cache holds
    every locale read, ~190 MB for all of them, for the life of the process; only the names
    are kept here). Nothing happens if that cache is not where Babel 2 keeps it."""
    cache = getattr(babel.localedata, "_cache", None)
    lock = getattr(babel.localedata, "_cache_lock", None)
    if isinstance(cache, dict) and lock is not None:
        with lock:
            cache.pop(locale, None)


@functools.lru_cache(maxsize=4096)
def parse_country(value: str | None) -> str | Invalid | None:
    """Turn a country cell, written any way people write one, into an ISO 3166 alpha-2 region.

    Recognised, in this order (matching ignores case, accents, punctuation and spacing):

    * ISO alpha-2 codes libphonenumber knows (``GB``, ``u.s.``) and ISO alpha-3 codes
      (``GBR``, ``USA``, from CLDR's territory aliases);
    * calling codes (``44``, ``+44``, ``0044``; ``1`` is the US, ``7`` Russia: the main
      region of the code, as libphonenumber names it);
    * English names (CLDR's, and :data:`_COMMON_COUNTRY_FORMS`: ``Great Britain``,
      ``England``);
    * the territory names of every CLDR locale (``Vereinigtes Königreich``, ``Frankreich``,
      ``México``, ``Royaume-Uni``).

    Returns:
        The region (``GB``), ``None`` for an empty cell, or :class:`Invalid` saying why the
        value names no country (unknown, or a name different languages give to different
        countries). Never a guess: the caller must not fall back to a default region.
    """
    text = clean(value)
    if text is None:
        return None
    folded = fold_text(text)
    compact = folded.replace(" ", "").upper()
    if compact in phonenumbers.SUPPORTED_REGIONS:
        return compact
    digits = re.sub(r"[\s()+.-]", "", text)
    if digits.isdigit():
        if digits.startswith("00"):
            digits = digits[2:]
        region = phonenumbers.region_code_for_country_code(int(digits)) if digits else "ZZ"
        if region == "ZZ":
            return Invalid(text, "not a country calling code")
        return region
    for names in (_english_country_names(), _country_names()):
        for key in (folded, compact.casefold()):
            if key in names.regions:
                return names.regions[key]
        if folded in names.clashes:
            shown = " or ".join(names.clashes[folded])
            return Invalid(text, f"names more than one country ({shown}); write its ISO code")
    return Invalid(text, "not a country name or code; write its ISO code (GB, DE, US)")


def normalize_region(value: str | None) -> str | None:
    """:func:`parse_country`'s region, or ``None`` when the cell is empty or names no country."""
    result = parse_country(value)
    return result if isinstance(result, str) else None


# --- dates --------------------------------------------------------------------------------------

_EXCEL_EPOCH = dt.date(1899, 12, 30)
_ISO_DATE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?Z?$"
)
_SERIAL = re.compile(r"^\d{1,7}(?:\.\d+)?$")
#: Smallest Excel serial read as a date: 10000 is 1927-05-18.
MIN_SERIAL = 10_000


#: A date with the year last: ``25/12/2023``, ``12/25/2023``, ``25.12.2023``, ``25-12-2023``
#: (an optional time of day after it is dropped).
_DMY = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4})(?:[T ,]+\d{1,2}:\d{2}(?::\d{2})?)?$")
DAY_FIRST = "day-first"
MONTH_FIRST = "month-first"
#: ``order`` of a column whose values were read both ways: its year-last dates are refused.
MIXED = "mixed"


def date_reading(value: str | None) -> str | None:
    """How a year-last date can be read: :data:`DAY_FIRST` (``25/12/2023``: 25 is no month),
    :data:`MONTH_FIRST` (``12/25/2023``), ``"either"`` (``03/04/2024``), or ``None`` when the
    value is not a year-last date or both readings give the same day (``05/05/2024``)."""
    text = clean(value)
    match = _DMY.match(text) if text else None
    if not match:
        return None
    first, second = int(match[1]), int(match[3])
    if first == second:
        return None
    if first > 12 and second <= 12:
        return DAY_FIRST
    if second > 12 and first <= 12:
        return MONTH_FIRST
    if first <= 12 and second <= 12:
        return "either"
    return None


@dataclass(frozen=True)
class DateOrder:
    """The order of a date column's year-last values, decided over the whole run.

    Attributes:
        order: :data:`DAY_FIRST`, :data:`MONTH_FIRST`, :data:`MIXED` (values that can only be
            read one way disagree), or ``None`` (no value showed the order).
        day_first: the first value seen that only reads day-first, with where it was
            (``'25/12/2023' (a.csv row 5)``), or ``""``.
        month_first: the same for month-first.
    """

    order: str | None = None
    day_first: str = ""
    month_first: str = ""

    @staticmethod
    def decide(day_first: str, month_first: str) -> DateOrder:
        """The order two examples (``""`` when none was seen) prove."""
        if day_first and month_first:
            return DateOrder(MIXED, day_first, month_first)
        if day_first:
            return DateOrder(DAY_FIRST, day_first, "")
        if month_first:
            return DateOrder(MONTH_FIRST, "", month_first)
        return DateOrder()


@functools.lru_cache(maxsize=65536)
def normalize_date(value: str | None, order: DateOrder | None = None) -> str | Invalid | None:
    """A date cell as ``YYYY-MM-DD``.

    Accepts ISO dates and date-times (``2024-03-10``, ``2024-03-10T14:30:00``, ``2024/03/10``)
    and Excel serial day numbers (``45292`` → ``2024-01-01``; the fraction, a time of day, is
    dropped; the 1900 system with its 1899-12-30 epoch) from :data:`MIN_SERIAL` on: a smaller
    number (``2024`` typed for a year, a count) is far likelier a mistake than a date before
    1927.

    Year-last dates (``25/12/2023``, ``12/25/2023``, ``25.12.2023``) follow their column's
    ``order`` (:class:`DateOrder`, decided from the values of the whole run that can only be
    read one way): read in that order; a value that can only be read the other way, or any
    year-last value of a :data:`MIXED` column, is refused with both examples. With no order
    (the column showed none, or a value on its own), a value that reads only one way is read
    that way and one that reads both ways (``03/04/2024``) is refused as ambiguous: nothing
    guesses between 3 April and March 4.
    """
    text = clean(value)
    if text is None:
        return None
    year_last = _DMY.match(text)
    if year_last:
        return _year_last_date(text, year_last, order or DateOrder())
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


def _year_last_date(text: str, match: re.Match[str], order: DateOrder) -> str | Invalid:
    reading = date_reading(text)
    fix = "write it as YYYY-MM-DD"
    if order.order == MIXED:
        return Invalid(
            text,
            f"the column mixes day-first dates ({order.day_first}) and month-first dates "
            f"({order.month_first}), so its dates cannot be trusted; {fix}",
        )
    if reading == "either" and order.order is None:
        return Invalid(
            text,
            "ambiguous: day-first or month-first, and no date of this column has a day above "
            f"12 to tell; {fix}",
        )
    other = {DAY_FIRST: MONTH_FIRST, MONTH_FIRST: DAY_FIRST}
    if order.order is not None and reading == other[order.order]:
        seen = order.day_first or order.month_first
        return Invalid(
            text, f"{reading}, but the column's other dates are {order.order} ({seen}); {fix}"
        )
    first, second, year = int(match[1]), int(match[3]), int(match[4])
    day_first = reading == DAY_FIRST or (reading != MONTH_FIRST and order.order == DAY_FIRST)
    day, month = (first, second) if day_first or first == second else (second, first)
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return Invalid(text, "not a calendar date")
