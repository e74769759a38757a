"""Folder runs (``import 'inbox/*' --archive-dir done/``) against the sandbox, and etl.archive."""

from __future__ import annotations

import datetime as dt
import errno
import functools
import os
import signal
from pathlib import Path

import pytest
from clitools import env_for, logged, run_cli, state, table

from etl.archive import archive_file, is_partial_name, select_ready
from etl.pipeline import RunOptions, run
from etl.sandbox import SandboxServer
from etl.state import Ledger

MAPPING = """\
project: Demo
campaign: Spring outreach
defaults: {region: GB, timezone: Europe/London}
key: [email]
fields: {name: First, surname: Last, email: Email, timezoneId: Zone}
phones: [{column: Phone, label: main}]
"""

HEADER = "First,Last,Email,Phone,Zone\n"


def rows(prefix: str, n: int) -> str:
    return "".join(
        f"{prefix}{i},Lee,{prefix}{i}@example.com,+44 20 7946 {i:04d},Europe/London\n"
        for i in range(n)
    )


def inbox(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    for name, text in files.items():
        data = text if isinstance(text, bytes) else text.encode()
        (folder / name).write_bytes(data)
    (tmp_path / "m.yaml").write_text(MAPPING, encoding="utf-8")
    return folder


def folder_args(tmp_path: Path, pattern: str = "inbox/*", *extra: str) -> list[str]:
    return [
        "import",
        str(tmp_path / pattern),
        "--mapping",
        str(tmp_path / "m.yaml"),
        "--state",
        str(tmp_path / "s.sqlite"),
        "--archive-dir",
        str(tmp_path / "done"),
        "--settle-seconds",
        "0",
        *extra,
    ]


def today() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")


def test_three_good_files_archived_one_unreadable_left_with_its_report_exit_65(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    folder = inbox(
        tmp_path,
        {
            "a.csv": HEADER + rows("a", 2),
            "b.csv": HEADER + rows("b", 3),
            "c_bad.xlsx": b"this is not a workbook",
            "d.csv": HEADER + rows("d", 1),
        },
    )
    ran = run_cli(folder_args(tmp_path), env_for(sandbox), tmp_path / "r1")
    assert ran.code == 65, ran.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["c_bad.xlsx"]
    day = tmp_path / "done" / today()
    assert sorted(p.name for p in day.iterdir()) == ["a.csv", "b.csv", "d.csv"]
    summary = ran.summary()
    assert summary["exit_code"] == 65 and summary["leads_created"] == 6
    assert [(f["path"].rsplit("/", 1)[1], f["result"]) for f in summary["files"]] == [
        ("a.csv", "archived"),
        ("b.csv", "archived"),
        ("c_bad.xlsx", "failed"),
        ("d.csv", "archived"),
    ]
    bad = summary["files"][2]
    assert "c_bad.xlsx" in bad["error"] and bad["rows_read"] == 0
    assert summary["files"][1]["leads_created"] == 3
    assert summary["files"][1]["archived_to"] == str(day / "b.csv")
    assert logged(ran.stderr) == [
        f"Error: {folder / 'c_bad.xlsx'}: this is a text (CSV) file although its name ends .xlsx; "
        "rename it to end .csv and import it again (or open it in Excel and save it as .xlsx)"
    ]
    assert table(ran.stdout)[:11] == [
        ["rows read", "6"],
        ["rows valid", "6"],
        ["rows rejected", "0"],
        ["of them duplicates", "0"],
        ["leads created", "6"],
        ["leads updated", "0"],
        ["leads unchanged", "0"],
        ["leads failed", "0"],
        ["of them missing in the dialer", "0"],
        ["leads ambiguous", "0"],
        ["campaign entries added", "6"],
    ]
    # the Files table after it folds each path to the terminal's width
    assert "Files" in ran.stdout and "archived" in ran.stdout
    assert len(state(sandbox)["leads"]) == 6
    # The next night the bad file is still there (fixed or not); the archived ones are not read.
    again = run_cli(folder_args(tmp_path), env_for(sandbox), tmp_path / "r2")
    assert again.code == 65
    assert [f["result"] for f in again.summary()["files"]] == ["failed"]
    assert state(sandbox)["requests"]["POST /leads"] == 6


def test_a_file_missing_mapped_columns_stays_and_the_others_go_on(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    folder = inbox(
        tmp_path,
        {
            "a.csv": HEADER + rows("a", 2),
            "b.csv": "First,Last,Mail,Phone,Zone\n" + rows("b", 1),
        },
    )
    ran = run_cli(folder_args(tmp_path), env_for(sandbox), tmp_path / "r", subprocess_mode=False)
    assert ran.code == 78, ran.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["b.csv"]
    files = ran.summary()["files"]
    assert [f["result"] for f in files] == ["archived", "failed"]
    assert "column 'Email' is not in" in files[1]["error"]
    assert len(state(sandbox)["leads"]) == 2


def test_a_failed_file_is_one_short_line_of_the_files_table_its_error_printed_once(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    # Was: the whole error in the table's result column, wrapped into ~35 lines per failed
    # file at 80 columns, and the file's path cut to "inbox/04-no…".
    unclosed = HEADER + rows("b", 3) + 'b9,Lee,b9@example.com,"+44 20 7946 0009,Europe/London\n'
    folder = inbox(tmp_path, {"a.csv": HEADER + rows("a", 1), "b_unclosed_quote.csv": unclosed})
    error = (
        f"Error: {folder / 'b_unclosed_quote.csv'}, row 5: a quote opened on line 5 (column D) "
        "is never closed"
    )
    wide = run_cli(folder_args(tmp_path), {**env_for(sandbox), "COLUMNS": "250"}, tmp_path / "r")
    assert wide.code == 65
    assert wide.stderr.count(error) == 1 and "never closed" not in wide.stdout
    failed = [line for line in wide.stdout.splitlines() if "b_unclosed_quote.csv" in line]
    assert [[cell.strip() for cell in line.split("│")[1:-1]] for line in failed] == [
        [str(folder / "b_unclosed_quote.csv"), "0", "0", "", "", "", "failed (see its Error line)"]
    ]
    (folder / "c.csv").write_text(HEADER + rows("c", 1), encoding="utf-8")  # the next day's
    narrow = run_cli(folder_args(tmp_path), {**env_for(sandbox), "COLUMNS": "80"}, tmp_path / "r2")
    assert narrow.code == 65 and "…" not in narrow.stdout  # the path folds, nothing is cut
    assert "Files" in narrow.stdout and "never" not in narrow.stdout


def test_files_still_being_written_are_left_for_the_next_run(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    folder = inbox(
        tmp_path,
        {
            "a.csv": HEADER + rows("a", 1),
            "b.csv": HEADER + rows("b", 1),
            "c.csv.part": HEADER + rows("c", 1),
            "~$d.csv": HEADER + rows("d", 1),
        },
    )
    looks: list[float] = []

    def pause(seconds: float) -> None:
        """Between the two looks, another program appends a row to b.csv."""
        looks.append(seconds)
        with open(folder / "b.csv", "a", encoding="utf-8") as fh:
            fh.write(rows("b", 2).splitlines(keepends=True)[1])

    options = RunOptions(
        sources=sorted(folder.iterdir()),
        mapping=tmp_path / "m.yaml",
        report_dir=tmp_path / "r",
        state=tmp_path / "s.sqlite",
        archive_dir=tmp_path / "done",
        settle_seconds=7,
    )
    from etl.client import VoiptimeClient
    from etl.config import Settings

    settings = Settings.build({"VOIPTIME_API_URL": sandbox.url, "VOIPTIME_API_KEY": "sandbox-key"})
    client = functools.partial(VoiptimeClient.from_settings, settings)
    result = run(options, client, pause=pause)
    assert looks == [7]
    assert result.exit_code == 0, result.summary["error"]
    assert sorted(p.name for p in folder.iterdir()) == ["b.csv", "c.csv.part", "~$d.csv"]
    results = {Path(f["path"]).name: f["result"] for f in result.summary["files"]}
    assert results == {
        "a.csv": "archived",
        "b.csv": "left",
        "c.csv.part": "left",
        "~$d.csv": "left",
    }
    assert [lead["email"] for lead in state(sandbox)["leads"]] == ["a0@example.com"]
    # Written completely, b.csv goes the next night (both of its rows).
    again = run(options, client, pause=lambda s: None)
    assert again.summary["leads_created"] == 2
    assert not (folder / "b.csv").exists()


def test_the_crash_hooks_are_injected_into_a_run(sandbox: SandboxServer, tmp_path: Path) -> None:
    # what the crash tests kill the process in: once per lead recorded, once per file moved
    folder = inbox(tmp_path, {"a.csv": HEADER + rows("a", 2), "b.csv": HEADER + rows("b", 1)})
    seen: list[str] = []
    options = RunOptions(
        sources=sorted(folder.iterdir()),
        mapping=tmp_path / "m.yaml",
        report_dir=tmp_path / "r",
        state=tmp_path / "s.sqlite",
        archive_dir=tmp_path / "done",
        settle_seconds=0,
        on_created=lambda: seen.append("created"),
        before_archive=lambda: seen.append("archive"),
    )
    from etl.client import VoiptimeClient
    from etl.config import Settings

    settings = Settings.build({"VOIPTIME_API_URL": sandbox.url, "VOIPTIME_API_KEY": "sandbox-key"})
    result = run(options, functools.partial(VoiptimeClient.from_settings, settings))
    assert result.exit_code == 0, result.summary["error"]
    assert sorted(seen) == ["archive", "archive", "created", "created", "created"]
    assert sorted(p.name for p in folder.iterdir()) == []


def test_crash_between_recording_and_moving_imports_nothing_twice(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    folder = inbox(tmp_path, {"a.csv": HEADER + rows("a", 3), "b.csv": HEADER + rows("b", 2)})
    killed = run_cli(
        folder_args(tmp_path),
        env_for(sandbox, VOIPTIME_TEST_CRASH_BEFORE_ARCHIVE="1"),
        tmp_path / "r1",
    )
    assert killed.code == -signal.SIGKILL
    # a.csv's rows are all recorded, the process died before moving it
    assert sorted(p.name for p in folder.iterdir()) == ["a.csv", "b.csv"]
    assert state(sandbox)["requests"]["POST /leads"] == 3
    rerun = run_cli(folder_args(tmp_path), env_for(sandbox), tmp_path / "r2")
    assert rerun.code == 0, rerun.stderr
    assert list(folder.iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "done" / today()).iterdir()) == ["a.csv", "b.csv"]
    assert state(sandbox)["requests"]["POST /leads"] == 5  # b's two; a's three not again
    assert state(sandbox)["requests"].get("PATCH /leads", 0) == 0
    files = rerun.summary()["files"]
    assert [f["result"] for f in files] == ["archived", "archived"]
    assert files[0]["rows_read"] == 0
    assert files[0]["reason"] == "every row was recorded by run 1; not read again"
    with Ledger.open_readonly(tmp_path / "s.sqlite") as ledger:
        runs = ledger.report().runs
    assert [(r.id, r.exit_code, r.finished_at is None) for r in runs] == [
        (2, 0, False),
        (1, None, True),
    ]
    assert runs[0].counts["leads_created"] == 2


def test_a_dry_folder_run_moves_nothing(sandbox: SandboxServer, tmp_path: Path) -> None:
    folder = inbox(tmp_path, {"a.csv": HEADER + rows("a", 1)})
    ran = run_cli(
        folder_args(tmp_path, "inbox/*", "--dry-run"),
        env_for(sandbox),
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == 0, ran.stderr
    assert [p.name for p in folder.iterdir()] == ["a.csv"]
    assert [f["result"] for f in ran.summary()["files"]] == ["would be archived"]


def test_an_empty_inbox_is_a_quiet_night(sandbox: SandboxServer, tmp_path: Path) -> None:
    inbox(tmp_path, {})
    ran = run_cli(
        folder_args(tmp_path, "inbox/*.csv"),
        env_for(sandbox),
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == 0, ran.stderr
    assert logged(ran.stderr) == [
        f"WARNING: {tmp_path / 'inbox/*.csv'}: no files match; nothing to import from it tonight"
    ]
    s = ran.summary()
    assert (s["rows_read"], s["files"], s["exit_code"]) == (0, [], 0)
    plain = run_cli(
        [
            "import",
            str(tmp_path / "inbox" / "*.csv"),
            "--mapping",
            str(tmp_path / "m.yaml"),
            "--state",
            str(tmp_path / "s.sqlite"),
        ],
        env_for(sandbox),
        tmp_path / "r2",
        subprocess_mode=False,
    )
    assert plain.code == 66  # without --archive-dir a pattern matching nothing is a mistake


# --- etl.archive ---------------------------------------------------------------------------------


def test_archive_names_never_clash(tmp_path: Path) -> None:
    day = tmp_path / "done" / "2026-12-01"
    moved = []
    for text in ("one", "two", "three"):
        source = tmp_path / "leads.csv"
        source.write_text(text)
        moved.append(archive_file(source, day))
    assert [p.name for p in moved] == ["leads.csv", "leads-1.csv", "leads-2.csv"]
    assert [p.read_text() for p in moved] == ["one", "two", "three"]


def test_archive_across_file_systems_copies_then_removes(tmp_path: Path) -> None:
    source = tmp_path / "leads.csv"
    source.write_bytes(b"a,b\n1,2\n")
    os.utime(source, (1_700_000_000, 1_700_000_000))
    renames: list[tuple[Path, Path]] = []

    def cross_device(src: Path, dst: Path) -> None:
        renames.append((src, dst))
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    target = archive_file(source, tmp_path / "done", replace=cross_device)
    assert renames == [(source, tmp_path / "done" / "leads.csv")]
    assert target == tmp_path / "done" / "leads.csv"
    assert target.read_bytes() == b"a,b\n1,2\n" and not source.exists()
    assert target.stat().st_mtime == 1_700_000_000
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["leads.csv"]


def test_archive_failure_is_exit_74_and_the_file_stays(tmp_path: Path) -> None:
    source = tmp_path / "leads.csv"
    source.write_text("x")
    (tmp_path / "done").write_text("a file, not a folder")
    from etl.errors import OutputError

    with pytest.raises(OutputError, match="cannot be moved to the archive") as info:
        archive_file(source, tmp_path / "done" / "2026-12-01")
    assert info.value.exit_code == 74 and source.read_text() == "x"


@pytest.mark.parametrize(
    ("name", "partial"),
    [
        ("leads.csv", False),
        ("leads.csv.part", True),
        ("leads.CSV.PART", True),
        ("~$leads.xlsx", True),
        (".~lock.leads.csv#", True),
        ("leads.crdownload", True),
        ("part.csv", False),
    ],
)
def test_partial_names(name: str, partial: bool) -> None:
    assert is_partial_name(Path(name)) is partial


def test_select_ready_missing_file_counts_as_ready(tmp_path: Path) -> None:
    ready, left = select_ready([tmp_path / "gone.csv"], 0, pause=lambda s: None)
    assert ready == [tmp_path / "gone.csv"] and left == []
