"""What every run leaves behind: ``summary.json``, ``rejects.csv``, ``loaded.csv``, ``report.html``.

Formats (docs/reports.md):

* ``rejects.csv``: one line per rejected source row: the original columns unchanged (the union of
  the run's files' headers, in first-seen order), then ``_source_file``, ``_source_row``,
  ``_errors`` (every reason, ``; ``-separated). A row that could not be split into the header's
  fields is written back with its own fields, then the three columns.
* ``loaded.csv``: ``_source_file``, ``_source_row``, ``key``, ``lead_id``, ``action``,
  ``campaign_id``, ``timezone_source`` (``column``, ``phone`` or ``default``), ``warnings``.
* ``rejects.xlsx`` (when a source was a workbook): the same rows as text cells (no formula can
  hide in a text cell, so no ``'`` is added; XML keeps a carriage return as a line feed).
* ``summary.json``: the counts, ``errors_by_field`` and ``exit_code``.
* ``report.html``: a self-contained page (inline CSS and SVG, no network) of the same.

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
from openpyxl.cell import WriteOnlyCell

from etl.errors import OutputError

__all__ = [
    "LOADED_COLUMNS",
    "REJECT_COLUMNS",
    "ReportWriter",
    "escape_cell",
    "is_rejects_file",
    "unescape_cell",
]

log = logging.getLogger(__name__)

REJECT_COLUMNS = ("_source_file", "_source_row", "_errors")
LOADED_COLUMNS = (
    "_source_file",
    "_source_row",
    "key",
    "lead_id",
    "action",
    "campaign_id",
    "timezone_source",
    "warnings",
)
_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
#: Rejected rows shown in report.html.
HTML_REJECTS = 200


def _guarded(text: str) -> bool:
    """Starts with a dangerous character, after any number of ``'``."""
    return text.lstrip("'").startswith(_DANGEROUS)


def escape_cell(value: object) -> str:
    """A cell as text that no spreadsheet runs as a formula (a leading ``'`` when needed).

    A value that already starts with ``'`` before a dangerous character (``'=x``) gets one
    more, so :func:`unescape_cell` gives back exactly what was typed.
    """
    text = "" if value is None else str(value)
    if _guarded(text):
        return "'" + text
    return text


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
    """One rejected row, for report.html."""

    source_file: str
    source_row: int
    errors: list[tuple[str, str, str]]  # (field, value, message)


