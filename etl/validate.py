"""Normalise mapped rows and validate them with a pandera schema built from the mapping.

The flow for one chunk (index = source row number a person sees):

1. :func:`normalize_frame` turns the raw text of :func:`etl.shape.apply_mapping` into values the
   API accepts (E.164 phones, canonical IANA zones, lower-cased e-mails, ISO dates) or into
   :class:`~etl.normalize.Invalid` markers that carry the reason, and infers missing zones.
2. :func:`build_schema` builds a :class:`pandera.api.pandas.container.DataFrameSchema` from the
   mapping: required fields are non-nullable, every column refuses ``Invalid`` values, and a
   campaign run needs at least one valid phone per row.
3. :func:`validate_chunk` runs the schema with ``lazy=True`` so one pass yields every reason of
   every row, and turns pandera's failure cases into :class:`Issue` records (house style 4:
   validation returns a report, nothing raises for bad rows).

Duplicates of the mapping's ``key`` across chunks and files are caught by :class:`KeyTracker`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field
from dataclasses import field as dc_field
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from etl import columns as col
from etl.calls import DEFAULT_WINDOW, CallContext, CallingWindow, note_time, task_time
from etl.errors import OutputError
from etl.mapping import Mapping
from etl.normalize import (
    DAY_FIRST,
    MONTH_FIRST,
    DateOrder,
    Invalid,
    PhoneResult,
    canonical_zone,
    clean,
    date_reading,
    infer_zone,
    normalize_date,
    normalize_emails,
    normalize_name,
    parse_country,
    parse_phone,
    reason_kind,
    same_clock,
    split_phones,
    zones_of_phones,
)
from etl.phonefast import e164_with_extensions, regions_many, zones_many
from etl.values import Caveat

__all__ = [
    "Issue",
    "KeyTracker",
    "ValidatedChunk",
    "build_schema",
    "date_orders",
    "lead_keys",
    "normalize_frame",
    "rejected_keys",
    "validate_chunk",
]


@dataclass(frozen=True)
class Issue:
    """Why one row is rejected, at one field.

    Attributes:
        source_file: file name as given on the command line.
        source_row: the row number a spreadsheet shows.
        field: lead field (``email``, ``phone``, ``timezoneId``, ``dynamicData.<name>``,
            ``row`` for rows that could not be read, ``key`` for duplicates).
        column: the file's column header, or ``""`` when the issue is about the whole row.
        check: short machine name of the rule (``required``, ``invalid``, ``duplicate``…).
        value: the offending value as written (``""`` when empty).
        message: the reason in words, with what to do.
        kind: what kind of fault it is, for the report's chart of reasons, without field,
            column or value (``not a phone number``, ``required, but empty``, ``duplicate``):
            named by the check that found it (an :class:`~etl.normalize.Invalid`'s own
            ``kind``), else :func:`~etl.normalize.reason_kind` of ``message``. Not compared.
    """

    source_file: str
    source_row: int
    field: str
    column: str
    check: str
    value: str
    message: str
    kind: str = dc_field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", reason_kind(self.message))

    def describe(self) -> str:
        """One line for ``_errors``: ``field (column): message``."""
        where = self.field if not self.column else f"{self.field} ({self.column})"
        return f"{where}: {self.message}"


@dataclass
class ValidatedChunk:
    """The outcome of one chunk.

    Attributes:
        valid: normalised rows that passed (same columns as :func:`normalize_frame`),
            index = source row.
        issues: every reason of every rejected row.
        warnings: source row → its :class:`~etl.values.Caveat` warnings, for valid rows that
            load but deserve a look (an extension dropped, a zone column that disagrees with
            the phone).
        rejected: the normalised rows that failed (for duplicate checks of their keys).
        regions: E.164 → region (``ZZ`` when none) of every number of the valid rows, as
            :func:`etl.normalize.region_of` gives it, worked out where the chunk was checked
            (a worker process's parse cache answers it; the main process would parse again).
    """

    valid: pd.DataFrame
    issues: list[Issue] = field(default_factory=list)
    warnings: dict[int, tuple[Caveat, ...]] = field(default_factory=dict)
    rejected: pd.DataFrame | None = None
    regions: dict[str, str] = field(default_factory=dict)

    @property
    def rejected_rows(self) -> set[int]:
        """Source rows with at least one issue."""
        return {i.source_row for i in self.issues}


@functools.lru_cache(maxsize=65536)
def _phone_cell(
    raw: str | None, region: str | None, odd_country: str | None = None
) -> tuple[tuple[str, ...] | Invalid | None, str | None]:
    """One phone cell: ``(E.164 numbers | Invalid | None, first extension or None)``.

    ``odd_country``: the row's country cell when it names no country (``region`` is then
    ``None``): a number written with ``+``/``00`` is still read, a national one is refused
    with both reasons, never read in the default region.
    """
    text = clean(raw)
    if text is None:
        return None, None
    numbers: list[str] = []
    extension = None
    for part in split_phones(text):
        result = parse_phone(part, region)
        if isinstance(result, Invalid):
            why = result.reason
            if odd_country and region is None and why.startswith("no country code"):
                why = (
                    f"written without +country, and the country {odd_country}; write the "
                    "country as an ISO code (GB, DE, US) or the number with +country"
                )
            return Invalid(text, why), None
        assert isinstance(result, PhoneResult)
        if result.e164 not in numbers:
            numbers.append(result.e164)
        extension = extension or result.extension
    return tuple(numbers), extension


def normalize_frame(
    mapped: pd.DataFrame,
    mapping: Mapping,
    date_orders: dict[str, DateOrder] | None = None,
    calls: CallContext | None = None,
    choices: dict[str, tuple[tuple[int, str], ...]] | None = None,
) -> pd.DataFrame:
    """Normalise the raw text of mapped rows.

    Args:
        mapped: :func:`etl.shape.apply_mapping`'s frame (raw text, index = source row).
        mapping: the mapping it came from.
        date_orders: dynamicData field → the order of its year-last dates over the whole run
            (:func:`date_orders`); a field not in it decides nothing (``03/04/2024`` refused).

    Returns:
        Same index; object columns, each cell a normalised value, ``None`` (missing) or an
        :class:`~etl.normalize.Invalid`:

        * ``name``, ``surname`` (str), ``email`` (str, lower-case), ``timezoneId`` (canonical
          IANA name, inferred when the column is empty or absent);
        * ``timezone_source``: ``column``, ``phone`` or ``default`` (``None`` when no zone);
        * ``phone.<i>``: a tuple of E.164 strings (a cell may hold several numbers);
          ``ext.<i>``: its first extension (str) or ``None``;
        * ``warnings``: a tuple of :class:`~etl.values.Caveat` (extension dropped, zone column
          vs phone, a task outside the calling window);
        * ``dyn.<field>``: str (``YYYY-MM-DD`` for ``type: date``); ``comment.<i>``: str;
          ``comment_time.<i>``: the note's UTC ``dateTime`` from its date column (str);
        * ``callback``, ``meeting`` (mapped tasks): :class:`~etl.calls.TaskTime` or ``None``.

        ``calls`` gives the run's time (past tasks) and calling window (default: now, 08:00–21:00).
    """
    out = pd.DataFrame(index=mapped.index)
    for name in ("name", "surname"):
        if name in mapped:
            out[name] = _each(mapped[name], normalize_name)
    if "email" in mapped:
        out["email"] = normalize_emails(mapped["email"])
    countries, odd, regions = _countries(mapped, mapping)
    phone_cols, notes = _phone_columns(out, mapped, mapping, regions, odd)
    zones = _zone_columns(out, mapped, mapping, phone_cols, countries, odd, notes)
    _value_columns(out, mapped, mapping, date_orders)
    _task_columns(out, mapped, mapping, zones, notes, calls)
    for kind, _ in mapping.per_row():
        allowed = (choices or {}).get(kind)
        out[kind] = _each(mapped[kind], functools.partial(_choice, kind=kind, allowed=allowed))
    return out


def _countries(
    mapped: pd.DataFrame, mapping: Mapping
) -> tuple[list[Any], list[str | None], list[Any]]:
    """Each row's country (from the region column, or :class:`~etl.normalize.Invalid`), the
    cell and why for a country that names none (``odd``), and the region to read its national
    numbers in (``None`` for such a row)."""
    default_region = mapping.defaults.region
    raw_regions = list(mapped[col.REGION]) if col.REGION in mapped else [None] * len(mapped)
    countries = _distinct(raw_regions, parse_country)
    # a country cell that names no country: its national numbers are refused, never read in
    # the default region (``odd`` holds the cell and why, for the phone's reason)
    odd = [
        f"{c.raw!r} {c.reason.split(';')[0].replace('not a', 'is not a')}"
        if isinstance(c, Invalid)
        else None
        for c in countries
    ]
    regions = [None if isinstance(c, Invalid) else (c or default_region) for c in countries]
    return countries, odd, regions


def _phone_columns(
    out: pd.DataFrame,
    mapped: pd.DataFrame,
    mapping: Mapping,
    regions: list[Any],
    odd: list[str | None],
) -> tuple[list[str], list[list[Caveat]]]:
    """``phone.<i>`` and ``ext.<i>`` of each mapped phone into ``out``; the phone columns and
    each row's warnings so far (a dropped extension)."""
    phone_cols = col.phones(len(mapping.phones))
    notes: list[list[Caveat]] = [[] for _ in range(len(mapped))]
    for i, (phone_col, phone_spec) in enumerate(zip(phone_cols, mapping.phones, strict=True)):
        # the common forms many at a time (etl/phonefast.py: libphonenumber's own answers for
        # valid numbers); everything else, and every reason, from _phone_cell one by one
        raws = mapped[phone_col].tolist()
        found, extensions = e164_with_extensions(raws, regions)
        numbers: list[Any] = [None if e164 is None else (e164,) for e164 in found]
        for n in [n for n, found in enumerate(numbers) if found is None]:
            numbers[n], extensions[n] = _phone_cell(raws[n], regions[n], odd[n])
        out[phone_col] = pd.Series(numbers, index=mapped.index, dtype=object)
        out[col.extension(i)] = pd.Series(extensions, index=mapped.index, dtype=object)
        if not phone_spec.extension:
            for n, ext in enumerate(extensions):
                if ext:
                    where = f"phone ({phone_spec.column})"
                    notes[n].append(
                        Caveat(
                            where,
                            f"{where}: extension … dropped",
                            f"{where}: extension {ext} dropped; name a dynamicData field for it "
                            f"with phones[{i}].extension",
                            ext,
                        )
                    )
    return phone_cols, notes


