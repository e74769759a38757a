"""etl.state: the ledger's transitions, crash recovery, lock and schema version."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from clitools import CHILD_TIMEOUT, env_for, faults, release, run_cli, state, wait_held
from clitools import import_args as imp

from etl.errors import LockedError, OutputError, StateVersionError
from etl.sandbox import SandboxServer
from etl.state import SCHEMA_VERSION, Ledger, _Job, _mount_type, payload_hash

PAYLOAD = {
    "groupId": 1,
    "name": "Ann",
    "email": "ann@example.com",
    "comments": [{"text": "hi", "dateTime": "2026-11-30T10:00:00Z"}],
}


def test_lifecycle_and_lookup(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "s.sqlite") as ledger:
        ledger.mark_sending(1, "ann@example.com", PAYLOAD, "c" * 24, "a.csv", 2)
        assert ledger.lookup(1, ["ann@example.com"])["ann@example.com"].status == "sending"
        ledger.mark_created(1, "ann@example.com", 1001)
        ledger.mark_enrolling("c" * 24, [1001])
        assert ledger.pending_enrolments(1, "c" * 24) == []
        ledger.finish_enrolling("c" * 24, [1001], "done")
        entry = ledger.lookup(1, ["ann@example.com", "other"])
        assert list(entry) == ["ann@example.com"]
        e = entry["ann@example.com"]
        assert (e.status, e.lead_id, e.payload, e.enrolled) == (
            "created",
            1001,
            PAYLOAD,
            frozenset({"c" * 24}),
        )
        assert ledger.lookup(2, ["ann@example.com"]) == {}  # keyed by project too
        assert ledger.counts() == {"created": 1, "enrol_done": 1}


def test_the_created_hook_runs_after_each_created_commit(tmp_path: Path) -> None:
    # the crash tests inject a hook that kills the process here: what it sees is committed
    path = tmp_path / "s.sqlite"
    seen: list[dict[str, int]] = []

    def hook() -> None:
        with Ledger.open_readonly(path) as other:
            seen.append(other.counts())

    with Ledger.open(path, on_created=hook) as ledger:
        ledger.mark_sending(1, "a", PAYLOAD, None, "f.csv", 2)
        ledger.mark_created(1, "a", 1001)
        ledger.mark_sending(1, "b", PAYLOAD, None, "f.csv", 3)
        taken = ledger.mark_created(1, "b", 1001)  # the id is a's: b is ambiguous, no hook
        ledger.mark_sending(1, "c", PAYLOAD, None, "f.csv", 4)
        ledger.mark_created(1, "c", 1003)
    assert taken == "key 'a' (f.csv row 2)"
    assert seen == [{"created": 1}, {"created": 2, "ambiguous": 1}]


def test_pending_enrolments_after_a_crash_between_create_and_enrol(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "s.sqlite") as ledger:
        for i, key in enumerate(["a", "b", "c"]):
            ledger.mark_sending(1, key, PAYLOAD, "camp", "f.csv", i + 2)
            ledger.mark_created(1, key, 2000 + i)
        ledger.mark_enrolling("camp", [2000])
        ledger.finish_enrolling("camp", [2000], "done")
    with Ledger.open(tmp_path / "s.sqlite") as ledger:
        assert ledger.pending_enrolments(1, "camp") == [2001, 2002]
        assert ledger.pending_enrolments(1, "other") == []


def test_in_flight_rows_become_ambiguous_on_reopen(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "s.sqlite")
    ledger.mark_sending(1, "a", PAYLOAD, None, "f.csv", 2)
    ledger.mark_enrolling("camp", [7])
    ledger.close()  # as if the process died here
    with Ledger.open(tmp_path / "s.sqlite") as again:
        assert again.lookup(1, ["a"])["a"].status == "ambiguous"
        assert again.counts() == {"ambiguous": 1, "enrol_ambiguous": 1}


def test_forget_and_failed_enrolment_leave_no_trace(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "s.sqlite") as ledger:
        ledger.mark_sending(1, "a", PAYLOAD, None, "f.csv", 2)
        ledger.forget(1, "a")
        ledger.mark_enrolling("camp", [1, 2])
        ledger.finish_enrolling("camp", [1, 2], "failed")
        assert ledger.counts() == {}


def test_second_open_is_locked(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "s.sqlite"):
        with pytest.raises(LockedError, match="another voiptime-etl run") as info:
            Ledger.open(tmp_path / "s.sqlite")
        assert info.value.exit_code == 75
    Ledger.open(tmp_path / "s.sqlite").close()  # free again


def test_readonly_open_of_a_missing_file_is_empty_and_creates_nothing(tmp_path: Path) -> None:
    ledger = Ledger.open_readonly(tmp_path / "none.sqlite")
    assert ledger.lookup(1, ["a"]) == {} and ledger.counts() == {}
    assert not (tmp_path / "none.sqlite").exists()


def test_unwritable_state_is_exit_74(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError) as info:
        Ledger.open(blocker / "s.sqlite")
    assert info.value.exit_code == 74


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Ledger.open(tmp_path / "s.sqlite").close()
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    db.close()
    with pytest.raises(StateVersionError, match="newer voiptime-etl") as info:
        Ledger.open(tmp_path / "s.sqlite")
    assert info.value.exit_code == 74


def test_payload_hash_ignores_comment_time_only() -> None:
    later = {**PAYLOAD, "comments": [{"text": "hi", "dateTime": "2027-01-01T00:00:00Z"}]}
    assert payload_hash(PAYLOAD) == payload_hash(later)
    assert payload_hash(PAYLOAD) != payload_hash({**PAYLOAD, "name": "Anne"})
    assert payload_hash(PAYLOAD) != payload_hash({**PAYLOAD, "comments": [{"text": "ho"}]})


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
CREATE TABLE leads (
    project INTEGER NOT NULL, key TEXT NOT NULL, status TEXT NOT NULL, lead_id INTEGER,
    payload_hash TEXT NOT NULL, payload TEXT NOT NULL, campaign_id TEXT, source_file TEXT,
    source_row INTEGER, updated_at TEXT NOT NULL DEFAULT 'x', PRIMARY KEY (project, key)
);
CREATE TABLE enrolments (
    campaign_id TEXT NOT NULL, lead_id INTEGER NOT NULL, status TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT 'x', PRIMARY KEY (campaign_id, lead_id)
);
INSERT INTO leads (project, key, status, lead_id, payload_hash, payload, source_file, source_row)
    VALUES (1, 'ann@example.com', 'created', 1001, 'h', '{"name": "Ann"}', 'a.csv', 8);
"""


