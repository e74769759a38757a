"""Real lead lists end to end: a German Excel CSV and a CRM export imported into the sandbox.

Each file is built here the way the program that writes it does (Excel's ``;`` and cp1252, a
CRM's title rows and footer), imported with the CLI, and the leads the sandbox received are
compared number by number and zone by zone: no lead goes out with a wrong number.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import openpyxl
from clitools import env_for, import_args, run_cli, state

from etl.pipeline import RunOptions, run

GERMAN_MAPPING = """\
project: Demo
campaign: Spring outreach
defaults:
  region: DE
  region_column: Land
  timezone: Europe/Berlin
  timezone_by_country: {DE: Europe/Berlin, FR: Europe/Paris}
key: [email]
fields: {name: Vorname, surname: Nachname, email: E-Mail}
phones:
  - {column: Telefon, label: main}
dynamicData:
  erstellt: {column: Erstellt am, type: date}
"""

GERMAN_ROWS = [
    ["Vorname", "Nachname", "E-Mail", "Telefon", "Land", "Erstellt am"],
    ["Amy", "Cole", "amy@example.co.uk", "07812 985479", "Großbritannien", "03.04.2024"],
    ["Ben", "Hart", "ben@example.co.uk", "020 7946 0958", "Vereinigtes Königreich", "13.01.2024"],
    ["Léa", "Roux", "lea@example.fr", "06 12 34 56 78", "Frankreich", "01.02.2024"],
    ["Jan", "Öst", "jan@example.de", "030 1234567", "Deutschland", "25.12.2023"],
    ["Uwe", "Kurz", "uwe@example.de", "0171\u00a01234567", "", "05.05.2024"],
    ["Eva", "Moor", "eva@example.co.uk", "07812 985470", "Grossbritannien", ""],
    ["Kai", "Bär", "kai@example.de", "06 12 34 56 79", "Kongo", "02.03.2024"],
    ["Ida", "Lang", "ida@example.de", "+44 20 7946 0961", "Kongo", ""],
]


def test_a_german_excel_csv_imports_with_no_wrong_number(sandbox: Any, tmp_path: Path) -> None:
    source = tmp_path / "kunden.csv"
    with open(source, "w", newline="", encoding="cp1252") as fh:
        csv.writer(fh, delimiter=";", lineterminator="\r\n").writerows(GERMAN_ROWS)
    mapping = tmp_path / "kunden.yaml"
    mapping.write_text(GERMAN_MAPPING, encoding="utf-8")
    ran = run_cli(
        import_args(tmp_path, source=source, mapping=mapping), env_for(sandbox), tmp_path / "r"
    )
    assert ran.code == 3, ran.stderr
    sent = {
        lead["email"]: (
            [p["number"] for p in lead["phones"]],
            lead["timezoneId"],
            lead.get("dynamicData", {}),
        )
        for lead in state(sandbox)["leads"]
    }
    assert sent == {
        "amy@example.co.uk": (["+447812985479"], "Europe/London", {"erstellt": "2024-04-03"}),
        "ben@example.co.uk": (["+442079460958"], "Europe/London", {"erstellt": "2024-01-13"}),
        "lea@example.fr": (["+33612345678"], "Europe/Paris", {"erstellt": "2024-02-01"}),
        "jan@example.de": (["+49301234567"], "Europe/Berlin", {"erstellt": "2023-12-25"}),
        "uwe@example.de": (["+491711234567"], "Europe/Berlin", {"erstellt": "2024-05-05"}),
        "eva@example.co.uk": (["+447812985470"], "Europe/London", {}),
        # a country cell that names no country: the number written with +44 still goes out
        "ida@example.de": (["+442079460961"], "Europe/London", {}),
    }
    assert [(r["_source_row"], r["_errors"]) for r in ran.rejects()] == [
        (
            "8",
            "phone (Telefon): '06 12 34 56 79': written without +country, and the country "
            "'Kongo' names more than one country (CD or CG); write the country as an ISO code "
            "(GB, DE, US) or the number with +country",
        )
    ]
    assert sum(len(ids) for ids in state(sandbox)["campaign_entries"].values()) == 7


CRM_MAPPING = """\
project: Demo
campaign: Spring outreach
defaults:
  region: US
  region_column: Country
  timezone: America/New_York
key: [email]
fields:
  name: First Name
  surname: Last Name
  email: Email
  timezoneId:
    column: Time Zone
    map: {EST: America/New_York, MESZ: Europe/Berlin}
phones:
  - {column: Mobile Phone, label: mobile}
