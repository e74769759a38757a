"""Tests for etl.extract: real files built in tmp_path, exact values."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import pickle
import re
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
import xlrd
from clitools import C01_MAP, ROOT, env_for, run_cli, state
from clitools import import_args as imp
from openpyxl import Workbook

from etl import extract
from etl.errors import InputError, InputMissingError
from etl.extract import (
    CSV_FIELD_LIMIT,
    SUFFIXES,
    Chunk,
    ReadOptions,
    RowProblem,
    SourceReader,
    list_sheets,
    open_source,
)

HERE = Path(__file__).parent
CASES = HERE / "data" / "cases"


def _load_corpus_module():
    spec = importlib.util.spec_from_file_location("make_corpus", HERE / "data" / "make_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_corpus"] = module
    spec.loader.exec_module(module)
    return module


corpus = _load_corpus_module()


# -- helpers ----------------------------------------------------------------------------------


def read_all(path: Path, options: ReadOptions | None = None, rows: int = 10_000):
    """(reader attributes, one frame of every chunk, every problem)."""
    with open_source(path, options) as reader:
        chunks = list(reader.chunks(rows=rows))
        info = SimpleNamespace(
            headers=reader.headers,
            header_row=reader.header_row,
            encoding=reader.encoding,
            delimiter=reader.delimiter,
            sheet=reader.sheet,
        )
    frames = [c.frame for c in chunks]
    frame = pd.concat(frames) if frames else None
    problems = [p for c in chunks for p in c.problems]
    return info, frame, problems


def expected_frame(columns: list[str], rows: dict[int, list[str]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows.values()), columns=columns, dtype=object)
    frame.index = pd.Index(list(rows), dtype="int64", name="_source_row")
    return frame


def assert_frame(actual: pd.DataFrame | None, expected: pd.DataFrame) -> None:
    assert actual is not None
    assert list(actual.columns) == list(expected.columns)
    assert {str(d) for d in actual.dtypes} <= {"object"}
    assert actual.index.name == "_source_row"
    assert actual.index.dtype == "int64"
    assert actual.to_dict("split") == expected.to_dict("split")
    for value in actual.to_numpy().ravel():
        assert type(value) is str


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def build(tmp_path: Path, name: str) -> Path:
    return corpus.build(tmp_path, [name])[name]


# -- the worked cases (tests/data/cases, a mapping beside each file) ---------------------------


def case(name: str) -> Path:
    path = CASES / name
    if not path.exists():
        pytest.skip(f"{name} not present")
    return path


CASE_COLUMNS = ["first_name", "last_name", "email", "phone", "timezone"]
CSV_CASES = {
    "c01_na_names.csv": (
        CASE_COLUMNS + ["notes"],
        {
            2: ["Nan", "NULL", "nan.null@example.com", "+14155550101", "America/New_York", "N/A"],
            3: ["NA", "Nguyen", "na.nguyen@example.com", "+14155550102", "America/Chicago", ""],
            4: [
                "Jordan",
                "Null",
                "jordan.null@example.com",
                "+14155550103",
                "America/Denver",
                "null",
            ],
            5: [
                "Luca",
                "None",
                "luca.none@example.com",
                "+14155550104",
                "America/Los_Angeles",
                "#N/A",
            ],
            6: ["Mia", "Park", "mia.park@example.com", "+14155550105", "", ""],
        },
        [],
    ),
    "c03_bom_quoted_header.csv": (
        CASE_COLUMNS,
        {
            2: [
                "Zoë",
                "Fairweather",
                "zoe.fairweather@example.com",
                "+14155550121",
                "America/New_York",
            ],
            3: ["José", "Peñalver", "jose.penalver@example.com", "+14155550122", "America/Chicago"],
            4: [
                "Chloé",
                "Marchetti",
                "chloe.marchetti@example.com",
                "+14155550123",
                "America/Denver",
            ],
        },
        [],
    ),
    "c05_semicolon_de.csv": (
        CASE_COLUMNS + ["deal_value", "notes"],
        {
            2: [
                "Lena",
                "Hoffmann",
                "lena.hoffmann@example.com",
                "+44 20 7946 0011",
                "Europe/Berlin",
                "1.234,50",
                "Rückruf, bitte vormittags",
            ],
            3: [
                "Jonas",
                "Becker",
                "jonas.becker@example.com",
                "+44 20 7946 0012",
                "Europe/Berlin",
                "12.000,00",
                "Interesse an Paket A, B und C",
            ],
            4: [
                "Marie",
                "Schulz",
                "marie.schulz@example.com",
                "+44 20 7946 0013",
                "Europe/Vienna",
                "0,99",
                'Zitat: "bitte nur per Mail"',
            ],
        },
        [],
    ),
    "c12_ragged_rows.csv": (
        CASE_COLUMNS,
        {
            2: ["Tara", "Quinn", "tara.quinn@example.com", "+14155550191", "America/New_York"],
            5: ["Wen", "Zhou", "wen.zhou@example.com", "+14155550194", "America/Denver"],
            6: ["Xena", "Roy", "xena.roy@example.com", "+14155550195", "America/Los_Angeles"],
        },
        [
            RowProblem(
                3,
                "6 fields, expected 5",
                (
                    "Uma",
                    "Jones",
                    " Jr.",
                    "uma.jones@example.com",
                    "+14155550192",
                    "America/Chicago",
                ),
            ),
            RowProblem(
                4,
                "4 fields, expected 5",
                ("Victor", "Lam", "victor.lam@example.com", "+14155550193"),
            ),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(CSV_CASES))
def test_csv_cases_exact(name: str) -> None:
    columns, rows, problems = CSV_CASES[name]
    info, frame, found = read_all(case(name))
    assert info.headers == columns
    assert info.header_row == 1
    assert_frame(frame, expected_frame(columns, rows))
    assert found == problems


def test_case_c05_detects_semicolon_and_bom() -> None:
    info, _, _ = read_all(case("c05_semicolon_de.csv"))
    assert (info.delimiter, info.encoding) == (";", "utf-8-sig")


def test_case_c07_dates_as_text() -> None:
    info, frame, problems = read_all(case("c07_excel_dates.xlsx"))
    assert info.sheet == "Leads"
    assert info.headers == ["first_name", "last_name", "email", "phone", "signup_date"]
    assert problems == []
    assert frame is not None
    assert list(frame.index) == [2, 3, 4, 5, 6, 7, 8]
    assert frame["signup_date"].to_dict() == {
        2: "2024-01-15",
        3: "45292",
        4: "2024-02-29",
        5: "2024-03-10T14:30:00",
        6: "45292.75",
        7: "not a date",
        8: "",
    }
    assert frame.loc[2, "phone"] == "+14155550141"


def test_case_c16_numeric_phones() -> None:
    info, frame, problems = read_all(case("c16_numeric_phones.xlsx"))
    assert info.headers == ["first_name", "last_name", "email", "phone", "country", "timezone"]
    assert problems == []
    assert frame is not None
    assert frame["phone"].to_dict() == {
        2: "4155550221",
        3: "14155550222",
        4: "",
        5: "442079460960",
        6: "61491570157",
        7: "4155550223",
    }
    assert frame["timezone"].to_dict()[6] == "Australia/Sydney"
    assert frame["timezone"].to_dict()[2] == ""


# -- encodings --------------------------------------------------------------------------------


def test_cp1252_non_ascii_far_down(tmp_path: Path) -> None:
    path = build(tmp_path, "cp1252_late.csv")
    assert path.read_bytes()[:20_000].isascii()
    info, frame, problems = read_all(path)
    assert info.encoding == "cp1252"
    assert problems == []
    assert frame is not None
    assert frame.loc[250].tolist() == ["Sean", "O’Brien", "sean@example.com", "paid 5 € – thanks"]
    assert frame.loc[251, "notes"] == "ok"
    assert len(frame) == 250


def test_large_file_samples_start_and_first_bad_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the whole-file limit, the region of the first non-UTF-8 byte is sampled too."""
    monkeypatch.setattr(extract, "_DETECT_WHOLE_LIMIT", 4096)
    monkeypatch.setattr(extract, "_DETECT_SAMPLE", 4096)
    path = build(tmp_path, "cp1252_late.csv")
    info, frame, _ = read_all(path)
    assert info.encoding == "cp1252"
    assert frame is not None and frame.loc[250, "last_name"] == "O’Brien"


