"""RunSummary: summary.json, the ledger's counts and etl.import_files are one object."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from clitools import LIST_MAPPING, SPRING, write_list

import etl
from etl.errors import RunFailedError
from etl.pipeline import RunOptions, run
from etl.state import RUN_COUNTS
from etl.summary import RunSummary


def _validate(tmp_path: Path) -> RunSummary:
    source = tmp_path / "leads.csv"
    source.write_text(
        "First Name,Last Name,Email,Phone\nAda,Lee,ada@example.com,+14155552671\n"
        "Bob,Lee,bob@example,+14155552672\nAda,Lee,ada@example.com,+14155552673\n",
        encoding="utf-8",
    )
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "project: 1\nkey: [email]\ndefaults: {timezone: America/New_York}\n"
        "fields: {name: First Name, surname: Last Name, email: Email}\nphones: [{column: Phone}]\n",
        encoding="utf-8",
    )
    options = RunOptions(
        sources=[source], mapping=mapping, command="validate", report_dir=tmp_path / "r"
    )
    return run(options).summary


def test_to_json_is_summary_json_and_the_attributes_are_its_values(tmp_path):
    summary = _validate(tmp_path)
    written = json.loads((tmp_path / "r" / "summary.json").read_text(encoding="utf-8"))
    assert summary.to_json() == written
    assert list(summary.to_json()) == list(written)  # the keys in their order
    assert (summary.rows_read, summary.rows_valid, summary.rows_rejected) == (3, 1, 2)
    assert (summary.rows_duplicate, summary.exit_code, summary.command) == (1, 3, "validate")
    assert summary.errors_by_field == written["errors_by_field"] == {"email": 1, "key": 1}
    assert summary.files[0]["path"] == str(tmp_path / "leads.csv")
    assert summary["rows_read"] == 3 and summary.report_dir == tmp_path / "r"
    assert "retry_at" not in written and "report_dir" not in written
    with pytest.raises(KeyError):
        summary["report_dir"]


def test_the_ledger_keeps_the_run_counts_of_the_summary(tmp_path, sandbox):
    source = write_list(tmp_path / "list.csv", 3)
    (tmp_path / "m.yaml").write_text(LIST_MAPPING, encoding="utf-8")
    summary = etl.import_files(
        source,
        tmp_path / "m.yaml",
        api_key="sandbox-key",
        api_url=sandbox.url,
        campaign=SPRING,
        state=tmp_path / "s.sqlite",
        report_dir=tmp_path / "r",
    )
    assert isinstance(summary, RunSummary)
    assert (summary.leads_created, summary.campaign_entries_added, summary.exit_code) == (3, 3, 0)
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        (counts,) = db.execute("SELECT counts FROM runs WHERE id = ?", (summary.run_id,)).fetchone()
    assert json.loads(counts) == {k: getattr(summary, k) for k in RUN_COUNTS}
    assert list(json.loads(counts)) == list(RUN_COUNTS)
    assert summary.as_dict() == {**summary.to_json(), "report_dir": str(tmp_path / "r")}
    assert summary.raise_for_exit_code() is summary
    with pytest.raises(RunFailedError) as failed:
        summary.raise_for_exit_code(accept=(3,))
    assert failed.value.exit_code == 0
