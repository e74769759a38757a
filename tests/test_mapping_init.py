"""Tests for etl.mapping_init: the starter mapping ``voiptime-etl mapping-init`` prints."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pytest
import yaml
from clitools import ROOT, SPRING, run_cli

from etl.errors import EXIT_CONFIG, InputMissingError, MappingError
from etl.extract import ReadOptions, open_source
from etl.mapping import (
    ColumnSpec,
    CommentSpec,
    Defaults,
    PhoneSpec,
    load_mapping,
    parse_mapping,
)
from etl.mapping_init import starter_mapping
from etl.plan import resolve_columns

SAMPLES = ROOT / "sample_data"
CASES = ROOT / "tests" / "data" / "cases"
EXPECTED = json.loads((SAMPLES / "expected.json").read_text(encoding="utf-8"))
OFFLINE = {"PATH": "/usr/bin:/bin"}


def write_csv(
    path: Path, rows: list[list[str]], encoding: str = "utf-8", delimiter: str = ","
) -> Path:
    with open(path, "w", newline="", encoding=encoding) as fh:
        csv.writer(fh, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return path


def guessed(path: Path, **kwargs: object) -> dict[str, object]:
    """The starter mapping of ``path`` as parsed YAML."""
    data = yaml.safe_load(starter_mapping(path, **kwargs))  # type: ignore[arg-type]
    assert isinstance(data, dict)
    return data


def check_loads(text: str, source: Path, tmp_path: Path, sheet: str | None = None) -> None:
    """The text loads as a mapping and every mapped column is a header of ``source``."""
    file = tmp_path / "starter.yaml"
    file.write_text(text, encoding="utf-8")
    mapping = load_mapping(file)
    options = ReadOptions(sheet=mapping.read.sheet if mapping.read.sheet is not None else sheet)
    with open_source(source, options) as reader:
        resolved = resolve_columns(mapping, reader.headers, str(source))
    assert set(resolved) == {column for _, column in mapping.columns()}


# --- the two worked examples ----------------------------------------------------------------------

GERMAN_ROWS = [
    ["Vorname", "Nachname", "E-Mail", "Handy", "TZ", "Firma", "Notiz", "Fax"],
    ["Lena", "Hoffmann", "lena.hoffmann@example.com", "030 23125001", "Europe/Berlin",
     "Müller & Söhne GmbH", "Rückruf, bitte vormittags", ""],
    ["Jonas", "Becker", "jonas.becker@example.com", "+49 69 90009123", "Europe/Berlin",
     "Acme AG", "", ""],
    ["Marie", "Schulz", "marie.schulz@example.com", "+44 20 7946 0013", "Europe/London",
     "", "", ""],
]  # fmt: skip

GERMAN_EXPECTED = """\
# Starter mapping for de.csv
# guessed by voiptime-etl mapping-init from its headers and first 3 rows.
# Check each 'guessed' line and set the project, then try it with
#   voiptime-etl validate SOURCE --mapping THIS_FILE
project: 1                          # TODO: set it (voiptime-etl projects)
# status: New                       # optional (voiptime-etl statuses PROJECT)
# source: Web form                  # optional (voiptime-etl sources PROJECT)
# campaign: Spring outreach         # optional (voiptime-etl campaigns)
defaults:
  region: DE                        # guessed: the country of Europe/Berlin, the most common zone
  timezone: Europe/Berlin           # guessed: most common in "TZ" (2 of 3)
key: [email]                        # what identifies a lead across rows and runs
fields:
  name: Vorname                     # guessed: "Vorname" means the first name
  surname: Nachname                 # guessed: "Nachname" means the surname
  email: E-Mail                     # guessed: "E-Mail" means the e-mail
  timezoneId: TZ                    # guessed: "TZ" means the time zone
phones:
  - {column: Handy, label: mobile}  # guessed: "Handy" means a mobile phone
dynamicData:                        # custom fields: rename or drop as you need
  firma: Firma
comments:
  - {column: Notiz}                 # guessed: "Notiz" means a note