def test_a_schema_1_ledger_is_read_as_it_is_and_migrated_when_opened_to_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(V1_SCHEMA)
    db.close()
    with Ledger.open_readonly(path) as ledger:  # a dry run writes nothing, not even a migration
        e = ledger.lookup(1, ["ann@example.com"])["ann@example.com"]
        assert (e.lead_id, e.source_file, e.source_row, e.source_pinned) == (
            1001,
            "a.csv",
            8,
            False,
        )
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta").fetchall() == [("1",)]
    db.close()
    with Ledger.open(path) as ledger:
        ledger.mark_updated(1, "ann@example.com", {"name": "Anne"}, ("b.csv", 3), pin=True)
        e = ledger.lookup(1, ["ann@example.com"])["ann@example.com"]
        assert (e.payload, e.source_file, e.source_row, e.source_pinned) == (
            {"name": "Anne"},
            "b.csv",
            3,
            True,
        )
    with sqlite3.connect(path) as db:
        # 3: leads.source_pinned; 4: state missing, note, baselines; 5: stages, leads.phone_id;
        # 6: runs.boot_id, leads.claim_run
        assert SCHEMA_VERSION == 6
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchall() == [
            ("6",)
        ]
        assert db.execute("SELECT COUNT(*) FROM stages").fetchall() == [(0,)]
    db.close()
    with Ledger.open(path) as ledger:  # opening again migrates nothing twice
        assert ledger.lookup(1, ["ann@example.com"])["ann@example.com"].source_pinned is True


