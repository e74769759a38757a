"""Issue 3 end to end: every kind of real-world spreadsheet, through ``validate`` (offline) and
``import`` (against the sandbox), with exact values.

Each test names the kind of the issue it proves (1 encodings … 8 hostile files). Inputs are the
reproducible corpus of ``tests/data/make_corpus.py`` (checked in under ``tests/data/corpus/``;
:func:`test_corpus_files_are_what_make_corpus_builds` keeps the two in step), the worked cases of
``tests/data/cases/``, or files built in ``tmp_path``. What is asserted: the exact fields the
sandbox stored for every lead, the exact ``_source_row`` of every row in ``loaded.csv`` and
``rejects.csv``, the exact ``_errors``, the exit code, and for an unreadable file that no
``POST /leads`` was made.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from clitools import CASES, CHILD_TIMEOUT, SPRING, Ran, env_for, run_cli, spring_id, state

from etl.extract import open_source

HERE = Path(__file__).parent
CORPUS = HERE / "data" / "corpus"
ZONE = "America/New_York"  # the mappings' defaults.timezone


def _corpus_module() -> ModuleType:
    if "make_corpus" in sys.modules:  # tests/test_extract.py loaded it already
        return sys.modules["make_corpus"]
    spec = importlib.util.spec_from_file_location("make_corpus", HERE / "data" / "make_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_corpus"] = module
    spec.loader.exec_module(module)
    return module


corpus = _corpus_module()


# -- helpers ----------------------------------------------------------------------------------


def write_mapping(tmp_path: Path, **parts: Any) -> Path:
    """A mapping for project 1 (JSON is YAML): name/surname/email from ``first_name``,
    ``last_name``, ``email``, the zone from ``defaults.timezone``; ``parts`` add or replace
    top-level keys."""
    data: dict[str, Any] = {
        "project": 1,
        "defaults": {"region": "US", "timezone": ZONE},
        "key": ["email"],
        "fields": {"name": "first_name", "surname": "last_name", "email": "email"},
    }
    data.update(parts)
    path = tmp_path / "mapping.yaml"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def offline_env() -> dict[str, str]:
    """The environment without any VOIPTIME_ variable: ``validate`` checks offline."""
    return {k: v for k, v in os.environ.items() if not k.startswith("VOIPTIME_")}


def validate(
    tmp_path: Path, sources: list[Path], mapping: Path, *, subprocess_mode: bool = False
) -> Ran:
    return run_cli(
        ["validate", *map(str, sources), "--mapping", str(mapping)],
        offline_env(),
        tmp_path / "validate-report",
        subprocess_mode=subprocess_mode,
    )


def import_(
    tmp_path: Path,
    sandbox: Any,
    sources: list[Path],
    mapping: Path,
    *args: str,
    subprocess_mode: bool = False,
) -> Ran:
    return run_cli(
        [
            "import",
            *map(str, sources),
            "--mapping",
            str(mapping),
            "--state",
            str(tmp_path / "state.sqlite"),
            *args,
        ],
        env_for(sandbox),
        tmp_path / "import-report",
        subprocess_mode=subprocess_mode,
    )


def lead(
    name: str,
    surname: str,
    email: str,
    *,
    phones: list[str] | None = None,
    zone: str = ZONE,
    comments: list[str] | None = None,
    dynamic: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What a stored lead must hold (the fields :func:`stored` compares)."""
    return {
        "name": name,
        "surname": surname,
        "email": email,
        "phones": phones or [],
        "timezoneId": zone,
        "comments": comments or [],
        "dynamicData": dynamic or {},
    }


def stored(ran: Ran, sandbox: Any) -> dict[int, dict[str, Any]]:
    """Source row → the lead the sandbox stored for it (through ``loaded.csv``'s lead_id)."""
    leads = {str(x["id"]): x for x in state(sandbox)["leads"]}
    out = {}
    for row in ran.loaded():
        assert row["action"] == "created", row
        got = leads[row["lead_id"]]
        assert got["groupId"] == 1
        out[int(row["_source_row"])] = {
            "name": got["name"],
            "surname": got["surname"],
            "email": got["email"],
            "phones": [p["number"] for p in got.get("phones") or []],
            "timezoneId": got["timezoneId"],
            "comments": [c["text"] for c in got.get("comments") or []],
            "dynamicData": got.get("dynamicData") or {},
        }
    assert len(leads) == len(out)  # nothing stored that loaded.csv does not list
    return out


def loaded_rows(ran: Ran) -> list[int]:
    return [int(r["_source_row"]) for r in ran.loaded()]


def rejected(ran: Ran) -> dict[int, str]:
    """Source row → ``_errors`` of rejects.csv."""
    return {int(r["_source_row"]): r["_errors"] for r in ran.rejects()}


def posts(sandbox: Any) -> int:
    return int(state(sandbox)["requests"].get("POST /leads", 0))


