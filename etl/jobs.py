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

import glob
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.config import DEFAULT_STATE, Settings, default_report_dir
from etl.errors import RunFailedError
from etl.load import Cancel
from etl.pipeline import RunOptions, run

__all__ = ["RunSummary", "SUFFIXES", "expand_sources", "import_files"]

#: File name endings a glob picks up (the readers' formats).
SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".xls")

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


@dataclass(frozen=True)
class RunSummary:
    """What a run did: the counts of ``summary.json`` as attributes, and the whole of it.

    Attributes:
        exit_code: the process exit code the CLI would give (0, 3, 4, 65, 66, 74, 75, 77, 78).
        rows_read / rows_valid / rows_rejected / rows_duplicate: rows of the input files.
        leads_created / leads_updated / leads_unchanged / leads_failed / leads_ambiguous: leads.
        campaign_entries_added: leads pushed into the campaign.
        files: per-file results (``path``, ``rows_read``, ``rows_rejected``, ``result``:
            ``archived``, ``left``, ``failed``..., ``reason``, ``error``, ``archived_to``).
        report_dir: the folder holding summary.json, rejects.csv, loaded.csv, report.html.
        error: the message of what stopped the run or failed a file ("" when none).
        run_id: the run's number in the ledger (``None`` for validate and dry runs).
        data: the whole ``summary.json`` as a dict.
    """

    exit_code: int
    rows_read: int
    rows_valid: int
    rows_rejected: int
    rows_duplicate: int
    leads_created: int
    leads_updated: int
    leads_unchanged: int
    leads_failed: int
    leads_ambiguous: int
    campaign_entries_added: int
    files: tuple[dict[str, Any], ...]
    report_dir: Path
    error: str
    run_id: int | None
    data: dict[str, Any]

    @classmethod
    def from_summary(cls, summary: dict[str, Any], report_dir: Path) -> RunSummary:
        """From a ``summary.json`` dict."""
        counts = {
            k: int(summary.get(k) or 0)
            for k in (
                "rows_read",
                "rows_valid",
                "rows_rejected",
                "rows_duplicate",
                "leads_created",
                "leads_updated",
                "leads_unchanged",
                "leads_failed",
                "leads_ambiguous",
                "campaign_entries_added",
            )
        }
        return cls(
            exit_code=int(summary["exit_code"]),
            files=tuple(summary.get("files", [])),
            report_dir=Path(report_dir),
            error=str(summary.get("error") or ""),
            run_id=summary.get("run_id"),
            data=dict(summary),
            **counts,
        )

    def as_dict(self) -> dict[str, Any]:
        """``summary.json`` as a dict (JSON-ready: an orchestrator can store it as is)."""
        return {**self.data, "report_dir": str(self.report_dir)}

    def raise_for_exit_code(self, accept: Sequence[int] = (0,)) -> RunSummary:
        """Raise unless the exit code is one of ``accept``; returns ``self`` otherwise.

        ``accept=(0, 3)`` lets a run with rejected rows pass (they are in ``rejects.csv``).
        75 means temporary (API unreachable, retries exhausted, another run holds the ledger):
        the orchestrator's own retry is the right answer to it.

        Raises:
            RunFailedError: with the run's ``exit_code``, ``report_dir`` and error message.
        """
        if self.exit_code in accept:
            return self
        raise RunFailedError(
            f"voiptime-etl run ended with exit code {self.exit_code}"
            + (f": {self.error}" if self.error else "")
            + f" (report: {self.report_dir})",
            self.exit_code,
            str(self.report_dir),
        )


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
    result = run(options, settings.client, cancel, pause=pause)
    return RunSummary.from_summary(result.summary, result.report_dir)
