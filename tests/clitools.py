"""Helpers to run the CLI as a user does: as a subprocess, or in-process through click's runner."""

from __future__ import annotations

import csv
import json
import os
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from click.testing import CliRunner

from etl.cli import cli

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "data" / "cases"
SPRING = "Spring outreach"
C01 = CASES / "c01_na_names.csv"
C01_MAP = CASES / "c01_na_names.yaml"
#: Seconds a test lets a child process (a CLI run) take before it fails: a safety net against a
#: hang, nothing more. A run that needs a few seconds alone takes minutes on a busy CI machine
#: (`voiptime-etl --help` took 20 s at nice 10 beside two CPU burners and four other test
#: suites), and a test must not fail for that.
CHILD_TIMEOUT = 900
#: Seconds a test waits for one answer of a sandbox (same reason: only a hang may reach it).
ANSWER_TIMEOUT = 60


def import_args(tmp: Path, *extra: str, source: Path = C01, mapping: Path = C01_MAP) -> list[str]:
    """``import SOURCE --mapping MAPPING --campaign "Spring outreach" --state TMP/s.sqlite``
    and ``extra`` (worked case C01 by default)."""
    return [
        "import",
        str(source),
        "--mapping",
        str(mapping),
        "--campaign",
        SPRING,
        "--state",
        str(tmp / "s.sqlite"),
        *extra,
    ]


#: A mapping for the lists :func:`write_list` makes (key: email; campaign Spring outreach).
LIST_MAPPING = """\
project: Demo
campaign: Spring outreach
defaults: {region: GB, timezone: Europe/London}
key: [email]
fields: {name: First, surname: Last, email: Email, timezoneId: Zone}
phones: [{column: Phone, label: main}]
"""


def write_list(
    path: Path,
    n: int,
    shuffle: bool = False,
    surname: str = "Lee",
    surnames: dict[int, str] | None = None,
) -> Path:
    """A CSV of ``n`` valid leads ``P{i}``, ``p{i}@example.com``, one UK phone each; row ``i``
    has ``surnames[i]`` when given, else ``surname``."""
    surnames = surnames or {}
    rows = [
        f"P{i},{surnames.get(i, surname)},p{i}@example.com,+44 20 7946 {i % 1000:04d},Europe/London"
        if i < 1000
        else f"P{i},{surnames.get(i, surname)},p{i}@example.com,+44 161 496 {i % 1000:04d},"
        "Europe/London"
        for i in range(n)
    ]
    if shuffle:
        random.Random(7).shuffle(rows)
    path.write_text("First,Last,Email,Phone,Zone\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def importing(tmp_path: Path, source: Path, *extra: str, state_file: str = "s.sqlite") -> list[str]:
    """``import SOURCE --mapping TMP/m.yaml --state TMP/STATE_FILE`` and ``extra``, with
    :data:`LIST_MAPPING` written to ``TMP/m.yaml``."""
    mapping = tmp_path / "m.yaml"
    mapping.write_text(LIST_MAPPING, encoding="utf-8")
    return [
        "import",
        str(source),
        "--mapping",
        str(mapping),
        "--state",
        str(tmp_path / state_file),
        *extra,
    ]


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str
    report: Path

    def summary(self) -> dict[str, Any]:
        return json.loads((self.report / "summary.json").read_text(encoding="utf-8"))

    def rejects(self) -> list[dict[str, str]]:
        """Rows of rejects.csv; the last three fields are always _source_file, _source_row,
        _errors (a row too long for its header is written back with its own fields)."""
        with open(self.report / "rejects.csv", newline="", encoding="utf-8") as fh:
            header, *rows = list(csv.reader(fh))
        out = []
        for row in rows:
            record = dict(zip(header[:-3], row[:-3], strict=False))
            record.update(zip(header[-3:], row[-3:], strict=True))
            record["_fields"] = row[:-3]  # type: ignore[assignment]
            out.append(record)
        return out

    def loaded(self) -> list[dict[str, str]]:
        with open(self.report / "loaded.csv", newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))


def logged(stderr: str) -> list[str]:
    """The lines of ``stderr``, each log record's ``LEVEL logger.name: message`` written
    ``LEVEL: message`` (which module logs a message is not part of it)."""
    return [re.sub(r"^([A-Z]+) etl(\.[a-z_]+)+: ", r"\1: ", line) for line in stderr.splitlines()]


def table(stdout: str) -> list[list[str]]:
    """The body rows of the tables in ``stdout`` (rich box drawing), each a list of its cells."""
    return [
        [c.strip() for c in line.split("│")[1:-1]]
        for line in stdout.splitlines()
        if line.startswith("│")
    ]


def env_for(sandbox: Any, key: str = "sandbox-key", **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOIPTIME_")}
    env.update(
        VOIPTIME_API_URL=sandbox.url,
        VOIPTIME_API_KEY=key,
        VOIPTIME_RETRY_MAX_WAIT="0",
        VOIPTIME_READ_TIMEOUT="60",  # a busy machine is slow, not ambiguous
    )
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: dict[str, str], report: Path, *, subprocess_mode: bool = True
) -> Ran:
    """Run ``voiptime-etl ARGS --report-dir REPORT`` (for validate/import)."""
    full = [*args, "--report-dir", str(report)] if args[0] in ("import", "validate") else args
    if subprocess_mode:
        proc = subprocess.run(
            [sys.executable, "-m", "etl", *full],
            env=env,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
        )
        return Ran(proc.returncode, proc.stdout, proc.stderr, report)
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("VOIPTIME_")}
    result = CliRunner().invoke(cli, full, env={**unset, **env}, catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr, report)


def state(sandbox: Any) -> dict[str, Any]:
    answer = requests.get(sandbox.base_url + "/_sandbox/state", timeout=ANSWER_TIMEOUT)
    answer.raise_for_status()
    return answer.json()  # type: ignore[no-any-return]


def faults(sandbox: Any, *rules: dict[str, Any]) -> None:
    answer = requests.post(
        sandbox.base_url + "/_sandbox/faults", json={"rules": list(rules)}, timeout=ANSWER_TIMEOUT
    )
    assert answer.status_code in (200, 204), answer.text


def wait_held(sandbox: Any, count: int) -> None:
    """Wait (on the sandbox's event, not a clock) until ``count`` requests are held by a
    ``hold`` fault rule; fail if they are not within 300 s. The bound is only a safety net: on a
    busy CI machine a child process can take tens of seconds just to start and reach its sixth
    request, and a test must not fail for that."""
    answer = requests.get(
        sandbox.base_url + "/_sandbox/held", params={"at_least": count, "timeout": 300}, timeout=330
    )
    assert answer.json() == {"held": count}, answer.text


def release(sandbox: Any) -> int:
    """Let every request held by a ``hold`` fault rule go on; how many there were."""
    answer = requests.post(sandbox.base_url + "/_sandbox/release", timeout=ANSWER_TIMEOUT)
    return int(answer.json()["released"])


def spring_id(sandbox: Any, key: str = "sandbox-key") -> str:
    with requests.Session() as s:
        s.headers["Api-Key"] = key
        offset, found = 0, None
        while True:
            page = s.get(
                sandbox.url + "/campaigns", params={"offset": offset, "limit": 50}, timeout=5
            ).json()
            if not page:
                break
            for c in page:
                if c["name"] == SPRING:
                    found = c["id"]
            offset += len(page)
    assert found
    return found
