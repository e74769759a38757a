"""A full disk or a failing write (ledger, rejects.csv, loaded.csv, summary.json, report.html) is
exit 74 with one message, the ledger consistent, and every file that could be written kept.

Faults are real: a report file that is a link to ``/dev/full`` (every write fails with ENOSPC),
and a subprocess whose files may not grow past a size (``RLIMIT_FSIZE``, with ``SIGXFSZ``
ignored so writes fail with EFBIG instead of killing the process)."""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from clitools import CHILD_TIMEOUT, env_for, run_cli, state

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")

MAPPING = """project: 1
defaults: {region: US, timezone: America/New_York}
key: [email]
fields: {name: first, surname: last, email: email}
phones: [{column: phone}]
"""
REPORTS = ("rejects.csv", "loaded.csv", "summary.json", "report.html")


def setup(tmp_path: Path, good: int) -> list[str]:
    """``good`` valid rows and 3 rejected ones; returns the import arguments."""
    lines = ["first,last,email,phone"]
    lines += [f"Ann{i},Lee{i},a{i}@example.com,+1415{2_000_000 + i:07d}" for i in range(good)]
    lines += ["Bad,Row,not-an-email,+14152999999"] * 3
    (tmp_path / "l.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "m.yaml").write_text(MAPPING, encoding="utf-8")
    return [
        "import",
        str(tmp_path / "l.csv"),
        "--mapping",
        str(tmp_path / "m.yaml"),
        "--state",
        str(tmp_path / "s.sqlite"),
    ]


def summary_of(report: Path) -> dict[str, Any]:
    return json.loads((report / "summary.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("full", REPORTS)
def test_a_report_file_on_a_full_disk_is_exit_74_and_the_rest_is_kept(
    sandbox: Any, tmp_path: Path, full: str
) -> None:
    """Before: rejects.csv on a full disk gave a traceback, exit 1 and no summary.json."""
    args = setup(tmp_path, 40)
    report = tmp_path / "r"
    report.mkdir()
    (report / full).symlink_to("/dev/full")
    ran = run_cli(args, env_for(sandbox), report, subprocess_mode=False)
    assert ran.code == 74
    assert "Traceback" not in ran.stderr
    errors = [line for line in ran.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1
    assert full in errors[0] and "No space left on device" in errors[0]
    assert "no data rows" not in ran.stderr
    for name in REPORTS:
        if name != full:
            assert (report / name).stat().st_size > 0, name
    if full != "summary.json":
        s = summary_of(report)
        assert s["exit_code"] == 74
        assert full in s["error"]
    if full != "report.html":
        assert "74" in (report / "report.html").read_text(encoding="utf-8")
    assert len(state(sandbox)["leads"]) == 40

    # the ledger is consistent: a rerun with room sends nothing again
    again = run_cli(args, env_for(sandbox), tmp_path / "again", subprocess_mode=False)
    assert again.code == 3  # the 3 bad rows
    s = summary_of(tmp_path / "again")
    assert (s["leads_created"], s["leads_unchanged"]) == (0, 40)
    assert len(state(sandbox)["leads"]) == 40


def _file_size_limit(size: int) -> Callable[[], None]:
    def apply() -> None:  # runs in the child before exec
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return apply


def test_ledger_on_a_full_disk_is_exit_74_and_a_rerun_duplicates_nothing(
    sandbox: Any, tmp_path: Path
) -> None:
    """No file may grow past 200 kB: the ledger fills up part-way through 300 leads."""
    args = setup(tmp_path, 300)
    report = tmp_path / "r"
    proc = subprocess.run(
        [sys.executable, "-m", "etl", *args, "--report-dir", str(report)],
        env=env_for(sandbox),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        preexec_fn=_file_size_limit(200_000),
    )
    assert proc.returncode == 74, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == [
        f"Error: {tmp_path / 's.sqlite'}: state file cannot be written: disk I/O error"
    ]
    assert "no data rows" not in proc.stderr
    s = summary_of(report)
    assert s["exit_code"] == 74
    sent = len(state(sandbox)["leads"])
    assert 0 < sent < 300

    again = run_cli(args, env_for(sandbox), tmp_path / "again", subprocess_mode=False)
    s = summary_of(tmp_path / "again")
    emails = sorted(lead["email"] for lead in state(sandbox)["leads"])
    # every row is on the server once: sent by the first run (recorded, or its answer lost
    # with the disk and so ambiguous now, never sent again) or by the rerun
    assert emails == sorted(f"a{i}@example.com" for i in range(300))
    assert s["leads_created"] == 300 - sent
    assert s["leads_unchanged"] + s["leads_ambiguous"] == sent
    assert again.code == (4 if s["leads_ambiguous"] else 3)


def test_claims_that_cannot_be_written_send_nothing_and_a_rerun_sends_each_once(
    sandbox: Any, tmp_path: Path
) -> None:
    """New leads are claimed (their ``sending`` rows committed) ahead of their POSTs; when that
    transaction fails (here SQLite itself refuses it, from a trigger), no POST leaves."""
    args = setup(tmp_path, 40)
    (tmp_path / "few.csv").write_text(
        "first,last,email,phone\nZed,Ray,z@example.com,+14153000000\n", encoding="utf-8"
    )
    few = [*args]
    few[1] = str(tmp_path / "few.csv")
    assert run_cli(few, env_for(sandbox), tmp_path / "r0").code == 0
    assert state(sandbox)["requests"]["POST /leads"] == 1
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        db.execute(
            "CREATE TRIGGER refuse_claims BEFORE INSERT ON leads WHEN NEW.claim_run IS NOT NULL "
            "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
        )
    db.close()
    ran = run_cli(args, env_for(sandbox), tmp_path / "r1")
    assert ran.code == 74
    errors = [line for line in ran.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == [
        f"Error: {tmp_path / 's.sqlite'}: state file cannot be written: disk I/O error"
    ]
    assert state(sandbox)["requests"]["POST /leads"] == 1  # none of the 40 left
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        assert db.execute("SELECT status, COUNT(*) FROM leads GROUP BY status").fetchall() == [
            ("created", 1)
        ]
        db.execute("DROP TRIGGER refuse_claims")
    db.close()
    again = run_cli(args, env_for(sandbox), tmp_path / "r2")
    assert again.code == 3  # the 3 bad rows
    s = summary_of(tmp_path / "r2")
    assert (s["leads_created"], s["leads_ambiguous"]) == (40, 0)
    emails = sorted(lead["email"] for lead in state(sandbox)["leads"])
    assert emails == sorted([*(f"a{i}@example.com" for i in range(40)), "z@example.com"])
