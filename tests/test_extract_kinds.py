"""File kinds recognised by their bytes, not their names (etl.extract.sniff_kind)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from clitools import C01, C01_MAP, run_cli
from openpyxl import Workbook

from etl.errors import InputError
from etl.extract import list_sheets, open_source, sniff_kind

CSV = "first_name,last_name,email\nAnn,Lee,ann@example.com\nBo,Ek,bo@example.com\n"
HTML = (
    "<!DOCTYPE html>\n<html><head><meta charset='utf-8'></head><body><table>"
    "<tr><th>first_name</th><th>email</th></tr><tr><td>Ann</td><td>ann@example.com</td></tr>"
    "</table></body></html>\n"
)
XML_2003 = (
    '<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n'
    '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet ss:Name="A">'
    "</Worksheet></Workbook>\n"
)


def _workbook(path: Path) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.title = "Leads"
    for row in CSV.splitlines():
        sheet.append(row.split(","))
    book.save(path)
    return path


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (CSV.encode(), "text"),
        (CSV.replace("Lee", "Müller").encode("cp1252"), "text"),
        (CSV.encode("utf-16"), "text"),
        ("\ufeff".encode() + CSV.encode(), "text"),
        (HTML.encode(), "html"),
        (b"  \r\n<table><tr><td>a</td></tr></table>", "html"),
        (XML_2003.encode(), "xml-spreadsheet"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "pdf"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "xls"),
        (b"PK\x03\x04" + bytes(100), "xlsx"),
        (bytes(range(256)) * 4, "binary"),
        (b"", "empty"),
    ],
)
def test_sniff_kind_reads_the_bytes(tmp_path: Path, content: bytes, kind: str) -> None:
    path = tmp_path / "file.xlsx"
    path.write_bytes(content)
    assert sniff_kind(path) == kind


@pytest.mark.parametrize("name", ["leads.xlsx", "leads.xls", "leads.xlsm"])
def test_a_csv_under_an_excel_name_is_named_for_what_it_is(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(CSV, encoding="utf-8")
    with pytest.raises(InputError) as info:
        open_source(path)
    assert str(info.value) == (
        f"{path}: this is a text (CSV) file although its name ends {path.suffix}; rename it to "
        "end .csv and import it again (or open it in Excel and save it as .xlsx)"
    )
    assert info.value.exit_code == 65


def test_a_workbook_under_a_csv_name_is_read_as_a_workbook(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(_workbook(tmp_path / "real.xlsx").read_bytes())
    with caplog.at_level(logging.WARNING, logger="etl.extract"):
        with open_source(path) as reader:
            frame = next(reader.chunks()).frame
    assert frame["first_name"].tolist() == ["Ann", "Bo"]
    assert list_sheets(path) == ["Leads"]
    assert caplog.records[0].getMessage() == (
        f"{path}: the file is an Excel .xlsx workbook although its name ends .csv; reading it as "
        "what it is (rename it to end .xlsx to silence this)"
    )


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        (
            "export.xls",
            HTML,
            "this is a web page (HTML), not a spreadsheet file; web applications often export "
            "such a file with an .xls name; open it in Excel or LibreOffice, save it as .xlsx "
            "(or CSV) and import that",
        ),
        (
            "export.xls",
            XML_2003,
            "this is an Excel 2003 XML spreadsheet, not a spreadsheet file; web applications "
            "often export such a file with an .xls name; open it in Excel or LibreOffice, save "
            "it as .xlsx (or CSV) and import that",
        ),
        (
            "list.csv",
            "%PDF-1.4\n",
            "this is a PDF document, not a spreadsheet file; export the list from where it came "
            "as CSV or .xlsx and import that",
        ),
    ],
)
def test_a_file_no_reader_takes_is_named_for_what_it_is(
    tmp_path: Path, name: str, content: str, says: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as info:
        open_source(path)
    assert str(info.value) == f"{path}: {says}"
    assert info.value.exit_code == 65


def test_a_csv_saved_as_xls_is_refused_alone_and_the_other_files_run(tmp_path: Path) -> None:
    source = tmp_path / "export.xls"
    source.write_bytes(C01.read_bytes())
    ran = run_cli(
        ["validate", str(source), str(C01), "--mapping", str(C01_MAP)],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == 65, ran.stderr
    assert ran.stderr == (
        f"Error: {source}: this is a text (CSV) file although its name ends .xls; rename it to "
        "end .csv and import it again (or open it in Excel and save it as .xlsx)\n"
    )
    assert ran.summary()["rows_valid"] == 5
