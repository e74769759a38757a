"""What the server answers is checked, and one bad answer is one row's problem: the CLI against
the sandbox (its fault rules answer for a server that misbehaves).

Each test states the figure it proves: leads duplicated, rows lost, exit code.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests
from clitools import (
    ANSWER_TIMEOUT,
    Ran,
    env_for,
    faults,
    importing,
    logged,
    run_cli,
    spring_id,
    state,
    write_list,
)
from markupsafe import escape

from etl.config import RetryPolicy
from etl.state import Ledger


def go(sandbox: Any, argv: list[str], report: Path, **env: str) -> Ran:
    return run_cli(argv, env_for(sandbox, **env), report, subprocess_mode=False)


def ledger_rows(path: Path) -> dict[str, tuple[str, int | None]]:
    with Ledger.open_readonly(path) as ledger:
        return {key: (status, lead_id) for _, key, status, lead_id in ledger.iter_leads()}


def lead_ids(sandbox: Any) -> dict[str, int]:
    return {lead["email"]: lead["id"] for lead in state(sandbox)["leads"]}


# --- a lead deleted in the dialer -------------------------------------------------------------


def test_a_lead_deleted_in_the_dialer_is_one_rows_problem_until_recreated(
    sandbox: Any, tmp_path: Path
) -> None:
    source = write_list(tmp_path / "l.csv", 8)
    first = go(sandbox, importing(tmp_path, source), tmp_path / "r1")
    assert first.code == 0, first.stderr
    gone = lead_ids(sandbox)["p2@example.com"]
    deleted = requests.delete(f"{sandbox.base_url}/_sandbox/leads/{gone}", timeout=ANSWER_TIMEOUT)
    assert deleted.json() == {"deleted": gone}
    # Row 4 (p2) and row 7 (p5) edited: p2's PATCH answers 404, the rest of the file goes on.
    write_list(source, 8, surnames={2: "Leigh", 5: "Li"})
    second = go(sandbox, importing(tmp_path, source), tmp_path / "r2")
    assert second.code == 3, second.stderr  # was 78, rows after p2 never processed
    s = second.summary()
    assert (s["leads_missing"], s["leads_failed"], s["leads_updated"], s["leads_unchanged"]) == (
        1,
        1,
        1,
        6,
    )
    assert s["rows_read"] == 8 and s["rows_rejected"] == 0
    loaded = {r["key"]: r for r in second.loaded()}
    assert (loaded["p2@example.com"]["action"], loaded["p2@example.com"]["lead_id"]) == (
        "missing",
        str(gone),
    )
    assert loaded["p2@example.com"]["warnings"].startswith(
        f"lead missing in the dialer: lead {gone} (PATCH /leads/{gone} answered 404 on "
    )
    assert loaded["p5@example.com"]["action"] == "updated"
    html = (second.report / "report.html").read_text(encoding="utf-8")
    assert "Leads missing in the dialer" in html and "--recreate-missing" in html
    at = re.search(r"answered 404 on [0-9-]{10} [0-9:]{2,5} UTC", second.stderr)
    assert at, second.stderr
    answered, where = f"(PATCH /leads/{gone} {at.group()})", f"{tmp_path / 'l.csv'} row 4"
    assert logged(second.stderr) == [  # the loader's warning, then the run's
        f"WARNING: {where}: lead {gone} missing in the dialer {answered}",
        f"WARNING: {where}: lead missing in the dialer: lead {gone} {answered}; not sent. Rerun "
        "with --recreate-missing to create it again (a new lead id, enrolled in the campaign "
        "again)",
    ]
    assert ledger_rows(tmp_path / "s.sqlite")["p2@example.com"] == ("missing", gone)
    # `state` lists the row for the on-call person, with its file, row and what answered 404
    ledger = run_cli(["state", "--state", str(tmp_path / "s.sqlite"), "--json"], {}, tmp_path)
    assert ledger.code == 0, ledger.stderr
    (missing,) = json.loads(ledger.stdout)["missing"]
    assert (missing["key"], missing["lead_id"], missing["source_row"]) == (
        "p2@example.com",
        gone,
        4,
    )
    assert Path(missing["source_file"]).name == "l.csv"
    assert missing["note"].startswith(f"PATCH /leads/{gone} answered 404 on ")
    shown = run_cli(["state", "--state", str(tmp_path / "s.sqlite")], {"COLUMNS": "200"}, tmp_path)
    assert "Leads missing in the dialer (1)" in shown.stdout and "p2@example.com" in shown.stdout
    st = state(sandbox)
    assert {lead["email"]: lead["surname"] for lead in st["leads"]}["p5@example.com"] == "Li"
    patches = st["requests"]["PATCH /leads/{leadId}"]
    assert patches == 2

    # Every rerun: the row is reported again, nothing is sent for it, the run does not stop.
    third = go(sandbox, importing(tmp_path, source), tmp_path / "r3")
    assert third.code == 3
    assert (third.summary()["leads_missing"], third.summary()["leads_unchanged"]) == (1, 7)
    assert state(sandbox)["requests"]["PATCH /leads/{leadId}"] == patches

    # A person asks for it: a new lead, its id recorded, enrolled again.
    fourth = go(sandbox, importing(tmp_path, source, "--recreate-missing"), tmp_path / "r4")
    assert fourth.code == 0, fourth.stderr
    s4 = fourth.summary()
    assert (s4["leads_created"], s4["leads_missing"], s4["campaign_entries_added"]) == (1, 0, 1)
    new = lead_ids(sandbox)["p2@example.com"]
    assert new != gone
    row = next(r for r in fourth.loaded() if r["key"] == "p2@example.com")
    assert (row["action"], row["lead_id"]) == ("created", str(new))
    assert row["warnings"] == f"re-created: lead {gone} was missing in the dialer"
    assert ledger_rows(tmp_path / "s.sqlite")["p2@example.com"] == ("created", new)
    leads = state(sandbox)["leads"]
    assert len(leads) == 8 and {lead["surname"] for lead in leads if lead["id"] == new} == {"Leigh"}
    entries = state(sandbox)["campaign_entries"][spring_id(sandbox)]
    assert sorted(entries) == sorted([*lead_ids(sandbox).values(), gone])  # the old entry stays
    fifth = go(sandbox, importing(tmp_path, source), tmp_path / "r5")
    assert (fifth.code, fifth.summary()["leads_unchanged"]) == (0, 8)


# --- a new ledger on a project that has contacts ----------------------------------------------


def test_a_new_ledger_on_a_project_with_contacts_is_refused_unless_intended(
    sandbox: Any, tmp_path: Path
) -> None:
    source = write_list(tmp_path / "l.csv", 5)
    assert go(sandbox, importing(tmp_path, source), tmp_path / "r1").code == 0
    posts = state(sandbox)["requests"]["POST /leads"]

    fresh = go(sandbox, importing(tmp_path, source, state_file="new.sqlite"), tmp_path / "r2")
    assert fresh.code == 78  # was 0, with 10 leads for 5 rows
    assert fresh.stderr == (
        "Error: project 1 ('Demo') already holds 5 contact(s) (GET /projects), but the state "
        f"file {tmp_path / 'new.sqlite'} has no record of this project: a new, deleted or "
        "replaced ledger. Every row would be created again, doubling leads that exist. Restore "
        "the state file the earlier runs used (--state), or, if creating new leads is intended "
        "(those contacts came from elsewhere), rerun with --new-ledger\n"
    )
    assert not fresh.report.exists()  # stopped before reading: no report folder
    assert state(sandbox)["requests"]["POST /leads"] == posts and len(lead_ids(sandbox)) == 5

    dry = go(
        sandbox,
        importing(tmp_path, source, "--dry-run", state_file="new.sqlite"),
        tmp_path / "r3",
    )
    assert dry.code == 0, dry.stderr  # not blocked, but loud
    [warning] = dry.summary()["warnings"]
    assert "This dry run counts every row as a new lead" in warning
    assert logged(dry.stderr) == [f"WARNING: {warning}"]
    assert warning == (
        "project 1 ('Demo') already holds 5 contact(s) (GET /projects), but the state file "
        f"{tmp_path / 'new.sqlite'} has no record of this project: a new, deleted or replaced "
        "ledger. This dry run counts every row as a new lead, so its numbers are wrong if those "
        "contacts came from these files; a real run would be refused unless you pass --new-ledger"
    )
    assert "This dry run counts every row as a new lead" in (dry.report / "report.html").read_text(
        encoding="utf-8"
    )

    check = run_cli(
        ["validate", str(source), "--mapping", str(tmp_path / "m.yaml")],
        env_for(sandbox),
        tmp_path / "r4",
        subprocess_mode=False,
    )
    assert check.code == 0, check.stderr

    intended = go(
        sandbox,
        importing(tmp_path, source, "--new-ledger", state_file="new.sqlite"),
        tmp_path / "r5",
    )
    assert intended.code == 0 and intended.summary()["leads_created"] == 5
    assert logged(intended.stderr) == [
        "WARNING: project 1 ('Demo') already holds 5 contact(s) (GET /projects), but the state "
        f"file {tmp_path / 'new.sqlite'} has no record of this project: a new, deleted or "
        "replaced ledger; going on as asked (--new-ledger)"
    ]
    again = go(sandbox, importing(tmp_path, source, state_file="new.sqlite"), tmp_path / "r6")
    assert (again.code, again.summary()["leads_unchanged"]) == (0, 5)  # it knows the project now


# --- ambiguity estimated from the server's counts ---------------------------------------------


def test_ambiguous_sends_are_estimated_from_the_projects_and_the_campaigns_counts(
    sandbox: Any, tmp_path: Path
) -> None:
    source = write_list(tmp_path / "l.csv", 10)
    generate = "POST /campaigns/{campaignId}/entries/actions/generate"
    faults(
        sandbox,
        {"route": "POST /leads", "nth": 2, "drop": "after"},  # stored, answer lost
        {"route": "POST /leads", "nth": 5, "drop": "after"},
        {"route": "POST /leads", "nth": 8, "drop": "before"},  # answer lost, nothing stored
        {"route": generate, "nth": 1, "drop": "after"},  # the 7 known leads enrolled, unseen
    )
    ran = go(sandbox, importing(tmp_path, source, "--concurrency", "1"), tmp_path / "r1")
    assert ran.code == 4, ran.stderr
    assert len(lead_ids(sandbox)) == 9
    amb = ran.summary()["ambiguity"]
    assert {k: v for k, v in amb.items() if k not in ("since", "message")} == {
        "leads_ambiguous": 3,
        "leads_probably_created": 2,
        "project_contacts": 9,
        "contacts_accounted": 7,
        "enrolments_ambiguous": 7,
        "enrolments_probably_done": 7,
        "campaign_entries": 7,
        "entries_accounted": 0,
    }
    assert "about 2 of the 3 probably reached the dialer" in amb["message"]
    assert "--retry-ambiguous would likely create about 2 duplicate lead(s)" in amb["message"]
    assert "--retry-ambiguous would likely enrol about 7 lead(s) twice" in amb["message"]
    where = tmp_path / "l.csv"
    dropped = "POST /leads: sent, but the connection dropped before the answer"
    assert logged(ran.stderr) == [
        f"WARNING: POST /campaigns/{spring_id(sandbox)}/entries/actions/generate: sent, but the "
        "connection dropped before the answer: enrolment of 7 lead(s) has an unknown outcome",
        *(
            f"WARNING: {where} row {row}: "
            + (dropped if row in (3, 6, 9) else "campaign enrolment sent, outcome unknown")
            for row in range(2, 12)
        ),
        f"WARNING: {amb['message']}",
    ]
    html = (ran.report / "report.html").read_text(encoding="utf-8")
    assert "about 2 of the 3 probably reached the dialer" in html
    assert "ambiguous leads probably in the dialer" in ran.stdout

    faults(sandbox)
    rerun = go(sandbox, importing(tmp_path, source), tmp_path / "r2")  # nothing re-sent blindly
    assert rerun.code == 4
    assert rerun.summary()["ambiguity"]["leads_probably_created"] == 2
    assert len(lead_ids(sandbox)) == 9


# --- the server's answers are checked ---------------------------------------------------------


def test_one_lead_id_for_two_rows_is_an_error_for_the_second_never_a_merge(
    sandbox: Any, tmp_path: Path
) -> None:
    source = write_list(tmp_path / "l.csv", 4)
    first_id = 1001  # the sandbox's first lead id
    faults(  # the third POST answers the first lead's id without storing anything
        sandbox, {"route": "POST /leads", "nth": 3, "status": 201, "body": {"id": first_id}}
    )
    ran = go(sandbox, importing(tmp_path, source, "--concurrency", "1"), tmp_path / "r1")
    assert ran.code == 4, ran.stderr
    s = ran.summary()
    assert (s["leads_created"], s["leads_ambiguous"], s["lead_id_conflicts"]) == (3, 1, 1)
    row = next(r for r in ran.loaded() if r["key"] == "p2@example.com")
    assert (row["action"], row["lead_id"]) == ("ambiguous", "")
    assert row["warnings"].startswith(
        f"the API answered lead id {first_id}, which the ledger already holds for key "
        f"'p0@example.com' ({source} row 2): not recorded, never merged"
    )
    rows = ledger_rows(tmp_path / "s.sqlite")
    assert rows["p2@example.com"] == ("ambiguous", None)
    assert rows["p0@example.com"] == ("created", first_id)
    entries = state(sandbox)["campaign_entries"][spring_id(sandbox)]
    assert sorted(entries) == sorted(lead_ids(sandbox).values())  # 3 leads, 3 entries, no twin

    faults(sandbox)
    write_list(source, 4, surnames={0: "Ames", 2: "Bell"})  # later edits reach the right lead only
    edited = go(sandbox, importing(tmp_path, source), tmp_path / "r2")
    assert edited.code == 4
    assert state(sandbox)["patches"] == [{"leadId": first_id, "body": {"surname": "Ames"}}]


def test_an_enrolment_answer_the_campaigns_count_contradicts_is_reported(
    sandbox: Any, tmp_path: Path
) -> None:
    source = write_list(tmp_path / "l.csv", 3)
    generate = "POST /campaigns/{campaignId}/entries/actions/generate"
    faults(sandbox, {"route": generate, "status": 201})  # answered as done, nothing added
    ran = go(sandbox, importing(tmp_path, source), tmp_path / "r1")
    assert ran.code == 4, ran.stderr  # was 0 with the leads in no campaign
    s = ran.summary()
    assert (s["campaign_entries_added"], s["enrolments_mismatched"], s["leads_ambiguous"]) == (
        0,
        3,
        3,
    )
    assert s["enrolment_mismatches"] == [
        "the campaign's totalEntries went from 0 to 0 after a generate call for 3 lead(s) was "
        "answered as done: the answer does not fit; those enrolments are recorded ambiguous "
        "(check the campaign, then rerun with --retry-ambiguous to enrol them again)"
    ]
    assert s["ambiguity"]["enrolments_probably_done"] == 0
    html = (ran.report / "report.html").read_text(encoding="utf-8")
    assert str(escape(s["enrolment_mismatches"][0])) in html  # as jinja2 writes it
    assert [r["warnings"] for r in ran.loaded()] == [
        "campaign enrolment answered as done, but the campaign's totalEntries did not grow: "
        "outcome unknown"
    ] * 3
    faults(sandbox)
    fixed = go(sandbox, importing(tmp_path, source, "--retry-ambiguous"), tmp_path / "r2")
    assert fixed.code == 0, fixed.stderr
    entries = state(sandbox)["campaign_entries"][spring_id(sandbox)]
    assert sorted(entries) == sorted(lead_ids(sandbox).values())


# --- Retry-After ------------------------------------------------------------------------------


class Sleeps:
    """The retry policy's sleep, injected: records each wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Sleeps:
    recorder = Sleeps()
    monkeypatch.setattr("etl.config.RetryPolicy", functools.partial(RetryPolicy, sleep=recorder))
    return recorder


