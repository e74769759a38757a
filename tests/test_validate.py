"""Tests for etl.validate: normalise_frame, validate_chunk's Issue records, KeyTracker."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from clitools import CASES, env_for, run_cli, state

from etl.mapping import Mapping, parse_mapping
from etl.normalize import DAY_FIRST, MIXED, DateOrder, Invalid
from etl.plan import resolve_columns
from etl.shape import apply_mapping
from etl.validate import (
    Issue,
    KeyTracker,
    ValidatedChunk,
    _FirstRows,
    date_orders,
    normalize_frame,
    validate_chunk,
)
from etl.values import Caveat

ZONE_HINT_EST = (
    "an abbreviation, not an IANA zone; did you mean America/New_York or America/Toronto?"
)
EST_MAP = "; to fix every such row, add map: {EST: America/New_York} to fields.timezoneId"
NO_PHONE = "no dialable phone; a campaign needs at least one valid number"
NO_ZONE = "required, but empty and no default zone could be used"
AU_MOBILE_AMBIGUOUS = (
    "zone ambiguous: +61491570156 could be in Asia/Bangkok, Asia/Yangon, Australia/Adelaide, "
    "Australia/Brisbane, Australia/Eucla, Australia/Lord_Howe …; fill the time zone column "
    "(or set defaults.ambiguous_timezone: default)"
)
TOLL_FREE_AMBIGUOUS = (
    "zone ambiguous: +18005550100 could be in America/Adak, America/Anchorage, America/Barbados, "
    "America/Boise, America/Chicago, America/Denver …; map a time zone column"
)


def mapping(**parts: Any) -> Mapping:
    data: dict[str, Any] = {
        "project": 1,
        "fields": {"name": "First", "surname": "Last", "email": "Email", "timezoneId": "Zone"},
        "phones": [{"column": "Mobile", "label": "mobile"}, {"column": "Office", "label": "work"}],
        "defaults": {"region": "US", "timezone": "America/New_York"},
    }
    data.update(parts)
    return parse_mapping({k: v for k, v in data.items() if v is not None}, "m.yaml")


def run(
    m: Mapping,
    rows: dict[int, dict[str, str]],
    *,
    require_phone: bool = True,
    source_file: str = "a.csv",
) -> ValidatedChunk:
    """validate_chunk over rows given as {source row: {header: cell}}; missing cells are ''."""
    headers = [column for _, column in m.columns()]
    frame = pd.DataFrame(
        [[cells.get(h, "") for h in headers] for cells in rows.values()],
        columns=headers,
        index=list(rows),
        dtype=object,
    )
    mapped = apply_mapping(m, frame, resolve_columns(m, headers, source_file))
    return validate_chunk(mapped, m, require_phone=require_phone, source_file=source_file)


def ordered(issues: list[Issue]) -> list[Issue]:
    """Issues by row, then field and column (pandera's order inside a row is its own)."""
    return sorted(issues, key=lambda i: (i.source_row, i.field, i.column))


def person(email: str, **cells: str) -> dict[str, str]:
    return {"First": "Ann", "Last": "Lee", "Email": email, **cells}


# --- validate_chunk -------------------------------------------------------------------------


def test_good_rows_pass_with_normalised_values() -> None:
    m = mapping(
        dynamicData={"company": "Company", "signup": {"column": "Signed", "type": "date"}},
        comments=[{"column": "Notes"}],
    )
    res = run(
        m,
        {
            2: person(
                " Ann@Example.COM ",
                Zone="US/Eastern",
                Mobile="(415) 555-2671",
                Office="415.555.2671 or 212-555-0100",
                Company=" Acme ",
                Signed="45292",
                Notes="call me",
            ),
            3: {"First": "NA", "Last": "Null", "Email": "b@x.com", "Mobile": "+44 20 7946 0958"},
        },
    )
    assert res.issues == []
    assert list(res.valid.index) == [2, 3]
    assert res.valid.loc[2].to_dict() == {
        "name": "Ann",
        "surname": "Lee",
        "email": "ann@example.com",
        "phone.0": ("+14155552671",),
        "ext.0": None,
        "phone.1": ("+14155552671", "+12125550100"),
        "ext.1": None,
        "timezoneId": "America/New_York",
        "timezone_source": "column",
        "warnings": (),  # its 212 number is in New York: the column agrees with a phone
        "dyn.company": "Acme",
        "dyn.signup": "2024-01-01",
        "comment.0": "call me",
    }
    row3 = res.valid.loc[3]
    assert (row3["name"], row3["surname"], row3["phone.0"], row3["phone.1"]) == (
        "NA",
        "Null",
        ("+442079460958",),
        None,
    )
    assert (row3["timezoneId"], row3["timezone_source"]) == ("Europe/London", "phone")
    assert res.warnings == {}  # row 2's zone is one of its phones' zones (212 is New York)


def test_every_reason_of_every_row_and_the_rest_loads() -> None:
    m = mapping(dynamicData={"signup": {"column": "Signed", "type": "date"}})
    res = run(
        m,
        {
            2: person("ok@x.com", Mobile="415 555 2671"),
            3: {
                "First": "",
                "Last": "Null",
                "Email": "bad",
                "Zone": "EST",
                "Mobile": "TBD",
                "Signed": "not a date",
            },
            5: person("c@x.com", Mobile="4.15555E+09", Office="555-01"),
            6: person("a@b.com; c@d.com", Mobile="415 555 2671; 555 555 5555"),
        },
    )
    assert ordered(res.issues) == ordered(
        [
            Issue("a.csv", 3, "name", "First", "required", "", "required, but empty"),
            Issue(
                "a.csv",
                3,
                "email",
                "Email",
                "invalid",
                "bad",
                "'bad': not an e-mail address (no @)",
            ),
            Issue(
                "a.csv",
                3,
                "timezoneId",
                "Zone",
                "invalid",
                "EST",
                f"'EST': {ZONE_HINT_EST}{EST_MAP}",
            ),
            Issue(
                "a.csv",
                3,
                "phone",
                "Mobile",
                "invalid",
                "TBD",
                "'TBD': not a phone number (no digits)",
            ),
            Issue(
                "a.csv",
                3,
                "dynamicData.signup",
                "Signed",
                "invalid",
                "not a date",
                "'not a date': not a date; write it as YYYY-MM-DD",
            ),
            Issue(
                "a.csv",
                5,
                "phone",
                "Mobile",
                "invalid",
                "4.15555E+09",
                "'4.15555E+09': precision lost: the number is in scientific notation "
                "(Excel shortened it); re-export the column as text",
            ),
            Issue("a.csv", 5, "phone", "Office", "invalid", "555-01", "'555-01': too short for US"),
            Issue(
                "a.csv",
                6,
                "email",
                "Email",
                "invalid",
                "a@b.com; c@d.com",
                "'a@b.com; c@d.com': more than one e-mail address in one cell; keep one",
            ),
            Issue(
                "a.csv",
                6,
                "phone",
                "Mobile",
                "invalid",
                "415 555 2671; 555 555 5555",
                "'415 555 2671; 555 555 5555': not a valid number for US",
            ),
        ]
    )
    assert list(res.valid.index) == [2]
    assert res.rejected_rows == {3, 5, 6}
    assert ordered(res.issues)[2].describe() == "name (First): required, but empty"


def test_required_fields_empty() -> None:
    res = run(mapping(), {4: {"Mobile": "415 555 2671", "Zone": "Europe/Paris"}})
    assert ordered(res.issues) == [
        Issue("a.csv", 4, "email", "Email", "required", "", "required, but empty"),
        Issue("a.csv", 4, "name", "First", "required", "", "required, but empty"),
        Issue("a.csv", 4, "surname", "Last", "required", "", "required, but empty"),
    ]
    assert res.valid.empty


def test_whitespace_only_cells_are_empty() -> None:
    res = run(mapping(), {2: person("\u00a0 ", First="\u3000", Mobile="415 555 2671")})
    assert [(i.source_row, i.field, i.check) for i in ordered(res.issues)] == [
        (2, "email", "required"),
        (2, "name", "required"),
    ]


@pytest.mark.parametrize(
    ("require_phone", "issues", "valid"),
    [
        (
            True,
            [
                Issue("a.csv", 3, "phone", "Mobile, Office", "required", "", NO_PHONE),
                Issue(
                    "a.csv",
                    7,
                    "phone",
                    "Mobile",
                    "invalid",
                    "TBD",
                    "'TBD': not a phone number (no digits)",
                ),
            ],
            [2],
        ),
        (
            False,
            [
                Issue(
                    "a.csv",
                    7,
                    "phone",
                    "Mobile",
                    "invalid",
                    "TBD",
                    "'TBD': not a phone number (no digits)",
                ),
            ],
            [2, 3],
        ),
    ],
)
def test_require_phone(require_phone: bool, issues: list[Issue], valid: list[int]) -> None:
    res = run(
        mapping(),
        {
            2: person("a@x.com", Office="(212) 555-0100"),
            3: person("b@x.com"),
            7: person("c@x.com", Mobile="TBD"),
        },
        require_phone=require_phone,
    )
    assert res.issues == issues
    assert list(res.valid.index) == valid


def test_require_phone_without_phone_columns() -> None:
    res = run(mapping(phones=None), {2: person("a@x.com")})
    assert res.issues == [
        Issue(
            "a.csv", 2, "phone", "", "required", "", "no phone column mapped; a campaign needs one"
        )
    ]


def test_region_column_decides_how_national_numbers_are_read() -> None:
    m = mapping(defaults={"region": "US", "region_column": "Country"})
    res = run(
        m,
        {
            2: person("a@x.com", Mobile="020 7946 0958", Country="United Kingdom"),
            3: person("b@x.com", Mobile="030/23125-226", Country="+49"),
            4: person("c@x.com", Mobile="(415) 555-2671", Country=""),
            5: person("d@x.com", Mobile="0491 570 156", Country="AU", Zone="Australia/NSW"),
            6: person("e@x.com", Mobile="(613) 555-0123", Country="Narnia"),
            7: person("f@x.com", Mobile="+1 613 555 0123", Country="Narnia"),
            8: person("g@x.com", Mobile="07812 985479", Country="Großbritannien"),
            9: person("h@x.com", Mobile="06 12 34 56 78", Country="Frankreich"),
            10: person("i@x.com", Mobile="0044 7812 985479", Country="Narnia"),
        },
    )
    # a country that names none: the national number is refused, never read as US
    assert res.issues == [
        Issue("a.csv", 6, "timezoneId", "Zone", "required", "", NO_ZONE),
        Issue(
            "a.csv",
            6,
            "phone",
            "Mobile",
            "invalid",
            "(613) 555-0123",
            "'(613) 555-0123': written without +country, and the country 'Narnia' is not a "
            "country name or code; write the country as an ISO code (GB, DE, US) or the number "
            "with +country",
        ),
    ]
    assert res.valid["phone.0"].tolist() == [
        ("+442079460958",),
        ("+493023125226",),
        ("+14155552671",),
        ("+61491570156",),
        ("+16135550123",),  # written with +: goes out whatever the country cell says
        ("+447812985479",),
        ("+33612345678",),
        ("+447812985479",),  # written with 00: the same
    ]
    assert res.valid["timezoneId"].tolist() == [
        "Europe/London",
        "Europe/Berlin",
        "America/Los_Angeles",
        "Australia/Sydney",
        "America/Toronto",
        "Europe/London",
        "Europe/Paris",
        "Europe/London",
    ]
    assert res.warnings[7] == (
        Caveat(
            "country",
            "country … is not a country name or code",
            "country 'Narnia' is not a country name or code; only numbers written with "
            "+country were read",
            "Narnia",
        ),
    )
    assert "region" not in res.valid.columns


# --- zone inference -------------------------------------------------------------------------


def test_zone_inference_rules() -> None:
    res = run(
        mapping(),
        {
            2: person("one@x.com", Mobile="+44 20 7946 0958"),  # one candidate → phone
            3: person("many-with-default@x.com", Mobile="+1 800 555 0100"),  # → default
            4: person("many-without@x.com", Mobile="+61 491 570 156"),  # → ambiguous
            5: person("none@x.com", Mobile="+800 1234 5678"),  # no candidate → default
            6: person("column@x.com", Zone="asia/calcutta", Mobile="+44 20 7946 0958"),
            7: person("second@x.com", Office="+49 30 23125226"),  # first phone of any column
        },
    )
    assert res.issues == [
        Issue("a.csv", 4, "timezoneId", "Zone", "invalid", "", AU_MOBILE_AMBIGUOUS),
    ]
    zones = res.valid[["timezoneId", "timezone_source"]]
    assert zones.to_dict("index") == {
        2: {"timezoneId": "Europe/London", "timezone_source": "phone"},
        3: {"timezoneId": "America/New_York", "timezone_source": "default"},
        5: {"timezoneId": "America/New_York", "timezone_source": "default"},
        6: {"timezoneId": "Asia/Kolkata", "timezone_source": "column"},
        7: {"timezoneId": "Europe/Berlin", "timezone_source": "phone"},
    }
    assert res.warnings == {
        3: (
            Caveat(
                "timezoneId",
                "timezoneId: … could be in several zones",
                "timezoneId: +18005550100 could be in several zones; used America/New_York",
                "+18005550100",
            ),
        ),
        6: (
            Caveat(
                "timezoneId",
                "timezoneId: … from the column, but the phone … is in …",
                "timezoneId: Asia/Kolkata from the column, but the phone +442079460958 is in "
                "Europe/London; kept the column's zone",
                "Asia/Kolkata",
            ),
        ),
    }


def test_zone_inference_without_default_or_zone_column() -> None:
    m = mapping(
        fields={"name": "First", "surname": "Last", "email": "Email"},
        defaults={"region": "US"},
    )
    res = run(
        m,
        {
            2: person("a@x.com", Mobile="+1 415 555 2671"),
            3: person("b@x.com", Mobile="+1 800 555 0100"),
            5: person("c@x.com", Mobile="+800 1234 5678"),
            8: person("d@x.com"),
        },
        require_phone=False,
    )
    assert res.issues == [
        Issue("a.csv", 3, "timezoneId", "", "invalid", "", TOLL_FREE_AMBIGUOUS),
        Issue("a.csv", 5, "timezoneId", "", "required", "", NO_ZONE),
        Issue("a.csv", 8, "timezoneId", "", "required", "", NO_ZONE),
    ]
    assert res.valid["timezoneId"].tolist() == ["America/Los_Angeles"]
    assert res.warnings == {}  # no zone column: nothing was left blank by a person


def test_invalid_zone_in_column_is_not_replaced_by_inference() -> None:
    res = run(mapping(), {2: person("a@x.com", Zone="GMT+2", Mobile="+44 20 7946 0958")})
    assert res.issues == [
        Issue(
            "a.csv",
            2,
            "timezoneId",
            "Zone",
            "invalid",
            "GMT+2",
            "'GMT+2': a fixed UTC offset, not a place; did you mean Europe/Berlin or "
            "Europe/Paris or Europe/Athens or Africa/Johannesburg? (the place, not today's offset)"
            "; to fix every such row, add map: {GMT+2: Europe/Athens} to fields.timezoneId",
        )
    ]


def test_normalize_frame_columns() -> None:
    m = mapping()
    headers = [c for _, c in m.columns()]
    frame = pd.DataFrame([["Ann", "Lee", "a@x.com", "", "", ""]], columns=headers, index=[9])
    norm = normalize_frame(apply_mapping(m, frame, resolve_columns(m, headers, "f")), m)
    assert list(norm.columns) == [
        "name",
        "surname",
        "email",
        "phone.0",
        "ext.0",
        "phone.1",
        "ext.1",
        "timezoneId",
        "timezone_source",
        "warnings",
    ]
    assert norm.loc[9].tolist() == [
        "Ann",
        "Lee",
        "a@x.com",
        None,
        None,
        None,
        None,
        "America/New_York",
        "default",
        (),
    ]


# --- KeyTracker -----------------------------------------------------------------------------


@pytest.mark.parametrize("hasher", [hash, lambda key: len(key) % 3], ids=["hash", "colliding"])
def test_the_first_rows_of_keys_are_exact_whatever_their_hashes(hasher) -> None:
    """Only hashes are kept in memory and the keys in temporary files: keys whose hashes
    collide (here most do) are still told apart exactly, across many merged runs."""
    store = _FirstRows(hasher)
    keys = [f"k{i}é" for i in range(0, 4000, 2)]  # non-ASCII: read back as UTF-8
    for start in range(0, len(keys), 100):  # 20 additions, merged as they grow
        part = keys[start : start + 100]
        store.add_many(part, f"f{start % 3}.csv", [start + n + 2 for n in range(len(part))])
    asked = [f"k{i}é" for i in range(0, 4001, 50)] + ["k1é", "", "other"]
    found = store.get_many(asked)
    assert found == {
        f"k{i}é": (f"f{(i // 2) // 100 * 100 % 3}.csv", i // 2 + 2) for i in range(0, 4000, 50)
    }
    assert len(store._runs) < 20 and sum(len(h) for h, _ in store._runs) == 2000
    store.close()


def test_a_key_tracker_checks_a_chunk_column_by_column_as_row_by_row() -> None:
    """check_columns: empty keys, keys seen in earlier chunks and keys twice in the chunk are
    the only rows looked at one by one; the issues are check_keys' own, in row order."""
    by_rows, by_columns = KeyTracker(["email", "name"]), KeyTracker(["email", "name"])
    chunks = [
        [(2, "a|ann"), (3, "b|bob"), (4, "|"), (5, "a|ann"), (6, "c|cy")],
        [(7, "c|cy"), (8, "d|dee"), (9, "d|dee"), (10, "||"), (11, "e|eve")],
        [(12, "f|fay"), (13, "g|gus")],
    ]
    for n, chunk in enumerate(chunks):
        name = f"{n}.csv"
        rows, keys = [r for r, _ in chunk], [k for _, k in chunk]
        assert by_columns.check_columns(rows, keys, name) == by_rows.check_keys(chunk, name)
    issues = by_columns.check_columns([14, 15], ["b|bob", "z|zed"], "3.csv")
    assert [(i.source_row, i.kind, i.message) for i in issues] == [
        (14, "duplicate", "duplicate of 0.csv row 3 (same email+name 'b|bob')")
    ]
    assert by_columns._first.get_many(["d|dee", "||", "z|zed"]) == {
        "d|dee": ("1.csv", 8),
        "z|zed": ("3.csv", 15),
    }


def test_duplicates_across_files_name_the_first_file_and_row() -> None:
    m = mapping()
    tracker = KeyTracker(m.key)
    first = run(
        m,
        {
            2: person("Ann@x.com", Mobile="415 555 2671"),
            3: person("bob@x.com", Mobile="415 555 2671"),
            5: person("ann@x.com", Mobile="212 555 0100"),
        },
    )
    keys, issues = tracker.check(first.valid, "a.csv")
    assert keys.tolist() == ["ann@x.com", "bob@x.com", "ann@x.com"]
    assert issues == [
        Issue(
            "a.csv",
            5,
            "key",
            "",
            "duplicate",
            "ann@x.com",
            "duplicate of row 2 (same email 'ann@x.com')",
        )
    ]
    second = run(
        m,
        {
            2: person("BOB@x.com", Mobile="415 555 2671"),
            4: person("cy@x.com", Mobile="415 555 2671"),
        },
        source_file="b.csv",
    )
    keys, issues = tracker.check(second.valid, "b.csv")
    assert keys.tolist() == ["bob@x.com", "cy@x.com"]
    assert issues == [
        Issue(
            "b.csv",
            2,
            "key",
            "",
            "duplicate",
            "bob@x.com",
            "duplicate of a.csv row 3 (same email 'bob@x.com')",
        )
    ]


def test_compound_key_casefolds_names_and_uses_first_phone() -> None:
    m = mapping(key=["name", "surname", "phone"])
    res = run(
        m,
        {
            2: person("a@x.com", Mobile="(415) 555-2671"),
            3: {"First": "ANN", "Last": "lee", "Email": "b@x.com", "Mobile": "+1 415 555 2671"},
            4: person("c@x.com", Mobile="212 555 0100"),
        },
    )
    keys, issues = KeyTracker(m.key).check(res.valid, "a.csv")
    assert keys.tolist() == ["ann|lee|+14155552671", "ann|lee|+14155552671", "ann|lee|+12125550100"]
    assert issues == [
        Issue(
            "a.csv",
            3,
            "key",
            "",
            "duplicate",
            "ann|lee|+14155552671",
            "duplicate of row 2 (same name+surname+phone 'ann|lee|+14155552671')",
        )
    ]


def test_key_on_dynamic_field() -> None:
    m = mapping(key=["crm"], dynamicData={"crm": "CRM"})
    res = run(
        m,
        {
            2: person("a@x.com", Mobile="415 555 2671", CRM=" C-1 "),
            3: person("b@x.com", Mobile="415 555 2671", CRM="C-1"),
        },
    )
    keys, issues = KeyTracker(m.key).check(res.valid, "a.csv")
    assert keys.tolist() == ["C-1", "C-1"]
    assert [(i.source_row, i.message) for i in issues] == [
        (3, "duplicate of row 2 (same crm 'C-1')")
    ]


# --- regressions: bugs found in etl/validate.py, now fixed ------------------------------------


def test_phones_without_any_region_do_not_crash() -> None:
    m = mapping(defaults={"timezone": "America/New_York"})
    res = run(
        m,
        {
            2: person("a@x.com", Mobile="+44 20 7946 0958"),
            3: person("b@x.com", Mobile="415 555 2671"),
        },
    )
    assert res.valid["phone.0"].tolist() == [("+442079460958",)]
    assert res.issues == [
        Issue(
            "a.csv",
            3,
            "phone",
            "Mobile",
            "invalid",
            "415 555 2671",
            "'415 555 2671': no country code and no region: write it as +<country>…",
        )
    ]


def test_blank_dynamic_and_comment_cells_are_none() -> None:
    m = mapping(dynamicData={"company": "Company"}, comments=["Notes"])
    res = run(
        m,
        {
            2: person("a@x.com", Mobile="415 555 2671", Company="Acme", Notes="hi"),
            3: person("b@x.com", Mobile="415 555 2671"),
        },
    )
    assert res.valid.at[3, "dyn.company"] is None
    assert res.valid.at[3, "comment.0"] is None


@pytest.mark.parametrize(("key", "empty_rows"), [(["phone"], [3, 4]), (["crm"], [2, 3, 4])])
def test_rows_without_a_key_value_are_refused_not_duplicates(
    key: list[str], empty_rows: list[int]
) -> None:
    m = mapping(key=key, dynamicData={"crm": "CRM"})
    res = run(
        m,
        {
            2: person("a@x.com", Office="415 555 2671"),
            3: person("b@x.com"),
            4: person("c@x.com"),
            5: person("d@x.com", Mobile="212 555 0100", CRM="C-9"),
        },
        require_phone=False,
    )
    _, issues = KeyTracker(m.key).check(res.valid, "a.csv")
    message = (
        f"{key[0]} is empty, so this lead cannot be told apart from others; fill it, "
        "or choose another key in the mapping"
    )
    assert issues == [Issue("a.csv", r, "key", "", "required", "", message) for r in empty_rows]


def test_invalid_values_never_reach_valid_rows() -> None:
    res = run(
        mapping(),
        {2: person("a@x.com", Mobile="TBD", Office="415 555 2671"), 3: person("b@x.com")},
        require_phone=False,
    )
    for column in res.valid.columns:
        assert not any(isinstance(v, Invalid) for v in res.valid[column])
    assert list(res.valid.index) == [3]


# --- value maps, zones per country, countries in any form -----------------------------------


WIN_BERLIN = "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna"


def test_a_zone_value_map_fixes_every_such_row() -> None:
    m = mapping(
        fields={
            "name": "First",
            "surname": "Last",
            "email": "Email",
            "timezoneId": {
                "column": "Zone",
                "map": {"EST": "America/New_York", "MEZ": "Europe/Berlin"},
            },
        },
    )
    res = run(
        m,
        {
            2: person("a@x.com", Zone="est", Mobile="+1 212 555 0100"),
            3: person("b@x.com", Zone=" EST ", Mobile="+1 212 555 0101"),
            4: person("c@x.com", Zone="Eastern Standard Time", Mobile="+1 212 555 0102"),
            5: person("d@x.com", Zone=WIN_BERLIN, Mobile="+49 30 1234567"),
            6: person("e@x.com", Zone="PST", Mobile="+1 415 555 2671"),
        },
    )
    assert res.valid["timezoneId"].to_dict() == {
        2: "America/New_York",
        3: "America/New_York",
        4: "America/New_York",
        5: "Europe/Berlin",
    }
    assert res.issues == [
        Issue(
            "a.csv",
            6,
            "timezoneId",
            "Zone",
            "invalid",
            "PST",
            "'PST': an abbreviation, not an IANA zone; did you mean America/Los_Angeles or "
            "America/Vancouver?; to fix every such row, add map: {PST: America/Los_Angeles} to "
            "fields.timezoneId",
        )
    ]


def test_timezone_by_country_fills_empty_zones_of_that_country() -> None:
    m = mapping(
        defaults={
            "region": "DE",
            "region_column": "Country",
            "timezone": "Europe/Berlin",
            "timezone_by_country": {"US": "America/Chicago", "AU": "Australia/Perth"},
        },
    )
    res = run(
        m,
        {
            # a US mobile spans zones: the country's zone is among them, so it is used
            2: person("a@x.com", Mobile="+1 800 555 0100", Country="USA"),
            # no country cell: the number's own country decides
            3: person("b@x.com", Mobile="+1 800 555 0101"),
            4: person("c@x.com", Mobile="0491 570 156", Country="Australien"),
            # a country with no entry: defaults.timezone, as before
            5: person("d@x.com", Mobile="+49 30 1234567", Country="Deutschland"),
            # a zone in the column always wins
            6: person("e@x.com", Mobile="+1 800 555 0102", Country="US", Zone="America/Denver"),
        },
    )
    assert res.issues == []
    assert res.valid["timezoneId"].to_dict() == {
        2: "America/Chicago",
        3: "America/Chicago",
        4: "Australia/Perth",
        5: "Europe/Berlin",
        6: "America/Denver",
    }
    assert res.valid["timezone_source"].tolist() == [
        "default",
        "default",
        "default",
        "phone",
        "column",
    ]


def test_a_country_cell_naming_several_countries_is_not_guessed() -> None:
    m = mapping(defaults={"region": "DE", "region_column": "Country"})
    res = run(m, {2: person("a@x.com", Mobile="06 12 34 56 78", Country="Kongo")})
    assert [i.message for i in res.issues if i.field == "phone"] == [
        "'06 12 34 56 78': written without +country, and the country 'Kongo' names more than "
        "one country (CD or CG); write the country as an ISO code (GB, DE, US) or the number "
        "with +country"
    ]


# --- date columns: order decided over the run -----------------------------------------------


def dates_mapping() -> Mapping:
    return mapping(dynamicData={"signup": {"column": "Signed", "type": "date"}})


def test_date_orders_decided_from_values_that_read_one_way() -> None:
    m = dates_mapping()
    cells = [
        ("signup", "a.csv", 2, "03/04/2024"),
        ("signup", "a.csv", 3, "25/12/2023"),
        ("signup", "b.csv", 2, "13.01.2024"),
        ("signup", "b.csv", 3, ""),
    ]
    assert date_orders(m, cells) == {
        "signup": DateOrder(DAY_FIRST, "'25/12/2023' in a.csv row 3", "")
    }
    mixed = [*cells, ("signup", "b.csv", 4, "12/25/2023")]
    assert date_orders(m, mixed) == {
        "signup": DateOrder(MIXED, "'25/12/2023' in a.csv row 3", "'12/25/2023' in b.csv row 4")
    }
    assert date_orders(m, [("signup", "a.csv", 2, "03/04/2024")]) == {"signup": DateOrder()}


def test_a_day_first_column_reads_its_ambiguous_dates_day_first() -> None:
    m = dates_mapping()
    order = {"signup": DateOrder(DAY_FIRST, "'25/12/2023' in a.csv row 9", "")}
    rows = {
        2: person("a@x.com", Mobile="+1 212 555 0100", Signed="03/04/2024"),
        3: person("b@x.com", Mobile="+1 212 555 0101", Signed="13/01/2024"),
        4: person("c@x.com", Mobile="+1 212 555 0102", Signed="2024-02-01"),
        5: person("d@x.com", Mobile="+1 212 555 0103", Signed="12/25/2023"),
    }
    headers = [column for _, column in m.columns()]
    frame = pd.DataFrame(
        [[cells.get(h, "") for h in headers] for cells in rows.values()],
        columns=headers,
        index=list(rows),
        dtype=object,
    )
    mapped = apply_mapping(m, frame, resolve_columns(m, headers, "a.csv"))
    res = validate_chunk(mapped, m, require_phone=True, source_file="a.csv", date_orders=order)
    assert res.valid["dyn.signup"].to_dict() == {2: "2024-04-03", 3: "2024-01-13", 4: "2024-02-01"}
    assert [(i.source_row, i.message) for i in res.issues] == [
        (
            5,
            "'12/25/2023': month-first, but the column's other dates are day-first "
            "('25/12/2023' in a.csv row 9); write it as YYYY-MM-DD",
        )
    ]


def test_without_an_order_ambiguous_dates_are_refused() -> None:
    res = run(
        dates_mapping(), {2: person("a@x.com", Mobile="+1 212 555 0100", Signed="03/04/2024")}
    )
    assert [i.message for i in res.issues] == [
        "'03/04/2024': ambiguous: day-first or month-first, and no date of this column has a "
        "day above 12 to tell; write it as YYYY-MM-DD"
    ]


def test_every_duplicate_is_labelled_whatever_else_is_wrong_with_it() -> None:
    """A rejected row is labelled a duplicate of an earlier valid row, and of an earlier row
    rejected too; a valid row after a rejected one of its key still loads (it is the first
    valid one), and a later rejected row names that valid one."""
    m = mapping()
    tracker = KeyTracker(m.key)
    res = run(
        m,
        {
            2: person("ann@x.com", Zone="EST"),
            3: person("ann@x.com", Zone="Mars/Olympus"),
            4: person("bob@x.com"),
            6: person("cy@x.com", Zone="EST"),
            7: person("ann@x.com"),
            9: person("ann@x.com", Zone="EST"),
        },
        require_phone=False,
    )
    keys, issues = tracker.check(res.valid, "a.csv")
    assert list(keys.index) == [4, 7] and issues == []
    assert res.rejected is not None
    labels = [(i.source_row, i.message) for i in tracker.peek(res.rejected, "a.csv")]
    assert labels == [
        (3, "duplicate of row 2 (same email 'ann@x.com')"),
        (9, "duplicate of row 7 (same email 'ann@x.com')"),
    ]
    later = run(m, {2: person("CY@x.com", Zone="EST")}, source_file="b.csv", require_phone=False)
    assert later.rejected is not None
    assert [(i.source_row, i.message) for i in tracker.peek(later.rejected, "b.csv")] == [
        (2, "duplicate of a.csv row 6 (same email 'cy@x.com')")
    ]


# Found by a new user in a trial run (were tests/test_regressions.py): each pinned through the
# CLI against the sandbox.


def test_a_rejected_row_is_also_named_a_duplicate(tmp_path: Path) -> None:
    source = tmp_path / "d.csv"
    source.write_text(
        "first_name,last_name,email,phone,timezone\n"
        "Ann,Lee,ann@example.com,+14155550101,America/Chicago\n"
        "Ann,,ANN@example.com,+14155550102,EST\n"
    )
    ran = run_cli(
        ["validate", str(source), "--mapping", str(CASES / "c12_ragged_rows.yaml")],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert [r["_errors"] for r in ran.rejects()] == [
        "surname (last_name): required, but empty; timezoneId (timezone): 'EST': an abbreviation, "
        "not an IANA zone; did you mean America/New_York or America/Toronto?; to fix every such "
        "row, add map: {EST: America/New_York} to fields.timezoneId; "
        "key: duplicate of row 2 (same email 'ann@example.com')"
    ]
    assert ran.summary()["rows_duplicate"] == 1


def test_a_row_with_an_empty_key_is_rejected_not_merged(sandbox: Any, tmp_path: Path) -> None:
    source = tmp_path / "k.csv"
    source.write_text(
        "first_name,last_name,email,phone,timezone\n"
        "Bob,Ray,k4@example.com,,America/Chicago\n"
        "Bob,Ray2,k5@example.com,,America/Chicago\n"
        "Cy,Moe,k6@example.com,+1 415 555 0101,America/Chicago\n"
    )
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "project: 1\nkey: [phone]\n"
        "fields: {name: first_name, surname: last_name, email: email, "
        "timezoneId: timezone}\nphones: [{column: phone}]\n"
    )
    args = ["import", str(source), "--mapping", str(mapping), "--state", str(tmp_path / "s.sqlite")]
    ran = run_cli(args, env_for(sandbox), tmp_path / "r", subprocess_mode=False)
    assert ran.code == 3
    assert [(r["_source_row"], r["_errors"]) for r in ran.rejects()] == [
        (
            row,
            "key: phone is empty, so this lead cannot be told apart from others; fill it, "
            "or choose another key in the mapping",
        )
        for row in ("2", "3")
    ]
    assert ran.summary()["rows_duplicate"] == 0
    again = run_cli(args, env_for(sandbox), tmp_path / "r2", subprocess_mode=False)
    assert again.summary()["leads_unchanged"] == 1
    assert "PATCH /leads/{leadId}" not in state(sandbox)["requests"]
    assert len(state(sandbox)["leads"]) == 1


def test_each_issue_carries_the_kind_its_check_named() -> None:
    m = mapping(dynamicData={"signup": {"column": "Signed", "type": "date"}})
    res = run(
        m,
        {
            3: {"Last": "Lee", "Email": "o'brien@", "Zone": "EST", "Mobile": "TBD"},
            4: person("c@x.com", Office="555-01", Signed="2024-02-30"),
            5: person("d@x.com", Zone="Europe/Paris"),
        },
    )
    assert [(i.source_row, i.field, i.check, i.kind) for i in res.issues] == [
        (3, "name", "required", "required, but empty"),
        (3, "email", "invalid", "not an e-mail address"),
        (3, "timezoneId", "invalid", "an abbreviation, not an IANA zone"),
        (3, "phone", "invalid", "not a phone number"),
        (4, "phone", "invalid", "too short for US"),
        (4, "dynamicData.signup", "invalid", "not a calendar date"),
        (5, "phone", "required", "no dialable phone"),
    ]
    # the value's own quote does not hide the kind: the message shows it as Python writes it
    assert res.issues[1].message == '"o\'brien@": not an e-mail address (nothing after @)'
    tracker = KeyTracker(m.key)
    valid = run(m, {7: person("e@x.com", Mobile="415 555 2671")}).valid
    tracker.check(valid, "a.csv")
    _, dupes = tracker.check(valid.rename(index={7: 8}), "a.csv")
    assert [(i.source_row, i.check, i.kind, i.message) for i in dupes] == [
        (8, "duplicate", "duplicate", "duplicate of row 7 (same email 'e@x.com')")
    ]


def test_a_full_disk_under_the_key_files_is_an_output_error_naming_the_folder(tmp_path):
    """The keys of a run live in temporary files: when they cannot be written (here a file
    size limit, as a full disk would do), the run gets an OutputError (exit 74) naming the
    temporary folder and what to do, once, and closing the tracker raises nothing more."""
    script = textwrap.dedent(
        """
        import resource, signal, tempfile
        from etl.errors import OutputError
        from etl.validate import KeyTracker
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        tracker = KeyTracker(["email"])
        try:
            for i in range(100):
                keys = [f"k{i}-{j}@example.com" for j in range(100)]
                tracker.check_columns(list(range(i * 100, i * 100 + 100)), keys, "f.csv")
        except OutputError as exc:
            print(exc.exit_code, exc, sep="|")
        tracker.close()
        print("closed")
        """
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stderr == ""
    assert done.stdout == (
        f"74|{tmp_path}: the temporary files that hold the run's lead keys cannot be written or "
        "read (File too large); free space there, or set TMPDIR to a folder with room\nclosed\n"
    )
