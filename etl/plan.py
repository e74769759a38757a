"""The first stage of a run: what it will do, checked before a row is checked or sent.

:func:`read_setup` reads the mapping file and the run's calling window; :func:`prepare` then
matches every mapped column to every file's headers, resolves the project, status, source and
campaign names to ids (read-only GETs) and reads the order of year-last dates over the whole
input. The result is a frozen :class:`Plan`, or one error listing every problem found
(:func:`every_problem` for a mapping that is itself broken). A :class:`Plan` pickles, so worker
processes check chunks with it (:func:`etl.check.check_chunk`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etl.calls import CallContext, call_context
from etl.client import VoiptimeClient, format_time
from etl.errors import ConfigError, ConfigErrorGroup, EtlError, InputError, MappingError, closest
from etl.extract import CellWatcher, SourceReader, Watch, original_headers, unescape_rejects
from etl.mapping import Mapping, References, load_mapping
from etl.normalize import DAY_FIRST, MONTH_FIRST, DateOrder, date_reading
from etl.references import find_references, offline_references, resolve_references
from etl.report import is_rejects_file
from etl.validate import date_orders

__all__ = [
    "FilePlan",
    "Plan",
    "Scope",
    "Setup",
    "every_problem",
    "prepare",
    "read_setup",
    "resolve_columns",
]

#: Called for an input file a folder run leaves out (its columns do not fit the mapping).
FileFailed = Callable[[Path, EtlError], None]


@dataclass(frozen=True)
class Setup:
    """The mapping file as read, before any input is opened.

    Attributes:
        mapping: the checked mapping, or, when ``broken`` is set, what of it did parse.
        text: the mapping file's text (for report.html).
        calls: the run's time and calling window (callbacks, meetings, note times).
        broken: the mapping's own problems (structure, values), when it has any: nothing is
            read or sent, and :func:`every_problem` adds the columns and names to them.
    """

    mapping: Mapping
    text: str
    calls: CallContext
    broken: MappingError | None = None


def read_setup(
    path: Path, calling_window: str | None, operator_timezone: str | None, now: dt.datetime
) -> Setup:
    """Read the mapping file and the calling window (``--calling-window``, else the mapping's).

    Raises:
        MappingError: the file is not YAML or not a mapping of keys (exit 78); a mapping with
            other problems is returned with them in ``broken``.
        ConfigError: the calling window or the operator's zone cannot be read (exit 78).
    """
    broken: MappingError | None = None
    try:
        mapping = load_mapping(path)
    except MappingError as exc:
        if not isinstance(exc.partial, Mapping):  # not YAML, not a mapping of keys
            raise
        # Check the columns and names of what did parse too, so the one message lists every
        # problem; nothing is read or sent.
        mapping, broken = exc.partial, exc
    text = Path(path).read_text(encoding="utf-8-sig")
    calls = call_context(calling_window or mapping.calling_window, operator_timezone, now)
    return Setup(mapping, text, calls, broken)


@dataclass(frozen=True)
class FilePlan:
    """How one input file feeds the mapping.

    Attributes:
        path: the file, as given.
        columns: the mapping's column name → the file's header (:func:`resolve_columns`).
        formula_optional: headers whose formula without a saved value leaves a field out with a
            warning (→ the field) or silently (→ ``None``) instead of refusing the row.
        rejects_file: one of our own rejects files (cells unescaped, rows traced to their
            first file by ``_source_file``/``_source_row``).
    """

    path: Path
    columns: AbcMapping[str, str]
    formula_optional: AbcMapping[str, str | None] = field(default_factory=dict)
    rejects_file: bool = False


@dataclass(frozen=True)
class Plan:
    """What a run does, decided before a row is checked.

    Attributes:
        mapping: the checked mapping.
        files: each readable input file's :class:`FilePlan`, in run order.
        calls: the run's time and calling window.
        refs: the ids the mapping's names resolve to (offline: only what it gives as ids).
        date_orders: the day/month order of each ``type: date`` field, read from every file.
        listed: the project and campaign as the API lists them (``contacts``,
            ``totalEntries``), by kind; empty offline.
        headers: the run's columns for rejects.csv (every file's, first spelling wins).
        bodies: the lead records carry the API bodies (``import``, its dry run too); a
            ``validate`` run sends nothing, so its records carry only what the reports read
            (:func:`etl.payload.lead_rows`).
    """

    mapping: Mapping
    files: AbcMapping[Path, FilePlan]
    calls: CallContext
    refs: References = References(None)
    date_orders: AbcMapping[str, DateOrder] = field(default_factory=dict)
    listed: AbcMapping[str, dict[str, Any]] = field(default_factory=dict)
    headers: tuple[str, ...] = ()
    bodies: bool = True

    @property
    def when(self) -> str:
        """The run's time as the API writes it (``YYYY-MM-DDTHH:MM:SSZ``, ``calls.now``): the
        ``dateTime`` of the comments whose mapping names no date column."""
        return format_time(self.calls.now)

    @property
    def campaign_id(self) -> str | None:
        """The campaign leads are enrolled in, or ``None``."""
        return self.refs.campaign_id

    @property
    def require_phone(self) -> bool:
        """A campaign is set, so each lead needs a phone (:func:`etl.validate.build_schema`)."""
        return self.refs.campaign_id is not None


Readers = list[tuple[Path, SourceReader]]


@dataclass(frozen=True)
class Scope:
    """How the run was asked for, as far as the first stage needs it.

    Attributes:
        command: ``import`` or ``validate``.
        campaign: ``--campaign`` (id or name), else the mapping's campaign is used.
        folder_run: an ``import`` with ``--archive-dir``: a file whose columns do not fit is
            left out (and told to ``file_failed``), the others go on.
        chunk_rows: rows read at a time by the date-order pass.
        file_failed: told of each file a folder run leaves out.
        dates: the date columns' values gathered while the files were opened (the
            ``watch`` given to :func:`etl.extract.open_source`), so the date orders need no
            pass of their own over those files; ``None``: every file is read for them.
    """

    command: str
    campaign: int | str | None
    folder_run: bool
    chunk_rows: int
    file_failed: FileFailed
    dates: DateScan | None = None


class DateScan:
    """What :func:`etl.validate.date_orders` needs of each file, gathered in the pass
    that checks the file's structure (:func:`etl.extract.open_source` with :meth:`watch`):
    for each ``type: date`` field, the first value that reads only day-first and the first that
    reads only month-first (:func:`etl.normalize.date_reading`), with their rows. A column is
    watched until it has both (its order is then mixed, whatever follows), each distinct text
    read once. Files it has not watched whole (our rejects files, a sheet whose XML the
    workbook reader's fast path leaves to expat) are read again for it (:func:`prepare`).
    """

    def __init__(self, mapping: Mapping) -> None:
        self.mapping = mapping
        #: dynamicData field → its column, for the ``type: date`` fields
        self.fields = {n: s.column for n, s in mapping.dynamic.items() if s.type == "date"}
        #: file → field → reading → (cell, row) of its first such value
        self.found: dict[Path, dict[str, dict[str, tuple[str, int]]]] = {}

    def watch(self, path: Path) -> Watch | None:
        """The ``watch`` to open ``path`` with, or ``None`` when no field is a date."""
        if not self.fields:
            return None

        def watchers(reader: SourceReader) -> dict[str, CellWatcher]:
            found = self.found[path] = {}  # a reader that starts again starts afresh
            if is_rejects_file(reader.headers):
                return {}  # cells escaped: read with the others
            try:
                columns = resolve_columns(self.mapping, original_headers(reader), str(path))
            except MappingError:
                return {}  # said by prepare, which refuses the file or the run
            by_header: dict[str, dict[str, tuple[str, int]]] = {}
            for name, column in self.fields.items():
                found[name] = by_header.setdefault(columns[column], {})
            return {header: _first_readings(seen) for header, seen in by_header.items()}

        return watchers

    def cells(self, path: Path, reader: SourceReader, plan: FilePlan) -> list[DateCell] | None:
        """The values the scan kept of one file, as :func:`etl.validate.date_orders` takes
        them; ``None`` when it did not watch the file's date columns whole."""
        found = self.found.get(path)
        headers = {plan.columns[column] for column in self.fields.values()}
        if found is None or not headers <= reader.watched:
            return None
        return [
            (name, str(path), row, cell)
            for name, seen in found.items()
            for cell, row in seen.values()
        ]


#: (dynamicData field, source file, source row, cell), as :func:`etl.validate.date_orders` reads
DateCell = tuple[str, str, int, object]


def _first_readings(seen: dict[str, tuple[str, int]]) -> CellWatcher:
    """A watcher keeping in ``seen`` the first text (and row) of each one-way reading; done
    once it has both."""

    def watcher(cell: str, row: int) -> bool:
        reading = date_reading(cell)
        if reading == DAY_FIRST or reading == MONTH_FIRST:
            seen.setdefault(reading, (cell, row))
        return len(seen) == 2

    return watcher


def prepare(setup: Setup, readers: Readers, client: VoiptimeClient | None, scope: Scope) -> Plan:
    """Match the columns, resolve the names and read the date orders: the run's :class:`Plan`.

    Args:
        setup: the mapping as read (without ``broken``: see :func:`every_problem`).
        readers: the opened input files; a folder run removes (and closes) a file whose columns
            do not fit, after telling ``scope.file_failed``, and goes on with the others.
        client: the API client, or ``None`` offline (``validate`` only).
        scope: the run's command, ``--campaign`` and the rest (:class:`Scope`).

    Raises:
        MappingError: missing columns and unknown names, all of them, one line each.
        ConfigError: unknown names with another configuration error (no API key for import).
        ApiError: the API could not list the names.
    """
    command, campaign = scope.command, scope.campaign
    mapping = setup.mapping
    wanted = campaign if campaign is not None else mapping.campaign
    listed: dict[str, dict[str, Any]] = {}
    try:
        files = _match_columns(mapping, readers, wanted, scope)
    except MappingError as columns:
        unknown = _unknown_names(client, mapping, wanted, bool(campaign)) if client else []
        if unknown:
            raise MappingError(columns.path, columns.problems + unknown) from None
        try:
            _resolve(client, mapping, wanted, command, listed)
        except ConfigError as names:
            raise ConfigErrorGroup([columns, names]) from None
        raise
    refs = _resolve(client, mapping, wanted, command, listed)
    return Plan(
        mapping=mapping,
        files=files,
        refs=refs,
        calls=setup.calls,
        date_orders=_date_orders(mapping, files, readers, scope),
        listed=listed,
        headers=tuple(_union_headers(r for _, r in readers)),
        bodies=command == "import",
    )


def every_problem(
    broken: MappingError,
    mapping: Mapping,
    readers: Readers,
    client: VoiptimeClient | None,
    scope: Scope,
) -> MappingError:
    """A mapping with problems of its own (``broken``, ``mapping`` what of it did parse): those,
    every missing column and every unknown name, as one :class:`MappingError` to raise. Names
    whose own key has a problem are left out (the problem says it already). ``readers``,
    ``client`` and ``scope`` as for :func:`prepare`."""
    campaign = scope.campaign
    problems = list(broken.problems)
    wanted = campaign if campaign is not None else mapping.campaign
    try:
        _match_columns(mapping, readers, wanted, scope)
    except MappingError as columns:
        problems += columns.problems
    keys = {re.split(r"[.\[: ]", p, maxsplit=1)[0] for p in broken.problems}
    mapping = dataclasses.replace(
        mapping,
        status=None if "status" in keys else mapping.status,
        source=None if "source" in keys else mapping.source,
        campaign=None if "campaign" in keys else mapping.campaign,
    )
    if client is not None and mapping.project != "" and "project" not in keys:
        try:
            named = campaign if campaign is not None else mapping.campaign
            problems += _unknown_names(client, mapping, named, bool(campaign))
        except EtlError as exc:  # the API itself failed: say so, after the problems
            problems.append(f"(names not checked: {exc})")
    return MappingError(broken.path, problems)


def _fold(header: str) -> str:
    return header.strip().casefold()


def resolve_columns(mapping: Mapping, headers: Sequence[str], source: str) -> dict[str, str]:
    """Match every mapped column to a header of the file (the mapping's columns → headers).

    Headers match after trimming and case-folding (``Email `` matches ``email``).

    Args:
        mapping: the checked mapping.
        headers: the file's header names, in file order.
        source: the file name, for messages.

    Returns:
        ``{mapped column: header as in the file}``.

    Raises:
        MappingError: one problem per mapped column missing from the file, with its key path
            and the one unmapped header close to it (``Emial`` → ``Email``), if any.
    """
    by_fold: dict[str, str] = {}
    for header in headers:
        by_fold.setdefault(_fold(header), header)
    resolved = {
        column: by_fold[_fold(column)]
        for _, column in mapping.columns()
        if _fold(column) in by_fold
    }
    unused = [h for h in headers if h not in set(resolved.values())]
    problems: list[str] = []
    for where, column in mapping.columns():
        if column not in resolved:
            shown = ", ".join(repr(h) for h in headers[:20])
            near = closest(column, unused, cutoff=0.8)
            hint = f", did you mean {near!r}?" if near is not None else ""
            problems.append(
                f"{where}: column {column!r} is not in {source}{hint} (its columns: {shown})"
            )
    if problems:
        raise MappingError(mapping.path, problems)
    return resolved


def _match_columns(
    mapping: Mapping, readers: Readers, campaign: int | str | None, scope: Scope
) -> dict[Path, FilePlan]:
    """Every mapped column must be in every file: all problems of all files at once."""
    problems: list[str] = []
    files: dict[Path, FilePlan] = {}
    for path, reader in list(readers):
        try:
            where = f"{path} (header read on row {reader.header_row})"
            columns = resolve_columns(mapping, original_headers(reader), where)
        except MappingError as exc:
            if scope.folder_run:  # a folder run goes on with the other files; this one stays
                scope.file_failed(path, exc)
                readers.remove((path, reader))
                reader.close()
                continue
            problems += exc.problems
            continue
        optional = _formula_optional(mapping, reader.headers, columns)
        files[path] = FilePlan(path, columns, optional, is_rejects_file(reader.headers))
    if campaign is not None and not mapping.phones:
        problems.append("phones: a campaign is set, so each lead needs a phone; map a phone column")
    if problems:
        raise MappingError(mapping.path, problems)
    return files


def _resolve(
    client: VoiptimeClient | None,
    mapping: Mapping,
    campaign: int | str | None,
    command: str,
    listed: dict[str, dict[str, Any]],
) -> References:
    """The mapping's names as ids (``listed`` filled with what the API listed for each)."""
    if client is not None:
        return resolve_references(client, mapping, campaign, listed)
    if command == "import":
        raise ConfigError(
            "No API key: set VOIPTIME_API_KEY or pass --api-key-file (import needs one; "
            "validate runs offline without it)."
        )
    return offline_references(mapping, campaign)


def _unknown_names(
    client: VoiptimeClient, mapping: Mapping, campaign: int | str | None, by_option: bool
) -> list[str]:
    """The mapping's unknown project, status, source and ``campaign``, one line each with the
    key (or ``--campaign``, when ``by_option``) that names them. API errors propagate."""
    _, unknown = find_references(client, mapping, campaign)
    return [
        f"{'--campaign' if err.kind == 'campaign' and by_option else err.kind}: {err}"
        for err in unknown
    ]


def _date_orders(
    mapping: Mapping, files: AbcMapping[Path, FilePlan], readers: Readers, scope: Scope
) -> dict[str, DateOrder]:
    """Each date column's order of year-last dates, decided over every file of the run
    (:func:`etl.validate.date_orders`, when the mapping has ``type: date`` fields): from what
    ``scope.dates`` gathered while a file was opened, else from one more read of the file's
    date columns."""
    dates = {n: s.column for n, s in mapping.dynamic.items() if s.type == "date"}
    if not dates:
        return {}

    def cells() -> Iterator[DateCell]:
        for path, reader in readers:
            kept = scope.dates.cells(path, reader, files[path]) if scope.dates else None
            if kept is not None:
                yield from kept
                continue
            columns = files[path].columns
            try:
                for chunk in reader.chunks(scope.chunk_rows):
                    if files[path].rejects_file:
                        chunk = unescape_rejects(chunk)
                    for name, column in dates.items():
                        values = chunk.frame[columns[column]]
                        for row, cell in values.items():
                            yield name, str(path), int(row), cell
            except InputError:
                continue  # reported by the real pass

    return date_orders(mapping, cells())


def _formula_optional(
    mapping: Mapping, headers: Sequence[str], columns: AbcMapping[str, str]
) -> dict[str, str | None]:
    """The headers whose formula without a saved value leaves that field out (with a warning)
    instead of refusing the row: columns only of comments or of ``dynamicData`` fields that are
    not part of the key (→ the field, for the warning), and columns the mapping does not use
    (→ ``None``). A column of a lead field, a phone, the region or the key is not among them."""
    needed: set[str] = set()
    labels: dict[str, str] = {}
    for where, column in mapping.columns():
        header = columns.get(column, column)
        dynamic = where.split(".", 1)[1] if where.startswith("dynamicData.") else None
        if where.startswith("comments[") or (dynamic is not None and dynamic not in mapping.key):
            labels.setdefault(header, where.removesuffix(".column"))
        else:
            needed.add(header)
    return {h: labels.get(h) for h in headers if h not in needed}


def _union_headers(readers: Any) -> list[str]:
    """The run's columns for rejects.csv: every file's headers, first spelling wins among those
    that match after trimming and case-folding (as the mapping matches them)."""
    out: list[str] = []
    seen: set[str] = set()
    for reader in readers:
        for h in original_headers(reader):
            if h.strip().casefold() not in seen:
                seen.add(h.strip().casefold())
                out.append(h)
    return out
