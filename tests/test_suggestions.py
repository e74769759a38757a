"""Closest-match suggestions for unknown names and keys, and every mapping problem at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from clitools import C01, C01_MAP, env_for, import_args, run_cli, state

from etl.errors import MappingError, UnknownReferenceError, closest
from etl.mapping import parse_mapping

CAMPAIGNS = [f"Theme {i} Q{w}" for i in range(20) for w in (1, 2, 3)] + ["Spring outreach"]


@pytest.mark.parametrize(
    ("kind", "value", "known", "message"),
    [
        ("campaign", "Sprng outreach", CAMPAIGNS, "Did you mean 'Spring outreach'?"),
        ("campaign", "spring OUTREACH ", CAMPAIGNS, "Did you mean 'Spring outreach'?"),
        (
            "campaign",
            "Autumn",
            CAMPAIGNS,
            "None of the 61 known campaigns is close; `voiptime-etl campaigns` lists them.",
        ),
        ("status", "Nwe", ["New", "Callback"], "Did you mean 'New'?"),
        ("status", "Hot", ["New", "Callback"], "Known statuses: 'New', 'Callback'."),
        ("source", "Web from", ["Web form", "Referral"], "Did you mean 'Web form'?"),
        ("project", "Dmeo", ["Demo", "Spring list"], "Did you mean 'Demo'?"),
    ],
)
def test_an_unknown_name_gets_one_closest_match_or_none(
    kind: str, value: str, known: list[str], message: str
) -> None:
    error = UnknownReferenceError(kind, value, known)
    assert str(error) == f"Unknown {kind} {value!r}. {message}"
    assert "Theme" not in str(error)  # never a list of unrelated names


def test_closest_is_case_insensitive_and_refuses_far_names() -> None:
    assert closest("EMIAL", ["name", "email"]) == "email"
    assert closest("zzz", ["name", "email"]) is None


def test_a_mistyped_mapping_key_names_the_key_it_meant() -> None:
    with pytest.raises(MappingError) as info:
        parse_mapping(
            {
                "project": 1,
                "campain": "Spring outreach",
                "read": {"shet": 0},
                "fields": {"name": "a", "surname": "b", "emial": "c"},
                "phones": [{"column": "p", "lable": "mobile"}],
                "key": ["emal"],
            },
            "m.yaml",
        )
    assert info.value.problems[:4] == [
        "campain: unknown key, did you mean 'campaign'? (allowed: project, status, source, "
        "campaign, read, defaults, key, fields, phones, dynamicData, comments, callback, "
        "meeting, calling_window)",
        "read.shet: unknown key, did you mean 'sheet'? (allowed: sheet, header_row, encoding, "
        "delimiter, max_field_lines, max_field_chars)",
        "fields.emial: unknown lead field, did you mean 'email'? (lead fields: name, surname, "
        "email, timezoneId; put custom fields under dynamicData)",
        "fields.email: required (the API needs a lead's email)",
    ]
    assert info.value.problems[4] == (
        "phones[0].lable: unknown key, did you mean 'label'? (allowed: column, label, extension)"
    )
    assert info.value.problems[5].endswith("nor a dynamicData field, did you mean 'email'?")


def test_an_unknown_campaign_on_the_command_line_suggests_the_closest(
    sandbox: Any, tmp_path: Path
) -> None:
    args = import_args(tmp_path)
    args[args.index("--campaign") + 1] = "Sprng outreach"
    ran = run_cli(args, env_for(sandbox), tmp_path / "r", subprocess_mode=False)
    assert ran.code == 78
    assert (
        ran.stderr == "Error: Unknown campaign 'Sprng outreach'. Did you mean 'Spring outreach'?\n"
    )
    assert not (tmp_path / "r").exists()


def test_structure_columns_and_names_are_reported_in_one_message(
    sandbox: Any, tmp_path: Path
) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "project: 1\n"
        "status: Nwe\n"  # unknown name: did you mean 'New'
        "defaults: {regoin: US, timezone: America/New_York}\n"  # structure: key typo
        "fields: {name: first_nme, surname: last_name, email: email}\n"  # column typo
        "phones: [{column: phone}]\n",
        encoding="utf-8",
    )
    ran = run_cli(
        ["validate", str(C01), "--mapping", str(mapping), "--campaign", "Sprng outreach"],
        env_for(sandbox),
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == 78
    assert ran.stderr.count("Error:") == 1
    problems = [line.strip() for line in ran.stderr.splitlines() if line.startswith("  - ")]
    assert problems == [
        "- defaults.regoin: unknown key, did you mean 'region'? (allowed: region, "
        "region_column, timezone, ambiguous_timezone, timezone_by_country)",
        f"- fields.name: column 'first_nme' is not in {C01} (header read on row 1), did you "
        "mean 'first_name'? (its columns: 'first_name', 'last_name', 'email', 'phone', "
        "'timezone', 'notes')",
        "- status: Unknown status 'Nwe'. Did you mean 'New'?",
        "- --campaign: Unknown campaign 'Sprng outreach'. Did you mean 'Spring outreach'?",
    ]
    assert all(k.startswith("GET ") for k in state(sandbox)["requests"])
    assert not (tmp_path / "r").exists()


def test_a_good_mapping_still_loads(tmp_path: Path) -> None:
    ran = run_cli(
        ["validate", str(C01), "--mapping", str(C01_MAP)],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == 0, ran.stderr
