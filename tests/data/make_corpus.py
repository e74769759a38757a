"""Build the reader test corpus: small CSV and Excel files that break naive importers.

Run ``python tests/data/make_corpus.py [DEST]`` (default ``tests/data/corpus/``). The output is
reproducible byte for byte: no random data without a fixed seed, and workbooks are re-zipped with
fixed timestamps. ``tests/test_extract.py`` imports this module and builds the same files in
``tmp_path``; :data:`CORPUS` maps each file name to its builder, :data:`EXPECTED_ERRORS` names
the files that must be refused and a word of the refusal.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import re
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

from openpyxl import Workbook

FIXED_TIME = (2024, 1, 1, 0, 0, 0)

# -- CSV --------------------------------------------------------------------------------------


def csv_utf8_bom_crlf() -> bytes:
    """UTF-8 with BOM, every field quoted, CRLF (as Excel's "CSV UTF-8")."""
    lines = ['"first_name","last_name","email"', '"Zoë","Fairweather","zoe@example.com"']
    return "\r\n".join(lines).encode("utf-8-sig") + b"\r\n"


def csv_utf16_tab() -> bytes:
    """UTF-16 LE with BOM, tab-separated (Excel's "Unicode text")."""
    text = "first_name\tlast_name\tcity\r\nJosé\tPeñalver\tMálaga\r\nΑλίκη\tΠαππά\tΑθήνα\r\n"
    return text.encode("utf-16")


def csv_cp1252_late() -> bytes:
    """cp1252, comma; the first 20 KB are ASCII and row 250 holds ``O’Brien`` and ``€``."""
    rows = ["first_name,last_name,email,notes"]
    rows += [
        f"Ann{i},Smith,ann{i}@example.com,plain ascii note {i:04d} {'.' * 60}"
        for i in range(2, 250)
    ]
    rows.append("Sean,O’Brien,sean@example.com,paid 5 € – thanks")
    rows.append("Last,Row,last@example.com,ok")
    return ("\r\n".join(rows) + "\r\n").encode("cp1252")


def csv_latin1_semicolon() -> bytes:
    """ISO-8859-1, semicolon, decimal commas."""
    text = "Name;Stadt;Betrag\nJörg;München;1.234,50\nRené;Köln;0,99\n"
    return text.encode("latin-1")


def csv_pipe_cr() -> bytes:
    """Pipe-separated with old-Mac CR line ends."""
    return b"name|phone|note\rAnna|+14155550101|a, b; c\rBob|0044 20 7946 0011|\r"


def csv_multiline_quoted() -> bytes:
    """Quoted cells with line breaks and doubled quotes: row numbers count records."""
    return (
        b"name,note,phone\n"
        b'Anna,"line one\nline two\r\nline three",111\n'
        b'Bob,"He said ""hi"", then left",222\n'
        b'Cy,"a,b",333\n'
    )


def csv_title_rows() -> bytes:
    """Two title rows and a blank one above the header (header is row 4)."""
    return (
        b"Lead export,,,\n"
        b"Generated 2024-03-01,,,\n"
        b",,,\n"
        b"name,email,phone,city\n"
        b"Anna,anna@example.com,111,Oslo\n"
        b"\n"
        b"Bob,bob@example.com,222,\n"
    )


def csv_blank_rows() -> bytes:
    """Blank lines and all-empty records in the middle: skipped, still counted."""
    return b"a,b\n1,2\n\n,\n3,4\n\n"


def csv_one_column() -> bytes:
    """One column of names: no letter may become the delimiter."""
    return b"name\nAnna\nBob Smith\nCyrus\n"


def csv_na_tokens() -> bytes:
    """Text that other readers turn into missing values."""
    return b"name,surname,note\nNA,NULL,N/A\nNone,nan,#N/A\n-,Null,\n"


def csv_messy_headers() -> bytes:
    """Whitespace around headers, an empty header without values, one with values."""
    return (
        b" First Name ,\xc2\xa0Email\t,,,phone\n"
        b"Anna,anna@example.com,,x,111\n"
        b"Bob,bob@example.com,,,222\n"
    )


def csv_duplicate_headers() -> bytes:
    """``Email`` and `` email`` are the same column after trimming and case-folding."""
    return b"name,Email,phone, email\nAnna,a@example.com,1,b@example.com\n"


def csv_ragged() -> bytes:
    """Too many, too few and one trailing empty extra field."""
    return b"a,b,c\n1,2,3\n1,2,3,4\n1,2\n1,2,3,\n1,2,3,,,\n"


def csv_binary() -> bytes:
    """Random bytes with a .csv name."""
    rng = random.Random(1234)
    return bytes(rng.randrange(256) for _ in range(4096))


# -- XLSX -------------------------------------------------------------------------------------


def _save(wb: Workbook) -> bytes:
    """Save a workbook and re-zip it with fixed timestamps so the bytes are reproducible."""
    raw = io.BytesIO()
    wb.save(raw)
    wb.close()
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(raw.getvalue())) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(
                    rb"(<dcterms:(created|modified)[^>]*>)[^<]*",
                    rb"\g<1>2024-01-01T00:00:00Z",
                    data,
                )
            member = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(member, data)
    return out.getvalue()