def test_each_lead_remembers_the_row_its_values_came_from(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "s.sqlite") as ledger:
        ledger.mark_sending(1, "ann@example.com", PAYLOAD, None, "a.csv", 2)
        ledger.mark_created(1, "ann@example.com", 1001)
        e = ledger.lookup(1, ["ann@example.com"])["ann@example.com"]
        assert (e.source_file, e.source_row, e.source_pinned) == ("a.csv", 2, False)
        ledger.mark_updated(1, "ann@example.com", {**PAYLOAD, "name": "Anne"}, ("a.csv", 9))
        e = ledger.lookup(1, ["ann@example.com"])["ann@example.com"]
        assert (e.payload["name"], e.source_file, e.source_row, e.source_pinned) == (
            "Anne",
            "a.csv",
            9,
            False,
        )
        ledger.mark_updated(1, "ann@example.com", PAYLOAD)  # no source given: kept
        e = ledger.lookup(1, ["ann@example.com"])["ann@example.com"]
        assert (e.payload, e.source_file, e.source_row) == (PAYLOAD, "a.csv", 9)


SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1'), ('api_url', 'http://x/api');
CREATE TABLE leads (
    project      INTEGER NOT NULL,
    key          TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('sending', 'created', 'ambiguous', 'rejected')),
    lead_id      INTEGER,
    payload_hash TEXT NOT NULL,
    payload      TEXT NOT NULL,
    campaign_id  TEXT,
    source_file  TEXT,
    source_row   INTEGER,
    updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (project, key)
);
CREATE TABLE enrolments (
    campaign_id TEXT NOT NULL,
    lead_id     INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('sending', 'done', 'ambiguous')),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (campaign_id, lead_id)
);
INSERT INTO leads (project, key, status, lead_id, payload_hash, payload, campaign_id,
                   source_file, source_row, updated_at)
VALUES (1, 'a', 'created', 5500, 'h', '{"name": "Ann"}', 'camp', 'f.csv', 2,
        '2026-01-01T00:00:00Z');
INSERT INTO enrolments (campaign_id, lead_id, status) VALUES ('camp', 5500, 'done');
"""


def test_a_schema_1_ledger_is_migrated_and_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_1)
    db.close()
    with Ledger.open_readonly(path) as old:  # a dry run reads it as it is
        assert old.lookup(1, ["a"])["a"].status == "created" and not old.knows_project(2)
        assert old.baseline("project:1") is None
    with Ledger.open(path) as ledger:
        entry = ledger.lookup(1, ["a"])["a"]
        assert (entry.status, entry.lead_id, entry.payload, entry.enrolled) == (
            "created",
            5500,
            {"name": "Ann"},
            frozenset({"camp"}),
        )
        ledger.mark_missing(1, "a", "PATCH /leads/5500 answered 404")
        assert ledger.lookup(1, ["a"])["a"].note == "PATCH /leads/5500 answered 404"
        assert ledger.counts() == {"missing": 1, "enrol_done": 1}
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )
        assert db.execute("SELECT source_file, source_row FROM leads").fetchone() == ("f.csv", 2)
        assert db.execute("SELECT value FROM meta WHERE key='api_url'").fetchone() == (
            "http://x/api",
        )
    db.close()


#: A ledger as voiptime-etl's schema 3 wrote it (schema 1, then its steps 2 and 3 as they were
#: released), with a lead that has its pinned source: written out here, not taken from etl.state, so
#: a change to the migrations' text cannot change the old file too.
SCHEMA_3 = (
    SCHEMA_1
    + """
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    command     TEXT NOT NULL,
    sources     TEXT NOT NULL DEFAULT '[]',
    files       TEXT NOT NULL DEFAULT '[]',
    counts      TEXT NOT NULL DEFAULT '{}',
    exit_code   INTEGER,
    error       TEXT NOT NULL DEFAULT ''
);
CREATE TABLE files (
    fingerprint TEXT PRIMARY KEY,
    path        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('recorded', 'archived')),
    run_id      INTEGER,
    archived_to TEXT,
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE settlements (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    who         TEXT NOT NULL,
    action      TEXT NOT NULL,
    project     INTEGER NOT NULL,
    key         TEXT NOT NULL,
    was         TEXT NOT NULL,
    lead_id     INTEGER,
    source_file TEXT,
    source_row  INTEGER
);
ALTER TABLE leads ADD COLUMN source_pinned INTEGER NOT NULL DEFAULT 0;
UPDATE leads SET source_pinned = 1;
UPDATE meta SET value = '3' WHERE key = 'schema_version';
"""
)


#: The same as schema 4 wrote it: ``leads`` rebuilt with the state ``missing`` and ``note``, and
#: ``baselines``. A new ledger's ``leads`` comes from the text schema 1 and schema 4 share in
#: etl.state: this file, written out, pins that text.
SCHEMA_4 = (
    SCHEMA_3
    + """
