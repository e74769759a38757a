"""etl.report: formula guard, rejects and loaded files, summary and HTML."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
from clitools import ROOT, run_cli

from etl.errors import OutputError
from etl.report import ReportWriter, _tiles, escape_cell, is_rejects_file, unescape_cell
from etl.values import Caveat


@pytest.mark.parametrize("value", ["=1+1", "+14155550101", "-5", "@SUM(A1)", "\tx", "\rx"])
def test_dangerous_values_get_a_quote_and_lose_it_again(value: str) -> None:
    assert escape_cell(value) == "'" + value
    assert unescape_cell(escape_cell(value)) == value


@pytest.mark.parametrize("value", ["O'Brien", "'quoted'", "plain", "", "1.234,50"])
def test_safe_values_are_untouched(value: str) -> None:
    assert escape_cell(value) == value
    assert unescape_cell(value) == value


def test_writer_files(tmp_path: Path) -> None:
    writer = ReportWriter(tmp_path / "r", ["name", "phone"])
    writer.reject(
        "a.csv",
        3,
        {"name": "=cmd", "phone": "+1 415"},
        [
            ("email", "x", "email (Email): 'x': not an e-mail address (no @)"),
            ("phone", "", "phone (phone): required, but empty"),
        ],
    )
    writer.reject("a.csv", 4, ["only one"], [("row", "", "row: 1 fields, expected 2")])
    writer.loaded("a.csv", 2, "ann@example.com", 1001, "created", "c" * 24, "column")
    writer.finish(
        {
            "rows_read": 3,
            "rows_rejected": 2,
            "rows_valid": 1,
            "exit_code": 3,
            "dry_run": False,
            "command": "import",
            "sources": ["a.csv"],
            "started_at": "2026-11-30T00:00:00Z",
            "duration_seconds": 0.5,
            "rows_duplicate": 0,
            "leads_created": 1,
            "leads_updated": 0,
            "leads_unchanged": 0,
            "leads_failed": 0,
            "leads_ambiguous": 0,
            "campaign_entries_added": 1,
            "campaign_id": "c" * 24,
            "timezone_sources": {"column": 1},
            "files": [],
            "rows_per_second": 6,
            "error": "",
        },
        "project: 1\n",
    )
    with open(tmp_path / "r" / "rejects.csv", newline="", encoding="utf-8") as fh:
        rejects = list(csv.reader(fh))
    assert rejects == [
        ["name", "phone", "_source_file", "_source_row", "_errors"],
        [
            "'=cmd",
            "'+1 415",
            "a.csv",
            "3",
            "email (Email): 'x': not an e-mail address (no @); phone (phone): required, but empty",
        ],
        ["only one", "", "a.csv", "4", "row: 1 fields, expected 2"],
    ]
    assert is_rejects_file(rejects[0])
    with open(tmp_path / "r" / "loaded.csv", newline="", encoding="utf-8") as fh:
        assert list(csv.reader(fh)) == [
            [
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
            ],
            ["a.csv", "2", "ann@example.com", "1001", "created", "c" * 24, "column", ""] + [""] * 4,
        ]
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["errors_by_field"] == {"email": 1, "phone": 1, "row": 1}
    html = (tmp_path / "r" / "report.html").read_text()
    assert re.search(r'id="rows_rejected">2<', html)
    assert "&#39;x&#39;" in html or "&#x27;x&#x27;" in html  # values are escaped
    # self-contained: inline CSS and script, links only to the page's own glossary
    assert not re.search(r'src\s*=|href\s*=\s*"(?!#)|@import|url\(|https?://', html)


def test_unwritable_folder_is_exit_74(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError) as info:
        ReportWriter(tmp_path / "f" / "r", [])
    assert info.value.exit_code == 74


def _summary(**counts: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "rows_read": 0,
        "rows_rejected": 0,
        "rows_valid": 0,
        "exit_code": 3,
        "dry_run": False,
        "command": "validate",
        "sources": ["a.csv"],
        "started_at": "2026-11-30T00:00:00Z",
        "duration_seconds": 1.0,
        "rows_duplicate": 0,
        "leads_created": 0,
        "leads_updated": 0,
        "leads_unchanged": 0,
        "leads_failed": 0,
        "leads_ambiguous": 0,
        "campaign_entries_added": 0,
        "campaign_id": None,
        "files": [],
        "rows_per_second": 250,
        "error": "",
    }
    return {**base, **counts}


def _reject_lines(html: str) -> list[str]:
    body = html.split('<table id="rejects">', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr data-f=.*?</tr>", body)


def test_report_html_lists_every_reject_up_to_the_cap_and_says_so(tmp_path: Path) -> None:
    writer = ReportWriter(
        tmp_path / "all", ["first", "last", "email"], lead_columns=["first", "last", "email"]
    )
    capped = ReportWriter(tmp_path / "cap", ["email"], html_rejects=100)
    for row in range(2, 252):
        for w in (writer, capped):
            w.reject(
                "a.csv",
                row,
                {"first": f"Ann{row}", "last": "Lee", "email": f"bad{row}@"},
                [("email", f"bad{row}@", "email: bad")],
            )
    for w in (writer, capped):
        w.finish(_summary(rows_read=250, rows_rejected=250))
    html = (tmp_path / "all" / "report.html").read_text()
    lines = _reject_lines(html)
    assert len(lines) == 250 and 'id="capped"' not in html
    assert lines[0] == (
        '<tr data-f="email" data-r="email: bad"><td class="num">2</td><td>Ann2 Lee</td>'
        "<td>email</td><td><mark>bad2@</mark></td><td>email: bad</td></tr>"
    )
    assert 'aria-label="email: bad: 250"' in html
    small = (tmp_path / "cap" / "report.html").read_text()
    assert len(_reject_lines(small)) == 100
    assert "This page lists the first 100 of 250 rejected rows</strong> (at most 100)" in small
    assert "<mark>bad101@</mark>" in small and "<mark>bad102@</mark>" not in small
    assert "<td>bad2@</td>" not in small  # no name column mapped: the lead cell is empty
    assert '<td class="num">2</td><td></td>' in small


def test_rejects_come_before_warnings_and_warnings_are_grouped(tmp_path: Path) -> None:
    writer = ReportWriter(
        tmp_path / "r", ["first", "last", "email"], lead_columns=["first", "last", "email"]
    )
    writer.reject("a.csv", 9, ["", "", "x@", "extra"], [("row", "", "row: 4 fields, expected 3")])
    for row in range(2, 9):
        extension = Caveat(
            "phone (Mobile)",
            "phone (Mobile): extension … dropped",
            f"phone (Mobile): extension {row} dropped; name a dynamicData field for it with "
            "phones[0].extension",
            str(row),
        )
        zone = Caveat(
            "timezoneId",
            "timezoneId: … from the column, but the phone … is in …",
            f"timezoneId: America/Chicago from the column, but the phone +1415555010{row} is "
            "in America/Los_Angeles; kept the column's zone",
            "America/Chicago",
        )
        warnings = (extension, zone) if row < 4 else (extension,)
        writer.loaded("a.csv", row, f"p{row}@example.com", None, "valid", "", "column", warnings)
    writer.finish(_summary(rows_read=8, rows_rejected=1, rows_valid=7, rows_with_warnings=7))
    html = (tmp_path / "r" / "report.html").read_text()
    assert html.index('id="rejected"') < html.index('id="warnings"')
    assert "Valid, with a warning: 7 rows" in html
    warnings = html.split('id="warnings"', 1)[1].split("</section>", 1)[0]
    kinds = re.findall(r"<tr><td>(.*?)</td><td class=\"num\">(\d+)</td>", warnings)
    assert kinds == [
        ("phone (Mobile): extension … dropped", "7"),
        ("timezoneId: … from the column, but the phone … is in …", "2"),
    ]
    assert warnings.count("<div>a.csv row") == 3 + 2  # at most three examples a kind
    assert "a.csv row 2 (p2@example.com): phone (Mobile): extension 2 dropped" in warnings
    # loaded.csv's warnings cell: the messages joined with "; ", as they were written
    loaded = list(csv.DictReader((tmp_path / "r" / "loaded.csv").read_text("utf-8").splitlines()))
    assert [r["warnings"] for r in loaded[:2]] == [
        "phone (Mobile): extension 2 dropped; name a dynamicData field for it with "
        "phones[0].extension; timezoneId: America/Chicago from the column, but the phone "
        "+14155550102 is in America/Los_Angeles; kept the column's zone",
        "phone (Mobile): extension 3 dropped; name a dynamicData field for it with "
        "phones[0].extension; timezoneId: America/Chicago from the column, but the phone "
        "+14155550103 is in America/Los_Angeles; kept the column's zone",
    ]
    # the lead of a row that did not split into the header's fields is still named
    assert '<td class="num">9</td><td>x@</td><td>row</td>' in html


@pytest.mark.parametrize(
    ("command", "dry_run", "tiles", "words"),
    [
        (
            "validate",
            False,
            ["rows_read", "rows_valid", "rows_rejected", "rows_duplicate", "rows_with_warnings"],
            "Validation only: nothing was sent to the dialer.",
        ),
        (
            "import",
            True,
            [
                "rows_read",
                "rows_valid",
                "rows_rejected",
                "rows_duplicate",
                "leads_created",
                "leads_updated",
                "leads_unchanged",
                "campaign_entries_added",
            ],
            "A real import would create 5 leads, update 0 and leave 0 unchanged, and add 5 to "
            "the campaign.",
        ),
        (
            "import",
            False,
            [
                "rows_read",
                "rows_valid",
                "rows_rejected",
                "rows_duplicate",
                "leads_created",
                "leads_updated",
                "leads_unchanged",
                "leads_failed",
                "leads_ambiguous",
                "campaign_entries_added",
            ],
            "5 leads created, 0 updated, 0 unchanged, 5 added to the campaign.",
        ),
    ],
)
def test_the_page_says_what_the_command_decides_in_words(
    tmp_path: Path, command: str, dry_run: bool, tiles: list[str], words: str
) -> None:
    writer = ReportWriter(tmp_path / "r", ["email"])
    leads = 0 if command == "validate" else 5
    writer.finish(
        _summary(
            command=command,
            dry_run=dry_run,
            rows_read=5,
            rows_valid=5,
            exit_code=0,
            leads_created=leads,
            campaign_entries_added=leads,
            campaign_id="c" * 24,
            rows_with_warnings=0,
        )
    )
    html = (tmp_path / "r" / "report.html").read_text()
    counts = html.split('id="counts"', 1)[1].split("</section>", 1)[0]
    found = re.findall(r'<div class="n" id="(\w+)">(\d+)</div><div class="l">([^<]+)<', counts)
    assert [k for k, _, _ in found] == tiles
    labels = {k: label for k, _, label in found}
    if dry_run:
        assert labels["leads_created"] == "would create"
        assert labels["campaign_entries_added"] == "would add to campaign"
        assert "Dry run: nothing was sent to the dialer." in html
    assert words in html
    meaning = (
        "finished: every row is valid" if command == "validate" else "finished: every row was done"
    )
    assert f'<a class="g" href="#g-exit-code">Exit code</a> 0: {meaning}.' in html
    assert '<dt id="g-exit-code">exit code</dt>' in html


ROW_TILES = [
    ("rows_read", "rows read", 9, ""),
    ("rows_valid", "valid", 6, "ok"),
    ("rows_rejected", "rejected", 3, "bad"),
    ("rows_duplicate", "of them duplicates", 1, "warn"),
]
COUNTS = {"rows_read": 9, "rows_valid": 6, "rows_rejected": 3, "rows_duplicate": 1}
LEADS = {"leads_created": 4, "leads_updated": 1, "leads_unchanged": 1, "campaign_entries_added": 5}


@pytest.mark.parametrize(
    ("summary", "tiles"),
    [
        (
            {"command": "validate", "rows_with_warnings": 2},
            [("rows_with_warnings", "valid, with a warning", 2, "warn")],
        ),
        (  # a dry run for a campaign: failed and ambiguous only when not zero
            {"command": "import", "dry_run": True, "campaign_id": "c" * 24, **LEADS},
            [
                ("leads_created", "would create", 4, "ok"),
                ("leads_updated", "would update", 1, ""),
                ("leads_unchanged", "would leave unchanged", 1, ""),
                ("campaign_entries_added", "would add to campaign", 5, "ok"),
            ],
        ),
        (  # a dry run without a campaign, with failed and ambiguous leads
            {"command": "import", "dry_run": True, "leads_failed": 2, "leads_ambiguous": 1},
            [
                ("leads_created", "would create", 0, "ok"),
                ("leads_updated", "would update", 0, ""),
                ("leads_unchanged", "would leave unchanged", 0, ""),
                ("leads_failed", "failed", 2, "bad"),
                ("leads_ambiguous", "ambiguous", 1, "warn"),
            ],
        ),
        (  # an import: missing leads only when not zero
            {"command": "import", "dry_run": False, **LEADS},
            [
                ("leads_created", "created", 4, "ok"),
                ("leads_updated", "updated", 1, ""),
                ("leads_unchanged", "unchanged", 1, ""),
                ("leads_failed", "failed", 0, "bad"),
                ("leads_ambiguous", "ambiguous", 0, "warn"),
                ("campaign_entries_added", "added to campaign", 5, "ok"),
            ],
        ),
        (
            {"command": "import", "leads_failed": 3, "leads_missing": 3, "leads_ambiguous": 1},
            [
                ("leads_created", "created", 0, "ok"),
                ("leads_updated", "updated", 0, ""),
                ("leads_unchanged", "unchanged", 0, ""),
                ("leads_failed", "failed", 3, "bad"),
                ("leads_missing", "of them missing in the dialer", 3, "bad"),
                ("leads_ambiguous", "ambiguous", 1, "warn"),
                ("campaign_entries_added", "added to campaign", 0, "ok"),
            ],
        ),
    ],
    ids=["validate", "dry run, campaign", "dry run, failures", "import", "import, missing"],
)
def test_count_tiles_of_each_kind_of_run(
    summary: dict[str, Any], tiles: list[tuple[str, str, int, str]]
) -> None:
    assert _tiles({**COUNTS, **summary}) == ROW_TILES + tiles


def test_jargon_in_reasons_links_to_the_glossary(tmp_path: Path) -> None:
    writer = ReportWriter(tmp_path / "r", ["tz"])
    writer.reject(
        "a.csv",
        2,
        {"tz": "EST"},
        [("timezoneId", "EST", "timezoneId (tz): 'EST': an abbreviation, not an IANA zone")],
    )
    writer.finish(_summary(rows_read=1, rows_rejected=1))
    html = (tmp_path / "r" / "report.html").read_text()
    assert (
        "timezoneId (tz): &#39;EST&#39;: an abbreviation, not an "
        '<a class="g" href="#g-iana">IANA</a> zone' in html
    )
    assert '<dt id="g-iana">IANA</dt>' in html and '<dt id="g-e164">E.164</dt>' in html


# Found by a new user in a trial run (were tests/test_regressions.py): each pinned through the
# CLI against the sandbox.


def test_two_files_whose_headers_differ_in_case_share_rejects_columns(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("Email,first_name,last_name,phone\nbad@,A,B,+14155550101\n")
    (tmp_path / "b.csv").write_text(" EMAIL ,First_Name,Last_Name,Phone\nworse@,C,D,+14155550102\n")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "project: 1\ndefaults: {timezone: America/New_York}\n"
        "fields: {name: first_name, surname: last_name, email: email}\n"
        "phones: [{column: phone}]\n"
    )
    env = {"PATH": "/usr/bin:/bin"}
    ran = run_cli(
        ["validate", str(tmp_path / "*.csv"), "--mapping", str(mapping)],
        env,
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == 3
    with open(tmp_path / "r" / "rejects.csv", newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0] == [
        "Email",
        "first_name",
        "last_name",
        "phone",
        "_source_file",
        "_source_row",
        "_errors",
    ]
    assert [row[:4] for row in table[1:]] == [
        ["bad@", "A", "B", "'+14155550101"],
        ["worse@", "C", "D", "'+14155550102"],
    ]
    again = run_cli(
        ["validate", str(tmp_path / "r" / "rejects.csv"), "--mapping", str(mapping)],
        env,
        tmp_path / "r2",
        subprocess_mode=False,
    )
    assert again.code == 3 and again.summary()["rows_read"] == 2


def test_report_html_marks_values_and_charts_reasons(tmp_path: Path) -> None:
    ran = run_cli(
        [
            "validate",
            str(ROOT / "sample_data/leads.csv"),
            "--mapping",
            str(ROOT / "mappings/leads.yaml"),
        ],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "r",
        subprocess_mode=False,
    )
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "<td>email</td><td><mark>chloe.walker@</mark></td>" in html
    assert "<td>timezoneId</td><td><mark>Mars/Olympus</mark></td>" in html
    assert 'aria-label="key: duplicate: 3"' in html
    assert 'aria-label="phone: not a phone number: 3"' in html
    assert ran.summary()["rows_rejected"] == 22


def test_reasons_are_charted_by_the_kind_their_check_gave(tmp_path: Path) -> None:
    writer = ReportWriter(tmp_path / "r", ["email"])
    message = 'email (E): "o\'b@": not an e-mail address (nothing after @)'
    writer.reject(
        "a.csv", 2, {"email": "o'b@"}, [("email", "o'b@", message, "not an e-mail address")]
    )
    writer.reject("a.csv", 3, {"email": "x"}, [("key", "x", "key: x", "k" * 70)])
    writer.finish(_summary(rows_read=2, rows_rejected=2))
    html = (tmp_path / "r" / "report.html").read_text()
    assert 'aria-label="email: not an e-mail address: 1"' in html
    assert f'aria-label="key: {"k" * 60}: 1"' in html  # a chart shows 60 characters of a kind
    assert (tmp_path / "r" / "rejects.csv").read_text().splitlines()[1:] == [
        f'o\'b@,a.csv,2,"{message.replace(chr(34), chr(34) * 2)}"',
        "x,a.csv,3,key: x",
    ]


def test_loaded_valid_writes_the_bytes_and_counts_that_row_by_row_loaded_does(
    tmp_path: Path,
) -> None:
    from etl.calls import LeadWindow
    from etl.values import Caveat

    east = LeadWindow("America/New_York", "2026-12-01 10:00", "13:00-02:00", True)
    odd = LeadWindow("=Zone/Odd", "-1", "@", False)
    link = Caveat("timezoneId", "a link", "timezoneId: 'US/Eastern' is a link", "US/Eastern")
    ext = Caveat("phone (Mobile)", "extension dropped", "phone (Mobile): extension 9 dropped", "9")
    rows: list[tuple[int, str, str, tuple[Caveat, ...], Any]] = [
        (2, "+14155550101", "column", (), east),
        (3, "=cmd|' /C calc'!A0", "phone", (link,), east),
        (5, "'-5", "default", (ext, link), odd),
        (7, "plain@example.com", "\tcolumn", (link,), None),
        (8, "O'Brien", "", (), east),
    ]
    one = ReportWriter(tmp_path / "one", ["email"])
    for row, key, source, warnings, window in rows:
        one.loaded("a.csv", row, key, None, "valid", "", source, warnings, window=window)
    many = ReportWriter(tmp_path / "many", ["email"])
    many.loaded_valid("a.csv", rows[:2])
    many.loaded_valid("a.csv", [])
    many.loaded_valid("a.csv", rows[2:])
    for writer in (one, many):
        writer.close()
    written = (tmp_path / "many" / "loaded.csv").read_bytes()
    assert written == (tmp_path / "one" / "loaded.csv").read_bytes()
    assert written.decode().splitlines()[1:4] == [
        "a.csv,2,'+14155550101,,valid,,column,,America/New_York,2026-12-01 10:00,13:00-02:00,",
        "a.csv,3,'=cmd|' /C calc'!A0,,valid,,phone,timezoneId: 'US/Eastern' is a link,"
        "America/New_York,2026-12-01 10:00,13:00-02:00,",
        "a.csv,5,''-5,,valid,,default,phone (Mobile): extension 9 dropped; timezoneId: "
        "'US/Eastern' is a link,'=Zone/Odd,'-1,'@,",
    ]
    assert many.warning_kinds == one.warning_kinds and sum(many.warning_kinds.values()) == 4
    assert many.warning_examples == one.warning_examples


def _hostile_rows() -> list[tuple[int, dict[str, Any], list[tuple[str, str, str, str]]]]:
    """Rejected rows of one chunk (same columns) as a real list has them: quotes, line breaks,
    formula-looking cells, non-ASCII, empty cells; headers in another case than the writer's,
    two that fold alike (the last wins), one the writer does not list, one missing."""
    bad_mail = ("email", "x@", "email (E-mail): 'x@': not an e-mail address", "not an e-mail")
    no_phone = ("phone", "", "phone (Mobile): no dialable phone", "no dialable phone")
    dup = ("key", "a@b.c", "key: duplicate of row 2 (same email 'a@b.c')", "duplicate")
    cells = [
        (2, "Chloé", "x@", 'says "hi"\nthen, bye', [bad_mail]),
        (3, "'=x", "=1+1", None, [bad_mail, no_phone]),
        (5, "Müller\r\nO'Brien", "-5", "@SUM(A1)", [no_phone]),
        (8, "\tTab", "a@b.c", "", [dup]),
        (9, "日本語", "", "+14155550101", [bad_mail, dup]),
    ]
    return [
        (row, {"NAME": name, "e-mail": "old", " E-Mail ": mail, "Other": "x", "notes": note}, errs)
        for row, name, mail, note, errs in cells
    ]


def test_reject_rows_writes_the_bytes_and_counts_that_row_by_row_reject_does(
    tmp_path: Path,
) -> None:
    from openpyxl import load_workbook

    header = ["Name", "E-mail", "Notes", "Phone"]
    rows = _hostile_rows()
    unsplit = ["only", "=two", "three", "four", "five"]  # a row longer than the header
    one = ReportWriter(tmp_path / "one", header, xlsx=True, lead_columns=["Name", "", "E-mail"])
    many = ReportWriter(tmp_path / "many", header, xlsx=True, lead_columns=["Name", "", "E-mail"])
    for writer in (one, many):
        writer.html_rejects = 4
    for row, values, errors in rows[:2]:
        one.reject("a.csv", row, values, errors)
    one.reject("a.csv", 4, unsplit, [("row", "", "row: 5 fields, 3 expected", "fields")])
    for row, values, errors in rows[2:]:
        one.reject("a.csv", row, values, errors)

    def columns(part: list[Any]) -> dict[str, list[object]]:
        names = list(dict.fromkeys(k for _, values, _ in part for k in values))
        return {k: [values.get(k) for _, values, _ in part] for k in names}

    many.reject_rows(
        "a.csv", [r for r, _, _ in rows[:2]], columns(rows[:2]), [e for *_, e in rows[:2]]
    )
    many.reject("a.csv", 4, unsplit, [("row", "", "row: 5 fields, 3 expected", "fields")])
    many.reject_rows("a.csv", [], {}, [])
    many.reject_rows(
        "a.csv", [r for r, _, _ in rows[2:]], columns(rows[2:]), [e for *_, e in rows[2:]]
    )
    for writer in (one, many):
        writer.finish(_summary(rows_read=9, rows_rejected=6))
    written = (tmp_path / "many" / "rejects.csv").read_bytes()
    assert written == (tmp_path / "one" / "rejects.csv").read_bytes()
    assert written.decode().splitlines()[:4] == [
        "Name,E-mail,Notes,Phone,_source_file,_source_row,_errors",
        'Chloé,x@,"says ""hi""',
        "then, bye\",,a.csv,2,email (E-mail): 'x@': not an e-mail address",
        "''=x,'=1+1,,,a.csv,3,email (E-mail): 'x@': not an e-mail address; phone (Mobile): no "
        "dialable phone",
    ]
    assert many.errors_by_field == one.errors_by_field
    assert many.errors_by_reason == one.errors_by_reason
    assert many.first_rejects == one.first_rejects and len(many.first_rejects) == 4
    sheets = [
        [[c.value for c in r] for r in load_workbook(tmp_path / w / "rejects.xlsx").active.rows]
        for w in ("one", "many")
    ]
    assert sheets[0] == sheets[1] and len(sheets[0]) == 7


def test_an_import_writes_loaded_csv_in_batches_with_the_bytes_of_one_row_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """loaded() holds rows and writes them column by column (every LOADED_BATCH rows, before
    loaded_valid's rows, and at close): the file is what a csv writer gives for the same rows
    one at a time, each cell through escape_cell."""
    import io

    from etl import report
    from etl.calls import LeadWindow

    monkeypatch.setattr(report, "LOADED_BATCH", 3)
    east = LeadWindow("America/New_York", "2026-12-01 10:00", "13:00-02:00", True)
    odd = LeadWindow("=Zone/Odd", "-1", "@", False)
    link = Caveat("timezoneId", "a link", "timezoneId: 'US/Eastern' is a link", "US/Eastern")
    quoted = Caveat("load", "conflict", 'load: "name" differs,\nkept Müller', "x")
    calls: list[tuple[Any, ...]] = [
        (2, "a@b.c", 101, "created", "7", "column", (), east, ""),
        (3, "=1+1", 102, "updated", "7", "phone", (link,), odd, "callback created"),
        (4, "'=x", None, "ambiguous", "=7", "default", (quoted,), None, ""),
        (5, "日本語", 104, "unchanged", "7", "\tcolumn", (link, quoted), east, 'note "x"'),
        (6, "-5", 105, "missing", "", "", (), east, "@"),
        (7, "Chloé\r\nO'Brien", 106, "conflict", "7", "column", (quoted,), odd, ""),
        (9, "last@x.y", 107, "created", "7", "column", (), east, ""),
    ]
    writer = ReportWriter(tmp_path / "r", ["email"])
    for row, key, lead, action, campaign, source, warnings, window, extras in calls:
        writer.loaded(
            "a.csv",
            row,
            key,
            lead,
            action,
            campaign,
            source,
            warnings,
            ambiguous=action == "ambiguous",
            missing=action == "missing",
            window=window,
            extras=extras,
        )
    writer.loaded_valid("a.csv", [(10, "v@x.y", "column", (), east)])
    writer.close()
    expected = io.StringIO(newline="")
    out = csv.writer(expected)
    out.writerow(report.LOADED_COLUMNS)
    for row, key, lead, action, campaign, source, warnings, window, extras in calls:
        cells = [
            "a.csv",
            row,
            key,
            "" if lead is None else lead,
            action,
            campaign,
            source,
            "; ".join(w.message for w in warnings),
            window.zone if window else "",
            window.local_time if window else "",
            window.hours if window else "",
            extras,
        ]
        out.writerow([escape_cell(c) for c in cells])
    cells = ["a.csv", 10, "v@x.y", "", "valid", "", "column", "", east.zone, east.local_time]
    cells += [east.hours, ""]
    out.writerow([escape_cell(c) for c in cells])
    assert (tmp_path / "r" / "loaded.csv").read_bytes() == expected.getvalue().encode("utf-8")
    assert [a[1] for a in writer.ambiguous] == [4] and [m[1] for m in writer.missing] == [6]
    assert sum(writer.warning_kinds.values()) == 4