def xlsx_typed_cells() -> bytes:
    """Two sheets; ``Leads`` holds every kind of cell a lead file has.

    Row 2: phone 4155550221 (number with a phone format), a date cell, a date-time, serial
    45292 (General), 45292.75, TRUE, a time; row 3: text cells (``0044…``, ``NA``, ``#N/A``);
    row 4: a formula without a cached value (openpyxl writes none); row 5: an empty row;
    row 6: a big integer and a float with a fraction.
    """
    wb = Workbook()
    ws = wb.active
    ws.title = "Leads"
    ws.append(["name", "phone", "signed", "called", "serial", "fraction", "vip", "at"])
    ws.append(
        [
            "Anna",
            4155550221,
            dt.date(2024, 1, 15),
            dt.datetime(2024, 3, 10, 14, 30),
            45292,
            45292.75,
            True,
            dt.time(9, 5, 7),
        ]
    )
    ws["B2"].number_format = "[<=9999999]###-####;(###) ###-####"
    ws["C2"].number_format = "mm/dd/yyyy"
    ws["D2"].number_format = "m/d/yyyy h:mm"
    ws.append(["Bob", "00442079460011", "2024-02-29", "NA", "#N/A", "", False, None])
    ws.append(["Cy", "=1+1", None, None, None, None, None, None])
    ws.append([])
    ws.append(["Dee", 61491570157, None, None, 123456789012345, 0.1, None, None])
    other = wb.create_sheet("Other")
    other.append(["x", "y"])
    other.append([1, 2])
    return _save(wb)


def xlsx_far_formatted_cell() -> bytes:
    """Three data rows, and one formatted empty cell at XFD1048576 (dimension A1:XFD1048576)."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(["name", "phone"])
    for i in range(3):
        ws.append([f"Person {i}", f"+1415555010{i}"])
    ws.cell(row=1_048_576, column=16_384).number_format = "0.00"
    ws.cell(row=500_000, column=1).number_format = "@"
    return _save(wb)


def xlsx_sparse_title() -> bytes:
    """A title in row 1, the header in row 3, data rows 4, 9 and 1000 (sparse)."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Export"
    ws["A1"] = "Leads exported 2024-03-01"
    ws.append([])
    ws["A3"], ws["B3"], ws["D3"] = "name", "phone", "city"  # C3 empty header, no values
    ws["A4"], ws["B4"], ws["D4"] = "Anna", "111", "Oslo"
    ws["A9"], ws["B9"] = "Bob", "222"
    ws["A1000"], ws["D1000"] = "Cy", "Rome"
    return _save(wb)