CREATE TABLE leads_v4 (
    project      INTEGER NOT NULL,
    key          TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN
                     ('sending', 'created', 'ambiguous', 'rejected', 'missing')),
    lead_id      INTEGER,
    payload_hash TEXT NOT NULL,
    payload      TEXT NOT NULL,
    campaign_id  TEXT,
    source_file  TEXT,
    source_row   INTEGER,
    updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    source_pinned INTEGER NOT NULL DEFAULT 0,
    note         TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (project, key)
);
INSERT INTO leads_v4 (project, key, status, lead_id, payload_hash, payload, campaign_id,
                      source_file, source_row, updated_at, source_pinned)
    SELECT project, key, status, lead_id, payload_hash, payload, campaign_id, source_file,
           source_row, updated_at, source_pinned FROM leads;
DROP TABLE leads;
ALTER TABLE leads_v4 RENAME TO leads;
CREATE TABLE baselines (
    what         TEXT PRIMARY KEY,
    server_count INTEGER NOT NULL,
    ledger_count INTEGER NOT NULL,
    at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
UPDATE meta SET value = '4' WHERE key = 'schema_version';
"""
)


def _schema(path: Path) -> list[tuple[str, str, str, str | None]]:
    """A ledger's schema as SQLite keeps it: every table and index, with its SQL text (not the
    pages it is stored in)."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")
        schema = rows.fetchall()
    db.close()
    return schema


@pytest.mark.parametrize(
    "old", [SCHEMA_1, SCHEMA_3, SCHEMA_4], ids=["schema 1", "schema 3", "schema 4"]
)
def test_an_old_ledger_is_migrated_to_exactly_the_schema_of_a_new_one(
    tmp_path: Path, old: str
) -> None:
    Ledger.open(tmp_path / "new.sqlite").close()
    with sqlite3.connect(tmp_path / "old.sqlite") as db:
        db.executescript(old)
    db.close()
    with Ledger.open(tmp_path / "old.sqlite") as ledger:
        e = ledger.lookup(1, ["a"])["a"]
        assert (e.status, e.lead_id, e.payload, e.source_file, e.source_row, e.enrolled) == (
            "created",
            5500,
            {"name": "Ann"},
            "f.csv",
            2,
            frozenset({"camp"}),
        )
        assert e.source_pinned is (old != SCHEMA_1)
    new, migrated = _schema(tmp_path / "new.sqlite"), _schema(tmp_path / "old.sqlite")
    assert [name for _, name, _, _ in new] == [
        "baselines",
        "enrolments",
        "enrolments_lead_id",
        "files",
        "leads",
        "leads_lead_id",
        "meta",
        "runs",
        "settlements",
        "sqlite_autoindex_baselines_1",
        "sqlite_autoindex_enrolments_1",
        "sqlite_autoindex_files_1",
        "sqlite_autoindex_leads_1",
        "sqlite_autoindex_meta_1",
        "sqlite_autoindex_stages_1",
        "sqlite_sequence",
        "stages",
    ]
    assert migrated == new


