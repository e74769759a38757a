"""Call-centre data end to end: callbacks, meetings and notes as ledger stages, calling windows.

Every test runs the CLI as a user does against the real sandbox on a loopback port; the run's
time is fixed with ``VOIPTIME_TEST_NOW`` so past times and calling-window numbers are exact.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from clitools import ANSWER_TIMEOUT, Ran, env_for, run_cli, state

NOW = "2026-03-01T12:00:00Z"  # a Sunday; 07:00 in New York, 13:00 in Berlin

MAPPING = """\
project: Demo
defaults: {region: US}
fields: {name: First, surname: Last, email: Email, timezoneId: Zone}
phones: [Phone]
callback: {column: Call back at, timezone: lead, user: 7, teams: [5b2773d179b7880001da77d5]}
meeting: {start: Meeting start, end: Meeting end}
comments:
  - {column: Note, author: "42", date: Noted at}
  - {column: Remark, author: "43"}
"""

HEADER = "First,Last,Email,Phone,Zone,Call back at,Meeting start,Meeting end,Note,Noted at,Remark\n"


def write(tmp: Path, rows: list[str], mapping: str = MAPPING) -> tuple[Path, Path]:
    source, mapfile = tmp / "l.csv", tmp / "m.yaml"
    source.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    mapfile.write_text(mapping, encoding="utf-8")
    return source, mapfile


def go(
    sandbox: Any, tmp: Path, source: Path, mapfile: Path, report: str, *extra: str, **env: str
) -> Ran:
    args = ["import", str(source), "--mapping", str(mapfile), "--state", str(tmp / "s.sqlite")]
    return run_cli(
        [*args, "--operator-timezone", "Europe/London", *extra],
        env_for(sandbox, VOIPTIME_TEST_NOW=env.pop("now", NOW), **env),
        tmp / report,
    )


def tasks_by_lead(sandbox: Any) -> dict[str, list[dict[str, Any]]]:
    st = state(sandbox)
    email = {lead["id"]: lead["email"] for lead in st["leads"]}
    out: dict[str, list[dict[str, Any]]] = {}
    for task in st["tasks"]:
        out.setdefault(email[task["leadId"]], []).append(task)
    return out


def test_callbacks_across_dst_gap_and_fold_meeting_and_notes(sandbox: Any, tmp_path: Path) -> None:
    rows = [
        # New York, March: EST (-5) until 2026-03-08 02:00, then EDT (-4)
        "Ann,Ny,ann@example.com,+1 212 555 0101,America/New_York,2026-03-07 10:00,,,,,",
        "Bob,Ny,bob@example.com,+1 212 555 0102,America/New_York,2026-03-09 10:00,,,,,",
        "Cat,Ny,cat@example.com,+1 212 555 0103,America/New_York,2026-03-08 02:30,,,,,",
        # Berlin, October: CEST (+2) until 2026-10-25 03:00, then CET (+1); 02:30 happens twice
        "Dan,Be,dan@example.com,+49 30 901820,Europe/Berlin,2026-10-24 09:00,,,,,",
        "Eve,Be,eve@example.com,+49 30 901821,Europe/Berlin,2026-10-26 09:00,,,,,",
        "Fay,Be,fay@example.com,+49 30 901822,Europe/Berlin,2026-10-25 02:30,,,,,",
        # a meeting with its end, and two notes, one with its own time read in the lead's zone
        "Gus,Mt,gus@example.com,+49 30 901823,Europe/Berlin,,2026-03-10 15:00,"
        "2026-03-10 16:30,Wants a demo,2026-02-27 17:45,Prefers e-mail",
        # past callback: rejected by default
        "Hal,Pa,hal@example.com,+1 212 555 0104,America/New_York,2026-02-28 10:00,,,,,",
        # outside the calling window (22:30 local): a warning, still sent
        "Ida,Lt,ida@example.com,+1 212 555 0105,America/New_York,2026-03-09 22:30,,,,,",
    ]
    source, mapfile = write(tmp_path, rows)
    ran = go(sandbox, tmp_path, source, mapfile, "r1")
    assert ran.code == 3, ran.stderr
    errors = {r["Email"]: r["_errors"] for r in ran.rejects()}
    assert errors == {
        "cat@example.com": "callback (Call back at): not a time in America/New_York: "
        "2026-03-08 02:30 is skipped when the clocks jump forward that night (daylight saving "
        "time starts); give a time before or after the jump",
        "fay@example.com": "callback (Call back at): ambiguous in Europe/Berlin: 2026-10-25 "
        "02:30 happens twice when the clocks go back that night (UTC+02:00 or +01:00); give a "
        "time outside that hour",
        "hal@example.com": "callback (Call back at): in the past: callback 2026-02-28 10:00 "
        "(America/New_York), the run started at 2026-03-01 07:00 there; fix the time, or set "
        "callback.past: skip",
    }
    tasks = tasks_by_lead(sandbox)
    got = {
        email: [(t["type"], t["triggerTime"], t.get("finishTime")) for t in ts]
        for email, ts in tasks.items()
    }
    assert got == {
        "ann@example.com": [("CALLBACK", "2026-03-07T15:00:00", None)],
        "bob@example.com": [("CALLBACK", "2026-03-09T14:00:00", None)],
        "dan@example.com": [("CALLBACK", "2026-10-24T07:00:00", None)],
        "eve@example.com": [("CALLBACK", "2026-10-26T08:00:00", None)],
        "gus@example.com": [("MEETING", "2026-03-10T14:00:00", "2026-03-10T15:30:00")],
        "ida@example.com": [("CALLBACK", "2026-03-10T02:30:00", None)],
    }
    st = state(sandbox)
    leads = {lead["email"]: lead for lead in st["leads"]}
    ann = tasks["ann@example.com"][0]
    assert ann["userId"] == 7 and ann["teamIds"] == ["5b2773d179b7880001da77d5"]
    assert ann["phoneId"] == leads["ann@example.com"]["phones"][0]["id"]
    assert ann["phoneNumber"] == "+12125550101"
    gus_notes = sorted(
        (c["text"], c["authorId"], c["dateTime"])
        for c in st["comments"]
        if c["leadId"] == leads["gus@example.com"]["id"]
    )
    assert gus_notes == [
        ("Prefers e-mail", "43", "2026-03-01T12:00:00Z"),  # the run's time
        ("Wants a demo", "42", "2026-02-27T16:45:00Z"),  # 17:45 in Berlin (CET)
    ]
    s = ran.summary()
    assert (s["leads_created"], s["tasks_created"], s["notes_created"]) == (6, 6, 0)
    loaded = {r["key"]: r for r in ran.loaded()}
    assert loaded["ida@example.com"]["warnings"] == (
        "callback at 2026-03-09 22:30 America/New_York is outside the calling window "
        "08:00-21:00; sent anyway"
    )
    assert loaded["ann@example.com"]["tasks_and_notes"].startswith("callback created 5bb4733")

    # past: skip sends no task for a past time, with a warning, and loads the lead
    skip = MAPPING.replace("teams: [5b2773d179b7880001da77d5]}", "past: skip}")
    source, mapfile = write(tmp_path, [rows[7]], skip)
    again = go(sandbox, tmp_path, source, mapfile, "r2")
    assert again.code == 0, again.stderr
    (hal,) = again.loaded()
    assert (hal["action"], hal["tasks_and_notes"]) == ("created", "")
    assert hal["warnings"] == (
        "in the past: callback 2026-02-28 10:00 (America/New_York), the run started at "
        "2026-03-01 07:00 there; not sent"
    )
    assert "hal@example.com" not in tasks_by_lead(sandbox)


def test_crash_before_the_task_resumes_once_and_an_edit_is_one_put(
    sandbox: Any, tmp_path: Path
) -> None:
    rows = [
        "Ann,Ny,ann@example.com,+1 212 555 0101,America/New_York,2026-03-07 10:00,,,Hi,,",
    ]
    source, mapfile = write(tmp_path, rows)
    crashed = go(sandbox, tmp_path, source, mapfile, "r1", VOIPTIME_TEST_CRASH_AFTER_CREATED="1")
    assert crashed.code == -9  # SIGKILL right after the lead's id was committed
    st = state(sandbox)
    assert len(st["leads"]) == 1 and st["tasks"] == []
    resumed = go(sandbox, tmp_path, source, mapfile, "r2")
    assert resumed.code == 0, resumed.stderr
    (row,) = resumed.loaded()
    assert row["action"] == "updated" and row["tasks_and_notes"].startswith("callback created")
    st = state(sandbox)
    assert len(st["leads"]) == 1 and len(st["tasks"]) == 1
    assert st["tasks"][0]["phoneId"] == st["leads"][0]["phones"][0]["id"]
    assert st["requests"]["POST /leads/{leadId}/tasks"] == 1
    assert [c["text"] for c in st["comments"]] == ["Hi"]  # the note went with the lead

    # the same file again: nothing is sent
    same = go(sandbox, tmp_path, source, mapfile, "r3")
    assert same.code == 0 and same.loaded()[0]["action"] == "unchanged"
    # the callback moved and the note edited: one PUT each, no new task or note
    source.write_text(
        source.read_text().replace("2026-03-07 10:00", "2026-03-07 11:15").replace(",Hi,", ",Bye,")
    )
    edited = go(sandbox, tmp_path, source, mapfile, "r4")
    assert edited.code == 0, edited.stderr
    st = state(sandbox)
    assert st["requests"]["POST /leads/{leadId}/tasks"] == 1
    assert st["requests"]["PUT /leads/{leadId}/tasks/{taskId}"] == 1
    assert st["requests"]["PUT /leads/{leadId}/comments/{commentId}"] == 1
    assert "POST /leads/{leadId}/comments" not in st["requests"]
    assert [(t["triggerTime"], t["status"]) for t in st["tasks"]] == [
        ("2026-03-07T16:15:00", "OPEN")
    ]
    assert [c["text"] for c in st["comments"]] == ["Bye"]
    s = edited.summary()
    assert (s["leads_updated"], s["tasks_updated"], s["notes_updated"]) == (1, 1, 1)


def test_a_lost_task_answer_is_ambiguous_and_not_sent_again(sandbox: Any, tmp_path: Path) -> None:
    from clitools import faults

    rows = ["Ann,Ny,ann@example.com,+1 212 555 0101,America/New_York,2026-03-07 10:00,,,,,"]
    source, mapfile = write(tmp_path, rows)
    faults(sandbox, {"route": "POST /leads/{leadId}/tasks", "drop": "after"})
    first = go(sandbox, tmp_path, source, mapfile, "r1")
    assert first.code == 4, first.stderr
    (row,) = first.loaded()
    assert (row["action"], row["warnings"]) == (
        "created",
        f"callback: POST /leads/{row['lead_id']}/tasks: sent, but the connection dropped before "
        "the answer",
    )
    faults(sandbox)
    again = go(sandbox, tmp_path, source, mapfile, "r2")
    assert again.code == 4
    assert "--retry-ambiguous" in again.loaded()[0]["warnings"]
    assert state(sandbox)["requests"]["POST /leads/{leadId}/tasks"] == 1


WINDOW_MAPPING = """\
project: Demo
fields: {name: First, surname: Last, email: Email, timezoneId: Zone}
calling_window: "08:00-21:00"
"""


def test_calling_window_numbers_checked_by_hand(sandbox: Any, tmp_path: Path) -> None:
    source = tmp_path / "w.csv"
    source.write_text(
        "First,Last,Email,Zone\n"
        "A,Ny,a@example.com,America/New_York\n"  # UTC-5 in December
        "B,Be,b@example.com,Europe/Berlin\n"  # UTC+1
        "C,In,c@example.com,Asia/Kolkata\n"  # UTC+5:30
        "D,Be,d@example.com,Europe/Berlin\n"
        "E,Sy,e@example.com,Australia/Sydney\n"  # UTC+11 (summer there)
        "F,Bad,not-an-email,Europe/Berlin\n",  # rejected: not counted
        encoding="utf-8",
    )
    mapfile = tmp_path / "m.yaml"
    mapfile.write_text(WINDOW_MAPPING, encoding="utf-8")
    # --calling-window overrides the mapping's; London is UTC+0 in December
    window = ["--calling-window", "09:00-17:00", "--operator-timezone", "Europe/London"]
    env = env_for(sandbox, VOIPTIME_TEST_NOW="2026-12-01T12:00:00Z")
    checked = run_cli(
        ["validate", str(source), "--mapping", str(mapfile), *window], env, tmp_path / "v"
    )
    dry = run_cli(
        ["import", str(source), "--mapping", str(mapfile), "--dry-run", *window]
        + ["--state", str(tmp_path / "s.sqlite")],
        env,
        tmp_path / "d",
    )
    # By hand, 09:00-17:00 on each lead's clock in London hours (a whole hour inside):
    # New York 14:00-22:00 UTC -> 14..21; Berlin 08:00-16:00 -> 8..15; Kolkata 03:30-11:30 ->
    # 4..10 (03:00 and 11:00 only half inside); Sydney 22:00-06:00 -> 22, 23, 0..5.
    ny, be, kol, syd = "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Sydney"
    want: dict[int, dict[str, int]] = {h: {} for h in range(24)}
    for hours, zone, n in (
        (range(14, 22), ny, 1),
        (range(8, 16), be, 2),
        (range(4, 11), kol, 1),
        ([22, 23, 0, 1, 2, 3, 4, 5], syd, 1),
    ):
        for h in hours:
            want[h][zone] = n
    for ran in (checked, dry):
        assert ran.code == 3, ran.stderr
        s = ran.summary()
        assert (s["calling_window"], s["operator_timezone"], s["operator_day"]) == (
            "09:00-17:00",
            "Europe/London",
            "2026-12-01",
        )
        assert s["callable_now"] == 2  # the Berliners: 13:00 there; New York 07:00, Kolkata
        # 17:30, Sydney 23:00
        assert s["callable_by_hour"] == [
            {"hour": h, "leads": sum(want[h].values()), "by_zone": dict(sorted(want[h].items()))}
            for h in range(24)
        ]
        rows = {r["key"]: r for r in ran.loaded()}
        assert {
            k: (r["timezoneId"], r["local_time_at_run"], r["callable_hours"])
            for k, r in rows.items()
        } == {
            "a@example.com": (ny, "2026-12-01 07:00", "14:00-22:00"),
            "b@example.com": (be, "2026-12-01 13:00", "08:00-16:00"),
            "c@example.com": (kol, "2026-12-01 17:30", "04:00-11:00"),
            "d@example.com": (be, "2026-12-01 13:00", "08:00-16:00"),
            "e@example.com": (syd, "2026-12-01 23:00", "22:00-06:00"),
        }
    html = (tmp_path / "v" / "report.html").read_text(encoding="utf-8")
    assert "2 of the 5 valid leads could be called when the run started" in html
    chart = html.split('<svg class="hours"', 1)[1].split("</svg>", 1)[0]
    assert chart.count("<rect ") == sum(len(z) for z in want.values())  # one per hour and zone
    assert "<title>08:00 Europe/Berlin: 2</title>" in html


def test_per_row_status_and_source_by_name_id_and_map(sandbox: Any, tmp_path: Path) -> None:
    source = tmp_path / "s.csv"
    source.write_text(
        "First,Last,Email,Stage,Came from\n"
        "A,One,a@example.com,Hot,web form\n"  # map: Hot -> New (11); source by name (31)
        "B,Two,b@example.com,cold,32\n"  # map: Cold -> Callback (12); source by id
        "C,Three,c@example.com, callback ,\n"  # by name, any case; no source
        "D,Four,d@example.com,,Referral\n"  # no status
        "E,Five,e@example.com,Lukewarm,Fair\n",  # neither is the project's
        encoding="utf-8",
    )
    mapfile = tmp_path / "m.yaml"
    mapfile.write_text(
        "project: Demo\n"
        "defaults: {timezone: Europe/Berlin}\n"
        "fields: {name: First, surname: Last, email: Email}\n"
        "status: {column: Stage, map: {Hot: New, Cold: Callback}}\n"
        "source: {column: Came from}\n",
        encoding="utf-8",
    )
    args = ["import", str(source), "--mapping", str(mapfile), "--state", str(tmp_path / "s.db")]
    ran = run_cli(args, env_for(sandbox), tmp_path / "r")
    assert ran.code == 3, ran.stderr
    (bad,) = ran.rejects()
    assert bad["_errors"] == (
        "source (Came from): 'Fair': not a source of the project (its sources: Web form, "
        "Referral); status (Stage): 'Lukewarm': not a status of the project (its statuses: "
        "New, Callback)"
    )
    leads = {lead["email"]: lead for lead in state(sandbox)["leads"]}
    assert {e: (lead["statusId"], lead["sourceId"]) for e, lead in leads.items()} == {
        "a@example.com": (11, 31),
        "b@example.com": (12, 32),
        "c@example.com": (12, None),
        "d@example.com": (None, 32),
    }
    # a stage changed on a rerun is a PATCH of statusId
    source.write_text(source.read_text().replace("cold,32", "Hot,32"), encoding="utf-8")
    again = run_cli(args, env_for(sandbox), tmp_path / "r2")
    assert again.code == 3 and again.summary()["leads_updated"] == 1
    assert {lead["email"]: lead["statusId"] for lead in state(sandbox)["leads"]}[
        "b@example.com"
    ] == 11


def test_the_call_centre_sample_imports_as_expected(sandbox: Any, tmp_path: Path) -> None:
    import json

    root = Path(__file__).resolve().parent.parent
    want = json.loads((root / "sample_data" / "expected.json").read_text(encoding="utf-8"))[
        "callcentre.csv"
    ]
    args = ["import", str(root / "sample_data/callcentre.csv")]
    args += ["--mapping", str(root / want["mapping"]), "--state", str(tmp_path / "s.sqlite")]
    ran = run_cli(args, env_for(sandbox, VOIPTIME_TEST_NOW=NOW), tmp_path / "r")
    assert ran.code == 3, ran.stderr
    s = ran.summary()
    assert (s["rows_read"], s["rows_rejected"], s["leads_created"], s["tasks_created"]) == (
        want["rows_read"],
        want["rows_rejected"],
        want["rows_valid"],
        want["tasks_created"],
    )
    assert sorted(r["_source_row"] for r in ran.rejects()) == sorted(want["rejected_rows"])
    st = state(sandbox)
    assert len(st["tasks"]) == want["tasks_created"]
    assert len(st["comments"]) == want["notes_with_leads"]
    assert "When the leads can be called" in (tmp_path / "r" / "report.html").read_text()


def test_a_task_call_answered_404_marks_the_row_missing_and_the_run_goes_on(
    sandbox: Any, tmp_path: Path
) -> None:
    import requests

    rows = [
        "Ann,Ny,ann@example.com,+1 212 555 0101,America/New_York,2026-03-07 10:00,,,,,",
        "Bob,Ny,bob@example.com,+1 212 555 0102,America/New_York,2026-03-07 10:30,,,,,",
    ]
    source, mapfile = write(tmp_path, rows)
    first = go(sandbox, tmp_path, source, mapfile, "r1")
    assert first.code == 0, first.stderr
    ann = next(lead for lead in state(sandbox)["leads"] if lead["email"] == "ann@example.com")
    gone = requests.delete(f"{sandbox.base_url}/_sandbox/leads/{ann['id']}", timeout=ANSWER_TIMEOUT)
    assert gone.status_code == 200, gone.text
    # both callbacks move: Ann's PUT answers 404 (her lead was deleted in the dialer), Bob's goes
    source.write_text(
        source.read_text().replace("10:00", "11:00").replace("10:30", "11:30"), encoding="utf-8"
    )
    edited = go(sandbox, tmp_path, source, mapfile, "r2")
    assert edited.code == 3, edited.stderr
    by_email = {row["key"]: row for row in edited.loaded()}
    assert by_email["ann@example.com"]["action"] == "missing"
    assert re.fullmatch(
        rf"lead missing in the dialer: lead {ann['id']} \(PUT /leads/{ann['id']}/tasks/"
        r"[0-9a-f]{24} answered 404 on [0-9-]{10} [0-9:]{5} UTC\); not sent\. Rerun with "
        r"--recreate-missing to create it again \(a new lead id, enrolled in the campaign "
        r"again\)",
        by_email["ann@example.com"]["warnings"],
    ), by_email["ann@example.com"]["warnings"]
    assert by_email["bob@example.com"]["action"] == "updated"
    s = edited.summary()
    assert (s["leads_updated"], s["leads_failed"], s["tasks_updated"]) == (1, 1, 1)
    st = state(sandbox)
    assert st["requests"]["PUT /leads/{leadId}/tasks/{taskId}"] == 2
    assert [t["triggerTime"] for t in st["tasks"]] == ["2026-03-07T16:30:00"]
    # the next run sends nothing for Ann until a person asks for her lead to be made again
    again = go(sandbox, tmp_path, source, mapfile, "r3")
    assert again.code == 3
    assert {r["key"]: r["action"] for r in again.loaded()} == {
        "ann@example.com": "missing",
        "bob@example.com": "unchanged",
    }
    assert state(sandbox)["requests"]["PUT /leads/{leadId}/tasks/{taskId}"] == 2