def _rezip(data: bytes, edit: Callable[[str, bytes], bytes]) -> bytes:
    """Rewrite a workbook's members through ``edit(name, data)``."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(member, edit(info.filename, src.read(info.filename)))
    return out.getvalue()


def xlsx_xml_entities() -> bytes:
    """A sheet whose XML declares entities ("billion laughs"): defusedxml must refuse it."""
    doctype = b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>'

    def edit(name: str, data: bytes) -> bytes:
        if name == "xl/worksheets/sheet1.xml":
            data = data.replace(b"<worksheet", doctype + b"<worksheet", 1)
            data = data.replace(b"<t>Anna</t>", b"<t>&lol2;</t>", 1)
        return data

    return _rezip(xlsx_typed_cells(), edit)


def xlsx_corrupt_sheet() -> bytes:
    """A workbook of 3,000 rows whose sheet data is damaged mid-stream (the zip directory is
    intact, so the damage only shows when the sheet is decompressed)."""
    wb = Workbook()
    ws = wb.active
    ws.append(["name", "phone"])
    for i in range(3000):
        ws.append([f"Person {i}", f"+1415555{i:04d}"])
    data = bytearray(_save(wb))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    middle = start + info.compress_size // 2
    data[middle : middle + 64] = bytes(64)
    return bytes(data)


def xlsx_zip_bomb() -> bytes:
    """A zip named .xlsx with one 20 MB member of zeros (ratio about 1000:1)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("[Content_Types].xml", FIXED_TIME), b"<Types/>")
        info = zipfile.ZipInfo("xl/worksheets/sheet1.xml", FIXED_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, b"\0" * (20 * 1024 * 1024))
    return out.getvalue()


