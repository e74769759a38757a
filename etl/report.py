"""What every run leaves behind: ``summary.json``, ``rejects.csv``, ``loaded.csv``, ``report.html``.

Formats (docs/reports.md):

* ``rejects.csv``: one line per rejected source row: the original columns unchanged (the union of
  the run's files' headers, in first-seen order), then ``_source_file``, ``_source_row``,
  ``_errors`` (every reason, ``; ``-separated). A row that could not be split into the header's
  fields is written back with its own fields, then the three columns.
* ``loaded.csv``: ``_source_file``, ``_source_row``, ``key``, ``lead_id``, ``action``,
  ``campaign_id``, ``timezone_source`` (``column``, ``phone`` or ``default``), ``warnings``,
  ``timezoneId``, ``local_time_at_run`` (the lead's clock when the run started),
  ``callable_hours`` (the operator's hours it may be called in), ``tasks_and_notes``.
* ``rejects.xlsx`` (when a source was a workbook): the same rows as text cells (no formula can
  hide in a text cell, so no ``'`` is added; XML keeps a carriage return as a line feed).
* ``summary.json``: the counts, ``errors_by_field`` and ``exit_code``.
* ``report.html``: one self-contained page (inline CSS, SVG and script, no network, opens
  offline and prints): what happened in the list owner's words (a dry run says "would create"),
  the rejected rows first (every one up to :data:`HTML_REJECTS`, with the lead's name and the
  marked values, filterable by field and reason, sortable), warnings grouped by kind with
  counts and a few examples, and a glossary of the words it uses.

No cell written can run as a spreadsheet formula: a value starting with ``=``, ``+``, ``-``,
``@``, tab or carriage return gets a leading ``'`` (OWASP "CSV injection");
:func:`unescape_cell` removes exactly that again when a rejects file is read back.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import jinja2
import openpyxl
from markupsafe import Markup, escape
from openpyxl.cell import WriteOnlyCell

from etl.errors import EXIT_CANTCREAT, OutputError, combine_exit_codes, exit_meaning
from etl.values import Caveat

__all__ = [
    "LOADED_COLUMNS",
    "REJECTS_SHEET",
    "REJECT_COLUMNS",
    "ReportWriter",
    "escape_cell",
    "is_rejects_file",
    "prune_reports",
    "unescape_cell",
]

log = logging.getLogger(__name__)

REJECT_COLUMNS = ("_source_file", "_source_row", "_errors")
#: The one sheet of ``rejects.xlsx``.
REJECTS_SHEET = "Rejects"
LOADED_COLUMNS = (
    "_source_file",
    "_source_row",
    "key",
    "lead_id",
    "action",
    "campaign_id",
    "timezone_source",
    "warnings",
    "timezoneId",
    "local_time_at_run",
    "callable_hours",
    "tasks_and_notes",
)
_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
#: The name of a report folder voiptime-etl makes under ``reports/`` (a UTC time stamp).
_RUN_FOLDER = re.compile(r"^\d{8}T\d{6}Z$")
#: Every file a run writes into its report folder.
REPORT_FILES = frozenset(
    {"summary.json", "rejects.csv", "rejects.xlsx", "loaded.csv", "report.html"}
)
#: Rejected source rows listed in report.html (rejects.csv has every one).
HTML_REJECTS = 10_000
#: Ambiguous rows listed in report.html.
HTML_AMBIGUOUS = 10_000
#: Rows of loaded.csv an import holds before writing them at once (column by column).
LOADED_BATCH = 1_000
#: Examples shown per kind of warning in report.html.
WARNING_EXAMPLES = 3


#: First characters of a text that may need a ``'`` (a dangerous one, or a ``'`` before one).
_MAYBE_GUARDED = frozenset("'" + "".join(_DANGEROUS))


def _guarded(text: str) -> bool:
    """Starts with a dangerous character, after any number of ``'``."""
    return text.lstrip("'").startswith(_DANGEROUS)


def escape_cell(value: object) -> str:
    """A cell as text that no spreadsheet runs as a formula (a leading ``'`` when needed).

    A value that already starts with ``'`` before a dangerous character (``'=x``) gets one
    more, so :func:`unescape_cell` gives back exactly what was typed.
    """
    text = "" if value is None else value if type(value) is str else str(value)
    if text[:1] in _MAYBE_GUARDED and _guarded(text):
        return "'" + text
    return text


def _escape_column(values: Sequence[object]) -> list[str]:
    """:func:`escape_cell` of each value, worked out once per distinct value (a column of
    ``loaded.csv`` repeats a few values: zones, hours, sources)."""
    known = {value: escape_cell(value) for value in dict.fromkeys(values)}
    return list(map(known.__getitem__, values))