def test_utf16_with_bom_and_tabs(tmp_path: Path) -> None:
    info, frame, _ = read_all(build(tmp_path, "utf16_tab.txt"))
    assert (info.encoding, info.delimiter) == ("utf-16", "\t")
    assert_frame(
        frame,
        expected_frame(
            ["first_name", "last_name", "city"],
            {2: ["José", "Peñalver", "Málaga"], 3: ["Αλίκη", "Παππά", "Αθήνα"]},
        ),
    )


def test_utf8_bom_crlf(tmp_path: Path) -> None:
    info, frame, _ = read_all(build(tmp_path, "utf8_bom_crlf.csv"))
    assert info.encoding == "utf-8-sig"
    assert_frame(
        frame,
        expected_frame(
            ["first_name", "last_name", "email"], {2: ["Zoë", "Fairweather", "zoe@example.com"]}
        ),
    )


def test_latin1_detected_as_cp1252(tmp_path: Path) -> None:
    info, frame, _ = read_all(build(tmp_path, "latin1_semicolon.csv"))
    assert (info.encoding, info.delimiter) == ("cp1252", ";")
    assert frame is not None
    assert frame.to_dict("list") == {
        "Name": ["Jörg", "René"],
        "Stadt": ["München", "Köln"],
        "Betrag": ["1.234,50", "0,99"],
    }


def test_short_cp1252_file_not_taken_for_an_exotic_code_page(tmp_path: Path) -> None:
    path = write(tmp_path, "short.csv", "name,city\nJosé,Zürich\n".encode("cp1252"))
    info, frame, _ = read_all(path)
    assert info.encoding == "cp1252"
    assert frame is not None and frame.loc[2].tolist() == ["José", "Zürich"]


def test_encoding_option_overrides_detection(tmp_path: Path) -> None:
    path = write(tmp_path, "greek.csv", "a,b\nαβ,γ\n".encode("cp1253"))
    info, frame, _ = read_all(path, ReadOptions(encoding="cp1253"))
    assert info.encoding == "cp1253"
    assert frame is not None and frame.loc[2].tolist() == ["αβ", "γ"]


def test_undecodable_with_given_encoding_names_offset(tmp_path: Path) -> None:
    path = build(tmp_path, "cp1252_late.csv")
    offset = path.read_bytes().index("’".encode("cp1252"))
    with pytest.raises(InputError) as err:
        open_source(path, ReadOptions(encoding="utf-8"))
    message = str(err.value)
    assert f"byte offset {offset}" in message
    assert "read.encoding" in message
    assert err.value.exit_code == 65


