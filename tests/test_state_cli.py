"""``voiptime-etl state``: what the ledger holds, runs recorded, settling ambiguous rows."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from clitools import env_for, faults, run_cli, spring_id, state
from test_folder_runs import HEADER, folder_args, inbox, rows

from etl.sandbox import SandboxServer
from etl.state import SCHEMA_VERSION, Ledger


def test_ambiguous_row_listed_then_resolved_and_the_next_run_treats_it_as_created(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    folder = inbox(tmp_path, {"a.csv": HEADER + rows("a", 3)})
    env = env_for(sandbox)
    faults(sandbox, {"route": "POST /leads", "nth": 2, "drop": "after"})
    first = run_cli(folder_args(tmp_path, "inbox/*", "--concurrency", "1"), env, tmp_path / "r1")
    assert first.code == 4, first.stderr
    faults(sandbox)
    assert [p.name for p in folder.iterdir()] == ["a.csv"]  # left until the row is settled
    (info,) = first.summary()["files"]
    assert info["result"] == "left" and info["leads_ambiguous"] == 1
    st = str(tmp_path / "s.sqlite")

    shown = run_cli(["state", "--state", st, "--json"], env, tmp_path)
    assert shown.code == 0, shown.stderr
    ledger = json.loads(shown.stdout)
    assert ledger["leads"] == {"1": {"ambiguous": 1, "created": 2}}
    (row,) = ledger["ambiguous"]
    assert (row["project"], row["key"], row["source_row"]) == (1, "a1@example.com", 3)
    assert row["source_file"] == str(folder / "a.csv")
    assert [(r["id"], r["exit_code"], r["counts"]["leads_created"]) for r in ledger["runs"]] == [
        (1, 4, 2)
    ]
    text = run_cli(["state", "--state", st], env, tmp_path)
    assert "Ambiguous rows (1)" in text.stdout and "a1@example.com" in text.stdout
    assert "Last run (#1, " in text.stdout and "created 2 leads" in text.stdout

    # A person finds the lead in the dialer and settles it.
    lead_id = next(x["id"] for x in state(sandbox)["leads"] if x["email"] == "a1@example.com")
    settled = run_cli(
        [
            "state",
            "resolve",
            "a1@example.com",
            "--lead-id",
            str(lead_id),
            "--state",
            st,
            "--by",
            "ana",
        ],
        env,
        tmp_path,
    )
    assert settled.code == 0, settled.stderr
    assert re.fullmatch(
        f"a1@example.com \\(project 1\\): was ambiguous, now created as lead {lead_id}; "
        "recorded as settled by ana at [0-9-]{10}T[0-9:.]{12}Z\n",
        settled.stdout,
    ), settled.stdout
    assert state(sandbox)["campaign_entries"][spring_id(sandbox)] == [
        x["id"] for x in state(sandbox)["leads"] if x["email"] != "a1@example.com"
    ]

    again = run_cli(folder_args(tmp_path), env, tmp_path / "r2")
    assert again.code == 0, again.stderr
    assert state(sandbox)["requests"]["POST /leads"] == 3  # nothing sent again
    loaded = {r["key"]: (r["action"], r["lead_id"]) for r in again.loaded()}
    assert loaded["a1@example.com"] == ("unchanged", str(lead_id))
    assert lead_id in state(sandbox)["campaign_entries"][spring_id(sandbox)]
    assert list(folder.iterdir()) == []  # settled: the file is archived

    after = json.loads(run_cli(["state", "--state", st, "--json"], env, tmp_path).stdout)
    assert after["ambiguous"] == [] and after["leads"] == {"1": {"created": 3}}
    assert [(r["id"], r["exit_code"]) for r in after["runs"]] == [(2, 0), (1, 4)]
    (record,) = after["settlements"]
    assert {k: record[k] for k in ("who", "action", "key", "was", "lead_id", "source_row")} == {
        "who": "ana",
        "action": "resolve",
        "key": "a1@example.com",
        "was": "ambiguous",
        "lead_id": lead_id,
        "source_row": 3,
    }


def test_forget_sends_the_row_again_and_never_forgets_a_created_one(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    inbox(tmp_path, {"a.csv": HEADER + rows("a", 2)})
    env = env_for(sandbox)
    faults(sandbox, {"route": "POST /leads", "nth": 1, "drop": "after"})
    args = ["import", str(tmp_path / "inbox" / "a.csv"), "--mapping", str(tmp_path / "m.yaml")]
    args += ["--state", str(tmp_path / "s.sqlite"), "--concurrency", "1"]
    first = run_cli(args, env, tmp_path / "r1", subprocess_mode=False)
    assert first.code == 4
    faults(sandbox)
    st = str(tmp_path / "s.sqlite")
    refused = run_cli(
        ["state", "forget", "a0@example.com", "a1@example.com", "--state", st], env, tmp_path
    )
    assert refused.code == 2
    [a1] = [x["id"] for x in state(sandbox)["leads"] if x["email"] == "a1@example.com"]
    assert refused.stderr == (
        f"Error: {st}: key 'a1@example.com' is created (lead {a1}); forgetting it would "
        "create the lead a second time, so nothing was forgotten\n"
    )
    unknown = run_cli(
        ["state", "resolve", "zz@example.com", "--lead-id", "5", "--state", st], env, tmp_path
    )
    assert (unknown.code, unknown.stderr) == (
        2,
        f"Error: {st}: no row with key 'zz@example.com'; `voiptime-etl state` lists the keys of "
        "the ambiguous rows\n",
    )
    forgot = run_cli(
        ["state", "forget", "a0@example.com", "--state", st, "--by", "bo"], env, tmp_path
    )
    assert forgot.code == 0, forgot.stderr
    assert re.fullmatch(
        r"a0@example\.com \(project 1\): was ambiguous, forgotten \(the next run sends it\); "
        r"recorded as settled by bo at [0-9-]{10}T[0-9:.]{12}Z\n",
        forgot.stdout,
    ), forgot.stdout
    again = run_cli(args, env, tmp_path / "r2", subprocess_mode=False)
    assert again.code == 0
    assert state(sandbox)["requests"]["POST /leads"] == 3  # the dropped one sent once more


def test_state_of_a_missing_file_is_exit_66(tmp_path: Path) -> None:
    ran = run_cli(["state", "--state", str(tmp_path / "none.sqlite")], {}, tmp_path)
    assert (ran.code, ran.stderr) == (
        66,
        f"Error: {tmp_path / 'none.sqlite'}: no such state file (no import has run with it)\n",
    )


def test_a_version_1_ledger_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with sqlite3.connect(path) as db:  # the schema as version 1 wrote it
        db.executescript(
            """
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO meta VALUES ('schema_version', '1');
            CREATE TABLE leads (project INTEGER NOT NULL, key TEXT NOT NULL,
                status TEXT NOT NULL, lead_id INTEGER, payload_hash TEXT NOT NULL,
                payload TEXT NOT NULL, campaign_id TEXT, source_file TEXT, source_row INTEGER,
                updated_at TEXT NOT NULL DEFAULT 'then', PRIMARY KEY (project, key));
            CREATE TABLE enrolments (campaign_id TEXT NOT NULL, lead_id INTEGER NOT NULL,
                status TEXT NOT NULL, updated_at TEXT NOT NULL DEFAULT 'then',
                PRIMARY KEY (campaign_id, lead_id));
            INSERT INTO leads (project, key, status, lead_id, payload_hash, payload, source_file,
                source_row) VALUES (1, 'k', 'ambiguous', NULL, 'h', '{}', 'old.csv', 7);
            """
        )
    db.close()
    with Ledger.open_readonly(path) as old:  # read as it is: no runs yet, the row is there
        report = old.report()
    assert (report.schema_version, report.runs, len(report.ambiguous)) == (1, (), 1)
    with Ledger.open(path) as ledger:
        run_id = ledger.start_run("import", ["x.csv"], "2026-12-01T03:00:00Z")
        ledger.finish_run(run_id, {"leads_created": 1204, "exit_code": 0, "files": []})
        report = ledger.report()
    assert report.schema_version == SCHEMA_VERSION
    assert report.ambiguous[0].source_file == "old.csv" and report.ambiguous[0].source_row == 7
    assert report.runs[0].counts["leads_created"] == 1204
    text = run_cli(["state", "--state", str(path)], {}, tmp_path)
    assert "created 1,204 leads" in text.stdout


def test_state_piped_shows_the_last_runs_table_whole(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    # Was: at rich's 80 columns for a pipe, "┃ run ┃ sta… ┃ fin… ┃ … ┃ rej… ┃" and "│ 202… │".
    inbox(tmp_path, {"a.csv": HEADER + rows("a", 2)})
    env = env_for(sandbox)
    assert run_cli(folder_args(tmp_path), env, tmp_path / "r").code == 0
    st = str(tmp_path / "s.sqlite")
    (run,) = json.loads(run_cli(["state", "--state", st, "--json"], env, tmp_path).stdout)["runs"]
    text = run_cli(["state", "--state", st], env, tmp_path).stdout
    assert "…" not in text
    header = next(line for line in text.splitlines() if "┃ run " in line)
    assert [cell.strip() for cell in header.split("┃")[1:-1]] == [
        "run", "started", "finished", "files", "read", "rejected", "created", "updated",
        "unchanged", "ambiguous", "exit",
    ]  # fmt: skip
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines()]
    assert [row for row in cells if row[1:2] == [run["started_at"]]] == [[
        "1", run["started_at"], run["finished_at"], "1", "2", "0", "2", "0", "0", "0", "0",
    ]]  # fmt: skip
    narrow = run_cli(["state", "--state", st], {**env, "COLUMNS": "80"}, tmp_path).stdout
    assert "sta…" in narrow  # COLUMNS still wins
