"""The README's operators' examples, tried: the crontab line, the systemd units, JSON log lines.

Each example is taken from README.md as written, with ``/srv/leads`` pointed at a temporary
folder, the install path at this checkout's ``voiptime-etl`` and the API at the sandbox.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from clitools import CHILD_TIMEOUT, ROOT, env_for, run_cli, state
from test_folder_runs import HEADER, MAPPING, rows

from etl.sandbox import SandboxServer

README = (ROOT / "README.md").read_text(encoding="utf-8")
SCRIPT = Path(sys.executable).parent / "voiptime-etl"
PRODUCTION = "https://app.voiptimecloud.com/api"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def setup(tmp_path: Path, sandbox: SandboxServer, text: str) -> tuple[Path, str]:
    base = tmp_path / "srv" / "leads"
    (base / "inbox").mkdir(parents=True)
    (base / "inbox" / "a.csv").write_text(HEADER + rows("a", 2), encoding="utf-8")
    (base / "inbox" / "b.csv").write_text(
        HEADER + rows("b", 1) + "Bad,Row,not-an-email,+44 20 7946 0999,Europe/London\n",
        encoding="utf-8",
    )
    (base / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    (base / "api-key").write_text("sandbox-key\n", encoding="utf-8")
    text = text.replace("/opt/voiptime-etl/.venv/bin/voiptime-etl", str(SCRIPT))
    return base, text.replace("/srv/leads", str(base)).replace(PRODUCTION, sandbox.url)


def archived(base: Path) -> list[str]:
    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    return sorted(p.name for p in (base / "done" / day).iterdir())


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def installed() -> None:
    if not SCRIPT.exists():
        pytest.skip(f"no console script at {SCRIPT} (run the tests from make test's .venv)")


def test_the_crontab_line(sandbox: SandboxServer, tmp_path: Path) -> None:
    (crontab,) = blocks("crontab")
    base, crontab = setup(tmp_path, sandbox, crontab)
    env = env_for(sandbox)
    del env["VOIPTIME_API_URL"], env["VOIPTIME_API_KEY"]  # the crontab says all it needs
    command = ""
    for line in crontab.splitlines():
        if re.match(r"^[A-Z_]+=", line):
            name, value = line.split("=", 1)
            env[name] = value
        elif line.strip():
            command = line.split(None, 5)[5]  # after minute hour day month weekday
    ran = subprocess.run(
        ["sh", "-c", command], env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT
    )
    assert ran.returncode == 3, ran.stderr  # one rejected row
    assert ran.stderr == ""  # the log lines went to import.jsonl
    assert "rows rejected" in ran.stdout and "Exit code: 3" in ran.stdout  # what cron mails
    log = json_lines((base / "import.jsonl").read_text(encoding="utf-8"))
    end = log[-1]
    assert (end["event"], end["exit_code"], end["leads_created"], end["rows_rejected"]) == (
        "run_finished",
        3,
        3,
        1,
    )
    assert archived(base) == ["a.csv", "b.csv"] and len(state(sandbox)["leads"]) == 3
    assert "sandbox-key" not in (base / "import.jsonl").read_text(encoding="utf-8")


def test_the_systemd_service_and_timer(sandbox: SandboxServer, tmp_path: Path) -> None:
    units = [b for b in blocks("ini") if "[Service]" in b or "[Timer]" in b]
    assert len(units) == 2
    base, service = setup(tmp_path, sandbox, units[0])
    timer = units[1]
    folder = tmp_path / "units"
    folder.mkdir()
    (folder / "voiptime-import.service").write_text(service, encoding="utf-8")
    (folder / "voiptime-import.timer").write_text(timer, encoding="utf-8")
    analyze = shutil.which("systemd-analyze")
    if analyze:
        checked = subprocess.run(
            [analyze, "verify", "--man=no", *sorted(map(str, folder.iterdir()))],
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
        )
        assert checked.returncode == 0, checked.stderr
    # Run the service as systemd does: its folder, its environment, its command (no shell).
    settings = dict(
        line.split("=", 1) for line in service.splitlines() if re.match(r"^[A-Za-z]+=", line)
    )
    env = env_for(sandbox)
    del env["VOIPTIME_API_URL"], env["VOIPTIME_API_KEY"]
    name, value = settings["Environment"].split("=", 1)
    env[name] = value
    ran = subprocess.run(
        shlex.split(settings["ExecStart"]),
        cwd=settings["WorkingDirectory"],
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    ok = {0, *map(int, settings["SuccessExitStatus"].split())}
    assert ran.returncode == 3 and ran.returncode in ok, ran.stderr
    assert json_lines(ran.stderr)[-1]["event"] == "run_finished"
    assert archived(base) == ["a.csv", "b.csv"]


def test_json_log_lines_for_errors_and_the_run_end(sandbox: SandboxServer, tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MAPPING, encoding="utf-8")
    args = ["import", str(tmp_path / "missing.csv"), "--mapping", str(tmp_path / "m.yaml")]
    args += ["--state", str(tmp_path / "s.sqlite"), "--log-format", "json"]
    ran = run_cli(args, env_for(sandbox), tmp_path / "r")
    assert ran.code == 66
    lines = json_lines(ran.stderr)  # every line parses
    errors = [x for x in lines if x.get("event") == "error"]
    assert errors[0]["exit_code"] == 66 and "missing.csv" in str(errors[0]["message"])
    assert lines[-1]["event"] == "run_finished" and lines[-1]["exit_code"] == 66
    assert {"time", "level", "logger", "message"} <= set(lines[-1])
    assert "Error:" not in ran.stderr and "sandbox-key" not in ran.stderr
    text = run_cli(args[:-2], env_for(sandbox), tmp_path / "r2")
    assert text.code == 66 and "Error:" in text.stderr
