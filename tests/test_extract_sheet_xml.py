"""etl.extract's own streaming read of a worksheet's XML gives exactly what openpyxl's parser
gives, cell for cell, on every shape of cell (and hands the odd ones to openpyxl itself); its
fast reader (regular expressions) gives exactly what that expat reading gives, keeping every
guarantee of a workbook's cells, rows and hostile-file defences."""

from __future__ import annotations

import datetime as dt
import random
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest

from etl.errors import InputError
from etl.extract import (
    ReadOptions,
    _cell_parser,
    _FastSheet,
    _open_workbook,
    _sheet_rows,
    _zero_pad_widths,
    open_source,
)

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def _styled_book(path: Path) -> dict[str, int]:
    """A workbook whose styles hold a date, a time, a duration, a zip-code and a plain format,
    and whose shared strings are ``alpha`` and ``beta & co``; returns each format's style id."""
    book = openpyxl.Workbook()
    ws = book.active
    formats = {"date": "yyyy-mm-dd", "time": "hh:mm", "dur": "[h]:mm:ss", "zip": "00000"}
    for col, fmt in enumerate(formats.values(), start=1):
        ws.cell(1, col, 1).number_format = fmt
    ws.cell(1, 6, "alpha")
    ws.cell(1, 7, "beta & co")
    book.save(path)
    with zipfile.ZipFile(path) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    ids = {}
    for col, name in zip("ABCD", formats, strict=True):
        found = re.search(rf'<c r="{col}1" s="(\d+)"', sheet)
        assert found, sheet
        ids[name] = int(found.group(1))
    return ids


_SST = (
    f'<sst xmlns="{MAIN}" count="2" uniqueCount="2"><si><t>alpha</t></si>'
    "<si><t>beta &amp; co</t></si></sst>"
)
_SST_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