def test_an_interrupt_inside_a_group_commit_writes_nothing_and_answers_every_write(
    tmp_path: Path,
) -> None:
    # Two threads' writes share one transaction; a KeyboardInterrupt while the second runs must
    # roll the group back and answer the first with an error: had it returned as written, its
    # caller would send a POST with no committed ``sending`` row.
    def insert(key: str) -> Any:
        return lambda conn: conn.execute("INSERT INTO meta VALUES (?, '1')", (key,))

    def interrupted(conn: sqlite3.Connection) -> None:
        raise KeyboardInterrupt

    with Ledger.open(tmp_path / "s.sqlite") as ledger:
        first, second = _Job(insert("first"), True), _Job(interrupted, True)
        with pytest.raises(KeyboardInterrupt):
            ledger._commit([first, second])
        assert isinstance(first.error, OutputError)
        assert str(first.error).endswith("state file write interrupted")
        ledger._write("INSERT INTO meta VALUES ('after', '1')", ())  # no transaction left open
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        keys = {k for (k,) in db.execute("SELECT key FROM meta WHERE key IN ('first', 'after')")}
    db.close()
    assert keys == {"after"}


def test_one_lead_id_is_never_recorded_for_two_keys(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "s.sqlite") as ledger:
        for row, key in enumerate(["a", "b"], start=2):
            ledger.mark_sending(1, key, PAYLOAD, None, "f.csv", row)
        assert ledger.mark_created(1, "a", 1001) is None
        assert ledger.mark_created(1, "b", 1001) == "key 'a' (f.csv row 2)"
        found = ledger.lookup(1, ["a", "b"])
        assert (found["a"].status, found["a"].lead_id) == ("created", 1001)
        assert (found["b"].status, found["b"].lead_id) == ("ambiguous", None)
        assert (
            found["b"].note == "the API answered lead id 1001, already the lead of key 'a' "
            "(f.csv row 2)"
        )


def test_missing_then_recreated_drops_the_old_id(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "s.sqlite") as ledger:
        ledger.mark_sending(1, "a", PAYLOAD, None, "f.csv", 2)
        ledger.mark_created(1, "a", 1001)
        ledger.mark_missing(1, "a", "gone")
        assert ledger.tally(1, None) == {
            "created": 0,
            "ambiguous": 0,
            "enrolled": 0,
            "enrol_ambiguous": 0,
        }
        ledger.mark_sending(1, "a", PAYLOAD, None, "f.csv", 2, "re-created")
        assert ledger.lookup(1, ["a"])["a"].lead_id is None
        ledger.mark_created(1, "a", 1002)
        assert ledger.lookup(1, ["a"])["a"].lead_id == 1002
        assert ledger.knows_project(1) and not ledger.knows_project(2)
        ledger.set_baseline("project:2", 10, 0)
        assert ledger.knows_project(2)
        assert ledger.baseline("project:2")[:2] == (10, 0)  # type: ignore[index]


# Found by a new user in a trial run (were tests/test_regressions.py): each pinned through the
# CLI against the sandbox.


def test_ledger_belongs_to_one_api(sandbox: Any, tmp_path: Path) -> None:
    assert run_cli(imp(tmp_path), env_for(sandbox), tmp_path / "r1").code == 0
    with SandboxServer() as other:
        other.start()
        ran = run_cli(imp(tmp_path), env_for(other), tmp_path / "r2", subprocess_mode=False)
        assert ran.code == 78
        assert ran.stderr == (
            f"Error: {tmp_path / 's.sqlite'}: this state file records the leads sent to "
            f"{sandbox.url}, but this run talks to {other.url}; use another --state for another "
            "API or account\n"
        )
        assert state(other)["requests"] == {}


def test_lock_holds_through_a_symlink(sandbox: Any, tmp_path: Path) -> None:
    os.symlink(tmp_path / "s.sqlite", tmp_path / "link.sqlite")
    with Ledger.open(tmp_path / "s.sqlite"):
        args = imp(tmp_path)
        args[args.index("--state") + 1] = str(tmp_path / "link.sqlite")
        ran = run_cli(args, env_for(sandbox), tmp_path / "r")
    assert ran.code == 75
    assert state(sandbox)["requests"] == {}


