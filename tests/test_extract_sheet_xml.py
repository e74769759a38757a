"""etl.extract's own streaming read of a worksheet's XML gives exactly what openpyxl's parser
gives, cell for cell, on every shape of cell (and hands the odd ones to openpyxl itself)."""

from __future__ import annotations

import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from etl.extract import _cell_parser, _open_workbook, _sheet_rows, open_source

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


def _with_sheet(source: Path, target: Path, sheet_xml: str) -> Path:
    """``source`` with ``sheet_xml`` as its first sheet and shared strings alpha, beta & co."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            data = old.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = sheet_xml.encode()
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