# Not mapped, empty in the rows looked at: "Fax"
"""

FRENCH_ROWS = [
    ["Prénom", "Nom", "Courriel", "Portable", "Pays", "Société", "Date de création"],
    ["Hélène", "Dupont", "hdupont@example.org", "01 99 00 12 34", "France", "Larkspur SAS",
     "2025-12-16"],
    ["Jules", "Leroy", "jleroy@example.com", "05 36 49 58 52", "FR", "Bluepeak SAS", "46000"],
    ["Oliver", "Green", "oliver.green@example.org", "020 7946 0018", "GB", "", "2024-02-30"],
    ["Chloé", "Martin", "chloe.martin@example.net", "+33 4 65 71 23 45", "33", "", ""],
    ["Léa", "Petit", "lea.petit@example.com", "03 53 01 11 22", "FR", "", "2026-01-05"],
    ["Hugo", "Bernard", "hugo.bernard@example.com", "04 65 71 33 44", "FR", "", "2023-06-30"],
]  # fmt: skip

FRENCH_EXPECTED = """\
# Starter mapping for fr.csv
# guessed by voiptime-etl mapping-init from its headers and first 6 rows.
# Check each 'guessed' line and set the project, then try it with
#   voiptime-etl validate SOURCE --mapping THIS_FILE
project: 1                             # TODO: set it (voiptime-etl projects)
# status: New                          # optional (voiptime-etl statuses PROJECT)
# source: Web form                     # optional (voiptime-etl sources PROJECT)
# campaign: Spring outreach            # optional (voiptime-etl campaigns)
defaults:
  region: FR                           # guessed: most common in "Pays" (5 of 6)
  region_column: Pays                  # guessed: 100% of sampled values are countries
  timezone: Europe/Paris               # guessed: the main zone of FR
key: [email]                           # what identifies a lead across rows and runs
fields:
  name: Prénom                         # guessed: "Prénom" means the first name
  surname: Nom                         # guessed: "Nom" means the surname
  email: Courriel                      # guessed: "Courriel" means the e-mail
  # timezoneId: COLUMN                 # no zone column found: zones come from phones or default
phones:
  - {column: Portable, label: mobile}  # guessed: "Portable" means a mobile phone
dynamicData:                           # custom fields: rename or drop as you need
  societe: Société
  # guessed: 80% of sampled values are dates
  date_de_creation: {column: Date de création, type: date}
