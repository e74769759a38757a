"""etl.report: formula guard, rejects and loaded files, summary and HTML."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from etl.errors import OutputError
from etl.report import ReportWriter, escape_cell, is_rejects_file, unescape_cell


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
            ],
            ["a.csv", "2", "ann@example.com", "1001", "created", "c" * 24, "column", ""],
        ]
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["errors_by_field"] == {"email": 1, "phone": 1, "row": 1}
    html = (tmp_path / "r" / "report.html").read_text()
    assert re.search(r'id="rows_rejected">2<', html)
    assert "&#39;x&#39;" in html or "&#x27;x&#x27;" in html  # values are escaped
    assert "<script" not in html and "http://" not in html and "https://" not in html


def test_unwritable_folder_is_exit_74(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError) as info:
        ReportWriter(tmp_path / "f" / "r", [])
    assert info.value.exit_code == 74


def test_report_html_lists_the_first_200_rejects(tmp_path: Path) -> None:
    writer = ReportWriter(tmp_path / "r", ["email"])
    for row in range(2, 252):
        writer.reject(
            "a.csv", row, {"email": f"bad{row}@"}, [("email", f"bad{row}@", "email: bad")]
        )
    writer.finish(
        {
            "rows_read": 250,
            "rows_rejected": 250,
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
    )
    html = (tmp_path / "r" / "report.html").read_text()
    assert "Rejected rows (first 200 of 250)" in html
    assert "<mark>bad201@</mark>" in html and "<mark>bad202@</mark>" not in html
    assert 'aria-label="email: bad: 250"' in html