def test_a_second_cli_run_on_the_same_state_exits_75_at_once(sandbox: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    # The first run's first lead is held in the sandbox until released: it holds the state
    # file for as long as the test needs, however slow the machine is.
    faults(sandbox, {"route": "POST /leads", "hold": True, "nth": 1})
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "etl",
            *imp(tmp_path, "--concurrency", "1"),
            "--report-dir",
            str(tmp_path / "r1"),
        ],
        env=env_for(sandbox),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_held(sandbox, 1)
        before = state(sandbox)["requests"]
        second = run_cli(imp(tmp_path), env_for(sandbox), tmp_path / "r2")
        after = state(sandbox)["requests"]
        assert second.code == 75
        assert second.stderr == (
            f"Error: {tmp_path / 's.sqlite'}: another voiptime-etl run holds this state file; "
            "wait for it to finish or use another --state\n"
        )
        assert after == before  # the second sent nothing
        assert after["GET /projects"] == 1 and after["POST /leads"] == 1
    finally:
        release(sandbox)
        first.communicate(timeout=CHILD_TIMEOUT)
    assert first.returncode == 0
    assert state(sandbox)["requests"]["POST /leads"] == 5


def test_a_run_that_sent_nothing_binds_no_api(sandbox: Any, tmp_path: Path) -> None:
    wrong = {
        **env_for(sandbox),
        "VOIPTIME_API_URL": "http://127.0.0.1:1/api",
        "VOIPTIME_RETRY_ATTEMPTS": "1",
    }
    typo = run_cli(imp(tmp_path), wrong, tmp_path / "r1", subprocess_mode=False)
    assert typo.code == 75
    ok = run_cli(imp(tmp_path), env_for(sandbox), tmp_path / "r2", subprocess_mode=False)
    assert ok.code == 0, ok.stderr


def _leading(ledger: Ledger) -> None:
    """Wait until one thread leads a commit (blocked by another connection's write lock) and
    has taken every write queued so far."""
    deadline = time.monotonic() + 60
    while not (ledger._leading and not ledger._queue):
        assert time.monotonic() < deadline, "no commit under way"
        time.sleep(0.005)


def _queued(ledger: Ledger, count: int) -> None:
    """Wait (for a state, not a duration) until ``count`` writes wait for the group commit."""
    deadline = time.monotonic() + 60
    while len(ledger._queue) < count:
        assert time.monotonic() < deadline, f"{len(ledger._queue)} of {count} writes queued"
        time.sleep(0.005)


def test_writes_of_many_threads_share_one_commit_and_each_returns_once_committed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sqlite"
    with Ledger.open(path) as ledger:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # holds the write lock: the first commit waits for it
        first = threading.Thread(
            target=ledger.mark_sending, args=(1, "k0", PAYLOAD, None, "a.csv", 2)
        )
        first.start()
        _leading(ledger)
        rest = [
            threading.Thread(
                target=ledger.mark_sending, args=(1, f"k{i}", PAYLOAD, None, "a.csv", i + 2)
            )
            for i in range(1, 11)
        ]
        for t in rest:
            t.start()
        _queued(ledger, 10)  # all ten wait behind the first commit
        before = ledger.commits
        other.execute("COMMIT")
        other.close()
        for t in [first, *rest]:
            t.join(60)
        assert ledger.commits - before == 2  # the first write alone, then the ten together
        assert ledger.counts() == {"sending": 11}
        assert sorted(ledger.lookup(1, [f"k{i}" for i in range(11)])) == sorted(
            f"k{i}" for i in range(11)
        )


def test_a_write_that_fails_in_a_group_fails_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    errors: list[BaseException] = []

    def send(project: Any, key: str) -> None:
        try:
            ledger.mark_sending(project, key, PAYLOAD, None, "a.csv", 2)
        except OutputError as exc:
            errors.append(exc)

    with Ledger.open(path) as ledger:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        threads = [threading.Thread(target=send, args=(1, "first"))]
        threads[0].start()
        _leading(ledger)
        threads += [
            threading.Thread(target=send, args=(None if i == 2 else 1, f"k{i}")) for i in range(4)
        ]
        for t in threads[1:]:
            t.start()
        _queued(ledger, 4)
        other.execute("COMMIT")
        other.close()
        for t in threads:
            t.join(60)
        assert [str(e) for e in errors] == [
            f"{path}: state file cannot be written: NOT NULL constraint failed: leads.project"
        ]
        assert ledger.counts() == {"sending": 4}  # first, k0, k1, k3