def _zone_columns(
    out: pd.DataFrame,
    mapped: pd.DataFrame,
    mapping: Mapping,
    phone_cols: list[str],
    countries: list[Any],
    odd: list[str | None],
    notes: list[list[Caveat]],
) -> list[Any]:
    """``timezoneId`` (the column's, else inferred from the phones, else the default),
    ``timezone_source`` and the rows' warnings into ``out``; the zones, by row.

    Every answer that depends only on values that repeat (a row's candidate zones, its
    country's default zone, whether the column's zone keeps the candidates' clock) is worked
    out once per distinct value; a row's own numbers only go into its messages."""
    raw_zones = mapped["timezoneId"] if "timezoneId" in mapped else [None] * len(mapped)
    zones: list[Any] = _distinct(raw_zones, canonical_zone)
    sources: list[str | None] = ["column" if z is not None else None for z in zones]
    row_phones = _row_phones(out, phone_cols)
    candidates = _candidates(row_phones)
    defaults = _default_zones(mapping, row_phones, countries, odd)
    use_default = mapping.defaults.ambiguous_timezone == "default"
    has_column = "timezoneId" in mapping.fields
    inferred: dict[tuple[tuple[str, ...], str | None], tuple[Any, str | None]] = {}
    clocks: dict[tuple[str, tuple[str, ...]], bool] = {}
    for i, zone in enumerate(zones):
        cands = candidates[i]
        if zone is None:
            default = defaults[i]
            key = (cands, default)
            found = inferred.get(key)
            if found is None:
                found = inferred[key] = infer_zone("", cands, default, use_default, has_column)
            if isinstance(found[0], Invalid):  # its reason names the row's numbers
                found = infer_zone(" and ".join(row_phones[i]), *key, use_default, has_column)
            zones[i], sources[i] = found
            if found[1] == "default" and len(cands) > 1:
                shown_phones = " and ".join(row_phones[i])
                notes[i].append(
                    Caveat(
                        "timezoneId",
                        "timezoneId: … could be in several zones",
                        f"timezoneId: {shown_phones} could be in several zones; used {default}",
                        shown_phones,
                    )
                )
        elif isinstance(zone, str) and cands:
            same = clocks.get((zone, cands))
            if same is None:
                same = clocks[(zone, cands)] = same_clock(zone, cands)
            if not same:
                notes[i].append(_other_clock(zone, cands, " and ".join(row_phones[i])))
    for i, why in enumerate(odd):
        if why and row_phones[i]:
            notes[i].append(_odd_country(countries[i], why))
    out["timezoneId"] = pd.Series(zones, index=mapped.index, dtype=object)
    out[col.TIMEZONE_SOURCE] = pd.Series(sources, index=mapped.index, dtype=object)
    out[col.WARNINGS] = pd.Series([tuple(n) for n in notes], index=mapped.index, dtype=object)
    return zones