def test_unknown_encoding_name(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"a,b\n1,2\n")
    with pytest.raises(InputError, match="unknown encoding 'klingon'"):
        open_source(path, ReadOptions(encoding="klingon"))


# -- delimiters, quoting, line ends -----------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_delimiters_and_line_ends(tmp_path: Path, delimiter: str, newline: str) -> None:
    d = delimiter
    other = next(c for c in ",;|" if c != d)
    lines = [
        f"name{d}note{d}phone",
        f'Anna{d}"has {d} and {other} and ""quotes"""{d}111',
        f"Bob{d}plain{other}text{d}222",
    ]
    path = write(tmp_path, "d.csv", (newline.join(lines) + newline).encode())
    info, frame, problems = read_all(path)
    assert info.delimiter == delimiter
    assert problems == []
    assert_frame(
        frame,
        expected_frame(
            ["name", "note", "phone"],
            {
                2: ["Anna", f'has {d} and {other} and "quotes"', "111"],
                3: ["Bob", f"plain{other}text", "222"],
            },
        ),
    )


def test_delimiter_option(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"a;b,c\n1;2,3\n")
    info, frame, _ = read_all(path, ReadOptions(delimiter=","))
    assert info.headers == ["a;b", "c"]
    assert frame is not None and frame.loc[2].tolist() == ["1;2", "3"]


def test_pipe_with_cr_line_ends(tmp_path: Path) -> None:
    info, frame, _ = read_all(build(tmp_path, "pipe_cr.csv"))
    assert info.delimiter == "|"
    assert_frame(
        frame,
        expected_frame(
            ["name", "phone", "note"],
            {2: ["Anna", "+14155550101", "a, b; c"], 3: ["Bob", "0044 20 7946 0011", ""]},
        ),
    )


def test_one_column_file_gets_no_letter_delimiter(tmp_path: Path) -> None:
    info, frame, _ = read_all(build(tmp_path, "one_column.csv"))
    assert info.delimiter == ","
    assert_frame(frame, expected_frame(["name"], {2: ["Anna"], 3: ["Bob Smith"], 4: ["Cyrus"]}))


def test_multiline_cells_count_as_one_row(tmp_path: Path) -> None:
    _, frame, _ = read_all(build(tmp_path, "multiline_quoted.csv"))
    assert_frame(
        frame,
        expected_frame(
            ["name", "note", "phone"],
            {
                2: ["Anna", "line one\nline two\r\nline three", "111"],
                3: ["Bob", 'He said "hi", then left', "222"],
                4: ["Cy", "a,b", "333"],
            },
        ),
    )


def test_blank_rows_skipped_but_counted(tmp_path: Path) -> None:
    _, frame, _ = read_all(build(tmp_path, "blank_rows.csv"))
    assert_frame(frame, expected_frame(["a", "b"], {2: ["1", "2"], 5: ["3", "4"]}))


def test_cells_are_not_trimmed(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"a,b\n  x , y\t\n")
    _, frame, _ = read_all(path)
    assert frame is not None and frame.loc[2].tolist() == ["  x ", " y\t"]


def test_missing_values_stay_text(tmp_path: Path) -> None:
    _, frame, _ = read_all(build(tmp_path, "na_tokens.csv"))
    assert_frame(
        frame,
        expected_frame(
            ["name", "surname", "note"],
            {2: ["NA", "NULL", "N/A"], 3: ["None", "nan", "#N/A"], 4: ["-", "Null", ""]},
        ),
    )
    assert not frame.isna().any().any()  # type: ignore[union-attr]


# -- ragged rows ------------------------------------------------------------------------------


def test_ragged_rows_become_problems(tmp_path: Path) -> None:
    _, frame, problems = read_all(build(tmp_path, "ragged.csv"))
    assert_frame(
        frame,
        expected_frame(
            ["a", "b", "c"], {2: ["1", "2", "3"], 5: ["1", "2", "3"], 6: ["1", "2", "3"]}
        ),
    )
    assert problems == [
        RowProblem(3, "4 fields, expected 3", ("1", "2", "3", "4")),
        RowProblem(4, "2 fields, expected 3", ("1", "2")),
    ]


def test_unclosed_quote_refuses_the_file_at_open(tmp_path: Path) -> None:
    """The open quote would run to the end of the file: a structure error, not one cell."""
    path = write(tmp_path, "q.csv", b'a,b\n1,"oops\n2,3\n')
    with pytest.raises(InputError) as err:
        open_source(path)
    assert err.value.row == 2
    assert str(err.value) == (
        f"{path}, row 2: a quote opened on line 2 (column B) is never closed: it takes in the 1 "
        "line below it to the end of the file; add the missing closing quote (a quote inside a "
        'cell is written twice: ""), then run again. Nothing of this file was sent'
    )


def test_a_long_note_is_fine(tmp_path: Path) -> None:
    note = "word " * 60_000  # 300,000 characters: past Python's csv default of 131,072
    path = write(tmp_path, "n.csv", b'a,b\n1,"' + note.encode() + b'"\n')
    info, frame, problems = read_all(path)
    assert frame.loc[2, "b"] == note and problems == []


@pytest.mark.parametrize("filler_rows", [0, 30])
def test_huge_field_is_an_input_error_with_row(tmp_path: Path, filler_rows: int) -> None:
    """Refused at open when within the header scan, else while reading chunks."""
    filler = b"1,2\n" * filler_rows
    huge = b"x" * (CSV_FIELD_LIMIT + 10)
    path = write(tmp_path, "q.csv", b"a,b\n" + filler + b'3,"' + huge + b"\n")
    with pytest.raises(InputError) as err:
        with open_source(path) as reader:
            list(reader.chunks())
    assert err.value.row == filler_rows + 2
    assert "quote" in str(err.value)