def _escape_texts(texts: Sequence[str]) -> Sequence[str]:
    """:func:`escape_cell` of each text (a column of distinct texts, e.g. keys): the texts
    themselves when none starts with a character that may need a ``'``."""
    if not {t[:1] for t in texts} & _MAYBE_GUARDED:
        return texts
    return [escape_cell(t) for t in texts]


def unescape_cell(value: str) -> str:
    """Undo :func:`escape_cell`: drop the one ``'`` it added before a dangerous character."""
    if value.startswith("'") and _guarded(value):
        return value[1:]
    return value


def is_rejects_file(headers: Sequence[str]) -> bool:
    """True when a file's headers end with our rejects columns (it was written by us)."""
    return all(c in headers for c in REJECT_COLUMNS)


@dataclass
class RejectRecord:
    """One rejected row, for report.html; ``lead`` is the lead's name (or e-mail) as typed."""

    source_file: str
    source_row: int
    errors: list[tuple[str, str, str]]  # (field, value, message)
    lead: str = ""
    reasons: list[str] = field(default_factory=list)  # "field: reason" of each error


@dataclass
class ReportWriter:
    """Writes one run's report folder as the run goes (rows are streamed, not kept).

    Args:
        folder: the report folder (created; exit 74 when it cannot be).
        columns: the union of the run's source headers, in first-seen order.
        xlsx: also write ``rejects.xlsx`` (when a source was a workbook); every cell is a text
            cell, so none can be a formula.
        lead_columns: the headers holding the lead's first name, surname and e-mail (any may
            be ``""``), so report.html can name the lead of a rejected row.
        html_rejects: how many rejected rows report.html lists (the page says when it stops
            short; rejects.csv always has every one).

    Raises:
        OutputError: the folder or a file in it cannot be written.
    """

    folder: Path
    columns: list[str]
    xlsx: bool = False
    lead_columns: Sequence[str] = ()
    html_rejects: int = HTML_REJECTS
    errors_by_field: Counter[str] = field(default_factory=Counter)
    errors_by_reason: Counter[tuple[str, str]] = field(default_factory=Counter)
    first_rejects: list[RejectRecord] = field(default_factory=list)
    ambiguous: list[tuple[str, int, str, str]] = field(default_factory=list)
    missing: list[tuple[str, int, str, str]] = field(default_factory=list)
    #: Warnings of loaded rows: count per ``(field, kind)`` (:class:`~etl.values.Caveat`), and
    #: the first few ``(file, row, key, message)`` of each.
    warning_kinds: Counter[tuple[str, str]] = field(default_factory=Counter)
    warning_examples: dict[tuple[str, str], list[tuple[str, int, str, str]]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        folded = [c.strip().casefold() for c in self.columns]
        self._lead_at = [
            folded.index(c.strip().casefold()) if c and c.strip().casefold() in folded else -1
            for c in (list(self.lead_columns) + ["", "", ""])[:3]
        ]
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._rejects_fh: IO[str] = open(
                self.folder / "rejects.csv", "w", newline="", encoding="utf-8"
            )
            self._loaded_fh: IO[str] = open(
                self.folder / "loaded.csv", "w", newline="", encoding="utf-8"
            )
        except OSError as exc:
            raise OutputError(
                str(self.folder), f"report folder cannot be written: {exc.strerror}"
            ) from None
        self._rejects_path = self.folder / "rejects.csv"
        self._loaded_path = self.folder / "loaded.csv"
        self._rejects = csv.writer(self._rejects_fh)
        self._loaded = csv.writer(self._loaded_fh)
        self._rejects.writerow([escape_cell(c) for c in [*self.columns, *REJECT_COLUMNS]])
        self._loaded.writerow(LOADED_COLUMNS)
        self._book: Any = None
        #: loaded() rows not written yet (written LOADED_BATCH at a time, and at close)
        self._pending: list[tuple[object, ...]] = []
        if self.xlsx:
            self._book = openpyxl.Workbook(write_only=True)
            self._sheet = self._book.create_sheet(REJECTS_SHEET)
            self._xlsx_row([*self.columns, *REJECT_COLUMNS])

    def _xlsx_row(self, cells: Sequence[object]) -> None:
        """Append a row of text cells to rejects.xlsx (never a formula, never a number)."""
        row = []
        for value in cells:
            cell = WriteOnlyCell(self._sheet, value="" if value is None else str(value))
            cell.data_type = "s"
            row.append(cell)
        self._sheet.append(row)

    def reject(
        self,
        source_file: str,
        source_row: int,
        values: Mapping[str, str] | Sequence[str],
        errors: Iterable[tuple[str, str, str] | tuple[str, str, str, str]],
    ) -> None:
        """Write one rejected row.

        Args:
            values: the row's original cells by header, or (a row that could not be split into
                the header's fields) its raw fields in order.
            errors: ``(field, value, message, kind)`` per reason; ``message`` names the field
                and column itself (``email (E-mail): 'x': not an e-mail address (no @)``);
                ``kind`` is what kind of fault it is, without field, column or value, as the
                check that found it named it (``not an e-mail address``: ``etl.validate.Issue``'s
                ``kind``): report.html counts reasons by field and kind. Without ``kind`` (a
                3-tuple) the message after its ``field: `` is the kind.
        """
        given = list(errors)
        shown = [(e[0], e[1], e[2]) for e in given]
        kinds = [(e[0], _kind(e)) for e in given]
        if isinstance(values, Mapping):  # headers match trimmed and case-folded, as mappings do
            folded = {str(k).strip().casefold(): v for k, v in values.items()}
            cells = [folded.get(c.strip().casefold(), "") for c in self.columns]
        else:  # a row that did not split into the header's fields: pad short ones
            cells = list(values) + [""] * (len(self.columns) - len(values))
        text = "; ".join(m for _, _, m in shown)
        self._write(self._rejects, [*cells, source_file, source_row, text], self._rejects_path)
        if self._book is not None:
            self._xlsx_row([*cells, source_file, source_row, text])
        for f, kind in kinds:
            self.errors_by_field[f] += 1
            self.errors_by_reason[(f, kind)] += 1
        if len(self.first_rejects) < self.html_rejects:
            self.first_rejects.append(
                RejectRecord(
                    source_file,
                    source_row,
                    shown,
                    self._lead(cells),
                    [f"{f}: {kind}" for f, kind in kinds],
                )
            )

    def reject_rows(
        self,
        source_file: str,
        rows: Sequence[int],
        columns: Mapping[str, Sequence[object]],
        errors: Sequence[Sequence[tuple[str, str, str, str]]],
    ) -> None:
        """Write rejected rows given column by column: the bytes :meth:`reject` writes for each
        row with its cells by header, in one ``writerows``.

        Args:
            rows: the source rows, in the order they are written.
            columns: header → the rows' cells in that column (in ``rows``' order); headers
                match trimmed and case-folded, the last of two that fold alike wins (as in
                :meth:`reject`).
            errors: each row's reasons, as :meth:`reject` takes them.

        Raises:
            OutputError: the file cannot be written.
        """
        n = len(rows)
        if not n:
            return
        by_header = {str(k).strip().casefold(): v for k, v in columns.items()}
        empty: Sequence[object] = [""] * n
        cells = [by_header.get(c.strip().casefold(), empty) for c in self.columns]
        texts = ["; ".join(e[2] for e in errs) for errs in errors]
        escaped = [[escape_cell(v) for v in column] for column in cells]
        escaped += [[escape_cell(source_file)] * n, [escape_cell(r) for r in rows]]
        escaped.append([escape_cell(t) for t in texts])
        self._write_rows(self._rejects, zip(*escaped, strict=True), self._rejects_path)
        for i, (row, errs) in enumerate(zip(rows, errors, strict=True)):
            kinds = [(e[0], _kind(e)) for e in errs]
            for f, kind in kinds:
                self.errors_by_field[f] += 1
                self.errors_by_reason[(f, kind)] += 1
            if self._book is None and len(self.first_rejects) >= self.html_rejects:
                continue
            values = [column[i] for column in cells]
            if self._book is not None:
                self._xlsx_row([*values, source_file, row, texts[i]])
            if len(self.first_rejects) < self.html_rejects:
                shown = [(e[0], e[1], e[2]) for e in errs]
                reasons = [f"{f}: {kind}" for f, kind in kinds]
                record = RejectRecord(source_file, row, shown, self._lead(values), reasons)
                self.first_rejects.append(record)

    def _lead(self, cells: Sequence[object]) -> str:
        """The lead's name from a row's cells (first name and surname, else the e-mail)."""
        got = [str(cells[i]).strip() if 0 <= i < len(cells) else "" for i in self._lead_at]
        return " ".join(g for g in got[:2] if g) or got[2]

    def loaded(
        self,
        source_file: str,
        source_row: int,
        key: str,
        lead_id: int | None,
        action: str,
        campaign_id: str,
        timezone_source: str,
        warnings: Sequence[Caveat] = (),
        ambiguous: bool = False,
        missing: bool = False,
        window: Any = None,
        extras: str = "",
    ) -> None:
        """Write one row of ``loaded.csv``; ``ambiguous`` rows are also listed in report.html
        (``action`` is ``ambiguous`` when the lead's creation is unknown, else its enrolment),
        and so are ``missing`` ones (``action`` ``missing``: the dialer no longer has the lead
        ``lead_id``). ``window`` is the lead's :class:`etl.calls.LeadWindow` (zone, local time,
        callable hours); ``extras`` what happened to its tasks and notes. ``warnings`` are the
        row's :class:`~etl.values.Caveat` (its ``warnings`` cell: their messages joined with
        ``; ``); report.html counts them by ``(field, kind)``."""
        text = "; ".join(w.message for w in warnings)
        if missing:
            if len(self.missing) < HTML_AMBIGUOUS:
                self.missing.append((source_file, source_row, key, text))
        elif ambiguous:
            if len(self.ambiguous) < HTML_AMBIGUOUS:
                self.ambiguous.append((source_file, source_row, key, text))
        else:
            self._count_caveats(source_file, source_row, key, warnings)
        self._pending.append(
            (
                source_file,
                source_row,
                key,
                "" if lead_id is None else lead_id,
                action,
                campaign_id,
                timezone_source,
                text,
                window.zone if window else "",
                window.local_time if window else "",
                window.hours if window else "",
                extras,
            )
        )
        if len(self._pending) >= LOADED_BATCH:
            self._flush_loaded()

    def _flush_loaded(self) -> None:
        """Write the rows :meth:`loaded` holds, column by column (a column's distinct values
        escaped once: files, actions, campaigns, sources, zones and hours repeat).

        Raises:
            OutputError: the file cannot be written.
        """
        if self._pending:
            self._write_rows(self._loaded, self._loaded_rows(), self._loaded_path)

    def _loaded_rows(self) -> list[tuple[str, ...]]:
        """The rows :meth:`loaded` holds, escaped column by column; none are held after."""
        columns = list(zip(*self._pending, strict=True))
        self._pending = []
        escaped = [
            [escape_cell(v) for v in column] if n in (1, 2, 3) else _escape_column(column)
            for n, column in enumerate(columns)
        ]
        return list(zip(*escaped, strict=True))

    def loaded_valid(
        self, source_file: str, rows: Sequence[tuple[int, str, str, Sequence[Caveat], Any]]
    ) -> None:
        """Write the ``loaded.csv`` rows of valid rows that are listed, not sent (validate).

        Args:
            rows: ``(source row, key, timezone source, caveats, window)`` per row, in file
                order; each is written as :meth:`loaded` writes it with no ``lead_id``, action
                ``valid``, no campaign and no tasks: the same bytes, written column by column
                (each distinct value of a column escaped once) instead of row by row.

        Raises:
            OutputError: the file cannot be written.
        """
        if rows:
            self.loaded_columns(source_file, *zip(*rows, strict=True))

    def loaded_columns(
        self,
        source_file: str,
        source_rows: Sequence[int],
        keys: Sequence[str],
        sources: Sequence[str],
        caveats: Sequence[Sequence[Caveat]],
        windows: Sequence[Any],
    ) -> None:
        """:meth:`loaded_valid` given column by column: each argument holds one item per row
        (source row, key, timezone source, caveats, window), in file order.

        Raises:
            OutputError: the file cannot be written.
        """
        n = len(source_rows)
        if not n:
            return
        self._flush_loaded()  # rows of loaded() before these
        warnings = [""] * n
        for i in [i for i, said in enumerate(caveats) if said]:
            self._count_caveats(source_file, source_rows[i], keys[i], caveats[i])
            warnings[i] = "; ".join(w.message for w in caveats[i])
        shown: dict[int, tuple[str, str, str]] = {}
        for window in {id(w): w for w in windows}.values():  # a few, shared by many rows
            cells = (window.zone, window.local_time, window.hours) if window else ("", "", "")
            shown[id(window)] = (
                escape_cell(cells[0]),
                escape_cell(cells[1]),
                escape_cell(cells[2]),
            )
        zone, local, hours = zip(*map(shown.__getitem__, map(id, windows)), strict=True)
        empty = [""] * n
        columns = [
            [escape_cell(source_file)] * n,
            list(map(str, source_rows)),
            _escape_texts(keys),
            empty,
            ["valid"] * n,
            empty,
            _escape_column(sources),
            _escape_column(warnings),
            zone,
            local,
            hours,
            empty,
        ]
        self._write_rows(self._loaded, zip(*columns, strict=True), self._loaded_path)

    def _count_caveats(
        self, source_file: str, source_row: int, key: str, warnings: Sequence[Caveat]
    ) -> None:
        """Count a loaded row's warnings by ``(field, kind)`` and keep the first examples."""
        for w in warnings:
            group = (w.field, w.kind)
            self.warning_kinds[group] += 1
            examples = self.warning_examples.setdefault(group, [])
            if len(examples) < WARNING_EXAMPLES:
                examples.append((source_file, source_row, key, w.message))

    @staticmethod
    def _write(writer: Any, cells: Sequence[object], path: Path) -> None:
        ReportWriter._write_rows(writer, [[escape_cell(c) for c in cells]], path)

    @staticmethod
    def _write_rows(writer: Any, rows: Iterable[Sequence[str]], path: Path) -> None:
        """Write rows of cells already escaped; a failure says the run stopped here."""
        try:
            writer.writerows(rows)
        except OSError as exc:
            raise OutputError(
                str(path),
                f"cannot be written ({exc.strerror or exc}); the run stopped here. Free some "
                "space (or make the folder writable) and run again: the ledger records what was "
                "sent, so nothing is sent twice",
            ) from None

    def finish(self, summary: dict[str, Any], mapping_text: str = "") -> None:
        """Close the CSVs and write ``rejects.xlsx``, ``summary.json`` and ``report.html``.

        Every file that can be written is written, whatever fails before it. When one cannot
        be (a full disk, a read-only folder), ``summary.json`` and ``report.html`` say so: their
        ``exit_code`` is 74 (or what ranks above it) and ``error`` names the files that failed;
        a file written before a later one failed is written again to say it.

        Raises:
            OutputError: one or more files could not be written (exit 74); the message names
                each with the reason and the files that were kept.
        """
        failures: dict[str, str] = {}
        try:
            self.close()
        except OutputError as exc:
            failures.update(exc.failures if isinstance(exc, _WriteFailures) else {})
        if self._book is not None:
            try:
                self._book.save(self.folder / "rejects.xlsx")
            except OSError as exc:
                failures["rejects.xlsx"] = exc.strerror or str(exc)
            self._book = None
        written: list[str] = []
        for _ in range(2):  # a second round re-writes what was written before a failure
            known = dict(failures)
            marked = _mark_failures(summary, failures, self.folder)
            marked["errors_by_field"] = dict(sorted(self.errors_by_field.items()))
            for name in ("summary.json", "report.html"):
                if name in failures:
                    continue
                target = self.folder / name
                try:
                    target.write_text(self._render(name, marked, mapping_text), encoding="utf-8")
                except OSError as exc:
                    failures[name] = exc.strerror or str(exc)
                    target.unlink(missing_ok=True)  # no half-written file is left to be read
                else:
                    written.append(name)
            if failures == known or not written:
                break
        if failures:
            raise _WriteFailures(self.folder, failures)

    def _render(self, name: str, summary: dict[str, Any], mapping_text: str) -> str:
        if name == "summary.json":
            return json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
        return render_html(
            summary,
            self.errors_by_reason,
            self.first_rejects,
            mapping_text,
            self.html_rejects,
            self.ambiguous,
            [
                (kind[:_WARNING_CHARS], n, self.warning_examples[(name, kind)])
                for (name, kind), n in self.warning_kinds.most_common()
            ],
            self.missing,
        )

    def close(self) -> None:
        """Close the CSV files (idempotent).

        Raises:
            OutputError: a file could not be flushed (e.g. the disk is full); both are closed.
        """
        failures: dict[str, str] = {}
        if not self._loaded_fh.closed and self._pending:
            try:
                self._loaded.writerows(self._loaded_rows())
            except OSError as exc:
                failures["loaded.csv"] = exc.strerror or str(exc)
        for name, fh in (("rejects.csv", self._rejects_fh), ("loaded.csv", self._loaded_fh)):
            if fh.closed:
                continue
            try:
                fh.close()
            except OSError as exc:
                failures[name] = exc.strerror or str(exc)
        if failures:
            raise _WriteFailures(self.folder, failures)


class _WriteFailures(OutputError):
    """Report files of one folder that could not be written; ``failures`` maps file → reason."""

    def __init__(self, folder: Path, failures: dict[str, str]) -> None:
        self.failures = dict(failures)
        kept = [
            n
            for n in ("rejects.csv", "loaded.csv", "rejects.xlsx", "summary.json", "report.html")
            if n not in failures and (folder / n).is_file() and (folder / n).stat().st_size
        ]
        listed = ", ".join(f"{n} ({why})" for n, why in failures.items())
        super().__init__(
            str(folder),
            f"cannot write {listed}"
            + (f"; kept: {', '.join(kept)}" if kept else "")
            + ". Free some space (or make the folder writable) and run again: the ledger "
            "records what was sent, so nothing is sent twice",
        )


def _mark_failures(
    summary: dict[str, Any], failures: dict[str, str], folder: Path
) -> dict[str, Any]:
    """``summary`` with exit code 74 (unless a code ranking above it applies) and the write
    failures in ``error``, when there are any."""
    marked = dict(summary)
    if failures:
        code = int(marked.get("exit_code") or 0)
        marked["exit_code"] = combine_exit_codes([code, EXIT_CANTCREAT])
        note = "cannot write " + ", ".join(f"{folder / n} ({why})" for n, why in failures.items())
        marked["error"] = "; ".join(e for e in (marked.get("error") or "", note) if e)
    return marked


def _ours(folder: Path) -> bool:
    """Whether ``folder`` is a report folder voiptime-etl wrote and nobody added to: named by
    its UTC time stamp, holding only the files a run writes, its ``summary.json`` ours."""
    if not folder.is_dir() or folder.is_symlink() or not _RUN_FOLDER.match(folder.name):
        return False
    try:
        names = {p.name for p in folder.iterdir()}
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        names <= REPORT_FILES
        and isinstance(summary, dict)
        and {"command", "started_at", "exit_code"} <= summary.keys()
    )


