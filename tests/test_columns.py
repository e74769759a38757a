"""Tests for etl.columns: every derived column name is built and read back in one place."""

from __future__ import annotations

import pandas as pd
import pytest

from etl import columns as col
from etl.mapping import parse_mapping
from etl.plan import resolve_columns
from etl.shape import apply_mapping


@pytest.mark.parametrize(
    ("name", "kind", "index", "field"),
    [
        (col.phone(0), "phone", 0, None),
        (col.phone(12), "phone", 12, None),
        (col.extension(1), "extension", 1, None),
        (col.dynamic("company"), "dynamic", None, "company"),
        (col.dynamic("sign.up 2"), "dynamic", None, "sign.up 2"),
        (col.comment(0), "comment", 0, None),
        (col.comment_date(2), "comment_date", 2, None),
        (col.comment_time(2), "comment_time", 2, None),
        (col.task("callback", "start"), "task_start", None, "callback"),
        (col.task("meeting", "end"), "task_end", None, "meeting"),
        (col.task("meeting", "zone"), "task_zone", None, "meeting"),
        ("callback", "task", None, "callback"),
        ("email", "field", None, "email"),
        (col.REGION, "field", None, "region"),
        (col.TIMEZONE_SOURCE, "field", None, "timezone_source"),
    ],
)
def test_each_name_reads_back_as_what_built_it(
    name: str, kind: str, index: int | None, field: str | None
) -> None:
    assert col.parse(name) == col.Column(kind, index, field)


def test_names_as_written_and_where_a_normalised_value_was_read_from() -> None:
    assert [col.phone(0), col.extension(0), col.dynamic("x"), col.comment(1)] == [
        "phone.0",
        "ext.0",
        "dyn.x",
        "comment.1",
    ]
    assert col.phones(3) == ["phone.0", "phone.1", "phone.2"]
    assert col.phone_columns(["name", "phone.1", "ext.1", "phone.0", 7]) == ["phone.1", "phone.0"]
    assert col.read_from("meeting") == "meeting.start"
    assert col.read_from(col.comment_time(3)) == "comment_date.3"
    assert col.read_from(col.phone(0)) == "phone.0"


def test_apply_mapping_names_every_column_through_columns() -> None:
    m = parse_mapping(
        {
            "project": 1,
            "fields": {"name": "N", "surname": "S", "email": "E"},
            "phones": ["P"],
            "dynamicData": {"company": "C"},
            "comments": [{"column": "T", "date": "D"}],
            "meeting": {"start": "MS", "end": "ME", "timezone_column": "MZ"},
            "defaults": {"region_column": "R"},
        },
        "m.yaml",
    )
    headers = [column for _, column in m.columns()]
    frame = pd.DataFrame([headers], columns=headers, index=[2], dtype=object)
    mapped = apply_mapping(m, frame, resolve_columns(m, headers, "f.csv"))
    assert {c: col.parse(c).kind for c in mapped.columns} == {
        "name": "field",
        "surname": "field",
        "email": "field",
        "phone.0": "phone",
        "dyn.company": "dynamic",
        "comment.0": "comment",
        "comment_date.0": "comment_date",
        "meeting.start": "task_start",
        "meeting.end": "task_end",
        "meeting.zone": "task_zone",
        "region": "field",
    }
