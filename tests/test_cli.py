"""The CLI end to end against the real sandbox server on a free loopback port."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from clitools import (
    ANSWER_TIMEOUT,
    CASES,
    CHILD_TIMEOUT,
    ROOT,
    SPRING,
    env_for,
    faults,
    import_args,
    logged,
    run_cli,
    spring_id,
    state,
    table,
)

from etl.cli import cli

FALLBACK = "fallback"  # any canonical IANA zone (not a link, not empty)


def _lead(
    name: str,
    surname: str,
    email: str,
    phones: list[str],
    zone: str,
    comment: str | None = None,
    dynamic: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "surname": surname,
        "email": email,
        "phones": phones,
        "timezoneId": zone,
        "comment": comment,
        "dynamicData": dynamic or {},
    }


# The worked cases of tests/data/cases (with their mappings): row -> expected POST /leads values.
CASE_EXPECTED: dict[str, tuple[int, dict[int, dict[str, Any]], dict[int, str]]] = {
    "c01_na_names.csv": (
        0,
        {
            2: _lead(
                "Nan", "NULL", "nan.null@example.com", ["+14155550101"], "America/New_York", "N/A"
            ),
            3: _lead("NA", "Nguyen", "na.nguyen@example.com", ["+14155550102"], "America/Chicago"),
            4: _lead(
                "Jordan",
                "Null",
                "jordan.null@example.com",
                ["+14155550103"],
                "America/Denver",
                "null",
            ),
            5: _lead(
                "Luca",
                "None",
                "luca.none@example.com",
                ["+14155550104"],
                "America/Los_Angeles",
                "#N/A",
            ),
            6: _lead("Mia", "Park", "mia.park@example.com", ["+14155550105"], FALLBACK),
        },
        {},
    ),
    "c03_bom_quoted_header.csv": (
        0,
        {
            2: _lead(
                "Zoë",
                "Fairweather",
                "zoe.fairweather@example.com",
                ["+14155550121"],
                "America/New_York",
            ),
            3: _lead(
                "José", "Peñalver", "jose.penalver@example.com", ["+14155550122"], "America/Chicago"
            ),
            4: _lead(
                "Chloé",
                "Marchetti",
                "chloe.marchetti@example.com",
                ["+14155550123"],
                "America/Denver",
            ),
        },
        {},
    ),
    "c05_semicolon_de.csv": (
        0,
        {
            2: _lead(
                "Lena",
                "Hoffmann",
                "lena.hoffmann@example.com",
                ["+442079460011"],
                "Europe/Berlin",
                "Rückruf, bitte vormittags",
                {"deal_value": "1.234,50"},
            ),
            3: _lead(
                "Jonas",
                "Becker",
                "jonas.becker@example.com",
                ["+442079460012"],
                "Europe/Berlin",
                "Interesse an Paket A, B und C",
                {"deal_value": "12.000,00"},
            ),
            4: _lead(
                "Marie",
                "Schulz",
                "marie.schulz@example.com",
                ["+442079460013"],
                "Europe/Vienna",
                'Zitat: "bitte nur per Mail"',
                {"deal_value": "0,99"},
            ),
        },
        {},
    ),
    "c07_excel_dates.xlsx": (
        3,
        {
            2: _lead(
                "Owen",
                "Hart",
                "owen.hart@example.com",
                ["+14155550141"],
                FALLBACK,
                None,
                {"signup_date": "2024-01-15"},
            ),
            3: _lead(
                "Lucy",
                "Vance",
                "lucy.vance@example.com",
                ["+14155550142"],
                FALLBACK,
                None,
                {"signup_date": "2024-01-01"},
            ),
            4: _lead(
                "Raj",
                "Mehta",
                "raj.mehta@example.com",
                ["+14155550143"],
                FALLBACK,
                None,
                {"signup_date": "2024-02-29"},
            ),
            5: _lead(
                "Ada",
                "Finch",
                "ada.finch@example.com",
                ["+14155550144"],
                FALLBACK,
                None,
                {"signup_date": "2024-03-10"},
            ),
            6: _lead(
                "Ken",
                "Ito",
                "ken.ito@example.com",
                ["+14155550145"],
                FALLBACK,
                None,
                {"signup_date": "2024-01-01"},
            ),
            8: _lead("Cy", "Moor", "cy.moor@example.com", ["+14155550147"], FALLBACK),
        },
        {7: "signup_date"},
    ),
    "c12_ragged_rows.csv": (
        3,
        {
            2: _lead(
                "Tara", "Quinn", "tara.quinn@example.com", ["+14155550191"], "America/New_York"
            ),
            5: _lead("Wen", "Zhou", "wen.zhou@example.com", ["+14155550194"], "America/Denver"),
            6: _lead(
                "Xena", "Roy", "xena.roy@example.com", ["+14155550195"], "America/Los_Angeles"
            ),
        },
        {3: "6 fields, expected 5", 4: "4 fields, expected 5"},
    ),
    "c16_numeric_phones.xlsx": (
        3,
        {
            2: _lead("Lars", "Moe", "lars.moe@example.com", ["+14155550221"], FALLBACK),
            3: _lead("Mina", "Noor", "mina.noor@example.com", ["+14155550222"], FALLBACK),
            5: _lead("Ola", "Pike", "ola.pike@example.com", ["+442079460960"], FALLBACK),
            6: _lead("Pia", "Rhee", "pia.rhee@example.com", ["+61491570157"], "Australia/Sydney"),
            7: _lead("Rex", "Sato", "rex.sato@example.com", ["+14155550223"], FALLBACK),
        },
        {4: "phone"},
    ),
}


def _canonical(zone: str) -> bool:
    from etl.normalize import canonical_zone

    return canonical_zone(zone) == zone


@pytest.mark.parametrize("case", sorted(CASE_EXPECTED))
def test_worked_cases_import_exactly(case: str, sandbox: Any, tmp_path: Path) -> None:
    code, leads, rejected = CASE_EXPECTED[case]
    source = CASES / case
    mapping = CASES / (source.stem + ".yaml")
    ran = run_cli(
        [
            "import",
            str(source),
            "--mapping",
            str(mapping),
            "--campaign",
            SPRING,
            "--state",
            str(tmp_path / "state.sqlite"),
        ],
        env_for(sandbox),
        tmp_path / "report",
        subprocess_mode=False,
    )
    assert ran.code == code, ran.stderr
    st = state(sandbox)
    by_email = {lead["email"]: lead for lead in st["leads"]}
    assert len(st["leads"]) == len(leads)
    loaded = {int(r["_source_row"]): r for r in ran.loaded()}
    assert sorted(loaded) == sorted(leads)
    campaign = spring_id(sandbox)
    entries = st["campaign_entries"][campaign]
    assert sorted(entries) == sorted(lead["id"] for lead in st["leads"])  # each lead once
    for row, want in leads.items():
        got = by_email[want["email"]]
        assert (got["name"], got["surname"]) == (want["name"], want["surname"])
        assert [p["number"] for p in got.get("phones", [])] == want["phones"]
        if want["timezoneId"] == FALLBACK:
            assert _canonical(got["timezoneId"]), got["timezoneId"]
        else:
            assert got["timezoneId"] == want["timezoneId"]
        comments = [c["text"] for c in got.get("comments", [])]
        assert comments == ([want["comment"]] if want["comment"] else [])
        assert got.get("dynamicData", {}) == want["dynamicData"]
        assert got["groupId"] == 1
        assert loaded[row]["lead_id"] == str(got["id"])
        assert loaded[row]["action"] == "created"
        assert loaded[row]["campaign_id"] == campaign
    rejects = {int(r["_source_row"]): r for r in ran.rejects()}
    assert sorted(rejects) == sorted(rejected)
    for row, word in rejected.items():
        assert word in rejects[row]["_errors"]
        assert rejects[row]["_source_file"] == str(source)
    summary = ran.summary()
    assert summary["leads_created"] == len(leads)
    assert summary["rows_rejected"] == len(rejected)
    assert summary["campaign_entries_added"] == len(leads)
    assert summary["exit_code"] == code


def test_rerun_sends_nothing_and_changed_row_is_patched(sandbox: Any, tmp_path: Path) -> None:
    source = tmp_path / "leads.csv"
    source.write_text(
        "first_name,last_name,email,phone,timezone,notes\n"
        "Ann,Lee,ann@example.com,(415) 555-0101,US/Eastern,hello\n"
        "Bob,Ray,bob@example.com,+44 20 7946 0958,Europe/London,\n",
        encoding="utf-8",
    )
    mapping = CASES / "c01_na_names.yaml"
    args = [
        "import",
        str(source),
        "--mapping",
        str(mapping),
        "--campaign",
        SPRING,
        "--state",
        str(tmp_path / "s.sqlite"),
    ]
    first = run_cli(args, env_for(sandbox), tmp_path / "r1", subprocess_mode=False)
    assert first.code == 0, first.stderr
    second = run_cli(args, env_for(sandbox), tmp_path / "r2", subprocess_mode=False)
    assert second.code == 0
    st = state(sandbox)
    assert st["requests"]["POST /leads"] == 2
    assert st["requests"]["POST /campaigns/{campaignId}/entries/actions/generate"] == 1
    s2 = second.summary()
    assert (s2["leads_created"], s2["leads_unchanged"], s2["campaign_entries_added"]) == (0, 2, 0)
    assert [r["action"] for r in second.loaded()] == ["unchanged", "unchanged"]
    # A changed row: only the changed field goes out, with PATCH.
    source.write_text(source.read_text().replace("Ray,", "Raymond,"), encoding="utf-8")
    third = run_cli(args, env_for(sandbox), tmp_path / "r3", subprocess_mode=False)
    assert third.code == 0
    st = state(sandbox)
    assert st["requests"]["POST /leads"] == 2
    assert st["requests"]["PATCH /leads/{leadId}"] == 1
    bob = next(lead for lead in st["leads"] if lead["email"] == "bob@example.com")
    assert bob["surname"] == "Raymond"
    assert [r["action"] for r in third.loaded()] == ["unchanged", "updated"]
    assert len(st["leads"]) == 2


def test_dry_run_sends_no_writing_request(sandbox: Any, tmp_path: Path) -> None:
    ran = run_cli(
        [
            "import",
            str(CASES / "c12_ragged_rows.csv"),
            "--mapping",
            str(CASES / "c12_ragged_rows.yaml"),
            "--campaign",
            SPRING,
            "--dry-run",
            "--state",
            str(tmp_path / "s.sqlite"),
        ],
        env_for(sandbox),
        tmp_path / "r",
    )
    assert ran.code == 3, ran.stderr
    st = state(sandbox)
    assert st["leads"] == []
    assert all(k.startswith("GET ") for k in st["requests"]), st["requests"]
    summary = ran.summary()
    assert summary["dry_run"] is True
    assert (
        summary["leads_created"],
        summary["rows_rejected"],
        summary["campaign_entries_added"],
    ) == (3, 2, 3)
    assert not (tmp_path / "s.sqlite").exists()


def test_429_with_retry_after_is_waited_out_without_duplicates(
    sandbox: Any, tmp_path: Path
) -> None:
    faults(sandbox, {"route": "POST /leads", "nth": 2, "status": 429, "retry_after": 1})
    ran = run_cli(
        import_args(tmp_path, "--concurrency", "1"),
        env_for(sandbox, VOIPTIME_RETRY_MAX_WAIT="5"),
        tmp_path / "r",
    )
    assert ran.code == 0, ran.stderr
    st = state(sandbox)
    assert st["requests"]["POST /leads"] == 6  # 5 rows + the one refused with 429
    emails = [lead["email"] for lead in st["leads"]]
    assert len(emails) == 5 and len(set(emails)) == 5
    assert logged(ran.stderr) == ["WARNING: POST /leads: 429 Too Many Requests; retry 1 in 1.0 s"]
    assert table(ran.stdout) == [
        ["rows read", "5"],
        ["rows valid", "5"],
        ["rows rejected", "0"],
        ["of them duplicates", "0"],
        ["leads created", "5"],
        ["leads updated", "0"],
        ["leads unchanged", "0"],
        ["leads failed", "0"],
        ["of them missing in the dialer", "0"],
        ["leads ambiguous", "0"],
        ["campaign entries added", "5"],
    ]


def test_401_stops_the_run_with_exit_77(sandbox: Any, tmp_path: Path) -> None:
    # GET /projects, GET /campaigns x3 (pages of 50, 11, then empty), then 2 leads, then 401.
    faults(sandbox, {"route": "*", "status": 401, "after": 6})
    ran = run_cli(
        import_args(tmp_path, "--concurrency", "1"),
        env_for(sandbox),
        tmp_path / "r",
    )
    assert ran.code == 77, ran.stderr
    assert "401" in ran.stderr and "sandbox-key" not in ran.stderr + ran.stdout
    st = state(sandbox)
    assert sum(st["requests"].values()) == 7  # nothing after the 401
    assert len(st["leads"]) == 2
    assert ran.summary()["exit_code"] == 77
    # The next run with a good key resumes: the 2 created leads are not sent again.
    faults(sandbox)
    again = run_cli(
        import_args(tmp_path),
        env_for(sandbox),
        tmp_path / "r2",
    )
    assert again.code == 0, again.stderr
    st = state(sandbox)
    assert len(st["leads"]) == 5
    assert sorted(st["campaign_entries"][spring_id(sandbox)]) == sorted(
        lead["id"] for lead in st["leads"]
    )


def test_mapping_with_three_mistakes_reports_all_at_once(sandbox: Any, tmp_path: Path) -> None:
    mapping = tmp_path / "bad.yaml"
    mapping.write_text(
        "project: 1\n"
        "defaults: {region: XX, timezone: EST}\n"
        "fields:\n  name: first_name\n  surname: last_name\n  emial: email\n",
        encoding="utf-8",
    )
    ran = run_cli(
        [
            "import",
            str(CASES / "c01_na_names.csv"),
            "--mapping",
            str(mapping),
            "--state",
            str(tmp_path / "s"),
        ],
        env_for(sandbox),
        tmp_path / "r",
    )
    assert ran.code == 78
    problems = [line.strip() for line in ran.stderr.splitlines() if line.strip().startswith("- ")]
    assert problems == [
        "- defaults.region: 'XX' is not an ISO 3166 region code (e.g. US, GB, DE)",
        "- defaults.timezone: an abbreviation, not an IANA zone; "
        "did you mean America/New_York or America/Toronto?",
        "- fields.emial: unknown lead field, did you mean 'email'? (lead fields: name, surname, "
        "email, timezoneId; "
        "put custom fields under dynamicData)",
        "- fields.email: required (the API needs a lead's email)",
    ]
    # names are checked in the same run, read-only: nothing is written
    assert all(k.startswith("GET ") for k in state(sandbox)["requests"])


def test_missing_mapped_column_is_a_mapping_error(sandbox: Any, tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "project: 1\nfields: {name: first_name, surname: Surname, email: email}\n"
        "phones: [{column: Cell}]\n",
        encoding="utf-8",
    )
    ran = run_cli(
        ["validate", str(CASES / "c01_na_names.csv"), "--mapping", str(mapping)],
        env_for(sandbox),
        tmp_path / "r",
    )
    assert ran.code == 78
    assert "fields.surname: column 'Surname' is not in" in ran.stderr
    assert "phones[0].column: column 'Cell' is not in" in ran.stderr


def test_unknown_campaign_exits_78(sandbox: Any, tmp_path: Path) -> None:
    ran = run_cli(
        [
            "import",
            str(CASES / "c01_na_names.csv"),
            "--mapping",
            str(CASES / "c01_na_names.yaml"),
            "--campaign",
            "Autumn outreach",
            "--state",
            str(tmp_path / "s"),
        ],
        env_for(sandbox),
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == 78
    assert (
        ran.stderr == "Error: Unknown campaign 'Autumn outreach'. Did you mean 'Spring outreach'?\n"
    )
    assert "POST /leads" not in state(sandbox)["requests"]


def test_dropped_answer_is_ambiguous_and_never_resent(sandbox: Any, tmp_path: Path) -> None:
    faults(sandbox, {"route": "POST /leads", "nth": 3, "drop": "after"})
    args = import_args(tmp_path, "--concurrency", "1")
    ran = run_cli(args, env_for(sandbox), tmp_path / "r")
    assert ran.code == 4, ran.stderr
    st = state(sandbox)
    assert len(st["leads"]) == 5  # the third lead was stored, its answer lost
    assert st["requests"]["POST /leads"] == 5
    summary = ran.summary()
    assert (summary["leads_created"], summary["leads_ambiguous"]) == (4, 1)
    assert len(st["campaign_entries"][spring_id(sandbox)]) == 4
    faults(sandbox)
    again = run_cli(args, env_for(sandbox), tmp_path / "r2")
    assert again.code == 4
    st = state(sandbox)
    assert st["requests"]["POST /leads"] == 5  # nothing re-sent
    assert again.summary()["leads_ambiguous"] == 1


def test_validate_offline_gives_exact_sample_counts(tmp_path: Path) -> None:
    expected = json.loads((ROOT / "sample_data" / "expected.json").read_text(encoding="utf-8"))
    runs = {
        "leads.csv": ("sample_data/leads.csv", "mappings/leads.yaml"),
        "accounts.xlsx#Leads": ("sample_data/accounts.xlsx", "mappings/accounts.yaml"),
        "accounts.xlsx#Partners": ("sample_data/accounts.xlsx", "mappings/accounts.Partners.yaml"),
    }
    env = {"PATH": "/usr/bin:/bin"}
    for name, (source, mapping) in runs.items():
        want = expected[name]
        ran = run_cli(
            ["validate", str(ROOT / source), "--mapping", str(ROOT / mapping)],
            env,
            tmp_path / name,
            subprocess_mode=False,
        )
        assert ran.code == 3, ran.stderr
        s = ran.summary()
        assert (s["rows_read"], s["rows_rejected"], s["rows_duplicate"]) == (
            want["rows_read"],
            want["rows_rejected"],
            want["rows_duplicate"],
        )
        assert sorted(int(r["_source_row"]) for r in ran.rejects()) == sorted(
            int(k) for k in want["rejected_rows"]
        )


def test_missing_input_exits_66_and_other_files_still_run(sandbox: Any, tmp_path: Path) -> None:
    ran = run_cli(
        [
            "import",
            str(tmp_path / "nope.csv"),
            str(CASES / "c01_na_names.csv"),
            "--mapping",
            str(CASES / "c01_na_names.yaml"),
            "--state",
            str(tmp_path / "s"),
        ],
        env_for(sandbox),
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == 66
    assert ran.stderr == f"Error: {tmp_path / 'nope.csv'}: no such file\n"
    assert len(state(sandbox)["leads"]) == 5


def test_fixed_rejects_reimport(sandbox: Any, tmp_path: Path) -> None:
    source = tmp_path / "list.csv"
    source.write_text(
        "first_name,last_name,email,phone,timezone,notes\n"
        "Ann,Lee,ann@example.com,+1 415 555 0101,America/Chicago,=SUM(A1)\n"
        "Bob,Ray,bob at example.com,+1 415 555 0102,EST,-call later\n",
        encoding="utf-8",
    )
    mapping = CASES / "c01_na_names.yaml"
    state_file = tmp_path / "s.sqlite"
    first = run_cli(
        [
            "import",
            str(source),
            "--mapping",
            str(mapping),
            "--campaign",
            SPRING,
            "--state",
            str(state_file),
        ],
        env_for(sandbox),
        tmp_path / "r1",
    )
    assert first.code == 3
    raw = (tmp_path / "r1" / "rejects.csv").read_text(encoding="utf-8")
    assert "'+1 415 555 0102" in raw and "'-call later" in raw  # no cell can run as a formula
    rows = first.rejects()
    assert len(rows) == 1
    fixed = tmp_path / "fixed.csv"
    with open(tmp_path / "r1" / "rejects.csv", newline="", encoding="utf-8") as fh:
        table = list(csv.reader(fh))
    header, row = table[0], table[1]
    row[header.index("email")] = "bob@example.com"
    row[header.index("timezone")] = "America/Denver"
    with open(fixed, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, row])
    second = run_cli(
        [
            "import",
            str(fixed),
            "--mapping",
            str(mapping),
            "--campaign",
            SPRING,
            "--state",
            str(state_file),
        ],
        env_for(sandbox),
        tmp_path / "r2",
    )
    assert second.code == 0, second.stderr + second.stdout
    bob = next(lead for lead in state(sandbox)["leads"] if lead["email"] == "bob@example.com")
    assert bob["phones"][0]["number"] == "+14155550102"
    assert bob["comments"][0]["text"] == "-call later"  # the guard quote is gone again
    assert bob["timezoneId"] == "America/Denver"
    ann = next(lead for lead in state(sandbox)["leads"] if lead["email"] == "ann@example.com")
    assert ann["comments"][0]["text"] == "=SUM(A1)"


def test_api_key_never_appears_anywhere(sandbox: Any, tmp_path: Path) -> None:
    from etl.sandbox import SandboxServer

    secret = "k3y-" + "Z" * 30
    with SandboxServer(api_key=secret) as other:
        other.start()
        faults(
            other,
            {"route": "POST /leads", "nth": 1, "status": 503, "retry_after": 0},
            {"route": "POST /leads", "nth": 2, "drop": "after"},
        )
        ran = run_cli(
            import_args(tmp_path, "--debug", "-v"),
            env_for(other, key=secret),
            tmp_path / "r",
        )
        assert ran.code == 4, ran.stderr
    assert secret not in ran.stdout + ran.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        dump = "\n".join(db.iterdump())
    assert secret not in dump


def test_every_command_has_help_with_an_example_and_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    runner = CliRunner()
    assert isinstance(cli.commands, dict)
    for name in cli.commands:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Example" in result.output, name
        assert re.search(rf"voiptime-etl {re.escape(name)}\b", readme), name


@pytest.mark.parametrize(
    "source, sheet, name",
    [
        ("sample_data/leads.csv", None, "leads.csv"),
        ("sample_data/accounts.xlsx", None, "accounts.xlsx#Leads"),
        ("sample_data/accounts.xlsx", "Partners", "accounts.xlsx#Partners"),
    ],
)
def test_mapping_init_output_imports_each_sample_without_edits(
    source: str, sheet: str | None, name: str, sandbox: Any, tmp_path: Path
) -> None:
    args = ["mapping-init", str(ROOT / source)] + (["--sheet", sheet] if sheet else [])
    made = CliRunner().invoke(cli, args)
    assert made.exit_code == 0, made.output
    mapping = tmp_path / "m.yaml"
    mapping.write_text(made.stdout, encoding="utf-8")
    ran = run_cli(
        [
            "import",
            str(ROOT / source),
            "--mapping",
            str(mapping),
            "--campaign",
            SPRING,
            "--state",
            str(tmp_path / "s.sqlite"),
        ],
        env_for(sandbox),
        tmp_path / "r",
        subprocess_mode=False,
    )
    want = json.loads((ROOT / "sample_data" / "expected.json").read_text(encoding="utf-8"))[name]
    assert ran.code == 3, ran.stderr
    s = ran.summary()
    assert (s["rows_read"], s["rows_rejected"], s["leads_created"]) == (
        want["rows_read"],
        want["rows_rejected"],
        want["rows_read"] - want["rows_rejected"],
    )
    assert len(state(sandbox)["leads"]) == s["leads_created"]


def test_sandbox_command_serves_until_stopped(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    import requests

    proc = subprocess.Popen(
        [sys.executable, "-m", "etl", "sandbox", "--port", "0", "--latency-ms", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api", url), url
        answer = requests.get(
            url + "/projects", headers={"Api-Key": "sandbox-key"}, timeout=ANSWER_TIMEOUT
        )
        assert [p["name"] for p in answer.json()] == ["Demo", "Spring list"]
        assert requests.get(url + "/projects", timeout=ANSWER_TIMEOUT).status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0


def test_listing_commands(sandbox: Any, tmp_path: Path) -> None:
    env = env_for(sandbox)
    runner = CliRunner()
    unset = {k: None for k in env if k.startswith("VOIPTIME_")}
    out = runner.invoke(cli, ["projects"], env=env)
    assert (out.exit_code, table(out.stdout)) == (
        0,
        [["1", "Demo", "0"], ["2", "Spring list", "0"]],
    )
    out = runner.invoke(cli, ["statuses", "Demo"], env=env)
    assert (out.exit_code, table(out.stdout)) == (
        0,
        [["11", "New", "True"], ["12", "Callback", "True"]],
    )
    out = runner.invoke(cli, ["sources", "2"], env=env)
    assert (out.exit_code, table(out.stdout)) == (0, [["41", "Fair", "True"]])
    out = runner.invoke(cli, ["campaigns"], env=env)
    assert out.exit_code == 0 and out.stdout.count("Spring outreach") == 1
    assert len(re.findall(r"[0-9a-f]{24}", out.stdout)) == 61
    out = runner.invoke(cli, ["sources", "Nope"], env=env)
    assert (out.exit_code, out.stderr) == (
        78,
        "Error: Unknown project 'Nope'. Known projects: 'Demo', 'Spring list'.\n",
    )
    out = runner.invoke(cli, ["projects"], env={**env, "VOIPTIME_API_KEY": "wrong"})
    assert out.exit_code == 77 and "wrong" not in out.stderr + out.stdout
    out = runner.invoke(cli, ["projects"], env={**unset, "VOIPTIME_API_URL": sandbox.url})
    assert (out.exit_code, out.stderr) == (
        78,
        "Error: No API key: set VOIPTIME_API_KEY or pass --api-key-file.\n",
    )


def test_validate_with_a_key_resolves_names(sandbox: Any, tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        (CASES / "c01_na_names.yaml").read_text(encoding="utf-8") + "status: Hot\n",
        encoding="utf-8",
    )
    ran = run_cli(
        ["validate", str(CASES / "c01_na_names.csv"), "--mapping", str(mapping)],
        env_for(sandbox),
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == 78
    assert ran.stderr == "Error: Unknown status 'Hot'. Known statuses: 'New', 'Callback'.\n"
    assert all(k.startswith("GET ") for k in state(sandbox)["requests"])


DUPES = (
    "first_name,last_name,email,phone,timezone,notes\n"
    "Ann,Lee,ann@example.com,+14155550101,America/New_York,\n"
    "Bob,Ray,bob@example.com,+14155550102,America/Los_Angeles,\n"
    "Anne,Leigh,ann@example.com,+14155550109,America/Denver,\n"
    "Cat,Poe,cat@@example.com,+14155550103,America/Chicago,\n"
    "Ann,Leigh,ann@example.com,+14155550108,EST,\n"
)
EST = (
    "timezoneId (timezone): 'EST': an abbreviation, not an IANA zone; did you mean "
    "America/New_York or America/Toronto?; to fix every such row, add map: "
    "{EST: America/New_York} to fields.timezoneId"
)
CAT = "email (email): 'cat@@example.com': not an e-mail address (more than one @)"


def test_duplicates_stay_duplicates_through_rejects_files_and_reruns(
    sandbox: Any, tmp_path: Path
) -> None:
    """A list with duplicates; its rejects.csv re-imported unedited, then fixed; the list again;
    another file feeding one of its keys; then --overwrite. No lead is ever overwritten by a
    row that was rejected as its duplicate, and no lead changes back and forth."""
    src = tmp_path / "f.csv"
    src.write_text(DUPES, encoding="utf-8")

    def go(source: Path, report: str, *extra: str) -> Any:
        args = import_args(tmp_path, *extra, source=source)
        return run_cli(args, env_for(sandbox), tmp_path / report, subprocess_mode=False)

    def leads() -> list[tuple[int, str, str, str, str]]:
        return sorted(
            (x["id"], x["email"], x["name"], x["surname"], x["timezoneId"])
            for x in state(sandbox)["leads"]
        )

    def lead_id(email: str) -> int:
        return next(int(x["id"]) for x in state(sandbox)["leads"] if x["email"] == email)

    dup2 = "key: duplicate of row 2 (same email 'ann@example.com')"
    first = go(src, "r1")
    assert first.code == 3
    assert [(r["_source_row"], r["_errors"]) for r in first.rejects()] == [
        ("4", dup2),
        ("5", CAT),
        ("6", f"{EST}; {dup2}"),  # a duplicate rejected for another reason says so too
    ]
    ann, bob = lead_id("ann@example.com"), lead_id("bob@example.com")  # sent concurrently
    original = sorted(
        [
            (ann, "ann@example.com", "Ann", "Lee", "America/New_York"),
            (bob, "bob@example.com", "Bob", "Ray", "America/Los_Angeles"),
        ]
    )
    assert leads() == original

    # 1. The rejects file as it is: the duplicate is valid on its own, yet updates nothing.
    rejects = tmp_path / "r1" / "rejects.csv"
    unedited = go(rejects, "r2")
    assert unedited.code == 3
    duplicate = (
        f"key: duplicate of {src} row 2, whose values lead {ann} holds: a rejects file never "
        "updates a lead from another row; give this row its own key to load it as a new lead, "
        "or rerun with --overwrite to replace the lead's values with it"
    )
    assert sorted((r["_source_row"], r["_errors"]) for r in unedited.rejects()) == [
        ("2", duplicate),
        ("3", CAT),
        ("4", f"{EST}; {dup2}"),
    ]
    assert (unedited.summary()["rows_duplicate"], unedited.summary()["leads_updated"]) == (2, 0)
    assert leads() == original and "PATCH /leads/{leadId}" not in state(sandbox)["requests"]

    # 2. Fixed: the duplicate gets its own e-mail, Cat's e-mail and row 6's zone are fixed.
    with open(rejects, newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    rows[0][header.index("email")] = "anne@example.com"
    rows[1][header.index("email")] = "cat@example.com"
    rows[2][header.index("timezone")] = "America/Denver"
    fixed = tmp_path / "fixed.csv"
    with open(fixed, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *rows])
    again = go(fixed, "r3")
    assert again.code == 3
    assert [(r["_source_row"], r["_errors"]) for r in again.rejects()] == [("4", duplicate)]
    assert [(r["_source_row"], r["action"]) for r in again.loaded()] == [
        ("2", "created"),
        ("3", "created"),
    ]
    anne, cat = lead_id("anne@example.com"), lead_id("cat@example.com")
    assert {anne, cat} == {1003, 1004}
    grown = sorted(
        [
            *original,
            (anne, "anne@example.com", "Anne", "Leigh", "America/Denver"),
            (cat, "cat@example.com", "Cat", "Poe", "America/Chicago"),
        ]
    )
    assert leads() == grown

    # 3. The original list again (the nightly run): nothing changes back.
    nightly = go(src, "r4")
    assert nightly.code == 3
    assert [(r["_source_row"], r["action"]) for r in nightly.loaded()] == [
        ("2", "unchanged"),
        ("3", "unchanged"),
    ]
    assert leads() == grown and "PATCH /leads/{leadId}" not in state(sandbox)["requests"]

    # 4. Another file feeds Bob's key with another surname: a conflict, reported, not sent.
    other = tmp_path / "g.csv"
    other.write_text(
        DUPES.splitlines()[0] + "\nBob,Roy,BOB@example.com,+14155550102,America/Los_Angeles,\n"
    )
    conflict = go(other, "r5")
    assert conflict.code == 3
    reason = (
        f"conflict: lead {bob} keeps its values from {src} row 3; this row ({other} row 2) has "
        "other surname and was not sent; fix one of the two files, or rerun with --overwrite "
        "to make this row the lead's source"
    )
    assert [
        (r["_source_row"], r["lead_id"], r["action"], r["warnings"]) for r in conflict.loaded()
    ] == [("2", str(bob), "conflict", reason)]
    s = conflict.summary()
    assert (s["leads_conflict"], s["leads_updated"], s["rows_rejected"]) == (1, 0, 0)
    assert s["conflicts"] == [
        {
            "key": "bob@example.com",
            "lead_id": bob,
            "row": {"file": str(other), "row": 2},
            "kept": {"file": str(src), "row": 3},
            "reason": reason,
        }
    ]
    assert "conflict: lead" in (tmp_path / "r5" / "report.html").read_text(encoding="utf-8")
    assert go(src, "r6").summary()["leads_unchanged"] == 2  # no flip-flop either way
    assert go(other, "r7").summary()["leads_conflict"] == 1
    assert leads() == grown and "PATCH /leads/{leadId}" not in state(sandbox)["requests"]

    # 5. A person decides the other file is right: --overwrite, and it stays so.
    chosen = go(other, "r8", "--overwrite")
    assert chosen.code == 0 and chosen.summary()["leads_updated"] == 1
    assert state(sandbox)["patches"] == [{"leadId": bob, "body": {"surname": "Roy"}}]
    back = go(src, "r9")
    assert [r["action"] for r in back.loaded()] == ["unchanged", "conflict"]
    assert (
        f"lead {bob} keeps the values pinned with --overwrite from {other} row 2"
        in (back.loaded()[1]["warnings"])
    )
    assert leads() == sorted(
        [
            x if x[0] != bob else (bob, "bob@example.com", "Bob", "Roy", "America/Los_Angeles")
            for x in grown
        ]
    )
    assert len(state(sandbox)["patches"]) == 1


def test_a_formula_without_a_saved_value_leaves_an_optional_field_out(
    sandbox: Any, tmp_path: Path
) -> None:
    """Notes, a dynamicData field and an unused column with a formula whose result was never
    saved: the row loads without that field (a warning says so). In a lead field or a key
    field the row is still refused."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["first_name", "last_name", "email", "phone", "timezone", "notes", "web", "x"])
    link = '=HYPERLINK("https://crm.example.com/1","open")'
    sheet.append(["Ann", "Lee", "ann@example.com", "+14155550101", "", link, "a.example", ""])
    sheet.append(["Bob", "Ray", "bob@example.com", "+14155550102", "", "hi", link, "=1+1"])
    sheet.append(["Cy", "=A1", "cy@example.com", "+14155550103", "", "", "", ""])
    sheet.append(["Di", "Fox", "di@example.com", "+14155550104", "", "", "", "=1+1"])
    source = tmp_path / "crm.xlsx"
    book.save(source)
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        CASES.joinpath("c01_na_names.yaml").read_text(encoding="utf-8")
        + "dynamicData:\n  website: web\n",
        encoding="utf-8",
    )
    ran = run_cli(
        import_args(tmp_path, source=source, mapping=mapping),
        env_for(sandbox),
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == 3, ran.stderr
    surname = (
        "surname (last_name): required, but empty; "
        "row: formula in column 'last_name' (B) has no cached value"
    )
    assert [(r["_source_row"], r["_errors"]) for r in ran.rejects()] == [("4", surname)]
    left_out = (
        "a formula without a saved value, left out (the file was saved by a program that does "
        "not compute formulas: open and save it in Excel to keep the result)"
    )
    assert [(r["_source_row"], r["action"], r["warnings"]) for r in ran.loaded()] == [
        ("2", "created", f"comments[0] (notes): {left_out}"),
        ("3", "created", f"dynamicData.website (web): {left_out}"),
        ("5", "created", ""),  # a column the mapping does not use: nothing to say
    ]
    stored = {
        lead["email"]: ([c["text"] for c in lead["comments"]], lead["dynamicData"])
        for lead in state(sandbox)["leads"]
    }
    assert stored == {
        "ann@example.com": ([], {"website": "a.example"}),
        "bob@example.com": (["hi"], {}),
        "di@example.com": ([], {}),
    }
    assert ran.summary()["rows_with_warnings"] == 2

    # the same column as part of the key: the row cannot be told apart, so it is refused
    keyed = tmp_path / "k.yaml"
    keyed.write_text(
        mapping.read_text(encoding="utf-8").replace("key: [email]", "key: [email, website]"),
        encoding="utf-8",
    )
    checked = run_cli(
        ["validate", str(source), "--mapping", str(keyed)],
        env_for(sandbox),
        tmp_path / "v",
        subprocess_mode=False,
    )
    assert [(r["_source_row"], r["_errors"]) for r in checked.rejects()] == [
        ("3", "row: formula in column 'web' (G) has no cached value"),
        ("4", surname),
    ]