def prune_reports(root: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` report folders that voiptime-etl wrote in ``root``.

    A folder is taken for one of ours only when its name is a UTC time stamp as the default
    report folder's (``20261130T031500Z``), it holds nothing but the files a run writes
    (:data:`REPORT_FILES`) and its ``summary.json`` is one we wrote. Anything else in ``root``
    (a folder a person made, one with a file added, a symbolic link) is never touched. Newest
    is by name, i.e. by the time the run started. Only the known files are deleted, then the
    emptied folder; a file appearing meanwhile keeps the folder.

    Args:
        root: the folder holding the run folders (``reports``).
        keep: how many of the newest to keep (1 or more).

    Returns:
        The folders removed, oldest first. A folder that cannot be removed is logged and kept.
    """
    if keep < 1:
        raise ValueError("keep must be 1 or more")
    root = Path(root)
    if not root.is_dir():
        return []
    ours = sorted(p for p in root.iterdir() if _ours(p))
    removed: list[Path] = []
    for folder in ours[: max(0, len(ours) - keep)]:
        try:
            for name in REPORT_FILES:
                (folder / name).unlink(missing_ok=True)
            folder.rmdir()
        except OSError as exc:
            log.warning("%s: old report folder not removed: %s", folder, exc.strerror or exc)
            continue
        log.info("%s: old report folder removed (--keep-reports %d)", folder, keep)
        removed.append(folder)
    return removed


#: Characters of a kind of warning report.html shows.
_WARNING_CHARS = 90
#: Characters of a kind a chart shows.
_KIND_CHARS = 60


def _kind(error: tuple[str, str, str] | tuple[str, str, str, str]) -> str:
    """The kind of one ``reject`` error as the chart shows it (at most 60 characters)."""
    kind = error[3] if len(error) == 4 else error[2].removeprefix(f"{error[0]}: ")
    return kind.strip()[:_KIND_CHARS]


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("etl", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
)


def _bars(items: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
    """Chart rows: label, count and width in percent of the largest count."""
    top = max((n for _, n in items), default=0)
    return [{"label": k, "count": n, "width": n / top * 100 if top else 0} for k, n in items]


#: Words of the page a list's owner may not know: ``(anchor, word, one-line explanation)``.
GLOSSARY = (
    (
        "exit-code",
        "exit code",
        "The number the tool ends with, for scripts and schedulers: 0 means all went well; "
        "this page says in words what this run's number means.",
    ),
    (
        "dry-run",
        "dry run",
        "A rehearsal: every row is checked and compared with the dialer, but nothing is sent; "
        "the numbers say what a real import would do.",
    ),
    (
        "key",
        "key",
        "The field or fields that tell one lead from another (the e-mail unless the mapping "
        "says otherwise).",
    ),
    (
        "duplicate",
        "duplicate",
        "A row whose key an earlier row of the same run already had; the first row wins and "
        "the later one is rejected.",
    ),
    (
        "iana",
        "IANA",
        "The standard names of time zones, written Region/City (America/New_York, "
        "Europe/Berlin); abbreviations such as EST or CET are refused because several places "
        "share them.",
    ),
    (
        "e164",
        "E.164",
        "The international way to write a phone number: + and the country code, then the "
        "number without spaces (+14155552671).",
    ),
    (
        "iso3166",
        "ISO 3166",
        "Two-letter country codes (US, GB, DE), used for numbers written without +country.",
    ),
    (
        "dynamicdata",
        "dynamicData",
        "The dialer's custom fields of a lead (company, sign-up date…), filled from the "
        "columns the mapping names.",
    ),
    (
        "ambiguous",
        "ambiguous",
        "The request reached the dialer but its answer was lost, so nobody knows yet whether "
        "the lead (or its place in the campaign) exists; a person must check.",
    ),
    (
        "mapping",
        "mapping",
        "The YAML file that says which column of the list becomes which field of a lead.",
    ),
    (
        "rejects-csv",
        "rejects.csv",
        "The rejected rows as they were in the list, with the reasons in the last column: fix "
        "them there and import that file again with the same mapping.",
    ),
)
#: Glossary words linked wherever they stand in a message.
_IN_TEXT = ("IANA", "E.164", "ISO 3166", "dynamicData")
_GLOSSED = re.compile(r"\b(" + "|".join(re.escape(w) for w in _IN_TEXT) + r")\b")
_ANCHOR = {w: a for a, w, _ in GLOSSARY}


def _gloss(text: str) -> str:
    """``text`` HTML-escaped, its jargon (IANA, E.164…) linked to the page's glossary."""
    return _GLOSSED.sub(
        lambda m: f'<a class="g" href="#g-{_ANCHOR[m.group(1)]}">{m.group(1)}</a>',
        str(escape(text)),
    )


def _reject_lines(rejects: Sequence[RejectRecord], with_file: bool) -> str:
    """The rejected rows as ``<tr>`` lines, one per reason, built without a template loop
    (10,000 rows render in a fraction of a second). ``data-f``/``data-r`` carry the field and
    the reason for the page's filter."""

    esc = escape  # markupsafe's C escape; the result formats as the escaped text
    glossed: dict[str, str] = {}
    out: list[str] = []
    for r in rejects:
        where = f"<td>{esc(r.source_file)}</td>" if with_file else ""
        head = f'{where}<td class="num">{r.source_row}</td><td>{esc(r.lead)}</td>'
        for (f, value, message), kind in zip(r.errors, r.reasons, strict=True):
            text = glossed.get(message)
            if text is None:
                text = glossed[message] = _gloss(message)
            shown = f"<mark>{esc(value)}</mark>" if value else '<span class="muted">(empty)</span>'
            out.append(
                f'<tr data-f="{esc(f)}" data-r="{esc(kind)}">{head}'
                f"<td>{esc(f)}</td><td>{shown}</td><td>{text}</td></tr>"
            )
    return "\n".join(out)


#: An import's count tiles: ``(summary key, label, label in a dry run, colour class)``. A dry run
#: has no ``leads_missing`` tile (nothing is sent, so nothing answers 404).
_LEAD_TILES = (
    ("leads_created", "created", "would create", "ok"),
    ("leads_updated", "updated", "would update", ""),
    ("leads_unchanged", "unchanged", "would leave unchanged", ""),
    ("leads_failed", "failed", "failed", "bad"),
    ("leads_missing", "of them missing in the dialer", None, "bad"),
    ("leads_ambiguous", "ambiguous", "ambiguous", "warn"),
    ("campaign_entries_added", "added to campaign", "would add to campaign", "ok"),
)


def _tiles(s: Mapping[str, Any]) -> list[tuple[str, str, int, str]]:
    """The count tiles a run shows: ``(summary key, label, count, colour class)``.

    ``validate`` decides only about rows; a dry run says what it *would* do (the campaign tile
    only when there is a campaign); an import says what it did. A count that cannot happen in a
    run (failed leads in a dry run) is shown only when it is not zero.
    """
    rows = [
        ("rows_read", "rows read", ""),
        ("rows_valid", "valid", "ok"),
        ("rows_rejected", "rejected", "bad"),
        ("rows_duplicate", "of them duplicates", "warn"),
    ]
    if s.get("command") == "validate":
        rows.append(("rows_with_warnings", "valid, with a warning", "warn"))
    elif s.get("dry_run"):
        campaign = bool(s.get("campaign_id"))
        rows += [
            (key, would, css)
            for key, _, would, css in _LEAD_TILES
            if would is not None and (campaign or key != "campaign_entries_added")
        ]
    else:
        rows += [(key, label, css) for key, label, _, css in _LEAD_TILES]
    rare = ("leads_failed", "leads_ambiguous") if s.get("dry_run") else ("leads_missing",)
    return [
        (key, label, int(s.get(key) or 0), css)
        for key, label, css in rows
        if key not in rare or s.get(key)
    ]


#: Colours of the zones in the calling-window chart (the most frequent zones first; the rest
#: share the last colour as "other zones").
_ZONE_COLOURS = (
    "#1565c0",
    "#2e7d32",
    "#ef6c00",
    "#6a1b9a",
    "#00838f",
    "#c62828",
    "#8d6e63",
    "#9e9e9e",
)


def _hours_chart(summary: Mapping[str, Any]) -> str:
    """The calling-window chart as inline SVG: one bar per hour of the operator's day, stacked
    by the leads' zones (``callable_by_hour``), with a legend; ``""`` when there is nothing."""
    hours = summary.get("callable_by_hour") or []
    if not hours or not any(h.get("leads") for h in hours):
        return ""
    totals: Counter[str] = Counter()
    for h in hours:
        totals.update(h.get("by_zone", {}))
    named = [z for z, _ in totals.most_common(len(_ZONE_COLOURS) - 1)]
    if len(totals) == len(named) + 1:
        named = [z for z, _ in totals.most_common(len(_ZONE_COLOURS))]
    colour = {z: _ZONE_COLOURS[i] for i, z in enumerate(named)}
    other = "other zones"
    top = max(h.get("leads", 0) for h in hours)
    width, height, left, bottom = 720, 220, 40, 24
    step = (width - left) / 24
    scale = (height - bottom - 10) / top
    parts = [
        f'<svg class="hours" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="leads callable per hour of the operator\'s day">'
    ]
    for n in (0, top):
        y = height - bottom - n * scale
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="ax">{n}</text>'
        )
    for h in hours:
        x = left + h["hour"] * step
        y = height - bottom
        stack: Counter[str] = Counter()
        for zone, n in h.get("by_zone", {}).items():
            stack[zone if zone in colour else other] += n
        for zone in [*named, other]:
            n = stack.get(zone, 0)
            if not n:
                continue
            bar = n * scale
            y -= bar
            parts.append(
                f'<rect x="{x + 2:.1f}" y="{y:.1f}" width="{step - 4:.1f}" height="{bar:.1f}" '
                f'fill="{colour.get(zone, _ZONE_COLOURS[-1])}"><title>'
                f"{h['hour']:02d}:00 {escape(zone)}: {n}</title></rect>"
            )
        parts.append(
            f'<text x="{x + step / 2:.1f}" y="{height - bottom + 14}" text-anchor="middle" '
            f'class="ax">{h["hour"]:02d}</text>'
        )
    parts.append("</svg>")
    legend = [
        f'<span class="key"><i style="background:{colour[z]}"></i>{escape(z)}</span>' for z in named
    ]
    if len(totals) > len(named):
        legend.append(
            f'<span class="key"><i style="background:{_ZONE_COLOURS[-1]}"></i>{other}</span>'
        )
    return "".join(parts) + f'<p class="legend">{"".join(legend)}</p>'


def render_html(
    summary: dict[str, Any],
    by_reason: Counter[tuple[str, str]],
    rejects: list[RejectRecord],
    mapping_text: str,
    cap: int = HTML_REJECTS,
    ambiguous: list[tuple[str, int, str, str]] | None = None,
    warnings: list[tuple[str, int, list[tuple[str, int, str, str]]]] | None = None,
    missing: list[tuple[str, int, str, str]] | None = None,
) -> str:
    """The run as one self-contained HTML page (values HTML-escaped).

    Args:
        summary: what summary.json holds (its numbers are the page's numbers).
        by_reason: rejects per ``(field, reason)``, for the chart.
        rejects: the rejected rows to list (the first ``cap``).
        mapping_text: the mapping file's text, shown at the end.
        cap: the most rejected rows the page lists.
        ambiguous: ``(file, row, key, what happened)`` of rows a person must check.
        warnings: ``(kind, count, examples)`` per kind of warning, most frequent first.
        missing: ``(file, row, key, what happened)`` of rows whose lead the dialer no longer
            has.
    """
    by_field = summary.get("errors_by_field", {})
    bars = _bars(sorted(by_field.items(), key=lambda kv: -kv[1]))
    reasons = _bars([(f"{f}: {r}", n) for (f, r), n in by_reason.most_common(15)])
    zone_bars = _bars(list(summary.get("timezone_sources", {}).items()))
    region_bars = _bars(list(summary.get("phone_regions", {}).items())[:15])
    shown_fields: Counter[str] = Counter()
    shown_reasons: Counter[str] = Counter()
    for r in rejects:
        shown_fields.update(f for f, _, _ in r.errors)
        shown_reasons.update(r.reasons)
    files = {r.source_file for r in rejects}
    with_file = len(files) > 1 or len(summary.get("sources", [])) > 1
    return _env.get_template("report.html.j2").render(
        ambiguous=ambiguous or [],
        missing=missing or [],
        warnings=warnings or [],
        region_bars=region_bars,
        s=summary,
        tiles=_tiles(summary),
        meaning=exit_meaning(int(summary.get("exit_code", 0)), str(summary.get("command"))),
        bars=bars,
        reasons=reasons,
        zone_bars=zone_bars,
        rejects=rejects,
        reject_lines=Markup(_reject_lines(rejects, with_file)),
        reject_problems=sum(len(r.errors) for r in rejects),
        with_file=with_file,
        field_options=sorted(shown_fields.items()),
        reason_options=sorted(shown_reasons.items()),
        cap=cap,
        glossary=GLOSSARY,
        gloss=lambda text: Markup(_gloss(str(text))),
        mapping_text=mapping_text,
        hours_chart=Markup(_hours_chart(summary)),
    )