# -- headers ----------------------------------------------------------------------------------


def test_messy_headers(tmp_path: Path) -> None:
    info, frame, _ = read_all(build(tmp_path, "messy_headers.csv"))
    assert info.headers == ["First Name", "Email", "column_4", "phone"]
    assert_frame(
        frame,
        expected_frame(
            ["First Name", "Email", "column_4", "phone"],
            {2: ["Anna", "anna@example.com", "x", "111"], 3: ["Bob", "bob@example.com", "", "222"]},
        ),
    )


def test_trailing_empty_header_without_values(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"a,b,,\n1,2,,\n3,4\n")
    info, frame, problems = read_all(path)
    assert info.headers == ["a", "b"]
    assert problems == []
    assert_frame(frame, expected_frame(["a", "b"], {2: ["1", "2"], 3: ["3", "4"]}))


def test_duplicate_headers_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        open_source(build(tmp_path, "duplicate_headers.csv"))
    assert "'Email' (columns B, D)" in str(err.value)
    assert err.value.row == 1


def test_title_rows_detected(tmp_path: Path) -> None:
    info, frame, _ = read_all(build(tmp_path, "title_rows.csv"))
    assert info.header_row == 4
    assert_frame(
        frame,
        expected_frame(
            ["name", "email", "phone", "city"],
            {
                5: ["Anna", "anna@example.com", "111", "Oslo"],
                7: ["Bob", "bob@example.com", "222", ""],
            },
        ),
    )


def test_header_row_option(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"x,y\na,b\n1,2\n")
    info, frame, _ = read_all(path, ReadOptions(header_row=2))
    assert (info.header_row, info.headers) == (2, ["a", "b"])
    assert_frame(frame, expected_frame(["a", "b"], {3: ["1", "2"]}))


@pytest.mark.parametrize("header_row", [9, 0])
def test_header_row_option_out_of_range(tmp_path: Path, header_row: int) -> None:
    path = write(tmp_path, "a.csv", b"a,b\n1,2\n")
    with pytest.raises(InputError, match="header_row"):
        open_source(path, ReadOptions(header_row=header_row))


def test_header_only_file_yields_no_chunks(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"a,b\n")
    with open_source(path) as reader:
        assert reader.headers == ["a", "b"]
        assert list(reader.chunks()) == []


# -- chunking ---------------------------------------------------------------------------------


def test_chunks_bounded_and_restartable(tmp_path: Path) -> None:
    body = "".join(f"{i},{'x' if i != 4 else 'x,extra'}\n" for i in range(2, 9))
    path = write(tmp_path, "a.csv", ("n,v\n" + body).encode())
    with open_source(path) as reader:
        chunks = list(reader.chunks(rows=3))
        again = list(reader.chunks(rows=100))
    assert [list(c.frame.index) for c in chunks] == [[2, 3], [5, 6, 7], [8]]
    assert [[p.row for p in c.problems] for c in chunks] == [[4], [], []]
    assert all(isinstance(c, Chunk) for c in chunks)
    assert list(again[0].frame.index) == [2, 3, 5, 6, 7, 8]
    with pytest.raises(ValueError):
        next(open_source(path).chunks(rows=0))


#: A UTF-8 CSV with every line end, blank and ragged rows, multi-line and non-ASCII cells.
SLICED = (
    'n,v,w\r\n1,é,a\r\n\r\n2,"x\r\ny",b\n3,王,c\r4,d\n , ,\n5,e,f,g\n6,,"q""\n"\n'
    + "".join(f"{i},v{i},w\n" for i in range(7, 30))
    + "30,last,row"
)


@pytest.mark.parametrize("block", [5, 1 << 20], ids=["tiny blocks", "one block"])
@pytest.mark.parametrize("start", ["", "\ufeff", "sep=,\r\n"], ids=["plain", "BOM", "sep"])
def test_a_utf8_csv_is_read_in_slices_exactly_as_in_chunks(tmp_path, monkeypatch, block, start):
    """The structure pass of a UTF-8 CSV notes where data rows begin; each slice, read in
    another process (here: pickled), is the chunk chunks() gives, whatever the chunk size
    (skipping from the place before it), the line ends, and blocks that cut lines anywhere."""
    monkeypatch.setattr(extract, "_LINE_BLOCK", block)
    monkeypatch.setattr(extract, "_MARK_ROWS", 4)
    path = write(tmp_path, "a.csv", (start + SLICED).encode())
    with open_source(path) as reader:
        for rows in (1, 3, 4, 5, 100):
            chunks = list(reader.chunks(rows=rows))
            slices = reader.slices(rows)
            assert slices is not None and len(slices) == len(chunks)
            for chunk, part in zip(chunks, slices, strict=True):
                read = pickle.loads(pickle.dumps(part)).read()
                assert read.frame.equals(chunk.frame) and read.problems == chunk.problems
                assert list(read.frame.index) == list(chunk.frame.index)
                assert part.rows == len(chunk.frame) + len(chunk.problems)
    assert [list(c.frame.index) for c in chunks] == [[2, 4, 5, 9, *range(10, 34)]]
    assert chunks[0].frame.loc[4, "v"] == "x\r\ny" and chunks[0].frame.loc[9, "w"] == 'q"\n'
    assert chunks[0].frame.loc[5, "v"] == "王" and chunks[0].frame.loc[33, "v"] == "last"
    assert [p.row for p in chunks[0].problems] == [6, 8]