def check_both(
    tmp_path: Path,
    sandbox: Any,
    sources: list[Path],
    mapping: Path,
    *,
    code: int,
    leads: dict[int, dict[str, Any]],
    rejects: dict[int, str],
    subprocess_mode: bool = False,
) -> tuple[Ran, Ran]:
    """``validate`` offline, then ``import``: the same rows valid/loaded and rejected (with the
    same ``_errors``), the exit code, and exactly ``leads`` stored."""
    checked = validate(tmp_path, sources, mapping, subprocess_mode=subprocess_mode)
    assert checked.code == code, checked.stderr
    assert sorted(loaded_rows(checked)) == sorted(leads)
    assert {r["action"] for r in checked.loaded()} <= {"valid"}
    assert rejected(checked) == rejects
    ran = import_(tmp_path, sandbox, sources, mapping, subprocess_mode=subprocess_mode)
    assert ran.code == code, ran.stderr
    assert rejected(ran) == rejects
    assert stored(ran, sandbox) == leads
    summary = ran.summary()
    assert summary["exit_code"] == code
    assert summary["leads_created"] == len(leads)
    assert summary["rows_rejected"] == len(rejects)
    assert posts(sandbox) == len(leads)
    return checked, ran


# -- the corpus on disk is the one make_corpus.py builds --------------------------------------


def test_corpus_files_are_what_make_corpus_builds(tmp_path: Path) -> None:
    built = corpus.build(tmp_path)
    for name, path in built.items():
        assert (CORPUS / name).read_bytes() == path.read_bytes(), f"regenerate {name}"


# -- kind 1: encodings ------------------------------------------------------------------------


def test_kind1_cp1252_non_ascii_far_down(tmp_path: Path, sandbox: Any) -> None:
    """cp1252 whose first 20 KB are ASCII; row 250 holds ``O’Brien`` and ``€``."""
    source = CORPUS / "cp1252_late.csv"
    data = source.read_bytes()
    assert data[:20_000].isascii() and not data.isascii()
    mapping = write_mapping(tmp_path, comments=[{"column": "notes"}])
    checked = validate(tmp_path, [source], mapping)
    assert checked.code == 0, checked.stderr
    assert loaded_rows(checked) == list(range(2, 252))
    ran = import_(tmp_path, sandbox, [source], mapping)
    assert ran.code == 0, ran.stderr
    leads = stored(ran, sandbox)
    assert sorted(leads) == list(range(2, 252))
    assert leads[250] == lead("Sean", "O’Brien", "sean@example.com", comments=["paid 5 € – thanks"])
    assert leads[251] == lead("Last", "Row", "last@example.com", comments=["ok"])
    assert leads[2] == lead(
        "Ann2", "Smith", "ann2@example.com", comments=["plain ascii note 0002 " + "." * 60]
    )


@pytest.mark.parametrize(
    ("name", "read", "expected"),
    [
        (
            "leads_utf16_tab.txt",
            None,
            {
                2: ("José", "Peñalver", "jose.penalver@example.com", "Málaga"),
                3: ("Αλίκη", "Παππά", "alice.pappa@example.com", "Αθήνα"),
            },
        ),
        (
            "leads_latin1_semicolon.csv",
            None,
            {
                2: ("Jörg", "Müller", "joerg.mueller@example.com", "1.234,50"),
                3: ("René", "Lefèvre", "rene.lefevre@example.com", "0,99"),
            },
        ),
        (
            "leads_cp1250.csv",
            {"encoding": "cp1250"},
            {
                2: ("Łukasz", "Wąsik", "lukasz.wasik@example.com", None),
                3: ("Zofia", "Świętek", "zofia.swietek@example.com", None),
            },
        ),
    ],
)
def test_kind1_encodings_detected_or_given(
    tmp_path: Path,
    sandbox: Any,
    name: str,
    read: dict[str, str] | None,
    expected: dict[int, tuple[str, str, str, str | None]],
) -> None:
    """UTF-16 (Excel's "Unicode text"), Latin-1 detected; cp1250 given by ``read.encoding``."""
    extra_column = {"leads_utf16_tab.txt": "city", "leads_latin1_semicolon.csv": "deal_value"}
    parts: dict[str, Any] = {}
    if name in extra_column:
        parts["dynamicData"] = {"extra": extra_column[name]}
    if read:
        parts["read"] = read
    mapping = write_mapping(tmp_path, **parts)
    leads = {
        row: lead(n, s, e, dynamic={"extra": x} if x else None)
        for row, (n, s, e, x) in expected.items()
    }
    check_both(tmp_path, sandbox, [CORPUS / name], mapping, code=0, leads=leads, rejects={})


