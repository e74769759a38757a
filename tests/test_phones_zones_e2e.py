"""Phones, zones and e-mails end to end: the CLI imports into the sandbox and we read it back."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from clitools import SPRING, env_for, run_cli, state

MAPPING = """\
project: Demo
campaign: Spring outreach
defaults:
  region: US
  region_column: Country
  timezone: America/New_York
key: [email]
fields: {name: First, surname: Last, email: Email, timezoneId: Zone}
phones:
  - {column: Mobile, label: mobile}
  - {column: Office, label: work, extension: office_ext}
"""

ROWS = [
    # First, Last, Email, Mobile, Office, Country, Zone
    ("Ann", "Lee", " Ann.Lee@Example.COM\u00a0", "(415) 555-2671", "", "", "US/Pacific"),
    ("Ben", "Ode", "ben@example.com", "020 7946 0958", "", "United Kingdom", ""),
    (
        "Cy",
        "Moor",
        "cy@example.com",
        "0044 20 7946 0959",
        "+44 20 7946 0959",
        "44",
        "Europe/London",
    ),
    ("Dee", "Park", "dee@example.com", "415.555.0102 / 415.555.0103", "", "", "america/chicago"),
    ("Eve", "Ng", "eve@example.com", "0491 570 156", "", "AU", ""),
    ("Fay", "Ray", "fay@example.com", "tel:+1-212-555-0199", "(212) 555-0100 ext. 42", "", ""),
    ("Gus", "Ito", "gus@example.com", "TBD", "", "", "America/Denver"),
    ("Hal", "Roe", "hal@example.com", "4.15555E+09", "", "", "EST"),
    ("Ida", "Lam", "ida@example.com", "+44 20 7946 0960", "", "", "America/Chicago"),
    ("Jo", "Kim", "jo@example", "+49 30 23125226", "", "DE", "Europe/Kiev"),
]


def write(tmp_path: Path) -> tuple[Path, Path]:
    source = tmp_path / "leads.csv"
    with open(source, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["First", "Last", "Email", "Mobile", "Office", "Country", "Zone"])
        writer.writerows(ROWS)
    mapping = tmp_path / "m.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    return source, mapping


def test_phones_zones_and_provenance_through_the_sandbox(sandbox: Any, tmp_path: Path) -> None:
    source, mapping = write(tmp_path)
    ran = run_cli(
        [
            "import",
            str(source),
            "--mapping",
            str(mapping),
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
    leads = {lead["email"]: lead for lead in state(sandbox)["leads"]}
    got = {
        email: (
            [(p["number"], p["label"]) for p in lead.get("phones", [])],
            lead["timezoneId"],
            lead.get("dynamicData", {}),
        )
        for email, lead in leads.items()
    }
    assert got == {
        "ann.lee@example.com": ([("+14155552671", "mobile")], "America/Los_Angeles", {}),
        "ben@example.com": ([("+442079460958", "mobile")], "Europe/London", {}),
        "cy@example.com": ([("+442079460959", "mobile")], "Europe/London", {}),
        "dee@example.com": (
            [("+14155550102", "mobile"), ("+14155550103", "mobile")],
            "America/Chicago",
            {},
        ),
        "fay@example.com": (
            [("+12125550199", "mobile"), ("+12125550100", "work")],
            "America/New_York",
            {"office_ext": "42"},
        ),
        "ida@example.com": ([("+442079460960", "mobile")], "America/Chicago", {}),
    }
    loaded = {r["key"]: r for r in ran.loaded()}
    assert {k: (r["_source_row"], r["timezone_source"]) for k, r in loaded.items()} == {
        "ann.lee@example.com": ("2", "column"),
        "ben@example.com": ("3", "phone"),
        "cy@example.com": ("4", "column"),
        "dee@example.com": ("5", "column"),
        "fay@example.com": ("7", "phone"),
        "ida@example.com": ("10", "column"),
    }
    assert loaded["ida@example.com"]["warnings"] == (
        "timezoneId: America/Chicago from the column, but the phone +442079460960 is in "
        "Europe/London; kept the column's zone"
    )
    assert loaded["ann.lee@example.com"]["warnings"] == ""
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "Loaded, with a warning" in html and "kept the column&#39;s zone" in html
    assert "Spring outreach 65ef1a005d0de5000100003c" in html
    rejects = {int(r["_source_row"]): r["_errors"] for r in ran.rejects()}
    assert rejects == {
        6: "timezoneId (Zone): zone ambiguous: +61491570156 could be in Asia/Bangkok, "
        "Asia/Yangon, Australia/Adelaide, Australia/Brisbane, Australia/Eucla, "
        "Australia/Lord_Howe …; fill the time zone column (or set "
        "defaults.ambiguous_timezone: default)",
        8: "phone (Mobile): 'TBD': not a phone number (no digits)",
        9: "timezoneId (Zone): 'EST': an abbreviation, not an IANA zone; did you mean "
        "America/New_York or America/Toronto?; to fix every such row, add map: "
        "{EST: America/New_York} to fields.timezoneId; phone (Mobile): '4.15555E+09': "
        "precision lost: the number is in scientific notation (Excel shortened it); "
        "re-export the column as text",
        11: "email (Email): 'jo@example': not a valid e-mail address: "
        "The part after the @-sign is not valid. It should have a period.",
    }
    s = ran.summary()
    assert s["timezone_sources"] == {"column": 4, "phone": 2}
    assert s["phone_regions"] == {"US": 5, "GB": 3}
    assert s["rows_with_warnings"] == 2  # Ida, and Dee (a 415 number with a Chicago zone)
    assert (s["rows_read"], s["rows_rejected"], s["leads_created"]) == (10, 4, 6)
    assert s["errors_by_field"] == {"email": 1, "phone": 2, "timezoneId": 2}


def test_ambiguous_zone_policy_default(sandbox: Any, tmp_path: Path) -> None:
    source, mapping = write(tmp_path)
    mapping.write_text(
        MAPPING.replace(
            "  timezone: America/New_York\n",
            "  timezone: America/New_York\n  ambiguous_timezone: default\n",
        ),
        encoding="utf-8",
    )
    ran = run_cli(
        ["validate", str(source), "--mapping", str(mapping), "--campaign", SPRING],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "r",
        subprocess_mode=False,
    )
    loaded = {r["key"]: r for r in ran.loaded()}
    assert loaded["eve@example.com"]["timezone_source"] == "default"
    assert loaded["eve@example.com"]["warnings"] == (
        "timezoneId: +61491570156 could be in several zones; used America/New_York"
    )
    assert ran.summary()["rows_rejected"] == 3