def test_a_csv_in_another_encoding_is_not_sliced(tmp_path: Path) -> None:
    """Only a UTF-8 file is split into lines as bytes; any other is read in chunks here."""
    path = write(tmp_path, "a.csv", "n,v\n1,caf\xe9\n".encode("cp1252"))
    with open_source(path, ReadOptions(encoding="cp1252")) as reader:
        assert reader.slices() is None
        assert [list(c.frame["v"]) for c in reader.chunks()] == [["café"]]
    header_only = write(tmp_path, "b.csv", b"n,v\n")
    with open_source(header_only) as reader:
        assert reader.slices() == []


def test_an_input_error_raised_in_a_worker_reaches_the_main_process_whole() -> None:
    error = pickle.loads(pickle.dumps(InputError("a.csv", "cannot read the file", row=7)))
    assert (type(error), str(error), error.row, error.path, error.exit_code) == (
        InputError,
        "a.csv, row 7: cannot read the file",
        7,
        "a.csv",
        65,
    )


def test_problem_only_chunk_has_typed_empty_frame(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"a,b\n1,2,3\n")
    _, frame, problems = read_all(path)
    assert frame is not None and frame.empty
    assert list(frame.columns) == ["a", "b"]
    assert frame.index.name == "_source_row" and frame.index.dtype == "int64"
    assert [p.row for p in problems] == [2]


# -- Excel ------------------------------------------------------------------------------------


def test_xlsx_typed_cells(tmp_path: Path) -> None:
    info, frame, problems = read_all(build(tmp_path, "typed_cells.xlsx"))
    assert info.sheet == "Leads"
    columns = ["name", "phone", "signed", "called", "serial", "fraction", "vip", "at"]
    assert_frame(
        frame,
        expected_frame(
            columns,
            {
                2: [
                    "Anna",
                    "4155550221",
                    "2024-01-15",
                    "2024-03-10T14:30:00",
                    "45292",
                    "45292.75",
                    "TRUE",
                    "09:05:07",
                ],
                3: ["Bob", "00442079460011", "2024-02-29", "NA", "#N/A", "", "FALSE", ""],
                6: ["Dee", "61491570157", "", "", "123456789012345", "0.1", "", ""],
            },
        ),
    )
    assert problems == [
        RowProblem(
            4,
            "formula in column 'phone' (B) has no cached value",
            ("Cy", "", "", "", "", "", "", ""),
            ("phone",),
        )
    ]


def test_xlsx_sheet_by_name_and_index(tmp_path: Path) -> None:
    path = build(tmp_path, "typed_cells.xlsx")
    assert list_sheets(path) == ["Leads", "Other"]
    for sheet in ("Other", 1, " other "):
        info, frame, _ = read_all(path, ReadOptions(sheet=sheet))
        assert info.sheet == "Other"
        assert_frame(frame, expected_frame(["x", "y"], {2: ["1", "2"]}))


@pytest.mark.parametrize("sheet", ["Nope", 5])
def test_xlsx_unknown_sheet_lists_sheets(tmp_path: Path, sheet: str | int) -> None:
    with pytest.raises(InputError) as err:
        open_source(build(tmp_path, "typed_cells.xlsx"), ReadOptions(sheet=sheet))
    assert "'Leads', 'Other'" in str(err.value)


def test_xlsx_far_formatted_cell_is_fast(tmp_path: Path) -> None:
    path = build(tmp_path, "far_formatted_cell.xlsx")
    start = time.process_time()
    info, frame, problems = read_all(path)
    elapsed = time.process_time() - start
    assert elapsed < 0.5  # CPU seconds: a busy machine does not count
    assert info.headers == ["name", "phone"]
    assert problems == []
    assert_frame(
        frame,
        expected_frame(
            ["name", "phone"],
            {
                2: ["Person 0", "+14155550100"],
                3: ["Person 1", "+14155550101"],
                4: ["Person 2", "+14155550102"],
            },
        ),
    )


def test_xlsx_sparse_rows_title_and_empty_header_column(tmp_path: Path) -> None:
    info, frame, _ = read_all(build(tmp_path, "sparse_title.xlsx"))
    assert (info.sheet, info.header_row, info.headers) == ("Export", 3, ["name", "phone", "city"])
    assert_frame(
        frame,
        expected_frame(
            ["name", "phone", "city"],
            {4: ["Anna", "111", "Oslo"], 9: ["Bob", "222", ""], 1000: ["Cy", "", "Rome"]},
        ),
    )


def test_xlsx_header_cleaning_and_unnamed_column_with_values(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["\ufeffName ", None, " Phone", "Dup"])
    ws.append(["Anna", "note", 1.5, None])
    path = tmp_path / "h.xlsx"
    wb.save(path)
    wb.close()
    info, frame, _ = read_all(path)
    assert info.headers == ["Name", "column_2", "Phone", "Dup"]
    assert frame is not None and frame.loc[2].tolist() == ["Anna", "note", "1.5", ""]