def test_kind1_utf8_bom_case_c03(tmp_path: Path, sandbox: Any) -> None:
    """UTF-8 with BOM, every field quoted, CRLF (the worked case C03)."""
    mapping = write_mapping(
        tmp_path,
        fields={
            "name": "first_name",
            "surname": "last_name",
            "email": "email",
            "timezoneId": "timezone",
        },
        phones=[{"column": "phone", "label": "main"}],
    )
    leads = {
        2: lead(
            "Zoë",
            "Fairweather",
            "zoe.fairweather@example.com",
            phones=["+14155550121"],
            zone="America/New_York",
        ),
        3: lead(
            "José",
            "Peñalver",
            "jose.penalver@example.com",
            phones=["+14155550122"],
            zone="America/Chicago",
        ),
        4: lead(
            "Chloé",
            "Marchetti",
            "chloe.marchetti@example.com",
            phones=["+14155550123"],
            zone="America/Denver",
        ),
    }
    source = CASES / "c03_bom_quoted_header.csv"
    assert source.read_bytes().startswith(b"\xef\xbb\xbf")
    check_both(tmp_path, sandbox, [source], mapping, code=0, leads=leads, rejects={})


def test_kind1_undecodable_file_names_the_byte_offset_and_sends_nothing(
    tmp_path: Path, sandbox: Any
) -> None:
    """``read.encoding: utf-8`` on the cp1252 file: exit 65 naming the offset of the first bad
    byte (``’`` = 0x92 in row 250) and suggesting read.encoding; nothing sent."""
    source = CORPUS / "cp1252_late.csv"
    offset = source.read_bytes().index(b"\x92")
    mapping = write_mapping(tmp_path, read={"encoding": "utf-8"})
    checked = validate(tmp_path, [source], mapping, subprocess_mode=True)
    ran = import_(tmp_path, sandbox, [source], mapping, subprocess_mode=True)
    for result in (checked, ran):
        assert result.code == 65, result.stderr
        assert result.stderr == (
            f"Error: {source}: cannot decode byte 0x92 at byte offset {offset} (read.encoding "
            "says utf-8: invalid start byte); set read.encoding in the mapping to the file's "
            "encoding, e.g. utf-8 or cp1252\n"
        )
        assert result.summary()["exit_code"] == 65
        assert result.summary()["rows_read"] == 0
    assert posts(sandbox) == 0


# -- kind 2: delimiters, quoting, line ends, row numbers --------------------------------------


@pytest.mark.parametrize(
    ("delimiter", "newline"), [(",", "\r\n"), (";", "\n"), ("\t", "\r"), ("|", "\r\n")]
)
def test_kind2_delimiters_quotes_line_ends_and_row_numbers(
    tmp_path: Path, sandbox: Any, delimiter: str, newline: str
) -> None:
    """Each delimiter with each line end; quoted cells with doubled quotes, the delimiter and
    line breaks inside. Rows 2 and 5 span two lines each, yet rows keep their record numbers:
    the bad e-mail is row 4 and the short row 6, whatever line they start on."""
    d, nl = delimiter, newline
    lines = [
        f"first_name{d}last_name{d}email{d}notes",
        f'Anna{d}Lee{d}anna.lee@example.com{d}"line one{nl}'
        f'line two, with ""quotes""{d} and {d} end"',
        f"Bob{d}Stone{d} BOB.STONE@Example.com {d}plain",
        f'Cy{d}Moor{d}cy.moor(at)example.com{d}"x"',
        f'"Dee"{d}"Park"{d}dee.park@example.com{d}"multi{nl}line"',
        f"Eve{d}Ray{d}eve.ray@example.com",
        f"Fay{d}Lin{d}fay.lin@example.com{d}",
    ]
    source = tmp_path / "leads.csv"
    source.write_bytes(nl.join(lines).encode() + nl.encode())
    mapping = write_mapping(tmp_path, comments=[{"column": "notes"}])
    leads = {
        2: lead(
            "Anna",
            "Lee",
            "anna.lee@example.com",
            comments=[f'line one{nl}line two, with "quotes"{d} and {d} end'],
        ),
        3: lead("Bob", "Stone", "bob.stone@example.com", comments=["plain"]),
        5: lead("Dee", "Park", "dee.park@example.com", comments=[f"multi{nl}line"]),
        7: lead("Fay", "Lin", "fay.lin@example.com"),
    }
    rejects = {
        4: "email (email): 'cy.moor(at)example.com': not an e-mail address (no @)",
        6: "row: 3 fields, expected 4",
    }
    check_both(tmp_path, sandbox, [source], mapping, code=3, leads=leads, rejects=rejects)