def xlsx_truncated() -> bytes:
    """The first half of a real workbook."""
    data = xlsx_typed_cells()
    return data[: len(data) // 2]


def xlsx_random_bytes() -> bytes:
    """Random bytes with an .xlsx name."""
    rng = random.Random(99)
    return bytes(rng.randrange(256) for _ in range(8192))


def xlsx_encrypted() -> bytes:
    """An OLE2 compound file holding an ``EncryptedPackage`` stream, as Excel writes a
    password-protected .xlsx (only the parts the reader looks at)."""
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504
    entry = "EncryptedPackage".encode("utf-16-le") + b"\0" * 2
    return header + b"\0" * 512 + entry + b"\0" * (512 - len(entry)) + b"\x42" * 1024


def xlsx_not_a_workbook() -> bytes:
    """A valid zip without ``[Content_Types].xml``."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr(zipfile.ZipInfo("hello.txt", FIXED_TIME), b"hello")
    return out.getvalue()


def xls_html() -> bytes:
    """An HTML table saved with an .xls name (what many web exports do)."""
    return b"<html><body><table><tr><td>name</td></tr></table></body></html>\n"


def xls_ole2_garbage() -> bytes:
    """OLE2 magic followed by junk: xlrd must fail and be wrapped."""
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x01" * 2048


# -- lead files for the CLI tests (tests/test_extract_cli.py) ----------------------------------
# Invented people: example.com addresses, US 555-01XX and UK drama-range numbers.


def leads_utf16_tab() -> bytes:
    """UTF-16 LE with BOM, tab-separated, CRLF: Excel's "Unicode text" export of a lead list."""
    text = (
        "first_name\tlast_name\temail\tcity\r\n"
        "José\tPeñalver\tjose.penalver@example.com\tMálaga\r\n"
        "Αλίκη\tΠαππά\talice.pappa@example.com\tΑθήνα\r\n"
    )
    return text.encode("utf-16")


def leads_latin1_semicolon() -> bytes:
    """ISO-8859-1, semicolon, LF, decimal commas (a German Excel's "CSV")."""
    text = (
        "first_name;last_name;email;deal_value\n"
        "Jörg;Müller;joerg.mueller@example.com;1.234,50\n"
        "René;Lefèvre;rene.lefevre@example.com;0,99\n"
    )
    return text.encode("latin-1")


def leads_cp1250() -> bytes:
    """Windows-1250 (Central European): only right when the mapping says ``read.encoding``."""
    text = (
        "first_name,last_name,email\r\n"
        "Łukasz,Wąsik,lukasz.wasik@example.com\r\n"
        "Zofia,Świętek,zofia.swietek@example.com\r\n"
    )
    return text.encode("cp1250")


def leads_one_column() -> bytes:
    """A one-column list of addresses (``.`` ``@`` ``-`` must not become the delimiter)."""
    return b"email\nanna.lee@example.com\nbob-stone@example.com\ncy.moor@example.org\n"


def leads_messy_headers() -> bytes:
    """UTF-8 BOM; headers with spaces, a no-break space and a tab; an empty-header column without
    values (D), one with a value (F) and a trailing one without (G); row 3's e-mail is bad."""
    return (
        "\ufeff First Name ,\u00a0Last Name\t, EMAIL ,,Company,,\r\n"
        "Anna,Lee,anna.lee@example.com,,Acme,,\r\n"
        "Bob,Stone,bob.stone(at)example.com,,Initech,stray,\r\n"
    ).encode()


def leads_title_rows() -> bytes:
    """Two title rows and a blank record above the header (row 4); a blank row 6."""
    return (
        b"Lead export,,,\r\n"
        b"Generated 2024-03-01,,,\r\n"
        b",,,\r\n"
        b"first_name,last_name,email,city\r\n"
        b"Anna,Lee,anna.lee@example.com,Oslo\r\n"
        b"\r\n"
        b"Bob,Stone,bob.stone(at)example.com,\r\n"
        b"Cy,Moor,cy.moor@example.com,Rome\r\n"
    )


def leads_wide_title() -> bytes:
    """A title row as wide as the header: only ``read.header_row: 2`` finds the header."""
    return (
        b"Report,Sales,EMEA,Q1\n"
        b"first_name,last_name,email,city\n"
        b"Anna,Lee,anna.lee@example.com,Oslo\n"
        b"Bob,Stone,bob.stone@example.com,Rome\n"
    )


def leads_na_tokens() -> bytes:
    """Names and values that other readers turn into missing values; blank and all-whitespace
    cells (the only missing ones)."""
    return (
        "first_name,last_name,email,company,notes\n"
        "NA,NULL,na.null@example.com,N/A,None\n"
        "None,nan,none.nan@example.com,#N/A,-\n"
        "Nan,Null,nan.null@example.com,\u00a0 \t,   \n"
        "N/A,#N/A,na.hash@example.com,,nan\n"
    ).encode()


def leads_damaged_numbers() -> bytes:
    """Phones Excel wrote in scientific notation; leading zeros in text columns."""
    return (
        b"first_name,last_name,email,phone,zip,account\n"
        b"Lars,Moe,lars.moe@example.com,4.15555E+09,02134,000123\n"
        b"Mina,Noor,mina.noor@example.com,4155550222,02134,000456\n"
        b'Ola,Pike,ola.pike@example.com,"4,15555E+09",00501,007\n'
        b"Pia,Rhee,pia.rhee@example.com,0044 20 7946 0960,00501,0\n"
    )


def xlsx_leads_workbook() -> bytes:
    """Three sheets; ``Leads`` (index 1) has a title row, its header in row 3 and every kind
    of cell: numeric phones, a big integer, text with leading zeros, a float, dates as date
    cells, serials, ISO text and a date-time, a number in Excel's zip-code format ``00000``,
    junk in a date column, a formula without a cached
    value (row 7), a styled-empty row between the rows (row 8) and formatted empty cells at
    rows 500,000 and 1,048,576."""
    wb = Workbook()
    summary = wb.active
    summary.title = "Summary"
    summary.append(["total", 5])
    ws = wb.create_sheet("Leads")
    ws.append(["Lead export 2024-03-01"])
    ws.append([])
    header = ["first_name", "last_name", "email", "phone", "account", "zip", "signed_up", "score"]
    ws.append(header)
    ws.append(
        [
            "Lars",
            "Moe",
            "lars.moe@example.com",
            4155550221,
            123456789012345,
            "02134",
            dt.date(2024, 1, 15),
            0.1,
        ]
    )
    ws["D4"].number_format = "[<=9999999]###-####;(###) ###-####"
    ws["G4"].number_format = "mm/dd/yyyy"
    ws.append(["Mina", "Noor", "mina.noor@example.com", 14155550222, "000123", 2134, 45292, 3])
    ws["F5"].number_format = "00000"  # Excel's "Zip Code" format: a person sees 02134
    ws.append(
        [
            "Ola",
            "Pike",
            "ola.pike@example.com",
            "+442079460960",
            777,  # becomes 2**53 + 1 below
            "00501",
            "2024-02-29",
            45292.75,
        ]
    )
    ws.append(["Rex", "Sato", "rex.sato@example.com", 4155550223, 7, "1", None, "=1+1"])
    ws["A8"].number_format = "@"  # a styled, empty row 8
    ws["C8"].number_format = "@"
    ws.append(
        [
            "Pia",
            "Rhee",
            "pia.rhee@example.com",
            4155550224,
            None,
            None,
            dt.datetime(2024, 3, 10, 14, 30),
            None,
        ]
    )
    ws["G9"].number_format = "m/d/yyyy h:mm"
    ws.append(["Cy", "Moor", "cy.moor@example.com", 4155550225, None, None, "not a date", None])
    ws.cell(row=500_000, column=2).number_format = "0.00"
    ws.cell(row=1_048_576, column=16_384).number_format = "0.00"
    other = wb.create_sheet("Other")
    other.append(["x", "y"])

    def exact_integer(name: str, data: bytes) -> bytes:
        # openpyxl writes integers through float; other writers keep every digit.
        if name == "xl/worksheets/sheet2.xml":
            data = data.replace(
                b'<c r="E6" t="n"><v>777</v>', b'<c r="E6" t="n"><v>9007199254740993</v>'
            )
        return data

    return _rezip(_save(wb), exact_integer)


def _entity_bomb(part: str, doctype: bytes, reference: bytes) -> Callable[[str, bytes], bytes]:
    """An ``edit`` for :func:`_rezip` that declares entities in one XML part and, in the sheet,
    replaces the text ``Anna`` by ``reference``."""

    def edit(name: str, data: bytes) -> bytes:
        if name == part:
            data = re.sub(rb"^(<\?xml[^>]*\?>)?", lambda m: m.group(0) + doctype, data, count=1)
        if name == "xl/worksheets/sheet1.xml":
            data = data.replace(b"<t>Anna</t>", b"<t>" + reference + b"</t>", 1)
        return data

    return edit


def xlsx_billion_laughs() -> bytes:
    """The classic: ten nested entities of ten references each (10**9 "lol"s, ~3 GB), declared
    in the workbook part (parsed when the workbook opens)."""
    levels = [b'<!ENTITY lol0 "lol">']
    for i in range(1, 10):
        levels.append(b'<!ENTITY lol%d "' % i + (b"&lol%d;" % (i - 1)) * 10 + b'">')
    doctype = b"<!DOCTYPE lolz [" + b"".join(levels) + b"]>"
    return _rezip(xlsx_typed_cells(), _entity_bomb("xl/workbook.xml", doctype, b"&lol9;"))


def xlsx_quadratic_blowup() -> bytes:
    """One 50,000-character entity referenced 50,000 times (~2.5 GB once expanded), in the
    sheet part (parsed when the rows are read)."""
    doctype = b'<!DOCTYPE q [<!ENTITY a "' + b"x" * 50_000 + b'">]>'
    sheet = "xl/worksheets/sheet1.xml"
    return _rezip(xlsx_typed_cells(), _entity_bomb(sheet, doctype, b"&a;" * 50_000))


def xlsx_zip_bomb_lying() -> bytes:
    """A real workbook whose sheet part unpacks to 64 MB but declares 2,000 bytes in both zip
    headers (so the declared-size checks pass): reading must stop at the declared size."""
    target = "xl/worksheets/sheet1.xml"
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(xlsx_typed_cells())) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            body = src.read(info.filename)
            if info.filename != target:
                dst.writestr(member, body)
                continue
            head, tail = body.split(b"<sheetData>", 1)
            with dst.open(member, "w") as part:
                part.write(head + b"<sheetData>")
                block = b" " * (1 << 20)
                for _ in range(64):
                    part.write(block)
                part.write(tail)
    raw = bytearray(out.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as archive:
        info = archive.getinfo(target)
    size, lie = info.file_size.to_bytes(4, "little"), (2000).to_bytes(4, "little")
    local = info.header_offset
    if raw[local + 22 : local + 26] != size:  # a data descriptor holds the sizes instead
        raise AssertionError("unexpected local header layout")
    raw[local + 22 : local + 26] = lie  # local file header: uncompressed size
    pos, name = raw.find(b"PK\x01\x02"), target.encode()
    while pos >= 0:
        length = int.from_bytes(raw[pos + 28 : pos + 30], "little")
        if raw[pos + 46 : pos + 46 + length] == name:
            raw[pos + 24 : pos + 28] = lie  # central directory: uncompressed size
            return bytes(raw)
        pos = raw.find(b"PK\x01\x02", pos + 4)
    raise AssertionError("central directory entry not found")


#: File name -> builder of its bytes.
CORPUS: dict[str, Callable[[], bytes]] = {
    "utf8_bom_crlf.csv": csv_utf8_bom_crlf,
    "utf16_tab.txt": csv_utf16_tab,
    "cp1252_late.csv": csv_cp1252_late,
    "latin1_semicolon.csv": csv_latin1_semicolon,
    "pipe_cr.csv": csv_pipe_cr,
    "multiline_quoted.csv": csv_multiline_quoted,
    "title_rows.csv": csv_title_rows,
    "blank_rows.csv": csv_blank_rows,
    "one_column.csv": csv_one_column,
    "na_tokens.csv": csv_na_tokens,
    "messy_headers.csv": csv_messy_headers,
    "duplicate_headers.csv": csv_duplicate_headers,
    "ragged.csv": csv_ragged,
    "binary.csv": csv_binary,
    "typed_cells.xlsx": xlsx_typed_cells,
    "far_formatted_cell.xlsx": xlsx_far_formatted_cell,
    "sparse_title.xlsx": xlsx_sparse_title,
    "zip_bomb.xlsx": xlsx_zip_bomb,
    "xml_entities.xlsx": xlsx_xml_entities,
    "corrupt_sheet.xlsx": xlsx_corrupt_sheet,
    "truncated.xlsx": xlsx_truncated,
    "random_bytes.xlsx": xlsx_random_bytes,
    "encrypted.xlsx": xlsx_encrypted,
    "not_a_workbook.xlsx": xlsx_not_a_workbook,
    "html_table.xls": xls_html,
    "ole2_garbage.xls": xls_ole2_garbage,
    "billion_laughs.xlsx": xlsx_billion_laughs,
    "quadratic_blowup.xlsx": xlsx_quadratic_blowup,
    "zip_bomb_lying.xlsx": xlsx_zip_bomb_lying,
    "leads_utf16_tab.txt": leads_utf16_tab,
    "leads_latin1_semicolon.csv": leads_latin1_semicolon,
    "leads_cp1250.csv": leads_cp1250,
    "leads_one_column.csv": leads_one_column,
    "leads_messy_headers.csv": leads_messy_headers,
    "leads_title_rows.csv": leads_title_rows,
    "leads_wide_title.csv": leads_wide_title,
    "leads_na_tokens.csv": leads_na_tokens,
    "leads_damaged_numbers.csv": leads_damaged_numbers,
    "leads_workbook.xlsx": xlsx_leads_workbook,
}

#: Files the reader must refuse with InputError, and a word the message must contain.
EXPECTED_ERRORS: dict[str, str] = {
    "duplicate_headers.csv": "duplicate",
    "binary.csv": "encoding",
    "zip_bomb.xlsx": "zip bomb",
    "xml_entities.xlsx": "XML bomb",
    "corrupt_sheet.xlsx": "cannot read",
    "truncated.xlsx": "truncated",
    "random_bytes.xlsx": "not a valid",
    "encrypted.xlsx": "password",
    "not_a_workbook.xlsx": "not an Excel workbook",
    "html_table.xls": "HTML",
    "ole2_garbage.xls": "cannot read",
    "billion_laughs.xlsx": "XML bomb",
    "quadratic_blowup.xlsx": "XML bomb",
    "zip_bomb_lying.xlsx": "Bad CRC-32",
}


def build(dest: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Write corpus files into ``dest``.

    Args:
        dest: folder to write into (created when missing).
        names: which files; ``None`` writes all of :data:`CORPUS`.

    Returns:
        File name -> written path.
    """
    dest.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in names or list(CORPUS):
        path = dest / name
        path.write_bytes(CORPUS[name]())
        written[name] = path
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "corpus"
    for written_path in build(target).values():
        sys.stdout.write(f"{written_path}\n")
