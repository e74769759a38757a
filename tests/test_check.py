"""The second stage: check_chunk(plan, source, chunk) → a frozen ChunkVerdict, shared by the
--max-reject-rate pass and the real pass."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from clitools import LIST_MAPPING, SPRING, write_list

import etl
from etl.calls import call_context
from etl.check import check_chunk, find_duplicates
from etl.extract import Chunk, RowProblem
from etl.mapping import load_mapping
from etl.pipeline import RunOptions, run
from etl.plan import FilePlan, Plan
from etl.validate import KeyTracker

COLUMNS = {c: c for c in ("First", "Last", "Email", "Phone", "Zone")}


def _plan(tmp_path: Path) -> Plan:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(LIST_MAPPING, encoding="utf-8")
    return Plan(
        mapping=load_mapping(mapping),
        files={Path("a.csv"): FilePlan(Path("a.csv"), COLUMNS)},
        calls=call_context(None, "Europe/London", dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)),
    )


def test_a_verdict_holds_valid_rows_issues_and_unsplit_rows_and_is_frozen(tmp_path):
    frame = pd.DataFrame(
        [
            ["Ann", "Lee", "ann@example.com", "+44 20 7946 0001", "Europe/London"],
            ["Bob", "Lee", "bob at example", "+44 20 7946 0002", "Europe/London"],
            ["Ann", "Lee", "ann@example.com", "+44 20 7946 0003", "Europe/London"],
        ],
        columns=list(COLUMNS),
        index=pd.Index([2, 3, 5], name="_source_row"),
        dtype=object,
    )
    ragged = RowProblem(4, "6 fields, expected 5", ("a", "b", "c", "d", "e", "f"))
    plan = _plan(tmp_path)
    verdict = check_chunk(plan, Path("a.csv"), Chunk(frame, [ragged]))
    assert verdict.rows_read == 4
    assert list(verdict.valid.index) == [2, 5]
    assert [(i.source_row, i.field) for i in verdict.issues] == [(3, "email")]
    assert verdict.problems == (ragged,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.issues = ()  # type: ignore[misc]
    with KeyTracker(plan.mapping.key) as keys:
        dupes = find_duplicates(verdict, keys)
    assert [(i.source_row, i.check) for i in dupes.issues] == [(5, "duplicate")]
    assert sorted(dupes.by_row) == [3, 5]
    assert list(dupes.keys) == ["ann@example.com", "ann@example.com"]


def test_the_reject_rate_pass_rejects_what_the_real_pass_rejects(tmp_path, sandbox):
    source = write_list(tmp_path / "list.csv", 6)
    with open(source, "a", encoding="utf-8") as fh:
        fh.write("P1,Lee,p1@example.com,+44 20 7946 0001,Europe/London\n")  # a duplicate
        fh.write("P9,Lee,not an e-mail,+44 20 7946 0009,Europe/London\n")
        fh.write("P10,Lee,p10@example.com\n")  # too few fields
    mapping = tmp_path / "m.yaml"
    mapping.write_text(LIST_MAPPING, encoding="utf-8")
    checked = run(
        RunOptions(sources=[source], mapping=mapping, command="validate", report_dir=tmp_path / "v")
    )
    assert (checked.summary.rows_read, checked.summary.rows_rejected) == (9, 3)
    gated = etl.import_files(
        source,
        mapping,
        api_key="sandbox-key",
        api_url=sandbox.url,
        campaign=SPRING,
        state=tmp_path / "s.sqlite",
        report_dir=tmp_path / "r",
        max_reject_rate=0,
    )
    assert gated.error.startswith("3 of 9 rows rejected (33.3%), more than --max-reject-rate 0%")
    assert (gated.rows_read, gated.rows_rejected, gated.leads_created) == (9, 3, 0)
