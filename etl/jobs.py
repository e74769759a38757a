"""The library call for schedulers and orchestrators: :func:`import_files` → :class:`RunSummary`.

The ``import`` command and an Airflow task, a Dagster asset or a Prefect flow make the same run::

    import etl

    summary = etl.import_files(
        "/srv/leads/inbox/*.csv",
        mapping="/srv/leads/mapping.yaml",
        api_key=key,
        state="/srv/leads/state.sqlite",
        archive_dir="/srv/leads/done",
        report_dir="/srv/leads/reports/2026-12-01",
    )
    summary.raise_for_exit_code(accept=(0, 3))   # rejects are the list owner's business
    print(summary.leads_created)

Examples for each orchestrator are in ``docs/orchestrators.md`` (and run by the tests).
"""

from __future__ import annotations

import functools
import glob
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from etl.cancel import Cancel
from etl.client import VoiptimeClient
from etl.config import DEFAULT_STATE, Settings, default_report_dir
from etl.extract import SUFFIXES
from etl.pipeline import RunOptions, run
from etl.summary import RunSummary

__all__ = ["RunSummary", "SUFFIXES", "expand_sources", "import_files"]

PathLike = str | os.PathLike[str]


def expand_sources(sources: Sequence[PathLike]) -> list[Path]:
    """Expand glob patterns in name order, keeping files with a readable suffix; a pattern that
    matches nothing stays as given (and is reported missing, exit 66)."""
    out: list[Path] = []
    for item in sources:
        source = os.fspath(item)
        if any(ch in source for ch in "*?[") and not Path(source).exists():
            matches = sorted(glob.glob(source))
            out += [Path(m) for m in matches if Path(m).suffix.lower() in SUFFIXES] or [
                Path(source)
            ]
        else:
            out.append(Path(source))
    return out


def import_files(
    sources: PathLike | Sequence[PathLike],
    mapping: PathLike,
    *,
    api_key: str,
    api_url: str | None = None,
    campaign: str | None = None,
    state: PathLike = DEFAULT_STATE,
    report_dir: PathLike | None = None,
    archive_dir: PathLike | None = None,
    settle_seconds: float = 2.0,
    dry_run: bool = False,
    concurrency: int = 4,
    rate_limit: float | None = None,
    retry_ambiguous: bool = False,
    max_reject_rate: float | None = None,
    cancel: Cancel | None = None,
    pause: Callable[[float], None] = time.sleep,
) -> RunSummary:
    """Import files into Voiptime Cloud, as ``voiptime-etl import`` does; returns the summary.

    Bad rows, unreadable files and API failures never raise: they are in the summary (and its
    ``exit_code``); call :meth:`RunSummary.raise_for_exit_code` to fail a task on them.

    Args:
        sources: a path or glob pattern (``"inbox/*.csv"``), or a list of them; globs run in
            name order.
        mapping: the YAML mapping file.
        api_key: the API key (never written anywhere).
        api_url: the API base URL (default ``https://app.voiptimecloud.com/api``).
        campaign: campaign id or name; overrides the mapping's.
        state: the run ledger (SQLite), default ``.voiptime-etl/state.sqlite`` in the working
            folder; keep one per project and API.
        report_dir: the report folder, default ``reports/<UTC time>/`` in the working folder.
        archive_dir: a folder run: files whose rows are all recorded move to
            ``archive_dir/<UTC date>/`` (see :mod:`etl.archive`).
        settle_seconds: with ``archive_dir``, seconds between the two looks that tell a file
            still being written.
        dry_run: everything but the writing calls.
        concurrency: requests in flight.
        rate_limit: most requests per second (``None``: no limit).
        retry_ambiguous: send rows an earlier run left ambiguous again.
        max_reject_rate: percent; above it nothing is sent (exit 3).
        cancel: set it (e.g. from a signal handler) to stop cleanly.
        pause: waits between the two looks of a folder run (tests pass one that does not sleep).

    Returns:
        The run's :class:`RunSummary`.

    Raises:
        ConfigError: ``api_key`` holds characters an HTTP header cannot carry (exit 78).
    """
    settings = Settings.build({"VOIPTIME_API_KEY": api_key}, api_url=api_url, rate_limit=rate_limit)
    items = [sources] if isinstance(sources, str | os.PathLike) else list(sources)
    options = RunOptions(
        sources=expand_sources(items),
        mapping=Path(mapping),
        command="import",
        campaign=campaign,
        dry_run=dry_run,
        report_dir=Path(report_dir) if report_dir is not None else default_report_dir(),
        state=Path(state),
        concurrency=concurrency,
        retry_ambiguous=retry_ambiguous,
        max_reject_rate=max_reject_rate,
        archive_dir=Path(archive_dir) if archive_dir is not None else None,
        settle_seconds=settle_seconds,
    )
    factory = functools.partial(VoiptimeClient.from_settings, settings)
    return run(options, factory, cancel, pause=pause).summary
