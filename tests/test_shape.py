"""Tests for etl.shape: a chunk's columns projected onto lead fields, value maps applied."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from test_mapping import HEADERS, MINIMAL, VALUE_MAPS, full_mapping, write

from etl.mapping import load_mapping, parse_mapping
from etl.plan import resolve_columns
from etl.shape import apply_mapping


def test_apply_mapping_projects_columns_and_keeps_index(tmp_path: Path) -> None:
    m = full_mapping(tmp_path)
    frame = pd.DataFrame(
        [
            ["Ann", "Lee", "a@x.com", "", "415", "416", "Acme", "45292", "hi", "US", "z"],
            ["NA", "Null", "b@x.com", "UTC", "", "", "", "", "", "GB", "z"],
        ],
        columns=HEADERS,
        index=[2, 5],
        dtype=object,
    )
    out = apply_mapping(m, frame, resolve_columns(m, HEADERS, "leads.csv"))
    assert list(out.columns) == [
        "name",
        "surname",
        "email",
        "timezoneId",
        "phone.0",
        "phone.1",
        "dyn.company",
        "dyn.signup_date",
        "comment.0",
        "region",
    ]
    assert list(out.index) == [2, 5]
    assert out.loc[5].tolist() == ["NA", "Null", "b@x.com", "UTC", "", "", "", "", "", "GB"]
    assert out.at[2, "dyn.signup_date"] == "45292"
    assert [str(dtype) for dtype in out.dtypes] == ["object"] * 10


def test_apply_mapping_without_optional_parts() -> None:
    m = parse_mapping(MINIMAL, "m.yaml")
    frame = pd.DataFrame([["x", "y", "z", "q"]], columns=["A", "B", "C", "D"], index=[2])
    out = apply_mapping(m, frame, resolve_columns(m, list(frame.columns), "f.csv"))
    assert list(out.columns) == ["name", "surname", "email"]
    assert out.loc[2].tolist() == ["x", "y", "z"]


def test_apply_mapping_applies_value_maps(tmp_path: Path) -> None:
    m = load_mapping(write(tmp_path, VALUE_MAPS))
    headers = ["First", "Last", "Email", "Time Zone", "Stage", "Since"]
    frame = pd.DataFrame(
        [
            ["A", "B", "a@x.com", "est", "1", "Unknown"],
            ["C", "D", "c@x.com", "PST", "3", "2024-01-02"],
            ["E", "F", "e@x.com", "", "YES", ""],
        ],
        columns=headers,
        index=[2, 3, 4],
        dtype=object,
    )
    out = apply_mapping(m, frame, resolve_columns(m, headers, "f.csv"))
    assert out["timezoneId"].tolist() == ["America/New_York", "PST", ""]
    assert out["dyn.stage"].tolist() == ["Hot", "3", "Warm"]
    assert out["dyn.since"].tolist() == ["2020-01-01", "2024-01-02", ""]
    assert frame.loc[2, "Time Zone"] == "est"  # the source frame is left as it was
