"""Settings of a run, built once by the CLI (options, then ``VOIPTIME_*`` variables, then defaults).

Library functions take these values as arguments and never read ``os.environ`` themselves
(house style 8). The API key lives only in :attr:`Settings.api_key`, whose ``repr`` hides it.
Settings hold values only: :meth:`etl.client.VoiptimeClient.from_settings` makes the client.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from etl.errors import ConfigError

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_STATE",
    "RetryPolicy",
    "Settings",
    "default_report_dir",
    "read_api_key",
]

DEFAULT_API_URL = "https://app.voiptimecloud.com/api"
DEFAULT_STATE = Path(".voiptime-etl/state.sqlite")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry what is safe to retry.

    Attributes:
        attempts: tries in all, the first included.
        budget: seconds after which no new try starts.
        min_wait: seconds, the smallest backoff.
        max_wait: seconds, the largest backoff between tries.
        max_retry_after: seconds, the longest ``Retry-After`` waited out; a longer one stops
            the run (:class:`~etl.errors.RetryLaterError`) instead of sending again early.
        sleep: the sleep function (``time.sleep``); tests inject one that returns at once.
        now: the wall clock as an aware UTC datetime (reads HTTP dates, computes ``retry_at``).
    """

    attempts: int = 6
    budget: float = 120.0
    min_wait: float = 0.5
    max_wait: float = 30.0
    max_retry_after: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Settings:
    """How to reach the API.

    Attributes:
        api_url: base URL of the API (``VOIPTIME_API_URL``).
        api_key: the key (``VOIPTIME_API_KEY`` or ``--api-key-file``); ``None`` means offline.
        connect_timeout: seconds to wait for a connection (``VOIPTIME_CONNECT_TIMEOUT``).
        read_timeout: seconds to wait for an answer (``VOIPTIME_READ_TIMEOUT``).
        retry: retry policy; ``VOIPTIME_RETRY_BUDGET`` (seconds), ``VOIPTIME_RETRY_ATTEMPTS``,
            ``VOIPTIME_RETRY_MAX_WAIT`` (seconds, the cap of backoff and of ``Retry-After``).
        rate_limit: requests per second over all workers (``None``: unlimited).
    """

    api_url: str = DEFAULT_API_URL
    api_key: str | None = field(default=None, repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limit: float | None = None

    @classmethod
    def build(
        cls,
        env: Mapping[str, str],
        *,
        api_url: str | None = None,
        api_key_file: Path | None = None,
        rate_limit: float | None = None,
    ) -> Settings:
        """Settings from command-line values first, then ``env``, then defaults.

        Raises:
            ConfigError: a variable holds something unusable, or the key file cannot be read.
        """
        key = read_api_key(api_key_file) if api_key_file else (env.get("VOIPTIME_API_KEY") or None)
        if key and (not key.strip().isascii() or not key.strip().isprintable()):
            raise ConfigError("VOIPTIME_API_KEY holds characters an HTTP header cannot carry")
        defaults = RetryPolicy()
        max_wait = _number(env, "VOIPTIME_RETRY_MAX_WAIT", defaults.max_wait)
        retry = RetryPolicy(
            attempts=int(_number(env, "VOIPTIME_RETRY_ATTEMPTS", defaults.attempts)),
            budget=_number(env, "VOIPTIME_RETRY_BUDGET", defaults.budget),
            min_wait=min(defaults.min_wait, max_wait),
            max_wait=max_wait,
            max_retry_after=_number(env, "VOIPTIME_RETRY_MAX_WAIT", defaults.max_retry_after),
        )
        return cls(
            api_url=(api_url or env.get("VOIPTIME_API_URL") or DEFAULT_API_URL).rstrip("/"),
            api_key=key.strip() if key else None,
            connect_timeout=_number(env, "VOIPTIME_CONNECT_TIMEOUT", 5.0),
            read_timeout=_number(env, "VOIPTIME_READ_TIMEOUT", 30.0),
            retry=retry,
            rate_limit=rate_limit,
        )


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative")
    return value


def read_api_key(path: Path) -> str:
    """The key from a file (first line, trimmed).

    Raises:
        ConfigError: the file cannot be read or is empty.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # Notepad's byte-order mark
    except OSError as exc:
        raise ConfigError(f"{path}: the API key file cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the API key file is not UTF-8 text") from None
    key = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not key:
        raise ConfigError(f"{path}: the API key file is empty")
    if not key.isascii() or not key.isprintable():
        raise ConfigError(f"{path}: the API key holds characters an HTTP header cannot carry")
    return key


def default_report_dir(now: dt.datetime | None = None) -> Path:
    """``reports/<UTC timestamp>/``, e.g. ``reports/20261130T031500Z``."""
    now = now or dt.datetime.now(dt.UTC)
    return Path("reports") / now.strftime("%Y%m%dT%H%M%SZ")


def environ() -> Mapping[str, str]:
    """The process environment (the CLI's only source of ``VOIPTIME_*`` values)."""
    return os.environ