@dataclass
class ReportWriter:
    """Writes one run's report folder as the run goes (rows are streamed, not kept).

    Args:
        folder: the report folder (created; exit 74 when it cannot be).
        columns: the union of the run's source headers, in first-seen order.
        xlsx: also write ``rejects.xlsx`` (when a source was a workbook); every cell is a text
            cell, so none can be a formula.

    Raises:
        OutputError: the folder or a file in it cannot be written.
    """

    folder: Path
    columns: list[str]
    xlsx: bool = False
    errors_by_field: Counter[str] = field(default_factory=Counter)
    errors_by_reason: Counter[tuple[str, str]] = field(default_factory=Counter)
    first_rejects: list[RejectRecord] = field(default_factory=list)
    ambiguous: list[tuple[str, int, str, str]] = field(default_factory=list)
    warned: list[tuple[str, int, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
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
        self._rejects = csv.writer(self._rejects_fh)
        self._loaded = csv.writer(self._loaded_fh)
        self._rejects.writerow([escape_cell(c) for c in [*self.columns, *REJECT_COLUMNS]])
        self._loaded.writerow(LOADED_COLUMNS)
        self._book: Any = None
        if self.xlsx:
            self._book = openpyxl.Workbook(write_only=True)
            self._sheet = self._book.create_sheet("Rejects")
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
        errors: Iterable[tuple[str, str, str]],
    ) -> None:
        """Write one rejected row.

        Args:
            values: the row's original cells by header, or (a row that could not be split into
                the header's fields) its raw fields in order.
            errors: ``(field, value, message)`` per reason; ``message`` names the field and
                column itself (``email (E-mail): 'x': not an e-mail address``).
        """
        errors = list(errors)
        if isinstance(values, Mapping):  # headers match trimmed and case-folded, as mappings do
            folded = {str(k).strip().casefold(): v for k, v in values.items()}
            cells = [folded.get(c.strip().casefold(), "") for c in self.columns]
        else:  # a row that did not split into the header's fields: pad short ones
            cells = list(values) + [""] * (len(self.columns) - len(values))
        text = "; ".join(m for _, _, m in errors)
        self._write(
            self._rejects, [*cells, source_file, source_row, text], self.folder / "rejects.csv"
        )
        if self._book is not None:
            self._xlsx_row([*cells, source_file, source_row, text])
        for f, _, m in errors:
            self.errors_by_field[f] += 1
            self.errors_by_reason[(f, _reason_kind(m))] += 1
        if len(self.first_rejects) < HTML_REJECTS:
            self.first_rejects.append(RejectRecord(source_file, source_row, errors))

    def loaded(
        self,
        source_file: str,
        source_row: int,
        key: str,
        lead_id: int | None,
        action: str,
        campaign_id: str,
        timezone_source: str,
        warnings: str = "",
        ambiguous: bool = False,
    ) -> None:
        """Write one row of ``loaded.csv``; ``ambiguous`` rows are also listed in report.html
        (``action`` is ``ambiguous`` when the lead's creation is unknown, else its enrolment)."""
        if ambiguous and len(self.ambiguous) < HTML_REJECTS:
            self.ambiguous.append((source_file, source_row, key, warnings))
        elif warnings and not ambiguous and len(self.warned) < HTML_REJECTS:
            self.warned.append((source_file, source_row, key, warnings))
        row = [
            source_file,
            source_row,
            key,
            "" if lead_id is None else lead_id,
            action,
            campaign_id,
            timezone_source,
            warnings,
        ]
        self._write(self._loaded, row, self.folder / "loaded.csv")

    @staticmethod
    def _write(writer: Any, cells: Sequence[object], path: Path) -> None:
        try:
            writer.writerow([escape_cell(c) for c in cells])
        except OSError as exc:
            raise OutputError(str(path), f"cannot be written: {exc.strerror}") from None

    def finish(self, summary: dict[str, Any], mapping_text: str = "") -> None:
        """Close the CSVs and write ``rejects.xlsx``, ``summary.json`` and ``report.html``."""
        self.close()
        if self._book is not None:
            try:
                self._book.save(self.folder / "rejects.xlsx")
            except OSError as exc:
                raise OutputError(str(self.folder / "rejects.xlsx"), exc.strerror or "") from None
            self._book = None
        summary = dict(summary)
        summary["errors_by_field"] = dict(sorted(self.errors_by_field.items()))
        try:
            (self.folder / "summary.json").write_text(
                json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
            (self.folder / "report.html").write_text(
                render_html(
                    summary,
                    self.errors_by_reason,
                    self.first_rejects,
                    mapping_text,
                    self.ambiguous,
                    self.warned,
                ),
                encoding="utf-8",
            )
        except OSError as exc:
            raise OutputError(
                str(self.folder), f"report cannot be written: {exc.strerror}"
            ) from None

    def close(self) -> None:
        """Close the CSV files (idempotent)."""
        for fh in (self._rejects_fh, self._loaded_fh):
            if not fh.closed:
                fh.close()


_WHERE = re.compile(r"^[\w.]+(?: \([^)]*\))?: ")


def _reason_kind(message: str) -> str:
    """A short reason for charts, without the field, the column or the value.

    ``phone (Mobile): 'TBD': not a phone number (no digits)`` → ``not a phone number``;
    ``key: duplicate of row 58 (same email …)`` → ``duplicate``.
    """
    text = _WHERE.sub("", message, count=1)
    if text.startswith("'") and "': " in text:
        text = text.split("': ", 1)[1]
    text = re.split(r"[;:(]", text)[0]
    text = re.sub(r" of (?:.* )?row \d+.*$", "", text)
    text = re.sub(r"^\d+ fields, expected \d+$", "wrong number of fields", text)
    return text.strip()[:60]


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("etl", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
)


def _bars(items: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
    """Chart rows: label, count and width in percent of the largest count."""
    top = max((n for _, n in items), default=0)
    return [{"label": k, "count": n, "width": n / top * 100 if top else 0} for k, n in items]


def render_html(
    summary: dict[str, Any],
    by_reason: Counter[tuple[str, str]],
    rejects: list[RejectRecord],
    mapping_text: str,
    ambiguous: list[tuple[str, int, str, str]] | None = None,
    warned: list[tuple[str, int, str, str]] | None = None,
) -> str:
    """The run as one self-contained HTML page (values HTML-escaped by jinja2)."""
    by_field = summary.get("errors_by_field", {})
    bars = _bars(sorted(by_field.items(), key=lambda kv: -kv[1]))
    reasons = _bars([(f"{f}: {r}", n) for (f, r), n in by_reason.most_common(15)])
    zone_bars = _bars(list(summary.get("timezone_sources", {}).items()))
    region_bars = _bars(list(summary.get("phone_regions", {}).items())[:15])
    return _env.get_template("report.html.j2").render(
        ambiguous=ambiguous or [],
        warned=warned or [],
        region_bars=region_bars,
        s=summary,
        bars=bars,
        reasons=reasons,
        zone_bars=zone_bars,
        rejects=rejects,
        mapping_text=mapping_text,
    )
