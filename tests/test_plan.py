"""The first stage: prepare() → a frozen Plan that pickles, or one error listing every problem."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle
from pathlib import Path

import pytest
from clitools import LIST_MAPPING, SPRING, write_list
from test_mapping import HEADERS, full_mapping, with_

from etl.client import VoiptimeClient
from etl.errors import MappingError
from etl.extract import open_source
from etl.mapping import parse_mapping
from etl.plan import FilePlan, Plan, Scope, prepare, read_setup, resolve_columns

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