def _other_clock(zone: str, candidates: tuple[str, ...], shown_phones: str) -> Caveat:
    """The warning on a row whose zone column keeps another clock than its phones' zones."""
    shown = ", ".join(candidates[:3]) + (" …" if len(candidates) > 3 else "")
    return Caveat(
        "timezoneId",
        "timezoneId: … from the column, but the phone … is in …",
        f"timezoneId: {zone} from the column, but the phone {shown_phones} is "
        f"in {shown}; kept the column's zone",
        zone,
    )


def _candidates(row_phones: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The zones any of each row's numbers may be in (:func:`~etl.normalize.zones_of_phones`),
    each number's looked up once per chunk and each distinct combination joined once."""
    numbers = list(dict.fromkeys(n for phones in row_phones for n in phones))
    zones_of = dict(zip(numbers, zones_many(numbers), strict=True))
    joined: dict[tuple[tuple[str, ...], ...], tuple[str, ...]] = {}
    out: list[tuple[str, ...]] = []
    zones = zones_of.__getitem__
    for phones in row_phones:
        key = tuple(map(zones, phones))
        found = joined.get(key)
        if found is None:
            found = joined[key] = zones_of_phones(phones, zones_of)
        out.append(found)
    return out


def _default_zones(
    mapping: Mapping, row_phones: list[tuple[str, ...]], countries: list[Any], odd: list[str | None]
) -> list[str | None]:
    """Each row's default zone: its country's (the region column's, else its first number's
    region) per ``defaults``."""
    country: list[str | None] = [c if isinstance(c, str) else None for c in countries]
    ask = [i for i, c in enumerate(country) if c is None and not odd[i] and row_phones[i]]
    for i, region in zip(ask, regions_many([row_phones[i][0] for i in ask]), strict=True):
        country[i] = region
    zone_for = {c: mapping.defaults.zone_for(c) for c in set(country)}
    return [zone_for[c] for c in country]


def _value_columns(
    out: pd.DataFrame,
    mapped: pd.DataFrame,
    mapping: Mapping,
    date_orders: dict[str, DateOrder] | None,
) -> None:
    """``dyn.<field>`` (a date in its field's day/month order) and ``comment.<i>`` into ``out``."""
    for name, column in mapping.dynamic.items():
        dyn = col.dynamic(name)
        if column.type == "date":
            order = (date_orders or {}).get(name)
            out[dyn] = _each(mapped[dyn], functools.partial(normalize_date, order=order))
        else:
            out[dyn] = _each(mapped[dyn], clean)
    for i in range(len(mapping.comments)):
        out[col.comment(i)] = _each(mapped[col.comment(i)], clean)


def _choice(
    value: object, *, kind: str, allowed: tuple[tuple[int, str], ...] | None
) -> int | str | Invalid | None:
    """A per-row status or source cell (after its value map) resolved to the project's id: an id
    or a name (trimmed, any case) of ``allowed``; one it does not name is invalid, and the
    reason lists the allowed names. Offline (``allowed`` is ``None``) the text is kept."""
    text = clean(value)
    if text is None:
        return None
    if allowed is None:
        return text
    folded = text.casefold()
    for ident, name in allowed:
        if text == str(ident) or name.strip().casefold() == folded:
            return ident
    names = ", ".join(name for _, name in allowed) or "none"
    plural = "statuses" if kind == "status" else "sources"
    return Invalid(text, f"not a {kind} of the project (its {plural}: {names})")


def _task_columns(
    out: pd.DataFrame,
    mapped: pd.DataFrame,
    mapping: Mapping,
    zones: list[Any],
    notes: list[list[Caveat]],
    calls: CallContext | None,
) -> None:
    """Callbacks, meetings and note times read in each row's zone (etl/calls.py)."""
    if not mapping.tasks() and not any(c.date for c in mapping.comments):
        return
    if calls is None:
        calls = CallContext(dt.datetime.now(dt.UTC), CallingWindow.parse(DEFAULT_WINDOW), "UTC")
    for i, spec in enumerate(mapping.comments):
        if spec.date:
            out[col.comment_time(i)] = pd.Series(
                [
                    note_time(clean(cell), zone) if isinstance(zone, str) else None
                    for cell, zone in zip(mapped[col.comment_date(i)], zones, strict=True)
                ],
                index=mapped.index,
                dtype=object,
            )
    for slot, task in mapping.tasks():
        values: list[Any] = []
        own = mapped[col.task(slot, "zone")] if task.timezone_column else [None] * len(mapped)
        ends = mapped[col.task(slot, "end")] if task.end else [None] * len(mapped)
        for n, (start, end, cell_zone) in enumerate(
            zip(mapped[col.task(slot, "start")], ends, own, strict=True)
        ):
            lead_zone = zones[n]
            if not isinstance(lead_zone, str):
                values.append(None)  # the row is rejected for its zone
                continue
            zone: Any = task.timezone if task.timezone != "lead" else lead_zone
            if clean(cell_zone) is not None:
                zone = canonical_zone(cell_zone)
                if not isinstance(zone, str):
                    why = zone.reason if isinstance(zone, Invalid) else "not a zone"
                    values.append(Invalid(str(cell_zone), f"{task.timezone_column}: {why}"))
                    continue
            value, warning = task_time(
                slot, clean(start), clean(end), zone, lead_zone, task.past, calls
            )
            values.append(value)
            if warning:
                notes[n].append(warning)
        out[slot] = pd.Series(values, index=mapped.index, dtype=object)
    out[col.WARNINGS] = pd.Series([tuple(n) for n in notes], index=mapped.index, dtype=object)


def _odd_country(country: object, odd: str) -> Caveat:
    """The warning on a row whose country cell names no country (``odd``: the cell and why)."""
    raw = country.raw if isinstance(country, Invalid) else ""
    return Caveat(
        "country",
        f"country … {odd.removeprefix(repr(raw)).strip()}",
        f"country {odd}; only numbers written with +country were read",
        raw,
    )


def _each(series: pd.Series, fn: Callable[[Any], Any]) -> pd.Series:
    """``fn`` over each cell, as an object Series that keeps ``None`` (``map`` makes NaN)."""
    return pd.Series(_distinct(series, fn), index=series.index, dtype=object)


def _distinct(cells: Iterable[Any], fn: Callable[[Any], Any]) -> list[Any]:
    """``[fn(v) for v in cells]``, calling ``fn`` (a pure function of the cell) once per
    distinct text: names, zones, dates, countries and company names repeat down a column.

    Only text cells are pooled (``1`` and ``1.0`` are equal keys but not equal cells);
    anything else, ``None`` and NaN included, is passed one by one, as it is.
    """
    values = cells if isinstance(cells, list) else list(cells)
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    if not len(uniques) or not all(type(u) is str for u in uniques):
        return [fn(v) for v in values]
    answers = np.empty(len(uniques), dtype=object)
    for n, value in enumerate(uniques):  # one by one: an answer may be a tuple
        answers[n] = fn(value)
    out: list[Any] = answers[np.maximum(codes, 0)].tolist()
    for n in np.nonzero(codes < 0)[0].tolist():
        out[n] = fn(values[n])
    return out


def _row_phones(norm: pd.DataFrame, phone_cols: list[str]) -> list[tuple[str, ...]]:
    """Every valid number of each row (by position), in column order, each once."""
    found: list[tuple[str, ...]] = [()] * len(norm)
    for phone_col in phone_cols:
        found = list(map(_joined, found, norm[phone_col].tolist()))
    return found


def _joined(numbers: tuple[str, ...], cell: object) -> tuple[str, ...]:
    """A row's numbers so far and those of its next phone cell not among them."""
    if not isinstance(cell, tuple):
        return numbers
    if not numbers:
        return cell
    if len(cell) == 1:
        return numbers if cell[0] in numbers else numbers + cell
    return numbers + tuple(n for n in cell if n not in numbers)


def _not_invalid(series: pd.Series) -> pd.Series:
    return pd.Series(
        [not isinstance(v, Invalid) for v in series.tolist()], index=series.index, dtype=bool
    )


def _dialable_or_invalid(value: object) -> bool:
    return (isinstance(value, tuple) and bool(value)) or isinstance(value, Invalid)


def build_schema(mapping: Mapping, *, require_phone: bool) -> pa.DataFrameSchema:
    """The pandera schema of normalised rows (columns as :func:`normalize_frame` returns).

    Args:
        mapping: the checked mapping.
        require_phone: a campaign is set, so each lead needs at least one valid phone
            (a dialer cannot call a lead without one).

    Rules: ``name``, ``surname``, ``email``, ``timezoneId`` are required (docs/api.md, "The lead");
    no column may hold an :class:`~etl.normalize.Invalid` value. Each check's name says which
    :class:`_Findings` method turns its failures into issues: ``not_nullable`` (pandera's own,
    for a required field) → ``required``, ``invalid`` → ``invalid``, ``phone_required`` →
    ``phone_required``.
    """
    valid = pa.Check(_not_invalid, name="invalid")  # failure cases name the check "invalid"
    columns: dict[str, pa.Column] = {}
    for name in ("name", "surname", "email", "timezoneId"):
        columns[name] = pa.Column(object, nullable=False, checks=[valid], required=True)
    for phone_col in col.phones(len(mapping.phones)):
        columns[phone_col] = pa.Column(object, nullable=True, checks=[valid])
    for name in mapping.dynamic:
        columns[col.dynamic(name)] = pa.Column(object, nullable=True, checks=[valid])
    for slot, _ in mapping.tasks():
        columns[slot] = pa.Column(object, nullable=True, checks=[valid])
    for kind, _ in mapping.per_row():
        columns[kind] = pa.Column(object, nullable=True, checks=[valid])
    for i, spec in enumerate(mapping.comments):
        if spec.date:
            columns[col.comment_time(i)] = pa.Column(object, nullable=True, checks=[valid])
    checks = []
    if require_phone:
        phone_cols = col.phones(len(mapping.phones))

        def has_phone(df: pd.DataFrame) -> pd.Series:
            """A row passes with a number, or with an invalid phone: the ``invalid`` check of
            that phone gives its reason, which already explains why nothing can be dialled."""
            ok = pd.Series(False, index=df.index)
            for phone_col in phone_cols:
                cells = df[phone_col].tolist()
                ok |= pd.Series([_dialable_or_invalid(v) for v in cells], index=df.index)
            return ok

        checks.append(pa.Check(has_phone, name="phone_required", error="no dialable phone"))
    return pa.DataFrameSchema(columns, checks=checks, strict=False, coerce=False)


def _column_label(mapping: Mapping, column: str) -> tuple[str, str]:
    """``(lead field, source header)`` of a normalised column."""
    parsed = col.parse(column)
    if parsed.kind == "phone" and parsed.index is not None:
        return "phone", mapping.phones[parsed.index].column
    if parsed.kind == "dynamic" and parsed.name is not None:
        return f"dynamicData.{parsed.name}", mapping.dynamic[parsed.name].column
    if column in ("status", "source"):
        per_row = mapping.status_column if column == "status" else mapping.source_column
        return column, per_row.column if per_row else ""
    if parsed.kind == "task":
        task = mapping.callback if column == "callback" else mapping.meeting
        assert task is not None
        return column, task.start
    if parsed.kind == "comment_time" and parsed.index is not None:
        i = parsed.index
        return f"comments[{i}].date", mapping.comments[i].date or ""
    spec = mapping.fields.get(column)
    return column, spec.column if spec else ""


def validate_chunk(
    mapped: pd.DataFrame,
    mapping: Mapping,
    *,
    require_phone: bool,
    source_file: str,
    date_orders: dict[str, DateOrder] | None = None,
    calls: CallContext | None = None,
    choices: dict[str, tuple[tuple[int, str], ...]] | None = None,
) -> ValidatedChunk:
    """Normalise and validate one chunk; nothing raises for bad rows.

    Args:
        mapped: :func:`etl.shape.apply_mapping`'s frame (index = source row).
        mapping: the mapping.
        require_phone: see :func:`build_schema`.
        source_file: the file name for the issues.
        date_orders: see :func:`normalize_frame`.
        calls: the run's time and calling window (see :func:`normalize_frame`).
        choices: the project's statuses and sources a per-row column may name.

    Returns:
        The valid rows and one :class:`Issue` per failed check of each rejected row.
    """
    norm = normalize_frame(mapped, mapping, date_orders, calls, choices)
    schema = build_schema(mapping, require_phone=require_phone)
    issues: list[Issue] = []
    try:
        schema.validate(norm, lazy=True)
    except SchemaErrors as err:
        issues = _issues_from(err.failure_cases, norm, mapped, mapping, source_file)
    bad = norm.index.isin(list({i.source_row for i in issues}))
    valid = norm.loc[~bad]
    rejected = norm.loc[bad]
    said = valid[col.WARNINGS].tolist()
    warned = [n for n, w in enumerate(said) if w]
    rows = [int(row) for row in valid.index[warned]]
    warnings = dict(zip(rows, [said[n] for n in warned], strict=True))
    numbers = list(
        dict.fromkeys(
            n
            for c in col.phone_columns(valid.columns)
            for v in valid[c]
            if isinstance(v, tuple)
            for n in v
        )
    )
    regions = dict(zip(numbers, regions_many(numbers), strict=True))
    return ValidatedChunk(
        valid=valid, issues=issues, warnings=warnings, rejected=rejected, regions=regions
    )


def _issues_from(
    cases: pd.DataFrame,
    norm: pd.DataFrame,
    mapped: pd.DataFrame,
    mapping: Mapping,
    source_file: str,
) -> list[Issue]:
    """One issue per failure case of the schema (pandera's ``failure_cases``), made by the check
    that failed (:class:`_Findings`); one per row, field and column, in the mapping's order."""
    findings = _Findings(norm, mapped, mapping, source_file)
    issues: list[Issue] = []
    seen: set[tuple[int, str, str]] = set()
    rows = zip(
        cases["schema_context"], cases["column"], cases["check"], cases["index"], strict=True
    )
    for context, column, check, index in rows:
        if index is None or pd.isna(index):
            continue
        if context == "DataFrameSchema":  # the one frame-wide check: a dialable phone
            issue = findings.phone_required(int(index))
        else:
            issue = findings.of_column(str(check), str(column), int(index))
        key = (issue.source_row, issue.field, issue.column)
        if key not in seen:
            seen.add(key)
            issues.append(issue)
    # Per row, the mapping's order of fields: name, surname, email, timezoneId, phones, dynamic.
    order = {f: n for n, f in enumerate(["name", "surname", "email", "timezoneId", "phone"])}
    issues.sort(key=lambda i: (i.source_row, order.get(i.field, len(order)), i.field, i.column))
    return issues


@dataclass(frozen=True)
class _Findings:
    """Issues of the schema's checks, one method per check (named as the check).

    Attributes:
        norm: :func:`normalize_frame`'s frame, where a failed ``invalid`` check's
            :class:`~etl.normalize.Invalid` (its reason and kind) is.
        mapped: :func:`etl.shape.apply_mapping`'s frame: the value as written.
        mapping: for the field's name and the file's column header.
        source_file: the file name of the issues.
    """

    norm: pd.DataFrame
    mapped: pd.DataFrame
    mapping: Mapping
    source_file: str

    def of_column(self, check: str, column: str, row: int) -> Issue:
        """The issue of a column check (``not_nullable``, ``invalid``) failed at ``row``."""
        where = (self.source_file, row, *_column_label(self.mapping, column))
        read = col.read_from(column)
        value = clean(self.mapped.at[row, read] if read in self.mapped.columns else None) or ""
        if check == "not_nullable":
            kind = message = "required, but empty"
            if column == "timezoneId":
                kind = message = "required, but empty and no default zone could be used"
            return Issue(*where, "required", value, message, kind)
        cell = self.norm.at[row, column] if column in self.norm.columns else None
        if check != "invalid" or not isinstance(cell, Invalid):
            return Issue(*where, check, value, f"failed check {check}")
        message = _invalid_message(column, where[3], value, cell, shown=read == column)
        return Issue(*where, "invalid", value, message, cell.kind)

    def phone_required(self, row: int) -> Issue:
        """The issue of a row with no phone (a campaign run needs one)."""
        header = ", ".join(p.column for p in self.mapping.phones)
        message = "no dialable phone; a campaign needs at least one valid number"
        kind = "no dialable phone"
        if not self.mapping.phones:
            message, kind = "no phone column mapped; a campaign needs one", "no phone column mapped"
        return Issue(self.source_file, row, "phone", header, "required", "", message, kind)


def _invalid_message(column: str, header: str, value: str, cell: Invalid, *, shown: bool) -> str:
    """The message of an invalid cell: the value as written (when ``shown``: the reason of a
    value read from another column, a task's or a note's time, names it itself) and the reason;
    for a zone the file names, the value map that fixes every such row when one is likely."""
    message = cell.reason if not value or not shown else f"{value!r}: {cell.reason}"
    if column == "timezoneId" and value and cell.suggestion and header:
        message += (
            f"; to fix every such row, add map: {{{value}: {cell.suggestion}}} to fields.timezoneId"
        )
    return message


def date_orders(
    mapping: Mapping, cells: Iterable[tuple[str, str, int, object]]
) -> dict[str, DateOrder]:
    """Decide each ``type: date`` field's order of year-last dates from the values of a run.

    Args:
        mapping: the mapping.
        cells: ``(dynamicData field, source file, source row, cell)`` for every cell of the
            run's date columns (any order; files in run order for the examples).

    Returns:
        Field → :class:`~etl.normalize.DateOrder`: :data:`~etl.normalize.DAY_FIRST` when some
        value can only be read day-first (``25/12/2023``) and none only month-first, and the
        other way round; :data:`~etl.normalize.MIXED` when both kinds occur; no order when
        every year-last value reads both ways (they are then refused as ambiguous).
    """
    seen: dict[str, dict[str, str]] = {name: {} for name, spec in mapping.dynamic.items()}
    readings: dict[str, str | None] = {}  # text cell → its reading (dates repeat)
    for name, source, row, cell in cells:
        if type(cell) is str:
            reading = readings.get(cell, "")
            if reading == "":
                if len(readings) >= 100_000:  # bounded, whatever the file holds
                    readings.clear()
                reading = readings[cell] = date_reading(clean(cell))
        else:
            reading = date_reading(clean(cell))
        if reading in (DAY_FIRST, MONTH_FIRST) and name in seen:
            seen[name].setdefault(reading, f"{clean(cell)!r} in {source} row {row}")
    return {
        name: DateOrder.decide(found.get(DAY_FIRST, ""), found.get(MONTH_FIRST, ""))
        for name, found in seen.items()
        if mapping.dynamic[name].type == "date"
    }


def _text(value: object) -> str:
    """A cell as text for a key: ``None`` and NaN are empty."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def _first_number(cells: tuple[Any, ...]) -> str:
    """A row's key phone: the first number of its first phone cell that holds numbers (a
    tuple), ``""`` when that cell is empty or no cell holds any."""
    for value in cells:
        if isinstance(value, tuple):
            return value[0] if value else ""
    return ""


def lead_keys(frame: pd.DataFrame, key_fields: Sequence[str]) -> list[str]:
    """The key of every row of a normalised frame (:func:`normalize_frame`'s columns), read
    column by column: its ``key_fields`` joined with ``|`` (docs/mapping.md, "Values").

    E-mails are already lower-case and phones E.164 (the first number of the first phone cell
    that holds any); names are case-folded; a missing column or value is ``""``.
    """
    parts: list[list[str]] = []
    for name in key_fields:
        if name == "phone":
            phone_cols = col.phone_columns(frame.columns)
            cells = zip(*(frame[c] for c in phone_cols), strict=True)
            parts.append([_first_number(c) for c in cells] if phone_cols else [""] * len(frame))
        else:
            column = name if name in ("name", "surname", "email") else col.dynamic(name)
            if column not in frame.columns:
                parts.append([""] * len(frame))
                continue
            texts = [_text(v) for v in frame[column]]
            parts.append([t.casefold() for t in texts] if name in ("name", "surname") else texts)
    return ["|".join(row) for row in zip(*parts, strict=True)] if parts else [""] * len(frame)


def rejected_keys(rejected: pd.DataFrame, key_fields: Sequence[str]) -> dict[int, str]:
    """Source row → key of the rejected rows (a normalised frame) whose key fields all hold a
    usable value (valid, not empty): the rows :meth:`KeyTracker.peek_keys` labels."""
    return {
        int(row): _row_key(rec, key_fields)
        for row, rec in zip(rejected.index, rejected.to_dict("records"), strict=True)
        if all(_usable(_key_field(rec, name)) for name in key_fields)
    }


def _row_key(row: dict[str, Any], key_fields: Sequence[str]) -> str:
    """The key of one normalised row (column → value), as :func:`lead_keys` reads it."""
    parts = []
    for name in key_fields:
        if name == "phone":
            phones = [v for k, v in row.items() if col.is_phone(k) and isinstance(v, tuple)]
            parts.append(phones[0][0] if phones and phones[0] else "")
        elif name in ("name", "surname"):
            parts.append(_text(row.get(name)).casefold())
        elif name == "email":
            parts.append(_text(row.get("email")))
        else:
            parts.append(_text(row.get(col.dynamic(name))))
    return "|".join(parts)


def _key_field(rec: dict[str, Any], name: str) -> Any:
    """A key field's value in a normalised row (``phone``: the first filled phone cell)."""
    if name == "phone":
        return next((v for k, v in rec.items() if col.is_phone(k) and v), None)
    return rec.get(name if name in ("name", "surname", "email") else col.dynamic(name))


def _usable(value: Any) -> bool:
    """A key field's value is valid and not empty."""
    return not (value is None or isinstance(value, Invalid) or value != value or value == ())


class _FirstRows:
    """Key → ``(file, row)`` of the first row that had it: only a 64-bit hash and a number per
    key in memory (12 bytes a key, sorted arrays merged as they grow, as in a log-structured
    merge), the keys themselves and their rows in two unnamed temporary files (unlinked as they
    are made, so nothing is left behind, whatever ends the process). A key whose hash is found
    is read back from the file and compared, so a look-up is exact (two keys with one hash are
    both kept). Only the process that made it may use it (``hash`` is salted per process).
    """

    #: One record of the rows file: the key's offset and length (bytes) in the keys file, its
    #: file's number and its row.
    _RECORD = np.dtype([("at", "<i8"), ("size", "<i4"), ("file", "<i4"), ("row", "<i8")])

    def __init__(self, hasher: Callable[[str], int] = hash) -> None:
        self._hash = hasher  # tests give one that collides
        with _temp_files():
            self._keys = tempfile.TemporaryFile()
            self._rows = tempfile.TemporaryFile()
        self._end = 0  # bytes in the keys file
        self._count = 0  # keys stored (the rows file's records)
        #: sorted runs of (hash, record number), each at most half the size of the one before
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []
        self._files: list[str] = []
        self._file_no: dict[str, int] = {}

    def close(self) -> None:
        """Drop the files (never raises: what they hold is not needed any more)."""
        for f in (getattr(self, "_keys", None), getattr(self, "_rows", None)):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        self._runs = []

    def __del__(self) -> None:  # an unclosed store still drops its files
        self.close()

    def get_many(self, keys: Sequence[str]) -> dict[str, tuple[str, int]]:
        """The ``(file, row)`` of each of ``keys`` (distinct) that is stored."""
        found: dict[str, tuple[str, int]] = {}
        if not self._runs or not keys:
            return found
        hashes = np.fromiter(map(self._hash, keys), dtype=np.int64, count=len(keys))
        for run, numbers in self._runs:
            first = np.searchsorted(run, hashes, side="left")
            hits = np.flatnonzero(run[np.minimum(first, len(run) - 1)] == hashes)
            for i in hits.tolist():
                key, at = keys[i], int(first[i])
                while at < len(run) and run[at] == hashes[i] and key not in found:
                    stored = self._read(int(numbers[at]))
                    if stored[0] == key:
                        found[key] = stored[1:]
                    at += 1
        return found

    def add_many(self, keys: Sequence[str], file: str, rows: Sequence[int]) -> None:
        """Store ``keys`` (none stored yet, each once) as first seen in ``file`` at ``rows``."""
        if not keys:
            return
        data = [k.encode("utf-8", "surrogatepass") for k in keys]
        records = np.empty(len(keys), dtype=self._RECORD)
        sizes = np.fromiter(map(len, data), dtype=np.int64, count=len(data))
        records["size"] = sizes
        records["at"] = self._end + np.cumsum(sizes) - sizes
        records["file"] = self._number(file)
        records["row"] = rows
        with _temp_files():
            self._keys.seek(self._end)
            self._keys.write(b"".join(data))
            self._rows.seek(self._count * self._RECORD.itemsize)
            self._rows.write(records.tobytes())
        self._end += int(sizes.sum())
        hashes = np.fromiter(map(self._hash, keys), dtype=np.int64, count=len(keys))
        numbers = np.arange(self._count, self._count + len(keys), dtype=np.uint32)
        self._count += len(keys)
        order = np.argsort(hashes, kind="stable")
        self._runs.append((hashes[order], numbers[order]))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            (h1, n1), (h2, n2) = self._runs.pop(), self._runs.pop()
            hashes, numbers = np.concatenate([h2, h1]), np.concatenate([n2, n1])
            order = np.argsort(hashes, kind="stable")
            self._runs.append((hashes[order], numbers[order]))

    def _number(self, file: str) -> int:
        number = self._file_no.get(file)
        if number is None:
            number = self._file_no[file] = len(self._files)
            self._files.append(file)
        return number

    def _read(self, number: int) -> tuple[str, str, int]:
        """``(key, file, row)`` of record ``number``."""
        size = self._RECORD.itemsize
        with _temp_files():
            self._rows.seek(number * size)
            record = np.frombuffer(self._rows.read(size), dtype=self._RECORD)[0]
            self._keys.seek(int(record["at"]))
            key = self._keys.read(int(record["size"])).decode("utf-8", "surrogatepass")
        return key, self._files[int(record["file"])], int(record["row"])


@contextlib.contextmanager
def _temp_files() -> Iterator[None]:
    """Turn a failure of :class:`_FirstRows`' temporary files (a full disk) into an
    :class:`~etl.errors.OutputError` naming the temporary folder and what to do (exit 74)."""
    try:
        yield
    except OSError as exc:
        folder = tempfile.gettempdir()
        raise OutputError(
            folder,
            f"the temporary files that hold the run's lead keys cannot be written or read "
            f"({exc.strerror or exc}); free space there, or set TMPDIR to a folder with room",
        ) from None


class KeyTracker:
    """Remembers the first row of each lead ``key`` across the chunks and files of one run.

    The first row with a key wins; later rows with the same key are duplicates naming it
    (docs/mapping.md, "Values"). The keys live in unnamed temporary files, with 12 bytes a key in
    memory (:class:`_FirstRows`), so a run of millions of rows needs little more memory than a
    small one (12 MB a million distinct keys).
    """

    def __init__(self, key_fields: Iterable[str]) -> None:
        self.key_fields = tuple(key_fields)
        self._first = _FirstRows()
        # the first *rejected* row of each key, so a later rejected row is labelled too
        self._first_rejected = _FirstRows()

    def close(self) -> None:
        """Drop the temporary key files."""
        self._first.close()
        self._first_rejected.close()

    def __enter__(self) -> KeyTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self, valid: pd.DataFrame, source_file: str) -> tuple[pd.Series, list[Issue]]:
        """:meth:`check_keys` of the valid rows of a frame (their keys read by :func:`lead_keys`).

        Returns:
            ``(keys, issues)``: a str Series of keys indexed like ``valid``, and one ``key``
            issue per duplicate row.
        """
        keys = pd.Series(lead_keys(valid, self.key_fields), index=valid.index, dtype=object)
        return keys, self.check_keys(keys.items(), source_file)

    def check_keys(self, keys: Iterable[tuple[int, str]], source_file: str) -> list[Issue]:
        """Issues for valid rows whose key was seen before (duplicates) or is empty (the ledger
        could not tell such leads apart); the other rows' keys are remembered as the first.

        Args:
            keys: ``(source row, key)`` of each valid row of a chunk, in row order.
            source_file: the file, as given.

        Returns:
            One ``key`` issue per duplicate or empty key, in row order.
        """
        pairs = list(keys)
        return self.check_columns([r for r, _ in pairs], [k for _, k in pairs], source_file)

    def check_columns(
        self, rows: Sequence[int], keys: Sequence[str], source_file: str
    ) -> list[Issue]:
        """:meth:`check_keys` given column by column: ``rows[i]`` is the source row of
        ``keys[i]``. Only the rows whose key is empty, was seen before or comes twice in the
        chunk are looked at one by one; the others are remembered at once."""
        distinct = set(keys)
        seen = self._first.get_many(list(distinct))
        special = {key for key in distinct if not key.replace("|", "")}
        special.update(seen)
        if len(distinct) < len(keys):
            special.update(key for key, n in Counter(keys).items() if n > 1)
        if not special:
            self._first.add_many(keys, source_file, rows)
            return []
        issues = []
        stored = [True] * len(keys)
        for i in [i for i, key in enumerate(keys) if key in special]:
            key, row, stored[i] = keys[i], int(rows[i]), False
            if not key.replace("|", ""):  # the ledger could not tell this lead from others
                names = "+".join(self.key_fields)
                issues.append(
                    Issue(
                        source_file,
                        row,
                        "key",
                        "",
                        "required",
                        "",
                        f"{names} is empty, so this lead cannot be told apart from others; "
                        "fill it, or choose another key in the mapping",
                    )
                )
                continue
            first = seen.get(key)
            if first is None:
                seen[key] = (source_file, row)
                stored[i] = True
                continue
            issues.append(self._duplicate(source_file, row, key, first))
        kept = [i for i, new in enumerate(stored) if new]
        self._first.add_many([keys[i] for i in kept], source_file, [rows[i] for i in kept])
        return issues

    def peek(self, rejected: pd.DataFrame, source_file: str) -> list[Issue]:
        """:meth:`peek_keys` of the rejected rows of a frame (:func:`rejected_keys`)."""
        return self.peek_keys(rejected_keys(rejected, self.key_fields), source_file)

    def peek_keys(self, keys: AbcMapping[int, str], source_file: str) -> list[Issue]:
        """Duplicate issues for rows already rejected for other reasons, so ``_errors`` gives
        every reason: a duplicate of an earlier valid row, or of an earlier row rejected too.
        Such rows never become the first of a key for valid rows (a valid row after them still
        loads).

        Args:
            keys: source row → key of the chunk's rejected rows whose key fields are usable
                (:func:`rejected_keys`).
            source_file: the file, as given.
        """
        wanted = list(set(keys.values()))
        seen = self._first.get_many(wanted)
        earlier = self._first_rejected.get_many(wanted)
        new: list[tuple[str, int]] = []
        issues = []
        for row, key in sorted(keys.items()):
            first = seen.get(key)
            if first is None or (first[0] == source_file and first[1] >= row):
                first = earlier.get(key)
                if first is None:
                    earlier[key] = (source_file, row)
                    new.append((key, row))
                    continue
            issues.append(self._duplicate(source_file, row, key, first))
        self._first_rejected.add_many([k for k, _ in new], source_file, [r for _, r in new])
        return issues

    def _duplicate(self, source_file: str, row: int, key: str, first: tuple[str, int]) -> Issue:
        """The issue of a row whose key the row ``first`` (file, row) had already."""
        where = f"row {first[1]}" if first[0] == source_file else f"{first[0]} row {first[1]}"
        message = f"duplicate of {where} (same {'+'.join(self.key_fields)} {key!r})"
        return Issue(source_file, row, "key", "", "duplicate", key, message, "duplicate")
