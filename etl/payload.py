"""Lead records: a validated row as the API bodies the loader sends and what the reports say.

The stage after validation: a row of :func:`etl.validate.normalize_frame` (column → normalised
value, columns named by :mod:`etl.columns`) that passed every check becomes a frozen
:class:`LeadRow`: the ``POST /leads`` body, its tasks and its notes (docs/api.md, "The lead",
"The task"), with the row's key, where it came from, and its zone source and warnings for the
reports. :func:`lead_rows` builds them for a chunk inside :func:`etl.check.check_chunk` (in a
worker process on a large input); the loader (:mod:`etl.load`) sends them. Nothing here
normalises or checks a value; everything was settled by validation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

import pandas as pd

from etl import columns as col
from etl.values import Caveat

if TYPE_CHECKING:
    from etl.mapping import CommentSpec, Mapping, References

__all__ = ["LeadRow", "LeadRows", "lead_payload", "lead_rows", "task_bodies"]


@dataclass(frozen=True)
class LeadRow:
    """One valid row as a lead record: what the loader sends, and what the reports say of it.

    Attributes:
        source_file: file name as given.
        source_row: row number a spreadsheet shows.
        key: the row's normalised key (``|``-joined key fields, :func:`etl.validate.lead_keys`).
        payload: the ``POST /leads`` body (:func:`lead_payload`); ``{}`` in the records of a
            run that sends nothing (``validate``: :attr:`etl.plan.Plan.bodies`).
        origin: for a row of a re-imported rejects file, the ``(file, row)`` it was first read
            from (its ``_source_file``, ``_source_row``); ``None`` for any other row.
        tasks: ``(slot, task body)`` per task (``callback``, ``meeting``): ``type``,
            ``triggerTime``, ``finishTime`` (meetings), ``userId``, ``teamIds``, ``email``;
            ``phoneId`` is added from the lead's first phone (:func:`task_bodies`).
        notes: ``(slot, comment, time fixed)`` per note of ``payload["comments"]``, in order
            (slot ``note.<i>``, ``<i>`` the mapping's comment index); ``time fixed`` says the
            ``dateTime`` came from a column, so a change of it is an edit.
        zone_source: where ``payload["timezoneId"]`` came from: ``column``, ``phone``,
            ``default`` (loaded.csv's ``timezone_source``; ``""`` when not known).
        warnings: the row's :class:`~etl.values.Caveat` warnings, in the order found (loaded.csv's
            ``warnings``, the run's ``rows_warned``).
        zone: the lead's IANA zone (the body's ``timezoneId``), for the calling-window counts.
        numbers: the lead's E.164 numbers, each once, in mapping order (the body's ``phones``),
            for the counts of phone regions.
    """

    source_file: str
    source_row: int
    key: str
    payload: dict[str, Any]
    origin: tuple[str, int] | None = None
    tasks: tuple[tuple[str, dict[str, Any]], ...] = ()
    notes: tuple[tuple[str, dict[str, Any], bool], ...] = ()
    zone_source: str = ""
    warnings: tuple[Caveat, ...] = ()
    zone: str = ""
    numbers: tuple[str, ...] = ()

    @property
    def source(self) -> tuple[str, int]:
        """The ``(file, row)`` the ledger records for this row's values."""
        return self.origin or (self.source_file, self.source_row)


#: A row's API bodies: ``(payload, tasks, notes)`` as :class:`LeadRow` holds them.
_Bodies = tuple[
    dict[str, Any],
    tuple[tuple[str, dict[str, Any]], ...],
    tuple[tuple[str, dict[str, Any], bool], ...],
]


