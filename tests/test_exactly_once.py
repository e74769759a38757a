"""Exactly-once loading, proved with the CLI as a subprocess against the sandbox's fault rules.

Every test runs with the API key set to a random canary and checks that the canary appears in no
output, report or ledger (the issue's point 8).
"""

from __future__ import annotations

import json
import secrets
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clitools import (
    CHILD_TIMEOUT,
    Ran,
    env_for,
    faults,
    importing,
    logged,
    release,
    run_cli,
    spring_id,
    state,
    wait_held,
    write_list,
)

from etl.sandbox import SandboxServer
from etl.state import Ledger, read_boot_id


@pytest.fixture
def canary() -> str:
    return "canary-" + secrets.token_hex(16)


@pytest.fixture
def api(canary: str) -> Iterator[SandboxServer]:
    server = SandboxServer(api_key=canary).start()
    try:
        yield server
    finally:
        server.stop()


def go(args: list[str], api: SandboxServer, key: str, report: Path, **env: str) -> Ran:
    return run_cli(args, env_for(api, key=key, **env), report)


def no_canary(canary: str, tmp_path: Path, *runs: Ran) -> None:
    for ran in runs:
        assert canary not in ran.stdout and canary not in ran.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), path


def ledger_counts(tmp_path: Path) -> dict[str, int]:
    with Ledger.open_readonly(tmp_path / "s.sqlite") as ledger:
        return ledger.counts()


def check_campaign_once(api: SandboxServer, key: str) -> list[int]:
    st = state(api)
    emails = [lead["email"] for lead in st["leads"]]
    assert len(emails) == len(set(emails)), "duplicate leads"
    entries = st["campaign_entries"].get(spring_id(api, key), [])
    assert len(entries) == len(set(entries)), "a lead enrolled twice"
    return entries


def test_429_waited_out_then_503_storm_exits_75_and_rerun_finishes(
    api: Any, canary: str, tmp_path: Path
) -> None:
    source = write_list(tmp_path / "l.csv", 3)
    faults(api, {"route": "POST /leads", "nth": 1, "status": 429, "retry_after": 1})
    first = go(
        importing(tmp_path, source, "--concurrency", "1"),
        api,
        canary,
        tmp_path / "r1",
        VOIPTIME_RETRY_MAX_WAIT="5",
    )
    assert first.code == 0, first.stderr
    assert state(api)["requests"]["POST /leads"] == 4 and len(state(api)["leads"]) == 3
    more = write_list(tmp_path / "l2.csv", 6)
    faults(api, {"route": "POST /leads", "status": 503})
    storm = go(
        importing(tmp_path, more, "--concurrency", "1"),
        api,
        canary,
        tmp_path / "r2",
        VOIPTIME_RETRY_BUDGET="1",
        VOIPTIME_RETRY_MAX_WAIT="0.05",
    )
    assert storm.code == 75, storm.stderr
    assert storm.summary()["exit_code"] == 75
    assert len(state(api)["leads"]) == 3
    faults(api)
    rerun = go(importing(tmp_path, more), api, canary, tmp_path / "r3")
    assert rerun.code == 0, rerun.stderr
    s = rerun.summary()
    assert (s["leads_created"], s["leads_unchanged"]) == (3, 3)
    assert len(state(api)["leads"]) == 6 and len(check_campaign_once(api, canary)) == 6
    no_canary(canary, tmp_path, first, storm, rerun)


def test_dropped_answer_is_ambiguous_and_rerun_sends_nothing(
    api: Any, canary: str, tmp_path: Path
) -> None:
    source = write_list(tmp_path / "l.csv", 1)
    faults(api, {"route": "POST /leads", "nth": 1, "drop": "after"})
    first = go(importing(tmp_path, source), api, canary, tmp_path / "r1")
    assert first.code == 4
    assert len(state(api)["leads"]) == 1
    assert first.summary()["leads_ambiguous"] == 1
    assert ledger_counts(tmp_path) == {"ambiguous": 1}
    faults(api)
    again = go(importing(tmp_path, source), api, canary, tmp_path / "r2")
    assert again.code == 4
    assert state(api)["requests"]["POST /leads"] == 1
    assert state(api)["campaign_entries"] == {}
    # A person checked and decides to send it again:
    forced = go(importing(tmp_path, source, "--retry-ambiguous"), api, canary, tmp_path / "r3")
    assert forced.code == 0
    assert state(api)["requests"]["POST /leads"] == 2
    no_canary(canary, tmp_path, first, again, forced)