def test_kind2_one_column_file(tmp_path: Path, sandbox: Any) -> None:
    """One column of addresses: ``.``, ``@`` or ``-`` never becomes the delimiter."""
    mapping = write_mapping(
        tmp_path, fields={"name": "email", "surname": "email", "email": "email"}
    )
    emails = ["anna.lee@example.com", "bob-stone@example.com", "cy.moor@example.org"]
    leads = {row: lead(e, e, e) for row, e in enumerate(emails, start=2)}
    check_both(
        tmp_path,
        sandbox,
        [CORPUS / "leads_one_column.csv"],
        mapping,
        code=0,
        leads=leads,
        rejects={},
        subprocess_mode=True,
    )


# -- kind 3: ragged rows ----------------------------------------------------------------------


def test_kind3_ragged_rows_rejected_with_field_count(tmp_path: Path, sandbox: Any) -> None:
    """C12: 6 fields (an unquoted comma) and 4 fields are rejected with their counts; a single
    trailing empty field is not an error; the rest loads. rejects.csv keeps the row's own
    fields."""
    source = CASES / "c12_ragged_rows.csv"
    mapping = write_mapping(
        tmp_path,
        fields={
            "name": "first_name",
            "surname": "last_name",
            "email": "email",
            "timezoneId": "timezone",
        },
        phones=[{"column": "phone", "label": "main"}],
    )
    leads = {
        2: lead(
            "Tara",
            "Quinn",
            "tara.quinn@example.com",
            phones=["+14155550191"],
            zone="America/New_York",
        ),
        5: lead(
            "Wen", "Zhou", "wen.zhou@example.com", phones=["+14155550194"], zone="America/Denver"
        ),
        6: lead(
            "Xena",
            "Roy",
            "xena.roy@example.com",
            phones=["+14155550195"],
            zone="America/Los_Angeles",
        ),
    }
    rejects = {3: "row: 6 fields, expected 5", 4: "row: 4 fields, expected 5"}
    _, ran = check_both(tmp_path, sandbox, [source], mapping, code=3, leads=leads, rejects=rejects)
    fields = {int(r["_source_row"]): r["_fields"] for r in ran.rejects()}
    assert fields[3] == [  # a leading + is guarded against formula injection with a '
        "Uma",
        "Jones",
        " Jr.",
        "uma.jones@example.com",
        "'+14155550192",
        "America/Chicago",
    ]
    assert fields[4][:4] == ["Victor", "Lam", "victor.lam@example.com", "'+14155550193"]
    assert all(f == "" for f in fields[4][4:])
    assert {r["_source_file"] for r in ran.rejects()} == {str(source)}


# -- kind 4: headers --------------------------------------------------------------------------


def test_kind4_messy_headers_and_empty_columns(tmp_path: Path, sandbox: Any) -> None:
    """BOM, spaces, a no-break space and a tab around headers: the mapping's plain names match
    them. Empty-header columns without values are left out (no ``Unnamed`` column anywhere);
    one with a value is ``column_6``."""
    mapping = write_mapping(
        tmp_path,
        fields={"name": "first name", "surname": "LAST NAME", "email": "email"},
        dynamicData={"company": "company"},
    )
    leads = {2: lead("Anna", "Lee", "anna.lee@example.com", dynamic={"company": "Acme"})}
    rejects = {3: "email (email): 'bob.stone(at)example.com': not an e-mail address (no @)"}
    _, ran = check_both(
        tmp_path,
        sandbox,
        [CORPUS / "leads_messy_headers.csv"],
        mapping,
        code=3,
        leads=leads,
        rejects=rejects,
    )
    with open(ran.report / "rejects.csv", encoding="utf-8") as fh:
        header = fh.readline().rstrip("\r\n").split(",")
    assert header == [
        "First Name",
        "Last Name",
        "EMAIL",
        "Company",
        "column_6",
        "_source_file",
        "_source_row",
        "_errors",
    ]
    assert ran.rejects()[0]["_fields"] == [
        "Bob",
        "Stone",
        "bob.stone(at)example.com",
        "Initech",
        "stray",
    ]


def test_kind4_duplicate_headers_are_a_file_error_naming_the_columns(
    tmp_path: Path, sandbox: Any
) -> None:
    """``Email`` (B) and `` email`` (D) clash after trimming and case-folding: exit 65, the
    message names both columns, nothing sent."""
    source = CORPUS / "duplicate_headers.csv"
    mapping = write_mapping(tmp_path, fields={"name": "name", "surname": "name", "email": "email"})
    for result in (
        validate(tmp_path, [source], mapping),
        import_(tmp_path, sandbox, [source], mapping),
    ):
        assert result.code == 65, result.stderr
        assert (
            "duplicate column names (after trimming and ignoring case): "
            "'Email' (columns B, D). Rename the columns so each is unique."
        ) in result.stderr
    assert posts(sandbox) == 0