def _with_sheet(source: Path, target: Path, sheet_xml: str | bytes) -> Path:
    """``source`` with ``sheet_xml`` as its first sheet and shared strings alpha, beta & co."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            data = old.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = sheet_xml if isinstance(sheet_xml, bytes) else sheet_xml.encode()
            elif item.filename == "[Content_Types].xml":
                override = f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_SST_TYPE}"/>'
                data = data.replace(b"</Types>", override.encode() + b"</Types>")
            new.writestr(item, data)
        new.writestr("xl/sharedStrings.xml", _SST)
    return target


def _cells(s: dict[str, int], p: str = "") -> str:
    rows = [
        f'<{p}row r="1">'
        + "".join(
            f'<{p}c r="{c}1" t="inlineStr"><{p}is><{p}t>h{c}</{p}t></{p}is></{p}c>'
            for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        )
        + f"</{p}row>",
        f'<{p}row r="2" spans="1:30">'
        f'<{p}c r="A2" t="s"><{p}v>1</{p}v></{p}c>'
        f'<{p}c r="B2"><{p}v>42</{p}v></{p}c>'
        f'<{p}c r="C2"><{p}v>4.5E3</{p}v></{p}c>'
        f'<{p}c r="D2" s="{s["date"]}"><{p}v>45292.75</{p}v></{p}c>'
        f'<{p}c r="E2" s="{s["time"]}"><{p}v>0.5</{p}v></{p}c>'
        f'<{p}c r="F2" s="{s["dur"]}"><{p}v>1.25</{p}v></{p}c>'
        f'<{p}c r="G2" s="{s["zip"]}"><{p}v>2134</{p}v></{p}c>'
        f'<{p}c r="H2" t="b"><{p}v>1</{p}v></{p}c>'
        f'<{p}c r="I2" t="e"><{p}v>#N/A</{p}v></{p}c>'
        f'<{p}c r="J2" t="str"><{p}v>text &amp; more &#x263A; &lt;x&gt;</{p}v></{p}c>'
        f'<{p}c r="K2" t="inlineStr"><{p}is><{p}t xml:space="preserve">  padded\r\nline&#13;'
        f"</{p}t></{p}is></{p}c>"
        f'<{p}c r="L2" t="inlineStr"><{p}is><{p}r><{p}t>rich</{p}t></{p}r><{p}r><{p}rPr><{p}b/>'
        f"</{p}rPr><{p}t> runs</{p}t></{p}r></{p}is></{p}c>"
        f'<{p}c r="M2"><{p}f>1+1</{p}f></{p}c>'
        f'<{p}c r="N2"><{p}f>A1</{p}f><{p}v>7</{p}v></{p}c>'
        f'<{p}c r="O2" t="str"><{p}f>"x"</{p}f><{p}v></{p}v></{p}c>'
        f'<{p}c r="P2" t="d"><{p}v>2024-03-10T14:30:00</{p}v></{p}c>'
        f'<{p}c r="Q2"><{p}v></{p}v></{p}c>'
        f'<{p}c r="R2" t="inlineStr"/>'
        f'<{p}c r="S2" s="{s["date"]}"><{p}v>99999999</{p}v></{p}c>'
        f'<{p}c t="s"><{p}v>0</{p}v></{p}c>'
        f"<{p}c><{p}v>-0.0</{p}v></{p}c>"
        f'<{p}c r="X2" s="0" t="inlineStr"><{p}is><{p}t/></{p}is></{p}c>'
        f'<{p}c r="Y2" t="inlineStr"><{p}is><{p}t>a</{p}t><{p}t>b</{p}t></{p}is></{p}c>'
        f'<{p}c r="Z2" t="n"><{p}v>7</{p}v><{p}v>8</{p}v></{p}c>'
        f"</{p}row>",
        f'<{p}row r="4.0"><{p}c><{p}v>1</{p}v></{p}c><{p}c t="b"><{p}v>0</{p}v></{p}c></{p}row>',
        f'<{p}row><{p}c r="C5" t="inlineStr"><{p}is><{p}t>no r on the row</{p}t></{p}is></{p}c>'
        f"</{p}row>",
        f'<{p}row r="7"/>',
        f'<{p}row r="9">\n  <{p}c r="A9" t="s">\n    <{p}v>1</{p}v>\n  </{p}c>\n'
        f'  <{p}c r="AB9"><{p}v>1e-7</{p}v></{p}c>\n</{p}row>',
    ]
    ns = f'xmlns:{p[:-1]}="{MAIN}"' if p else f'xmlns="{MAIN}"'
    root = f"{p}worksheet"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} {ns}><{p}dimension ref="A1:AB9"/>'
        f"<{p}sheetData>{''.join(rows)}</{p}sheetData></{root}>"
    )


def _both(path: Path) -> tuple[list[Any], list[Any], list[str], list[str]]:
    with open(path, "rb") as fh:
        book = _open_workbook(fh)
        ws = book.worksheets[0]
        with warnings.catch_warnings(record=True) as theirs_said:
            warnings.simplefilter("always")
            with ws._get_source() as src:
                parser = _cell_parser(book, ws._shared_strings, src)
                theirs = [
                    (
                        row,
                        [
                            (c["column"] - 1, c["value"], c["data_type"], c["style_id"])
                            for c in cells
                        ],
                    )
                    for row, cells in parser.parse()
                ]
        with warnings.catch_warnings(record=True) as ours_said:
            warnings.simplefilter("always")
            with ws._get_source() as src:
                ours = list(_sheet_rows(src, _cell_parser(book, ws._shared_strings), str(path)))
        book.close()
    return ours, theirs, [str(w.message) for w in ours_said], [str(w.message) for w in theirs_said]


@pytest.mark.parametrize("prefix", ["", "x:"])
def test_every_cell_shape_reads_as_openpyxl_reads_it(tmp_path: Path, prefix: str) -> None:
    styles = _styled_book(tmp_path / "styled.xlsx")
    path = _with_sheet(tmp_path / "styled.xlsx", tmp_path / "shapes.xlsx", _cells(styles, prefix))
    ours, theirs, ours_said, theirs_said = _both(path)
    assert ours == theirs
    assert ours_said == theirs_said and len(ours_said) == 1  # S2: a date out of range
    assert [row for row, _ in ours] == [1, 2, 4, 5, 7, 9]
    second = {col: (value, kind) for col, value, kind, _ in ours[1][1]}
    assert second[0] == ("beta & co", "s") and second[6] == (2134, "n")
    assert second[10] == ("  padded\nline\r", "s")
    assert second[11] == ("rich runs", "s") and second[12] == (None, "no-cache")
    assert second[14] == ("", "str") and second[18] == ("#VALUE!", "e")
    assert (second[19], second[20]) == (("alpha", "s"), (-0.0, "n"))


def test_rows_are_counted_up_front_and_read_as_before(tmp_path: Path) -> None:
    styles = _styled_book(tmp_path / "styled.xlsx")
    path = _with_sheet(tmp_path / "styled.xlsx", tmp_path / "shapes.xlsx", _cells(styles))
    with open_source(path) as reader:
        assert reader.header_row == 1 and reader.rows_total == 5  # rows 2, 4, 5, 7, 9
        chunks = list(reader.chunks(rows=2))
    assert [list(c.frame.index) for c in chunks] == [[4], [5, 9]]
    assert [p.row for p in chunks[0].problems] == [2]  # M2's formula has no saved value
    assert chunks[0].problems[0].message == "formula in column 'hM' (M) has no cached value"
    assert chunks[0].problems[0].values[:11] == (
        "beta & co",
        "42",
        "4500",
        "2024-01-01T18:00:00",
        "12:00:00",
        "30:00:00",
        "02134",
        "TRUE",
        "#N/A",
        "text & more \u263a <x>",
        "  padded\nline\r",
    )
    assert list(chunks[0].frame.iloc[0])[:3] == ["1", "FALSE", ""]
    assert list(chunks[1].frame.loc[5])[2] == "no r on the row"
    assert list(chunks[1].frame.loc[9])[:2] == ["beta & co", ""]


# -- the fast reader (_FastSheet): the same rows as expat, every guarantee kept ----------------


def _raw_both(path: Path, **options: Any) -> tuple[list[Any], list[Any], bool]:
    """A workbook's raw rows read by the fast reader and by expat, and whether the fast reader
    kept the sheet (``False``: it handed the whole sheet to expat)."""
    with open_source(path, ReadOptions(**options)) as reader:
        fast = list(reader._raw_rows())
        kept = reader._fast
        reader._fast = False
        slow = list(reader._raw_rows())
    return fast, slow, kept


def _fed(path: Path, block: int = 7, limit: int | None = None) -> _FastSheet:
    """A _FastSheet fed the first sheet's XML ``block`` bytes at a time (cutting tags, references
    and multi-byte characters), to its end; its rows in ``rows``."""
    with open(path, "rb") as fh:
        book = _open_workbook(fh)
        ws = book.worksheets[0]
        fast = _FastSheet(_cell_parser(book, ws._shared_strings), _zero_pad_widths(book), "x")
        fast.limit = limit
        with book._archive.open(ws._worksheet_path) as part:
            data = part.read()
        book.close()
    fast.rows = []  # type: ignore[attr-defined]
    for at in range(0, len(data), block):
        fast.rows += fast.feed(data[at : at + block])  # type: ignore[attr-defined]
    fast.rows += fast.feed(b"", final=True)  # type: ignore[attr-defined]
    return fast


@pytest.mark.parametrize("prefix", ["", "x:"])
def test_the_fast_reader_gives_expat_s_rows_on_every_cell_shape(
    tmp_path: Path, prefix: str
) -> None:
    """Every shape of cell: the rows (numbers, texts, formulas without a saved value) are the
    ones expat's reading gives; the odd rows (a formula, rich text, type d, a date out of
    range, two <v>, pretty-printed cells) are read by expat one by one, and a sheet whose main
    namespace has a prefix is read by expat whole."""
    styles = _styled_book(tmp_path / "styled.xlsx")
    path = _with_sheet(tmp_path / "styled.xlsx", tmp_path / "shapes.xlsx", _cells(styles, prefix))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # S2's date out of range, said by openpyxl
        fast, slow, kept = _raw_both(path)
        assert fast == slow
        assert [row for row, _, _ in fast] == [1, 2, 4, 5, 7, 9]
        assert kept is (prefix == "")
        if not prefix:
            fed = _fed(path, limit=26)
            assert fed.rows == slow  # type: ignore[attr-defined]
            assert fed.by_expat == 2  # rows 2 and 9


def _guarantees_book(path: Path) -> None:
    """A workbook written by openpyxl with each kind of value a list holds."""
    from openpyxl.cell.rich_text import CellRichText, TextBlock
    from openpyxl.cell.text import InlineFont

    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["Zip", "Account", "Signed", "At", "Phone", "Note", "Flag", "Ratio"])
    ws.append(
        [
            2134,
            456,
            dt.date(2024, 3, 10),
            dt.datetime(2024, 3, 10, 14, 30),
            4155550221,
            "Müller & Söhne <GmbH> \"q\" 's'",
            True,
            45292.75,
        ]
    )
    ws.cell(2, 1).number_format = "00000"
    ws.cell(2, 2).number_format = "000000"
    ws.cell(5, 1, 501).number_format = "00000"  # rows 3 and 4 are not in the sheet
    ws.cell(5, 6, "Call back\nafter 5\n\nthanks")
    ws.cell(5, 3, dt.time(14, 30))
    ws.cell(5, 7, False)
    ws.cell(6, 1, "02134")  # text stays text
    ws.cell(6, 6, CellRichText(["rich", TextBlock(InlineFont(b=True), " runs")]))
    ws.cell(7, 1, "=A6")  # a formula without a saved value
    ws.cell(7, 6, "  padded  ")
    ws.cell(9, 8, -0.5)
    book.save(path)


def test_workbook_values_read_as_a_person_sees_them(tmp_path: Path) -> None:
    """Zero-padding formats keep leading zeros, dates and times read as before, text with
    entities, line breaks and rich text runs whole, rows keep their numbers across gaps, a
    formula without a saved value is a problem row: the same by the fast reader as by expat."""
    path = tmp_path / "g.xlsx"
    _guarantees_book(path)
    fast, slow, kept = _raw_both(path)
    assert fast == slow and kept
    with open_source(path) as reader:
        chunks = list(reader.chunks(rows=2))
    frame = pd.concat([c.frame for c in chunks])
    assert frame.to_dict("index") == {
        2: {
            "Zip": "02134",
            "Account": "000456",
            "Signed": "2024-03-10",
            "At": "2024-03-10T14:30:00",
            "Phone": "4155550221",
            "Note": "Müller & Söhne <GmbH> \"q\" 's'",
            "Flag": "TRUE",
            "Ratio": "45292.75",
        },
        5: {
            "Zip": "00501",
            "Account": "",
            "Signed": "14:30:00",
            "At": "",
            "Phone": "",
            "Note": "Call back\nafter 5\n\nthanks",
            "Flag": "FALSE",
            "Ratio": "",
        },
        6: dict.fromkeys(["Account", "Signed", "At", "Phone", "Flag", "Ratio"], "")
        | {"Zip": "02134", "Note": "rich runs"},
        9: dict.fromkeys(["Zip", "Account", "Signed", "At", "Phone", "Note", "Flag"], "")
        | {"Ratio": "-0.5"},
    }
    problems = [p for c in chunks for p in c.problems]
    assert [(p.row, p.message) for p in problems] == [
        (7, "formula in column 'Zip' (A) has no cached value")
    ]
    assert problems[0].values[5] == "  padded  "


_REFERENCES = (
    f'<worksheet xmlns="{MAIN}" xmlns:x14ac="urn:x14ac"><sheetData>'
    '<row r="1" spans="1:3" x14ac:dyDescent="0.25"><c r="A1" t="s"><v>0</v></c>'
    '<c r="B1" t="inlineStr"><is><t>B</t></is></c><c r="C1" t="str"><v>C</v></c></row>'
    '<row r="2"><c r="A2" t="s" s="0"><v>1</v></c>'
    '<c r="B2" t="inlineStr"><is><t>a&amp;b &lt;&gt; &quot;&apos; &#233;&#x263A; '
    "&amp;lt; &#38;amp;</t></is></c>"
    '<c r="C2" t="str"><v>cr\r\nlf\rcr&#13;&#10;end</v></c></row>'
    '\r\n  <row>\n<c t="inlineStr"><is><t>no r</t></is></c></row>'
    '<row r="5" customHeight="1"/><row r="6"><c r="C6" t="b"><f>TRUE()</f><v>1</v></c>'
    '<c r="A6"><f t="shared" si="0"/><v>3</v></c></row>'
    "</sheetData></worksheet>"
)


def test_shared_strings_references_and_line_ends_as_xml_reads_them(tmp_path: Path) -> None:
    """Shared strings, the five predefined entities, character references (a CR kept only as
    &#13;), CR LF and a lone CR read as LF, row attributes of other namespaces, a row without r,
    an empty row, formulas with a saved value, cells out of order: as expat reads them, even
    with the XML fed a few bytes at a time."""
    styles = _styled_book(tmp_path / "styled.xlsx")
    assert styles
    path = _with_sheet(tmp_path / "styled.xlsx", tmp_path / "refs.xlsx", _REFERENCES)
    fast, slow, kept = _raw_both(path)
    assert fast == slow and kept
    assert fast == [
        (1, ["alpha", "B", "C"], ()),
        (2, ["beta & co", "a&b <> \"' é\u263a &lt; &amp;", "cr\nlf\ncr\r\nend"], ()),
        (3, ["no r"], ()),
        (5, [], ()),
        (6, ["3", "", "TRUE"], ()),
    ]
    for block in (1, 5, 64):
        fed = _fed(path, block)
        assert fed.rows[1:] == [  # type: ignore[attr-defined]
            (2, ["beta & co", "a&b <> \"' é\u263a &lt; &amp;", "cr\nlf\ncr\r\nend"], ()),
            (3, ["no r"], ()),
            (5, [], ()),
            (6, ["3", "", "TRUE"], ()),
        ]
        assert fed.by_expat == 0


def test_a_row_longer_than_the_fast_reader_holds_is_read_by_expat(tmp_path: Path) -> None:
    """A row of megabytes (past ``_FAST_ROW_MAX`` characters: 130 cells of Excel's largest,
    32,767 characters): the fast reader holds no more than that of it and hands the sheet to
    expat, which reads every cell whole."""
    import random

    texts = random.Random(5).choices("abcdefgh \n", k=32_767 * 130)
    cells = ["".join(texts[i : i + 32_767]) for i in range(0, len(texts), 32_767)]
    book = openpyxl.Workbook()
    book.active.append(["Email", *(f"Note {i}" for i in range(130))])
    book.active.append(["a@example.com", "short"])
    book.active.append(["b@example.com", *cells])
    book.active.append(["c@example.com", "after"])
    path = tmp_path / "huge.xlsx"
    book.save(path)
    fast, slow, kept = _raw_both(path)
    assert fast == slow and not kept
    assert [len(row) for _, row, _ in fast] == [131, 2, 131, 2]
    assert fast[2][1][1:] == cells


def test_a_doctype_or_another_encoding_leaves_the_sheet_to_expat(tmp_path: Path) -> None:
    """A sheet in UTF-16, or with comments or a DOCTYPE without entities, is read by expat
    (and a DOCTYPE declaring entities is refused as before)."""
    styles = _styled_book(tmp_path / "styled.xlsx")
    assert styles
    body = (
        f'<worksheet xmlns="{MAIN}"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>Email'
        '</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>a@example.com</t></is>'
        "</c></row></sheetData></worksheet>"
    )
    cases = {
        "utf16": ('<?xml version="1.0" encoding="UTF-16"?>' + body, "utf-16"),
        "comment": (body.replace("<sheetData>", "<!-- c --><sheetData>"), "utf-8"),
        "doctype": ("<!DOCTYPE worksheet>" + body, "utf-8"),
        "cdata": (body.replace("<t>a@", "<t><![CDATA[a@]]>"), "utf-8"),
    }
    for name, (xml, encoding) in cases.items():
        path = _with_sheet(
            tmp_path / "styled.xlsx", tmp_path / f"{name}.xlsx", xml.encode(encoding)
        )
        fast, slow, kept = _raw_both(path)
        assert fast == slow == [(1, ["Email"], ()), (2, ["a@example.com"], ())], name
        assert not kept, name
    bomb = '<!DOCTYPE w [<!ENTITY a "x">]>' + body.replace("a@", "&a;@")
    path = _with_sheet(tmp_path / "styled.xlsx", tmp_path / "bomb.xlsx", bomb)
    with pytest.raises(InputError) as refused:
        open_source(path)
    assert str(refused.value) == (
        f"{path}: the workbook's XML declares entities or external references (a possible XML "
        "bomb); refusing to read it"
    )


def test_workbook_watch_is_told_each_distinct_text_of_the_rows_that_become_frame_rows(
    tmp_path: Path,
) -> None:
    """While open_source checks a workbook's XML, a watched column's watcher is told each
    distinct text of the rows that reach the frame (not the title row, the header, blank rows
    or a row whose kept formula has no saved value) with its row, until it says it has
    enough; a sheet the fast reader leaves to expat is not watched (read again by the plan)."""
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["Leads export"])
    ws.append(["Name", "Zone", "Signed"])
    ws.append(["Ann", "Europe/Paris", "a"])
    ws.append([None, None, None])
    ws.append(["Bob", "Europe/\nParis", "b"])
    ws.append(["Cy", "Europe/Rome", "=1+1"])
    ws.append(["Di", "Europe/Rome", "a"])
    ws.cell(9, 1, "Ed")
    ws.cell(9, 3, "stop")
    ws.cell(10, 2, "Asia/Tokyo")
    path = tmp_path / "w.xlsx"
    book.save(path)
    told: dict[str, list[tuple[str, int]]] = {"Zone": [], "Signed": []}

    def watchers(reader: Any) -> dict[str, Any]:
        assert reader.headers == ["Name", "Zone", "Signed"]
        return {
            "Zone": lambda cell, row: told["Zone"].append((cell, row)) is not None,
            "Signed": lambda cell, row: told["Signed"].append((cell, row)) or cell == "stop",
            "Missing": lambda cell, row: True,
        }

    with open_source(path, watch=watchers) as reader:
        assert reader.header_row == 2
        assert reader.watched == {"Zone", "Signed"}
        frame = pd.concat([c.frame for c in reader.chunks()])
    assert told == {
        "Zone": [("Europe/Paris", 3), ("Europe/\nParis", 5), ("Europe/Rome", 7), ("", 9)]
        + [("Asia/Tokyo", 10)],
        "Signed": [("a", 3), ("b", 5), ("stop", 9)],
    }
    assert list(frame.index) == [3, 5, 7, 9, 10]
    prefixed = _with_sheet(
        tmp_path / "w.xlsx",
        tmp_path / "x.xlsx",
        f'<x:worksheet xmlns:x="{MAIN}"><x:sheetData><x:row r="1"><x:c r="A1" t="inlineStr">'
        '<x:is><x:t>Name</x:t></x:is></x:c><x:c r="B1" t="inlineStr"><x:is><x:t>Zone</x:t>'
        '</x:is></x:c><x:c r="C1" t="inlineStr"><x:is><x:t>Signed</x:t></x:is></x:c>'
        "</x:row></x:sheetData></x:worksheet>",
    )
    with open_source(prefixed, watch=watchers) as reader:
        assert reader.headers == ["Name", "Zone", "Signed"] and reader.watched == frozenset()


def test_a_workbook_is_not_read_again_for_its_date_orders(tmp_path: Path) -> None:
    """The date order of a workbook's date column is gathered while its XML is checked:
    rewritten after it was opened, the plan still says what it held (the same as a pass of
    its own over the file gives)."""
    from clitools import LIST_MAPPING

    from etl.normalize import MONTH_FIRST, DateOrder
    from etl.plan import DateScan, Scope, prepare, read_setup

    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        LIST_MAPPING + "dynamicData:\n  signed: {column: Signed, type: date}\n", encoding="utf-8"
    )

    def book(path: Path, dates: list[str]) -> None:
        wb = openpyxl.Workbook()
        wb.active.append(["First", "Last", "Email", "Phone", "Zone", "Signed"])
        for i, date in enumerate(dates):
            wb.active.append(
                [f"P{i}", "Lee", f"p{i}@example.com", f"020 7946 000{i}", "Europe/London", date]
            )
        wb.save(path)

    month_first = ["03/04/2024", "12/25/2023", "12/25/2023", "11/30/2023"]
    orders = []
    for scan in (True, False):
        path = tmp_path / f"{scan}.xlsx"
        book(path, month_first)
        setup = read_setup(mapping, None, "Europe/London", dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
        dates = DateScan(setup.mapping) if scan else None
        with open_source(path, watch=dates.watch(path) if dates else None) as reader:
            if scan:
                assert reader.watched == {"Signed"}
                book(path, ["25/12/2023"] * 4)  # rewritten in place: a day-first file
            scope = Scope("validate", None, False, 2, lambda path, exc: None, dates)
            orders.append(prepare(setup, [(path, reader)], None, scope).date_orders)
    assert orders == [
        {"signed": DateOrder(MONTH_FIRST, "", f"'12/25/2023' in {tmp_path / f'{scan}.xlsx'} row 3")}
        for scan in (True, False)
    ]


def _told_and_frames(path: Path) -> tuple[dict[str, list[tuple[str, int]]], Any, Any]:
    """What watchers of every column are told while ``path`` is opened, what a pass over its
    frames finds (each column's distinct texts with their first row), and ``watched``."""
    told: dict[str, list[tuple[str, int]]] = {}

    def watchers(reader: Any) -> dict[str, Any]:
        told.clear()
        return {
            h: lambda cell, row, h=h: told.setdefault(h, []).append((cell, row))
            for h in reader.headers
        }

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a date out of range, said by openpyxl
        with open_source(path, watch=watchers) as reader:
            watched = reader.watched
            frames = [c.frame for c in reader.chunks(rows=7)]
    found: dict[str, list[tuple[str, int]]] = {}
    for frame in frames:
        for header in frame.columns:
            seen = {cell for cell, _ in found.get(header, [])}
            for row, cell in frame[header].items():
                if cell not in seen:
                    seen.add(cell)
                    found.setdefault(header, []).append((cell, int(row)))
    return told, found, watched


#: Rows that only reading them whole can say: cells out of order (one right of the header's
#: width before the watched one), a column twice (the last wins), a cell without a reference
#: landing on the watched column, whitespace only, a formula, a row-number-less cell ref.
_AWKWARD = (
    f'<worksheet xmlns="{MAIN}"><sheetData>'
    '<row r="1"><c r="A1" t="inlineStr"><is><t>A</t></is></c><c r="B1" t="inlineStr"><is><t>B'
    '</t></is></c><c r="C1" t="inlineStr"><is><t>C</t></is></c></row>'
    '<row r="2"><c r="D2" t="inlineStr"><is><t>right</t></is></c><c r="B2" t="inlineStr"><is>'
    "<t>never read</t></is></c></row>"
    '<row r="3"><c r="B3" t="inlineStr"><is><t>first</t></is></c><c r="B3" t="inlineStr"><is>'
    "<t>second</t></is></c></row>"
    '<row r="4"><c r="A4" t="inlineStr"><is><t>x</t></is></c><c t="inlineStr"><is><t>no ref'
    "</t></is></c></row>"
    '<row r="5"><c r="B5" t="inlineStr"><is><t>  </t></is></c><c r="C5"><v>5</v></c></row>'
    '<row r="6"><c r="B6" t="inlineStr"><is><t>  </t></is></c></row>'
    '<row r="7"><c r="A7"><f>1+1</f></c><c r="B7" t="inlineStr"><is><t>formula</t></is></c>'
    "</row>"
    '<row r="8"><c r="B8" t="s"><v>1</v></c><c r="C8" t="inlineStr"><is><t>kept</t></is></c>'
    "</row>"
    "</sheetData></worksheet>"
)


def test_watchers_are_told_what_a_pass_over_the_frames_finds(tmp_path: Path) -> None:
    """On every sheet shape, in order: each column's distinct texts of the frame rows with
    their first row, whether a row is read for its watched columns alone or whole."""
    styles = _styled_book(tmp_path / "styled.xlsx")
    shapes = _with_sheet(tmp_path / "styled.xlsx", tmp_path / "shapes.xlsx", _cells(styles))
    refs = _with_sheet(tmp_path / "styled.xlsx", tmp_path / "refs.xlsx", _REFERENCES)
    awkward = _with_sheet(tmp_path / "styled.xlsx", tmp_path / "awkward.xlsx", _AWKWARD)
    guarantees = tmp_path / "g.xlsx"
    _guarantees_book(guarantees)
    rng = random.Random(12)
    book = openpyxl.Workbook()
    book.active.append([f"H{i}" for i in range(8)])
    kinds: list[Any] = [None, "", "  ", "a & b <c>", "two\nlines", "=1+1", True, 7, 2.5, -0.0]
    kinds += [dt.date(2024, 1, 2), dt.datetime(2023, 5, 6, 7, 8), "0123", "Zoë", "x" * 300]
    for row in range(2, 400):
        if rng.random() < 0.05:
            continue  # a gap
        for col in range(1, 9):
            value = rng.choice(kinds)
            if value is not None:
                book.active.cell(row, col, value)
        if rng.random() < 0.1:
            book.active.cell(row, 3).number_format = "00000"
            book.active.cell(row, 3, rng.randrange(10_000))
    mixed = tmp_path / "random.xlsx"
    book.save(mixed)
    for path in (shapes, refs, awkward, guarantees, mixed):
        told, found, watched = _told_and_frames(path)
        assert told == found, path.name
        assert set(watched) == set(found), path.name
    told, _, _ = _told_and_frames(awkward)
    assert told == {  # rows 2 (D is right of the header: the row reads blank) and 6 are blank
        "A": [("", 3), ("x", 4)],
        "B": [("second", 3), ("no ref", 4), ("  ", 5), ("beta & co", 8)],  # 7: A's formula
        "C": [("", 3), ("5", 5), ("kept", 8)],
    }