def test_xlsx_duplicate_headers(tmp_path: Path) -> None:
    wb = Workbook()
    wb.active.append(["Email", "name", "EMAIL "])
    path = tmp_path / "d.xlsx"
    wb.save(path)
    wb.close()
    with pytest.raises(InputError, match=r"'Email' \(columns A, C\)"):
        open_source(path)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "TRUE"),
        (False, "FALSE"),
        (4155550221, "4155550221"),
        (4155550221.0, "4155550221"),
        (14155550222.0, "14155550222"),
        (45292.75, "45292.75"),
        (0.1, "0.1"),
        (-0.0, "0"),
        (dt.datetime(2024, 1, 15), "2024-01-15"),
        (dt.datetime(2024, 3, 10, 14, 30), "2024-03-10T14:30:00"),
        (dt.datetime(2024, 3, 10, 14, 30, 0, 250_000), "2024-03-10T14:30:00.250"),
        (dt.date(2024, 2, 29), "2024-02-29"),
        (dt.time(9, 5, 7), "09:05:07"),
        (dt.timedelta(hours=25, minutes=3), "25:03:00"),
        ("  text  ", "  text  "),
    ],
)
def test_cell_text(value: object, text: str) -> None:
    assert extract._cell_text(value) == text


@pytest.mark.parametrize(
    ("ctype", "value", "text"),
    [
        (xlrd.XL_CELL_EMPTY, "", ""),
        (xlrd.XL_CELL_TEXT, "NA", "NA"),
        (xlrd.XL_CELL_NUMBER, 4155550221.0, "4155550221"),
        (xlrd.XL_CELL_NUMBER, 45292.75, "45292.75"),
        (xlrd.XL_CELL_DATE, 45306.0, "2024-01-15"),
        (xlrd.XL_CELL_DATE, 45361.604166666664, "2024-03-10T14:30:00"),
        (xlrd.XL_CELL_DATE, 0.5, "12:00:00"),
        (xlrd.XL_CELL_BOOLEAN, 1, "TRUE"),
        (xlrd.XL_CELL_ERROR, 0x2A, "#N/A"),
    ],
)
def test_xls_cell_text(ctype: int, value: object, text: str) -> None:
    cell = SimpleNamespace(ctype=ctype, value=value)
    assert extract._xls_cell_text(cell, 0, xlrd) == text


# -- unreadable and hostile files -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(corpus.EXPECTED_ERRORS))
def test_hostile_files_refused_quickly(tmp_path: Path, name: str) -> None:
    path = build(tmp_path, name)
    start = time.process_time()
    with pytest.raises(InputError) as err:
        with open_source(path) as reader:
            list(reader.chunks())
    assert time.process_time() - start < 2
    assert corpus.EXPECTED_ERRORS[name] in str(err.value)
    assert str(path) in str(err.value)
    assert type(err.value) is InputError


def test_list_sheets_refuses_hostile_workbook(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="password"):
        list_sheets(build(tmp_path, "encrypted.xlsx"))


def test_workbook_named_csv_is_read_as_a_workbook(tmp_path: Path) -> None:
    real = build(tmp_path, "typed_cells.xlsx")
    path = write(tmp_path, "book.csv", real.read_bytes())
    with open_source(path) as named, open_source(real) as reader:
        assert named.headers == reader.headers  # read by its bytes (tests/test_extract_kinds.py)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputMissingError) as err:
        open_source(tmp_path / "nope.csv")
    assert err.value.exit_code == 66


@pytest.mark.parametrize(
    ("name", "data", "match"),
    [
        ("empty.csv", b"", "empty"),
        ("empty.xlsx", b"", "empty"),
        ("blank.csv", b"\n\n,,\n", "no rows"),
        ("a.json", b"{}", "unsupported file type"),
    ],
)
def test_unreadable_inputs(tmp_path: Path, name: str, data: bytes, match: str) -> None:
    with pytest.raises(InputError, match=match):
        open_source(write(tmp_path, name, data))


def test_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "x.csv"
    folder.mkdir()
    with pytest.raises(InputError, match="folder"):
        open_source(folder)


def test_public_surface() -> None:
    assert SUFFIXES == (".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".xls")
    assert extract.__all__ == sorted(extract.__all__)
    assert ReadOptions() == ReadOptions(None, None, None, None)
    with open_source(case("c01_na_names.csv")) as reader:
        assert isinstance(reader, SourceReader)


def test_corpus_is_reproducible(tmp_path: Path) -> None:
    first = corpus.build(tmp_path / "a")
    second = corpus.build(tmp_path / "b")
    for name, path in first.items():
        assert path.read_bytes() == second[name].read_bytes(), name


# -- Excel's "sep=" line and hidden sheets ------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "encoding"),
    [
        (b"sep=;\r\n", "utf-8"),
        (b"\xef\xbb\xbfsep=;\r\n", "utf-8-sig"),
        (b'"sep=;"\n', "utf-8"),
        (b"SEP=;\n", "utf-8"),
    ],
)
def test_excel_sep_line_names_the_delimiter_and_is_no_row(
    tmp_path: Path, first: bytes, encoding: str
) -> None:
    # Excel shows no row for "sep=;": the header is row 1, the blank record row 3, the
    # ragged record row 5, exactly as a person sees them.
    body = b"name;phone,ext\r\nAnn;+1 415,1\r\n\r\nBob;+1 416,2\r\nCy;1;2;3\r\n"
    path = write(tmp_path, "sep.csv", first + body)
    info, frame, problems = read_all(path)
    assert (info.delimiter, info.header_row, info.headers) == (";", 1, ["name", "phone,ext"])
    assert_frame(
        frame,
        expected_frame(["name", "phone,ext"], {2: ["Ann", "+1 415,1"], 4: ["Bob", "+1 416,2"]}),
    )
    assert [(p.row, p.message) for p in problems] == [(5, "4 fields, expected 2")]
    with open_source(path) as reader:
        assert reader.rows_total == 4