@pytest.mark.parametrize("header_row", [None, 4])
def test_kind4_title_rows_detected_or_given(
    tmp_path: Path, sandbox: Any, header_row: int | None
) -> None:
    """Two title rows and a blank row above the header (row 4): found by detection and by
    ``read.header_row: 4``; rows keep the numbers a spreadsheet shows (a blank row 6)."""
    parts: dict[str, Any] = {"dynamicData": {"city": "city"}}
    if header_row:
        parts["read"] = {"header_row": header_row}
    mapping = write_mapping(tmp_path, **parts)
    leads = {
        5: lead("Anna", "Lee", "anna.lee@example.com", dynamic={"city": "Oslo"}),
        8: lead("Cy", "Moor", "cy.moor@example.com", dynamic={"city": "Rome"}),
    }
    rejects = {7: "email (email): 'bob.stone(at)example.com': not an e-mail address (no @)"}
    check_both(
        tmp_path,
        sandbox,
        [CORPUS / "leads_title_rows.csv"],
        mapping,
        code=3,
        leads=leads,
        rejects=rejects,
    )


def test_kind4_header_row_option_where_detection_cannot_tell(tmp_path: Path, sandbox: Any) -> None:
    """A title row as wide as the header is taken for the header (the mapped columns are then
    missing: exit 78, before anything is sent); ``read.header_row: 2`` reads the file."""
    source = CORPUS / "leads_wide_title.csv"
    wrong = validate(tmp_path, [source], write_mapping(tmp_path))
    assert wrong.code == 78, wrong.stderr
    columns = "(header read on row 1) (its columns: 'Report', 'Sales', 'EMEA', 'Q1')"
    assert wrong.stderr == (
        f"Error: {tmp_path / 'mapping.yaml'}: 3 mapping problems:\n"
        f"  - fields.name: column 'first_name' is not in {source} {columns}\n"
        f"  - fields.surname: column 'last_name' is not in {source} {columns}\n"
        f"  - fields.email: column 'email' is not in {source} {columns}\n"
        "Fix the mapping file and run again.\n"
    )
    mapping = write_mapping(tmp_path, read={"header_row": 2})
    leads = {
        3: lead("Anna", "Lee", "anna.lee@example.com"),
        4: lead("Bob", "Stone", "bob.stone@example.com"),
    }
    check_both(tmp_path, sandbox, [source], mapping, code=0, leads=leads, rejects={})


# -- kind 5: missing vs text ------------------------------------------------------------------


def test_kind5_na_tokens_are_text_and_blanks_are_left_out(tmp_path: Path, sandbox: Any) -> None:
    """``NA``, ``N/A``, ``NULL``, ``None``, ``nan``, ``#N/A``, ``-`` reach the API as typed; an
    empty or all-whitespace cell (row 4) sends no key and no comment, never ``""``/``nan``."""
    mapping = write_mapping(
        tmp_path, dynamicData={"company": "company"}, comments=[{"column": "notes"}]
    )
    leads = {
        2: lead(
            "NA",
            "NULL",
            "na.null@example.com",
            comments=["None"],
            dynamic={"company": "N/A"},
        ),
        3: lead("None", "nan", "none.nan@example.com", comments=["-"], dynamic={"company": "#N/A"}),
        4: lead("Nan", "Null", "nan.null@example.com"),
        5: lead("N/A", "#N/A", "na.hash@example.com", comments=["nan"]),
    }
    check_both(
        tmp_path,
        sandbox,
        [CORPUS / "leads_na_tokens.csv"],
        mapping,
        code=0,
        leads=leads,
        rejects={},
    )
    lead_bodies = state(sandbox)["leads"]
    for body in lead_bodies:
        assert "" not in body["dynamicData"].values()


# -- kind 6: Excel cells ----------------------------------------------------------------------

WORKBOOK_MAPPING: dict[str, Any] = {
    "phones": [{"column": "phone", "label": "main"}],
    "dynamicData": {
        "account": "account",
        "zip": "zip",
        "signed_up": {"column": "signed_up", "type": "date"},
        "score": "score",
    },
}
WORKBOOK_LEADS = {
    4: lead(
        "Lars",
        "Moe",
        "lars.moe@example.com",
        phones=["+14155550221"],
        zone="America/Los_Angeles",
        dynamic={
            "account": "123456789012345",
            "zip": "02134",
            "signed_up": "2024-01-15",
            "score": "0.1",
        },
    ),
    5: lead(
        "Mina",
        "Noor",
        "mina.noor@example.com",
        phones=["+14155550222"],
        zone="America/Los_Angeles",
        dynamic={"account": "000123", "zip": "02134", "signed_up": "2024-01-01", "score": "3"},
    ),
    6: lead(
        "Ola",
        "Pike",
        "ola.pike@example.com",
        phones=["+442079460960"],
        zone="Europe/London",
        dynamic={
            "account": "9007199254740993",
            "zip": "00501",
            "signed_up": "2024-02-29",
            "score": "45292.75",
        },
    ),
    7: lead(  # its score is a formula without a saved value: left out, with a warning
        "Rex",
        "Sato",
        "rex.sato@example.com",
        phones=["+14155550223"],
        zone="America/Los_Angeles",
        dynamic={"account": "7", "zip": "1"},
    ),
    9: lead(
        "Pia",
        "Rhee",
        "pia.rhee@example.com",
        phones=["+14155550224"],
        zone="America/Los_Angeles",
        dynamic={"signed_up": "2024-03-10"},
    ),
}
WORKBOOK_REJECTS = {
    10: "dynamicData.signed_up (signed_up): 'not a date': not a date; write it as YYYY-MM-DD",
}


