"""The first stage: prepare() → a frozen Plan that pickles, or one error listing every problem."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle
import re
from pathlib import Path

import pytest
from clitools import LIST_MAPPING, SPRING, write_list
from test_mapping import HEADERS, full_mapping, with_

from etl.client import VoiptimeClient
from etl.errors import MappingError
from etl.extract import open_source
from etl.mapping import parse_mapping
from etl.normalize import MIXED, MONTH_FIRST, DateOrder
from etl.plan import DateScan, FilePlan, Plan, Scope, prepare, read_setup, resolve_columns

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def _prepare(mapping: Path, sources: list[Path], client=None, campaign=None) -> Plan:
    setup = read_setup(mapping, None, "Europe/London", NOW)
    readers = [(p, open_source(p)) for p in sources]
    try:
        scope = Scope("validate", campaign, False, 100, lambda path, exc: None)
        return prepare(setup, readers, client, scope)
    finally:
        for _, reader in readers:
            reader.close()


def test_offline_plan_matches_columns_per_file_and_pickles(tmp_path):
    first = write_list(tmp_path / "a.csv", 2)
    second = tmp_path / "b.csv"
    second.write_text("EMAIL,first,last,phone,zone,Extra\n", encoding="utf-8")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(LIST_MAPPING.replace("project: Demo", "project: 7"), encoding="utf-8")
    plan = _prepare(mapping, [first, second], campaign=None)
    assert list(plan.files) == [first, second]
    assert plan.files[first] == FilePlan(
        first,
        {"First": "First", "Last": "Last", "Email": "Email", "Zone": "Zone", "Phone": "Phone"},
        {},
        False,
    )
    assert dict(plan.files[second].columns)["Email"] == "EMAIL"
    assert plan.files[second].formula_optional == {"Extra": None}
    # offline: the project's id as the mapping gives it; the campaign named, not resolved
    assert (plan.refs.project_id, plan.campaign_id, plan.require_phone) == (7, SPRING, True)
    assert plan.headers == ("First", "Last", "Email", "Phone", "Zone", "Extra")
    again = pickle.loads(pickle.dumps(plan))
    assert (again.files, again.refs, again.headers) == (plan.files, plan.refs, plan.headers)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.refs = plan.refs  # type: ignore[misc]


def test_every_missing_column_of_every_file_is_one_error(tmp_path):
    first = tmp_path / "a.csv"
    first.write_text("First,Last,Email\n", encoding="utf-8")
    second = tmp_path / "b.csv"
    second.write_text("First,Email,Phone\n", encoding="utf-8")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(LIST_MAPPING.replace("project: Demo", "project: 7"), encoding="utf-8")
    with pytest.raises(MappingError) as raised:
        _prepare(mapping, [first, second])
    problems = raised.value.problems
    assert len(problems) == 4
    assert [p.split(":")[0] for p in problems] == [
        "fields.timezoneId",
        "phones[0].column",
        "fields.surname",
        "fields.timezoneId",
    ]
    assert str(first) in problems[0] and str(second) in problems[3]


def test_online_plan_resolves_names_once(tmp_path, sandbox):
    source = write_list(tmp_path / "a.csv", 1)
    mapping = tmp_path / "m.yaml"
    mapping.write_text(LIST_MAPPING, encoding="utf-8")
    with VoiptimeClient(sandbox.url, "sandbox-key") as client:
        plan = _prepare(mapping, [source], client)
    assert plan.refs.project_id == plan.listed["project"]["id"]
    assert plan.campaign_id == plan.listed["campaign"]["id"]
    assert plan.refs.campaign_name == SPRING
    assert plan.listed["campaign"]["totalEntries"] == 0


# --- resolve_columns ------------------------------------------------------------------------


def test_headers_match_after_trim_and_casefold(tmp_path: Path) -> None:
    m = full_mapping(tmp_path)
    assert resolve_columns(m, HEADERS, "leads.csv") == {
        "First Name": " first name",
        "Last Name": "LAST NAME ",
        "Email": "Email ",
        "Time Zone": "time zone",
        "Mobile": "MOBILE",
        "Office": "office",
        "Company": "Company",
        "Signed up": "Signed Up",
        "Notes": "notes",
        "Country": "country",
    }


def test_casefold_matches_german_sharp_s() -> None:
    m = parse_mapping(with_(dynamicData={"street": "STRASSE"}), "m.yaml")
    cols = resolve_columns(m, ["a", "b", "c", "Straße"], "f.csv")
    assert cols["STRASSE"] == "Straße"


def test_missing_columns_reported_with_key_paths(tmp_path: Path) -> None:
    m = full_mapping(tmp_path)
    headers = ["First Name", "Email", "Mobile", "Company", "Notes"]
    with pytest.raises(MappingError) as err:
        resolve_columns(m, headers, "leads.csv")
    shown = "'First Name', 'Email', 'Mobile', 'Company', 'Notes'"
    assert err.value.path == m.path
    assert err.value.problems == [
        f"fields.surname: column 'Last Name' is not in leads.csv (its columns: {shown})",
        f"fields.timezoneId: column 'Time Zone' is not in leads.csv (its columns: {shown})",
        f"phones[1].column: column 'Office' is not in leads.csv (its columns: {shown})",
        f"dynamicData.signup_date: column 'Signed up' is not in leads.csv (its columns: {shown})",
        f"defaults.region_column: column 'Country' is not in leads.csv (its columns: {shown})",
    ]


DATES_MAPPING = LIST_MAPPING + "dynamicData:\n  signed: {column: Signed, type: date}\n"
#: Title rows above the header, a blank row, a row of the wrong width (its day-first date is
#: not a date of the column), month-first dates from row 6, repeated.
DATES_A = (
    "Leads export\n"
    "\n"
    "First,Last,Email,Phone,Zone,Signed\n"
    "P1,Lee,p1@example.com,020 7946 0001,Europe/London,03/04/2024\n"
    ",,,,,\n"
    "P2,Lee,p2@example.com,020 7946 0002,Europe/London,12/25/2023\n"
    "P3,Lee,p3@example.com,020 7946 0003,Europe/London,25/12/2023,extra\n"
    "P4,Lee,p4@example.com,020 7946 0004,Europe/London,12/25/2023\n"
    "P5,Lee,p5@example.com,020 7946 0005,Europe/London,11/30/2023\n"
)
#: Day-first on row 3 (after a quoted note over two lines on row 2).
DATES_B = (
    "First,Last,Email,Phone,Zone,Signed,Note\n"
    'P6,Lee,p6@example.com,020 7946 0006,Europe/London,2024-01-02,"two\nlines"\n'
    "P7,Lee,p7@example.com,020 7946 0007,Europe/London,31/01/2024,\n"
    "P8,Lee,p8@example.com,020 7946 0008,Europe/London,30/01/2024,\n"
)


def _dates_plan(
    tmp_path: Path, files: list[str], scan: bool, change: bool = False, encoding: str = "utf-8"
) -> Plan:
    """prepare() of ``files`` written as CSVs, the date orders gathered while the files were
    opened (``scan``) or read by a pass of their own; ``change``: every file rewritten with
    other dates after it was opened, before the plan is made."""
    mapping = tmp_path / "m.yaml"
    mapping.write_text(DATES_MAPPING, encoding="utf-8")
    setup = read_setup(mapping, None, "Europe/London", NOW)
    dates = DateScan(setup.mapping) if scan else None
    paths = []
    for i, text in enumerate(files):
        paths.append(tmp_path / f"{'ab'[i]}.csv")
        paths[-1].write_text(text, encoding=encoding)
    readers = [(p, open_source(p, watch=dates.watch(p) if dates else None)) for p in paths]
    if change:
        for path in paths:
            text = path.read_text(encoding=encoding)
            path.write_text(re.sub(r"\d\d/\d\d/\d{4}", "01/02/2020", text), encoding=encoding)
    try:
        scope = Scope("validate", None, False, 2, lambda path, exc: None, dates)
        return prepare(setup, readers, None, scope)
    finally:
        for _, reader in readers:
            reader.close()


def test_date_orders_read_while_the_files_are_checked_equal_a_pass_of_their_own(
    tmp_path: Path,
) -> None:
    """The order of each date column, with the first example of each way and its row a person
    sees, is the same whether the structure pass gathered it or a pass of its own read it; the
    files are not read for it again (rewritten after they were opened, the plan still says what
    they held)."""
    for scan in (True, False):
        one = tmp_path / f"scan-{scan}"
        one.mkdir()
        a, b = one / "a.csv", one / "b.csv"
        month_first = DateOrder(MONTH_FIRST, "", f"'12/25/2023' in {a} row 6")
        mixed = DateOrder(MIXED, f"'31/01/2024' in {b} row 3", f"'12/25/2023' in {a} row 6")
        assert _dates_plan(one, [DATES_A], scan).date_orders == {"signed": month_first}
        assert _dates_plan(one, [DATES_A, DATES_B], scan).date_orders == {"signed": mixed}
    kept = tmp_path / "kept"
    kept.mkdir()
    plan = _dates_plan(kept, [DATES_A, DATES_B], scan=True, change=True)
    a, b = kept / "a.csv", kept / "b.csv"
    assert plan.date_orders == {
        "signed": DateOrder(MIXED, f"'31/01/2024' in {b} row 3", f"'12/25/2023' in {a} row 6")
    }
    assert "01/02/2020" in a.read_text(encoding="utf-8")
    # cp1252 (known only when a byte far down is not UTF-8): read first as UTF-8, then again;
    # what the first reading told the scan is forgotten
    late = tmp_path / "late"
    late.mkdir()
    text = DATES_A + "P9,O’Brien,p9@example.com,020 7946 0009,Europe/London,31/12/2023\n"
    plan = _dates_plan(
        late, [text + "P10,Müller – café,p10@example.com,,,\n"], True, True, "cp1252"
    )
    a = late / "a.csv"
    assert plan.date_orders == {
        "signed": DateOrder(MIXED, f"'31/12/2023' in {a} row 10", f"'12/25/2023' in {a} row 6")
    }
