"""Read CSV and Excel files into chunks of text cells indexed by the row number a person sees.

Every reader turns a source file into :class:`Chunk` objects whose ``frame`` holds one column per
header (names trimmed, byte-order mark removed, original case, file order) and one row per data
record. Every cell is a Python ``str`` exactly as it stands in the file: an empty cell is ``""``,
nothing is trimmed, and nothing is turned into a number, a date or a missing value (``NA``,
``NULL``, ``None``, ``nan``, ``#N/A`` and ``-`` stay text). The index, named ``_source_row``,
holds the row number a person sees in a spreadsheet program:

* CSV: the 1-based number of the *record* (a quoted cell spanning several lines is one row);
  blank records are skipped but still counted. A first line ``sep=;`` (Excel writes it, reads
  the delimiter from it and shows no row for it) names the delimiter and is not counted.
* Excel: the sheet's own row numbers.

Rows that cannot be turned into a record (a CSV row with more or fewer fields than the header, an
Excel row with a formula whose result was never saved) are reported as :class:`RowProblem` and
are not in the frame; the rest of the file still loads.

A file that cannot be read at all raises :class:`~etl.errors.InputError` (exit 65), one that does
not exist :class:`~etl.errors.InputMissingError` (exit 66). Both are raised by
:func:`open_source` whenever the problem can be seen up front (undecodable bytes, broken or
hostile workbooks, bad header), so no chunk of such a file is ever produced.

Typical use::

    with open_source("leads.csv") as reader:
        print(reader.headers)
        for chunk in reader.chunks(rows=10_000):
            ...  # chunk.frame, chunk.problems
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import logging
import os
import re
import threading
import unicodedata
import warnings
import xml.parsers.expat
import zipfile
from collections import Counter
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Sequence
from collections.abc import Mapping as AbcMapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from xml.etree import ElementTree

import pandas as pd

from etl.errors import EtlError, InputError, InputMissingError
from etl.report import REJECT_COLUMNS, REJECTS_SHEET, is_rejects_file, unescape_cell

__all__ = [
    "CSV_FIELD_LIMIT",
    "CellWatcher",
    "Chunk",
    "CsvSlice",
    "DELIMITERS",
    "ENCODING_FAMILIES",
    "EncodingGuess",
    "INDEX_NAME",
    "ReadOptions",
    "RowProblem",
    "SUFFIXES",
    "SourceReader",
    "TAB_NAMES",
    "Watch",
    "check_csv_structure",
    "decide_encoding",
    "list_sheets",
    "open_source",
    "original_headers",
    "rejects_origins",
    "rejects_read_options",
    "sniff_kind",
    "unescape_rejects",
]

logger = logging.getLogger(__name__)

#: Largest CSV cell, in characters. Python's csv default (131,072) refuses a long note; a cell
#: past this is almost surely an unclosed quote that swallowed the rest of the file.
CSV_FIELD_LIMIT = 8 * 1024 * 1024
csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))

#: File name endings the readers accept (case-insensitive).
CSV_SUFFIXES = (".csv", ".txt", ".tsv")
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
SUFFIXES = CSV_SUFFIXES + EXCEL_SUFFIXES

#: How a mapping may name the TAB delimiter (``read.delimiter``) besides the character itself.
TAB_NAMES = ("\\t", "tab", "TAB")

#: Excel's limits per cell: line feeds, characters. A quoted CSV cell past them is a quote that
#: was never closed (:func:`check_csv_structure`).
EXCEL_CELL_LINES = 253
EXCEL_CELL_CHARS = 32_767

#: Delimiters auto-detection chooses among, in order of preference on a tie.
DELIMITERS = (",", ";", "\t", "|")

#: Name of the frame index: the source row number.
INDEX_NAME = "_source_row"

#: How many non-blank rows header auto-detection looks at.
HEADER_SCAN_ROWS = 20

#: Text files up to this size are given whole to charset-normalizer (bytes).
_DETECT_WHOLE_LIMIT = 8 * 1024 * 1024
#: Larger files: this many bytes from the start and from the first non-UTF-8 byte (bytes).
_DETECT_SAMPLE = 1024 * 1024
#: Decoded characters read to detect the delimiter.
_DELIMITER_SAMPLE_CHARS = 256 * 1024
#: Records looked at to detect the delimiter.
_DELIMITER_SAMPLE_RECORDS = 50

#: Zip-bomb limits for .xlsx/.xlsm: total declared uncompressed size (bytes), and the ratio a
#: member larger than ``_ZIP_RATIO_MIN_SIZE`` bytes may not exceed.
_ZIP_MAX_TOTAL = 1024 * 1024 * 1024
_ZIP_MAX_RATIO = 200
_ZIP_RATIO_MIN_SIZE = 10 * 1024 * 1024

_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_HEADER_JUNK = re.compile(r"^[\s\ufeff\u200b-\u200d\u2060]+|[\s\ufeff\u200b-\u200d\u2060]+$")


@dataclass(frozen=True)
class ReadOptions:
    """How to read a source file (the mapping's ``read:`` block, ``Mapping.read``); ``None``
    means detect.

    Attributes:
        sheet: Excel sheet name or 0-based index (hidden sheets included); ``None`` reads the
            first visible sheet (a hidden lookup sheet before it is skipped).
        header_row: 1-based row number of the header; ``None`` detects it (title rows above the
            header are skipped).
        encoding: text encoding of a CSV file (any Python codec name, e.g. ``cp1252``);
            ``None`` detects it.
        delimiter: CSV field delimiter (one character); ``None`` takes the one a ``sep=X``
            first line names, else detects it among ``,`` ``;`` TAB ``|``.
        max_field_lines: most line breaks a quoted CSV cell may hold (default 253, Excel's
            limit of line feeds per cell); more means a quote that was never closed.
        max_field_chars: most characters a quoted CSV cell holding line breaks may have
            (default 32,767, Excel's limit of characters per cell).
    """

    sheet: str | int | None = None
    header_row: int | None = None
    encoding: str | None = None
    delimiter: str | None = None
    max_field_lines: int = EXCEL_CELL_LINES
    max_field_chars: int = EXCEL_CELL_CHARS


@dataclass(frozen=True)
class RowProblem:
    """A source row that could not be turned into a record.

    Attributes:
        row: the source row number a person sees (as in ``Chunk.frame.index``).
        message: what is wrong, e.g. ``"6 fields, expected 5"``.
        values: the raw fields of that row as read (for ``rejects.csv``); for a ragged CSV row
            every field it has, for an Excel row one value per header column (``""`` for a
            formula without a saved value).
        formula_columns: the headers of the columns whose formula has no saved value (Excel
            rows only), so a caller can leave out the ones it does not need.
        kind: what kind of problem, for the report's chart of reasons (``wrong number of
            fields``, ``formula without a saved value``).
    """

    row: int
    message: str
    values: tuple[str, ...]
    formula_columns: tuple[str, ...] = ()
    kind: str = field(default="", compare=False)


@dataclass
class Chunk:
    """A slice of a source file.

    Attributes:
        frame: one column per header (``SourceReader.headers``, file order), one row per data
            record; every cell a ``str`` exactly as in the file (``""`` when empty, not
            trimmed), dtype ``object``; the ``int64`` index ``_source_row`` holds the row number
            a person sees.
        problems: rows of this chunk that could not be turned into a record; they are not in
            ``frame``.
    """

    frame: pd.DataFrame
    problems: list[RowProblem] = field(default_factory=list)


# A raw row: (source row number, cell texts from column 1 on, 0-based columns whose formula has
# no cached value).
_RawRow = tuple[int, list[str], tuple[int, ...]]

#: Told each distinct text of a watched column, with the first row it stands on, while a CSV's
#: structure is checked (:func:`open_source`); returns ``True`` once it needs no more.
CellWatcher = Callable[[str, int], bool]
#: Given a reader whose header is read, the watchers of the columns to watch, by header.
Watch = Callable[["SourceReader"], AbcMapping[str, CellWatcher]]
#: Distinct texts a watched column remembers; past it they are told again (a watcher must not
#: mind seeing a text twice).
_WATCH_SEEN = 100_000


class SourceReader:
    """An open source file; use :func:`open_source` to get one.

    Attributes:
        path: the file.
        headers: column names as in ``Chunk.frame.columns``: trimmed, BOM removed, original case,
            file order. A column whose header cell is empty but which holds values is named
            ``column_<n>``, ``n`` being its 1-based column number (A = 1); an empty-header
            column without values is left out.
        header_row: 1-based row number of the header.
        encoding: the Python codec used (CSV), else ``None``.
        delimiter: the delimiter used (CSV), else ``None``.
        sheet: the sheet name used (Excel), else ``None``.
        watched: the headers whose watchers (``open_source(watch=...)``) were told every
            distinct text of the column's data rows (those that become frame rows) while the
            structure was checked, or as many as they asked for (CSV, .xlsx/.xlsm); else
            empty.
    """

    path: Path
    headers: list[str]
    header_row: int
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None

    #: Whether rows with a field count other than the header's are problems (CSV only).
    _check_width = False

    def __init__(self, path: Path, options: ReadOptions) -> None:
        self.path = path
        self._options = options
        #: Data rows below the header when known up front (CSV), else ``None``; for progress.
        self.rows_total: int | None = None
        self.headers = []
        self.header_row = 0
        self._positions: list[int] = []  # 0-based column of each header
        self._width = 0  # fields of the header record, empty trailing ones included
        self._min_width = 0  # fields a row needs to reach every kept column
        self.watched: frozenset[str] = frozenset()

    # -- what a subclass provides ----------------------------------------------------------

    def _raw_rows(self) -> Generator[_RawRow, None, None]:
        """Yield every row of the source from the top, blank ones included."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file; the reader cannot be used afterwards."""

    # -- shared logic ----------------------------------------------------------------------

    def __enter__(self) -> SourceReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {str(self.path)!r} header_row={self.header_row}>"

    @contextmanager
    def _guard(self, row: int | None = None) -> Iterator[None]:
        """Turn library warnings into log lines and library exceptions into InputError."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield
            except InputError:
                raise
            except (csv.Error, UnicodeError) as exc:
                raise InputError(str(self.path), f"cannot read the file: {exc}", row=row) from exc
            except MemoryError as exc:
                raise InputError(str(self.path), "the file is too large to read") from exc
            except Exception as exc:  # any library failure: the file is unreadable
                raise InputError(str(self.path), _describe_failure(exc), row=row) from exc
        for message in dict.fromkeys(str(w.message) for w in caught):
            logger.warning("%s: %s", self.path, message)

    def _setup(self) -> None:
        """Find the header row, name the columns and check them."""
        wanted = self._options.header_row
        if wanted is not None and (isinstance(wanted, bool) or wanted < 1):
            raise InputError(str(self.path), f"read.header_row must be 1 or more, not {wanted!r}")
        candidates: list[tuple[int, list[str]]] = []
        with self._guard():
            rows = self._raw_rows()
            try:
                for row, cells, _ in rows:
                    if wanted is not None:
                        if row == wanted:
                            candidates.append((row, cells))
                            break
                        if row > wanted:
                            break
                        continue
                    if _is_blank(cells):
                        continue
                    candidates.append((row, cells))
                    if len(candidates) >= HEADER_SCAN_ROWS:
                        break
            finally:
                rows.close()
        if wanted is not None:
            if not candidates:
                raise InputError(
                    str(self.path), f"read.header_row is {wanted} but the file has no such row"
                )
            if _is_blank(candidates[0][1]):
                raise InputError(
                    str(self.path), "the header row is empty; check read.header_row", row=wanted
                )
            header_row, header = candidates[0]
        else:
            if not candidates:
                raise InputError(str(self.path), "the file holds no rows (no header found)")
            header_row, header = candidates[_header_index([c for _, c in candidates])]
        self.header_row = header_row
        self._name_columns(header)
        logger.info(
            "%s: header in row %d, %d columns", self.path, self.header_row, len(self.headers)
        )

    def _name_columns(self, header: list[str]) -> None:
        names = [_clean_header(h) for h in header]
        if not self._check_width:  # Excel: the header ends at its last non-empty cell
            while names and not names[-1]:
                names.pop()
        self._width = len(names)
        unnamed = {i for i, n in enumerate(names) if not n}
        used = self._columns_with_values(unnamed) if unnamed else set()
        positions: list[int] = []
        headers: list[str] = []
        for i, name in enumerate(names):
            if name:
                headers.append(name)
            elif i in used:
                headers.append(f"column_{i + 1}")
            else:
                continue
            positions.append(i)
        if not headers:
            raise InputError(str(self.path), "the header row has no names", row=self.header_row)
        seen: dict[str, list[int]] = {}
        for name, pos in zip(headers, positions, strict=True):
            seen.setdefault(name.casefold(), []).append(pos)
        clashes = [
            f"{headers[positions.index(cols[0])]!r} (columns "
            + ", ".join(_column_label(c) for c in cols)
            + ")"
            for cols in seen.values()
            if len(cols) > 1
        ]
        if clashes:
            raise InputError(
                str(self.path),
                "duplicate column names (after trimming and ignoring case): "
                + "; ".join(clashes)
                + ". Rename the columns so each is unique.",
                row=self.header_row,
            )
        self.headers = headers
        self._positions = positions
        self._min_width = positions[-1] + 1

    def _columns_with_values(self, columns: set[int]) -> set[int]:
        """Scan the data rows for values in the given 0-based columns."""
        found: set[int] = set()
        with self._guard():
            for _, cells, _ in self._data_rows():
                for i in columns - found:
                    if i < len(cells) and cells[i].strip():
                        found.add(i)
                if found == columns:
                    break
        return found

    def _data_rows(self) -> Generator[_RawRow, None, None]:
        """Yield the non-blank rows below the header."""
        rows = self._raw_rows()
        try:
            for item in rows:
                if item[0] > self.header_row and not _is_blank(item[1]):
                    yield item
        finally:
            rows.close()

    def chunks(self, rows: int = 10_000) -> Iterator[Chunk]:
        """Stream the data rows below the header.

        Args:
            rows: at most this many source rows (loaded or problem rows) per chunk; memory is
                bounded by it.

        Yields:
            Chunks in file order; a file with no data rows yields none. Every call starts again
            from the top of the file.

        Raises:
            InputError: the file became unreadable part-way (e.g. a CSV field over 131,072
                characters, usually an unclosed quote; a damaged workbook part).
        """
        if rows < 1:
            raise ValueError(f"rows must be 1 or more, not {rows}")
        source = self._data_rows()
        last_row = self.header_row
        try:
            while True:
                with self._guard(row=last_row + 1):
                    batch = list(islice(source, rows))
                if not batch:
                    return
                last_row = batch[-1][0]
                yield self._chunk(batch)
        finally:
            source.close()

    def slices(self, rows: int = 10_000) -> list[CsvSlice] | None:
        """The chunks :meth:`chunks` yields, as places in the file that another process can
        read (:meth:`CsvSlice.read`), or ``None`` when this reader has none (anything but a
        UTF-8 CSV)."""
        return None

    def _chunk(self, batch: list[_RawRow]) -> Chunk:
        data: list[list[str]] = []
        index: list[int] = []
        problems: list[RowProblem] = []
        width, min_width, positions = self._width, self._min_width, self._positions
        every = positions == list(range(min_width))  # every field kept, in order
        for row, cells, no_cache in batch:
            if self._check_width:
                n = len(cells)
                if n > width and not any(cells[width:]):
                    n = width  # trailing empty extra fields are tolerated
                if n > width or n < min_width:
                    expected = width if n > width else min_width
                    problems.append(
                        RowProblem(
                            row,
                            f"{n} fields, expected {expected}",
                            tuple(cells),
                            kind="wrong number of fields",
                        )
                    )
                    continue
            if len(cells) < min_width:
                cells = cells + [""] * (min_width - len(cells))
            values = cells if every and len(cells) == min_width else [cells[p] for p in positions]
            if no_cache:
                wanted = [p for p in no_cache if p in positions]
                if wanted:
                    message = "; ".join(
                        f"formula in column {self.headers[positions.index(p)]!r} "
                        f"({_column_label(p)}) has no cached value"
                        for p in wanted
                    )
                    names = tuple(self.headers[positions.index(p)] for p in wanted)
                    problems.append(
                        RowProblem(
                            row, message, tuple(values), names, "formula without a saved value"
                        )
                    )
                    continue
            data.append(values)
            index.append(row)
        frame = pd.DataFrame(data, columns=pd.Index(self.headers, dtype=object), dtype=object)
        if not data:
            frame = pd.DataFrame(
                {h: pd.Series([], dtype=object) for h in self.headers}, columns=self.headers
            )
        frame.index = pd.Index(index, dtype="int64", name=INDEX_NAME)
        return Chunk(frame=frame, problems=problems)


# -- CSV --------------------------------------------------------------------------------------


class _CsvReader(SourceReader):
    _check_width = True

    def __init__(self, path: Path, options: ReadOptions, watch: Watch | None = None) -> None:
        super().__init__(path, options)
        likely = _likely_encoding(path, options.encoding)
        if likely is not None:
            # Read as the BOM, read.encoding or UTF-8 says: the structure pass decodes the whole
            # file strictly, which is the check _choose_encoding makes, so a file that passes
            # is decoded once before its chunks. Anything that fails goes the full way below,
            # which says what it said before (the encoding checked first).
            try:
                self._open(likely, watch)
                return
            except InputError:
                logger.debug("%s: not read as %s; checking the encoding first", path, likely)
        self._open(_choose_encoding(path, options.encoding), watch)

    def _open(self, encoding: str, watch: Watch | None) -> None:
        self.encoding = encoding
        #: The delimiter named by a ``sep=X`` first line (Excel's), which is then no row.
        self.sep_line = _sep_line(self.path, encoding)
        self.delimiter = _choose_delimiter(
            self.path, encoding, self._options.delimiter or self.sep_line
        )
        self._setup()
        self._verify(watch)
        logger.info("%s: CSV, encoding %s, delimiter %r", self.path, self.encoding, self.delimiter)

    def _verify(self, watch: Watch | None) -> None:
        """Parse the whole file once, so a broken record fails here and not part-way through
        the chunks (the pipeline sends each chunk as it goes); see :func:`check_csv_structure`.
        The watched columns' distinct texts are told to their watchers on the way, and in a
        UTF-8 file the place of every :data:`_MARK_ROWS`-th data row is noted
        (:meth:`slices`)."""
        assert self.encoding is not None and self.delimiter is not None
        watching = _Watching(self, watch(self)) if watch is not None else None
        self._places: list[tuple[int, int]] = []
        self._data_total = 0
        self._sliced = False  # whether the places were noted (a UTF-8 file)
        with self._guard():
            if self.encoding in _LINE_CODECS:
                with open(self.path, "rb") as raw:
                    self._stamp = _file_stamp(os.fstat(raw.fileno()))
                    lines = _Lines(raw, 0, self.encoding)
                    text = iter(lines)
                    if self.sep_line is not None:
                        next(text, None)  # Excel's "sep=;" line is no row (see _raw_rows)
                    marks = _Marks(self, lines)
                    records, physical, spanning = self._check_structure(text, watching, marks)
                self._places, self._data_total = marks.places, marks.data
                self._sliced = True
            else:
                with open(self.path, encoding=self.encoding, newline="", errors="strict") as fh:
                    if self.sep_line is not None:
                        fh.readline()  # Excel's "sep=;" line is no row (see _raw_rows)
                    records, physical, spanning = self._check_structure(fh, watching, None)
        logger.info(
            "%s: %d records on %d lines (%d records span several lines)",
            self.path,
            records,
            physical,
            spanning,
        )
        self.rows_total = max(0, records - self.header_row)
        self.watched = watching.headers if watching else frozenset()

    def _check_structure(
        self, lines: Iterable[str], watching: _Watching | None, marks: _Marks | None
    ) -> tuple[int, int, int]:
        assert self.delimiter is not None
        return check_csv_structure(
            lines,
            self.delimiter,
            width=self._width,
            max_field_lines=self._options.max_field_lines,
            max_field_chars=self._options.max_field_chars,
            path=str(self.path),
            watch=watching.see if watching else None,
            watch_from=self.header_row + 1,
            each=marks,
        )

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (with a :class:`CsvSlice`) without the places of the structure pass."""
        return {**self.__dict__, "_places": []}

    def slices(self, rows: int = 10_000) -> list[CsvSlice] | None:
        """:meth:`chunks`' chunks as places noted by the structure pass: each starts at the
        noted data row at or before its first one and skips the rows before that."""
        if rows < 1:
            raise ValueError(f"rows must be 1 or more, not {rows}")
        if not self._sliced:
            return None
        out = []
        for first in range(0, self._data_total, rows):
            row, offset = self._places[first // _MARK_ROWS]
            skip = first - first // _MARK_ROWS * _MARK_ROWS
            out.append(CsvSlice(self, offset, row, skip, min(rows, self._data_total - first)))
        return out

    def _read_slice(self, part: CsvSlice) -> Chunk:
        self._unchanged(part)
        with self._guard(row=part.row + 1):
            records = self._records(part.row, blanks=False, start=part.offset)
            try:
                batch = list(islice(records, part.skip, part.skip + part.rows))
            finally:
                records.close()
        self._unchanged(part)
        if len(batch) != part.rows:
            raise self._changed(part, f"{len(batch)} rows where {part.rows} were counted")
        return self._chunk(batch)

    def _unchanged(self, part: CsvSlice) -> None:
        """Check that the file is still the one the structure pass read (same inode, size and
        modification time) and that ``part.offset`` is the start of a line, before and after a
        slice is read: a file changed since would be read at the wrong place, with wrong row
        numbers.

        Raises:
            InputError: the file changed (or cannot be read) since it was opened.
        """
        try:
            with open(self.path, "rb") as raw:
                stamp = _file_stamp(os.fstat(raw.fileno()))
                if part.offset > 0:
                    raw.seek(part.offset - 1)
                    before = raw.read(1)
                else:
                    before = b"\n"
        except OSError as exc:
            raise self._changed(part, exc.strerror or str(exc)) from None
        if stamp != self._stamp:
            raise self._changed(part, "its size or modification time is not what it was")
        if before not in (b"\n", b"\r"):
            raise self._changed(part, "a row no longer begins where it did")

    def _changed(self, part: CsvSlice, why: str) -> InputError:
        return InputError(
            str(self.path),
            f"the file changed while it was being read ({why}); nothing from here on was "
            "checked: run again once the file is complete and no longer being written",
            row=part.row + 1,
        )

    def _raw_rows(self) -> Generator[_RawRow, None, None]:
        yield from self._records(0, blanks=True)

    def _data_rows(self) -> Generator[_RawRow, None, None]:
        return self._records(self.header_row, blanks=False)

    def _records(
        self, after: int, *, blanks: bool, start: int | None = None
    ) -> Generator[_RawRow, None, None]:
        """The records below row ``after``, blank ones only when ``blanks``: one loop for what
        the shared ``_raw_rows`` → ``_data_rows`` pair does in two generator steps a row.
        With ``start`` (a UTF-8 file), read from that byte offset, where record ``after + 1``
        begins (a place :meth:`_verify` noted)."""
        assert self.encoding is not None and self.delimiter is not None
        with ExitStack() as files:
            if start is None:
                row = 0
                fh: Iterable[str] = files.enter_context(
                    open(self.path, encoding=self.encoding, newline="", errors="strict")
                )
                if self.sep_line is not None:
                    fh.readline()  # type: ignore[attr-defined]  # Excel's "sep=;" line: no row
            else:
                row = after
                raw = files.enter_context(open(self.path, "rb"))
                raw.seek(start)
                fh = _Lines(raw, start, self.encoding)
            reader = csv.reader(fh, delimiter=self.delimiter, quotechar='"', doublequote=True)
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    raise InputError(
                        str(self.path),
                        f"cannot parse CSV ({exc}); a quote may be missing its closing quote",
                        row=row + 1,
                    ) from exc
                row += 1
                if row <= after:
                    continue
                # a first cell that starts with other than white space: not blank (most rows)
                if blanks or (cells and cells[0][:1].strip()) or not _is_blank(cells):
                    yield row, cells, ()


#: Codecs whose files the structure pass reads as bytes split into lines (a line break is the
#: same byte in them and never inside a character), noting where rows start (:class:`CsvSlice`).
_LINE_CODECS = frozenset({"utf-8", "utf-8-sig"})
#: Data rows between two places the structure pass notes (a slice skips fewer than this).
_MARK_ROWS = 1_000
#: Bytes read at a time by :class:`_Lines`.
_LINE_BLOCK = 1 << 20


class _Lines:
    """The lines of a file from byte ``start`` on, decoded, as a text file opened with
    ``newline=""`` gives them (each ends at ``\\n``, ``\\r`` or ``\\r\\n``, kept), for the
    codecs of :data:`_LINE_CODECS`; ``end`` is the byte offset after the last line given.
    A byte sequence the codec refuses raises ``UnicodeDecodeError``, as the text file does."""

    def __init__(self, fh: IO[bytes], start: int, codec: str) -> None:
        self._fh = fh
        self.end = start
        self._codec = codec if start == 0 else "utf-8"  # a BOM only at the very start

    def __iter__(self) -> Iterator[str]:
        pending: list[bytes] = []  # a line not ended yet (one long line: many blocks)
        first = True
        while True:
            block = self._fh.read(_LINE_BLOCK)
            if block and pending and b"\n" not in block and b"\r" not in block:
                pending.append(block)
                continue
            data = b"".join([*pending, block]) if pending else block
            if not data:
                return
            lines = data.splitlines(keepends=True)
            pending = []
            if block and not lines[-1].endswith(b"\n"):
                pending.append(lines.pop())  # cut by the block (or a "\r" a "\n" may follow)
            if first and lines:
                first = False
                self.end += len(lines[0])
                yield lines[0].decode(self._codec)
                lines = lines[1:]
            for line in lines:
                self.end += len(line)
                yield line.decode("utf-8")


class _Marks:
    """Told every record of a UTF-8 CSV's structure pass: counts the data rows (below the
    header, not blank: the rows :meth:`SourceReader.chunks` yields) and notes ``(records
    before it, byte offset)`` of every :data:`_MARK_ROWS`-th one."""

    def __init__(self, reader: SourceReader, lines: _Lines) -> None:
        self.header_row = reader.header_row
        self.lines = lines
        self.before = lines.end  # where the record told next begins
        self.data = 0
        self.places: list[tuple[int, int]] = []

    def __call__(self, row: int, cells: list[str]) -> None:
        if row > self.header_row and ((cells and cells[0][:1].strip()) or not _is_blank(cells)):
            if not self.data % _MARK_ROWS:
                self.places.append((row - 1, self.before))
            self.data += 1
        self.before = self.lines.end


def _file_stamp(stat: os.stat_result) -> tuple[int, int, int, int]:
    """What tells a file changed between two reads: device, inode, size, modification time."""
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True)
class CsvSlice:
    """One chunk of a UTF-8 CSV as a place in the file (:meth:`SourceReader.slices`): what
    :meth:`SourceReader.chunks` yields, read by :meth:`read` where it is needed (a worker
    process), so the process that checked the file's structure does not parse it again.

    Attributes:
        reader: the file's reader (pickled without its noted places).
        offset: the byte where record ``row + 1`` begins.
        row: the records before that place (the file's row numbering).
        skip: data rows to pass over from there before the chunk's first.
        rows: data rows of the chunk (rows the reader refuses included).
    """

    reader: _CsvReader
    offset: int
    row: int
    skip: int
    rows: int

    def read(self) -> Chunk:
        """The chunk, as :meth:`SourceReader.chunks` gives it.

        Raises:
            InputError: the file cannot be read there any more (it changed since it was
                opened).
        """
        return self.reader._read_slice(self)


class _Watching:
    """The watched columns of one structure pass: each distinct text of a column, on a row
    that becomes a frame row (not blank, a field count ``_chunk`` takes), goes to the column's
    watcher once, until the watcher returns ``True``."""

    def __init__(self, reader: SourceReader, watchers: AbcMapping[str, CellWatcher]) -> None:
        self.headers = frozenset(h for h in watchers if h in reader.headers)
        self.width, self.min_width = reader._width, reader._min_width
        #: (0-based field, texts already told, watcher) of each column still watched
        self.columns = [
            (reader._positions[reader.headers.index(h)], set[str](), watchers[h])
            for h in sorted(self.headers, key=reader.headers.index)
        ]

    def see(self, row: int, cells: list[str]) -> bool:
        """Tell the watchers of ``cells`` (record ``row``) what is new; ``True`` once no column
        is watched any more."""
        n = len(cells)
        finished = None
        for column in self.columns:
            pos, seen, watcher = column
            cell = cells[pos] if pos < n else ""
            if cell in seen or not self._taken(cells):
                continue
            if len(seen) >= _WATCH_SEEN:
                seen.clear()
            seen.add(cell)
            if watcher(cell, row):
                finished = [*(finished or []), column]
        if finished:
            self.columns = [c for c in self.columns if all(c is not f for f in finished)]
        return not self.columns

    def _taken(self, cells: list[str]) -> bool:
        """Whether ``_chunk`` makes a frame row of this record (blank ones never reach it)."""
        n = len(cells)
        if n > self.width and not any(cells[self.width :]):
            n = self.width
        return self.min_width <= n <= self.width and not _is_blank(cells)


def _likely_encoding(path: Path, wanted: str | None) -> str | None:
    """The codec a CSV is most likely in, to be confirmed by decoding it all: ``wanted``
    (``read.encoding``), its BOM's, else UTF-8; ``None`` when :func:`_choose_encoding` has
    something to say first (an empty or binary file, an unknown codec name)."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not head or head.startswith(_OLE2_MAGIC) or head.startswith(_ZIP_MAGICS):
        return None
    if wanted:
        try:
            return codecs.lookup(wanted).name
        except LookupError:
            return None
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec
    return "utf-8"


def check_csv_structure(
    lines: Iterable[str],
    delimiter: str,
    *,
    width: int,
    max_field_lines: int = EXCEL_CELL_LINES,
    max_field_chars: int = EXCEL_CELL_CHARS,
    path: str = "<csv>",
    watch: Callable[[int, list[str]], bool] | None = None,
    watch_from: int = 1,
    each: Callable[[int, list[str]], None] | None = None,
) -> tuple[int, int, int]:
    """Check that the records of a CSV text are the rows its lines show.

    A quote that is never closed makes the csv module swallow every line below it into one
    cell, silently. Every record whose cells hold a line break is checked; it is a structure
    error (the whole file is refused) when

    * it ends inside quotes at the end of the file (the quote is never closed);
    * it does not parse under RFC 4180's strict rules: the quote that ends the long cell is
      followed by more text, i.e. it was meant to open a later cell;
    * a cell holds more than ``max_field_lines`` line breaks or more than ``max_field_chars``
      characters (Excel's limits per cell: 253 line feeds, 32,767 characters, so no file saved by
      Excel has such a cell);
    * two or more of the lines inside one cell split, alone, into exactly the header's number
      of fields (``width``, when it is 3 or more): they are rows, not a note.

    Records without line breaks in them are not looked at; a long cell on one line is fine.

    Args:
        lines: the decoded text, line by line with line ends kept (a file opened with
            ``newline=""``).
        delimiter: the field delimiter.
        width: fields of the header record.
        max_field_lines: see above (``read.max_field_lines``).
        max_field_chars: see above (``read.max_field_chars``).
        path: the file, for messages.
        watch: called with ``(row, cells)`` of every record from row ``watch_from`` on (rows
            numbered as the records, blank ones included) until it returns ``True``; the
            reader tells its column watchers through it, so the values a later stage needs
            from the whole file are read in this pass.
        watch_from: see ``watch`` (the first row below the header).
        each: called with ``(row, cells)`` of every record, as it is read (the reader notes
            where its chunks begin through it).

    Returns:
        ``(records, physical lines, records spanning several lines)``; the records count blank
        ones too, as the row numbers do.

    Raises:
        InputError: a structure error (exit 65); ``row`` is the record's row number and the
            message names the line where the quote opened.
    """
    taken: list[str] = []

    def tap() -> Iterator[str]:
        for line in lines:
            taken.append(line)
            yield line

    reader = csv.reader(tap(), delimiter=delimiter, quotechar='"', doublequote=True)
    records = spanning = 0
    line_no = 0  # physical lines consumed before the current record
    while True:
        taken.clear()
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InputError(
                path,
                f"cannot parse CSV on line {line_no + 1} ({exc}); a quote may be missing its "
                "closing quote",
                row=records + 1,
            ) from exc
        records += 1
        first_line = line_no + 1
        line_no = reader.line_num
        if each is not None:
            each(records, cells)
        if watch is not None and records >= watch_from and watch(records, cells):
            watch = None  # every watcher has what it needs
        if len(taken) == 1 and '"' not in taken[0]:
            continue  # one line without quotes: nothing can have been swallowed
        if not any("\n" in c or "\r" in c for c in cells):
            continue
        spanning += 1
        _check_spanning_record(
            path,
            records,
            first_line,
            taken,
            cells,
            delimiter,
            width,
            max_field_lines,
            max_field_chars,
        )
    return records, line_no, spanning


def _line_breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def _check_spanning_record(
    path: str,
    row: int,
    first_line: int,
    raw: list[str],
    cells: list[str],
    delimiter: str,
    width: int,
    max_field_lines: int,
    max_field_chars: int,
) -> None:
    """The checks of :func:`check_csv_structure` for one record whose cells hold line breaks."""
    column = next(i for i, c in enumerate(cells) if "\n" in c or "\r" in c)
    opened = first_line  # the cells before ``column`` hold no line break
    last_line = first_line + len(raw) - 1  # one physical line per item
    where = f"a quote opened on line {opened} (column {_column_label(column)})"
    fix = (
        '; add the missing closing quote (a quote inside a cell is written twice: ""), '
        "then run again. Nothing of this file was sent"
    )
    try:
        list(csv.reader(io.StringIO("".join(raw), newline=""), delimiter=delimiter, strict=True))
    except csv.Error as exc:
        if "unexpected end of data" in str(exc) or not str(exc):
            below = len(raw) - 1
            swallowed = (
                f"it takes in the {below} line{'s' if below != 1 else ''} below it to the end "
                "of the file"
                if below
                else "the file ends inside it"
            )
            raise InputError(
                path,
                f"{where} is never closed: {swallowed}{fix}",
                row=row,
            ) from None
        raise InputError(
            path,
            f"{where} runs to line {last_line}, where a quote that should open a cell closes it "
            f"({exc}): the rows in between would be lost{fix}",
            row=row,
        ) from None
    for i, cell in enumerate(cells):
        if "\n" not in cell and "\r" not in cell:
            continue  # no line break: no limit can be passed
        breaks = _line_breaks(cell)
        if breaks > max_field_lines or (breaks and len(cell) > max_field_chars):
            start = first_line + sum(_line_breaks(c) for c in cells[:i])
            what = (
                f"{breaks} line breaks (read.max_field_lines is {max_field_lines})"
                if breaks > max_field_lines
                else f"{len(cell):,} characters (read.max_field_chars is {max_field_chars:,})"
            )
            raise InputError(
                path,
                f"the quoted cell opened on line {start} (column {_column_label(i)}) holds "
                f"{what}, more than a cell of a spreadsheet can: a quote is probably not "
                f"closed{fix}; or raise the limit under read: in the mapping",
                row=row,
            )
        if width >= 3 and breaks >= 3:
            inner = re.split(r"\r\n|\r|\n", cell)[1:-1]
            rowlike = [
                line
                for line in inner
                if len(next(csv.reader([line], delimiter=delimiter), [])) == width
            ]
            if len(rowlike) >= 2:
                start = first_line + sum(_line_breaks(c) for c in cells[:i])
                raise InputError(
                    path,
                    f"the quoted cell opened on line {start} (column {_column_label(i)}) holds "
                    f"{len(rowlike)} lines that are whole rows of {width} fields: a quote is "
                    f"probably not closed{fix}",
                    row=row,
                )


def _choose_encoding(path: Path, wanted: str | None) -> str:
    """Return the codec to read ``path`` with: ``wanted``, else detected; check it decodes."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not head:
        raise InputError(str(path), "the file is empty")
    if head.startswith(_OLE2_MAGIC) or head.startswith(_ZIP_MAGICS):
        raise InputError(
            str(path),
            "this is an Excel workbook (or another binary file), not text; "
            "save it with an .xlsx or .xls name, or export it as CSV",
        )
    if wanted:
        try:
            codec = codecs.lookup(wanted).name
        except LookupError:
            raise InputError(str(path), f"unknown encoding {wanted!r} (read.encoding)") from None
        _check_decodes(path, codec, given=True)
        return codec
    for bom, codec in _BOMS:
        if head.startswith(bom):
            _check_decodes(path, codec, given=False)
            return codec
    bad = _first_decode_error(path, "utf-8")
    if bad is None:
        return "utf-8"
    codec = _detect_with_charset_normalizer(path, bad[0])
    failure = _first_decode_error(path, codec)
    if failure is not None and codec != "cp1252":
        logger.info("%s: %s does not decode byte %d; trying cp1252", path, codec, failure[0])
        if _first_decode_error(path, "cp1252") is None:
            return "cp1252"
    if failure is not None:
        _raise_undecodable(path, codec, failure, given=False)
    return codec


def _detect_with_charset_normalizer(path: Path, bad_offset: int) -> str:
    """Guess the encoding of a file that is not UTF-8 (see :func:`decide_encoding`).

    Raises:
        InputError: no guess is safe; the message lists the candidates with a sample of each
            decoding and asks for ``read.encoding``.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if size <= _DETECT_WHOLE_LIMIT:
            sample = fh.read()
        else:  # the start, plus the region where UTF-8 first failed
            sample = fh.read(_DETECT_SAMPLE)
            if bad_offset > len(sample) - 1024:
                fh.seek(max(bad_offset - 4096, 0))
                sample += b"\n" + fh.read(_DETECT_SAMPLE)
    guess = decide_encoding(sample)
    if guess.encoding is None:
        if not guess.candidates:
            raise InputError(
                str(path),
                "cannot tell the text encoding (is this a text file?); "
                "set read.encoding in the mapping, e.g. cp1252",
            )
        shown = "; ".join(
            f"{codec} reads " + ", ".join(repr(w) for w in words)
            for codec, words in guess.candidates
        )
        raise InputError(
            str(path),
            f"cannot tell the text encoding for sure ({guess.reason}): {shown}. Set "
            f"read.encoding in the mapping to the one that reads right, e.g. read: "
            f"{{encoding: {guess.candidates[0][0]}}}; nothing of this file was sent",
        )
    if guess.candidates:  # chosen, but another reading was as plausible: say so
        shown = "; ".join(
            f"{codec} reads " + ", ".join(repr(w) for w in words)
            for codec, words in guess.candidates
        )
        logger.warning("%s: encoding %s: %s: %s", path, guess.encoding, guess.reason, shown)
    else:
        logger.info("%s: encoding %s (%s)", path, guess.encoding, guess.reason)
    return guess.encoding


@dataclass(frozen=True)
class EncodingGuess:
    """What :func:`decide_encoding` concluded.

    Attributes:
        encoding: the codec to read with (a Python codec name), or ``None`` when no guess is
            safe.
        reason: why, in words (for the log line or the error message).
        candidates: ``(codec, words)`` for each decoding still in the running, the preferred
            first: the file's most frequent non-ASCII words as that codec reads them (up to
            five, those where the candidates differ first).
    """

    encoding: str | None
    reason: str
    candidates: tuple[tuple[str, tuple[str, ...]], ...] = ()


#: Single-byte code pages that are mistaken for each other, by script family; the first of each
#: is the one Excel writes on a Windows of that locale ("ANSI" code page), preferred on a tie.
ENCODING_FAMILIES: dict[str, tuple[str, ...]] = {
    "Western European": ("cp1252", "latin_1", "iso8859_15", "cp850", "cp437", "mac_roman"),
    "Central European": ("cp1250", "iso8859_2", "mac_latin2", "cp852"),
    "Cyrillic": ("cp1251", "koi8_r", "koi8_u", "mac_cyrillic", "cp866", "iso8859_5"),
    "Greek": ("cp1253", "iso8859_7", "mac_greek", "cp737"),
    "Turkish": ("cp1254", "iso8859_9", "mac_turkish", "cp857"),
    "Baltic": ("cp1257", "iso8859_13", "iso8859_4", "cp775"),
}
#: Families whose readings lose a tie with a reading of another family instead of making the
#: guess uncertain (Baltic code pages read most Western and Central European text plausibly).
_TIE_LOSERS = ("Baltic",)
_FAMILY_OF = {
    codecs.lookup(c).name: family for family, members in ENCODING_FAMILIES.items() for c in members
}
_EXCEL_ORDER = [codecs.lookup(members[0]).name for members in ENCODING_FAMILIES.values()]
#: Lines holding non-ASCII bytes scored per candidate (the rest of the sample is decoded once).
_SCORE_LINES = 5000
_WORD = re.compile(r"[^\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f\s]+")


def decide_encoding(sample: bytes) -> EncodingGuess:
    """Choose the encoding of bytes that are not UTF-8, or say that no choice is safe.

    charset-normalizer's guess is not reliable on lead lists (few distinct words: 200 rows of
    five Russian names in cp1251 come out as mac-cyrillic, cp1253 or gb18030), and the
    single-byte code pages of one script decode the same bytes into different letters without
    any error. So every code page of :data:`ENCODING_FAMILIES` and every charset-normalizer
    candidate that decodes the sample is tried, and each decoding is scored on its non-ASCII
    words: a word is implausible when it mixes letters with symbols or control characters
    (``»ван``), mixes scripts (``Mьller``), has an accented capital inside a word that is not
    all capitals (``иВАН``, ``ZŁrich``), has an accent on nothing, or is a Latin word of three
    letters or more all accented (``Àííà``: Cyrillic read as Latin). Latin code pages outside
    the families that charset-normalizer suggests (iso8859-3, -10, -16, cp1258…) are left out:
    they only add look-alike readings. Words of one character (``€``) are not counted.
    Decodings that read the same words are one candidate; the candidates are those with the
    fewest implausible words (within 1% of the non-ASCII words), and a Baltic reading only
    counts when no reading of another code page is as plausible. Then:

    1. one candidate → it (as the Excel code page when that reads the same: cp1252 for plain
       ``é`` ``ü``);
    2. several, all of one script family, among them the code page Excel writes in that
       locale (cp1251 Cyrillic, cp1252 Western, cp1250 Central European, cp1253 Greek, cp1254
       Turkish, cp1257 Baltic) → that code page;
    3. several across families, when one has fewer words with letters that are rare in
       European languages (:data:`_RARE_LETTERS`: ``ì`` is Czech ``ě`` read as cp1252, ``ŕ`` is
       French ``à`` read as cp1250) than every reading of another family → that one (or its
       family's Excel code page among the candidates);
    4. several across families, when charset-normalizer's language coherence of one is ahead
       of every other family's by 0.2 or more (and it is at least 0.2) → that one (or its
       family's Excel code page among the candidates);
    5. a tie between only Western and Central European readings, cp1252 among them → cp1252
       (Excel's Western code page; French ``è`` and Czech ``č`` are the same byte), with the
       other readings in ``candidates`` so the caller warns;
    6. otherwise no choice: ``encoding`` is ``None`` and ``candidates`` say what each reads.

    Args:
        sample: the file's bytes (or a large part of them).

    Returns:
        The :class:`EncodingGuess`.
    """
    from charset_normalizer import from_bytes
    from charset_normalizer.cd import coherence_ratio

    matches = from_bytes(sample)
    best = matches.best()
    if best is not None and best.encoding.startswith(("utf_16", "utf_32")):
        return EncodingGuess(codecs.lookup(best.encoding).name, "charset-normalizer")
    focus = b"\n".join(
        islice((line for line in sample.splitlines() if max(line, default=0) > 127), _SCORE_LINES)
    )
    leaders = _leaders(sample, _readings(focus, _code_pages(matches)))
    if not leaders:
        return EncodingGuess(None, "no code page decodes it")
    leaders.sort(key=lambda w: _codec_rank(w[2][0]))
    firm = [w for w in leaders if any(_FAMILY_OF.get(m) not in _TIE_LOSERS for m in w[2])]
    leaders = firm or leaders
    chosen = _pick(leaders, coherence_ratio)
    if chosen is not None:
        codec, why = chosen
        return EncodingGuess(codec, why)
    western = codecs.lookup("cp1252").name
    if leaders[0][2][0] == western and all(
        any(_FAMILY_OF.get(m) in ("Western European", "Central European") for m in members)
        for _, _, members in leaders
    ):
        others = tuple((members[0], _sample_words(words, leaders)) for _, words, members in leaders)
        return EncodingGuess(
            western,
            "Western and Central European code pages read it alike; taken as cp1252, "
            "Excel's Western code page (set read.encoding if it is cp1250)",
            others,
        )
    return EncodingGuess(
        None,
        f"{len(leaders)} code pages read it plausibly",
        tuple((members[0], _sample_words(words, leaders)) for _, words, members in leaders[:4]),
    )


_Reading = tuple[int, Counter[str], list[str]]  # (implausible words, words, codecs)


def _code_pages(matches: Any) -> set[str]:
    """The code pages to try: every one of :data:`ENCODING_FAMILIES`, and charset-normalizer's
    candidates but the Latin code pages outside the families (they only add look-alike
    readings)."""
    names = set(_FAMILY_OF)
    for match in matches:
        for name in (match.encoding, *match.could_be_from_charset):
            try:
                name = codecs.lookup(name).name
            except LookupError:
                continue
            if name in names or _latin_code_page(name):
                continue
            names.add(name)
    return names


def _readings(focus: bytes, names: set[str]) -> dict[tuple[str, ...], _Reading]:
    """Each distinct decoding of ``focus`` (its non-ASCII words in order) → its reading; code
    pages that decode it alike share one."""
    groups: dict[tuple[str, ...], _Reading] = {}
    for name in sorted(names, key=_codec_rank):
        try:
            text = focus.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
        words = Counter(  # words with a non-ASCII character; '€' alone says little
            w for w in _WORD.findall(text) if len(w) > 1 and not w.isascii()
        )
        key = tuple(words)
        if key in groups:
            groups[key][2].append(name)
            continue
        dirt = sum(n for w, n in words.items() if not _plausible_word(w))
        groups[key] = (dirt, words, [name])
    return groups


def _leaders(sample: bytes, groups: dict[tuple[str, ...], _Reading]) -> list[_Reading]:
    """The most plausible readings (within 1% of the words of the best), each with the code
    pages that also decode the whole sample. Checked from the most plausible reading on, and
    only as far as the candidates reach (decoding 8 MB once per code page would take seconds)."""
    leaders: list[_Reading] = []
    for dirt, words, members in sorted(groups.values(), key=lambda g: g[0]):
        if leaders and dirt > leaders[0][0] + sum(words.values()) // 100:
            break
        good = [m for m in members if _decodes(sample, m)]
        if good:
            leaders.append((dirt, words, good))
    return leaders


def _pick(
    leaders: list[tuple[int, Counter[str], list[str]]], coherence: Any
) -> tuple[str, str] | None:
    """Rules 1–4 of :func:`decide_encoding`; ``None`` when none applies."""
    if len(leaders) == 1:
        return leaders[0][2][0], "the only plausible reading"
    codecs_ = [m for _, _, members in leaders for m in members]
    families = {_FAMILY_OF.get(m, m) for m in codecs_}
    excel = [m for m in codecs_ if m in _EXCEL_ORDER]
    if len(families) == 1 and excel:
        return excel[0], f"the code page Excel writes for {families.pop()} text"
    rare = sorted(
        (sum(n for w, n in words.items() if _RARE_LETTERS.intersection(w)), members[0])
        for _, words, members in leaders
    )
    fewest, name = rare[0]
    family = _FAMILY_OF.get(name, name)
    if all(r > fewest for r, m in rare[1:] if _FAMILY_OF.get(m, m) != family):
        same = [m for _, m in rare if _FAMILY_OF.get(m, m) == family]
        preferred = [m for m in same if m in _EXCEL_ORDER]
        if len(same) == 1 or preferred:
            pick = preferred[0] if preferred else name
            return pick, "the other readings need letters rare in any language"
    scored = []
    for _, words, members in leaders:
        text = " ".join(" ".join([w] * min(n, 50)) for w, n in words.items())
        ratios = coherence(text)
        scored.append((ratios[0][1] if ratios else 0.0, members[0]))
    scored.sort(reverse=True)
    top, name = scored[0]
    family = _FAMILY_OF.get(name, name)
    rivals = [r for r, m in scored[1:] if _FAMILY_OF.get(m, m) != family]
    if top >= 0.2 and all(top - r >= 0.2 for r in rivals):
        same = [m for _, m in scored if _FAMILY_OF.get(m, m) == family]
        preferred = [m for m in same if m in _EXCEL_ORDER]
        if len(same) == 1 or preferred:
            pick = preferred[0] if preferred else name
            return pick, f"its letters fit a language ({top:.2f}) far better than the others"
    return None


def _codec_rank(name: str) -> tuple[int, str]:
    """Excel's code pages first (Western first), then the others by name."""
    return (_EXCEL_ORDER.index(name) if name in _EXCEL_ORDER else len(_EXCEL_ORDER), name)


def _decodes(sample: bytes, codec: str) -> bool:
    try:
        sample.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def _sample_words(
    words: Counter[str], leaders: list[tuple[int, Counter[str], list[str]]]
) -> tuple[str, ...]:
    """Up to five of the most frequent words of one decoding, those read differently by
    another candidate first (position ``i`` is the same bytes in every decoding)."""
    readings = [list(w) for _, w, _ in leaders]
    mine = list(words)
    differ = [i for i in range(len(mine)) if any(i < len(r) and r[i] != mine[i] for r in readings)]
    order = sorted(range(len(mine)), key=lambda i: (i not in differ, -words[mine[i]]))
    return tuple(mine[i] for i in order[:5])


@dataclass
class _WordShape:
    """What :func:`_plausible_word` looks at in a word."""

    letters: int = 0
    high: int = 0  # non-ASCII letters and marks
    scripts: set[str] = field(default_factory=set)
    symbols: bool = False
    capital_inside: bool = False


def _word_shape(word: str) -> _WordShape | None:
    """The letters, scripts and symbols of a word; ``None`` when one character alone makes it
    implausible (an accent on nothing, a control character)."""
    shape = _WordShape()
    lower_before: bool | None = False
    for ch in word:
        cat = unicodedata.category(ch)
        if cat[0] == "L":
            shape.letters += 1
            if ord(ch) > 127:
                shape.high += 1
            shape.scripts.add(_script(ch))
            if cat == "Lu" and ord(ch) > 127 and (lower_before or shape.letters > 1):
                shape.capital_inside = True
            lower_before = cat == "Ll"
        elif cat[0] == "M":
            if not shape.letters:
                return None  # an accent on nothing
            shape.high += 1
            if _script(ch) != "COMBINING":
                shape.scripts.add(_script(ch))  # an Arabic or Hebrew vowel sign on a Latin letter
        elif cat in ("Cc", "Co", "Cn", "Cs"):
            return None
        elif ch in _JOINERS and lower_before is not None and shape.letters:
            lower_before = None  # O’Brien, Anne–Marie: an apostrophe or dash between letters
        else:
            shape.symbols = True
    return shape


def _plausible_word(word: str) -> bool:
    """Whether a word with non-ASCII characters looks like a word of some language (see
    :func:`decide_encoding`); a run of symbols alone (``–``, ``€``) counts as plausible."""
    shape = _word_shape(word)
    if shape is None:
        return False
    if shape.symbols and shape.letters:
        return False
    if shape.capital_inside and any(ch.islower() for ch in word):
        return False  # ZŁrich, иВАН: an accented capital inside a word that is not all capitals
    if len(shape.scripts) > 1:
        return False
    return not (shape.scripts == {"LATIN"} and shape.letters >= 3 and shape.high >= shape.letters)


@lru_cache(maxsize=256)
def _latin_code_page(codec: str) -> bool:
    """Whether a single-byte code page reads the bytes 0x80–0xFF mostly as Latin letters."""
    latin = 0
    for byte in range(0x80, 0x100):
        try:
            ch = bytes([byte]).decode(codec)
        except UnicodeDecodeError:
            continue  # a byte the code page leaves undefined (or a multi-byte lead byte)
        except LookupError:
            return False
        if len(ch) == 1 and ch.isalpha() and _script(ch) == "LATIN":
            latin += 1
    return latin >= 56


#: Latin letters rare in European names and text (Slovak ŕ ĺ, Czech ď, Italian ì ò ù, French
#: ï û ÿ): a reading that needs them loses to one that does not (Czech ě read as cp1252 is ì).
_RARE_LETTERS = frozenset("ŕŔĺĹďĎìÌòÒùÙïÏûÛÿ")

#: Characters a word may hold between two letters.
_JOINERS = frozenset("’‘ʼ‐‑–—")


@lru_cache(maxsize=8192)
def _script(ch: str) -> str:
    """The script of a letter as the first word of its Unicode name (``LATIN``, ``CYRILLIC``)."""
    try:
        return unicodedata.name(ch).split()[0]
    except ValueError:
        return "?"


def _first_decode_error(path: Path, codec: str) -> tuple[int, str] | None:
    """Decode the whole file strictly; return (byte offset, reason) of the first error."""
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    consumed = 0
    with open(path, "rb") as fh:
        while True:
            block = fh.read(1 << 20)
            pending = decoder.getstate()[0]
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                return consumed - len(pending) + exc.start, exc.reason
            if not block:
                return None
            consumed += len(block)


def _check_decodes(path: Path, codec: str, *, given: bool) -> None:
    failure = _first_decode_error(path, codec)
    if failure is not None:
        _raise_undecodable(path, codec, failure, given=given)


def _raise_undecodable(path: Path, codec: str, failure: tuple[int, str], *, given: bool) -> None:
    offset, reason = failure
    with open(path, "rb") as fh:
        fh.seek(offset)
        byte = fh.read(1)
    how = "read.encoding says" if given else "the detected encoding is"
    raise InputError(
        str(path),
        f"cannot decode byte 0x{byte.hex()} at byte offset {offset} ({how} {codec}: {reason}); "
        "set read.encoding in the mapping to the file's encoding, e.g. utf-8 or cp1252",
    )


_SEP_LINE = re.compile(r'\ufeff?"?sep=(.)"?[ \t]*\r?\n?', re.IGNORECASE)


def _sep_line(path: Path, encoding: str) -> str | None:
    """The delimiter a first line ``sep=;`` names (Excel writes and reads such a line to fix a
    CSV's delimiter, and shows no row for it), or ``None`` when the file has no such line."""
    with open(path, encoding=encoding, newline="", errors="replace") as fh:
        first = fh.readline(64)
    found = _SEP_LINE.fullmatch(first)
    if found is None or found.group(1) in ('"', "\r", "\n"):
        return None
    return found.group(1)


def _choose_delimiter(path: Path, encoding: str, wanted: str | None) -> str:
    if wanted is not None:
        if wanted in TAB_NAMES:
            wanted = "\t"
        if len(wanted) != 1 or wanted in ('"', "\r", "\n"):
            raise InputError(str(path), f"read.delimiter must be one character, not {wanted!r}")
        return wanted
    with open(path, encoding=encoding, newline="", errors="replace") as fh:
        sample = fh.read(_DELIMITER_SAMPLE_CHARS)
        complete = not fh.read(1)
    order: tuple[str, ...] = DELIMITERS
    if path.suffix.lower() == ".tsv":
        order = ("\t",) + tuple(d for d in DELIMITERS if d != "\t")
    found = _detect_delimiter(sample, complete, order)
    if found is None:
        found = order[0]
        logger.info("%s: one column (no delimiter found); using %r", path, found)
    return found


def _detect_delimiter(sample: str, complete: bool, order: Sequence[str]) -> str | None:
    """Pick the candidate that splits the sample's records most consistently into 2+ fields.

    Each candidate parses the sample with the csv module (so delimiters inside quotes do not
    count); the score is the share of non-blank records having the most common field count,
    then that count. Candidates whose most common count is 1 are out.
    """
    best: tuple[float, int] | None = None
    chosen = None
    for delimiter in order:
        try:
            records = list(
                islice(
                    csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter),
                    _DELIMITER_SAMPLE_RECORDS + 1,
                )
            )
        except csv.Error:
            continue
        if not complete and len(records) > 1:
            records = records[:-1]  # the last record may be cut off
        counts = [len(r) for r in records if not _is_blank(r)][:_DELIMITER_SAMPLE_RECORDS]
        if not counts:
            continue
        width, freq = max(Counter(counts).items(), key=lambda kv: (kv[1], kv[0]))
        if width < 2:
            continue
        score = (round(freq / len(counts), 1), width)
        if best is None or score > best:
            best, chosen = score, delimiter
    return chosen


# -- XLSX / XLSM ------------------------------------------------------------------------------


class _XlsxReader(SourceReader):
    """Reads .xlsx/.xlsm: the workbook, its styles and shared strings with openpyxl
    (read-only, cached values), the sheet's rows from its XML (:class:`_FastSheet`, else
    :func:`_sheet_rows`).

    Only rows present in the sheet's XML are visited: a bogus dimension or one formatted cell
    at row 1,048,576 costs nothing (no ``reset_dimensions`` needed), and sparse rows keep
    their real numbers.
    """

    def __init__(self, path: Path, options: ReadOptions, watch: Watch | None = None) -> None:
        super().__init__(path, options)
        #: Whether the rows are read by _FastSheet (until a sheet shows it cannot be).
        self._fast = True
        _check_zip(path)
        # openpyxl leaks its zip file when loading fails, so it gets a handle we close.
        self._fh: io.BufferedReader | None = open(path, "rb")  # closed in close()
        self._book: Any = None
        try:
            with self._guard():
                self._book = _open_workbook(self._fh)
            names = [ws.title for ws in self._book.worksheets]
            hidden = {ws.title for ws in self._book.worksheets if ws.sheet_state != "visible"}
            self.sheet = _pick_sheet(path, names, options.sheet, hidden)
            self._ws = self._book[self.sheet]
            self._setup()
            self._verify(watch)
        except BaseException:
            self.close()
            raise
        logger.info("%s: sheet %r", self.path, self.sheet)

    def _verify(self, watch: Watch | None) -> None:  # noqa: C901 — one pass, three readers of each block (expat, the row count, the watched cells)
        """Decompress and check the sheet's XML once, so a damaged archive (bad CRC, broken
        deflate data) or XML that breaks part-way fails here and not after the first chunks
        were sent. A bare expat pass (no elements built, no entities allowed) runs at tens of
        MB per second, far faster than reading the cells. With ``watch``, the watched columns'
        distinct texts of the rows that become frame rows go to their watchers on the way
        (read by :class:`_FastSheet`; a sheet it cannot read, or a cell it cannot turn into
        text, ends the watching and ``watched`` stays empty: the caller reads the file
        again, which says what is wrong)."""
        parser = xml.parsers.expat.ParserCreate()
        watching = _SheetWatching(self, watch(self)) if watch is not None and self._fast else None
        fast = self._fast_sheet() if watching is not None and watching.columns else None
        if fast is not None and watching is not None:
            fast.read_only([column[0] for column in watching.columns])

        def no_entities(*_: Any) -> None:
            raise InputError(str(self.path), _XML_BOMB)

        parser.EntityDeclHandler = no_entities
        numbers: list[bytes] = []  # each <row>'s r attribute (b"" when it has none)
        carry = b""
        with self._guard(), self._book._archive.open(self._ws._worksheet_path) as part:
            try:
                while True:
                    block = part.read(1 << 20)
                    parser.Parse(block, not block)
                    if fast is not None and watching is not None:
                        try:
                            for row, cells, no_cache in fast.feed(block, not block):
                                if watching.see_row(row, cells, no_cache):
                                    fast = None  # every watcher has what it needs
                                    break
                        except Exception as exc:  # noqa: BLE001 — said by the chunks' pass
                            logger.debug("%s: watching stopped (%r)", self.path, exc)
                            fast = watching = None
                    if not block:
                        break
                    # Tags are searched up to the block's last ">"; the rest (a tag the block
                    # cuts) is searched with the next block.
                    text = carry + block
                    cut = text.rfind(b">") + 1
                    numbers.extend(_ROW_TAG.findall(text, 0, cut))
                    carry = text[cut:][-_ROW_TAG_MAX:]
            except xml.parsers.expat.ExpatError as exc:
                raise InputError(
                    str(self.path),
                    f"sheet {self.sheet!r} is damaged: its XML breaks at line {exc.lineno}, "
                    f"column {exc.offset}; open and save it again in Excel",
                ) from None
        # The rows below the header, blank ones included (a row without r follows the one
        # before it), as CSV counts its records: for progress and the worker pool.
        total = row = 0
        for r in numbers:
            row = int(r) if r.isdigit() else row + 1
            total += row > self.header_row
        self.rows_total = total
        self.watched = watching.headers if watching is not None else frozenset()

    def _fast_sheet(self) -> _FastSheet:
        """A :class:`_FastSheet` for this sheet, reading the header's columns once it is
        known."""
        book = self._book
        fast = _FastSheet(
            _cell_parser(book, self._ws._shared_strings),
            _zero_pad_widths(book),
            str(self.path),
        )
        fast.limit = self._width if self.headers else None
        return fast

    def close(self) -> None:
        if self._book is not None:
            self._book.close()
            self._book = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def _raw_rows(self) -> Generator[_RawRow, None, None]:
        if self._book is None:
            raise ValueError("the reader is closed")
        done = 0
        if self._fast:
            try:
                for item in self._fast_rows():
                    yield item
                    done += 1
                return
            except _NotPlain:
                # Read by expat from the start; the rows given already are the same rows.
                logger.debug("%s: sheet read by expat from row %d on", self.path, done + 1)
                self._fast = False
        rows = self._expat_rows()
        try:
            yield from islice(rows, done, None)
        finally:
            rows.close()

    def _fast_rows(self) -> Generator[_RawRow, None, None]:
        fast = self._fast_sheet()
        with self._book._archive.open(self._ws._worksheet_path) as part:
            while block := part.read(_SHEET_BLOCK):
                yield from fast.feed(block)
            yield from fast.feed(b"", final=True)

    def _expat_rows(self) -> Generator[_RawRow, None, None]:
        ws, book = self._ws, self._book
        limit = self._width if self.headers else None
        padding = _zero_pad_widths(book)
        parser = _cell_parser(book, ws._shared_strings)
        with book._archive.open(ws._worksheet_path) as part:
            for row, cells in _sheet_rows(part, parser, str(self.path)):
                values, no_cache = _row_texts(cells, limit, padding)
                yield row, values, no_cache


class _SheetWatching(_Watching):
    """The watched columns of a workbook's structure pass (:meth:`_XlsxReader._verify`):
    each distinct text of a column on a row that becomes a frame row (below the header, not
    blank, no kept column's formula without a saved value) goes to its watcher once."""

    def __init__(self, reader: SourceReader, watchers: AbcMapping[str, CellWatcher]) -> None:
        super().__init__(reader, watchers)
        self.header_row = reader.header_row
        self.kept = frozenset(reader._positions)

    def see_row(self, row: int, cells: list[str], no_cache: tuple[int, ...]) -> bool:
        """Tell the watchers what is new in a raw row; ``True`` once no column is watched."""
        if row <= self.header_row or _is_blank(cells) or not self.kept.isdisjoint(no_cache):
            return not self.columns
        return self.see(row, cells)

    def _taken(self, cells: list[str]) -> bool:
        return True  # see_row has decided


def _row_texts(
    cells: Iterable[_SheetCell], limit: int | None, padding: AbcMapping[int, int]
) -> tuple[list[str], tuple[int, ...]]:
    """One row's cell texts from column A on (up to ``limit``) and the 0-based columns whose
    formula has no saved value, from :func:`_sheet_rows`'s cells."""
    values: list[str] = []
    no_cache: list[int] = []
    for col, value, data_type, style_id in cells:
        if limit is not None and col >= limit:
            break
        if col >= len(values):
            values.extend([""] * (col + 1 - len(values)))
        if data_type == "no-cache":
            no_cache.append(col)
        else:
            values[col] = _cell_text(value)
            width = padding.get(style_id)
            if width and data_type == "n":
                values[col] = _zero_pad(value, values[col], width)
    return values, tuple(no_cache)


#: A worksheet's ``<row …>`` start tag (any namespace prefix) and its ``r`` digits, if any.
_ROW_TAG = re.compile(rb'<(?:[\w.-]+:)?row(?=[\s>/])(?:[^>]*?\sr="(\d*)")?')
_ROW_TAG_MAX = 64 * 1024
_XML_BOMB = "the sheet declares XML entities (a possible XML bomb)"
#: What reading rows of a workbook whose XML declares entities says (as openpyxl's defused
#: parser made it say before rows were read by :func:`_sheet_rows`).
_DEFUSED = (
    "the workbook's XML declares entities or external references (a possible XML bomb); "
    "refusing to read it"
)
_SHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_ROW, _CELL, _VALUE, _INLINE, _TEXT = (_SHEET_NS + n for n in ("row", "c", "v", "is", "t"))
#: Cell types (``t``) read without openpyxl's element tree; others (``d``, unknown) go to it.
_PLAIN_TYPES = frozenset({"n", "s", "str", "b", "e", "inlineStr"})
#: 0-based column of a cell reference's letters (``"AB"`` → 27), filled as letters are met.
_COLUMNS: dict[str, int] = {}
#: Decompressed sheet XML fed to the parser at a time (bounds the rows held between yields).
_SHEET_BLOCK = 1 << 18

# One cell as openpyxl's WorkSheetParser.parse_cell sees it: (0-based column, value, data type,
# style id).
_SheetCell = tuple[int, Any, str, int]


def _cell_parser(book: Any, shared_strings: Any, source: Any = None) -> Any:
    """openpyxl's sheet parser for ``book`` in cached-values mode, telling a formula without a
    saved result (data type ``no-cache``) from an empty cell."""
    from openpyxl.worksheet._reader import FORMULA_TAG, VALUE_TAG, WorkSheetParser

    class _Parser(WorkSheetParser):  # type: ignore[misc]
        def parse_cell(self, element: Any) -> dict[str, Any]:
            cell: dict[str, Any] = super().parse_cell(element)
            if cell["value"] is None and element.find(FORMULA_TAG) is not None:
                # Excel saves every formula's result in <v>; an empty <v/> is a cached
                # empty text only for a text-typed cell ('str'); else nothing was cached
                # (openpyxl and other writers save formulas without results).
                cached = element.find(VALUE_TAG)
                if cached is not None and element.get("t") in ("str", "s", "inlineStr"):
                    cell["value"] = ""
                else:
                    cell["data_type"] = "no-cache"
            return cell

    return _Parser(
        source,
        shared_strings,
        data_only=True,
        epoch=book.epoch,
        date_formats=book._date_formats,
        timedelta_formats=book._timedelta_formats,
    )


def _sheet_rows(  # noqa: C901 — expat's handlers share the parse state as closures (bound methods would read it through attributes on ~6 calls per cell)
    part: IO[bytes], parser: Any, path: str, row_no: int = 0
) -> Iterator[tuple[int, list[_SheetCell]]]:
    """Stream a worksheet's rows as openpyxl's read-only parser gives them, for less CPU.

    ``parser`` is an openpyxl ``WorkSheetParser`` (source unused) holding the workbook's shared
    strings, epoch and date/duration styles. The XML is read with a bare expat parser; a cell of
    the usual shapes (``<c><v>…</v></c>`` of type ``n``/``s``/``str``/``b``/``e``, or
    ``<c t="inlineStr"><is><t>…</t></is></c>``) is decoded here exactly as
    ``parser.parse_cell`` decodes it (same number casting, same ``from_excel`` for date
    styles, same shared-string table); any other child of a row (a formula, rich text runs,
    type ``d``, a date out of range, ...) is rebuilt as an element and given to
    ``parser.parse_cell`` itself. Row numbers follow openpyxl's ``parse_row`` (``r``, else
    one more than the previous row; ``row_no`` is the row before the first).

    Yields:
        ``(row number, cells)`` per ``<row>`` element, in file order, empty rows included.

    Raises:
        InputError: the XML declares entities.
        xml.parsers.expat.ExpatError, ValueError, IndexError: broken XML or cell data (the
            caller turns them into InputError).
    """
    from openpyxl.utils.cell import coordinate_to_tuple
    from openpyxl.utils.datetime import from_excel
    from openpyxl.worksheet._reader import _cast_number

    shared, epoch = parser.shared_strings, parser.epoch
    dates, durations = parser.date_formats, parser.timedelta_formats
    done: list[tuple[int, list[_SheetCell]]] = []
    cells: list[_SheetCell] = []
    events: list[tuple[str, Any, Any]] = []  # the current row child, to rebuild it if odd
    col_no = depth = 0
    in_row = odd = False
    attrs: dict[str, str] = {}
    collect: list[str] | None = None
    value: str | None = None  # <v> text, or the <is><t> text of an inline string
    seen = 0  # children met: 1 <v>, 2 <is>, 4 <t> in <is>

    def start(name: str, at: dict[str, str]) -> None:
        nonlocal row_no, col_no, depth, in_row, odd, attrs, collect, value, seen
        if not in_row:
            if name == _ROW:
                in_row, col_no, cells[:] = True, 0, ()
                r = at.get("r")
                row_no = row_no + 1 if r is None else _row_number(r)
            return
        depth += 1
        events.append(("s", name, at))
        if depth == 1:
            events[:] = events[-1:]
            attrs, value, seen, collect = at, None, 0, None
            odd = name != _CELL or at.get("t", "n") not in _PLAIN_TYPES
        elif depth == 2 and name == _VALUE and not seen:
            seen, collect = 1, []
        elif depth == 2 and name == _INLINE and not seen:
            seen = 2
        elif depth == 3 and name == _TEXT and seen == 2:
            seen, collect = 6, []
        else:
            odd = True

    def end(name: str) -> None:
        nonlocal depth, in_row, col_no, collect, value
        if depth == 0:
            if name == _ROW and in_row:
                in_row = False
                done.append((row_no, list(cells)))
            return
        depth -= 1
        events.append(("e", name, None))
        if collect is not None:
            value, collect = "".join(collect), None
        if depth:
            return
        if not odd:
            before = col_no
            cell = _plain_cell(value, seen)
            if cell is not None:
                cells.append(cell)
                return
            col_no = before
        # Anything else: openpyxl's own parse_cell on the rebuilt element.
        builder = ElementTree.TreeBuilder()
        for kind, tag, at in events:
            if kind == "s":
                builder.start(_clark(tag), {_clark(k): v for k, v in at.items()})
            elif kind == "e":
                builder.end(_clark(tag))
            else:
                builder.data(tag)
        parser.row_counter, parser.col_counter = row_no, col_no
        got = parser.parse_cell(builder.close())
        col_no = parser.col_counter
        cells.append((got["column"] - 1, got["value"], got["data_type"], got["style_id"]))

    def _plain_cell(text: str | None, seen: int) -> _SheetCell | None:
        nonlocal col_no
        kind = attrs.get("t", "n")
        style: Any = attrs.get("s", 0)
        style_id = int(style) if style else style
        ref = attrs.get("r")
        if ref:
            letters = ref.rstrip("0123456789")
            col = _COLUMNS.get(letters)
            if col is None:
                col = coordinate_to_tuple(ref)[1] - 1
                if len(_COLUMNS) < 20_000:
                    _COLUMNS[letters] = col
            col_no = col + 1
        else:
            col_no += 1
            col = col_no - 1
        if kind == "inlineStr":
            return (col, text or "", "s", style_id) if seen & 2 else (col, None, kind, style_id)
        if seen != 1 or not text:
            return (col, None, kind, style_id)
        if kind == "n":
            number = _cast_number(text)
            if style_id in dates:
                try:
                    when = from_excel(number, epoch, timedelta=style_id in durations)
                except (OverflowError, ValueError):
                    return None  # openpyxl warns and makes it #VALUE!
                return (col, when, "d", style_id)
            return (col, number, kind, style_id)
        if kind == "s":
            return (col, shared[int(text)], kind, style_id)
        if kind == "b":
            return (col, bool(int(text)), kind, style_id)
        return (col, text, "s" if kind == "str" else kind, style_id)

    def data(text: str) -> None:
        if depth:
            events.append(("d", text, None))
            if collect is not None:
                collect.append(text)

    def no_entities(*_: Any) -> None:
        raise InputError(path, _DEFUSED)

    expat = xml.parsers.expat.ParserCreate(namespace_separator="}")
    expat.buffer_text = True
    expat.StartElementHandler = start
    expat.EndElementHandler = end
    expat.CharacterDataHandler = data
    expat.EntityDeclHandler = no_entities
    while block := part.read(_SHEET_BLOCK):
        expat.Parse(block, False)
        yield from done
        done.clear()
    expat.Parse(b"", True)
    yield from done


# -- the fast path: the sheet XML read with regular expressions ---------------------------------


class _NotPlain(Exception):
    """The sheet's XML has a shape :class:`_FastSheet` leaves to the expat reader."""


_MAIN_URI = _SHEET_NS[:-1]
#: The sheet's XML declaration and its encoding, if it names one.
_XML_DECL = re.compile(r"<\?xml\s[^?]*\?>")
_DECL_ENCODING = re.compile(r"""\sencoding\s*=\s*(["'])([^"']*)\1""")
#: The root element's start tag (unprefixed) and a default-namespace declaration in it.
_ROOT_START = re.compile(
    r"""\s*<([A-Za-z_][\w.-]*)((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*>"""
)
_MAIN_DEFAULT = re.compile(r"""\sxmlns\s*=\s*(["'])""" + re.escape(_MAIN_URI) + r"\1")
_SHEET_DATA = re.compile(r"<sheetData\s*(/?)>")
_ANY_ROW = re.compile(r"<row[\s/>]")
_XMLNS = re.compile(r"\sxmlns[\s:=]")
#: A ``<row>`` start tag (attributes double-quoted, as every writer saves them); group 2 is
#: ``/`` for an empty row.
_FAST_ROW = re.compile(r'\s*<row((?:\s+[\w:.-]+="[^"]*")*)\s*(/?)>')
#: The usual ``<row>``: ``r`` first, digits (group 1), other attributes (group 2), not empty.
_USUAL_ROW = re.compile(r'\s*<row r="([0-9]+)"((?:\s+[\w:.-]+="[^"]*")*)\s*>')
_FAST_R = re.compile(r'\s+r="([^"]*)"')
_ROW_ATTR = re.compile(r'\s+([\w:.-]+)="([^"]*)"')
#: One cell of the usual shapes, attributes in the order writers save them: ``r`` (letters,
#: digits), ``s``, ``t`` (``s`` may follow ``t``), and as content nothing, ``<v>…</v>`` or
#: ``<v/>`` (after a formula ``<f>``, or not), or an inline string of one ``<t>``; the groups
#: are the letters, ``s``, ``t``, ``s``, ``<f`` when there is a formula, the ``<v>`` text and
#: the ``<t>`` text. Anything else is a lone ``<`` (last group): the row is read by expat.
_FAST_CELL = re.compile(
    r'<c(?: r="([A-Z]{1,3})[1-9][0-9]*")?(?: s="([0-9]+)")?(?: t="([a-zA-Z]+)")?'
    r'(?: s="([0-9]+)")?\s*(?:/>'
    r"|>(?:(<f)(?:\s[^<>]*)?(?:/>|>[^<]*</f>))?(?:<v>([^<]*)</v>|<v\s*/>)?</c>"
    r'|>(?:<is>(?:<t(?: xml:space="preserve")?>([^<]*)</t>|<t\s*/>)?</is>|<is\s*/>)</c>)|(<)'
)
#: Cell types (``t``) read by the expressions besides ``inlineStr`` (``""``: none given).
_FAST_TYPES = frozenset({"", "n", "s", "str", "b", "e"})
_REFERENCE = re.compile(r"&([^;&]*);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
#: Most characters of one row held while its end is looked for; a longer row (a cell of
#: megabytes) is read by expat, as every row was before.
_FAST_ROW_MAX = 4 << 20
#: Most characters before ``<sheetData>`` (column widths and views: kilobytes).
_FAST_HEAD_MAX = 16 << 20


def _reference(found: re.Match[str]) -> str:
    name = found.group(1)
    if name[:1] == "#":
        try:
            return chr(int(name[2:], 16) if name[1:2] == "x" else int(name[1:]))
        except ValueError:
            raise _NotPlain from None
    try:
        return _ENTITIES[name]
    except KeyError:
        raise _NotPlain from None


def _unescape(text: str) -> str:
    """``text`` with its character and predefined entity references replaced, as expat does."""
    return _REFERENCE.sub(_reference, text)


class _FastSheet:
    """A worksheet's rows from its XML by regular expressions: the same rows, cells and texts
    as :func:`_sheet_rows` read by expat and turned into texts by :func:`_row_texts`, at a
    third of the CPU.

    Fed the sheet part's bytes block by block, it gives the rows each block completes. Cells of
    the usual shapes (see ``_FAST_CELL``) are turned into text here as :func:`_sheet_rows` and
    :func:`_row_texts` do (same number casting, date styles, zero-padding formats, shared
    strings, the five predefined entities and character references, line ends as XML reads
    them); a row holding anything else (a formula, rich text runs, type ``d``, a date out of
    range, an unknown column...) is read by :func:`_sheet_rows` itself, wrapped in the root
    element's start tag so its namespaces are the same. A sheet the expressions cannot follow
    exactly (not UTF-8, the main namespace not the default one, a DOCTYPE, comments, CDATA or
    processing instructions, a row over ``_FAST_ROW_MAX`` characters, rows outside
    ``<sheetData>``...) raises :class:`_NotPlain` and is read by expat from its start.

    Its XML must be well formed (:meth:`_XlsxReader._verify` has parsed it with expat, which
    refuses entity declarations): what is not, fails in expat or raises :class:`_NotPlain`.
    """

    def __init__(self, parser: Any, padding: AbcMapping[int, int], path: str) -> None:
        from openpyxl.utils.datetime import from_excel
        from openpyxl.worksheet._reader import _cast_number

        self.parser, self.padding, self.path = parser, padding, path
        self._from_excel, self._cast_number = from_excel, _cast_number
        self.limit: int | None = None  # cells from this 0-based column on are not read
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._text = ""
        self._cr = False  # the last block ended in a CR (it may start a CR LF)
        self.by_expat = 0  # rows read by _sheet_rows
        #: (0-based column, its letters) of the columns a row may be read for alone
        self._only: tuple[tuple[int, str], ...] = ()
        self._beyond: re.Pattern[str] | None = None  # a cell not left of ``limit``
        self._state = 0  # 0 before <sheetData>, 1 in it, 2 after it
        self._row = 0
        self._root = ("", "")  # the root's start tag and end tag, around a row given to expat

    def feed(self, data: bytes, final: bool = False) -> list[_RawRow]:
        """The rows completed by ``data`` (all that is left when ``final``)."""
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError:
            raise _NotPlain from None
        if self._cr:
            text, self._cr = "\r" + text, False
        if "\r" in text:
            # XML reads CR LF and a lone CR as LF (a CR stays only as &#13;); a CR ending the
            # block waits for the next one.
            if text[-1] == "\r" and not final:
                text, self._cr = text[:-1], True
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        text = self._text + text
        rows: list[_RawRow] = []
        if self._state == 0:
            text = self._head(text, final)
        if self._state == 1:
            text = self._rows(text, rows, final)
        if self._state == 2:
            if _ANY_ROW.search(text):
                raise _NotPlain  # a row after </sheetData>: left to expat
            text = text[-8:]
        self._text = text
        if final and self._state != 2:
            raise _NotPlain  # no </sheetData>: expat says what is wrong
        return rows

    def _head(self, text: str, final: bool) -> str:
        """Check what comes before ``<sheetData>``; the text after it."""
        found = _SHEET_DATA.search(text)
        if found is None:
            if len(text) > _FAST_HEAD_MAX or final:
                raise _NotPlain
            return text
        head = text[: found.start()].lstrip("\ufeff")
        declared = _XML_DECL.match(head)
        if declared:
            encoding = _DECL_ENCODING.search(declared.group())
            if encoding and encoding.group(2).lower() not in ("utf-8", "utf8"):
                raise _NotPlain
            head = head[declared.end() :]
        root = _ROOT_START.match(head)
        if (
            root is None
            or "<!" in head
            or "<?" in head
            or not _MAIN_DEFAULT.search(root.group(2))
            or _XMLNS.search(head, root.end())
            or _ANY_ROW.search(head)
        ):
            raise _NotPlain
        self._root = (root.group().lstrip(), f"</{root.group(1)}>")
        self._state = 2 if found.group(1) else 1
        return text[found.end() :]

    def _rows(self, text: str, rows: list[_RawRow], final: bool) -> str:
        """Read the complete rows of ``text`` into ``rows``; the text left."""
        cut = text.rfind("</row>")
        if cut >= 0:
            if "<!" in text or "<?" in text:
                raise _NotPlain
            usual, cells, alone = _USUAL_ROW.match, self._cells, self._only and self._alone
            for part in text[:cut].split("</row>"):
                if len(part) > _FAST_ROW_MAX:
                    raise _NotPlain
                start = usual(part)
                if start is None or "xmlns" in start.group(2):
                    self._row_part(part, rows, closed=True)
                    continue
                number = int(start.group(1))
                values = (alone and alone(part, start.end())) or cells(part, start.end())
                if values is None:
                    self._row_part(part, rows, closed=True)
                    continue
                rows.append((number, values, ()))
                self._row = number
            text = text[cut + 6 :]
        end = text.find("</sheetData>")
        if end >= 0:
            if "<!" in text[:end] or "<?" in text[:end]:
                raise _NotPlain
            self._row_part(text[:end], rows, closed=False)
            self._state = 2
            return text[end + 12 :]
        if len(text) > _FAST_ROW_MAX:
            raise _NotPlain
        return text

    def _row_part(self, part: str, rows: list[_RawRow], *, closed: bool) -> None:
        """One row ending in ``</row>`` (``closed``), after the empty ``<row/>``s before it;
        or only empty rows (``closed`` false: the text before ``</sheetData>``)."""
        pos = 0
        while True:
            start = _FAST_ROW.match(part, pos)
            if start is None:
                if closed or part[pos:].strip():
                    raise _NotPlain
                return
            number = self._row_number(start.group(1))
            if start.group(2):  # <row .../>
                rows.append((number, [], ()))
                self._row = number
                pos = start.end()
                if closed or part[pos:].strip():
                    continue
                return
            if not closed:
                raise _NotPlain
            values = self._cells(part, start.end())
            if values is None:  # not cells of the usual shapes: expat reads the row
                rows.append(self._by_expat(part[start.start() :].lstrip() + "</row>"))
                self.by_expat += 1
            else:
                rows.append((number, values, ()))
            self._row = rows[-1][0]
            return

    def _row_number(self, attrs: str) -> int:
        """The row's number as :func:`_sheet_rows` reads it (``r``, else one more)."""
        if not attrs:
            return self._row + 1
        if "xmlns" in attrs:
            raise _NotPlain  # the row may be in another namespace: expat decides
        found = _FAST_R.match(attrs)
        if found is None:
            r = dict(_ROW_ATTR.findall(attrs)).get("r")
            if r is None:
                return self._row + 1
        else:
            r = found.group(1)
        if not r.isdigit():
            if "&" in r or not r.isprintable():
                raise _NotPlain  # a reference, or white space XML turns into spaces
            return _row_number(r)
        return int(r)

    def read_only(self, columns: Iterable[int]) -> None:
        """Read only these 0-based columns of a row (the others ``""``) whenever that gives
        their texts as reading the row whole does and the row is not blank: every cell has a
        reference, none is right of ``limit`` (which must be set), no formula, one of them
        holds more than white space. For the structure pass's watchers."""
        from openpyxl.utils.cell import get_column_letter

        if self.limit is None or self.limit > 702:  # up to ZZ: one expression of the letters
            return
        self._only = tuple((c, get_column_letter(c + 1)) for c in sorted(set(columns)))
        letters = "|".join(get_column_letter(c + 1) for c in range(self.limit))
        self._beyond = re.compile(f'<c r="(?!(?:{letters})[0-9])')

    def _alone(self, part: str, pos: int) -> list[str] | None:
        """The row's texts in the columns of :meth:`read_only` (the others ``""``), or
        ``None`` when only reading it whole can say them or whether it is blank."""
        assert self._beyond is not None
        if (
            "<f" in part
            or self._beyond.search(part, pos)
            or part.count("<c", pos) != part.count('<c r="', pos)
        ):
            return None
        values = [""] * (self._only[-1][0] + 1)
        blank = True
        for col, letters in self._only:
            key = '<c r="' + letters
            at = part.rfind(key, pos)  # the last one wins, as in the row read whole
            while at >= 0 and part[at + len(key)] not in "0123456789":
                at = part.rfind(key, pos, at)
            if at < 0:
                continue  # no such cell
            cell = _FAST_CELL.match(part, at)
            got = None if cell is None else self._cells(part, at, cell.end())
            if got is None or len(got) != col + 1:
                return None
            values[col] = got[col]
            blank = blank and not got[col].strip()
        return None if blank else values

    def _cells(self, part: str, pos: int, end: int | None = None) -> list[str] | None:  # noqa: C901 — one loop a cell, its branches inline (the loop runs a million times for 100,000 rows)
        """The texts of the row's cells from ``part[pos:end]``, as :func:`_row_texts` makes
        them; ``None`` when a cell is of another shape or needs openpyxl's own reading."""
        parser, padding, columns = self.parser, self.padding, _COLUMNS
        from_excel, cast_number = self._from_excel, self._cast_number
        limit = 1 << 30 if self.limit is None else self.limit
        values: list[str] = []
        column = n = 0
        found = _FAST_CELL.findall(part, pos, len(part) if end is None else end)
        for letters, s1, kind, s2, formula, v, inline, other in found:
            if other or (formula and not v):
                return None  # another shape, or a formula without a saved value
            if letters:
                col = columns.get(letters)
                if col is None:
                    return None  # expat's reading computes it (and remembers it)
            else:
                col = column
            column = col + 1
            if col >= limit:
                break
            if kind == "inlineStr":
                text = _unescape(inline) if "&" in inline else inline
            elif kind not in _FAST_TYPES:
                return None
            elif not v:
                text = ""
            else:
                if "&" in v:
                    v = _unescape(v)
                if kind == "s":
                    text = _cell_text(parser.shared_strings[int(v)])
                elif kind == "n" or not kind:
                    style = int(s1 or s2 or 0)
                    number = cast_number(v)
                    if style in parser.date_formats:
                        try:
                            when = from_excel(
                                number, parser.epoch, timedelta=style in parser.timedelta_formats
                            )
                        except (OverflowError, ValueError):
                            return None  # openpyxl warns and makes it #VALUE!
                        text = _cell_text(when)
                    else:
                        text = _cell_text(number)
                        width = padding.get(style)
                        if width:
                            text = _zero_pad(number, text, width)
                elif kind == "b":
                    text = "TRUE" if int(v) else "FALSE"
                else:  # str, e
                    text = v
            if col == n:
                values.append(text)
                n += 1
            elif col > n:
                values.extend([""] * (col - n))
                values.append(text)
                n = col + 1
            else:
                values[col] = text
        return values

    def _by_expat(self, row: str) -> _RawRow:
        """One row read by :func:`_sheet_rows` (inside the root's start tag)."""
        fragment = (self._root[0] + row + self._root[1]).encode()
        found = list(_sheet_rows(io.BytesIO(fragment), self.parser, self.path, self._row))
        if len(found) != 1:
            raise _NotPlain
        number, cells = found[0]
        values, no_cache = _row_texts(cells, self.limit, self.padding)
        return number, values, no_cache


def _row_number(text: str) -> int:
    """A ``<row r>`` as openpyxl's ``parse_row`` reads it (``"7"``, or ``"7.0"``)."""
    try:
        return int(text)
    except ValueError:
        number = float(text)
        if number.is_integer():
            return int(number)
        raise ValueError(f"{text} is not a valid row number") from None


def _clark(name: str) -> str:
    """An expat ``namespace}local`` name as ElementTree writes it (``{namespace}local``)."""
    return "{" + name if "}" in name else name


_UNSIZED = threading.Lock()


def _open_workbook(fh: IO[bytes]) -> Any:
    """openpyxl's read-only workbook of cached values, opened without sizing its sheets.

    openpyxl sizes every sheet as the workbook opens (``ReadOnlyWorksheet._get_size``): a sheet
    whose XML has no ``<dimension>`` element (openpyxl's own write-only files and many exports)
    is parsed to its end for that, every sheet of the book, before a row is read. The rows are
    read without a size (:func:`_sheet_rows`), so that step is skipped while the book opens.
    """
    from openpyxl import load_workbook
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    with _UNSIZED:
        sizing = ReadOnlyWorksheet._get_size
        ReadOnlyWorksheet._get_size = lambda self: None
        try:
            return load_workbook(fh, read_only=True, data_only=True, keep_links=False)
        finally:
            ReadOnlyWorksheet._get_size = sizing


def _zero_pad_widths(book: Any) -> dict[int, int]:
    """Style id → digits, for the cell styles whose number format only pads with zeros
    (``00000``: Excel's "Zip Code", account numbers); a person sees ``02134`` for 2134."""
    from openpyxl.styles.numbers import BUILTIN_FORMATS, BUILTIN_FORMATS_MAX_SIZE

    widths: dict[int, int] = {}
    custom = list(getattr(book, "_number_formats", []))
    for style_id, style in enumerate(getattr(book, "_cell_styles", [])):
        fmt_id = style.numFmtId
        if fmt_id < BUILTIN_FORMATS_MAX_SIZE:
            fmt = BUILTIN_FORMATS.get(fmt_id, "General")
        elif 0 <= fmt_id - BUILTIN_FORMATS_MAX_SIZE < len(custom):
            fmt = custom[fmt_id - BUILTIN_FORMATS_MAX_SIZE]
        else:
            continue
        if len(fmt) > 1 and set(fmt) == {"0"}:
            widths[style_id] = len(fmt)
    return widths


def _zero_pad(value: Any, text: str, width: int) -> str:
    """``text`` of a whole, non-negative number left-padded with zeros to ``width`` digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return text
    if not text.isdigit():
        return text
    return text.zfill(width)


def _check_zip(path: Path) -> None:
    """Refuse what is no sane .xlsx before openpyxl opens it."""
    if not zipfile.is_zipfile(path):
        raise InputError(
            str(path),
            "not a valid Excel .xlsx/.xlsm workbook (not a complete zip archive: "
            "the file is truncated, damaged, or another kind of file)",
        )
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(str(path), f"damaged Excel workbook ({exc})") from exc
    names = {m.filename for m in members}
    if "[Content_Types].xml" not in names:
        raise InputError(str(path), "a zip archive but not an Excel workbook")
    total = sum(m.file_size for m in members)
    if total > _ZIP_MAX_TOTAL:
        raise InputError(
            str(path),
            f"looks like a zip bomb: it would unpack to {total:,} bytes; refusing to open it",
        )
    for m in members:
        if m.file_size > _ZIP_RATIO_MIN_SIZE and m.file_size > _ZIP_MAX_RATIO * max(
            m.compress_size, 1
        ):
            raise InputError(
                str(path),
                f"looks like a zip bomb: {m.filename} unpacks {m.compress_size:,} bytes to "
                f"{m.file_size:,}; refusing to open it",
            )


# -- XLS --------------------------------------------------------------------------------------


class _XlsReader(SourceReader):
    """Reads legacy .xls (BIFF) workbooks with xlrd; the sheet is held in memory (max 65,536
    rows)."""

    def __init__(self, path: Path, options: ReadOptions) -> None:
        super().__init__(path, options)
        import xlrd

        self._log = io.StringIO()
        with self._guard():
            try:
                self._book: Any = xlrd.open_workbook(
                    file_contents=path.read_bytes(), on_demand=True, logfile=self._log
                )
            except xlrd.XLRDError as exc:
                if "encrypt" in str(exc).lower():
                    raise InputError(str(path), _ENCRYPTED) from exc
                raise
        try:
            names = self._book.sheet_names()
            # xlrd reads each sheet's visibility from the workbook's BOUNDSHEET records
            # (0 visible, 1 hidden, 2 very hidden) and keeps it in this list, by sheet index.
            seen = list(getattr(self._book, "_sheet_visibility", []))
            hidden = {n for n, v in zip(names, seen, strict=False) if v}
            self.sheet = _pick_sheet(path, names, options.sheet, hidden)
            with self._guard():
                self._sh = self._book.sheet_by_name(self.sheet)
            self._setup()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._book is not None:
            self._book.release_resources()
            self._book = None
        said = self._log.getvalue().strip()
        if said:
            logger.debug("%s: xlrd: %s", self.path, said)

    def _raw_rows(self) -> Generator[_RawRow, None, None]:
        import xlrd

        if self._book is None:
            raise ValueError("the reader is closed")
        sh, datemode = self._sh, self._book.datemode
        limit = self._width if self.headers else sh.ncols
        for r in range(sh.nrows):
            values = []
            for cell in sh.row_slice(r, 0, min(limit, sh.row_len(r))):
                values.append(_xls_cell_text(cell, datemode, xlrd))
            yield r + 1, values, ()


def _xls_cell_text(cell: Any, datemode: int, xlrd: Any) -> str:
    ctype, value = cell.ctype, cell.value
    if ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
        return ""
    if ctype == xlrd.XL_CELL_TEXT:
        return str(value)
    if ctype == xlrd.XL_CELL_BOOLEAN:
        return "TRUE" if value else "FALSE"
    if ctype == xlrd.XL_CELL_ERROR:
        return str(xlrd.error_text_from_code.get(value, f"#ERR{value}"))
    if ctype == xlrd.XL_CELL_DATE:
        try:
            when = xlrd.xldate.xldate_as_datetime(value, datemode)
        except (xlrd.xldate.XLDateError, ValueError, OverflowError):
            return _cell_text(value)
        if 0 <= value < 1:
            return _cell_text(when.time())
        return _cell_text(when)
    return _cell_text(value)


# -- shared helpers ---------------------------------------------------------------------------

_ENCRYPTED = (
    "the workbook is password-protected (encrypted); open it in Excel, remove the password "
    "(File > Info > Protect Workbook) and save it again, or export it as CSV"
)


def _cell_text(value: Any) -> str:
    """The text a person sees for a cell value, without float damage.

    ``None`` → ``""``; ``bool`` → ``TRUE``/``FALSE``; an integral float → its integer digits
    (``4155550221``, not ``4155550221.0``); another float → the shortest text that reads back
    as the same float (``45292.75``); ``datetime`` → ISO 8601 (``2024-03-10T14:30:00``, or just
    the date when the time is midnight); ``date`` → ``YYYY-MM-DD``; ``time`` → ``HH:MM:SS``;
    ``timedelta`` → ``H:MM:SS`` (hours may exceed 24).
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    if isinstance(value, dt.timedelta):
        seconds = round(value.total_seconds())
        sign = "-" if seconds < 0 else ""
        hours, rest = divmod(abs(seconds), 3600)
        return f"{sign}{hours}:{rest // 60:02d}:{rest % 60:02d}"
    return str(value)


def _describe_failure(exc: BaseException) -> str:
    """A message for a library exception, naming its root cause."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    try:
        from defusedxml import DefusedXmlException
    except ImportError:  # pragma: no cover - defusedxml is a dependency
        DefusedXmlException = ()
    if any(isinstance(e, DefusedXmlException) for e in chain):
        return _DEFUSED
    root = chain[-1]
    first_line = str(root).strip().splitlines()[0] if str(root).strip() else ""
    return f"cannot read the file ({type(root).__name__}: {first_line})"


def _is_blank(cells: Sequence[str]) -> bool:
    """No cell holds anything but white space (joined first: one C call, not one per cell)."""
    return not "".join(cells).strip()


def _clean_header(value: str) -> str:
    return _HEADER_JUNK.sub("", value)


def _column_label(index: int) -> str:
    """``2`` → ``"C"``: the spreadsheet letter of a 0-based column."""
    n, label = index + 1, ""
    while n:
        n, rem = divmod(n - 1, 26)
        label = chr(65 + rem) + label
    return label


def _header_index(rows: list[list[str]]) -> int:
    """Index of the header among the first non-blank rows.

    The header is the first row with at least two non-empty cells and at least as many as the
    (lower) median of it and the rows below it; title rows above a header have fewer. With no
    such row (a one-column file) it is the first row.
    """
    widths = [sum(1 for c in cells if c.strip()) for cells in rows]
    for i, width in enumerate(widths):
        rest = sorted(widths[i:])
        if width >= 2 and width >= rest[(len(rest) - 1) // 2]:
            return i
    return 0


def _pick_sheet(
    path: Path, names: list[str], wanted: str | int | None, hidden: Collection[str] = ()
) -> str:
    """The sheet to read: ``wanted`` (a name, matched ignoring case and spaces around it, or a
    0-based index, hidden sheets included), else the first sheet a person sees in Excel (a
    hidden or very hidden lookup sheet before it is skipped)."""
    if not names:
        raise InputError(str(path), "the workbook has no worksheets")
    listing = ", ".join(repr(n) for n in names)
    if wanted is None:
        visible = [n for n in names if n not in hidden]
        if visible and visible[0] != names[0]:
            logger.info(
                "%s: reading sheet %r, the first visible one (hidden before it: %s)",
                path,
                visible[0],
                ", ".join(repr(n) for n in names[: names.index(visible[0])]),
            )
        return visible[0] if visible else names[0]
    if isinstance(wanted, int) and not isinstance(wanted, bool):
        if 0 <= wanted < len(names):
            return names[wanted]
        raise InputError(
            str(path),
            f"read.sheet {wanted} is out of range: the workbook has {len(names)} sheet(s) "
            f"({listing}); the index is 0-based",
        )
    if wanted in names:
        return wanted
    folded = [n for n in names if n.strip().casefold() == str(wanted).strip().casefold()]
    if len(folded) == 1:
        return folded[0]
    raise InputError(str(path), f"no sheet named {wanted!r}; the workbook has: {listing}")


def _sniff(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(8)


def _looks_encrypted(path: Path) -> bool:
    """Whether an OLE2 file holds an encrypted OOXML package (a password-protected .xlsx)."""
    needle = "EncryptedPackage".encode("utf-16-le")
    with open(path, "rb") as fh:
        tail = b""
        while block := fh.read(1 << 20):
            if needle in tail + block:
                return True
            tail = block[-len(needle) :]
    return False


def _check_path(path: Path) -> None:
    if not path.exists():
        raise InputMissingError(str(path), "no such file")
    if path.is_dir():
        raise InputError(str(path), "is a folder, not a file")
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(
            str(path),
            f"unsupported file type {path.suffix or '(none)'!r}; use one of " + ", ".join(SUFFIXES),
        )
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InputError(str(path), f"cannot open the file: {exc.strerror or exc}") from exc


def _excel_kind(path: Path) -> str:
    """``"xlsx"`` or ``"xls"`` from the file's first bytes (not its name)."""
    head = _sniff(path)
    if not head:
        raise InputError(str(path), "the file is empty")
    if head.startswith(_ZIP_MAGICS):
        return "xlsx"
    if head.startswith(_OLE2_MAGIC):
        if _looks_encrypted(path):
            raise InputError(str(path), _ENCRYPTED)
        return "xls"
    if path.suffix.lower() != ".xls":
        raise InputError(
            str(path),
            "not a valid Excel .xlsx/.xlsm workbook (not a zip archive: the file is truncated, "
            "damaged, or another kind of file)",
        )
    if head.lstrip().startswith(b"<"):
        raise InputError(
            str(path),
            "this .xls is really an HTML or XML file; open it in Excel and save it as .xlsx, "
            "or export it as CSV",
        )
    raise InputError(str(path), "not an Excel workbook (unknown file format)")


#: What :func:`sniff_kind` can tell from a file's first bytes, in words for messages.
_KIND_WORDS = {
    "text": "a text (CSV) file",
    "xlsx": "an Excel .xlsx workbook",
    "xls": "an old-style Excel .xls workbook",
    "html": "a web page (HTML)",
    "xml-spreadsheet": "an Excel 2003 XML spreadsheet",
    "pdf": "a PDF document",
}
_SNIFF_BYTES = 64 * 1024


def sniff_kind(path: str | os.PathLike[str]) -> str:
    """What a file is, from its first 64 KB rather than its name.

    Returns:
        ``"xlsx"`` (a zip archive: .xlsx/.xlsm), ``"xls"`` (an OLE2 compound file),
        ``"pdf"``, ``"html"`` (a web page, e.g. the HTML table many web applications export
        as ".xls"), ``"xml-spreadsheet"`` (Excel 2003 XML), ``"text"`` (anything else that
        reads as text: CSV), ``"empty"`` or ``"binary"`` (none of these).

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if not head:
        return "empty"
    if head.startswith(_ZIP_MAGICS):
        return "xlsx"
    if head.startswith(_OLE2_MAGIC):
        return "xls"
    if head.startswith(b"%PDF-"):
        return "pdf"
    text = _as_text(head)
    if text is None:
        return "binary"
    start = text.lstrip("\ufeff \t\r\n").lower()
    if start.startswith("<"):
        if "urn:schemas-microsoft-com:office:spreadsheet" in start[:4096]:
            return "xml-spreadsheet"
        if start.startswith(("<!doctype html", "<html")) or re.search(
            r"<(table|html|body|meta)\b", start[:4096]
        ):
            return "html"
    return "text"


def _as_text(head: bytes) -> str | None:
    """``head`` decoded when it looks like text (a BOM's encoding, UTF-8, or an 8-bit code page
    with hardly any control character but tab and line ends), else ``None``."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return head.decode(codec, errors="ignore")
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if len(head) == _SNIFF_BYTES and exc.start >= len(head) - 3:  # cut mid-character
            text = head[: exc.start].decode("utf-8")
        else:
            text = head.decode("cp1252", errors="replace")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\r\n\f")
    return text if controls <= len(text) // 100 else None


def _reader_for(source: Path, warn: bool = True) -> str:
    """Which reader opens ``source``: ``"csv"``, ``"xlsx"`` or ``"xls"``, by its bytes.

    A workbook under another name (``.csv``, or an old-style ``.xls`` saved as ``.xlsx``) is
    read as what it is, with a warning naming both. A text file under a workbook name (a CSV
    saved as ``.xls``, a common "Excel export" of web applications), a web page, an XML
    spreadsheet or a PDF is refused naming what it is and what to do. A file the bytes do not
    settle goes to the reader its name says, which explains what is wrong.

    Raises:
        InputError: the file is empty, or of a kind no reader takes.
    """
    kind = sniff_kind(source)
    suffix = source.suffix.lower()
    named = "csv" if suffix in CSV_SUFFIXES else "xls" if suffix == ".xls" else "xlsx"
    if kind == "empty":
        raise InputError(str(source), "the file is empty")
    if kind in ("html", "xml-spreadsheet", "pdf"):
        what = _KIND_WORDS[kind]
        if kind == "pdf":
            todo = "export the list from where it came as CSV or .xlsx and import that"
        else:
            todo = (
                "web applications often export such a file with an .xls name; open it in "
                "Excel or LibreOffice, save it as .xlsx (or CSV) and import that"
            )
        raise InputError(str(source), f"this is {what}, not a spreadsheet file; {todo}")
    found = {"text": "csv", "xlsx": "xlsx", "xls": "xls"}.get(kind)
    if found is None:  # unknown bytes: the reader of its name says what is wrong
        return named
    if found == "xls" and named == "xlsx" and _looks_encrypted(source):
        return named  # a password-protected .xlsx is an OLE2 file: its reader says so
    if found == "csv" and named != "csv":
        # Not read: any stray text file would be taken for a list, and its "columns" would
        # stop the whole run as a mapping error; this way only this file is refused.
        raise InputError(
            str(source),
            f"this is a text (CSV) file although its name ends {suffix}; rename it to end "
            ".csv and import it again (or open it in Excel and save it as .xlsx)",
        )
    if warn and found != named and not (found == "xlsx" and suffix == ".xlsm"):
        logger.warning(
            "%s: the file is %s although its name ends %s; reading it as what it is "
            "(rename it to end %s to silence this)",
            source,
            _KIND_WORDS[kind],
            suffix,
            ".csv" if found == "csv" else f".{found}",
        )
    return found


def open_source(
    path: str | os.PathLike[str], options: ReadOptions | None = None, watch: Watch | None = None
) -> SourceReader:
    """Open a CSV or Excel file for reading in chunks.

    CSV (``.csv``, ``.txt``, ``.tsv``): the encoding is taken from a BOM (UTF-8, UTF-16,
    UTF-32), else UTF-8 when the whole file decodes as UTF-8, else chosen by
    :func:`decide_encoding` (on the whole file up to 8 MB, else on the first MB plus the region
    of the first non-UTF-8 byte), which refuses the file when the choice is uncertain; the whole
    file is then decoded strictly, so a wrong guess falls back to cp1252 or fails here, never
    part-way. The whole file is parsed once and checked by :func:`check_csv_structure` (a quote
    never closed refuses it); for a file in UTF-8, its BOM's codec or ``read.encoding``, that
    same pass is the strict decoding (one decode before the chunks, not two). The delimiter is
    the one of ``,`` ``;`` TAB ``|`` that splits the first 50 records most consistently into two
    or more fields (a one-column file gets ``,``, or TAB for ``.tsv``). Quotes follow RFC 4180
    (doubled quotes, line breaks inside quotes); line ends may be CRLF, LF or CR.

    Excel: ``.xlsx``/``.xlsm`` with openpyxl (read-only, cached formula values), ``.xls`` with
    xlrd. Which reader is decided by the file's first bytes, not its name (:func:`sniff_kind`):
    a workbook saved as ``.csv`` is read as a workbook, with a warning; a CSV saved as ``.xlsx``
    or ``.xls``, a web page (HTML), an Excel 2003 XML file or a PDF under a workbook's name is
    refused naming what it is and what to do. Numbers, dates and
    booleans become the text a person sees (see ``_cell_text``); an .xlsx number in a
    zero-padding format such as ``00000`` keeps its leading zeros (``02134``).

    The header is ``options.header_row`` or detected among the first 20 non-blank rows (title
    rows above it are skipped).

    Args:
        path: the file.
        options: the mapping's ``read:`` block; ``None`` detects everything.
        watch: CSV and .xlsx/.xlsm: called once the header is read, it names columns (by
            header) whose distinct texts its watchers are told during the structure pass, so
            what a run needs of the whole file up front (the date orders) costs no pass of its
            own; the reader's ``watched`` says which were (see :class:`SourceReader`). The .xls
            reader ignores it.

    Returns:
        An open reader; close it (or use it as a context manager).

    Raises:
        InputMissingError: the file does not exist.
        InputError: the file cannot be read: unsupported suffix, empty, undecodable (the message
            names the byte offset and suggests ``read.encoding``), an uncertain encoding (the
            message names the candidates), a CSV structure error (a quote never closed), no
            header, duplicate header names, unknown sheet (the message lists the sheets), a
            damaged, encrypted or hostile workbook (zip bomb).
    """
    options = options or ReadOptions()
    source = Path(path)
    _check_path(source)
    kind = _reader_for(source)
    if kind == "csv":
        return _CsvReader(source, options, watch)
    if _excel_kind(source) == "xlsx":
        return _XlsxReader(source, options, watch)
    return _XlsReader(source, options)


def list_sheets(path: str | os.PathLike[str]) -> list[str]:
    """Names of the worksheets of an Excel file, in workbook order.

    Args:
        path: an ``.xlsx``, ``.xlsm`` or ``.xls`` file (a CSV file gives ``[]``).

    Raises:
        InputMissingError: the file does not exist.
        InputError: the file is not a readable workbook.
    """
    source = Path(path)
    _check_path(source)
    if _reader_for(source, warn=False) == "csv":  # open_source warns of a misnamed file
        return []
    reader: SourceReader
    if _excel_kind(source) == "xlsx":
        _check_zip(source)
        reader = SourceReader(source, ReadOptions())
        with reader._guard(), open(source, "rb") as fh:
            book = _open_workbook(fh)
            try:
                return [ws.title for ws in book.worksheets]
            finally:
                book.close()
    import xlrd

    reader = SourceReader(source, ReadOptions())
    with reader._guard():
        try:
            xbook = xlrd.open_workbook(
                file_contents=source.read_bytes(), on_demand=True, logfile=io.StringIO()
            )
        except xlrd.XLRDError as exc:
            if "encrypt" in str(exc).lower():
                raise InputError(str(source), _ENCRYPTED) from exc
            raise
        try:
            return list(xbook.sheet_names())
        finally:
            xbook.release_resources()


# -- reading our own rejects files back -------------------------------------------------------
# A rejects file (docs/reports.md) is read back like any source so its rows can be fixed and run
# again: always with the header on row 1 and our own encoding and delimiter, the formula guard
# removed, and each row's first ``(file, row)`` kept. Moved here from etl/pipeline.py (issue 11).


def rejects_read_options(path: Path) -> ReadOptions | None:
    """How to read one of our own rejects files, whatever the mapping's ``read:`` says.

    We write them with the header on row 1: ``rejects.csv`` as UTF-8 with commas,
    ``rejects.xlsx`` with one sheet ``Rejects``. Returns ``None`` for any other file (and for
    one that cannot be read: opening it reports why).
    """
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            if list_sheets(path) == [REJECTS_SHEET]:
                return ReadOptions(sheet=0, header_row=1)
            return None
        if suffix not in (".csv", ".txt"):
            return None
        with open(path, "rb") as fh:
            head = fh.read(65536).decode("utf-8-sig", errors="strict").splitlines()[:1]
    except (OSError, UnicodeDecodeError, EtlError):
        return None
    header = next(csv.reader(head), [])
    if is_rejects_file([h.strip() for h in header]):
        return ReadOptions(header_row=1, encoding="utf-8", delimiter=",")
    return None


def original_headers(reader: SourceReader) -> list[str]:
    """A source's headers; for one of our rejects files, the original columns, unescaped."""
    if not is_rejects_file(reader.headers):
        return list(reader.headers)
    return [unescape_cell(h) for h in reader.headers if h not in REJECT_COLUMNS]


def rejects_origins(chunk: Chunk) -> dict[int, tuple[str, int]]:
    """For a chunk of a rejects file: the ``(file, row)`` each row was first read from, by its
    ``_source_file`` and ``_source_row`` (rows where they are not a name and a number are left
    out: they count as rows of the rejects file itself)."""
    frame = chunk.frame
    if "_source_file" not in frame.columns or "_source_row" not in frame.columns:
        return {}
    out: dict[int, tuple[str, int]] = {}
    for row, file, line in zip(
        frame.index, frame["_source_file"], frame["_source_row"], strict=True
    ):
        file = unescape_cell(str(file or "")).strip()
        line = str(line or "").strip()
        if file and line.isdigit():
            out[int(row)] = (file, int(line))
    return out


def unescape_rejects(chunk: Chunk) -> Chunk:
    """A chunk of a rejects file with our formula guard (a leading ``'``) removed."""
    frame = chunk.frame.drop(columns=[c for c in REJECT_COLUMNS if c in chunk.frame.columns])
    frame = frame.map(unescape_cell)
    frame.columns = [unescape_cell(c) for c in frame.columns]
    return Chunk(frame=frame, problems=chunk.problems)