def test_per_lead_statements_are_index_lookups(tmp_path: Path) -> None:
    """Nothing a lead's writes or reads do grows with the rows the ledger holds."""
    Ledger.open(tmp_path / "s.sqlite").close()
    db = sqlite3.connect(tmp_path / "s.sqlite")
    plans = {
        sql: " ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql, args))
        for sql, args in [
            (
                "SELECT project, key FROM leads WHERE lead_id=? AND status IN "
                "('created', 'missing') AND NOT (project=? AND key=?) LIMIT 1",
                (1, 1, "k"),
            ),
            ("SELECT campaign_id, lead_id, status FROM enrolments WHERE lead_id IN (?, ?)", (1, 2)),
            ("UPDATE leads SET status='created' WHERE project=? AND key=?", (1, "k")),
            ("UPDATE enrolments SET status='done' WHERE campaign_id=? AND lead_id=?", ("c", 1)),
        ]
    }
    db.close()
    assert list(plans.values()) == [
        "SEARCH leads USING INDEX leads_lead_id (lead_id=?)",
        "SEARCH enrolments USING INDEX enrolments_lead_id (lead_id=?)",
        "SEARCH leads USING INDEX sqlite_autoindex_leads_1 (project=? AND key=?)",
        "SEARCH enrolments USING INDEX sqlite_autoindex_enrolments_1 (campaign_id=? AND lead_id=?)",
    ]


