"""etl.pipeline.run() called as a library: real files in tmp_path, the real sandbox API, and
the exact result (exit code, error, counts) and reports (summary.json, loaded.csv, rejects.csv)
of each run."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

from clitools import C01, C01_MAP, LIST_MAPPING, env_for, run_cli, spring_id, state
from clitools import import_args as imp

from etl.client import VoiptimeClient
from etl.config import RetryPolicy
from etl.errors import ConfigError, EtlError, InputError, UnknownReferenceError
from etl.pipeline import RunOptions, run
from etl.sandbox import SandboxServer

#: The run's clock: a Monday afternoon in London (callable hours and local times depend on it).
NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
SPRING_ID = "65ef1a005d0de5000100003c"  # "Spring outreach" in the sandbox's demo data

#: Six rows: two good (row 7 takes its zone from the phone), one of each kind of fault, and a
#: duplicate of row 2 whose e-mail differs only in case.
ROWS = (
    "First,Last,Email,Phone,Zone\n"
    "Ann,Lee,ann@example.com,+44 20 7946 0001,Europe/London\n"
    "Bo,,bo@example.com,+44 20 7946 0002,Europe/London\n"
    "Cy,Moe,cy@,+44 20 7946 0003,Europe/London\n"
    "Di,Roe,di@example.com,12,Mars/Olympus\n"
    "Ann,Lee,ANN@example.com,+44 20 7946 0004,Europe/London\n"
    "Ed,Ng,ed@example.com,020 7946 0005,\n"
)
REJECTED = [
    ("3", "surname (Last): required, but empty"),
    ("4", "email (Email): 'cy@': not an e-mail address (nothing after @)"),
    (
        "5",
        "timezoneId (Zone): 'Mars/Olympus': not an IANA time zone; write the lead's IANA zone, "
        "e.g. America/New_York or Europe/London; phone (Phone): '12': too short for GB",
    ),
    ("6", "key: duplicate of row 2 (same email 'ann@example.com')"),
]
#: summary.json counts of a run over :data:`ROWS` (apart from the leads_* of the load).
CHECKED = {
    "rows_read": 6,
    "rows_valid": 2,
    "rows_rejected": 4,
    "rows_duplicate": 1,
    "timezone_sources": {"column": 1, "phone": 1},
    "phone_regions": {"GB": 2},
    "errors_by_field": {"email": 1, "key": 1, "phone": 1, "surname": 1, "timezoneId": 1},
    "callable_now": 2,
    "operator_day": "2026-03-02",
}
LEADS_ZERO = {
    "leads_created": 0,
    "leads_updated": 0,
    "leads_unchanged": 0,
    "leads_failed": 0,
    "leads_ambiguous": 0,
    "leads_conflict": 0,
    "leads_missing": 0,
    "campaign_entries_added": 0,
}


def _list(tmp_path: Path, text: str = ROWS) -> tuple[Path, Path]:
    source = tmp_path / "l.csv"
    source.write_text(text, encoding="utf-8")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(LIST_MAPPING, encoding="utf-8")
    return source, mapping


def _options(tmp_path: Path, report: str, sources: list[Path], mapping: Path, **kw: Any) -> Any:
    """One worker process and one sending thread (lead ids in row order), the fixed clock."""
    base: dict[str, Any] = {
        "sources": sources,
        "mapping": mapping,
        "report_dir": tmp_path / report,
        "state": tmp_path / "s.sqlite",
        "workers": 1,
        "concurrency": 1,
        "now": NOW,
        "operator_timezone": "Europe/London",
    }
    return RunOptions(**{**base, **kw})


def _client(sandbox: SandboxServer) -> Any:
    """A factory of clients of the sandbox that retry without waiting."""
    policy = RetryPolicy(min_wait=0, max_wait=0, sleep=lambda _s: None)
    return lambda: VoiptimeClient(sandbox.url, "sandbox-key", retry=policy)


def _summary(report: Path) -> dict[str, Any]:
    return json.loads((report / "summary.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _counts(report: Path, keys: dict[str, Any]) -> dict[str, Any]:
    summary = _summary(report)
    return {k: summary[k] for k in keys}


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _loaded(report: Path) -> list[tuple[str, str, str, str, str]]:
    """(row, key, lead id, action, zone source) of each row of loaded.csv."""
    return [
        (r["_source_row"], r["key"], r["lead_id"], r["action"], r["timezone_source"])
        for r in _csv(report / "loaded.csv")
    ]


def _rejected(report: Path) -> list[tuple[str, str]]:
    return [(r["_source_row"], r["_errors"]) for r in _csv(report / "rejects.csv")]


def _writes(sandbox: SandboxServer) -> dict[str, int]:
    """The writing requests the sandbox answered, by route."""
    return {k: n for k, n in state(sandbox)["requests"].items() if not k.startswith("GET ")}


def test_validate_offline_checks_every_row_and_writes_the_four_reports(tmp_path: Path) -> None:
    result = run(_options(tmp_path, "r", [C01], C01_MAP, command="validate"))
    assert (result.exit_code, result.error, result.file_errors) == (0, None, [])
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [
        "loaded.csv",
        "rejects.csv",
        "report.html",
        "summary.json",
    ]
    summary = _summary(tmp_path / "r")
    assert {
        k: summary[k] for k in ("command", "dry_run", "run_id", "campaign_id", "exit_code")
    } == {
        "command": "validate",
        "dry_run": False,
        "run_id": None,  # validate opens no ledger
        "campaign_id": None,
        "exit_code": 0,
    }
    assert _counts(tmp_path / "r", {**CHECKED, **LEADS_ZERO}) == {
        **LEADS_ZERO,
        "rows_read": 5,
        "rows_valid": 5,
        "rows_rejected": 0,
        "rows_duplicate": 0,
        "timezone_sources": {"column": 4, "phone": 1},
        "phone_regions": {"US": 5},
        "errors_by_field": {},
        # 15:00 UTC: 10:00 New York, 09:00 Chicago, 08:00 Denver, 07:00 Los Angeles (Luca, and
        # Mia, whose zone comes from her 415 phone): three inside 08:00-21:00
        "callable_now": 3,
        "operator_day": "2026-03-02",
    }
    assert _loaded(tmp_path / "r") == [
        ("2", "nan.null@example.com", "", "valid", "column"),
        ("3", "na.nguyen@example.com", "", "valid", "column"),
        ("4", "jordan.null@example.com", "", "valid", "column"),
        ("5", "luca.none@example.com", "", "valid", "column"),
        ("6", "mia.park@example.com", "", "valid", "phone"),
    ]
    assert _rejected(tmp_path / "r") == []


def test_import_loads_the_good_rows_once_and_rejects_each_bad_one_with_its_reasons(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    source, mapping = _list(tmp_path)
    first = run(_options(tmp_path, "r1", [source], mapping), _client(sandbox))
    assert (first.exit_code, first.error, first.file_errors) == (3, None, [])
    assert _counts(tmp_path / "r1", {**CHECKED, **LEADS_ZERO}) == {
        **CHECKED,
        **LEADS_ZERO,
        "leads_created": 2,
        "campaign_entries_added": 2,
    }
    assert _loaded(tmp_path / "r1") == [
        ("2", "ann@example.com", "1001", "created", "column"),
        ("7", "ed@example.com", "1002", "created", "phone"),
    ]
    assert _rejected(tmp_path / "r1") == REJECTED
    st = state(sandbox)
    assert [(x["id"], x["email"], x["phones"][0]["number"]) for x in st["leads"]] == [
        (1001, "ann@example.com", "+442079460001"),
        (1002, "ed@example.com", "+442079460005"),
    ]
    assert st["campaign_entries"] == {SPRING_ID: [1001, 1002]}
    assert _writes(sandbox) == {
        "POST /leads": 2,
        "POST /campaigns/{campaignId}/entries/actions/generate": 1,
    }

    again = run(_options(tmp_path, "r2", [source], mapping), _client(sandbox))
    assert (again.exit_code, again.error) == (3, None)
    assert _counts(tmp_path / "r2", {**CHECKED, **LEADS_ZERO}) == {
        **CHECKED,
        **LEADS_ZERO,
        "leads_unchanged": 2,
    }
    assert _loaded(tmp_path / "r2") == [
        ("2", "ann@example.com", "1001", "unchanged", "column"),
        ("7", "ed@example.com", "1002", "unchanged", "phone"),
    ]
    assert _rejected(tmp_path / "r2") == REJECTED
    assert _writes(sandbox) == {  # nothing sent twice
        "POST /leads": 2,
        "POST /campaigns/{campaignId}/entries/actions/generate": 1,
    }


def test_the_timings_add_up_and_the_load_is_the_time_spent_waiting_for_the_api(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    source, mapping = _list(tmp_path)
    now = [0.0]

    def clock() -> float:  # one second a reading, and as far as the hooks push it
        now[0] += 1.0
        return now[0]

    def created() -> None:  # each lead takes 100,000 s to create
        now[0] += 100_000.0

    def reading(where: str, rows: int) -> None:  # the one chunk takes 1,000 s to read
        now[0] += 1_000.0

    options = _options(
        tmp_path, "r", [source], mapping, max_reject_rate=100, on_created=created, on_check=reading
    )
    summary = run(options, _client(sandbox), clock=clock).summary
    assert (summary.leads_created, summary.rows_rejected) == (2, 4)
    timings = summary.timings
    assert list(timings) == ["validate_seconds", "load_seconds", "other_seconds"]
    assert sum(timings.values()) == summary.duration_seconds
    # the two creates are the load's; the chunk read twice (by the --max-reject-rate pass, which
    # keeps only its counts, and by the real pass) is the rest's; the checks are neither
    assert 200_000 <= timings["load_seconds"] < 201_000
    assert 2_000 <= timings["other_seconds"] < 3_000
    assert 2 <= timings["validate_seconds"] < 1_000


def test_a_dry_run_reports_what_it_would_do_and_writes_nothing(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    source, mapping = _list(tmp_path)
    result = run(_options(tmp_path, "r", [source], mapping, dry_run=True), _client(sandbox))
    assert (result.exit_code, result.error) == (3, None)
    assert _summary(tmp_path / "r")["dry_run"] is True
    assert _counts(tmp_path / "r", {**CHECKED, **LEADS_ZERO}) == {
        **CHECKED,
        **LEADS_ZERO,
        "leads_created": 2,
        "campaign_entries_added": 2,
    }
    assert _loaded(tmp_path / "r") == [
        ("2", "ann@example.com", "", "created", "column"),
        ("7", "ed@example.com", "", "created", "phone"),
    ]
    assert _rejected(tmp_path / "r") == REJECTED
    assert _writes(sandbox) == {}
    assert state(sandbox)["leads"] == []


def test_an_unknown_campaign_stops_the_run_before_any_input_or_report(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    source, mapping = _list(tmp_path)
    result = run(_options(tmp_path, "r", [source], mapping, campaign="Autumn"), _client(sandbox))
    assert (result.exit_code, result.reported, result.file_errors) == (78, False, [])
    assert isinstance(result.error, UnknownReferenceError)
    assert str(result.error) == (
        "Unknown campaign 'Autumn'. None of the 61 known campaigns is close; "
        "`voiptime-etl campaigns` lists them."
    )
    assert not (tmp_path / "r").exists()
    assert _writes(sandbox) == {}


def test_a_ledger_that_does_not_know_a_project_with_contacts_is_refused(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    source, mapping = _list(tmp_path)
    assert run(_options(tmp_path, "r1", [source], mapping), _client(sandbox)).exit_code == 3
    fresh = tmp_path / "other.sqlite"
    result = run(_options(tmp_path, "r2", [source], mapping, state=fresh), _client(sandbox))
    assert (result.exit_code, result.reported) == (78, False)
    assert isinstance(result.error, ConfigError)
    assert str(result.error) == (
        f"project 1 ('Demo') already holds 2 contact(s) (GET /projects), but the state file "
        f"{fresh} has no record of this project: a new, deleted or replaced ledger. Every row "
        "would be created again, doubling leads that exist. Restore the state file the earlier "
        "runs used (--state), or, if creating new leads is intended (those contacts came from "
        "elsewhere), rerun with --new-ledger"
    )
    assert _writes(sandbox)["POST /leads"] == 2  # the first run's two, nothing more


def test_too_many_rejects_send_nothing_but_write_the_reports(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    source, mapping = _list(tmp_path)
    result = run(_options(tmp_path, "r", [source], mapping, max_reject_rate=50), _client(sandbox))
    assert result.exit_code == 3
    assert isinstance(result.error, EtlError)
    message = (
        "4 of 6 rows rejected (66.7%), more than --max-reject-rate 50%: nothing was sent; "
        "fix the rows in rejects.csv and run again"
    )
    assert str(result.error) == message
    assert _counts(tmp_path / "r", {**CHECKED, **LEADS_ZERO, "error": ""}) == {
        **CHECKED,
        **LEADS_ZERO,
        "callable_now": 0,  # nothing loaded: nobody to call
        "error": message,
    }
    assert _loaded(tmp_path / "r") == []
    assert _rejected(tmp_path / "r") == REJECTED
    assert _writes(sandbox) == {}


def test_a_file_that_cannot_be_read_fails_alone_and_the_others_load(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    source, mapping = _list(tmp_path)
    broken = tmp_path / "b.xlsx"
    broken.write_bytes(b"not a workbook")
    result = run(_options(tmp_path, "r", [broken, source], mapping), _client(sandbox))
    why = (
        f"{broken}: this is a text (CSV) file although its name ends .xlsx; rename it to end "
        ".csv and import it again (or open it in Excel and save it as .xlsx)"
    )
    assert (result.exit_code, result.error) == (65, None)
    assert [(type(e), str(e)) for e in result.file_errors] == [(InputError, why)]
    files = _summary(tmp_path / "r")["files"]
    assert [(f["path"], f["result"], f["rows_read"], f["error"]) for f in files] == [
        (str(broken), "failed", 0, why),
        (str(source), "done", 6, ""),
    ]
    assert files[1]["leads_created"] == 2
    assert _loaded(tmp_path / "r") == [
        ("2", "ann@example.com", "1001", "created", "column"),
        ("7", "ed@example.com", "1002", "created", "phone"),
    ]
    assert _writes(sandbox)["POST /leads"] == 2


# Found by a new user in a trial run (were tests/test_regressions.py): each pinned through the
# CLI against the sandbox.


def test_every_unknown_name_is_reported_at_once(sandbox: Any, tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(C01_MAP.read_text() + "status: Hot\nsource: Billboard\n")
    ran = run_cli(
        imp(tmp_path, mapping=mapping) + ["--campaign", "Autumn"],
        env_for(sandbox),
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == 78
    assert ran.stderr == (
        "Error: Unknown status 'Hot'. Known statuses: 'New', 'Callback'.\n"
        "Error: Unknown source 'Billboard'. Known sources: 'Web form', 'Referral'.\n"
        "Error: Unknown campaign 'Autumn'. None of the 61 known campaigns is close; "
        "`voiptime-etl campaigns` lists them.\n"
    )


def test_missing_columns_and_unknown_names_in_one_run(sandbox: Any, tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(C01_MAP.read_text().replace("notes", "Remarks") + "status: Hot\n")
    ran = run_cli(
        imp(tmp_path, mapping=mapping), env_for(sandbox), tmp_path / "r", subprocess_mode=False
    )
    assert ran.code == 78
    assert ran.stderr == (
        f"Error: {mapping}: 2 mapping problems:\n"
        f"  - comments[0].column: column 'Remarks' is not in {C01} (header read on row 1) (its "
        "columns: 'first_name', 'last_name', 'email', 'phone', 'timezone', 'notes')\n"
        "  - status: Unknown status 'Hot'. Known statuses: 'New', 'Callback'.\n"
        "Fix the mapping file and run again.\n"
    )
    assert ran.stderr.count("Error:") == 1
    assert ran.stdout == ""  # no table of zeros for a run that read nothing


def test_missing_columns_and_several_unknown_names_are_one_list(
    sandbox: Any, tmp_path: Path
) -> None:
    # Was: "1 mapping problem: ... Fix the mapping file and run again." followed by one
    # "Error:" line per unknown name, so the count said 1 where 4 things were wrong.
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        C01_MAP.read_text().replace("email: email", "email: Emial")
        + "status: Nwe\nsource: Web from\ncampaign: Spring outreech\n"
    )
    args = imp(tmp_path, mapping=mapping)
    del args[args.index("--campaign") : args.index("--campaign") + 2]
    ran = run_cli(args, env_for(sandbox), tmp_path / "r", subprocess_mode=False)
    assert ran.code == 78
    assert ran.stderr == (
        f"Error: {mapping}: 4 mapping problems:\n"
        f"  - fields.email: column 'Emial' is not in {C01} (header read on "
        "row 1), did you mean 'email'? (its columns: 'first_name', 'last_name', 'email', "
        "'phone', 'timezone', 'notes')\n"
        "  - status: Unknown status 'Nwe'. Did you mean 'New'?\n"
        "  - source: Unknown source 'Web from'. Did you mean 'Web form'?\n"
        "  - campaign: Unknown campaign 'Spring outreech'. Did you mean 'Spring outreach'?\n"
        "Fix the mapping file and run again.\n"
    )
    assert not (tmp_path / "r").exists()
    assert all(k.startswith("GET ") for k in state(sandbox)["requests"])


def test_a_campaign_id_in_capitals_is_found(sandbox: Any, tmp_path: Path) -> None:
    upper = spring_id(sandbox).upper()
    args = imp(tmp_path)
    args[args.index("--campaign") + 1] = upper
    ran = run_cli(args, env_for(sandbox), tmp_path / "r", subprocess_mode=False)
    assert ran.code == 0, ran.stderr
    assert ran.summary()["campaign_id"] == spring_id(sandbox)