@dataclass(frozen=True, eq=False)
class LeadRows(Sequence[LeadRow]):
    """The lead records of one chunk of one file, held column by column: a sequence of
    :class:`LeadRow` (in row order) whose columns the main process of a run reads without a
    record per row (the keys, the zones, the report's cells), and which pickles as a few lists
    rather than one object per row (a worker process sends it back with its verdict).

    Attributes:
        source_file: the file, as given (every record's ``source_file``).
        rows: each record's ``source_row``.
        keys: each record's ``key``.
        zone_sources: each record's ``zone_source``.
        warnings: each record's ``warnings``.
        zones: each record's ``zone``.
        numbers: each record's ``numbers``.
        origins: source row → ``origin`` of the rows that have one (a rejects file's).
        bodies: each record's ``(payload, tasks, notes)``; ``None`` when no body was built (a
            run that sends nothing: every record's ``payload`` is ``{}``, no tasks, no notes).

    Records are made once, the first time one is asked for (the loader's), and kept; two
    :class:`LeadRows` are equal (and equal to a tuple of records) when their records are.
    """

    source_file: str
    rows: tuple[int, ...] = ()
    keys: tuple[str, ...] = ()
    zone_sources: tuple[str, ...] = ()
    warnings: tuple[tuple[Caveat, ...], ...] = ()
    zones: tuple[str, ...] = ()
    numbers: tuple[tuple[str, ...], ...] = ()
    origins: AbcMapping[int, tuple[str, int]] = field(default_factory=dict)
    bodies: tuple[_Bodies, ...] | None = None
    _records: list[tuple[LeadRow, ...]] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        n = len(self.rows)
        columns = (self.keys, self.zone_sources, self.warnings, self.zones, self.numbers)
        if any(len(c) != n for c in columns) or (self.bodies is not None and len(self.bodies) != n):
            raise ValueError("the columns of a LeadRows must all have one item per row")

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the records made from it (the receiver makes its own)."""
        return {**self.__dict__, "_records": []}

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> LeadRow: ...

    @overload
    def __getitem__(self, index: slice) -> LeadRows: ...

    def __getitem__(self, index: int | slice) -> LeadRow | LeadRows:
        if isinstance(index, slice):
            return self.take(range(len(self.rows))[index])
        return self.records()[index]

    def __iter__(self) -> Iterator[LeadRow]:
        return iter(self.records())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LeadRows | tuple):
            return self.records() == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def records(self) -> tuple[LeadRow, ...]:
        """One :class:`LeadRow` per row, in row order (made on the first call, then kept)."""
        if not self._records:
            bodies = self.bodies if self.bodies is not None else [({}, (), ())] * len(self.rows)
            origins = self.origins
            self._records.append(
                tuple(
                    LeadRow(
                        self.source_file,
                        row,
                        key,
                        payload if self.bodies is not None else {},
                        origins.get(row),
                        tasks,
                        notes,
                        source,
                        warned,
                        zone,
                        numbers,
                    )
                    for row, key, (payload, tasks, notes), source, warned, zone, numbers in zip(
                        self.rows,
                        self.keys,
                        bodies,
                        self.zone_sources,
                        self.warnings,
                        self.zones,
                        self.numbers,
                        strict=True,
                    )
                )
            )
        return self._records[0]

    def take(self, positions: Sequence[int]) -> LeadRows:
        """The records at ``positions`` (0-based, in the order given), column by column."""
        if len(positions) == len(self.rows) and list(positions) == list(range(len(self.rows))):
            return self

        def pick(column: Sequence[Any]) -> tuple[Any, ...]:
            return tuple(column[i] for i in positions)

        rows = pick(self.rows)
        return LeadRows(
            self.source_file,
            rows,
            pick(self.keys),
            pick(self.zone_sources),
            pick(self.warnings),
            pick(self.zones),
            pick(self.numbers),
            {r: o for r in rows if (o := self.origins.get(r)) is not None},
            pick(self.bodies) if self.bodies is not None else None,
        )

    def without(self, rows: AbcMapping[int, Any] | set[int]) -> LeadRows:
        """The records whose source row is not in ``rows`` (itself when none is)."""
        if not rows:
            return self
        return self.take([i for i, row in enumerate(self.rows) if row not in rows])


def lead_rows(
    valid: pd.DataFrame,
    keys: Sequence[str],
    mapping: Mapping,
    refs: References,
    when: str,
    *,
    source_file: str,
    origins: AbcMapping[int, tuple[str, int]],
    warnings: AbcMapping[int, tuple[Caveat, ...]],
    bodies: bool = True,
) -> LeadRows:
    """The lead record of each valid row of a chunk, in row order, column by column.

    Args:
        valid: rows of :func:`etl.validate.normalize_frame` that passed every check (columns
            named by :mod:`etl.columns`), index = source row.
        keys: the key of each row of ``valid``, in its order (:func:`etl.validate.lead_keys`).
        mapping: the mapping.
        refs: resolved ids.
        when: the run's time as ``YYYY-MM-DDTHH:MM:SSZ`` (see :func:`lead_payload`).
        source_file: the file, as given.
        origins: for a rejects file, source row → the ``(file, row)`` it was first read from.
        warnings: source row → its warnings (rows without any left out).
        bodies: build the API bodies (``payload``, ``tasks``, ``notes``); without them (a run
            that sends nothing) a record holds only what the reports read, and no row is
            turned into a dict.

    Returns:
        One :class:`LeadRow` per row of ``valid`` (a :class:`LeadRows`).
    """
    phone_cols = col.phone_columns(valid.columns)
    numbers = [
        tuple(dict.fromkeys(n for cell in cells if isinstance(cell, tuple) for n in cell))
        for cells in zip(*(valid[c] for c in phone_cols), strict=True)
    ]
    rows = [int(i) for i in valid.index]
    made = None
    if bodies:
        made = tuple(_bodies(rec, mapping, refs, when) for rec in valid.to_dict("records"))
    return LeadRows(
        source_file,
        tuple(rows),
        tuple(keys),
        tuple(source or "" for source in valid[col.TIMEZONE_SOURCE]),
        tuple(warnings.get(row, ()) for row in rows),
        tuple(valid["timezoneId"]),
        tuple(numbers) if phone_cols else ((),) * len(valid),
        {row: origin for row in rows if (origin := origins.get(row)) is not None},
        made,
    )


def _bodies(
    row: AbcMapping[str, Any], mapping: Mapping, refs: References, when: str
) -> tuple[
    dict[str, Any],
    tuple[tuple[str, dict[str, Any]], ...],
    tuple[tuple[str, dict[str, Any], bool], ...],
]:
    """``(POST /leads body, tasks, notes)`` of one row (see :class:`LeadRow`), its comments
    built once for the body and the notes."""
    comments = _comments(row, mapping, when)
    payload = _lead_body(row, mapping, refs, [body for _, body, _ in comments])
    notes = tuple((f"note.{i}", dict(body), fixed) for i, body, fixed in comments)
    return payload, task_bodies(row, mapping, payload), notes


def lead_payload(
    row: AbcMapping[str, Any], mapping: Mapping, refs: References, when: str
) -> dict[str, Any]:
    """The ``POST /leads`` body of one normalised, valid row (docs/api.md, "The lead").

    Args:
        row: one row of :func:`etl.validate.normalize_frame` (column → value).
        mapping: the mapping.
        refs: resolved ids.
        when: the run's time as ``YYYY-MM-DDTHH:MM:SSZ``, the ``dateTime`` of comments whose
            mapping names no date column (the row's ``comment_time.<i>`` otherwise); sent as
            it is, never parsed again.

    Returns:
        ``groupId``, optional ``statusId``/``sourceId``, ``name``, ``surname``, ``email``,
        ``timezoneId``, and when they have values ``phones`` (``{number, label, active}``, each
        number once), ``dynamicData`` (str → str; a blank cell sends no key) and ``comments``.
    """
    return _lead_body(row, mapping, refs, [body for _, body, _ in _comments(row, mapping, when)])


def _lead_body(
    row: AbcMapping[str, Any], mapping: Mapping, refs: References, comments: list[dict[str, Any]]
) -> dict[str, Any]:
    """:func:`lead_payload` with the row's comment bodies already built."""
    payload: dict[str, Any] = {"groupId": refs.project_id}
    if refs.status_id is not None:
        payload["statusId"] = refs.status_id
    if refs.source_id is not None:
        payload["sourceId"] = refs.source_id
    for kind in ("status", "source"):
        value = row.get(kind)
        if isinstance(value, int) and not isinstance(value, bool):
            payload[f"{kind}Id"] = value  # a per-row column, resolved to an id
    for name in ("name", "surname", "email", "timezoneId"):
        payload[name] = row[name]
    phones = _phones(row, mapping)
    if phones:
        payload["phones"] = phones
    dynamic = _dynamic_data(row, mapping)
    if dynamic:
        payload["dynamicData"] = dynamic
    if comments:
        payload["comments"] = comments
    return payload


def _phones(row: AbcMapping[str, Any], mapping: Mapping) -> list[dict[str, Any]]:
    """``{number, label, active}`` of each number of the row, each once, in mapping order."""
    phones: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, spec in enumerate(mapping.phones):
        numbers = row.get(col.phone(i))
        if not isinstance(numbers, tuple):
            continue
        for number in numbers:
            if number not in seen:
                seen.add(number)
                phones.append({"number": number, "label": spec.label, "active": True})
    return phones


def _dynamic_data(row: AbcMapping[str, Any], mapping: Mapping) -> dict[str, str]:
    """The filled dynamicData fields, then the phones' extensions named by ``extension``."""
    dynamic = {}
    for name in mapping.dynamic:
        value = row.get(col.dynamic(name))
        if isinstance(value, str) and value:
            dynamic[name] = value
    for i, spec in enumerate(mapping.phones):
        extension = row.get(col.extension(i))
        if spec.extension and isinstance(extension, str) and extension:
            dynamic[spec.extension] = extension
    return dynamic


def _comments(
    row: AbcMapping[str, Any], mapping: Mapping, when: str
) -> list[tuple[int, dict[str, Any], bool]]:
    """``(comment index, body, time from a column)`` of each filled comment, in mapping order."""
    out = []
    for i, note in enumerate(mapping.comments):
        text = row.get(col.comment(i))
        if isinstance(text, str) and text:
            at = row.get(col.comment_time(i))
            fixed = isinstance(at, str)
            out.append((i, _comment_body(text, at if isinstance(at, str) else when, note), fixed))
    return out


def _comment_body(text: str, at: str, note: CommentSpec) -> dict[str, Any]:
    """One comment: ``text``, ``dateTime`` (``YYYY-MM-DDTHH:MM:SSZ``), ``authorId`` if mapped."""
    comment: dict[str, Any] = {"text": text, "dateTime": at}
    if note.author:
        comment["authorId"] = str(note.author)
    return comment


def task_bodies(
    row: AbcMapping[str, Any], mapping: Mapping, payload: AbcMapping[str, Any]
) -> tuple[tuple[str, dict[str, Any]], ...]:
    """The ``POST /leads/{leadId}/tasks`` bodies of one valid row (docs/api.md, "The task"),
    without ``phoneId`` (the loader adds the lead's first phone): ``(slot, body)`` for each
    mapped task whose cells are filled. ``row`` is :func:`etl.validate.normalize_frame`'s."""
    out = []
    for slot, spec in mapping.tasks():
        when = row.get(slot)
        trigger = getattr(when, "trigger", None)
        if trigger is None:
            continue
        body: dict[str, Any] = {
            "type": spec.type,
            "triggerTime": trigger,
            "email": payload["email"],
            "teamIds": list(spec.teams),
        }
        if getattr(when, "finish", None):
            body["finishTime"] = when.finish  # type: ignore[union-attr]
        if spec.user is not None:
            body["userId"] = spec.user
        out.append((slot, body))
    return tuple(out)
