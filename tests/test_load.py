"""etl.load against the real sandbox: concurrency, reruns, updates, enrolment splitting."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from clitools import C01, env_for, faults, release, run_cli, spring_id, state, wait_held
from clitools import import_args as imp

from etl.client import RateLimiter, VoiptimeClient
from etl.config import RetryPolicy
from etl.load import LeadRow, Loader, changed_fields
from etl.state import Ledger


def rows(n: int) -> list[LeadRow]:
    return [
        LeadRow(
            "f.csv",
            i + 2,
            f"lead{i}@example.com",
            {
                "groupId": 1,
                "name": f"N{i}",
                "surname": "S",
                "email": f"lead{i}@example.com",
                "timezoneId": "Europe/London",
                "phones": [{"number": f"+4420794600{i:02d}", "label": "main", "active": True}],
            },
        )
        for i in range(n)
    ]


def client(sandbox: Any) -> VoiptimeClient:
    return VoiptimeClient(sandbox.url, "sandbox-key", retry=RetryPolicy(sleep=lambda s: None))


def test_concurrent_batch_creates_each_lead_once_and_enrols_them(
    sandbox: Any, tmp_path: Path
) -> None:
    campaign = spring_id(sandbox)
    with client(sandbox) as c, Ledger.open(tmp_path / "s.sqlite") as ledger:
        loader = Loader(c, ledger, 1, campaign, concurrency=8)
        out = loader.load_batch(rows(40))
        loader.close()
    assert [o.action for o in out] == ["created"] * 40
    assert [o.row.source_row for o in out] == list(range(2, 42))  # outcomes keep row order
    st = state(sandbox)
    assert len(st["leads"]) == 40
    assert sorted(st["campaign_entries"][campaign]) == sorted(o.lead_id for o in out)
    assert st["requests"]["POST /campaigns/{campaignId}/entries/actions/generate"] == 1
    assert (loader.stats.created, loader.stats.campaign_entries_added) == (40, 40)


def test_dry_run_counts_from_the_ledger_and_sends_nothing(sandbox: Any, tmp_path: Path) -> None:
    batch = rows(3)
    with client(sandbox) as c, Ledger.open(tmp_path / "s.sqlite") as ledger:
        Loader(c, ledger, 1, None).load_batch(batch[:2])
    changed = [
        batch[0],
        LeadRow("f.csv", 3, batch[1].key, {**batch[1].payload, "name": "New"}),
        batch[2],
    ]
    with Ledger.open_readonly(tmp_path / "s.sqlite") as ledger:
        loader = Loader(None, ledger, 1, "x" * 24, dry_run=True)
        out = loader.load_batch(changed)
    assert [o.action for o in out] == ["unchanged", "updated", "created"]
    assert (loader.stats.unchanged, loader.stats.updated, loader.stats.created) == (1, 1, 1)
    assert loader.stats.campaign_entries_added == 3
    assert state(sandbox)["requests"]["POST /leads"] == 2


def test_generate_refused_for_one_bad_id_is_split_until_found(sandbox: Any, tmp_path: Path) -> None:
    campaign = spring_id(sandbox)
    with client(sandbox) as c, Ledger.open(tmp_path / "s.sqlite") as ledger:
        created = [c.create_lead(r.payload)["id"] for r in rows(7)]
        loader = Loader(c, ledger, 1, campaign)
        done, unknown = loader.enrol([*created[:3], 999999, *created[3:]])
    assert sorted(done) == sorted(created) and unknown == []
    assert sorted(state(sandbox)["campaign_entries"][campaign]) == sorted(created)
    assert loader.stats.failed == 1


def test_per_row_refusal_is_a_reject_and_the_run_goes_on(sandbox: Any, tmp_path: Path) -> None:
    batch = rows(3)
    batch[1] = LeadRow("f.csv", 3, batch[1].key, {**batch[1].payload, "timezoneId": "Mars/Olympus"})
    with client(sandbox) as c, Ledger.open(tmp_path / "s.sqlite") as ledger:
        loader = Loader(c, ledger, 1, None)
        out = loader.load_batch(batch)
        assert ledger.lookup(1, [batch[1].key])[batch[1].key].status == "rejected"
        assert ledger.counts() == {"created": 2, "rejected": 1}
    assert [o.action for o in out] == ["created", "failed", "created"]
    assert out[1].rejected and "timezoneId" in out[1].message
    assert loader.fatal is None


def test_auth_failure_stops_the_loader(sandbox: Any, tmp_path: Path) -> None:
    faults(sandbox, {"route": "POST /leads", "after": 1, "status": 401})
    with client(sandbox) as c, Ledger.open(tmp_path / "s.sqlite") as ledger:
        loader = Loader(c, ledger, 1, None, concurrency=1)
        out = loader.load_batch(rows(5))
        loader.close()
    assert [o.action for o in out] == ["created", "failed", "failed", "failed", "failed"]
    assert loader.fatal is not None and loader.fatal.exit_code == 77
    assert state(sandbox)["requests"]["POST /leads"] == 2


def test_changed_fields_only() -> None:
    old = {"name": "A", "surname": "B", "dynamicData": {"x": "1"}, "comments": [{"text": "a"}]}
    new = {"name": "A", "surname": "C", "dynamicData": {"x": "2"}, "comments": [{"text": "b"}]}
    assert changed_fields(old, new) == {"surname": "C", "dynamicData": {"x": "2"}}


def test_generate_404_for_a_campaign_that_is_gone_stops_with_78(
    sandbox: Any, tmp_path: Path
) -> None:
    with client(sandbox) as c, Ledger.open(tmp_path / "s.sqlite") as ledger:
        created = [c.create_lead(r.payload)["id"] for r in rows(4)]
        loader = Loader(c, ledger, 1, "f" * 24)
        done, unknown = loader.enrol(created)
    assert (done, unknown) == ([], [])
    assert loader.fatal is not None and loader.fatal.exit_code == 78
    assert "no longer exists" in str(loader.fatal)
    requests = state(sandbox)["requests"]
    assert requests["POST /campaigns/{campaignId}/entries/actions/generate"] == 1  # no halving
    assert requests["GET /campaigns"] == 1


def edited(row: LeadRow, file: str, line: int, origin: tuple[str, int] | None = None) -> LeadRow:
    """``row``'s lead with another name, read from ``file`` row ``line``."""
    return LeadRow(file, line, row.key, {**row.payload, "name": f"{file}:{line}"}, origin)


