"""A starter mapping guessed from a lead file's headers and a sample of its values.

:func:`starter_mapping` backs ``voiptime-etl mapping-init SOURCE`` (see README.md). It
opens the file with :func:`etl.extract.open_source` (so the sheet, header row, encoding and
delimiter are detected exactly as an import will detect them), reads the first rows, and writes a
mapping (docs/mapping.md) that :func:`etl.mapping.load_mapping` accepts and whose
every column :func:`etl.plan.resolve_columns` finds in the file.

How columns are matched:

* **Headers** are compared after case-folding, stripping accents and dropping everything but
  letters and digits (``E-Mail``, ``e_mail`` and ``EMAIL`` are all ``email``) against synonym
  tables (etl/synonyms.yaml) in English, German, French, Spanish, Italian, Portuguese, Dutch,
  Polish and the Nordic languages: first name (``First Name``, ``fname``, ``Given name``,
  ``Vorname``, ``Prénom``), surname (``Last Name``, ``Surname``, ``Nachname``, ``Nom``,
  ``Apellido``), e-mail (``E-mail``, ``Mail``, ``Courriel``), time zone (``TZ``, ``Time zone``,
  ``Zeitzone``), phones with their label (mobile: ``Mobile``, ``Cell``, ``Handy``, ``Portable``,
  ``Móvil``; work: ``Office``, ``Work``, ``Direct line``, ``Business phone``; home: ``Home phone``,
  ``Privat``; main: ``Phone``, ``Tel``, ``Telefon``, ``Téléphone``), country (``Country``,
  ``Land``, ``Pays``, ``Region``, ``Country code``, Outlook's and Dynamics 365's
  ``Country/Region``) and notes (``Notes``, ``Comment``, ``Bemerkung``, ``Remarks``). A header that
  is not in a table is tried again without a qualifier in front (``Contact First``, ``Work Email``,
  ``Business Mobile``) or behind (``Email address``, ``Mobile No``, ``Phone 2``); such a match
  ranks below an exact one. A bare ``Name`` is the first name, or the surname when another column
  is the first name (``Vorname`` / ``Name``).
* **Values** decide the rest: a country column becomes ``defaults.region_column`` only when at
  least 80 % of its sampled values are countries :func:`etl.normalize.normalize_region` knows;
  a column whose values are at least 80 % dates (``2024-03-10``, or Excel day numbers under a
  date-like header) is sent as ``{column, type: date}``; with no e-mail or zone header, a column
  whose values are at least 80 % e-mail addresses or IANA zones is used. Every other column
  with a value in the sample goes to ``dynamicData`` under a unique ASCII snake_case key; those
  empty in the sample are listed in a closing comment, not mapped. (A column a synonym names is
  mapped even when empty.)
* **Defaults**: the region is the most common country of the region column, else the country
  of the most common zone of the zone column, else ``US``; the time zone is the most common
  canonical zone of the zone column, else the main zone of that region (``US`` →
  ``America/New_York``, ``GB`` → ``Europe/London``, ``DE`` → ``Europe/Berlin``, ``AU`` →
  ``Australia/Sydney``; other regions: the first zone IANA's ``zone.tab`` lists for them).

When no column can be guessed for ``name``, ``surname`` or ``email`` (the fields every mapping
needs), no text is returned: :class:`~etl.errors.MappingError` names each such field and lists
the file's headers, so the user writes those lines by hand.

Each line a synonym or a heuristic decided carries a ``# guessed: ...`` comment. ``project: 1``
is a placeholder to replace (``voiptime-etl projects`` lists them); status, source and campaign
are shown as comments. Header and sheet names are written with ``yaml.safe_dump``, so names such
as ``yes``, ``2024``, ``#`` or ``a: b`` load back as the same text.
"""

from __future__ import annotations

import codecs
import functools
import importlib.resources
import json
import logging
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import phonenumbers
import yaml

from etl.errors import MappingError
from etl.extract import ReadOptions, list_sheets, open_source
from etl.normalize import canonical_zone, clean, normalize_date, normalize_email, normalize_region

__all__ = ["starter_mapping"]

log = logging.getLogger(__name__)

#: Share of a column's non-empty sampled values that must fit for a value-based guess.
VALUE_SHARE = 0.8

# --- synonym tables -----------------------------------------------------------------------------
# The tables of header synonyms, by role, are data: etl/synonyms.yaml.