"""

CRM_ROWS = [
    ("Ann", "Lee", "ann@example.com", "(212) 555-0142", "U.S.",
     "(GMT-05:00) Eastern Time (US & Canada)"),
    ("Bea", "Ruiz", "bea@example.mx", "044 33 2735 5743", "México",
     "Central Standard Time (Mexico)"),
    ("Cruz", "Vega", "cruz@example.mx", "+52 1 55 3320 5716", "Mexico",
     "(UTC-06:00) Guadalajara, Mexico City, Monterrey"),
    ("Dan", "Cole", "dan@example.co.uk", "07812 985479", "United Kingdom", "GMT Standard Time"),
    ("Eli", "Park", "eli@example.com", "\u200e+1 415 555 2671\u200f", "USA",
     "Pacific Standard Time"),
    ("Flo", "Hay", "flo@example.com", "646-555-0100", "usa", "EST"),
    ("Gil", "Roe", "gil@example.com", "(613) 555-0123", "Narnia", "Eastern Standard Time"),
    ("Hal", "Ng", "hal@example.co.uk", "+44 (0)20 7946 0958", "Great Britain", ""),
    ("Ivo", "Schmidt", "ivo@example.de", "030 1234567", "Deutschland", "MESZ"),
    ("Jo", "Diaz", "jo@example.mx", "045 55 1234 5678", "MX",
     "(UTC-05:00) Eastern Time (US & Canada)"),
]  # fmt: skip


def test_a_crm_export_imports_with_no_wrong_number(sandbox: Any, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Contacts: Active leads (Dynamics 365 export)"])
    sheet.append(["Exported 2026-11-30 by sales@example.com"])
    sheet.append([])
    sheet.append(["First Name", "Last Name", "Email", "Mobile Phone", "Country", "Time Zone"])
    for row in CRM_ROWS:
        sheet.append(list(row))
    sheet.append([])
    sheet.append(["Total: 10 contacts"])
    source = tmp_path / "export.xlsx"
    book.save(source)
    mapping = tmp_path / "crm.yaml"
    mapping.write_text(CRM_MAPPING, encoding="utf-8")
    ran = run_cli(
        import_args(tmp_path, source=source, mapping=mapping),
        env_for(sandbox),
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == 3, ran.stderr
    sent = {
        lead["email"]: ([p["number"] for p in lead["phones"]], lead["timezoneId"])
        for lead in state(sandbox)["leads"]
    }
    assert sent == {
        "ann@example.com": (["+12125550142"], "America/New_York"),
        "bea@example.mx": (["+523327355743"], "America/Mexico_City"),
        "cruz@example.mx": (["+525533205716"], "America/Mexico_City"),
        "dan@example.co.uk": (["+447812985479"], "Europe/London"),
        "eli@example.com": (["+14155552671"], "America/Los_Angeles"),
        "flo@example.com": (["+16465550100"], "America/New_York"),
        "hal@example.co.uk": (["+442079460958"], "Europe/London"),
        "ivo@example.de": (["+49301234567"], "Europe/Berlin"),
        "jo@example.mx": (["+525512345678"], "America/New_York"),
    }
    rejects = {r["_source_row"]: r["_errors"] for r in ran.rejects()}
    assert rejects["11"] == (
        "phone (Mobile Phone): '(613) 555-0123': written without +country, and the country "
        "'Narnia' is not a country name or code; write the country as an ISO code (GB, DE, US) "
        "or the number with +country"
    )
    assert ran.summary()["leads_created"] == 9


def test_a_date_column_order_is_decided_over_the_whole_run(tmp_path: Path) -> None:
    """The one value that shows the order is in the last chunk of the second file; the first
    file's ambiguous dates are still read day-first, and a file that disagrees is refused."""
    first = tmp_path / "a.csv"
    second = tmp_path / "b.csv"
    header = "First,Last,Email,Signed\n"
    first.write_text(header + "A,B,a@x.com,03/04/2024\nC,D,c@x.com,01/02/2024\n")
    second.write_text(header + "E,F,e@x.com,02/03/2024\nG,H,g@x.com,13/01/2024\n")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "project: 1\ndefaults: {timezone: Europe/Berlin}\n"
        "fields: {name: First, surname: Last, email: Email}\n"
        "dynamicData: {signed: {column: Signed, type: date}}\n"
    )
    options = RunOptions(
        sources=[first, second],
        mapping=mapping,
        command="validate",
        report_dir=tmp_path / "r",
        chunk_rows=1,
    )
    result = run(options)
    assert result.exit_code == 0, result.summary["error"]
    assert result.summary["rows_valid"] == 4

    third = tmp_path / "c.csv"
    third.write_text(header + "I,J,i@x.com,12/25/2023\n")
    mixed = run(
        RunOptions(
            sources=[first, second, third],
            mapping=mapping,
            command="validate",
            report_dir=tmp_path / "r2",
            chunk_rows=1,
        )
    )
    assert mixed.summary["rows_rejected"] == 5  # every year-last date of a mixed column
    with open(tmp_path / "r2" / "rejects.csv", newline="", encoding="utf-8") as fh:
        errors = [row["_errors"] for row in csv.DictReader(fh)]
    assert errors[0] == (
        "dynamicData.signed (Signed): '03/04/2024': the column mixes day-first dates "
        f"('13/01/2024' in {second} row 3) and month-first dates ('12/25/2023' in {third} "
        "row 2), so its dates cannot be trusted; write it as YYYY-MM-DD"
    )