"""


def test_german_headers_exact_text(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "de.csv", GERMAN_ROWS)
    text = starter_mapping(source)
    assert text == GERMAN_EXPECTED
    check_loads(text, source, tmp_path)
    mapping = parse_mapping(yaml.safe_load(text))
    assert mapping.phones == (PhoneSpec("Handy", "mobile"),)
    assert mapping.comments == (CommentSpec("Notiz"),)
    assert mapping.defaults == Defaults("DE", None, "Europe/Berlin")


def test_german_mapping_validates_every_row(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "de.csv", GERMAN_ROWS)
    mapping = tmp_path / "de.yaml"
    mapping.write_text(starter_mapping(source), encoding="utf-8")
    ran = run_cli(
        ["validate", str(source), "--mapping", str(mapping), "--campaign", SPRING],
        OFFLINE,
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == 0, ran.stderr
    assert ran.summary()["rows_valid"] == 3


def test_french_headers_exact_text(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "fr.csv", FRENCH_ROWS)
    text = starter_mapping(source)
    assert text == FRENCH_EXPECTED
    check_loads(text, source, tmp_path)


def test_french_mapping_parsed(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "fr.csv", FRENCH_ROWS)
    mapping = parse_mapping(yaml.safe_load(starter_mapping(source)), "fr.yaml")
    assert mapping.project == 1
    assert mapping.campaign is None
    assert mapping.key == ("email",)
    assert mapping.defaults == Defaults("FR", "Pays", "Europe/Paris")
    assert mapping.fields == {
        "name": ColumnSpec("Prénom"),
        "surname": ColumnSpec("Nom"),
        "email": ColumnSpec("Courriel"),
    }
    assert mapping.phones == (PhoneSpec("Portable", "mobile"),)
    assert mapping.dynamic == {
        "societe": ColumnSpec("Société"),
        "date_de_creation": ColumnSpec("Date de création", "date"),
    }
    assert mapping.comments == ()


def test_french_mapping_rejects_only_the_bad_date(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "fr.csv", FRENCH_ROWS)
    mapping = tmp_path / "fr.yaml"
    mapping.write_text(starter_mapping(source), encoding="utf-8")
    ran = run_cli(
        ["validate", str(source), "--mapping", str(mapping), "--campaign", SPRING],
        OFFLINE,
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == 3, ran.stderr
    rejects = ran.rejects()
    assert [r["_source_row"] for r in rejects] == ["4"]
    assert "date_de_creation" in rejects[0]["_errors"]


# --- required fields ---------------------------------------------------------------------------


def test_required_fields_missing_raise_mapping_error(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "people.csv",
        [["Full Name", "Telefon", "Stadt"], ["Anna Lee", "+44 20 7946 0011", "Oslo"]],
    )
    with pytest.raises(MappingError) as info:
        starter_mapping(source)
    err = info.value
    assert err.exit_code == EXIT_CONFIG
    assert err.path == str(source)
    columns = "the file's columns: 'Full Name', 'Telefon', 'Stadt'"
    assert err.problems == [
        "fields.name: no column looks like a first name (headers such as First Name, fname, "
        f"Given name, Vorname, Prénom); {columns}",
        "fields.surname: no column looks like a surname (headers such as Last Name, lname, "
        f"Surname, Nachname, Nom, Apellido); {columns}",
        "fields.email: no column looks like an e-mail address (headers such as Email, E-mail, "
        f"Mail, Courriel); {columns}",
    ]


def test_only_the_missing_field_is_named(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "a.csv", [["First Name", "Email", "City"], ["A", "a@b.co", "X"]])
    with pytest.raises(MappingError) as info:
        starter_mapping(source)
    assert [p.split(":")[0] for p in info.value.problems] == ["fields.surname"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputMissingError):
        starter_mapping(tmp_path / "nope.csv")


def test_sample_rows_must_be_positive(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "a.csv", [["First Name", "Last Name", "Email"]])
    with pytest.raises(ValueError, match="sample_rows"):
        starter_mapping(source, sample_rows=0)


# --- the sample files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "sheet", "expected"),
    [
        ("leads.csv", None, "leads.csv"),
        ("accounts.xlsx", "Leads", "accounts.xlsx#Leads"),
        ("accounts.xlsx", "Partners", "accounts.xlsx#Partners"),
    ],
)
def test_sample_file_validates_with_the_same_rejects(
    tmp_path: Path, source: str, sheet: str | None, expected: str
) -> None:
    path = SAMPLES / source
    text = starter_mapping(path, sheet=sheet)
    mapping_file = tmp_path / "starter.yaml"
    mapping_file.write_text(text, encoding="utf-8")
    mapping = load_mapping(mapping_file)
    assert mapping.phones, "the phones must be mapped"
    assert mapping.defaults.region_column is not None
    ran = run_cli(
        ["validate", str(path), "--mapping", str(mapping_file), "--campaign", SPRING],
        OFFLINE,
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code in (0, 3), ran.stderr
    want = EXPECTED[expected]
    summary = ran.summary()
    for key in ("rows_read", "rows_valid", "rows_rejected", "rows_duplicate"):
        assert summary[key] == want[key], key
    assert sorted(int(r["_source_row"]) for r in ran.rejects()) == sorted(
        int(row) for row in want["rejected_rows"]
    )


LEADS_CSV_EXPECTED = """\
# Starter mapping for leads.csv
# guessed by voiptime-etl mapping-init from its headers and first 200 rows.
# Check each 'guessed' line and set the project, then try it with
#   voiptime-etl validate SOURCE --mapping THIS_FILE
project: 1                                    # TODO: set it (voiptime-etl projects)
# status: New                                 # optional (voiptime-etl statuses PROJECT)
# source: Web form                            # optional (voiptime-etl sources PROJECT)
# campaign: Spring outreach                   # optional (voiptime-etl campaigns)
defaults:
  region: US                                  # guessed: most common in "Country" (81 of 195)
  region_column: Country                      # guessed: 100% of sampled values are countries
  timezone: America/New_York                  # guessed: most common in "Time Zone" (30 of 186)
key: [email]                                  # what identifies a lead across rows and runs
fields:
  name: First Name                            # guessed: "First Name" means the first name
  surname: Last Name                          # guessed: "Last Name" means the surname
  email: Email                                # guessed: "Email" means the e-mail
  timezoneId: Time Zone                       # guessed: "Time Zone" means the time zone
phones:
  - {column: Mobile, label: mobile}           # guessed: "Mobile" means a mobile phone
  - {column: Office Phone, label: work}       # guessed: "Office Phone" means a work phone
dynamicData:                                  # custom fields: rename or drop as you need
  company: Company
  job_title: Job Title
  city: City
  deal_value: Deal Value
  signed_up: {column: Signed Up, type: date}  # guessed: 99% of sampled values are dates
comments:
  - {column: Notes}                           # guessed: "Notes" means a note