def test_sep_line_gives_way_to_read_delimiter_and_is_still_no_row(tmp_path: Path) -> None:
    path = write(tmp_path, "sep.csv", b"sep=;\nname,note\nAnn,a;b\n")
    info, frame, _ = read_all(path, ReadOptions(delimiter=","))
    assert (info.delimiter, info.headers) == (",", ["name", "note"])
    assert_frame(frame, expected_frame(["name", "note"], {2: ["Ann", "a;b"]}))


def test_a_sep_like_value_in_a_header_is_read_as_it_is(tmp_path: Path) -> None:
    path = write(tmp_path, "h.csv", b"sep=x,name\n1,Ann\n")  # a header, not Excel's line
    info, frame, _ = read_all(path)
    assert (info.delimiter, info.headers) == (",", ["sep=x", "name"])
    assert_frame(frame, expected_frame(["sep=x", "name"], {2: ["1", "Ann"]}))


@pytest.mark.parametrize("state", ["hidden", "veryHidden"])
def test_xlsx_first_visible_sheet_is_the_default(tmp_path: Path, state: str) -> None:
    book = Workbook()
    lookup = book.active
    lookup.title = "Lookup"
    lookup.append(["code", "country"])
    lookup.append(["DE", "Germany"])
    lookup.sheet_state = state
    leads = book.create_sheet("Leads")
    leads.append(["name", "phone"])
    leads.append(["Ann", "+44 20 7946 0001"])
    book.create_sheet("Notes").append(["later"])
    book.active = 1
    path = tmp_path / "hidden.xlsx"
    book.save(path)
    info, frame, _ = read_all(path)
    assert info.sheet == "Leads"
    assert_frame(frame, expected_frame(["name", "phone"], {2: ["Ann", "+44 20 7946 0001"]}))
    for sheet in ("Lookup", 0):  # read.sheet still chooses any sheet, hidden ones too
        info, frame, _ = read_all(path, ReadOptions(sheet=sheet))
        assert info.sheet == "Lookup"
        assert_frame(frame, expected_frame(["code", "country"], {2: ["DE", "Germany"]}))
    assert list_sheets(path) == ["Lookup", "Leads", "Notes"]


# Found by a new user in a trial run (were tests/test_regressions.py): each pinned through the
# CLI against the sandbox.


def test_rejects_of_a_sheet_with_title_rows_reimport_with_the_same_mapping(tmp_path: Path) -> None:
    mapping = ROOT / "mappings/accounts.Partners.yaml"  # read: {sheet: Partners, header_row: 3}
    env = {"PATH": "/usr/bin:/bin"}
    first = run_cli(
        ["validate", str(ROOT / "sample_data/accounts.xlsx"), "--mapping", str(mapping)],
        env,
        tmp_path / "r1",
        subprocess_mode=False,
    )
    assert first.code == 3
    for name in ("rejects.csv", "rejects.xlsx"):
        again = run_cli(
            ["validate", str(tmp_path / "r1" / name), "--mapping", str(mapping)],
            env,
            tmp_path / name,
            subprocess_mode=False,
        )
        assert again.code == 3, again.stderr
        assert again.summary()["rows_read"] == first.summary()["rows_rejected"]