@pytest.mark.parametrize(
    ("suffix", "read"),
    [
        (".xlsx", {"sheet": "Leads"}),
        (".xlsm", {"sheet": 1, "header_row": 3}),
    ],
)
def test_kind6_excel_cells_exact(
    tmp_path: Path, sandbox: Any, suffix: str, read: dict[str, Any]
) -> None:
    """Sheet ``Leads`` (by name; by 0-based index with ``read.header_row`` for the .xlsm copy),
    a title row above the header (row 3). Numbers without float damage (a phone with a phone
    format, a 15-digit integer, 2**53 + 1 as another writer saves it, ``0.1``, 45292.75);
    leading zeros of text cells and of a number in the zip-code format ``00000``; a
    ``type: date`` field from a date cell, a serial (45292), ISO text and a date-time; junk in
    it is rejected; a formula without a cached value is flagged; the styled-empty row 8 and the
    formatted cells at rows 500,000 and 1,048,576 are skipped quickly."""
    source = tmp_path / f"leads{suffix}"
    source.write_bytes((CORPUS / "leads_workbook.xlsx").read_bytes())
    mapping = write_mapping(tmp_path, read=read, **WORKBOOK_MAPPING)
    start = time.process_time()
    with open_source(source) as reader:  # the first sheet, just to time the far-down cells
        assert reader.sheet == "Summary"
    check_both(
        tmp_path,
        sandbox,
        [source],
        mapping,
        code=3,
        leads=WORKBOOK_LEADS,
        rejects=WORKBOOK_REJECTS,
    )
    assert time.process_time() - start < 5


def test_kind6_styled_cell_at_last_row_reads_in_well_under_a_second(tmp_path: Path) -> None:
    """One formatted cell at XFD1048576 (the dimension says A1:XFD1048576)."""
    source = CORPUS / "far_formatted_cell.xlsx"
    start = time.process_time()
    with open_source(source) as reader:
        rows = [r for chunk in reader.chunks() for r in chunk.frame.index]
    assert time.process_time() - start < 0.5
    assert rows == [2, 3, 4]


@pytest.mark.parametrize("sheet", ["Lead", 3])
def test_kind6_wrong_sheet_lists_the_sheets(tmp_path: Path, sandbox: Any, sheet: str | int) -> None:
    source = CORPUS / "leads_workbook.xlsx"
    mapping = write_mapping(tmp_path, read={"sheet": sheet}, **WORKBOOK_MAPPING)
    listing = "'Summary', 'Leads', 'Other'"
    want = (
        f"no sheet named 'Lead'; the workbook has: {listing}"
        if sheet == "Lead"
        else f"read.sheet 3 is out of range: the workbook has 3 sheet(s) ({listing}); the index "
        "is 0-based"
    )
    for result in (
        validate(tmp_path, [source], mapping),
        import_(tmp_path, sandbox, [source], mapping),
    ):
        assert result.code == 65, result.stderr
        assert result.stderr == f"Error: {source}: {want}\n"
    assert posts(sandbox) == 0


def test_kind6_numeric_phones_case_c16(tmp_path: Path, sandbox: Any) -> None:
    """C16: phones typed as numbers (and one as text) become E.164 with each row's region."""
    source = CASES / "c16_numeric_phones.xlsx"
    ran = import_(
        tmp_path, sandbox, [source], CASES / "c16_numeric_phones.yaml", "--campaign", SPRING
    )
    assert ran.code == 3, ran.stderr
    leads = stored(ran, sandbox)
    assert {row: got["phones"] for row, got in leads.items()} == {
        2: ["+14155550221"],
        3: ["+14155550222"],
        5: ["+442079460960"],
        6: ["+61491570157"],
        7: ["+14155550223"],
    }
    assert list(rejected(ran)) == [4]
    assert sorted(state(sandbox)["campaign_entries"][spring_id(sandbox)]) == sorted(
        int(r["lead_id"]) for r in ran.loaded()
    )


# -- kind 7: damaged numbers ------------------------------------------------------------------