def test_a_retry_after_longer_than_the_run_may_wait_stops_at_once_with_the_time(
    sandbox: Any, tmp_path: Path, sleeps: Sleeps
) -> None:
    source = write_list(tmp_path / "l.csv", 5)
    faults(sandbox, {"route": "POST /leads", "nth": 3, "status": 429, "retry_after": 86400})
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ran = go(
        sandbox,
        importing(tmp_path, source, "--concurrency", "1"),
        tmp_path / "r1",
        VOIPTIME_RETRY_MAX_WAIT="120",
    )
    after = dt.datetime.now(dt.UTC)
    assert ran.code == 75, ran.stderr  # was: 120 s waited, then sent ~24 h early
    assert sleeps.waits == []
    s = ran.summary()
    assert s["retry_after"] == 86400.0
    retry_at = dt.datetime.fromisoformat(s["retry_at"])
    assert before + dt.timedelta(days=1) <= retry_at <= after + dt.timedelta(days=1)
    assert ran.stderr == (
        "Error: POST /leads: 429 Too Many Requests: the API asks to wait 86400 s (Retry-After), "
        f"until {s['retry_at']}, longer than this run may wait (120 s; VOIPTIME_RETRY_MAX_WAIT, "
        f"VOIPTIME_RETRY_BUDGET); nothing was sent again early. Rerun after {s['retry_at']}\n"
    )
    assert f"until {s['retry_at']}" in s["error"]
    assert state(sandbox)["requests"]["POST /leads"] == 3 and len(lead_ids(sandbox)) == 2
    faults(sandbox)
    rerun = go(sandbox, importing(tmp_path, source), tmp_path / "r2")
    assert (rerun.code, rerun.summary()["leads_created"]) == (0, 3)
    assert len(lead_ids(sandbox)) == 5


@pytest.mark.parametrize("header", ["Wed, 21 Oct 2015 07:28:00 GMT", "in a while"])
def test_a_past_or_garbled_retry_after_backs_off_with_the_minimum(
    sandbox: Any, tmp_path: Path, sleeps: Sleeps, header: str
) -> None:
    source = write_list(tmp_path / "l.csv", 3)
    faults(sandbox, {"route": "POST /leads", "status": 503, "retry_after": header, "times": 3})
    ran = go(
        sandbox,
        importing(tmp_path, source, "--concurrency", "1"),
        tmp_path / "r1",
        VOIPTIME_RETRY_MAX_WAIT="30",
    )
    assert ran.code == 0, ran.stderr
    # three retries of the first lead, none sooner than the 0.5 s minimum (was 5 in 19 ms)
    assert len(sleeps.waits) == 3 and sleeps.waits[0] == 0.5
    assert all(0.5 <= w <= 0.5 * 2**n for n, w in enumerate(sleeps.waits)), sleeps.waits
    assert state(sandbox)["requests"]["POST /leads"] == 6 and len(lead_ids(sandbox)) == 3
