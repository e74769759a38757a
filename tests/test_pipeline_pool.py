"""Chunks checked in worker processes give the very reports of a run in one process."""

from __future__ import annotations

import csv
import datetime as dt
import json
import pickle
from pathlib import Path

import pandas as pd

from etl.calls import call_context
from etl.extract import Chunk
from etl.mapping import References, load_mapping, resolve_columns
from etl.pipeline import RunOptions, check_chunk, run
from etl.plan import FilePlan, Plan

MAPPING = """\
project: 1
campaign: Spring outreach
defaults: {region: US, region_column: Country, timezone: America/New_York}
key: [email]
fields: {name: First Name, surname: Last Name, email: Email, timezoneId: Time Zone}
phones:
  - {column: Mobile, label: mobile}
  - {column: Work Phone, label: work}
dynamicData: {signed_up: {column: Signed Up, type: date}}
comments:
  - {column: Notes}
"""
#: The runs' clock (a minute boundary between two runs would change local_time_at_run).
NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
HEADER = ["First Name", "Last Name", "Email", "Mobile", "Work Phone", "Country", "Time Zone"]
HEADER += ["Signed Up", "Notes"]


def _write(path: Path, rows: int) -> None:
    """A list with every kind of row: bad phones, zones, e-mails and dates, empty names,
    multi-line notes, short rows, and duplicates of rows several chunks back."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        for i in range(rows):
            email = f"lead{i}@example.com" if i % 97 else f"lead{i - 450}@example.com"
            if i % 131 == 0:
                email = f"lead{i} at example.com"
            mobile = [f"(212) 555-{i:04d}", f"+1415{2000000 + i}", f"415.555.{i % 10000:04d}"][
                i % 3
            ]
            work = f"020 7946 {i % 10000:04d}" if i % 5 == 0 else f"212-583-{i % 10000:04d}"
            if i % 89 == 0:
                mobile, work = "555-0100", ""
            country = "GB" if i % 5 == 0 else ("US" if i % 2 else "")
            zone = ["America/New_York", "US/Eastern", "", "EST", "Europe/London"][i % 5]
            date = "2024-02-30" if i % 113 == 0 else f"2024-03-{1 + i % 28:02d}"
            note = "first line\nsecond line" if i % 7 == 0 else ""
            row = ["Ann" if i % 61 else "", "Lee", email, mobile, work, country, zone, date, note]
            if i % 211 == 0:
                row = row[:4]
            out.writerow(row)


def _reports(folder: Path) -> tuple[bytes, bytes, dict[str, object]]:
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    for moving in ("started_at", "duration_seconds", "rows_per_second", "timings"):
        summary.pop(moving)
    return (folder / "rejects.csv").read_bytes(), (folder / "loaded.csv").read_bytes(), summary


def test_worker_processes_give_the_same_reports_as_one_process(tmp_path):
    source, mapping = tmp_path / "leads.csv", tmp_path / "m.yaml"
    _write(source, 2_400)
    mapping.write_text(MAPPING, encoding="utf-8")
    results = {}
    for workers in (1, 2):
        options = RunOptions(
            sources=[source],
            mapping=mapping,
            command="validate",
            report_dir=tmp_path / f"r{workers}",
            chunk_rows=300,
            workers=workers,
            now=NOW,  # loaded.csv's local_time_at_run has minutes: the same clock for both runs
        )
        result = run(options)
        assert result.exit_code == 3
        results[workers] = _reports(tmp_path / f"r{workers}")
    assert results[2] == results[1]
    summary = results[2][2]
    assert summary["rows_read"] == 2_400
    # the 20 rows i = 485, 582, ... 2328 (i % 97 == 0, i >= 450) repeat the e-mail of the row
    # 450 back (chunks earlier, in another worker): each is named a duplicate of it, also where
    # one of the two is rejected for another reason (the tracker keeps rejected rows' keys)
    assert summary["rows_duplicate"] == 20
    text = results[2][0].decode("utf-8")
    assert text.count("duplicate of row ") == summary["rows_duplicate"]


def test_check_chunk_is_a_pure_function_whose_result_pickles(tmp_path):
    source, mapping_path = tmp_path / "leads.csv", tmp_path / "m.yaml"
    _write(source, 40)
    mapping_path.write_text(MAPPING, encoding="utf-8")
    mapping = load_mapping(mapping_path)
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    frame.index = pd.RangeIndex(2, 2 + len(frame))
    columns = resolve_columns(mapping, list(frame.columns), str(source))
    plan = Plan(
        mapping=mapping,
        files={source: FilePlan(source, columns)},
        calls=call_context(None, "Europe/London", dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)),
        refs=References(1, campaign_id="c" * 24),  # a campaign: each lead needs a phone
    )
    first = check_chunk(plan, source, Chunk(frame))
    again = pickle.loads(pickle.dumps(first))
    assert again.valid.equals(first.valid)
    assert again.issues == first.issues
    assert first.issues == check_chunk(plan, source, Chunk(frame)).issues
    # row 2 (i = 0) breaks every rule; every fifth row from i = 3 has the zone "EST"; every
    # fifth from i = 0 is in GB, where a US mobile written without +1 is not valid
    est = {i + 2 for i in range(3, 40, 5)}
    gb = {i + 2 for i in range(0, 40, 5) if i % 3 != 1}
    assert {i.source_row for i in first.issues} == est | gb
