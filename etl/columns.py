"""The names of a chunk's lead columns: the one place that builds them and reads them back.

:func:`etl.shape.apply_mapping` projects a chunk onto one column per thing the mapping fills,
:func:`etl.validate.normalize_frame` normalises those columns, and the schema, the duplicate-key
check, the payload and the run's counts read them. A lead field with one column keeps its name
(``name``, ``surname``, ``email``, ``timezoneId``, per-row ``status`` and ``source``, the
``region`` column); every other name is built by a function of this module and read back with
:func:`parse`, never by formatting or splitting strings elsewhere:

=====================  ===========================================  ==========================
name                   mapped cell (raw text) → normalised value    mapping entry
=====================  ===========================================  ==========================
``phone.<i>``          phone cell → tuple of E.164 numbers          ``phones[i]``
``ext.<i>``            (normalised only) first extension (str)      ``phones[i]``
``dyn.<field>``        cell → str (``YYYY-MM-DD`` for a date)       ``dynamicData.<field>``
``comment.<i>``        cell → note text (str)                       ``comments[i].column``
``comment_date.<i>``   (mapped only) the note's local time          ``comments[i].date``
``comment_time.<i>``   (normalised only) the note's UTC dateTime    ``comments[i].date``
``<slot>.start``       (mapped only) callback or meeting start      ``callback``/``meeting``
``<slot>.end``         (mapped only) meeting end                    ``meeting.end``
``<slot>.zone``        (mapped only) zone the times are read in     ``<slot>.timezone_column``
``<slot>``             (normalised only) ``etl.calls.TaskTime``     ``callback``/``meeting``
=====================  ===========================================  ==========================

``<i>`` is the entry's index in its mapping list, ``<slot>`` is ``callback`` or ``meeting``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "Column",
    "Family",
    "REGION",
    "TIMEZONE_SOURCE",
    "WARNINGS",
    "comment",
    "comment_date",
    "comment_time",
    "dynamic",
    "extension",
    "is_phone",
    "parse",
    "phone",
    "phone_columns",
    "phones",
    "read_from",
    "task",
]

#: The row's country cell (``defaults.region_column``), raw text.
REGION = "region"
#: Normalised only: where the row's zone came from (``column``, ``phone``, ``default``).
TIMEZONE_SOURCE = "timezone_source"
#: Normalised only: a tuple of warning messages of the row.
WARNINGS = "warnings"


@dataclass(frozen=True)
class Family:
    """A family of derived column names, ``<prefix>.<part>``; calling it builds one name.

    Attributes:
        prefix: the text before the dot.
        kind: what :func:`parse` calls a name of the family.
        indexed: the part is a mapping list index (``int``), else a name.
    """

    prefix: str
    kind: str
    indexed: bool = True

    def __call__(self, part: int | str) -> str:
        return f"{self.prefix}.{part}"


#: ``phones[i]``: the phone cell → a tuple of E.164 numbers.
phone = Family("phone", "phone")
#: Normalised only: ``phones[i]``'s first extension (str).
extension = Family("ext", "extension")
#: ``dynamicData.<field>``: the cell → str (``YYYY-MM-DD`` for ``type: date``).
dynamic = Family("dyn", "dynamic", indexed=False)
#: ``comments[i].column``: the note's text.
comment = Family("comment", "comment")
#: Mapped only: ``comments[i].date``, the note's local time as written.
comment_date = Family("comment_date", "comment_date")
#: Normalised only: ``comments[i].date`` read in the lead's zone, the note's UTC ``dateTime``.
comment_time = Family("comment_time", "comment_time")
_FAMILIES = {f.prefix: f for f in (phone, extension, dynamic, comment, comment_date, comment_time)}
_TASK_PARTS = ("start", "end", "zone")
_SLOTS = ("callback", "meeting")


def phones(count: int) -> list[str]:
    """The columns of the mapping's first ``count`` phones, in mapping order."""
    return [phone(i) for i in range(count)]


def task(slot: str, part: str) -> str:
    """The mapped column of a task's ``start``, ``end`` (meetings) or ``zone`` (the zone its
    times are read in); ``slot`` is ``callback`` or ``meeting``, its normalised column."""
    assert slot in _SLOTS and part in _TASK_PARTS, (slot, part)
    return f"{slot}.{part}"


@dataclass(frozen=True)
class Column:
    """A column name read back by :func:`parse`.

    Attributes:
        kind: ``phone``, ``extension``, ``dynamic``, ``comment``, ``comment_date``,
            ``comment_time``, ``task`` (a normalised ``<slot>`` column), ``task_start``,
            ``task_end``, ``task_zone``, or ``field`` for a column named as its lead field.
        index: the mapping list index (phones, comments), else ``None``.
        name: the dynamicData field, the task slot or the lead field, else ``None``.
    """

    kind: str
    index: int | None = None
    name: str | None = None


def parse(column: str) -> Column:
    """What a column built by this module (or named as a lead field) holds."""
    if column in _SLOTS:
        return Column("task", name=column)
    head, dot, tail = column.partition(".")
    family = _FAMILIES.get(head) if dot else None
    if family is not None and not family.indexed:
        return Column(family.kind, name=tail)
    if family is not None and tail.isdigit():
        return Column(family.kind, index=int(tail))
    if head in _SLOTS and tail in _TASK_PARTS:
        return Column(f"task_{tail}", name=head)
    return Column("field", name=column)


def is_phone(column: object) -> bool:
    """Whether ``column`` is a ``phones[i]`` column."""
    return isinstance(column, str) and parse(column).kind == "phone"


def phone_columns(columns: Iterable[object]) -> list[str]:
    """The phone columns among ``columns``, in their order."""
    return [c for c in columns if isinstance(c, str) and is_phone(c)]


def read_from(column: str) -> str:
    """The mapped column a normalised column's value was read from (``callback`` from
    ``callback.start``, ``comment_time.<i>`` from ``comment_date.<i>``; else the same name)."""
    parsed = parse(column)
    if parsed.kind == "task" and parsed.name is not None:
        return task(parsed.name, "start")
    if parsed.kind == "comment_time" and parsed.index is not None:
        return comment_date(parsed.index)
    return column