def test_a_changed_row_updates_its_lead_only_from_the_same_source(
    sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # f.csv and g.csv are still there to be imported again
    for name in ("f.csv", "g.csv"):
        Path(name).write_text("x\n", encoding="utf-8")
    first = rows(1)[0]  # f.csv row 2
    with client(sandbox) as c, Ledger.open(tmp_path / "s.sqlite") as ledger:
        Loader(c, ledger, 1, None).load_batch([first])
        lead = ledger.lookup(1, [first.key])[first.key].lead_id

        def load(row: LeadRow, **kw: Any) -> tuple[str, str, tuple[str, int] | None]:
            out = Loader(c, ledger, 1, None, **kw).load_batch([row])[0]
            return out.action, out.message, out.kept

        # the same file, another row (the file was sorted anew): an update, and the source moves
        assert load(edited(first, "f.csv", 7))[0] == "updated"
        # another file: a conflict, nothing sent, the lead keeps f.csv row 7
        action, message, kept = load(edited(first, "g.csv", 2))
        assert (action, kept) == ("conflict", ("f.csv", 7))
        assert message == (
            f"conflict: lead {lead} keeps its values from f.csv row 7; this row (g.csv row 2) "
            "has other name and was not sent; fix one of the two files, or rerun with "
            "--overwrite to make this row the lead's source"
        )
        # a rejects file's row first read from f.csv row 4 (a duplicate of row 7 there)
        action, message, kept = load(edited(first, "rejects.csv", 2, ("f.csv", 4)))
        assert (action, kept) == ("duplicate", ("f.csv", 7))
        assert message.startswith(f"duplicate of f.csv row 7, whose values lead {lead} holds")
        # a rejects file's row first read from f.csv row 7 itself: its own lead, updated
        assert load(edited(first, "rejects.csv", 3, ("f.csv", 7)))[0] == "updated"
        assert state(sandbox)["requests"]["PATCH /leads/{leadId}"] == 2
        # --overwrite: g.csv row 2 replaces the values and becomes the pinned source
        assert load(edited(first, "g.csv", 2), overwrite=True)[0] == "updated"
        e = ledger.lookup(1, [first.key])[first.key]
        assert (e.source_file, e.source_row, e.source_pinned) == ("g.csv", 2, True)
        # now even another row of g.csv is a conflict, and f.csv cannot change it back
        assert load(edited(first, "g.csv", 5))[:1] == ("conflict",)
        action, message, _ = load(edited(first, "f.csv", 7))
        assert action == "conflict"
        assert f"lead {lead} keeps the values pinned with --overwrite from g.csv row 2" in message
        assert load(edited(first, "g.csv", 2))[0] == "unchanged"
    st = state(sandbox)
    assert st["requests"]["PATCH /leads/{leadId}"] == 3 and st["requests"]["POST /leads"] == 1
    assert [lead["name"] for lead in st["leads"]] == ["g.csv:2"]


def test_a_source_file_that_is_gone_gives_way_unless_pinned(sandbox: Any, tmp_path: Path) -> None:
    """Last night's export was archived: tonight's, under another name, updates its leads."""
    old, new, third = (str(tmp_path / n) for n in ("crm-01.csv", "crm-02.csv", "crm-03.csv"))
    for name in (old, new, third):
        Path(name).write_text("x\n", encoding="utf-8")
    first = rows(1)[0]
    with client(sandbox) as c, Ledger.open(tmp_path / "s.sqlite") as ledger:

        def load(row: LeadRow, **kw: Any) -> str:
            return Loader(c, ledger, 1, None, **kw).load_batch([row])[0].action

        assert load(LeadRow(old, 2, first.key, first.payload)) == "created"
        assert load(edited(first, new, 5)) == "conflict"  # crm-01.csv is still there
        Path(old).unlink()
        assert load(edited(first, new, 5)) == "updated"
        e = ledger.lookup(1, [first.key])[first.key]
        assert (e.source_file, e.source_row, e.source_pinned) == (new, 5, False)
        assert load(edited(first, third, 2), overwrite=True) == "updated"  # pinned to crm-03
        Path(third).unlink()
        assert load(edited(first, new, 5)) == "conflict"  # a pin holds even when it is gone
    assert state(sandbox)["requests"]["PATCH /leads/{leadId}"] == 2


# Found by a new user in a trial run (were tests/test_regressions.py): each pinned through the
# CLI against the sandbox.


def test_ambiguous_enrolment_is_reported_until_a_person_retries(
    sandbox: Any, tmp_path: Path
) -> None:
    faults(
        sandbox,
        {
            "route": "POST /campaigns/{campaignId}/entries/actions/generate",
            "nth": 1,
            "drop": "before",
        },
    )
    first = run_cli(imp(tmp_path), env_for(sandbox), tmp_path / "r1")
    assert first.code == 4
    assert first.summary()["leads_ambiguous"] == 5
    again = run_cli(imp(tmp_path), env_for(sandbox), tmp_path / "r2")
    assert again.code == 4
    s = again.summary()
    assert (s["leads_ambiguous"], s["campaign_entries_added"], s["leads_unchanged"]) == (5, 0, 5)
    assert all("unknown outcome" in r["warnings"] for r in again.loaded())
    html = (tmp_path / "r2" / "report.html").read_text()
    assert "Ambiguous rows: a person must look" in html and "nan.null@example.com" in html
    assert state(sandbox)["campaign_entries"] == {}
    retried = run_cli(imp(tmp_path, "--retry-ambiguous"), env_for(sandbox), tmp_path / "r3")
    assert retried.code == 0, retried.stderr
    entries = state(sandbox)["campaign_entries"][spring_id(sandbox)]
    assert sorted(entries) == sorted(lead["id"] for lead in state(sandbox)["leads"])
    assert retried.summary()["campaign_entries_added"] == 5


def test_ambiguous_lead_is_named_in_loaded_csv(sandbox: Any, tmp_path: Path) -> None:
    faults(sandbox, {"route": "POST /leads", "nth": 2, "drop": "after"})
    ran = run_cli(imp(tmp_path, "--concurrency", "1"), env_for(sandbox), tmp_path / "r")
    assert ran.code == 4
    rows = {r["_source_row"]: r for r in ran.loaded()}
    assert rows["3"]["action"] == "ambiguous" and rows["3"]["lead_id"] == ""
    assert "connection dropped" in rows["3"]["warnings"]


def test_a_changed_note_updates_its_comment(sandbox: Any, tmp_path: Path) -> None:
    source = tmp_path / "l.csv"
    source.write_text(C01.read_text(encoding="utf-8"), encoding="utf-8")
    assert run_cli(imp(tmp_path, source=source), env_for(sandbox), tmp_path / "r1").code == 0
    source.write_text(source.read_text().replace(",N/A\n", ",call after 5pm\n"), encoding="utf-8")
    ran = run_cli(imp(tmp_path, source=source), env_for(sandbox), tmp_path / "r2")
    assert ran.code == 0
    assert ran.summary()["leads_updated"] == 1
    st = state(sandbox)
    # the note created with the lead is edited in place (PUT with the id the ledger kept)
    assert st["requests"]["PUT /leads/{leadId}/comments/{commentId}"] == 1
    assert "POST /leads/{leadId}/comments" not in st["requests"]
    assert "PATCH /leads/{leadId}" not in st["requests"]
    nan = next(lead for lead in st["leads"] if lead["email"] == "nan.null@example.com")
    texts = [c["text"] for c in st["comments"] if c.get("leadId") == nan["id"]]
    assert texts == ["call after 5pm"]


def test_a_row_the_server_refuses_is_rejected_and_the_run_goes_on(
    sandbox: Any, tmp_path: Path
) -> None:
    faults(
        sandbox,
        {
            "route": "POST /leads",
            "nth": 2,
            "status": 400,
            "body": {"status": 400, "message": "dynamicData: field not in project"},
        },
    )
    ran = run_cli(imp(tmp_path, "--concurrency", "1"), env_for(sandbox), tmp_path / "r")
    assert ran.code == 3
    assert [(r["_source_row"], r["_errors"]) for r in ran.rejects()] == [
        ("3", "api: refused by the API: dynamicData: field not in project")
    ]
    s = ran.summary()
    assert (s["leads_created"], s["rows_rejected"], s["campaign_entries_added"]) == (4, 1, 4)
    with Ledger.open_readonly(tmp_path / "s.sqlite") as ledger:
        assert ledger.counts() == {"created": 4, "rejected": 1, "enrol_done": 4}
    faults(sandbox)  # the account now accepts it: the next run sends that row again
    again = run_cli(imp(tmp_path), env_for(sandbox), tmp_path / "r2")
    assert again.code == 0
    assert (again.summary()["leads_created"], again.summary()["leads_unchanged"]) == (1, 4)


def test_the_next_batch_is_sent_while_the_last_one_is_enrolled(
    sandbox: Any, tmp_path: Path
) -> None:
    campaign = spring_id(sandbox)
    generate = "POST /campaigns/{campaignId}/entries/actions/generate"
    faults(sandbox, {"route": generate, "hold": True, "times": 1})
    batches = [rows(12)[:6], rows(12)[6:]]
    got: list[list[Any]] = []
    with client(sandbox) as c, Ledger.open(tmp_path / "s.sqlite") as ledger:
        loader = Loader(c, ledger, 1, campaign, concurrency=3)
        worker = threading.Thread(target=lambda: got.extend(loader.load_batches(batches)))
        worker.start()
        try:
            wait_held(sandbox, 1)  # the first batch's generate call is held by the sandbox...
            deadline = time.monotonic() + 60
            while state(sandbox)["requests"].get("POST /leads", 0) < 12:  # ...not the leads
                assert time.monotonic() < deadline, state(sandbox)["requests"]
                time.sleep(0.01)
            assert got == []  # the first batch's outcomes wait for its enrolment
        finally:
            release(sandbox)
            worker.join(60)
        loader.close()
        assert ledger.counts() == {"created": 12, "enrol_done": 12}
    assert [[o.row.source_row for o in batch] for batch in got] == [
        list(range(2, 8)),
        list(range(8, 14)),
    ]
    assert {(o.action, o.campaign_id) for batch in got for o in batch} == {("created", campaign)}
    st = state(sandbox)
    assert st["requests"][generate] == 2
    assert sorted(st["campaign_entries"][campaign]) == sorted(o.lead_id for b in got for o in b)


def test_rate_limit_is_one_bucket_for_all_workers_one_token_a_post(
    sandbox: Any, tmp_path: Path
) -> None:
    slept: list[float] = []
    with client(sandbox) as c, Ledger.open(tmp_path / "s.sqlite") as ledger:
        c.limiter = RateLimiter(4, clock=lambda: 100.0, sleep=slept.append)
        loader = Loader(c, ledger, 1, None, concurrency=4)
        out = loader.load_batch(rows(8))
        loader.close()
    assert [o.action for o in out] == ["created"] * 8
    assert sorted(slept) == [0.25 * i for i in range(1, 8)]  # 8 POSTs, the first at once


def test_a_worker_waiting_for_its_turn_records_nothing_and_a_cancel_ends_the_wait(
    sandbox: Any, tmp_path: Path
) -> None:
    cancel = threading.Event()
    got: list[Any] = []
    with client(sandbox) as c, Ledger.open(tmp_path / "s.sqlite") as ledger:
        c.limiter = RateLimiter(0.001)  # the second POST's turn is 1,000 s away
        loader = Loader(c, ledger, 1, None, concurrency=1, cancel=cancel)
        worker = threading.Thread(target=lambda: got.extend(loader.load_batch(rows(2))))
        worker.start()
        deadline = time.monotonic() + 60
        while c.limiter._tokens >= 0:  # until the second row has taken its turn on credit
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert ledger.counts() == {"created": 1}  # the waiting row is not recorded as sending
        cancel.set()
        worker.join(60)
        loader.close()
        assert ledger.counts() == {"created": 1}
    assert [(o.action, o.message) for o in got] == [
        ("created", ""),
        ("failed", "not sent: the run was interrupted"),
    ]
    assert state(sandbox)["requests"]["POST /leads"] == 1


def test_new_leads_are_claimed_ahead_and_a_stop_releases_the_claims_not_sent(
    sandbox: Any, tmp_path: Path
) -> None:
    faults(sandbox, {"route": "POST /leads", "after": 2, "hold": True})
    cancel = threading.Event()
    got: list[Any] = []
    path = tmp_path / "s.sqlite"
    try:
        with client(sandbox) as c, Ledger.open(path) as ledger:
            ledger.start_run("import", [], "2026-01-01T00:00:00Z")
            assert ledger.claims_ahead
            loader = Loader(c, ledger, 1, None, concurrency=2, cancel=cancel, grace=0)
            worker = threading.Thread(target=lambda: got.extend(loader.load_batch(rows(20))))
            worker.start()
            wait_held(sandbox, 2)
            # the two held POSTs departed: their head record and four marks; leads 5 and up
            # were claimed (group by group, eight at a time) and none of them departed
            assert (tmp_path / "s.sqlite.departed").stat().st_size == 32 * 5
            cancel.set()
            worker.join(60)
            # the claims not sent are gone; the two in flight stay sending (abandoned)
            assert ledger.counts() == {"created": 2, "sending": 2}
            loader.close()
        # a run that ends leaves no claim and no departed file
        assert not (tmp_path / "s.sqlite.departed").exists()
    finally:
        release(sandbox)
    assert [o.action for o in got] == ["created"] * 2 + ["ambiguous"] * 2 + ["failed"] * 16
    assert {o.message for o in got[4:]} == {"not sent: the run was interrupted"}
    assert state(sandbox)["requests"]["POST /leads"] == 4
