"""What a person reads on the terminal: one message per error, no table of zeros, no report
folder for a run that read nothing, and ``--keep-reports``."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from clitools import C01, C01_MAP, CHILD_TIMEOUT, ROOT

from etl.cli import cli
from etl.errors import ConfigError, ConfigErrorGroup, MappingError
from etl.report import prune_reports

OFFLINE = {"PATH": "/usr/bin:/bin"}


def test_a_missing_file_prints_one_line_exits_66_and_its_folder_says_why(
    tmp_path: Path,
) -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "etl", "validate", "nope.csv", "--mapping", str(C01_MAP)],
        cwd=tmp_path,
        env={**OFFLINE, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    assert (ran.returncode, ran.stdout, ran.stderr) == (66, "", "Error: nope.csv: no such file\n")
    (folder,) = (tmp_path / "reports").iterdir()  # the run's record: which file, and why
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["exit_code"], summary["rows_read"]) == (66, 0)
    assert [(f["path"], f["rows_read"], f["error"]) for f in summary["files"]] == [
        ("nope.csv", 0, "nope.csv: no such file")
    ]
    page = (folder / "report.html").read_text()
    assert "Nothing was read and nothing was sent:" in page and 'id="counts"' not in page
    assert "<mark>nope.csv: no such file</mark>" in page


class _Ran:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def _etl(monkeypatch: pytest.MonkeyPatch) -> object:
    """``voiptime-etl ARGS`` run in-process in folder ``cwd`` (no --report-dir added)."""

    def run(args: list[str], cwd: Path) -> _Ran:
        monkeypatch.chdir(cwd)
        unset = {k: None for k in os.environ if k.startswith("VOIPTIME_")}
        result = CliRunner().invoke(cli, args, env=unset, catch_exceptions=False)
        return _Ran(result.exit_code, result.stdout, result.stderr)

    return run


def test_a_bad_mapping_prints_its_problems_once_and_leaves_no_folder(
    tmp_path: Path, _etl: Any
) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text("project: 1\nfields: {name: first_name, surname: last_name}\n")
    ran = _etl(["validate", str(C01), "--mapping", str(mapping), "--report-dir", "r"], tmp_path)
    assert ran.returncode == 78 and ran.stdout == ""
    assert ran.stderr.count("Error:") == 1
    assert ran.stderr == (
        f"Error: {mapping}: 1 mapping problem:\n"
        "  - fields.email: required (the API needs a lead's email)\n"
        "Fix the mapping file and run again.\n"
    )
    assert not (tmp_path / "r").exists()


def test_a_file_read_with_another_missing_says_both_once(tmp_path: Path, _etl: Any) -> None:
    ran = _etl(
        ["validate", "nope.csv", str(C01), "--mapping", str(C01_MAP), "--report-dir", "r"],
        tmp_path,
    )
    assert ran.returncode == 66
    assert ran.stderr == "Error: nope.csv: no such file\n"
    assert "rows read" in ran.stdout and "Exit code: 66 (an input file was not found)" in ran.stdout
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert (summary["rows_read"], summary["exit_code"]) == (5, 66)


def _run_folder(tmp_path: Path, _etl: Any) -> Path:
    """A report folder as a real run writes it."""
    ran = _etl(["validate", str(C01), "--mapping", str(C01_MAP), "--report-dir", "one"], tmp_path)
    assert ran.returncode == 0, ran.stderr
    return tmp_path / "one"


def test_keep_reports_keeps_the_newest_and_only_ever_removes_its_own(
    tmp_path: Path, _etl: Any
) -> None:
    real = _run_folder(tmp_path, _etl)
    reports = tmp_path / "reports"
    for name in ("20200101T000000Z", "20200102T000000Z", "20200103T000000Z"):
        shutil.copytree(real, reports / name)
    (reports / "20200101T120000Z").mkdir()  # a person's folder with a time-stamp name
    (reports / "20200101T120000Z" / "summary.json").write_text('{"mine": 1}')
    shutil.copytree(real, reports / "20200101T130000Z")
    (reports / "20200101T130000Z" / "notes.txt").write_text("my notes")  # a file added
    shutil.copytree(real, reports / "keep-me")  # not a time-stamp name
    ran = _etl(["validate", str(C01), "--mapping", str(C01_MAP), "--keep-reports", "2"], tmp_path)
    assert ran.returncode == 0, ran.stderr
    left = sorted(p.name for p in reports.iterdir())
    current = [n for n in left if n.startswith("20") and n > "2021"]
    assert len(current) == 1 and (reports / current[0] / "report.html").is_file()
    assert left == sorted(
        ["20200101T120000Z", "20200101T130000Z", "20200103T000000Z", "keep-me", *current]
    )
    assert (reports / "20200101T130000Z" / "notes.txt").read_text() == "my notes"


def test_keep_reports_prunes_only_the_default_folder(tmp_path: Path, _etl: Any) -> None:
    ran = _etl(
        [
            "validate",
            str(C01),
            "--mapping",
            str(C01_MAP),
            "--report-dir",
            "r",
            "--keep-reports",
            "3",
        ],
        tmp_path,
    )
    assert ran.returncode == 2
    assert ran.stderr == (
        "Error: --keep-reports prunes the default reports/ folder; it cannot be used with "
        "--report-dir (clean that folder yourself)\n"
    )
    assert not (tmp_path / "r").exists()


def test_prune_reports_counts_only_its_own_folders(tmp_path: Path, _etl: Any) -> None:
    real = _run_folder(tmp_path, _etl)
    root = tmp_path / "reports"
    for day in range(1, 6):
        shutil.copytree(real, root / f"2026010{day}T000000Z")
    (root / "20260109T000000Z").mkdir()  # empty: not ours, does not count
    removed = prune_reports(root, 2)
    assert [p.name for p in removed] == ["20260101T000000Z", "20260102T000000Z", "20260103T000000Z"]
    assert sorted(p.name for p in root.iterdir()) == [
        "20260104T000000Z",
        "20260105T000000Z",
        "20260109T000000Z",
    ]
    assert prune_reports(root, 2) == [] and prune_reports(tmp_path / "none", 1) == []


def test_several_configuration_errors_are_one_error_printed_a_line_each(tmp_path: Path) -> None:
    # the library's message has no "Error:" in it; the CLI prints one for each error
    columns = MappingError("m.yaml", ["fields.email: column 'Emial' is not in a.csv"])
    group = ConfigErrorGroup(
        [columns, ConfigErrorGroup([ConfigError("No API key."), ConfigError("Second.")])]
    )
    assert (group.exit_code, len(group.errors), "Error" in str(group)) == (78, 3, False)
    assert str(group) == f"{columns}\nNo API key.\nSecond."
    mapping = tmp_path / "m.yaml"
    mapping.write_text(C01_MAP.read_text().replace("notes", "Remarks"))
    ran = CliRunner().invoke(
        cli,
        ["import", str(C01), "--mapping", str(mapping), "--state", str(tmp_path / "s.sqlite")],
        env={"VOIPTIME_API_KEY": ""},
    )
    assert ran.exit_code == 78
    assert ran.stderr == (
        f"Error: {mapping}: 1 mapping problem:\n"
        f"  - comments[0].column: column 'Remarks' is not in {C01} (header read on row 1) "
        "(its columns: 'first_name', 'last_name', 'email', 'phone', 'timezone', 'notes')\n"
        "Fix the mapping file and run again.\n"
        "Error: No API key: set VOIPTIME_API_KEY or pass --api-key-file (import needs one; "
        "validate runs offline without it).\n"
    )


def test_a_sandbox_port_in_use_is_one_error_line_and_exit_75(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ran = CliRunner().invoke(cli, ["sandbox", "--port", str(port)])
    assert (ran.exit_code, ran.stdout) == (75, "")
    assert ran.stderr == f"Error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
