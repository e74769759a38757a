"""Bugs a new user found in a trial run, each pinned by the CLI against the sandbox."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from clitools import (
    C01,
    C01_MAP,
    CASES,
    ROOT,
    SPRING,
    env_for,
    faults,
    import_args,
    release,
    run_cli,
    spring_id,
    state,
    wait_held,
)

from etl.sandbox import SandboxServer
from etl.state import Ledger

imp = import_args


def test_ledger_belongs_to_one_api(sandbox: Any, tmp_path: Path) -> None:
    assert run_cli(imp(tmp_path), env_for(sandbox), tmp_path / "r1").code == 0
    with SandboxServer() as other:
        other.start()
        ran = run_cli(imp(tmp_path), env_for(other), tmp_path / "r2", subprocess_mode=False)
        assert ran.code == 78
        assert "this state file records the leads sent to" in ran.stderr
        assert state(other)["requests"] == {}


def test_lock_holds_through_a_symlink(sandbox: Any, tmp_path: Path) -> None:
    os.symlink(tmp_path / "s.sqlite", tmp_path / "link.sqlite")
    with Ledger.open(tmp_path / "s.sqlite"):
        args = imp(tmp_path)
        args[args.index("--state") + 1] = str(tmp_path / "link.sqlite")
        ran = run_cli(args, env_for(sandbox), tmp_path / "r")
    assert ran.code == 75
    assert state(sandbox)["requests"] == {}


def test_api_key_file_with_bom_works_and_a_missing_one_is_78(sandbox: Any, tmp_path: Path) -> None:
    key = tmp_path / "key.txt"
    key.write_bytes(b"\xef\xbb\xbfsandbox-key\r\n")
    env = {k: v for k, v in env_for(sandbox).items() if k != "VOIPTIME_API_KEY"}
    ok = run_cli(imp(tmp_path, "--api-key-file", str(key)), env, tmp_path / "r1")
    assert ok.code == 0, ok.stderr
    missing = run_cli(imp(tmp_path, "--api-key-file", str(tmp_path / "nope")), env, tmp_path / "r2")
    assert missing.code == 78
    assert "the API key file cannot be read" in missing.stderr
    assert "Traceback" not in missing.stderr


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


def test_rejects_of_a_sheet_with_title_rows_reimport_with_the_same_mapping(tmp_path: Path) -> None:
    mapping = ROOT / "mappings/accounts.Partners.yaml"  # read: {sheet: Partners, header_row: 3}
    env = {"PATH": "/usr/bin:/bin"}
    first = run_cli(
        ["validate", str(ROOT / "sample_data/accounts.xlsx"), "--mapping", str(mapping)],
        env,
        tmp_path / "r1",
        subprocess_mode=False,
    )
    assert first.code == 3
    for name in ("rejects.csv", "rejects.xlsx"):
        again = run_cli(
            ["validate", str(tmp_path / "r1" / name), "--mapping", str(mapping)],
            env,
            tmp_path / name,
            subprocess_mode=False,
        )
        assert again.code == 3, again.stderr
        assert again.summary()["rows_read"] == first.summary()["rows_rejected"]


def test_two_files_whose_headers_differ_in_case_share_rejects_columns(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("Email,first_name,last_name,phone\nbad@,A,B,+14155550101\n")
    (tmp_path / "b.csv").write_text(" EMAIL ,First_Name,Last_Name,Phone\nworse@,C,D,+14155550102\n")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "project: 1\ndefaults: {timezone: America/New_York}\n"
        "fields: {name: first_name, surname: last_name, email: email}\n"
        "phones: [{column: phone}]\n"
    )
    env = {"PATH": "/usr/bin:/bin"}
    ran = run_cli(
        ["validate", str(tmp_path / "*.csv"), "--mapping", str(mapping)],
        env,
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == 3
    with open(tmp_path / "r" / "rejects.csv", newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0] == [
        "Email",
        "first_name",
        "last_name",
        "phone",
        "_source_file",
        "_source_row",
        "_errors",
    ]
    assert [row[:4] for row in table[1:]] == [
        ["bad@", "A", "B", "'+14155550101"],
        ["worse@", "C", "D", "'+14155550102"],
    ]
    again = run_cli(
        ["validate", str(tmp_path / "r" / "rejects.csv"), "--mapping", str(mapping)],
        env,
        tmp_path / "r2",
        subprocess_mode=False,
    )
    assert again.code == 3 and again.summary()["rows_read"] == 2


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
    assert "Error: Unknown status 'Hot'. Known statuses: 'New', 'Callback'." in ran.stderr
    assert "Error: Unknown source 'Billboard'. Known sources: 'Web form', 'Referral'." in ran.stderr
    assert "Error: Unknown campaign 'Autumn'." in ran.stderr


def test_a_rejected_row_is_also_named_a_duplicate(tmp_path: Path) -> None:
    source = tmp_path / "d.csv"
    source.write_text(
        "first_name,last_name,email,phone,timezone\n"
        "Ann,Lee,ann@example.com,+14155550101,America/Chicago\n"
        "Ann,,ANN@example.com,+14155550102,EST\n"
    )
    ran = run_cli(
        ["validate", str(source), "--mapping", str(CASES / "c12_ragged_rows.yaml")],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert [r["_errors"] for r in ran.rejects()] == [
        "surname (last_name): required, but empty; timezoneId (timezone): 'EST': an abbreviation, "
        "not an IANA zone; did you mean America/New_York or America/Toronto?; to fix every such "
        "row, add map: {EST: America/New_York} to fields.timezoneId; "
        "key: duplicate of row 2 (same email 'ann@example.com')"
    ]
    assert ran.summary()["rows_duplicate"] == 1


def test_reserved_mail_domains_are_refused_on_the_fast_path_too() -> None:
    import pandas as pd

    from etl.normalize import Invalid, normalize_email, normalize_emails

    reason = (
        "not a valid e-mail address: The part after the @-sign is a special-use or reserved name "
        "that cannot be used with email."
    )
    cells = pd.Series(["x@corp.local", "y@shop.test", "z@example.com"], dtype=object)
    assert normalize_emails(cells).tolist() == [
        Invalid("x@corp.local", reason),
        Invalid("y@shop.test", reason),
        "z@example.com",
    ]
    assert normalize_email("a@x.onion") == Invalid("a@x.onion", reason)


def test_an_unknown_country_is_named(tmp_path: Path) -> None:
    source = tmp_path / "c.csv"
    source.write_text(
        "first_name,last_name,email,phone,country\n"
        "Pia,Rhee,pia@example.com,0491 570 156,Oz\n"
        "Ned,Orr,ned@example.com,0491 570 157,AUS\n"
    )
    mapping = tmp_path / "m.yaml"
    text = (CASES / "c16_numeric_phones.yaml").read_text().replace("  timezoneId: timezone\n", "")
    mapping.write_text(
        text.replace(
            "  region_column: country", "  region_column: country\n  ambiguous_timezone: default"
        )
    )
    ran = run_cli(
        ["validate", str(source), "--mapping", str(mapping), "--campaign", SPRING],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert [r["_errors"] for r in ran.rejects()] == [
        "phone (phone): '0491 570 156': written without +country, and the country 'Oz' is not "
        "a country name or code; write the country as an ISO code (GB, DE, US) or the number "
        "with +country"
    ]
    assert [r["_source_row"] for r in ran.loaded()] == ["3"]  # AUS is Australia


def test_a_sheet_whose_xml_breaks_late_sends_nothing(sandbox: Any, tmp_path: Path) -> None:
    import zipfile

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["first_name", "last_name", "email", "phone", "timezone", "notes"])
    for i in range(10_050):
        sheet.append([f"A{i}", "B", f"a{i}@example.com", f"+1 415 555 {i % 10000:04d}", "", ""])
    good = tmp_path / "good.xlsx"
    book.save(good)
    broken = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(broken, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":  # an unclosed <c> at row 10,040
                at = data.index(b'<row r="10040"')
                data = data[:at] + b'<row r="10040"><c r="A10040"></row>' + data[at:]
            out.writestr(item, data)
    ran = run_cli(
        imp(tmp_path, source=broken), env_for(sandbox), tmp_path / "r", subprocess_mode=False
    )
    assert ran.code == 65
    assert "its XML breaks" in ran.stderr
    assert "POST /leads" not in state(sandbox)["requests"]


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
        assert "another voiptime-etl run holds this state file" in second.stderr
        assert after == before  # the second sent nothing
        assert after["GET /projects"] == 1 and after["POST /leads"] == 1
    finally:
        release(sandbox)
        first.communicate(timeout=120)
    assert first.returncode == 0
    assert state(sandbox)["requests"]["POST /leads"] == 5


def test_an_extension_with_no_field_is_dropped_with_a_warning(tmp_path: Path) -> None:
    source = tmp_path / "x.csv"
    source.write_text(
        "first_name,last_name,email,phone,timezone\n"
        "Ann,Lee,ann@example.com,(415) 555-2671 x12,America/Los_Angeles\n"
    )
    ran = run_cli(
        ["validate", str(source), "--mapping", str(CASES / "c12_ragged_rows.yaml")],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == 0
    assert [r["warnings"] for r in ran.loaded()] == [
        "phone (phone): extension 12 dropped; name a dynamicData field for it with "
        "phones[0].extension"
    ]


def test_report_html_marks_values_and_charts_reasons(tmp_path: Path) -> None:
    ran = run_cli(
        [
            "validate",
            str(ROOT / "sample_data/leads.csv"),
            "--mapping",
            str(ROOT / "mappings/leads.yaml"),
        ],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "r",
        subprocess_mode=False,
    )
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "<td>email</td><td><mark>chloe.walker@</mark></td>" in html
    assert "<td>timezoneId</td><td><mark>Mars/Olympus</mark></td>" in html
    assert 'aria-label="key: duplicate: 3"' in html
    assert 'aria-label="phone: not a phone number: 3"' in html
    assert ran.summary()["rows_rejected"] == 22


def test_zones_from_phones_that_disagree_or_straddle_are_not_guessed(tmp_path: Path) -> None:
    source = tmp_path / "z.csv"
    source.write_text(
        "first_name,last_name,email,mobile,office,timezone\n"
        "Ann,Lee,ann@example.com,(415) 555-0123,(212) 555-0124,\n"  # LA and NY: no one zone
        "Bea,Ode,bea@example.com,(850) 555-0123,,\n"  # Florida panhandle: Central or Eastern
        "Cy,Moe,cy@example.com,(415) 555-0125,,\n"  # one zone: Los Angeles
        "Di,Roe,di@example.com,(317) 555-0126,,America/Indianapolis\n"  # same clock as NY
    )
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "project: 1\ndefaults: {region: US}\nkey: [email]\n"
        "fields: {name: first_name, surname: last_name, email: email, timezoneId: timezone}\n"
        "phones: [{column: mobile, label: mobile}, {column: office, label: work}]\n"
    )
    ran = run_cli(
        ["validate", str(source), "--mapping", str(mapping)],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert {r["_source_row"]: r["_errors"] for r in ran.rejects()} == {
        "2": "timezoneId (timezone): zone ambiguous: +14155550123 and +12125550124 could be in "
        "America/Los_Angeles, America/New_York; fill the time zone column",
        "3": "timezoneId (timezone): zone ambiguous: +18505550123 could be in America/Chicago, "
        "America/New_York; fill the time zone column",
    }
    loaded = {r["_source_row"]: (r["timezone_source"], r["warnings"]) for r in ran.loaded()}
    assert loaded == {"4": ("phone", ""), "5": ("column", "")}


def test_a_row_with_an_empty_key_is_rejected_not_merged(sandbox: Any, tmp_path: Path) -> None:
    source = tmp_path / "k.csv"
    source.write_text(
        "first_name,last_name,email,phone,timezone\n"
        "Bob,Ray,k4@example.com,,America/Chicago\n"
        "Bob,Ray2,k5@example.com,,America/Chicago\n"
        "Cy,Moe,k6@example.com,+1 415 555 0101,America/Chicago\n"
    )
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "project: 1\nkey: [phone]\n"
        "fields: {name: first_name, surname: last_name, email: email, "
        "timezoneId: timezone}\nphones: [{column: phone}]\n"
    )
    args = ["import", str(source), "--mapping", str(mapping), "--state", str(tmp_path / "s.sqlite")]
    ran = run_cli(args, env_for(sandbox), tmp_path / "r", subprocess_mode=False)
    assert ran.code == 3
    assert [(r["_source_row"], r["_errors"]) for r in ran.rejects()] == [
        (
            row,
            "key: phone is empty, so this lead cannot be told apart from others; fill it, "
            "or choose another key in the mapping",
        )
        for row in ("2", "3")
    ]
    assert ran.summary()["rows_duplicate"] == 0
    again = run_cli(args, env_for(sandbox), tmp_path / "r2", subprocess_mode=False)
    assert again.summary()["leads_unchanged"] == 1
    assert "PATCH /leads/{leadId}" not in state(sandbox)["requests"]
    assert len(state(sandbox)["leads"]) == 1


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


def test_a_formula_without_a_value_does_not_hide_the_other_faults(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["first_name", "last_name", "email", "phone", "timezone", "notes"])
    sheet.append(["Ann", "=A1&B1", "ann@", "+1 415 555 0101", "America/Chicago", "hi"])
    sheet.append(["Bob", "Ray", "bob@example.com", "+1 415 555 0102", "America/Chicago", "ok"])
    book.save(tmp_path / "f.xlsx")
    ran = run_cli(
        ["validate", str(tmp_path / "f.xlsx"), "--mapping", str(C01_MAP)],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert [(r["_source_row"], r["_errors"]) for r in ran.rejects()] == [
        (
            "2",
            "surname (last_name): required, but empty; "
            "email (email): 'ann@': not an e-mail address (nothing after @); "
            "row: formula in column 'last_name' (B) has no cached value",
        )
    ]
    assert [r["_source_row"] for r in ran.loaded()] == ["3"]


def test_missing_columns_and_unknown_names_in_one_run(sandbox: Any, tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(C01_MAP.read_text().replace("notes", "Remarks") + "status: Hot\n")
    ran = run_cli(
        imp(tmp_path, mapping=mapping), env_for(sandbox), tmp_path / "r", subprocess_mode=False
    )
    assert ran.code == 78
    assert ran.stderr.startswith(f"Error: {mapping}: 2 mapping problems:\n")
    assert "\n  - comments[0].column: column 'Remarks' is not in" in ran.stderr
    assert "\n  - status: Unknown status 'Hot'. Known statuses: 'New', 'Callback'.\n" in ran.stderr
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
