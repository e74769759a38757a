"""The second stage: check_chunk(plan, source, chunk) → a frozen ChunkVerdict, shared by the
--max-reject-rate pass and the real pass."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import pickle
from pathlib import Path

import pandas as pd
import pytest
from clitools import LIST_MAPPING, SPRING, write_list

import etl
from etl.calls import call_context
from etl.check import check_chunk, find_duplicates
from etl.extract import Chunk, RowProblem
from etl.mapping import References, load_mapping
from etl.payload import LeadRow, LeadRows
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


def test_a_verdict_holds_lead_records_issues_and_unsplit_rows_and_is_frozen(tmp_path):
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
    assert [(r.source_row, r.key) for r in verdict.leads] == [
        (2, "ann@example.com"),
        (5, "ann@example.com"),
    ]
    assert verdict.rejected_keys == {}  # row 3's key field (the e-mail) is not usable
    assert [(i.source_row, i.field) for i in verdict.issues] == [(3, "email")]
    assert verdict.problems == (ragged,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.issues = ()  # type: ignore[misc]
    with KeyTracker(plan.mapping.key) as keys:
        dupes = find_duplicates(verdict, keys)
    assert [(i.source_row, i.check) for i in dupes.issues] == [(5, "duplicate")]
    assert sorted(dupes.by_row) == [3, 5]
    assert dupes.leads == verdict.leads[:1]  # row 5's key came before: it does not load


def test_the_garbage_collector_is_paused_during_a_check_and_left_as_it_was(tmp_path, monkeypatch):
    """check_chunk pauses Python's cyclic collector while it works and leaves it as it found
    it: running again after the check (even one that raised), still paused when it was."""
    frame = pd.DataFrame(
        [["Ann", "Lee", "ann@example.com", "+44 20 7946 0001", "Europe/London"]],
        columns=list(COLUMNS),
        index=pd.Index([2], name="_source_row"),
        dtype=object,
    )
    plan = _plan(tmp_path)
    seen: list[bool] = []
    real = etl.check.validate_chunk

    def watching(*args, **kwargs):  # the real check, noting whether the collector runs
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(etl.check, "validate_chunk", watching)
    was = gc.isenabled()
    try:
        gc.enable()
        assert len(check_chunk(plan, Path("a.csv"), Chunk(frame, [])).leads) == 1
        assert gc.isenabled()
        gc.disable()
        check_chunk(plan, Path("a.csv"), Chunk(frame, []))
        assert not gc.isenabled()
        gc.enable()
        with pytest.raises(KeyError):
            check_chunk(plan, Path("b.csv"), Chunk(frame, []))  # not a file of the plan
        assert gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
    assert seen == [False, False]


def test_the_lead_records_carry_the_bodies_the_loader_sends(tmp_path):
    """check_chunk builds each valid row's lead record: the ``POST /leads`` body (a comment
    without a date column stamped with the plan's time), its tasks and notes, its warnings."""
    mapping = tmp_path / "notes.yaml"
    mapping.write_text(LIST_MAPPING + "comments: [{column: Note}]\n", encoding="utf-8")
    plan = dataclasses.replace(
        _plan(tmp_path), mapping=load_mapping(mapping), refs=References(7, status_id=3)
    )
    plan = dataclasses.replace(
        plan, files={Path("a.csv"): FilePlan(Path("a.csv"), {**COLUMNS, "Note": "Note"})}
    )
    frame = pd.DataFrame(
        [
            ["Ann", "Lee", "Ann@Example.com", "020 7946 0001", "", "call back"],
            ["Bob", "Lee", "bob@example.com", "+44 20 7946 0002 ext. 9", "Europe/London", ""],
        ],
        columns=[*COLUMNS, "Note"],
        index=pd.Index([2, 3], name="_source_row"),
        dtype=object,
    )
    verdict = check_chunk(plan, Path("a.csv"), Chunk(frame))
    assert plan.when == "2026-12-01T12:00:00Z"
    note = {"text": "call back", "dateTime": "2026-12-01T12:00:00Z"}
    ann = {
        "groupId": 7,
        "statusId": 3,
        "name": "Ann",
        "surname": "Lee",
        "email": "ann@example.com",
        "timezoneId": "Europe/London",
        "phones": [{"number": "+442079460001", "label": "main", "active": True}],
        "comments": [note],
    }
    assert verdict.leads[0] == LeadRow(
        "a.csv",
        2,
        "ann@example.com",
        ann,
        None,
        (),
        (("note.0", note, False),),
        "phone",
        (),
        "Europe/London",
        ("+442079460001",),
    )
    bob = verdict.leads[1]
    assert (bob.source_row, bob.key, bob.zone_source, bob.notes) == (
        3,
        "bob@example.com",
        "column",
        (),
    )
    assert [(w.kind, w.value) for w in bob.warnings] == [
        ("phone (Phone): extension … dropped", "9")
    ]
    # validate sends nothing: the same records without the bodies
    listed = check_chunk(dataclasses.replace(plan, bodies=False), Path("a.csv"), Chunk(frame))
    assert listed.leads == tuple(
        dataclasses.replace(r, payload={}, tasks=(), notes=()) for r in verdict.leads
    )


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


def test_the_lead_records_travel_column_by_column_and_read_back_as_the_same_records(tmp_path):
    """A verdict's LeadRows pickles as its columns (the records are made again where they are
    read), equals the tuple of its records, and keeps its columns through slices and
    ``without``."""
    cells = [
        ("Ann", "ann@example.com", "+44 20 7946 0001 ext. 5", "Europe/London"),
        ("Bob", "bob@example.com", "+44 20 7946 0002", ""),
        ("Cy", "cy@example.com", "+44 20 7946 0003", "Europe/London"),
    ]
    frame = pd.DataFrame([(n, "Lee", *r) for n, *r in cells], columns=list(COLUMNS), dtype=object)
    frame.index = pd.Index([2, 3, 4], name="_source_row")
    plan = _plan(tmp_path)
    for bodies in (True, False):
        leads = check_chunk(dataclasses.replace(plan, bodies=bodies), Path("a.csv"), Chunk(frame))
        leads = leads.leads
        assert leads.rows == (2, 3, 4)
        assert leads.keys == ("ann@example.com", "bob@example.com", "cy@example.com")
        assert leads.zone_sources == ("column", "phone", "column")
        assert [len(w) for w in leads.warnings] == [1, 0, 0]
        back = pickle.loads(pickle.dumps(leads, pickle.HIGHEST_PROTOCOL))
        assert back._records == []  # made again by the reader, not sent
        assert back == leads == tuple(leads) and back is not leads
        assert [(r.source_row, r.key, r.zone, r.numbers) for r in back] == [
            (2, "ann@example.com", "Europe/London", ("+442079460001",)),
            (3, "bob@example.com", "Europe/London", ("+442079460002",)),
            (4, "cy@example.com", "Europe/London", ("+442079460003",)),
        ]
        if bodies:
            assert [r.payload["email"] for r in back] == list(leads.keys)
        else:
            assert all(r.payload == {} and r.tasks == () and r.notes == () for r in back)
        assert leads[1:] == leads.without({2}) == tuple(leads)[1:]
        assert leads.without({3}).rows == (2, 4) and leads.without(set()) is leads
        assert leads.without({3}).keys == ("ann@example.com", "cy@example.com")
    with pytest.raises(ValueError, match="one item per row"):
        LeadRows("a.csv", (1, 2), ("k",))
