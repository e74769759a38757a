"""Tests for etl.mapping: checking a mapping file, matching headers, payloads."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from etl.errors import EXIT_CONFIG, MappingError
from etl.extract import ReadOptions
from etl.mapping import (
    ColumnSpec,
    CommentSpec,
    Defaults,
    Mapping,
    PhoneSpec,
    References,
    ValueMap,
    load_mapping,
    parse_mapping,
    parse_value_map,
)
from etl.payload import lead_payload
from etl.values import fold_key

FULL = """\
project: 1
status: New
source: Web form
campaign: Spring outreach
read:
  sheet: Leads
  header_row: 2
  encoding: cp1252
  delimiter: ";"
defaults:
  region: us
  region_column: Country
  timezone: US/Eastern
key: [email]
fields:
  name: First Name
  surname: Last Name
  email: Email
  timezoneId: Time Zone
phones:
  - {column: Mobile, label: mobile}
  - {column: Office, label: work}
dynamicData:
  company: Company
  signup_date: {column: Signed up, type: date}
comments:
  - {column: Notes, author: "5b2773d179b7880001da77d5"}
"""

MINIMAL = {"project": 1, "fields": {"name": "A", "surname": "B", "email": "C"}}
TOP_KEYS = (
    "project, status, source, campaign, read, defaults, key, fields, phones, dynamicData, "
    "comments, callback, meeting, calling_window"
)


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(data: object) -> list[str]:
    with pytest.raises(MappingError) as err:
        parse_mapping(data, "m.yaml")
    assert err.value.path == "m.yaml"
    assert err.value.exit_code == EXIT_CONFIG
    return err.value.problems


def with_(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {**MINIMAL, **changes}
    return data


# --- load_mapping -----------------------------------------------------------------------------


def test_full_mapping_loads_into_frozen_model(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    m = load_mapping(path)
    assert m == Mapping(
        path=str(path),
        project=1,
        status="New",
        source="Web form",
        campaign="Spring outreach",
        read=ReadOptions(sheet="Leads", header_row=2, encoding="cp1252", delimiter=";"),
        defaults=Defaults(region="US", region_column="Country", timezone="America/New_York"),
        key=("email",),
        fields={
            "name": ColumnSpec("First Name"),
            "surname": ColumnSpec("Last Name"),
            "email": ColumnSpec("Email"),
            "timezoneId": ColumnSpec("Time Zone"),
        },
        phones=(PhoneSpec("Mobile", "mobile"), PhoneSpec("Office", "work")),
        dynamic={"company": ColumnSpec("Company"), "signup_date": ColumnSpec("Signed up", "date")},
        comments=(CommentSpec("Notes", "5b2773d179b7880001da77d5"),),
    )
    with pytest.raises(AttributeError):
        m.project = 2  # type: ignore[misc]
    assert m.columns() == [
        ("fields.name", "First Name"),
        ("fields.surname", "Last Name"),
        ("fields.email", "Email"),
        ("fields.timezoneId", "Time Zone"),
        ("phones[0].column", "Mobile"),
        ("phones[1].column", "Office"),
        ("dynamicData.company", "Company"),
        ("dynamicData.signup_date", "Signed up"),
        ("comments[0].column", "Notes"),
        ("defaults.region_column", "Country"),
    ]


def test_minimal_mapping_defaults() -> None:
    m = parse_mapping(
        {
            "project": " 12 ",
            "fields": {"name": " A ", "surname": "B", "email": "C"},
            "phones": ["Phone"],
            "comments": ["Notes"],
            "read": {"delimiter": "tab"},
        },
        "m.yaml",
    )
    assert m.project == 12
    assert m.key == ("email",)
    assert m.fields["name"] == ColumnSpec("A")
    assert m.phones == (PhoneSpec("Phone", "main"),)
    assert m.comments == (CommentSpec("Notes", None),)
    assert m.read == ReadOptions(delimiter="\t")
    assert m.defaults == Defaults()
    assert (m.status, m.source, m.campaign, m.dynamic) == (None, None, None, {})


def test_project_by_name_and_key_as_string() -> None:
    m = parse_mapping(with_(project="Spring list", key="surname"), "m.yaml")
    assert (m.project, m.key) == ("Spring list", ("surname",))


def test_many_mistakes_reported_all_at_once(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """\
        projct: 1
        status: [1]
        read:
          header_row: 0
          encoding: klingon
          delimiter: ";;"
          sheets: 2
        defaults:
          region: XX
          timezone: EST
          zone: foo
        key: [email, favourite_colour, 3]
        fields:
          name: First Name
          email: {column: Email, type: date}
          phone: Phone
          timezoneId: [Zone]
        phones:
          - {column: Mobile, lable: mobile}
          - {label: work}
          - 42
        dynamicData:
          company: Company
          signup: {column: Signed up, type: datetime}
        comments:
          - {column: Notes, author: [5]}
        """
    )
    with pytest.raises(MappingError) as err:
        load_mapping(write(tmp_path, text))
    assert err.value.problems == [
        f"projct: unknown key, did you mean 'project'? (allowed: {TOP_KEYS})",
        "project: required (a project id or name)",
        "status: expected an id (number) or a name (text), got list [1]",
        "read.sheets: unknown key, did you mean 'sheet'? (allowed: sheet, header_row, "
        "encoding, delimiter, max_field_lines, max_field_chars)",
        "read.header_row: expected a row number from 1, got int 0",
        "read.encoding: unknown encoding 'klingon'",
        "read.delimiter: expected one character, got str ';;'",
        "defaults.zone: unknown key, did you mean 'timezone'? (allowed: region, region_column, "
        "timezone, ambiguous_timezone, timezone_by_country)",
        "defaults.region: 'XX' is not an ISO 3166 region code (e.g. US, GB, DE)",
        "defaults.timezone: an abbreviation, not an IANA zone; "
        "did you mean America/New_York or America/Toronto?",
        "fields.email.type: unknown key (allowed: column, map)",
        "fields.phone: unknown lead field (lead fields: name, surname, email, timezoneId; "
        "put custom fields under dynamicData)",
        "fields.timezoneId: expected a column header (text), got list ['Zone']",
        "fields.surname: required (the API needs a lead's surname)",
        "phones[0].lable: unknown key, did you mean 'label'? (allowed: column, label, extension)",
        "phones[1].column: required, the column header (text)",
        "phones[2]: expected {column, label}, got int 42",
        "dynamicData.signup.type: 'datetime' is not one of text, date",
        "comments[0].author: expected an authorId (text), got list [5]",
        "key[1]: 'favourite_colour' is neither a lead field (email, name, surname, phone) "
        "nor a dynamicData field",
        "key[2]: expected a field name, got int 3",
    ]
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'm.yaml'}: 21 mapping problems:\n  - projct: ")
    assert message.endswith("Fix the mapping file and run again.")


@pytest.mark.parametrize(
    ("data", "problems"),
    [
        (
            with_(projekt=1),
            [f"projekt: unknown key, did you mean 'project'? (allowed: {TOP_KEYS})"],
        ),
        (
            with_(fields={"name": "A", "surname": "B", "email": "C", "phone": "P"}),
            [
                "fields.phone: unknown lead field (lead fields: name, surname, email, "
                "timezoneId; put custom fields under dynamicData)"
            ],
        ),
        (
            with_(fields={"name": "A", "email": "C"}),
            ["fields.surname: required (the API needs a lead's surname)"],
        ),
        (
            with_(fields=None),
            [
                "fields: required, a mapping of lead field to column, got nothing",
                "fields.name: required (the API needs a lead's name)",
                "fields.surname: required (the API needs a lead's surname)",
                "fields.email: required (the API needs a lead's email)",
            ],
        ),
        (
            with_(defaults={"region": "XX"}),
            ["defaults.region: 'XX' is not an ISO 3166 region code (e.g. US, GB, DE)"],
        ),
        (
            with_(defaults={"region": 44}),
            ["defaults.region: 44 is not an ISO 3166 region code (e.g. US, GB, DE)"],
        ),
        (
            with_(defaults={"timezone": "EST"}),
            [
                "defaults.timezone: an abbreviation, not an IANA zone; "
                "did you mean America/New_York or America/Toronto?"
            ],
        ),
        (
            with_(defaults={"timezone": "UTC-5"}),
            [
                "defaults.timezone: a fixed UTC offset, not a place; did you mean "
                "America/Chicago or America/New_York? (the place, not today's offset)"
            ],
        ),
        (with_(defaults={"timezone": 5}), ["defaults.timezone: expected an IANA zone"]),
        (
            with_(dynamicData={"signup": {"column": "S", "type": "datetime"}}),
            ["dynamicData.signup.type: 'datetime' is not one of text, date"],
        ),
        (
            with_(dynamicData={"signup": {"type": "date"}}),
            ["dynamicData.signup.column: required, the column header (text)"],
        ),
        (
            with_(key=["favourite_colour"]),
            [
                "key[0]: 'favourite_colour' is neither a lead field (email, name, surname, "
                "phone) nor a dynamicData field"
            ],
        ),
        (with_(key=["phone"]), ["key[0]: 'phone' needs a phones: column"]),
        (with_(key=[]), ["key: expected a list of field names, e.g. [email], got list []"]),
        (with_(key=[["email"]]), ["key[0]: expected a field name, got list ['email']"]),
        (with_(project=True), ["project: expected an id (number) or a name (text), got bool True"]),
        (with_(project="  "), ["project: empty"]),
        (
            with_(read={"header_row": True, "sheet": 1.5}),
            [
                "read.sheet: expected a sheet name or 0-based index, got float 1.5",
                "read.header_row: expected a row number from 1, got bool True",
            ],
        ),
        (
            with_(phones={"column": "Mobile"}),
            ["phones: expected a list of {column, label}, got dict {'column': 'Mobile'}"],
        ),
        (
            with_(phones=[{"column": "Mobile", "label": 3}]),
            ["phones[0].label: expected text, got int 3"],
        ),
        (
            with_(comments=[{"column": "Notes", "by": "x"}]),
            ["comments[0].by: unknown key (allowed: column, author, date)"],
        ),
        (
            with_(calling_window="8-21"),
            [
                "calling_window: '8-21' is not a calling window; write it as 08:00-21:00 "
                "(local time, HH:MM-HH:MM)"
            ],
        ),
        # the run's own rules (etl.calls.CallingWindow): an empty window and 24:30 are refused
        (
            with_(calling_window="08:00-08:00"),
            ["calling_window: '08:00-08:00': the window is empty (local time, HH:MM-HH:MM)"],
        ),
        (
            with_(calling_window="09:00-24:30"),
            [
                "calling_window: '09:00-24:30': hours run 00-24 and minutes 00-59 "
                "(local time, HH:MM-HH:MM)"
            ],
        ),
        ([1, 2], ["(top level): expected a mapping of keys, got list [1, 2]"]),
        (None, ["(top level): expected a mapping of keys, got nothing"]),
    ],
)
def test_single_problems(data: object, problems: list[str]) -> None:
    assert problems_of(data) == problems


def test_key_on_phone_and_dynamic_field_is_accepted() -> None:
    m = parse_mapping(
        with_(key=["phone", "crm_id"], phones=["Mobile"], dynamicData={"crm_id": "CRM"}), "m.yaml"
    )
    assert m.key == ("phone", "crm_id")


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "project: 1\nfields:\n  name: First\n  surname: [Last\n  email: Email\n")
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert err.value.path == str(path)
    assert err.value.problems == [
        "line 5, column 8: not valid YAML (expected ',' or ']', but got ':')"
    ]


def test_yaml_tab_indent_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "project: 1\nfields:\n\tname: A\n")
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert err.value.problems == [
        "line 3, column 1: not valid YAML (found character '\\t' that cannot start any token)"
    ]


def test_yaml_is_read_with_safe_loader(tmp_path: Path) -> None:
    path = write(tmp_path, "project: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert len(err.value.problems) == 1
    assert err.value.problems[0].startswith("line 1, column 10: not valid YAML")


def test_missing_mapping_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert (err.value.path, err.value.problems) == (str(path), ["file not found"])
    assert err.value.exit_code == EXIT_CONFIG


def test_mapping_with_bom_loads(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeff".encode() + yaml.safe_dump(MINIMAL).encode())
    assert load_mapping(path).project == 1


# --- helpers of the column-matching and shaping tests (tests/test_plan.py, test_shape.py) ----


def full_mapping(tmp_path: Path) -> Mapping:
    return load_mapping(write(tmp_path, FULL))


HEADERS = [
    " first name",
    "LAST NAME ",
    "Email ",
    "time zone",
    "MOBILE",
    "office",
    "Company",
    "Signed Up",
    "notes",
    "country",
    "Extra",
]


# --- lead_payload ---------------------------------------------------------------------------


def test_lead_payload_exact(tmp_path: Path) -> None:
    m = full_mapping(tmp_path)
    row = {
        "name": "Ann",
        "surname": "Lee",
        "email": "ann@example.com",
        "timezoneId": "America/New_York",
        "timezone_source": "column",
        "phone.0": ("+14155552671", "+442079460958"),
        "phone.1": ("+14155552671",),
        "dyn.company": "Acme",
        "dyn.signup_date": None,
        "comment.0": "Call after 5",
    }
    refs = References(project_id=1, status_id=11, source_id=31, campaign_id="a" * 24)
    assert lead_payload(row, m, refs, "2024-05-01T12:00:00Z") == {
        "groupId": 1,
        "statusId": 11,
        "sourceId": 31,
        "name": "Ann",
        "surname": "Lee",
        "email": "ann@example.com",
        "timezoneId": "America/New_York",
        "phones": [
            {"number": "+14155552671", "label": "mobile", "active": True},
            {"number": "+442079460958", "label": "mobile", "active": True},
        ],
        "dynamicData": {"company": "Acme"},
        "comments": [
            {
                "text": "Call after 5",
                "dateTime": "2024-05-01T12:00:00Z",
                "authorId": "5b2773d179b7880001da77d5",
            }
        ],
    }


def test_lead_payload_minimal_sends_no_empty_parts(tmp_path: Path) -> None:
    m = full_mapping(tmp_path)
    row = {
        "name": "NA",
        "surname": "Null",
        "email": "b@example.com",
        "timezoneId": "Europe/London",
        "phone.0": None,
        "phone.1": None,
        "dyn.company": "",
        "dyn.signup_date": None,
        "comment.0": None,
    }
    assert lead_payload(row, m, References(project_id=2), "2024-05-01T12:00:00Z") == {
        "groupId": 2,
        "name": "NA",
        "surname": "Null",
        "email": "b@example.com",
        "timezoneId": "Europe/London",
    }


def test_lead_payload_comment_without_author_and_second_phone_label() -> None:
    m = parse_mapping(
        with_(
            phones=[{"column": "M", "label": "mobile"}, {"column": "W", "label": "work"}],
            comments=["Notes"],
            dynamicData={"signup": {"column": "S", "type": "date"}},
        ),
        "m.yaml",
    )
    row = {
        "name": "A",
        "surname": "B",
        "email": "a@b.com",
        "timezoneId": "Europe/Berlin",
        "phone.0": None,
        "phone.1": ("+493023125226",),
        "dyn.signup": "2024-01-01",
        "comment.0": "hello",
    }
    payload = lead_payload(row, m, References(project_id=1), "2024-05-01T12:00:00Z")
    assert payload["phones"] == [{"number": "+493023125226", "label": "work", "active": True}]
    assert payload["dynamicData"] == {"signup": "2024-01-01"}
    assert payload["comments"] == [{"text": "hello", "dateTime": "2024-05-01T12:00:00Z"}]


# -- YAML: values are what was typed (no YAML 1.1 conversions) ---------------------------------

BASE_YAML = "fields: {name: A, surname: B, email: C}\n"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("project: 0123", "int 83; write the id without leading zeros (123)"),
        ("project: 0x1F", "int 31; quote it if it is a name"),
        ("project: 1_000", "int 1000; quote it if it is a name"),
        ("project: 1:20", "int 80; quote it if it is a name"),
        ("project: 1.0", "float 1.0; quote it if it is a name"),
        ("project: 1\nstatus: on", "bool True; quote it if it is a name"),
        ("project: 1\nsource: NO", "bool False; quote it if it is a name"),
        ("project: 1\ncampaign: 2024-03-10", "date datetime.date(2024, 3, 10); quote it"),
    ],
)
def test_ids_yaml_11_would_change_are_refused(tmp_path: Path, line: str, problem: str) -> None:
    path = write(tmp_path, line + "\n" + BASE_YAML)
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert len(err.value.problems) == 1
    assert "is ambiguous: YAML 1.1 readers take it as " + problem in err.value.problems[0]


def test_yaml_values_are_read_as_typed(tmp_path: Path) -> None:
    text = (
        'project: "0123"\nstatus: 11\ncampaign: 012345678901234567890123\n'
        "read: {sheet: 01}\n"
        "defaults: {region: NO}\n"
        "fields: {name: yes, surname: off, email: 2024-03-10}\n"
        "dynamicData: {a: 1:20, b: 0o17, c: 1.50, d: ~x}\n"
    )
    m = load_mapping(write(tmp_path, text))
    assert (m.project, m.status, m.campaign) == ("0123", 11, "012345678901234567890123")
    assert m.read.sheet == "01"
    assert m.defaults.region == "NO"  # Norway
    assert [s.column for s in m.fields.values()] == ["yes", "off", "2024-03-10"]
    assert [s.column for s in m.dynamic.values()] == ["1:20", "0o17", "1.50", "~x"]


def test_header_row_with_a_leading_zero_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as err:
        load_mapping(write(tmp_path, "project: 1\nread: {header_row: 010}\n" + BASE_YAML))
    assert err.value.problems == ["read.header_row: expected a row number from 1, got str '010'"]


def test_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as err:
        load_mapping(write(tmp_path, "project: 1\n" + BASE_YAML + "project: 2\n"))
    assert err.value.problems == [
        "line 3, column 1: not valid YAML (key 'project' is given twice (first on line 1); "
        "a key may appear once)"
    ]


def test_read_limits_are_checked(tmp_path: Path) -> None:
    text = "project: 1\nread: {max_field_lines: 0, max_field_chars: many}\n" + BASE_YAML
    with pytest.raises(MappingError) as err:
        load_mapping(write(tmp_path, text))
    assert err.value.problems == [
        "read.max_field_lines: expected a whole number from 1, got int 0",
        "read.max_field_chars: expected a whole number from 1, got str 'many'",
    ]
    m = load_mapping(write(tmp_path, "project: 1\nread: {max_field_lines: 400}\n" + BASE_YAML))
    assert (m.read.max_field_lines, m.read.max_field_chars) == (400, 32_767)


# --- value maps -----------------------------------------------------------------------------

VALUE_MAPS = """\
project: 1
defaults:
  region: US
  timezone_by_country: {de: Europe/Berlin, GB: Europe/London, US: US/Eastern}