def test_kind7_scientific_phone_rejected_and_leading_zeros_kept(
    tmp_path: Path, sandbox: Any
) -> None:
    """``4.15555E+09`` (and ``4,15555E+09``) is "precision lost", never a wrong number; zip and
    account keep their leading zeros."""
    mapping = write_mapping(
        tmp_path,
        phones=[{"column": "phone", "label": "main"}],
        dynamicData={"zip": "zip", "account": "account"},
    )
    precision = (
        "phone (phone): '{}': precision lost: the number is in scientific notation "
        "(Excel shortened it); re-export the column as text"
    )
    leads = {
        3: lead(
            "Mina",
            "Noor",
            "mina.noor@example.com",
            phones=["+14155550222"],
            zone="America/Los_Angeles",
            dynamic={"zip": "02134", "account": "000456"},
        ),
        5: lead(
            "Pia",
            "Rhee",
            "pia.rhee@example.com",
            phones=["+442079460960"],
            zone="Europe/London",
            dynamic={"zip": "00501", "account": "0"},
        ),
    }
    check_both(
        tmp_path,
        sandbox,
        [CORPUS / "leads_damaged_numbers.csv"],
        mapping,
        code=3,
        leads=leads,
        rejects={2: precision.format("4.15555E+09"), 4: precision.format("4,15555E+09")},
    )


# -- kind 8: hostile and broken files ---------------------------------------------------------

XML_BOMB = (
    "the workbook's XML declares entities or external references (a possible XML bomb); "
    "refusing to read it"
)

#: Hostile or broken files and the reason the CLI gives (whole; a word of it where the reason
#: quotes a library's message, see PARTIAL).
HOSTILE = {
    "billion_laughs.xlsx": XML_BOMB,
    "quadratic_blowup.xlsx": XML_BOMB,
    "xml_entities.xlsx": XML_BOMB,
    "zip_bomb.xlsx": "looks like a zip bomb: xl/worksheets/sheet1.xml unpacks 20,387 bytes to "
    "20,971,520; refusing to open it",
    "zip_bomb_lying.xlsx": "Bad CRC-32",
    "encrypted.xlsx": "the workbook is password-protected (encrypted); open it in Excel, remove "
    "the password (File > Info > Protect Workbook) and save it again, or export it as CSV",
    "truncated.xlsx": "not a valid Excel .xlsx/.xlsm workbook (not a complete zip archive: the "
    "file is truncated, damaged, or another kind of file)",
    "corrupt_sheet.xlsx": "cannot read the file",
    "random_bytes.xlsx": "not a valid Excel .xlsx/.xlsm workbook (not a zip archive: the file is "
    "truncated, damaged, or another kind of file)",
    "not_a_workbook.xlsx": "a zip archive but not an Excel workbook",
    "html_table.xls": "this is a web page (HTML), not a spreadsheet file; web applications often "
    "export such a file with an .xls name; open it in Excel or LibreOffice, save it as .xlsx (or "
    "CSV) and import that",
    "ole2_garbage.xls": "cannot read the file",
    "binary.csv": "encoding",
}
#: Files whose reason quotes a zip or OLE2 reader's own message, or the code pages a detector
#: guessed: only the word in HOSTILE is ours.
PARTIAL = {"zip_bomb_lying.xlsx", "corrupt_sheet.xlsx", "ole2_garbage.xls", "binary.csv"}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_kind8_hostile_file_exits_65_and_sends_nothing(
    tmp_path: Path, sandbox: Any, name: str
) -> None:
    source = CORPUS / name
    mapping = write_mapping(tmp_path)
    for result in (
        validate(tmp_path, [source], mapping),
        import_(tmp_path, sandbox, [source], mapping),
    ):
        assert result.code == 65, result.stderr
        summary = result.summary()
        assert summary["exit_code"] == 65
        assert summary["rows_read"] == 0
        error = summary["files"][0]["error"]
        assert result.stderr == f"Error: {error}\n"
        if name in PARTIAL:
            assert error.startswith(f"{source}: ") and HOSTILE[name] in error, error
        else:
            assert error == f"{source}: {HOSTILE[name]}"
    assert "POST /leads" not in state(sandbox)["requests"]


def test_kind8_other_files_of_the_run_still_run(tmp_path: Path, sandbox: Any) -> None:
    """A zip bomb, a good file, random bytes and a password-protected workbook in one run: the
    good file's leads are created, exit 65 names both bad files."""
    good = CASES / "c01_na_names.csv"
    bad = [CORPUS / "zip_bomb.xlsx", CORPUS / "random_bytes.xlsx", CORPUS / "encrypted.xlsx"]
    ran = import_(
        tmp_path,
        sandbox,
        [bad[0], good, bad[1], bad[2]],
        CASES / "c01_na_names.yaml",
        subprocess_mode=True,
    )
    assert ran.code == 65, ran.stderr
    for path in bad:
        assert str(path) in ran.stderr
    assert loaded_rows(ran) == [2, 3, 4, 5, 6]
    assert {r["_source_file"] for r in ran.loaded()} == {str(good)}
    assert posts(sandbox) == 5
    assert sorted(x["email"] for x in state(sandbox)["leads"]) == [
        "jordan.null@example.com",
        "luca.none@example.com",
        "mia.park@example.com",
        "na.nguyen@example.com",
        "nan.null@example.com",
    ]
    files = {f["path"]: f for f in ran.summary()["files"]}
    assert files[str(good)]["rows_read"] == 5 and not files[str(good)]["error"]
    assert all(files[str(p)]["error"] for p in bad)