def test_a_sheet_whose_xml_breaks_late_sends_nothing(sandbox: Any, tmp_path: Path) -> None:
    import zipfile

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["first_name", "last_name", "email", "phone", "timezone", "notes"])
    for i in range(10_050):
        sheet.append([f"A{i}", "B", f"a{i}@example.com", f"+1 415 555 {i % 10000:04d}", "", ""])
    good = tmp_path / "good.xlsx"
    book.save(good)
    broken = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(broken, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":  # an unclosed <c> at row 10,040
                at = data.index(b'<row r="10040"')
                data = data[:at] + b'<row r="10040"><c r="A10040"></row>' + data[at:]
            out.writestr(item, data)
    ran = run_cli(
        imp(tmp_path, source=broken), env_for(sandbox), tmp_path / "r", subprocess_mode=False
    )
    assert ran.code == 65
    assert re.fullmatch(
        f"Error: {re.escape(str(broken))}: sheet 'Sheet' is damaged: its XML breaks at line 1, "
        "column [0-9]+; open and save it again in Excel\n",
        ran.stderr,
    ), ran.stderr
    assert "POST /leads" not in state(sandbox)["requests"]


def test_a_formula_without_a_value_does_not_hide_the_other_faults(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["first_name", "last_name", "email", "phone", "timezone", "notes"])
    sheet.append(["Ann", "=A1&B1", "ann@", "+1 415 555 0101", "America/Chicago", "hi"])
    sheet.append(["Bob", "Ray", "bob@example.com", "+1 415 555 0102", "America/Chicago", "ok"])
    book.save(tmp_path / "f.xlsx")
    ran = run_cli(
        ["validate", str(tmp_path / "f.xlsx"), "--mapping", str(C01_MAP)],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert [(r["_source_row"], r["_errors"]) for r in ran.rejects()] == [
        (
            "2",
            "surname (last_name): required, but empty; "
            "email (email): 'ann@': not an e-mail address (nothing after @); "
            "row: formula in column 'last_name' (B) has no cached value",
        )
    ]
    assert [r["_source_row"] for r in ran.loaded()] == ["3"]


def test_a_rejects_file_is_read_back_with_our_own_options(tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.csv"
    rejects.write_text(
        "email,'=note,_source_file,_source_row,_errors\n"
        "'=1+1,x,leads.csv,7,email: not an address\n"
        "b@example.com,y,,,too many fields\n",
        encoding="utf-8",
    )
    other = tmp_path / "leads.csv"
    other.write_text("email,_source_file\na@example.com,x\n", encoding="utf-8")
    options = extract.rejects_read_options(rejects)
    assert options == ReadOptions(header_row=1, encoding="utf-8", delimiter=",")
    assert extract.rejects_read_options(other) is None
    assert extract.rejects_read_options(tmp_path / "missing.csv") is None
    with open_source(rejects, options) as reader:
        chunk = next(reader.chunks(rows=10))
        headers = extract.original_headers(reader)
    assert headers == ["email", "=note"]
    assert extract.rejects_origins(chunk) == {2: ("leads.csv", 7)}
    plain = extract.unescape_rejects(chunk).frame
    assert list(plain.columns) == ["email", "=note"]
    assert plain.to_dict("index") == {
        2: {"email": "=1+1", "=note": "x"},
        3: {"email": "b@example.com", "=note": "y"},
    }


def test_csv_watch_is_told_each_distinct_text_of_the_rows_that_become_frame_rows(
    tmp_path: Path,
) -> None:
    """While open_source checks a CSV's structure, a watched column's watcher is told each
    distinct text of the data rows that reach the frame (not the title rows, the header, blank
    rows, or a row of the wrong width) with its first row, until it says it has enough."""
    path = tmp_path / "w.csv"
    path.write_text(
        "Export of 2024-05-01\n"
        "Name,Zone,Signed\n"
        "Ann,Europe/Paris,a\n"
        ",,\n"
        'Bob,"Europe/\nParis",b\n'
        "Cy,Europe/Paris,x,extra\n"
        "Di,Europe/Rome,a\n"
        "Ed,,stop\n"
        "Fay,Asia/Tokyo,late\n",
        encoding="utf-8",
    )
    told: dict[str, list[tuple[str, int]]] = {"Zone": [], "Signed": []}

    def watchers(reader: SourceReader) -> dict[str, Any]:
        assert reader.headers == ["Name", "Zone", "Signed"]
        told["Zone"].clear()
        return {
            "Zone": lambda cell, row: told["Zone"].append((cell, row)) is not None,
            "Signed": lambda cell, row: told["Signed"].append((cell, row)) or cell == "stop",
            "Missing": lambda cell, row: True,
        }

    with open_source(path, watch=watchers) as reader:
        assert reader.header_row == 2
        assert reader.watched == {"Zone", "Signed"}
    _, frame, problems = read_all(path)
    assert told == {
        "Zone": [
            ("Europe/Paris", 3),
            ("Europe/\nParis", 5),
            ("Europe/Rome", 7),
            ("", 8),
            ("Asia/Tokyo", 9),
        ],
        "Signed": [("a", 3), ("b", 5), ("stop", 8)],
    }
    assert list(frame.index) == [3, 5, 7, 8, 9]
    assert [p.row for p in problems] == [6]


def _changed_message(path: Path, row: int, why: str) -> str:
    return (
        f"{path}, row {row}: the file changed while it was being read ({why}); nothing from "
        "here on was checked: run again once the file is complete and no longer being written"
    )


def test_a_slice_of_a_csv_changed_since_its_structure_pass_is_refused(tmp_path, monkeypatch):
    """A worker reads its slice at a byte offset the structure pass noted: if the file changed
    since (a cell made longer, a row cut, same size and time but rows moved), the read stops
    with an InputError naming the place, never rows read at the wrong place or numbered wrong."""
    monkeypatch.setattr(extract, "_MARK_ROWS", 1)
    body = "n,e\n" + "".join(f"N{i},u{i}@ex.com\n" for i in range(1, 13))
    path = write(tmp_path, "a.csv", body.encode())
    with open_source(path) as reader:
        slices = reader.slices(4)
        assert slices is not None and [s.row for s in slices] == [1, 5, 9]
        first = slices[0].read()
        assert list(first.frame.index) == [2, 3, 4, 5]
        path.write_bytes(body.replace("u3@ex.com", "u3-changed@ex.com").encode())
        with pytest.raises(InputError) as changed:
            slices[1].read()
        assert str(changed.value) == _changed_message(
            path, 6, "its size or modification time is not what it was"
        )
    # same size and modification time, but a row boundary moved: the noted offset is no line start
    path.write_bytes(body.encode())
    with open_source(path) as reader:
        slices = reader.slices(4)
        assert slices is not None
        stat = path.stat()
        path.write_bytes(body.replace("N1,u1", "N1,u1x").replace("N12,u12@", "N12,u12").encode())
        assert path.stat().st_size == stat.st_size
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        with pytest.raises(InputError) as moved:
            slices[1].read()
        assert str(moved.value) == _changed_message(path, 6, "a row no longer begins where it did")
    # rows cut off the end: fewer rows than the structure pass counted
    path.write_bytes(body.encode())
    with open_source(path) as reader:
        slices = reader.slices(4)
        assert slices is not None
        stat = path.stat()
        cut = body.encode()[: body.index("N11,")]
        path.write_bytes(cut + b"#" * (stat.st_size - len(cut)))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        with pytest.raises(InputError) as short:
            slices[2].read()
        assert str(short.value) == _changed_message(path, 10, "3 rows where 4 were counted")