#: Qualifiers a header may carry before a synonym (``Contact First``, ``Work Email``).
_PREFIXES = (
    "contact", "customer", "client", "lead", "person", "primary", "main", "kontakt", "kunde",
    "kunden", "ansprechpartner", "work", "business", "personal", "private", "partner", "member",
)  # fmt: skip
#: Qualifiers a header may carry after a synonym (``Email address``, ``Mobile No``).
_SUFFIXES = ("number", "nummer", "numero", "no", "nr", "num", "address", "adresse", "addr")
#: Header parts that make a column of plain numbers read as Excel day numbers.
_DATE_WORDS = (
    "date", "datum", "fecha", "data", "dob", "birth", "geburt", "naissance", "since", "seit",
    "created", "updated", "modified", "joined", "expir", "renewal", "signup", "signedup",
)  # fmt: skip

#: The zone a region's leads most often have when nothing else tells (multi-zone countries
#: pinned to their most populous zone; others come from IANA's zone.tab).
_REGION_ZONES = {
    "US": "America/New_York",
    "CA": "America/Toronto",
    "MX": "America/Mexico_City",
    "BR": "America/Sao_Paulo",
    "AR": "America/Argentina/Buenos_Aires",
    "GB": "Europe/London",
    "IE": "Europe/Dublin",
    "DE": "Europe/Berlin",
    "AT": "Europe/Vienna",
    "CH": "Europe/Zurich",
    "FR": "Europe/Paris",
    "ES": "Europe/Madrid",
    "PT": "Europe/Lisbon",
    "IT": "Europe/Rome",
    "NL": "Europe/Amsterdam",
    "BE": "Europe/Brussels",
    "RU": "Europe/Moscow",
    "AU": "Australia/Sydney",
    "NZ": "Pacific/Auckland",
    "IN": "Asia/Kolkata",
    "CN": "Asia/Shanghai",
    "ID": "Asia/Jakarta",
}
_FALLBACK_REGION = "US"

