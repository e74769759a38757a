"""report.html in a real headless browser: it renders, the filter and the sort work, its
numbers equal summary.json, and it prints.

Chromium and chromedriver come from the system's packages (Debian: ``apt-get install chromium
chromium-driver``); where either is missing these tests are skipped with that reason. The
browser is driven through chromedriver's W3C WebDriver HTTP interface with ``requests`` (no
extra Python package). Screenshots are written to the test's ``tmp_path``; set
``VOIPTIME_TEST_SCREENSHOTS=DIR`` to keep a copy of each in DIR.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from clitools import ANSWER_TIMEOUT, CHILD_TIMEOUT, ROOT, Ran, env_for, import_args, run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Chromium or chromedriver is not installed (Debian: apt-get install chromium "
    "chromium-driver): report.html is not checked in a browser",
)

SAMPLE = ROOT / "sample_data" / "leads.csv"
MAPPING = ROOT / "mappings" / "leads.yaml"
TILES = (
    "rows_read",
    "rows_valid",
    "rows_rejected",
    "rows_duplicate",
    "rows_with_warnings",
    "leads_created",
    "leads_updated",
    "leads_unchanged",
    "leads_failed",
    "leads_ambiguous",
    "campaign_entries_added",
)


class Browser:
    """One headless Chromium session through chromedriver (W3C WebDriver over HTTP)."""

    def __init__(self, driver: str, session: str) -> None:
        self.base = f"{driver}/session/{session}"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = requests.request(method, self.base + path, json=body, timeout=60)
        answer.raise_for_status()
        return answer.json()["value"]

    def open(self, page: Path, width: int = 1280, height: int = 1000) -> None:
        self._call("POST", "/window/rect", {"width": width, "height": height})
        self._call("POST", "/url", {"url": page.resolve().as_uri()})

    def js(self, script: str, *args: Any) -> Any:
        return self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def click(self, css: str) -> None:
        found = self._call("POST", "/element", {"using": "css selector", "value": css})
        element = next(iter(found.values()))
        self._call("POST", f"/element/{element}/click", {})

    def screenshot(self, path: Path, height: int | None = None, of: str = "") -> Path:
        """A PNG of the whole page (the window grown to the page's height, at most 6000 px),
        or of the element ``of`` (a CSS selector)."""
        full = height or min(6000, int(self.js("return document.documentElement.scrollHeight")))
        self._call("POST", "/window/rect", {"width": 1280, "height": full})
        if of:
            found = self._call("POST", "/element", {"using": "css selector", "value": of})
            shot = self._call("GET", f"/element/{next(iter(found.values()))}/screenshot")
        else:
            shot = self._call("GET", "/screenshot")
        path.write_bytes(base64.b64decode(shot))
        return _keep(path)

    def print_pdf(self, path: Path) -> bytes:
        """The page printed to PDF (A4, as the page's print styles say)."""
        path.write_bytes(base64.b64decode(self._call("POST", "/print", {"background": True})))
        return _keep(path).read_bytes()

    def media(self, kind: str) -> None:
        """Emulate screen or print media (Chrome DevTools command through chromedriver)."""
        self._call(
            "POST",
            "/goog/cdp/execute",
            {"cmd": "Emulation.setEmulatedMedia", "params": {"media": kind}},
        )

    def tiles(self) -> dict[str, tuple[int, str]]:
        """The count tiles: ``{summary key: (number, label)}`` as rendered."""
        return {
            k: (int(n), label)
            for k, n, label in self.js(
                "return Array.from(document.querySelectorAll('#counts .card')).map("
                "c => [c.querySelector('.n').id, c.querySelector('.n').textContent,"
                " c.querySelector('.l').textContent])"
            )
        }

    def visible_rejects(self) -> list[list[str]]:
        """The rejected-row lines a person sees, as cell texts."""
        return self.js(  # type: ignore[no-any-return]
            "return Array.from(document.querySelectorAll('#rejects tbody tr'))"
            ".filter(tr => tr.offsetParent !== null)"
            ".map(tr => Array.from(tr.cells).map(td => td.textContent))"
        )


def _keep(path: Path) -> Path:
    """Copy ``path`` to ``$VOIPTIME_TEST_SCREENSHOTS`` when that is set (to look at it)."""
    keep = os.environ.get("VOIPTIME_TEST_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    assert CHROMEDRIVER is not None and CHROMIUM is not None
    port = _free_port()
    log = tmp_path_factory.mktemp("chromedriver") / "log.txt"
    with open(log, "w") as fh:
        driver = subprocess.Popen(
            [CHROMEDRIVER, f"--port={port}"], stdout=fh, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + CHILD_TIMEOUT
        while True:  # wait until chromedriver answers (bounded)
            try:
                if requests.get(url + "/status", timeout=ANSWER_TIMEOUT).json()["value"]["ready"]:
                    break
            except (requests.ConnectionError, requests.Timeout, ValueError, KeyError):
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        profile = tmp_path_factory.mktemp("chromium-profile")
        args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--window-size=1280,1000",
        ]
        caps = {"browserName": "chrome", "goog:chromeOptions": {"binary": CHROMIUM, "args": args}}
        answer = requests.post(
            url + "/session", json={"capabilities": {"alwaysMatch": caps}}, timeout=CHILD_TIMEOUT
        )
        answer.raise_for_status()
        session = answer.json()["value"]["sessionId"]
        try:
            yield Browser(url, session)
        finally:
            requests.delete(f"{url}/session/{session}", timeout=60)
    finally:
        driver.terminate()
        driver.wait(timeout=CHILD_TIMEOUT)


def _reasons_by_field(ran: Ran) -> Counter[str]:
    return Counter(ran.summary()["errors_by_field"])


def _check_numbers(browser: Browser, ran: Ran) -> dict[str, tuple[int, str]]:
    """Every tile's number equals summary.json's; the verdict states the exit code."""
    s = ran.summary()
    tiles = browser.tiles()
    assert tiles, "no count tiles rendered"
    for key, (number, _) in tiles.items():
        assert key in TILES and number == s[key], key
    verdict = browser.js("return document.getElementById('verdict').innerText")
    assert f"Exit code {s['exit_code']}:" in verdict
    return tiles


def test_dry_run_report_says_would_and_its_filter_works(
    browser: Browser, sandbox: Any, tmp_path: Path
) -> None:
    ran = run_cli(
        import_args(tmp_path, "--dry-run", source=SAMPLE, mapping=MAPPING),
        env_for(sandbox),
        tmp_path / "dry",
        subprocess_mode=False,
    )
    assert ran.code == 3, ran.stderr
    browser.open(tmp_path / "dry" / "report.html")
    shot = browser.screenshot(tmp_path / "dry-run.png")
    assert shot.stat().st_size > 50_000
    tiles = _check_numbers(browser, ran)
    assert [label for _, label in tiles.values()] == [
        "rows read",
        "valid",
        "rejected",
        "of them duplicates",
        "would create",
        "would update",
        "would leave unchanged",
        "would add to campaign",
    ]
    text = browser.js("return document.body.innerText")
    assert "Dry run: nothing was sent to the dialer." in text
    assert not re.search(
        r"\b(created|updated)\b", browser.js("return document.getElementById('counts').innerText")
    )
    # every rejected row is listed, one line per reason, each with the lead's name
    lines = browser.visible_rejects()
    by_field = _reasons_by_field(ran)
    assert len(lines) == sum(by_field.values())
    assert {int(line[0]) for line in lines} == {int(r["_source_row"]) for r in ran.rejects()}
    rows = {int(r["_source_row"]): r for r in ran.rejects()}
    for line in lines:
        row = rows[int(line[0])]
        assert (
            line[1] == f"{row['First Name']} {row['Last Name']}".strip() or line[1] == row["Email"]
        )
    # the filter, used as a person does: pick a field, then a reason
    browser.click("#f-field option[value='email']")
    email = browser.visible_rejects()
    assert len(email) == by_field["email"] and {line[2] for line in email} == {"email"}
    assert browser.js("return document.getElementById('shown').textContent") == str(len(email))
    browser.screenshot(tmp_path / "dry-run-filtered.png", of="#rejected")
    browser.click("#f-field option[value='']")
    browser.click("#f-reason option[value='key: duplicate']")
    dupes = browser.visible_rejects()
    assert len(dupes) == ran.summary()["rows_duplicate"]
    assert all(line[4].startswith("key: duplicate of row") for line in dupes)


def test_validate_report_shows_only_rows_and_sorts(browser: Browser, tmp_path: Path) -> None:
    ran = run_cli(
        ["validate", str(SAMPLE), "--mapping", str(MAPPING)],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "v",
        subprocess_mode=False,
    )
    assert ran.code == 3
    browser.open(tmp_path / "v" / "report.html")
    browser.screenshot(tmp_path / "validate.png")
    tiles = _check_numbers(browser, ran)
    assert list(tiles) == [
        "rows_read",
        "rows_valid",
        "rows_rejected",
        "rows_duplicate",
        "rows_with_warnings",
    ]
    # rejects come before warnings
    assert browser.js(
        "const r = document.getElementById('rejected'), w = document.getElementById('warnings');"
        "return !w || !!(r.compareDocumentPosition(w) & Node.DOCUMENT_POSITION_FOLLOWING)"
    )
    rows = [int(line[0]) for line in browser.visible_rejects()]
    assert rows == sorted(rows)
    browser.click("#rejects th:nth-child(1) button")  # row, ascending (as written)
    browser.click("#rejects th:nth-child(1) button")  # row, descending
    rows = [int(line[0]) for line in browser.visible_rejects()]
    assert rows == sorted(rows, reverse=True)
    browser.click("#rejects th:nth-child(3) button")  # field, ascending
    fields = [line[2] for line in browser.visible_rejects()]
    assert fields == sorted(fields, key=str.lower)
    # a glossary link leads to a one-line explanation
    target = browser.js("return document.querySelector('#rejects a.g').getAttribute('href')")
    assert browser.js(f"return document.querySelector('{target}').nextElementSibling.textContent")


def test_import_report_numbers_and_print(browser: Browser, sandbox: Any, tmp_path: Path) -> None:
    ran = run_cli(
        import_args(tmp_path, source=SAMPLE, mapping=MAPPING),
        env_for(sandbox),
        tmp_path / "imp",
        subprocess_mode=False,
    )
    assert ran.code == 3, ran.stderr
    browser.open(tmp_path / "imp" / "report.html")
    browser.screenshot(tmp_path / "import.png")
    tiles = _check_numbers(browser, ran)
    assert tiles["leads_created"] == (ran.summary()["leads_created"], "created")
    assert tiles["campaign_entries_added"][1] == "added to campaign"
    # printed: the filter controls are hidden, the table is there, and it makes a PDF
    browser.media("print")
    try:
        assert (
            browser.js("return getComputedStyle(document.querySelector('.controls')).display")
            == "none"
        )
        assert (
            browser.js("return getComputedStyle(document.body).backgroundColor")
            == "rgb(255, 255, 255)"
        )
        browser.screenshot(tmp_path / "import-print.png", height=1600)
    finally:
        browser.media("")  # no emulation: screen on screen, print when printing
    pdf = browser.print_pdf(tmp_path / "import.pdf")
    assert pdf.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
    assert pages >= 2, pages