fields:
  name: First
  surname: Last
  email: Email
  timezoneId:
    column: Time Zone
    map: {EST: America/New_York, " Pacific ": America/Los_Angeles, MEZ: Europe/Berlin}
dynamicData:
  stage: {column: Stage, map: {1: Hot, 2: Cold, yes: Warm}}
  since: {column: Since, type: date, map: {unknown: 2020-01-01}}
"""


def test_value_maps_load_with_folded_keys(tmp_path: Path) -> None:
    m = load_mapping(write(tmp_path, VALUE_MAPS))
    zone = m.fields["timezoneId"]
    assert zone == ColumnSpec(
        "Time Zone",
        "text",
        ValueMap(
            (
                ("est", "America/New_York"),
                ("pacific", "America/Los_Angeles"),
                ("mez", "Europe/Berlin"),
            )
        ),
    )
    # YAML reads 1 as a number: the key is the text it shows
    assert m.dynamic["stage"].map == ValueMap((("1", "Hot"), ("2", "Cold"), ("yes", "Warm")))
    assert m.dynamic["since"] == ColumnSpec("Since", "date", ValueMap((("unknown", "2020-01-01"),)))
    assert m.defaults.timezone_by_country == (
        ("DE", "Europe/Berlin"),
        ("GB", "Europe/London"),
        ("US", "America/New_York"),  # canonical
    )
    assert m.defaults.zone_for("DE") == "Europe/Berlin"
    assert m.defaults.zone_for("FR") is None  # no defaults.timezone
    assert m.defaults.zone_for(None) is None


def test_value_map_get_matches_after_trim_and_casefold() -> None:
    vm = ValueMap((("est", "America/New_York"), ("eastern time", "America/New_York")))
    assert vm.get(" EST ") == "America/New_York"
    assert vm.get("Eastern\u00a0  TIME") == "America/New_York"
    assert vm.get("PST") is None
    assert vm.get(None) is None
    assert fold_key("  Straße  X ") == "strasse x"


@pytest.mark.parametrize(
    ("timezone_id", "problems"),
    [
        (
            {"column": "TZ", "map": {"EST": "EST"}},
            [
                "fields.timezoneId.map.EST: an abbreviation, not an IANA zone; did you mean "
                "America/New_York or America/Toronto?"
            ],
        ),
        (
            {"column": "TZ", "map": {"EST": "America/New_York", "est ": "America/Toronto"}},
            ["fields.timezoneId.map.est : the same key as 'EST' (keys ignore case and spaces)"],
        ),
        (
            {"column": "TZ", "map": ["EST", "America/New_York"]},
            [
                "fields.timezoneId.map: expected a mapping of value as written → value meant, "
                "e.g. {EST: America/New_York}, got list ['EST', 'America/New_York']"
            ],
        ),
        (
            {"column": "TZ", "map": {"EST": None}},
            ["fields.timezoneId.map.EST: expected the value meant, got nothing"],
        ),
        (
            {"column": "TZ", "map": {True: "America/New_York"}},
            [
                "fields.timezoneId.map: an unquoted true or false is a boolean, not text; "
                "quote it (\"true\": …) (entry True: 'America/New_York')"
            ],
        ),
        (
            {"column": "TZ", "mapping": {"EST": "America/New_York"}},
            ["fields.timezoneId.mapping: unknown key, did you mean 'map'? (allowed: column, map)"],
        ),
    ],
)
def test_value_map_problems(timezone_id: object, problems: list[str]) -> None:
    fields = {**MINIMAL["fields"], "timezoneId": timezone_id}  # type: ignore[dict-item]
    assert problems_of(with_(fields=fields)) == problems


def test_timezone_by_country_problems() -> None:
    defaults = {"timezone_by_country": {"XX": "Europe/Berlin", "DE": "MEZ", "FR": 3}}
    assert problems_of(with_(defaults=defaults)) == [
        "defaults.timezone_by_country.XX: 'XX' is not an ISO 3166 region code (e.g. DE)",
        "defaults.timezone_by_country.DE: an abbreviation, not an IANA zone; did you mean "
        "Europe/Berlin or Europe/Vienna or Europe/Zurich?",
        "defaults.timezone_by_country.FR: expected an IANA zone",
    ]
    assert problems_of(with_(defaults={"timezone_by_country": ["DE"]})) == [
        "defaults.timezone_by_country: expected a mapping of ISO region → IANA zone, "
        "e.g. {DE: Europe/Berlin}, got list ['DE']"
    ]


def test_parse_value_map_with_a_check_is_reusable() -> None:
    problems: list[str] = []
    vm = parse_value_map(
        {"Hot": "New", "Cold": "x"},
        "status.map",
        problems,
        lambda v: None if v in ("New", "Callback") else f"{v!r} is not a status",
    )
    assert vm == ValueMap((("hot", "New"),))
    assert problems == ["status.map.Cold: 'x' is not a status"]