# The child process of test_kind8_hostile_files_bounded_in_time_and_memory.
_CHILD = r"""
import json, os, resource, sys, time

from etl.cli import cli
import charset_normalizer, defusedxml, openpyxl, xlrd  # the readers' libraries: baseline

extra, mapping, reports = int(sys.argv[1]), sys.argv[2], sys.argv[3]


def status():
    with open("/proc/self/status") as fh:
        pairs = (line.split(":", 1) for line in fh)
        return {k: int(v.split()[0]) * 1024 for k, v in pairs if k in ("VmSize", "VmPeak")}


for path in sys.argv[4:]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # one forked process per file, limited before it touches the file
        os.close(read_end)
        resource.setrlimit(resource.RLIMIT_CPU, (10, 10))  # CPU seconds: load cannot trip it
        base = status()
        resource.setrlimit(resource.RLIMIT_AS, (base["VmSize"] + extra,) * 2)
        code, start = None, time.process_time()
        try:
            if path == "--control":  # proves the limit bites
                try:
                    bytearray(extra + (64 << 20))
                    code = "allocated"
                except MemoryError:
                    code = "MemoryError"
            else:
                report = os.path.join(reports, os.path.basename(path))
                cli(["validate", path, "--mapping", mapping, "--report-dir", report])
        except SystemExit as exc:
            code = exc.code
        seconds = time.process_time() - start
        after = status()
        answer = {"path": path, "code": code, "seconds": seconds,
                  "growth": after["VmPeak"] - base["VmSize"]}
        os.write(write_end, json.dumps(answer).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    answer = data.decode() if data else json.dumps({"path": path, "code": "killed"})
    print("RESULT " + answer, flush=True)
"""

MEMORY_LIMIT = 300 * 1024 * 1024


@pytest.mark.skipif(
    not Path("/proc/self/status").exists() or not hasattr(os, "fork"), reason="needs Linux"
)
def test_kind8_hostile_files_bounded_in_time_and_memory(tmp_path: Path) -> None:
    """Each hostile file is refused within 5 CPU seconds and 300 MB, in a child process.

    What is limited: a child Python process imports the CLI and the reader libraries (pandas,
    pandera, openpyxl, xlrd, charset-normalizer, defusedxml), then forks one process per file.
    Each forked process sets ``RLIMIT_AS`` (its virtual address space) to its own size at that
    moment plus 300 MB, then runs ``voiptime-etl validate FILE`` in-process (the same code as
    the console script). So every mapping, heap and buffer the reading of that file makes must
    fit in 300 MB of new address space (a stricter bound than 300 MB of resident memory);
    ``RLIMIT_CPU`` kills it after 10 CPU seconds. Time is CPU time (``time.process_time``), not
    wall-clock time, so a busy machine does not fail the test. Reported per file: exit code, CPU
    seconds spent in the command,
    and growth of the peak address space (``VmPeak`` after − ``VmSize`` before). A control
    process proves the limit bites (allocating 364 MB fails with MemoryError); each file must
    give its own reason, not "too large to read" (a MemoryError turned into an input error).
    """
    mapping = write_mapping(tmp_path)
    files = [str(CORPUS / name) for name in sorted(HOSTILE)]
    env = offline_env() | {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(MEMORY_LIMIT), str(mapping), str(tmp_path / "r")]
        + ["--control", *files],
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    answers = [
        json.loads(line[len("RESULT ") :])
        for line in proc.stdout.splitlines()
        if line.startswith("RESULT ")
    ]
    assert answers[0]["code"] == "MemoryError"
    measured = {}
    for answer in answers[1:]:
        name = Path(answer["path"]).name
        assert answer["code"] == 65, (name, answer, proc.stderr)
        assert answer["seconds"] < 5, answer
        assert answer["growth"] < MEMORY_LIMIT, answer
        summary = json.loads((tmp_path / "r" / name / "summary.json").read_text("utf-8"))
        assert HOSTILE[name] in summary["files"][0]["error"]
        assert "too large" not in summary["files"][0]["error"]
        measured[name] = (round(answer["seconds"], 3), round(answer["growth"] / 2**20, 1))
    assert sorted(measured) == sorted(HOSTILE)
    print("hostile files (seconds, MB of address space):", measured)