_LABELS = {"name": "a first name", "surname": "a surname", "email": "an e-mail address"}
_EXAMPLES = {
    "name": "First Name, fname, Given name, Vorname, Prénom",
    "surname": "Last Name, lname, Surname, Nachname, Nom, Apellido",
    "email": "Email, E-mail, Mail, Courriel",
}
_ISO_DATE = re.compile(
    r"^\d{4}[-/]\d{1,2}[-/]\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?$"
)
_SERIAL = re.compile(r"^\d{1,7}(?:\.\d+)?$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _norm(header: str) -> str:
    """Case-fold, strip accents, keep letters and digits: ``E-Mail Adresse`` → ``emailadresse``."""
    text = unicodedata.normalize("NFKD", header.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return "".join(ch for ch in text if ch.isalnum())


def _table() -> dict[str, tuple[str, str | None]]:
    """Normalised synonym → (role, phone label), from etl/synonyms.yaml (a list of ``{role,
    label (phones only), words}``)."""
    text = importlib.resources.files("etl").joinpath("synonyms.yaml").read_text("utf-8")
    table: dict[str, tuple[str, str | None]] = {}
    for group in yaml.safe_load(text):
        role, label = group["role"], group.get("label")
        for word in group["words"]:
            key = _norm(word)
            if table.setdefault(key, (role, label)) != (role, label):
                raise AssertionError(f"synonym {word!r} is in two tables")
    table[_norm("timezoneId")] = ("timezoneId", None)
    return table


_SYNONYMS = _table()


# --- the columns --------------------------------------------------------------------------------


@dataclass
class _Column:
    """One header of the file and what was decided about it."""

    header: str
    norm: str
    values: list[str]  # non-empty sampled values, trimmed
    role: str | None = None  # name, surname, email, timezoneId, phone, region, comment, dynamic
    label: str | None = None  # phone label
    exact: bool = True  # the header matched a synonym as it is (not after dropping a qualifier)
    why: str = ""  # the "# guessed: ..." text
    vtype: str = "text"  # dynamicData value type

    def share(self, test: Iterable[bool]) -> float:
        """Share of the sampled values for which ``test`` is true (0 when there are none)."""
        hits = list(test)
        return sum(hits) / len(hits) if hits else 0.0


def _lookup(norm: str) -> tuple[str, str | None, bool] | None:
    """The role a normalised header names: ``(role, phone label, exact)``, or ``None``."""
    if norm in _SYNONYMS:
        role, label = _SYNONYMS[norm]
        return role, label, True
    bare = [norm] + [norm[len(p) :] for p in _PREFIXES if norm.startswith(p)]
    tries: list[str] = []
    for stem in bare:
        tries.append(stem)
        digits = stem.rstrip("0123456789")
        tries.append(digits)
        tries += [digits[: -len(s)] for s in _SUFFIXES if digits.endswith(s)]
    for stem in tries[1:]:  # tries[0] is the header itself, looked up above
        if stem and stem in _SYNONYMS:
            role, label = _SYNONYMS[stem]
            return role, label, False
    return None


def _show(text: str) -> str:
    """A header as shown inside a comment: double-quoted, on one line."""
    return json.dumps(text, ensure_ascii=False)


def _scalar(value: str | int) -> str:
    """A YAML scalar that loads back as exactly ``value``, safe inside a flow mapping."""
    dumped = yaml.safe_dump([value], default_flow_style=True, allow_unicode=True, width=2**30)
    return dumped.strip()[1:-1]


def _percent(share: float) -> str:
    return f"{round(share * 100)}%"


@functools.lru_cache(maxsize=1)
def _zone_tab() -> tuple[dict[str, str], dict[str, str]]:
    """IANA ``zone.tab``: ``(region → first zone listed, zone → region)``."""
    text = importlib.resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text("utf-8")
    first: dict[str, str] = {}
    country: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) >= 3:
            first.setdefault(parts[0], parts[2])
            country[parts[2]] = parts[0]
    return first, country


def _zone_for_region(region: str) -> str:
    zone = _REGION_ZONES.get(region) or _zone_tab()[0].get(region)
    canonical = canonical_zone(zone) if zone else None
    return canonical if isinstance(canonical, str) else _REGION_ZONES[_FALLBACK_REGION]


def _region_for_zone(zone: str) -> str | None:
    region = _zone_tab()[1].get(zone)
    return region if region in phonenumbers.SUPPORTED_REGIONS else None


def _snake(header: str) -> str:
    """An ASCII snake_case key: ``Signed Up`` → ``signed_up``, ``Straße`` → ``strasse``."""
    text = _CAMEL.sub("_", header).casefold()
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    key = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if not key:
        return "field"
    return f"field_{key}" if key[0].isdigit() else key


def _is_date(column: _Column) -> float:
    """Share of the column's values that are dates :func:`normalize_date` reads."""
    serials = any(word in column.norm for word in _DATE_WORDS)

    def looks(value: str) -> bool:
        if not (_ISO_DATE.match(value) or (serials and _SERIAL.match(value))):
            return False
        return isinstance(normalize_date(value), str)

    return column.share(looks(v) for v in column.values)


# --- guessing -----------------------------------------------------------------------------------


@dataclass
class _Guess:
    """Everything decided about a file, ready to be written out."""

    columns: list[_Column]
    region: str = _FALLBACK_REGION
    region_why: str = ""
    zone: str = ""
    zone_why: str = ""
    skipped: list[str] = field(default_factory=list)

    def pick(self, role: str) -> list[_Column]:
        return [c for c in self.columns if c.role == role]


def _assign_single(columns: list[_Column], role: str, candidates: list[_Column]) -> None:
    """Give ``role`` to the best candidate (exact header first, then file order)."""
    if not candidates:
        return
    best = min(candidates, key=lambda c: (not c.exact, columns.index(c)))
    for col in candidates:
        if col is not best:
            col.role, col.label = None, None
            col.why = f"looks like {role} too, but {_show(best.header)} is used"


#: What a header found in the synonym tables says a column holds, by role.
_MEANS = {
    "name": "the first name",
    "surname": "the surname",
    "email": "the e-mail",
    "timezoneId": "the time zone",
    "region": "the country",
    "comment": "a note",
}


def _by_header(columns: list[_Column]) -> None:
    """Roles from the synonym tables; a country column only when its values are countries."""
    for col in columns:
        found = _lookup(col.norm)
        if found is None:
            continue
        col.role, col.label, col.exact = found
        what = f"a {col.label} phone" if col.role == "phone" else _MEANS[col.role]
        col.why = f"{_show(col.header)} means {what}"
    for col in [c for c in columns if c.role == "region"]:
        share = col.share(normalize_region(v) is not None for v in col.values)
        if share >= VALUE_SHARE:
            col.why = f"{_percent(share)} of sampled values are countries"
        else:
            col.role = None
            seen = f"only {_percent(share)} of" if col.values else "no"
            col.why = f"not used as region_column: {seen} sampled values are countries"
    for role in ("name", "surname", "email", "timezoneId", "region"):
        _assign_single(columns, role, [c for c in columns if c.role == role])


def _bare_name(columns: list[_Column], taken: set[str | None]) -> None:
    """A bare "Name": the first name, or the surname beside another first-name column."""
    for col in columns:
        if col.role is not None or col.norm != "name":
            continue
        role = next((r for r in ("name", "surname") if r not in taken), None)
        if role is not None:
            col.role, col.exact = role, False
            what = "first name" if role == "name" else "surname"
            col.why = f"{_show(col.header)} taken as the {what}"
            taken.add(role)


def _is_email(value: str) -> bool:
    return "@" in value and isinstance(normalize_email(value), str)


def _is_zone(value: str) -> bool:
    return isinstance(canonical_zone(value), str)


#: Roles a column may take from its values when no header names them: (what, test).
_VALUE_TESTS: dict[str, tuple[str, Callable[[str], bool]]] = {
    "email": ("e-mail addresses", _is_email),
    "timezoneId": ("IANA time zones", _is_zone),
}


def _by_values(columns: list[_Column], taken: set[str | None]) -> None:
    """No e-mail or zone header: the unassigned column whose values fit best, if enough do."""
    for role, (what, test) in _VALUE_TESTS.items():
        if role in taken:
            continue
        best_col, best_share = None, 0.0
        for col in columns:
            if col.role is None and col.values:
                share = col.share(test(v) for v in col.values)
                if share >= VALUE_SHARE and share > best_share:
                    best_col, best_share = col, share
        if best_col is not None:
            best_col.role, best_col.exact = role, False
            best_col.why = f"{_percent(best_share)} of sampled values are {what}"
            taken.add(role)


def _rest(guess: _Guess) -> None:
    """The columns left: dates, other text (dynamic data), or nothing when empty."""
    for col in guess.columns:
        if col.role is not None:
            continue
        if not col.values:
            guess.skipped.append(col.header)
            continue
        col.role = "dynamic"
        share = _is_date(col)
        if share >= VALUE_SHARE:
            col.vtype = "date"
            col.why = f"{_percent(share)} of sampled values are dates"


def _zone_of(value: str) -> str | None:
    zone = canonical_zone(value)
    return zone if isinstance(zone, str) else None


def _region_of(value: str) -> str | None:
    return normalize_region(value) or None


def _most_common(
    guess: _Guess, role: str, read: Callable[[str], str | None]
) -> tuple[str | None, str]:
    """The most common value ``read`` finds in the columns of ``role`` (``None`` when it finds
    none), and where: ``most common in "COLUMN" (n of m)``."""
    found: Counter[str] = Counter()
    where = ""
    for col in guess.pick(role):
        found.update(v for v in map(read, col.values) if v is not None)
        where = col.header
    if not found:
        return None, ""
    top, n = found.most_common(1)[0]
    return top, f"most common in {_show(where)} ({n} of {sum(found.values())})"


def _defaults(guess: _Guess) -> None:
    """defaults.region and defaults.timezone: from the columns, else from each other."""
    zone, zone_why = _most_common(guess, "timezoneId", _zone_of)
    region, region_why = _most_common(guess, "region", _region_of)
    if region is not None:
        guess.region, guess.region_why = region, region_why
    elif zone is not None and _region_for_zone(zone):
        guess.region = _region_for_zone(zone) or _FALLBACK_REGION
        guess.region_why = f"the country of {zone}, the most common zone"
    else:
        guess.region_why = "no country column found"
    if zone is not None:
        guess.zone, guess.zone_why = zone, zone_why
    else:
        guess.zone = _zone_for_region(guess.region)
        guess.zone_why = f"the main zone of {guess.region}"


def _guess(headers: Sequence[str], values: dict[str, list[str]], source: str) -> _Guess:
    columns = [_Column(h, _norm(h), values.get(h, [])) for h in headers]
    _by_header(columns)
    taken = {c.role for c in columns}
    _bare_name(columns, taken)
    _by_values(columns, taken)
    missing = [r for r in ("name", "surname", "email") if r not in taken]
    if missing:
        listing = ", ".join(repr(h) for h in headers)
        raise MappingError(
            source,
            [
                f"fields.{r}: no column looks like {_LABELS[r]} (headers such as {_EXAMPLES[r]}); "
                f"the file's columns: {listing}"
                for r in missing
            ],
        )
    guess = _Guess(columns)
    _rest(guess)
    _defaults(guess)
    return guess


# --- writing ------------------------------------------------------------------------------------


class _Writer:
    """Lines of YAML with ``# comments`` aligned in one column (no further right than 48).

    A comment that would end past column 100 follows its line closer, or else goes on a line of
    its own above it.
    """

    MIN_COLUMN = 32
    MAX_COLUMN = 48
    WIDTH = 100

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def add(self, text: str, comment: str = "") -> None:
        self.lines.append((text, comment))

    def text(self) -> str:
        widths = [len(t) + 2 for t, c in self.lines if t and c and len(t) + 2 <= self.MAX_COLUMN]
        column = max([self.MIN_COLUMN, *widths])
        out = []
        for text, comment in self.lines:
            if comment:
                pad = max(column - len(text), 2) if text else 0
                line = f"{text}{' ' * pad}# {comment}"
                if len(line) > self.WIDTH and text:
                    line = f"{text}  # {comment}"
                if len(line) > self.WIDTH and text:
                    indent = text[: len(text) - len(text.lstrip())]
                    out += [f"{indent}# {comment}", text]
                else:
                    out.append(line)
            else:
                out.append(text)
        return "\n".join(out) + "\n"


def _guessed(col: _Column) -> str:
    return f"guessed: {col.why}" if col.why else ""


def _write_head(w: _Writer, name: str, read: dict[str, tuple[str | int, str]], sample: int) -> None:
    """The comment on top, the project and the optional names, and ``read:``."""
    w.add(f"# Starter mapping for {name}")
    if sample:
        rows = f"{sample} rows" if sample > 1 else "row"
        w.add(f"# guessed by voiptime-etl mapping-init from its headers and first {rows}.")
    else:
        w.add("# guessed by voiptime-etl mapping-init from its headers (it has no data rows).")
    w.add("# Check each 'guessed' line and set the project, then try it with")
    w.add("#   voiptime-etl validate SOURCE --mapping THIS_FILE")
    w.add("project: 1", "TODO: set it (voiptime-etl projects)")
    w.add("# status: New", "optional (voiptime-etl statuses PROJECT)")
    w.add("# source: Web form", "optional (voiptime-etl sources PROJECT)")
    w.add("# campaign: Spring outreach", "optional (voiptime-etl campaigns)")
    if read:
        w.add("read:")
        for key, (value, why) in read.items():
            w.add(f"  {key}: {_scalar(value)}", why)


def _write_fields(w: _Writer, guess: _Guess) -> None:
    """``defaults:``, ``key:``, ``fields:`` and ``phones:`` (a commented example when none)."""
    w.add("defaults:")
    w.add(f"  region: {guess.region}", f"guessed: {guess.region_why}")
    for col in guess.pick("region"):
        w.add(f"  region_column: {_scalar(col.header)}", _guessed(col))
    w.add(f"  timezone: {guess.zone}", f"guessed: {guess.zone_why}")
    w.add("key: [email]", "what identifies a lead across rows and runs")
    w.add("fields:")
    for role in ("name", "surname", "email", "timezoneId"):
        for col in guess.pick(role):
            w.add(f"  {role}: {_scalar(col.header)}", _guessed(col))
    if not guess.pick("timezoneId"):
        w.add("  # timezoneId: COLUMN", "no zone column found: zones come from phones or default")
    phones = guess.pick("phone")
    if phones:
        w.add("phones:")
        for col in phones:
            w.add(f"  - {{column: {_scalar(col.header)}, label: {col.label}}}", _guessed(col))
    else:
        w.add("# phones:", "no phone column found; a campaign needs one")
        w.add("#   - {column: COLUMN, label: mobile}")


def _write_dynamic(w: _Writer, dynamic: list[_Column]) -> None:
    """``dynamicData:``, one key a column (snake case, numbered when two columns share it)."""
    w.add("dynamicData:", "custom fields: rename or drop as you need")
    keys: set[str] = set()
    for col in dynamic:
        key = base = _snake(col.header)
        n = 2
        while key in keys:
            key, n = f"{base}_{n}", n + 1
        keys.add(key)
        value = _scalar(col.header)
        if col.vtype != "text":
            value = f"{{column: {value}, type: {col.vtype}}}"
        w.add(f"  {_scalar(key)}: {value}", _guessed(col))


def _write(guess: _Guess, name: str, read: dict[str, tuple[str | int, str]], sample: int) -> str:
    w = _Writer()
    _write_head(w, name, read, sample)
    _write_fields(w, guess)
    dynamic = guess.pick("dynamic")
    if dynamic:
        _write_dynamic(w, dynamic)
    notes = guess.pick("comment")
    if notes:
        w.add("comments:")
        for col in notes:
            w.add(f"  - {{column: {_scalar(col.header)}}}", _guessed(col))
    if guess.skipped:
        shown = ", ".join(_show(h) for h in guess.skipped)
        w.add(f"# Not mapped, empty in the rows looked at: {shown}")
    return w.text()


def _title_rows(header_row: int) -> str:
    return "guessed: the rows above the header look like a title" if header_row > 1 else ""


def _codec_name(encoding: str) -> str:
    """Python's canonical name of a codec (``UTF8`` and ``utf-8-sig`` → ``utf-8``)."""
    name = codecs.lookup(encoding).name
    return "utf-8" if name in ("utf-8", "utf-8-sig") else name


def starter_mapping(
    path: str | os.PathLike[str], sheet: str | int | None = None, sample_rows: int = 200
) -> str:
    """Guess a working starter mapping for a lead file.

    The file is read the way an import reads it (:func:`etl.extract.open_source`): headers, then
    at most ``sample_rows`` data rows. See the module docstring for the synonym tables and the
    value rules. The result loads with :func:`etl.mapping.load_mapping` and every mapped column
    is a header of the file, so ``voiptime-etl validate SOURCE --mapping`` runs on it as it is;
    only ``project: 1`` is a placeholder to replace.

    Args:
        path: a ``.csv``/``.txt``/``.tsv`` or ``.xlsx``/``.xlsm``/``.xls`` file.
        sheet: the Excel sheet (name or 0-based index); ``None`` reads the first one.
        sample_rows: data rows looked at for values (countries, dates, e-mails, zones, and
            which columns are empty); 1 or more.

    Returns:
        The mapping as YAML text, with ``# guessed: ...`` comments on every line a synonym or a
        heuristic decided, ending in a newline. A ``read:`` block pins the sheet and header row
        when the sheet is not the first or the header is not on row 1, and the delimiter and
        encoding of a CSV file that is not comma-separated UTF-8.

    Raises:
        ValueError: ``sample_rows`` is below 1.
        MappingError: no column could be guessed for a required lead field (name, surname,
            email); ``path`` is the data file and ``problems`` names each missing field with the
            file's headers (exit 78 in the CLI).
        InputMissingError: the file does not exist (exit 66).
        InputError: the file cannot be read (exit 65).
    """
    if sample_rows < 1:
        raise ValueError(f"sample_rows must be 1 or more, not {sample_rows}")
    source = Path(path)
    read: dict[str, tuple[str | int, str]] = {}
    with open_source(source, ReadOptions(sheet=sheet)) as reader:
        headers = list(reader.headers)
        chunks = reader.chunks(rows=sample_rows)
        first = next(chunks, None)
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
        if reader.sheet is not None:
            sheets = list_sheets(source)
            if reader.header_row != 1 or (sheets and reader.sheet != sheets[0]):
                read["sheet"] = (reader.sheet, "")
                read["header_row"] = (reader.header_row, _title_rows(reader.header_row))
        else:
            if reader.header_row != 1:
                read["header_row"] = (reader.header_row, _title_rows(reader.header_row))
            if reader.encoding and _codec_name(reader.encoding) != "utf-8":
                read["encoding"] = (reader.encoding, "guessed: detected from the file's bytes")
            if reader.delimiter and reader.delimiter != ",":
                read["delimiter"] = (reader.delimiter, "guessed: detected from the first rows")
    values: dict[str, list[str]] = {h: [] for h in headers}
    if first is not None:
        for header in headers:
            cells = (clean(v) for v in first.frame[header].tolist())
            values[header] = [v for v in cells if v is not None]
    name = source.name.replace("\n", " ").replace("\r", " ")
    if reader.sheet is not None:
        name += f", sheet {_show(reader.sheet)}"
    if reader.header_row != 1:
        name += f", header on row {reader.header_row}"
    guess = _guess(headers, values, str(source))
    rows = len(first.frame) + len(first.problems) if first is not None else 0
    log.info("%s: starter mapping guessed from %d headers and %d rows", source, len(headers), rows)
    return _write(guess, name, read, rows)
