"""etl.config: one source of settings, options before environment before defaults."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from clitools import env_for, run_cli
from clitools import import_args as imp

from etl.client import VoiptimeClient
from etl.config import DEFAULT_API_URL, Settings, default_report_dir, read_api_key
from etl.errors import ConfigError


def test_defaults_and_environment() -> None:
    s = Settings.build({})
    assert (s.api_url, s.api_key, s.connect_timeout, s.read_timeout) == (
        DEFAULT_API_URL,
        None,
        5.0,
        30.0,
    )
    assert (s.retry.attempts, s.retry.budget, s.retry.max_wait, s.retry.max_retry_after) == (
        6,
        120.0,
        30.0,
        120.0,
    )
    env = {
        "VOIPTIME_API_URL": "http://x/api/",
        "VOIPTIME_API_KEY": " k ",
        "VOIPTIME_READ_TIMEOUT": "7",
        "VOIPTIME_RETRY_BUDGET": "3",
        "VOIPTIME_RETRY_MAX_WAIT": "0",
        "VOIPTIME_RETRY_ATTEMPTS": "2",
    }
    s = Settings.build(env)
    assert (s.api_url, s.api_key, s.read_timeout) == ("http://x/api", "k", 7.0)
    assert (s.retry.attempts, s.retry.budget, s.retry.max_wait, s.retry.min_wait) == (
        2,
        3.0,
        0.0,
        0.0,
    )
    assert Settings.build(env, api_url="http://y/api").api_url == "http://y/api"


def test_key_file_wins_and_key_is_hidden(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("from-file\nignored\n")
    s = Settings.build({"VOIPTIME_API_KEY": "from-env"}, api_key_file=key_file)
    assert s.api_key == "from-file"
    assert "from-file" not in repr(s)
    assert "from-file" not in repr(VoiptimeClient.from_settings(s))


def test_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="VOIPTIME_READ_TIMEOUT='soon' is not a number"):
        Settings.build({"VOIPTIME_READ_TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match="must not be negative"):
        Settings.build({"VOIPTIME_RETRY_BUDGET": "-1"})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="the API key file is empty"):
        read_api_key(tmp_path / "empty")
    with pytest.raises(ConfigError, match="cannot be read"):
        read_api_key(tmp_path / "missing")
    with pytest.raises(ConfigError, match="No API key"):
        VoiptimeClient.from_settings(Settings.build({}))


def test_default_report_dir() -> None:
    when = dt.datetime(2026, 11, 30, 3, 15, 0, tzinfo=dt.UTC)
    assert default_report_dir(when) == Path("reports/20261130T031500Z")


# Found by a new user in a trial run (were tests/test_regressions.py): each pinned through the
# CLI against the sandbox.


def test_api_key_file_with_bom_works_and_a_missing_one_is_78(sandbox: Any, tmp_path: Path) -> None:
    key = tmp_path / "key.txt"
    key.write_bytes(b"\xef\xbb\xbfsandbox-key\r\n")
    env = {k: v for k, v in env_for(sandbox).items() if k != "VOIPTIME_API_KEY"}
    ok = run_cli(imp(tmp_path, "--api-key-file", str(key)), env, tmp_path / "r1")
    assert ok.code == 0, ok.stderr
    missing = run_cli(imp(tmp_path, "--api-key-file", str(tmp_path / "nope")), env, tmp_path / "r2")
    assert missing.code == 78
    assert missing.stderr == (
        f"Error: {tmp_path / 'nope'}: the API key file cannot be read (No such file or directory)\n"
    )
    assert "Traceback" not in missing.stderr