"""


def test_leads_csv_exact_text() -> None:
    assert starter_mapping(SAMPLES / "leads.csv") == LEADS_CSV_EXPECTED


def test_partners_sheet_pins_sheet_and_header_row() -> None:
    data = guessed(SAMPLES / "accounts.xlsx", sheet="Partners")
    assert data["read"] == {"sheet": "Partners", "header_row": 3}
    assert data["fields"] == {
        "name": "Contact First",
        "surname": "Contact Last",
        "email": "Work Email",
        "timezoneId": "TZ",
    }
    assert data["phones"] == [
        {"column": "Direct Line", "label": "work"},
        {"column": "Mobile", "label": "mobile"},
    ]
    assert data["dynamicData"] == {
        "partner_company": "Partner Company",
        "partner_tier": "Partner Tier",
        "partner_since": {"column": "Partner Since", "type": "date"},
    }
    assert data["comments"] == [{"column": "Comments"}]
    assert data["defaults"] == {
        "region": "US",
        "region_column": "Region",
        "timezone": "Europe/London",
    }


def test_leads_sheet_needs_no_read_block_and_employees_stay_text() -> None:
    for sheet in (None, "Leads", 0):
        data = guessed(SAMPLES / "accounts.xlsx", sheet=sheet)
        assert "read" not in data
        assert data["dynamicData"] == {
            "account": "Account",
            "employees": "Employees",
            "renewal_date": {"column": "Renewal Date", "type": "date"},
        }
        assert data["phones"] == [{"column": "Phone", "label": "main"}]


def test_second_sheet_with_header_on_row_one_is_pinned(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.title = "Intro"
    book.active.append(["nothing here"])
    sheet = book.create_sheet("2024")
    sheet.append(["fname", "lname", "Mail", "Cell"])
    sheet.append(["Ann", "Lee", "ann@example.com", "+1 415 555 0101"])
    path = tmp_path / "book.xlsx"
    book.save(path)
    text = starter_mapping(path, sheet=1)
    assert "  sheet: '2024'\n  header_row: 1\n" in text
    data = yaml.safe_load(text)
    assert data["read"] == {"sheet": "2024", "header_row": 1}
    check_loads(text, path, tmp_path)


@pytest.mark.parametrize(
    ("case", "rejected"),
    [
        ("c01_na_names.csv", 0),
        ("c03_bom_quoted_header.csv", 0),
        ("c05_semicolon_de.csv", 0),
        ("c07_excel_dates.xlsx", 1),
        ("c12_ragged_rows.csv", 2),
        ("c16_numeric_phones.xlsx", 1),
    ],
)
def test_worked_cases_validate_as_their_hand_mappings(
    tmp_path: Path, case: str, rejected: int
) -> None:
    mapping_file = tmp_path / "starter.yaml"
    mapping_file.write_text(starter_mapping(CASES / case), encoding="utf-8")
    ran = run_cli(
        ["validate", str(CASES / case), "--mapping", str(mapping_file), "--campaign", SPRING],
        OFFLINE,
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == (3 if rejected else 0), ran.stderr
    assert ran.summary()["rows_rejected"] == rejected


# --- synonyms -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", ["First Name", "fname", "Given name", "Vorname", "Prénom", "first_name", "FIRSTNAME"]
)
def test_first_name_synonyms(tmp_path: Path, header: str) -> None:
    source = write_csv(
        tmp_path / "a.csv", [[header, "Surname", "Email"], ["Ann", "Lee", "ann@example.com"]]
    )
    assert guessed(source)["fields"] == {"name": header, "surname": "Surname", "email": "Email"}


@pytest.mark.parametrize(
    "header", ["Last Name", "lname", "Surname", "Family name", "Nachname", "Nom", "Apellido"]
)
def test_surname_synonyms(tmp_path: Path, header: str) -> None:
    source = write_csv(
        tmp_path / "a.csv", [["Given name", header, "Email"], ["Ann", "Lee", "ann@example.com"]]
    )
    assert guessed(source)["fields"]["surname"] == header  # type: ignore[index]


@pytest.mark.parametrize("header", ["Email", "E-mail", "Mail", "E-Mail-Adresse", "email_address"])
def test_email_synonyms(tmp_path: Path, header: str) -> None:
    source = write_csv(
        tmp_path / "a.csv", [["First", "Last", header], ["Ann", "Lee", "ann@example.com"]]
    )
    assert guessed(source)["fields"]["email"] == header  # type: ignore[index]


@pytest.mark.parametrize("header", ["TZ", "Time zone", "Timezone", "timezoneId", "Zeitzone"])
def test_zone_synonyms(tmp_path: Path, header: str) -> None:
    source = write_csv(
        tmp_path / "a.csv",
        [["First", "Last", "Email", header], ["Ann", "Lee", "a@example.com", "Europe/Paris"]],
    )
    data = guessed(source)
    assert data["fields"]["timezoneId"] == header  # type: ignore[index]
    assert data["defaults"] == {"region": "FR", "timezone": "Europe/Paris"}


@pytest.mark.parametrize(
    ("header", "label"),
    [
        ("Mobile", "mobile"),
        ("Cell", "mobile"),
        ("Handy", "mobile"),
        ("Portable", "mobile"),
        ("Móvil", "mobile"),
        ("Mobile No.", "mobile"),
        ("Business Mobile", "mobile"),
        ("Office", "work"),
        ("Work", "work"),
        ("Direct line", "work"),
        ("Business phone", "work"),
        ("Telefon geschäftlich", "work"),
        ("Home phone", "home"),
        ("Phone", "main"),
        ("Tel", "main"),
        ("Tel.", "main"),
        ("Telephone", "main"),
        ("Telefon", "main"),
        ("Phone 2", "main"),
        ("Contact number", "main"),
    ],
)
def test_phone_synonyms(tmp_path: Path, header: str, label: str) -> None:
    source = write_csv(
        tmp_path / "a.csv",
        [["First", "Last", "Email", header], ["Ann", "Lee", "a@example.com", "+1 415 555 0101"]],
    )
    assert guessed(source)["phones"] == [{"column": header, "label": label}]


@pytest.mark.parametrize("header", ["Notes", "Comment", "Bemerkung", "Remarks", "Commentaires"])
def test_comment_synonyms(tmp_path: Path, header: str) -> None:
    source = write_csv(
        tmp_path / "a.csv", [["First", "Last", "Email", header], ["A", "B", "a@example.com", "x"]]
    )
    data = guessed(source)
    assert data["comments"] == [{"column": header}]
    assert "dynamicData" not in data


def test_qualified_headers_rank_below_exact_ones(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "a.csv",
        [
            ["Contact First", "Contact Last", "Work Email", "Email", "Email 2"],
            ["Ann", "Lee", "ann@work.example.com", "ann@example.com", "ann@example.org"],
        ],
    )
    text = starter_mapping(source)
    data = yaml.safe_load(text)
    assert data["fields"] == {"name": "Contact First", "surname": "Contact Last", "email": "Email"}
    assert data["dynamicData"] == {"work_email": "Work Email", "email_2": "Email 2"}
    line = next(line for line in text.splitlines() if line.startswith("  work_email:"))
    assert line.endswith('# guessed: looks like email too, but "Email" is used')


@pytest.mark.parametrize(
    ("headers", "fields"),
    [
        (["Vorname", "Name", "E-Mail"], {"name": "Vorname", "surname": "Name", "email": "E-Mail"}),
        (["Name", "Surname", "Email"], {"name": "Name", "surname": "Surname", "email": "Email"}),
    ],
)
def test_bare_name(tmp_path: Path, headers: list[str], fields: dict[str, str]) -> None:
    source = write_csv(tmp_path / "a.csv", [headers, ["A", "B", "a@example.com"]])
    assert guessed(source)["fields"] == fields


def test_email_and_zone_found_by_values_when_headers_say_nothing(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "a.csv",
        [
            ["First Name", "Last Name", "Kontaktadresse", "Ort"],
            ["Ann", "Lee", "ann@example.com", "Europe/Vienna"],
            ["Bob", "Roe", "bob@example.com", "Europe/Vienna"],
        ],
    )
    text = starter_mapping(source)
    data = yaml.safe_load(text)
    assert data["fields"] == {
        "name": "First Name",
        "surname": "Last Name",
        "email": "Kontaktadresse",
        "timezoneId": "Ort",
    }
    assert data["defaults"] == {"region": "AT", "timezone": "Europe/Vienna"}
    assert text == (
        "# Starter mapping for a.csv\n"
        "# guessed by voiptime-etl mapping-init from its headers and first 2 rows.\n"
        "# Check each 'guessed' line and set the project, then try it with\n"
        "#   voiptime-etl validate SOURCE --mapping THIS_FILE\n"
        "project: 1                      # TODO: set it (voiptime-etl projects)\n"
        "# status: New                   # optional (voiptime-etl statuses PROJECT)\n"
        "# source: Web form              # optional (voiptime-etl sources PROJECT)\n"
        "# campaign: Spring outreach     # optional (voiptime-etl campaigns)\n"
        "defaults:\n"
        "  region: AT                    # guessed: the country of Europe/Vienna, the"
        " most common zone\n"
        '  timezone: Europe/Vienna       # guessed: most common in "Ort" (2 of 2)\n'
        "key: [email]                    # what identifies a lead across rows and runs\n"
        "fields:\n"
        '  name: First Name              # guessed: "First Name" means the first name\n'
        '  surname: Last Name            # guessed: "Last Name" means the surname\n'
        "  email: Kontaktadresse         # guessed: 100% of sampled values are e-mail"
        " addresses\n"
        "  timezoneId: Ort               # guessed: 100% of sampled values are IANA"
        " time zones\n"
        "# phones:                       # no phone column found; a campaign needs one\n"
        "#   - {column: COLUMN, label: mobile}\n"
    )


# --- values -------------------------------------------------------------------------------------


def test_region_column_needs_countries(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "a.csv",
        [
            ["First", "Last", "Email", "Region", "Country"],
            ["A", "B", "a@example.com", "Northeast", "United Kingdom"],
            ["C", "D", "c@example.com", "West", "GB"],
            ["E", "F", "e@example.com", "DE", "DE"],
        ],
    )
    text = starter_mapping(source)
    data = yaml.safe_load(text)
    assert data["defaults"] == {
        "region": "GB",
        "region_column": "Country",
        "timezone": "Europe/London",
    }
    assert data["dynamicData"] == {"region": "Region"}
    assert text == (
        "# Starter mapping for a.csv\n"
        "# guessed by voiptime-etl mapping-init from its headers and first 3 rows.\n"
        "# Check each 'guessed' line and set the project, then try it with\n"
        "#   voiptime-etl validate SOURCE --mapping THIS_FILE\n"
        "project: 1                      # TODO: set it (voiptime-etl projects)\n"
        "# status: New                   # optional (voiptime-etl statuses PROJECT)\n"
        "# source: Web form              # optional (voiptime-etl sources PROJECT)\n"
        "# campaign: Spring outreach     # optional (voiptime-etl campaigns)\n"
        "defaults:\n"
        '  region: GB                    # guessed: most common in "Country" (2 of 3)\n'
        "  region_column: Country        # guessed: 100% of sampled values are countries\n"
        "  timezone: Europe/London       # guessed: the main zone of GB\n"
        "key: [email]                    # what identifies a lead across rows and runs\n"
        "fields:\n"
        '  name: First                   # guessed: "First" means the first name\n'
        '  surname: Last                 # guessed: "Last" means the surname\n'
        '  email: Email                  # guessed: "Email" means the e-mail\n'
        "  # timezoneId: COLUMN          # no zone column found: zones come from"
        " phones or default\n"
        "# phones:                       # no phone column found; a campaign needs one\n"
        "#   - {column: COLUMN, label: mobile}\n"
        "dynamicData:                    # custom fields: rename or drop as you need\n"
        "  region: Region  # guessed: not used as region_column: only 33% of sampled"
        " values are countries\n"
    )


def test_no_country_and_no_zone_means_us(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "a.csv", [["First", "Last", "Email"], ["A", "B", "a@b.com"]])
    text = starter_mapping(source)
    assert yaml.safe_load(text)["defaults"] == {"region": "US", "timezone": "America/New_York"}
    assert text == (  # the phones: block is a commented example, with no key
        "# Starter mapping for a.csv\n"
        "# guessed by voiptime-etl mapping-init from its headers and first row.\n"
        "# Check each 'guessed' line and set the project, then try it with\n"
        "#   voiptime-etl validate SOURCE --mapping THIS_FILE\n"
        "project: 1                      # TODO: set it (voiptime-etl projects)\n"
        "# status: New                   # optional (voiptime-etl statuses PROJECT)\n"
        "# source: Web form              # optional (voiptime-etl sources PROJECT)\n"
        "# campaign: Spring outreach     # optional (voiptime-etl campaigns)\n"
        "defaults:\n"
        "  region: US                    # guessed: no country column found\n"
        "  timezone: America/New_York    # guessed: the main zone of US\n"
        "key: [email]                    # what identifies a lead across rows and runs\n"
        "fields:\n"
        '  name: First                   # guessed: "First" means the first name\n'
        '  surname: Last                 # guessed: "Last" means the surname\n'
        '  email: Email                  # guessed: "Email" means the e-mail\n'
        "  # timezoneId: COLUMN          # no zone column found: zones come from"
        " phones or default\n"
        "# phones:                       # no phone column found; a campaign needs one\n"
        "#   - {column: COLUMN, label: mobile}\n"
    )


@pytest.mark.parametrize(
    ("region", "zone"),
    [
        ("AU", "Australia/Sydney"),
        ("DE", "Europe/Berlin"),
        ("GB", "Europe/London"),
        ("US", "America/New_York"),
        ("JP", "Asia/Tokyo"),
    ],
)
def test_default_zone_follows_the_region(tmp_path: Path, region: str, zone: str) -> None:
    source = write_csv(
        tmp_path / "a.csv", [["First", "Last", "Email", "Land"], ["A", "B", "a@b.com", region]]
    )
    assert guessed(source)["defaults"] == {
        "region": region,
        "region_column": "Land",
        "timezone": zone,
    }


def test_dates_need_date_shaped_values(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "a.csv",
        [
            ["First", "Last", "Email", "Employees", "Signup Date", "Birthday", "Created", "Code"],
            ["A", "B", "a@b.com", "25", "45292", "03/04/1990", "2024-01-05T10:00:00", "45292"],
            ["C", "D", "c@b.com", "1200", "45300.5", "04/05/1991", "2024/02/01", "45293"],
        ],
    )
    data = guessed(source)
    assert data["dynamicData"] == {
        "employees": "Employees",
        "signup_date": {"column": "Signup Date", "type": "date"},
        "birthday": "Birthday",  # day-first or month-first: ambiguous, stays text
        "created": {"column": "Created", "type": "date"},
        "code": "Code",  # plain numbers under a header that says nothing of dates
    }


def test_empty_columns_are_listed_not_mapped(tmp_path: Path) -> None:
    rows = [["First", "Last", "Email", "Fax", "Later"]]
    rows += [[f"A{i}", "B", f"a{i}@b.com", "", ""] for i in range(5)]
    rows += [["Z", "Y", "z@b.com", "", "only here"]]
    source = write_csv(tmp_path / "a.csv", rows)
    text = starter_mapping(source, sample_rows=5)
    assert "dynamicData" not in yaml.safe_load(text)
    assert text.endswith('# Not mapped, empty in the rows looked at: "Fax", "Later"\n')
    assert yaml.safe_load(starter_mapping(source))["dynamicData"] == {"later": "Later"}


def test_headers_only(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "a.csv", [["First", "Last", "Email", "Mobile", "City"]])
    text = starter_mapping(source)
    assert "from its headers (it has no data rows)" in text
    assert yaml.safe_load(text)["phones"] == [{"column": "Mobile", "label": "mobile"}]
    check_loads(text, source, tmp_path)


# --- reading and quoting ------------------------------------------------------------------------


def test_csv_encoding_and_delimiter_are_pinned(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "a.csv",
        [["Vorname", "Nachname", "E-Mail", "Straße"], ["Jörg", "Müller", "j@b.de", "Hauptstraße"]],
        encoding="cp1252",
        delimiter=";",
    )
    text = starter_mapping(source)
    data = yaml.safe_load(text)
    assert data["read"] == {"encoding": "cp1252", "delimiter": ";"}
    assert data["dynamicData"] == {"strasse": "Straße"}
    check_loads(text, source, tmp_path)


def test_tab_delimiter_and_title_rows(tmp_path: Path) -> None:
    source = tmp_path / "a.tsv"
    source.write_text(
        "Lead export\t\t\nGenerated today\t\t\n\t\t\nFirst\tLast\tEmail\nA\tB\ta@b.com\n",
        encoding="utf-8",
    )
    text = starter_mapping(source)
    assert yaml.safe_load(text)["read"] == {"header_row": 4, "delimiter": "\t"}
    check_loads(text, source, tmp_path)


def test_utf8_bom_is_not_pinned(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "a.csv", [["First", "Last", "Email"], ["Zoë", "B", "z@b.com"]], "utf-8-sig"
    )
    assert "read" not in guessed(source)


def test_awkward_headers_round_trip(tmp_path: Path) -> None:
    awkward = [
        "yes", "null", "2024", "#", "a: b", "- x", "@at", "'quoted'", '"double"', "x, y",
        "{braces}", "[list]", "Preis (€)", "Ünïcödé", "true", "~", "a # b", "*star", "&amp",
        "!tag", "%pc", "Deal Value", "deal_value", "DealValue", "1st contact", "München",
    ]  # fmt: skip
    headers = ["First Name", "Last Name", "Email", *awkward]
    source = write_csv(tmp_path / "a.csv", [headers, ["A", "B", "a@b.com", *awkward]])
    text = starter_mapping(source)
    check_loads(text, source, tmp_path)
    mapping = parse_mapping(yaml.safe_load(text))
    assert [spec.column for spec in mapping.dynamic.values()] == awkward
    keys = list(mapping.dynamic)
    assert len(set(keys)) == len(keys)
    assert all(k.isascii() and k == k.lower() and " " not in k for k in keys)
    assert keys[-5:] == [
        "deal_value",
        "deal_value_2",
        "deal_value_3",
        "field_1st_contact",
        "munchen",
    ]


def test_awkward_sheet_and_phone_names_round_trip(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.title = "First"
    sheet = book.create_sheet("no")
    sheet.append(["Title row"])
    sheet.append([])
    sheet.append(["Prénom", "Nom", "Mél", "Tél: bureau", "Remarques, etc."])
    sheet.append(["Ann", "Lee", "ann@example.com", "+33 1 99 00 12 34", "hi"])
    path = tmp_path / "book.xlsx"
    book.save(path)
    text = starter_mapping(path, sheet="no")
    mapping = parse_mapping(yaml.safe_load(text))
    assert mapping.read.sheet == "no" and mapping.read.header_row == 3
    check_loads(text, path, tmp_path)


def test_comments_are_one_line_each(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "a.csv",
        [["First\nName", "Last", "Email", "Deal\r\nValue"], ["A", "B", "a@b.com", "x"]],
    )
    text = starter_mapping(source)
    assert '# guessed: "First\\nName" means the first name' in text
    mapping = parse_mapping(yaml.safe_load(text))
    assert mapping.fields["name"] == ColumnSpec("First\nName")
    assert mapping.dynamic == {"deal_value": ColumnSpec("Deal\r\nValue")}
    check_loads(text, source, tmp_path)


def test_a_country_column_in_german_is_the_region_column(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "kunden.csv",
        [
            ["Vorname", "Nachname", "E-Mail", "Telefon", "Land"],
            ["Jan", "Ost", "jan@example.de", "030 1234567", "Deutschland"],
            ["Amy", "Cole", "amy@example.co.uk", "07812 985479", "Großbritannien"],
            ["Ben", "Hart", "ben@example.co.uk", "020 7946 0958", "Vereinigtes Königreich"],
            ["Léa", "Roux", "lea@example.fr", "06 12 34 56 78", "Frankreich"],
            ["Uwe", "Kurz", "uwe@example.de", "089 123456", "Deutschland"],
        ],
        encoding="cp1252",
        delimiter=";",
    )
    text = starter_mapping(source)
    data = yaml.safe_load(text)
    assert data["defaults"] == {
        "region": "DE",
        "region_column": "Land",
        "timezone": "Europe/Berlin",
    }
    assert "region_column: Land" in text
    assert "guessed: 100% of sampled values are countries" in text
    check_loads(text, source, tmp_path)


def test_a_country_column_of_mixed_forms_is_the_region_column(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "export.csv",
        [
            ["First Name", "Last Name", "Email", "Country"],
            ["A", "B", "a@b.com", "U.S."],
            ["C", "D", "c@b.com", "México"],
            ["E", "F", "e@b.com", "USA"],
            ["G", "H", "g@b.com", "Great Britain"],
            ["I", "J", "i@b.com", "+44"],
        ],
    )
    assert guessed(source)["defaults"] == {
        "region": "US",
        "region_column": "Country",
        "timezone": "America/New_York",
    }


def test_outlook_and_dynamics_country_region_header_is_the_region_column(
    tmp_path: Path,
) -> None:
    # Dynamics 365 and Outlook export the country as "Country/Region" (German Outlook:
    # "Land/Region"); as dynamicData, every Mexican national number was read as a US one.
    source = write_csv(
        tmp_path / "contacts.csv",
        [
            ["First Name", "Last Name", "Email Address", "Mobile Phone", "Country/Region"],
            ["Lucía", "Hernández", "lucia@ejemplo.mx", "+52 1 55 3320 5716", "México"],
            ["José", "García", "jose@ejemplo.mx", "044 33 2735 5743", "Mexico"],
            ["John", "Doe", "john@example.com", "(212) 555-0143", "U.S."],
            ["Mary", "Major", "mary@example.com", "312-555-0178", "U.S."],
            ["Ana", "López", "ana@ejemplo.mx", "81 1234 5678", "MX"],
        ],
    )
    text = starter_mapping(source)
    data = yaml.safe_load(text)
    assert data["defaults"] == {
        "region": "MX",
        "region_column": "Country/Region",
        "timezone": "America/Mexico_City",
    }
    assert "dynamicData" not in data
    assert "guessed: 100% of sampled values are countries" in text
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    ran = run_cli(
        ["validate", str(source), "--mapping", str(tmp_path / "m.yaml")],
        OFFLINE,
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == 0
    assert ran.summary()["phone_regions"] == {"MX": 3, "US": 2}


@pytest.mark.parametrize(
    "header", ["Country/Region", "Business Country/Region", "Land/Region", "Pays/Région"]
)
def test_country_region_headers(tmp_path: Path, header: str) -> None:
    source = write_csv(
        tmp_path / "a.csv",
        [["First Name", "Last Name", "Email", header], ["A", "B", "a@b.com", "DE"]],
    )
    assert guessed(source)["defaults"]["region_column"] == header