def test_sigkill_between_requests_then_rerun_gives_exactly_1000(
    api: Any, canary: str, tmp_path: Path
) -> None:
    source = write_list(tmp_path / "l.csv", 1000)
    killed = go(
        importing(tmp_path, source, "--concurrency", "1"),
        api,
        canary,
        tmp_path / "r1",
        VOIPTIME_TEST_CRASH_AFTER_CREATED="480",
    )
    assert killed.code == -signal.SIGKILL
    assert len(state(api)["leads"]) == 480
    assert ledger_counts(tmp_path)["created"] == 480
    rerun = go(importing(tmp_path, source), api, canary, tmp_path / "r2")
    assert rerun.code == 0, rerun.stderr
    st = state(api)
    assert len(st["leads"]) == 1000
    assert st["requests"]["POST /leads"] == 1000
    entries = check_campaign_once(api, canary)
    assert sorted(entries) == sorted(lead["id"] for lead in st["leads"])
    s = rerun.summary()
    assert (s["leads_created"], s["leads_unchanged"], s["campaign_entries_added"]) == (
        520,
        480,
        1000,
    )
    no_canary(canary, tmp_path, killed, rerun)


def test_sigkill_with_requests_in_flight_leaves_them_ambiguous(
    api: Any, canary: str, tmp_path: Path
) -> None:
    # The first 200 leads go through; from then on the sandbox holds every POST until released,
    # so when all 8 workers are waiting on an answer the process is killed with 8 in flight.
    source = write_list(tmp_path / "l.csv", 400)
    faults(api, {"route": "POST /leads", "after": 200, "hold": True})
    args = importing(tmp_path, source, "--concurrency", "8", "--report-dir", str(tmp_path / "r1"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl", *args],
        env=env_for(api, key=canary),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_held(api, 8)
        proc.kill()
        out, err = proc.communicate(timeout=CHILD_TIMEOUT)
    finally:
        release(api)  # the sandbox then stores the 8 leads: their answers reach nobody
    assert proc.returncode == -signal.SIGKILL
    assert canary not in out + err
    assert ledger_counts(tmp_path) == {"created": 200, "sending": 8}
    faults(api)
    rerun = go(importing(tmp_path, source), api, canary, tmp_path / "r2")
    assert rerun.code == 4, rerun.stderr
    s = rerun.summary()
    assert (s["leads_ambiguous"], s["leads_created"], s["leads_unchanged"]) == (8, 192, 200)
    assert ledger_counts(tmp_path) == {"ambiguous": 8, "created": 392, "enrol_done": 392}
    entries = check_campaign_once(api, canary)
    assert len(entries) == 392  # every lead but the unknown ones, once
    assert state(api)["requests"]["POST /leads"] == 400
    no_canary(canary, tmp_path, rerun)


def test_sigkill_between_creation_and_enrolment(api: Any, canary: str, tmp_path: Path) -> None:
    source = write_list(tmp_path / "l.csv", 20)
    killed = go(
        importing(tmp_path, source, "--concurrency", "2"),
        api,
        canary,
        tmp_path / "r1",
        VOIPTIME_TEST_CRASH_AFTER_CREATED="20",
    )
    assert killed.code == -signal.SIGKILL
    assert len(state(api)["leads"]) == 20 and state(api)["campaign_entries"] == {}
    source.unlink()  # the file is gone: the ledger alone knows what to enrol
    other = write_list(tmp_path / "other.csv", 0)
    rerun = go(importing(tmp_path, other), api, canary, tmp_path / "r2")
    assert rerun.code == 0, rerun.stderr
    st = state(api)
    assert st["requests"]["POST /leads"] == 20
    assert sorted(check_campaign_once(api, canary)) == sorted(lead["id"] for lead in st["leads"])
    no_canary(canary, tmp_path, killed, rerun)


def test_401_after_n_requests_then_good_key_completes(
    api: Any, canary: str, tmp_path: Path
) -> None:
    source = write_list(tmp_path / "l.csv", 10)
    faults(api, {"route": "*", "after": 8, "status": 401})
    first = go(importing(tmp_path, source, "--concurrency", "1"), api, canary, tmp_path / "r1")
    assert first.code == 77
    st = state(api)
    assert sum(st["requests"].values()) == 9  # 4 GETs, 4 leads, the 401: nothing after it
    assert len(st["leads"]) == 4
    faults(api)
    rerun = go(importing(tmp_path, source), api, canary, tmp_path / "r2")
    assert rerun.code == 0
    assert state(api)["requests"]["POST /leads"] == 5 + 6
    assert len(check_campaign_once(api, canary)) == 10
    no_canary(canary, tmp_path, first, rerun)


def test_edited_rows_are_patched_and_a_shuffled_file_sends_nothing(
    api: Any, canary: str, tmp_path: Path
) -> None:
    source = write_list(tmp_path / "l.csv", 30)
    assert go(importing(tmp_path, source), api, canary, tmp_path / "r1").code == 0
    before = state(api)["requests"]
    shuffled = write_list(tmp_path / "l.csv", 30, shuffle=True)
    same = go(importing(tmp_path, shuffled), api, canary, tmp_path / "r2")
    assert same.code == 0
    after = state(api)["requests"]
    writes = {k: after[k] - before.get(k, 0) for k in after if not k.startswith("GET ")}
    assert writes == {"POST /leads": 0, "POST /campaigns/{campaignId}/entries/actions/generate": 0}
    text = (
        shuffled.read_text(encoding="utf-8")
        .replace("P3,Lee,", "P3,Leigh,")
        .replace("P7,Lee,", "P7,Li,")
    )
    shuffled.write_text(text, encoding="utf-8")
    edited = go(importing(tmp_path, shuffled), api, canary, tmp_path / "r3")
    assert edited.code == 0
    s = edited.summary()
    assert (s["leads_updated"], s["leads_unchanged"], s["leads_created"]) == (2, 28, 0)
    st = state(api)
    assert st["requests"]["PATCH /leads/{leadId}"] == 2 and st["requests"]["POST /leads"] == 30
    ids = {lead["email"]: lead["id"] for lead in st["leads"]}
    assert sorted(st["patches"], key=lambda p: p["leadId"]) == sorted(
        [
            {"leadId": ids["p3@example.com"], "body": {"surname": "Leigh"}},
            {"leadId": ids["p7@example.com"], "body": {"surname": "Li"}},
        ],
        key=lambda p: p["leadId"],
    )  # only the changed field goes out
    surnames = {lead["email"]: lead["surname"] for lead in st["leads"]}
    assert (surnames["p3@example.com"], surnames["p7@example.com"], surnames["p4@example.com"]) == (
        "Leigh",
        "Li",
        "Lee",
    )
    dry = go(importing(tmp_path, shuffled, "--dry-run"), api, canary, tmp_path / "r4")
    assert dry.summary()["leads_unchanged"] == 30
    no_canary(canary, tmp_path, same, edited, dry)


def test_overlapping_run_exits_75_with_no_request(api: Any, canary: str, tmp_path: Path) -> None:
    source = write_list(tmp_path / "l.csv", 3)
    with Ledger.open(tmp_path / "s.sqlite"):  # another run holds the state
        second = go(importing(tmp_path, source), api, canary, tmp_path / "r")
    assert second.code == 75
    assert second.stderr == (
        f"Error: {tmp_path / 's.sqlite'}: another voiptime-etl run holds this state file; "
        "wait for it to finish or use another --state\n"
    )
    assert state(api)["requests"] == {}
    no_canary(canary, tmp_path, second)


def test_unwritable_state_exits_74_before_any_request(
    api: Any, canary: str, tmp_path: Path
) -> None:
    source = write_list(tmp_path / "l.csv", 3)
    (tmp_path / "blocker").write_text("x")
    args = importing(tmp_path, source)
    args[args.index("--state") + 1] = str(tmp_path / "blocker" / "s.sqlite")
    ran = go(args, api, canary, tmp_path / "r")
    assert ran.code == 74
    assert state(api)["requests"] == {}


def test_one_bad_id_in_generate_is_found_and_the_rest_enrolled(
    api: Any, canary: str, tmp_path: Path
) -> None:
    source = write_list(tmp_path / "l.csv", 9)
    killed = go(
        importing(tmp_path, source),
        api,
        canary,
        tmp_path / "r1",
        VOIPTIME_TEST_CRASH_AFTER_CREATED="9",
    )
    assert killed.code == -signal.SIGKILL
    with sqlite3.connect(tmp_path / "s.sqlite") as db:  # a lead the service no longer knows
        db.execute("UPDATE leads SET lead_id = 999999 WHERE key = 'p4@example.com'")
    db.close()
    rerun = go(importing(tmp_path, source), api, canary, tmp_path / "r2")
    assert rerun.code == 3, rerun.stderr
    assert logged(rerun.stderr) == [
        "ERROR: lead 999999 could not be enrolled: Leads not found: 999999; no entries were added"
    ]
    entries = check_campaign_once(api, canary)
    assert len(entries) == 8 and 999999 not in entries
    assert rerun.summary()["leads_failed"] == 1
    no_canary(canary, tmp_path, killed, rerun)


def stop_with(proc: subprocess.Popen[str], signum: int) -> str:
    """Send ``signum`` and read stderr up to the line saying the run is stopping (the event
    that proves the process took the signal); the lines read."""
    proc.send_signal(signum)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "stopping; finishing requests in flight" in line:
            break
    return "".join(seen)


def test_sigterm_finishes_requests_in_flight_and_sends_no_more(
    api: Any, canary: str, tmp_path: Path
) -> None:
    # 20 leads go through, then both workers are held mid-request; SIGTERM arrives while they
    # wait; once the process says it is stopping they are released and finish.
    source = write_list(tmp_path / "l.csv", 400)
    faults(api, {"route": "POST /leads", "after": 20, "hold": True})
    args = importing(tmp_path, source, "--concurrency", "2", "--report-dir", str(tmp_path / "r1"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl", *args],
        env=env_for(api, key=canary),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_held(api, 2)
        early = stop_with(proc, signal.SIGTERM)
    finally:
        release(api)
    out, err = proc.communicate(timeout=CHILD_TIMEOUT)
    err = early + err
    assert proc.returncode == 143, err
    summary = json.loads((tmp_path / "r1" / "summary.json").read_text())
    assert summary["exit_code"] == 143
    # the two in flight finish (within the grace period) or are left ambiguous; none is added
    assert summary["leads_created"] + summary["leads_ambiguous"] == 22
    assert state(api)["requests"]["POST /leads"] == 22
    assert canary not in out + err
    faults(api)
    rerun = go(importing(tmp_path, source), api, canary, tmp_path / "r2")
    assert rerun.code in (0, 4), rerun.stderr
    st = state(api)
    ambiguous = rerun.summary()["leads_ambiguous"]
    assert ambiguous == summary["leads_ambiguous"]
    assert len(check_campaign_once(api, canary)) == 400 - ambiguous
    assert len(st["leads"]) == 400
    no_canary(canary, tmp_path, rerun)


def test_project_404_stops_with_78_and_created_leads_stay_recorded(
    api: Any, canary: str, tmp_path: Path
) -> None:
    source = write_list(tmp_path / "l.csv", 6)
    faults(api, {"route": "POST /leads", "after": 2, "status": 404})
    first = go(importing(tmp_path, source, "--concurrency", "1"), api, canary, tmp_path / "r1")
    assert first.code == 78
    assert (
        first.stderr == "Error: POST /leads: 404 Not Found: Injected fault (sandbox fault rule)\n"
    )
    assert ledger_counts(tmp_path) == {"created": 2}
    assert state(api)["requests"]["POST /leads"] == 3  # stopped at the first 404
    faults(api)
    rerun = go(importing(tmp_path, source), api, canary, tmp_path / "r2")
    assert rerun.code == 0
    assert rerun.summary()["leads_created"] == 4
    assert len(check_campaign_once(api, canary)) == 6
    no_canary(canary, tmp_path, first, rerun)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_exit_codes(signum: int, code: int, api: Any, canary: str, tmp_path: Path) -> None:
    source = write_list(tmp_path / "l.csv", 300)
    faults(api, {"route": "POST /leads", "after": 5, "hold": True})
    args = importing(tmp_path, source, "--concurrency", "1", "--report-dir", str(tmp_path / "r"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl", *args],
        env=env_for(api, key=canary),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_held(api, 1)
        early = stop_with(proc, signum)
    finally:
        release(api)
    out, err = proc.communicate(timeout=CHILD_TIMEOUT)
    assert proc.returncode == code, early + err
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["exit_code"] == code
    assert summary["leads_created"] == ledger_counts(tmp_path)["created"]
    assert summary["leads_created"] + summary["leads_ambiguous"] == 6
    assert state(api)["requests"]["POST /leads"] == 6
    assert canary not in out + early + err


def killed_with_claims(api: Any, canary: str, tmp_path: Path) -> tuple[Path, int]:
    """20 leads at concurrency 1 (claims go four at a time); the process is killed just after
    the 6th lead is recorded created, so the claims of at least leads 7 and 8 (their group was
    claimed before its first POST) are committed and never sent. Returns the list and how many
    claims the ledger holds (the main thread may have claimed further groups meanwhile)."""
    source = write_list(tmp_path / "l.csv", 20)
    killed = go(
        importing(tmp_path, source, "--concurrency", "1"),
        api,
        canary,
        tmp_path / "r1",
        VOIPTIME_TEST_CRASH_AFTER_CREATED="6",
    )
    assert killed.code == -signal.SIGKILL
    assert state(api)["requests"]["POST /leads"] == 6
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        claims = db.execute(
            "SELECT COUNT(*) FROM leads WHERE status='sending' AND claim_run IS NOT NULL"
        ).fetchone()[0]
        boot = db.execute("SELECT boot_id FROM runs").fetchall()
    db.close()
    assert 2 <= claims <= 14
    assert boot == [(read_boot_id(),)]
    departed = (tmp_path / "s.sqlite.departed").read_bytes()
    assert len(departed) == 32 * (1 + 6)  # the run's head, then one mark per POST that left
    for word in (b"example.com", b"Lee", canary.encode()):
        assert word not in departed
    no_canary(canary, tmp_path, killed)
    return source, claims


def test_sigkill_with_claims_not_sent_then_rerun_sends_each_once_none_ambiguous(
    api: Any, canary: str, tmp_path: Path
) -> None:
    source, _ = killed_with_claims(api, canary, tmp_path)
    # read as the next run will find them: the claims never sent are absent, not in flight
    assert ledger_counts(tmp_path) == {"created": 6}
    shown = go(["state", "--state", str(tmp_path / "s.sqlite"), "--json"], api, canary, tmp_path)
    assert shown.code == 0, shown.stderr
    assert json.loads(shown.stdout)["leads"] == {"1": {"created": 6}}
    rerun = go(importing(tmp_path, source), api, canary, tmp_path / "r2")
    assert rerun.code == 0, rerun.stderr
    s = rerun.summary()
    assert (s["leads_created"], s["leads_unchanged"], s["leads_ambiguous"]) == (14, 6, 0)
    st = state(api)
    assert st["requests"]["POST /leads"] == 20 and len(st["leads"]) == 20
    assert len(check_campaign_once(api, canary)) == 20
    assert ledger_counts(tmp_path) == {"created": 20, "enrol_done": 20}
    assert not (tmp_path / "s.sqlite.departed").exists()  # a run that ended left none
    no_canary(canary, tmp_path, rerun)


def test_after_a_reboot_every_claim_left_is_ambiguous(
    api: Any, canary: str, tmp_path: Path
) -> None:
    source, claims = killed_with_claims(api, canary, tmp_path)
    # the next run in another boot: what the dead run wrote without fsync may be lost
    Ledger.open(tmp_path / "s.sqlite", boot_id=lambda: "another-boot").close()
    assert ledger_counts(tmp_path) == {"created": 6, "ambiguous": claims}
    rerun = go(importing(tmp_path, source), api, canary, tmp_path / "r2")
    assert rerun.code == 4, rerun.stderr
    s = rerun.summary()
    assert (s["leads_created"], s["leads_unchanged"], s["leads_ambiguous"]) == (
        14 - claims,
        6,
        claims,
    )
    assert state(api)["requests"]["POST /leads"] == 20 - claims  # none sent twice
    no_canary(canary, tmp_path, rerun)


def test_without_the_departed_file_every_claim_left_is_ambiguous(
    api: Any, canary: str, tmp_path: Path
) -> None:
    source, claims = killed_with_claims(api, canary, tmp_path)
    (tmp_path / "s.sqlite.departed").unlink()
    assert ledger_counts(tmp_path) == {"created": 6, "sending": claims}
    rerun = go(importing(tmp_path, source), api, canary, tmp_path / "r2")
    assert rerun.code == 4, rerun.stderr
    s = rerun.summary()
    assert (s["leads_created"], s["leads_ambiguous"]) == (14 - claims, claims)
    assert state(api)["requests"]["POST /leads"] == 20 - claims
    no_canary(canary, tmp_path, rerun)


def test_a_departed_file_cut_short_makes_every_claim_left_ambiguous(
    api: Any, canary: str, tmp_path: Path
) -> None:
    source, claims = killed_with_claims(api, canary, tmp_path)
    departed = tmp_path / "s.sqlite.departed"
    departed.write_bytes(departed.read_bytes()[:-5])
    rerun = go(importing(tmp_path, source), api, canary, tmp_path / "r2")
    assert rerun.code == 4, rerun.stderr
    assert rerun.summary()["leads_ambiguous"] == claims
    assert state(api)["requests"]["POST /leads"] == 20 - claims
    no_canary(canary, tmp_path, rerun)
