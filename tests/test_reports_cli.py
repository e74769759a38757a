"""Reports and the command-line experience: report.html, formula guards, the reject gate."""

from __future__ import annotations

import csv
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from clitools import CASES, ROOT, SPRING, env_for, run_cli, state

DANGEROUS = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tTAB", "\rCR"]


def test_report_html_numbers_match_the_summary_and_load_nothing(
    sandbox: Any, tmp_path: Path
) -> None:
    ran = run_cli(
        [
            "import",
            str(ROOT / "sample_data/leads.csv"),
            "--mapping",
            str(ROOT / "mappings/leads.yaml"),
            "--state",
            str(tmp_path / "s.sqlite"),
        ],
        env_for(sandbox),
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == 3
    s = ran.summary()
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    for name in (
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
    ):
        assert re.search(rf'id="{name}">{s[name]}<', html), name
    for field, count in s["errors_by_field"].items():  # the chart's bars
        assert re.search(rf'aria-label="{re.escape(field)}: {count}"', html), field
    for source, count in s["timezone_sources"].items():
        assert re.search(rf'aria-label="{source}: {count}"', html), source
    for region, count in s["phone_regions"].items():
        assert re.search(rf'aria-label="{region}: {count}"', html), region
    # the first rejected rows, their offending values highlighted
    assert "<mark>wyatt.brooks@</mark>" in html or "<mark>" in html
    first = ran.rejects()[0]
    lead = f"{first['First Name']} {first['Last Name']}".strip()
    assert f'<td class="num">{first["_source_row"]}</td><td>{lead}</td>' in html
    # self-contained: no external resource of any kind (links only to its own glossary)
    assert not re.search(r'src\s*=|href\s*=\s*"(?!#)|@import|url\(|https?://', html)
    assert ran.stdout.splitlines()[-2:] == [
        f"Report: {tmp_path / 'r' / 'report.html'}",
        "Exit code: 3 (finished, but some rows were rejected or refused: they are listed in "
        "rejects.csv)",
    ]


@pytest.mark.parametrize("value", DANGEROUS)
def test_no_csv_cell_can_run_as_a_formula(value: str, sandbox: Any, tmp_path: Path) -> None:
    source = tmp_path / "l.csv"
    with open(source, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(
            [
                ["first_name", "last_name", "email", "phone", "timezone", "notes"],
                ["Ann", "Lee", "ann@example.com", "+1 415 555 0101", "", value],  # loads
                ["Bob", value, "bob@", "+1 415 555 0102", "", value],  # rejected
            ]
        )
    ran = run_cli(
        [
            "import",
            str(source),
            "--mapping",
            str(CASES / "c01_na_names.yaml"),
            "--campaign",
            SPRING,
            "--state",
            str(tmp_path / "s.sqlite"),
        ],
        env_for(sandbox),
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == 3, ran.stderr
    for name in ("rejects.csv", "loaded.csv"):
        with open(tmp_path / "r" / name, newline="", encoding="utf-8") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (name, cell)
    bob = ran.rejects()[0]
    assert bob["last_name"] == "'" + value and bob["notes"] == "'" + value
    assert bob["phone"] == "'+1 415 555 0102"
    ann = next(lead for lead in state(sandbox)["leads"] if lead["email"] == "ann@example.com")
    assert ann["comments"][0]["text"] == value.strip()  # sent as typed (trimmed), not escaped


def test_rejects_xlsx_has_text_cells_only_and_reimports(sandbox: Any, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Leads"
    sheet.append(["first_name", "last_name", "email", "phone", "timezone", "notes"])
    sheet.append(["Ann", "Lee", "ann@example.com", 4155550101, "America/Chicago", "ok"])
    for i, value in enumerate(DANGEROUS):
        sheet.append([f"P{i}", "Roe", f"p{i}@", f"+1 415 555 01{10 + i}", "", value])
        sheet.cell(sheet.max_row, 6).data_type = "s"  # text as typed, not a formula
    source = tmp_path / "list.xlsx"
    book.save(source)
    mapping = CASES / "c01_na_names.yaml"
    args = [
        "import",
        str(source),
        "--mapping",
        str(mapping),
        "--campaign",
        SPRING,
        "--state",
        str(tmp_path / "s.sqlite"),
    ]
    ran = run_cli(args, env_for(sandbox), tmp_path / "r", subprocess_mode=False)
    assert ran.code == 3
    xml = zipfile.ZipFile(tmp_path / "r" / "rejects.xlsx").read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "<f " not in xml
    rejects = openpyxl.load_workbook(tmp_path / "r" / "rejects.xlsx")
    rows = list(rejects.active.iter_rows(values_only=True))
    assert rows[0] == (
        "first_name",
        "last_name",
        "email",
        "phone",
        "timezone",
        "notes",
        "_source_file",
        "_source_row",
        "_errors",
    )
    # text exactly as typed (XML stores a carriage return inside a cell as a line feed)
    assert [r[5] for r in rows[1:]] == [v.replace("\r", "\n") for v in DANGEROUS]
    assert all(c.data_type == "s" for row in rejects.active.iter_rows() for c in row if c.value)
    rejects.close()
    # Fix the e-mails in the workbook and import it back with the same mapping.
    fixed = openpyxl.load_workbook(tmp_path / "r" / "rejects.xlsx")
    for row in fixed.active.iter_rows(min_row=2):
        row[2].value = row[2].value + "example.com"
    fixed.save(tmp_path / "fixed.xlsx")
    again = run_cli(
        ["import", str(tmp_path / "fixed.xlsx"), *args[2:]],
        env_for(sandbox),
        tmp_path / "r2",
        subprocess_mode=False,
    )
    assert again.code == 0, again.stderr
    notes = {
        lead["email"]: lead.get("comments", [{}])[0].get("text") for lead in state(sandbox)["leads"]
    }
    assert [notes[f"p{i}@example.com"] for i in range(len(DANGEROUS))] == [
        v.strip() for v in DANGEROUS
    ]


def test_max_reject_rate_sends_nothing_above_the_gate(sandbox: Any, tmp_path: Path) -> None:
    args = [
        "import",
        str(CASES / "c12_ragged_rows.csv"),
        "--mapping",
        str(CASES / "c12_ragged_rows.yaml"),
        "--campaign",
        SPRING,
        "--state",
        str(tmp_path / "s.sqlite"),
    ]
    closed = run_cli([*args, "--max-reject-rate", "30"], env_for(sandbox), tmp_path / "r1")
    assert closed.code == 3
    assert (
        "2 of 5 rows rejected (40.0%), more than --max-reject-rate 30%: nothing was sent"
        in closed.stderr
    )
    assert all(k.startswith("GET ") for k in state(sandbox)["requests"])
    s = closed.summary()
    assert (s["rows_rejected"], s["leads_created"], s["exit_code"]) == (2, 0, 3)
    assert len(closed.rejects()) == 2 and closed.loaded() == []
    opened = run_cli([*args, "--max-reject-rate", "40"], env_for(sandbox), tmp_path / "r2")
    assert opened.code == 3
    assert opened.summary()["leads_created"] == 3


def test_quiet_cron_run_prints_nothing_on_success(sandbox: Any, tmp_path: Path) -> None:
    args = [
        "import",
        str(CASES / "c01_na_names.csv"),
        "--mapping",
        str(CASES / "c01_na_names.yaml"),
        "--state",
        str(tmp_path / "s.sqlite"),
        "-q",
    ]
    ok = run_cli(args, env_for(sandbox), tmp_path / "r1")
    assert (ok.code, ok.stdout, ok.stderr) == (0, "", "")
    bad = run_cli(
        [
            "import",
            str(CASES / "c12_ragged_rows.csv"),
            "--mapping",
            str(CASES / "c12_ragged_rows.yaml"),
            "--state",
            str(tmp_path / "s.sqlite"),
            "-q",
        ],
        env_for(sandbox),
        tmp_path / "r2",
    )
    assert bad.code == 3 and "rows rejected" in bad.stdout  # cron mails on trouble


def test_validate_prints_the_per_field_error_table(tmp_path: Path) -> None:
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
    assert ran.code == 3
    table = {m.group(1): int(m.group(2)) for m in re.finditer(r"│ (\S+)\s+│\s+(\d+) │", ran.stdout)}
    want = json.loads((tmp_path / "r" / "summary.json").read_text())["errors_by_field"]
    assert {k: v for k, v in table.items() if k in want} == want