def test_created_rows_alone_are_committed_without_an_fsync_and_outlive_the_process(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sqlite"
    with Ledger.open(path) as ledger:
        ledger.mark_sending(1, "a", PAYLOAD, None, "a.csv", 2)
        before = (ledger.commits, ledger.synced)
        assert ledger.mark_created(1, "a", 1001) is None
        assert (ledger.commits - before[0], ledger.synced - before[1]) == (1, 0)
        ledger.mark_sending(1, "b", PAYLOAD, None, "a.csv", 3)  # flushes the created row too
        assert (ledger.commits - before[0], ledger.synced - before[1]) == (2, 1)
        assert ledger.mark_created(1, "b", 1002) is None
        # a process that dies now: another connection (as the next process) sees both
        with sqlite3.connect(path) as other:
            assert other.execute("SELECT key, status FROM leads ORDER BY key").fetchall() == [
                ("a", "created"),
                ("b", "created"),
            ]
        other.close()


def test_a_claim_departs_once_and_never_after_its_release(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    departed = tmp_path / "s.sqlite.departed"
    with Ledger.open(path, boot_id=lambda: "boot-a") as ledger:
        assert not ledger.claims_ahead  # no run yet
        ledger.start_run("import", [], "2026-01-01T00:00:00Z")
        assert ledger.claims_ahead
        synced = ledger.synced
        ledger.claim(1, [("a", PAYLOAD, ("a.csv", 2)), ("b", PAYLOAD, ("a.csv", 3))], None)
        assert ledger.synced - synced == 1  # both claims, one fsync
        assert ledger.depart(1, "a") and not ledger.depart(1, "a")
        assert ledger.release(1, ["a", "b"]) == {"a"}
        assert not ledger.depart(1, "b")  # released: its POST must not leave
        assert ledger.counts() == {"sending": 1}  # a is in flight; b is gone
        raw = departed.read_bytes()
        assert len(raw) == 64 and b"a.csv" not in raw and b"boot-a" not in raw
    assert not departed.exists()  # a run that ended removes it
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT boot_id FROM runs").fetchall() == [("boot-a",)]
    db.close()
    with Ledger.open(path, boot_id=lambda: "boot-a") as ledger:  # the next run
        assert ledger.counts() == {"ambiguous": 1}  # a may have been sent


def test_a_read_only_view_hides_no_claim_of_a_live_run_and_reads_rows_as_they_are_now(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sqlite"
    rows = [("k1", PAYLOAD, ("a.csv", 2)), ("k2", PAYLOAD, ("a.csv", 3))]
    with Ledger.open(path, boot_id=lambda: "boot-a") as live:
        live.start_run("import", [], "2026-01-01T00:00:00Z")
        live.claim(1, rows, None)
        with Ledger.open_readonly(path, boot_id=lambda: "boot-a") as view:
            assert view.counts() == {"sending": 2}  # the live run may send them any moment
            assert live.depart(1, "k1")
            assert live.mark_created(1, "k1", 101) is None
            assert live.release(1, ["k1", "k2"]) == {"k1"}
            assert view.counts() == {"created": 1}
            assert sorted(view.lookup(1, ["k1", "k2"])) == ["k1"]
        live.claim(1, [rows[1]], None)
        os.close(live._lock_fd)  # the run dies (its lock goes with the process)
        live._lock_fd = None
        with Ledger.open_readonly(path, boot_id=lambda: "boot-a") as view:
            assert view.counts() == {"created": 1}  # k2's claim never left: absent
            with Ledger.open(path, boot_id=lambda: "boot-a") as rerun:  # drops k2's claim
                rerun.mark_sending(1, "k2", PAYLOAD, None, "a.csv", 3)
                assert rerun.mark_created(1, "k2", 102) is None
            assert view.counts() == {"created": 2}
            assert sorted(view.lookup(1, ["k1", "k2"])) == ["k1", "k2"]


def test_a_departed_file_that_cannot_be_removed_is_exit_74(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Ledger.open(path).close()
    (tmp_path / "s.sqlite.departed").mkdir()
    with pytest.raises(OutputError) as err:
        Ledger.open(path)
    assert str(err.value) == f"{path}.departed: cannot be removed: Is a directory"
    assert err.value.exit_code == 74
    (tmp_path / "s.sqlite.departed").rmdir()
    Ledger.open(path).close()  # the lock was released


def test_no_claims_ahead_on_a_network_or_fuse_file_system() -> None:
    mounts = (
        "sysfs /sys sysfs rw 0 0\n"
        "/dev/sda1 / ext4 rw,relatime 0 0\n"
        "srv:/export /mnt/my\\040share nfs4 rw 0 0\n"
        "sshfs#u@h: /home/u/remote fuse.sshfs rw 0 0\n"
        "tmpfs /home/u/remote/cache tmpfs rw 0 0\n"
    )
    found = {
        p: _mount_type(Path(p), mounts)
        for p in (
            "/mnt/my share/s.sqlite",
            "/mnt/my",
            "/home/u/remote/s.sqlite",
            "/home/u/remote/cache/s.sqlite",
            "/var/s.sqlite",
        )
    }
    assert found == {
        "/mnt/my share/s.sqlite": "nfs4",
        "/mnt/my": "ext4",
        "/home/u/remote/s.sqlite": "fuse.sshfs",
        "/home/u/remote/cache/s.sqlite": "tmpfs",
        "/var/s.sqlite": "ext4",
    }


def test_a_mark_that_cannot_be_written_stops_every_later_departure_and_claim(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sqlite"
    with Ledger.open(path, boot_id=lambda: "boot-a") as ledger:
        ledger.start_run("import", [], "2026-01-01T00:00:00Z")
        ledger.claim(1, [("a", PAYLOAD, ("a.csv", 2)), ("b", PAYLOAD, ("a.csv", 3))], None)
        assert ledger._departed_fd is not None
        os.close(ledger._departed_fd)  # every write to it fails from now on (EBADF)
        with pytest.raises(OutputError) as err:
            ledger.depart(1, "a")
        assert str(err.value) == f"{path}.departed: cannot be written: Bad file descriptor"
        assert not ledger.claims_ahead and not ledger.depart(1, "b")
        with pytest.raises(OutputError):  # exit 74, not an internal error
            ledger.claim(1, [("c", PAYLOAD, ("a.csv", 4))], None)
        ledger._departed_fd = None  # closed above
    with Ledger.open(path, boot_id=lambda: "boot-a") as ledger:
        assert ledger.counts() == {}  # neither left: both released by the run's end
