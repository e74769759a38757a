"""What a run did: :class:`RunStats` counts as it goes, :class:`RunSummary` is the frozen end.

The pipeline fills one :class:`RunStats` while it reads, checks and loads; at the end
:meth:`RunStats.summary` turns it into a :class:`RunSummary`, whose :meth:`RunSummary.to_json`
is ``summary.json`` (docs/reports.md lists its keys) and whose attributes are what the
command line prints, what the ledger records (:data:`etl.state.RUN_COUNTS`) and what
:func:`etl.import_files` returns.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etl.errors import EtlError, RunFailedError

__all__ = ["RunStats", "RunSummary", "file_entry"]


def file_entry(path: Path, result: str = "", reason: str = "", error: str = "") -> dict[str, Any]:
    """A file's entry in ``summary.json``'s ``files``: ``result`` is ``done``, ``archived``,
    ``would be archived``, ``left`` (still being written, or rows to settle; ``reason`` says
    which), ``failed`` or ``stopped``. A file an earlier run recorded but did not move is archived
    without being read (``rows_read`` 0, ``reason`` names the run)."""
    return {
        "path": str(path),
        "rows_read": 0,
        "rows_rejected": 0,
        "error": error,
        "result": result,
        "reason": reason,
    }


@dataclass(frozen=True)
class RunSummary:
    """What a run did, as ``summary.json`` holds it (docs/reports.md), plus where its reports are.

    Attributes (the keys of ``summary.json`` unless said otherwise):
        command: ``import`` or ``validate``.
        dry_run: nothing was written to the API.
        sources / mapping: the input files and the mapping file, as given.
        started_at: UTC time the run started, ``YYYY-MM-DDTHH:MM:SSZ``.
        duration_seconds: seconds the run took (3 decimals).
        rows_read / rows_valid / rows_rejected / rows_duplicate: rows of the input files
            (``rows_duplicate`` are among the rejected).
        leads_created / leads_updated / leads_unchanged / leads_failed / leads_ambiguous /
            leads_conflict / leads_missing: leads by outcome (see :class:`etl.load.LoadStats`).
        conflicts: the first conflicts (``key``, ``lead_id``, ``row``, ``kept``, ``reason``).
        lead_id_conflicts / enrolments_mismatched: ambiguous answers of the server.
        campaign_entries_added: leads pushed into the campaign.
        tasks_created / tasks_updated / notes_created / notes_updated: tasks and notes sent.
        enrolment_mismatches: the enrolments whose answer did not fit.
        ambiguity: the estimate of ambiguous sends that reached the server, or ``None``.
        warnings: run-wide warnings.
        project_id / campaign_id / campaign_name: what the names resolved to.
        timezone_sources: valid rows by where their zone came from.
        phone_regions: numbers sent by region, most first.
        rows_with_warnings: valid rows with a warning.
        calling: the calling-window keys (``calling_window``, ``operator_timezone``,
            ``operator_day``, ``callable_now``, ``callable_by_hour``; none offline).
        rows_per_second: rows read per second of the run.
        timings: ``validate_seconds``, ``load_seconds``, ``other_seconds``: what the run's
            process spent its time on (:attr:`RunStats.timings`), adding up to the duration.
        files: per-file results (:func:`file_entry`, with ``leads_*`` and ``archived_to``).
        archive_dir: a folder run's archive, or ``None``.
        run_id: the run's number in the ledger (``None`` for validate and dry runs).
        max_reject_rate: ``--max-reject-rate`` in percent, or ``None``.
        error: the message of what stopped the run or failed a file ("" when none).
        exit_code: the process exit code (0, 3, 4, 65, 66, 74, 75, 77, 78, 130, 143).
        retry_after / retry_at: seconds and UTC time the API asked to wait (only when it did).
        errors_by_field: rejects per field (``None`` when no report folder was written).
        report_dir: the report folder (not a key of ``summary.json``).
    """

    command: str
    dry_run: bool
    sources: tuple[str, ...]
    mapping: str
    started_at: str
    duration_seconds: float
    rows_read: int
    rows_valid: int
    rows_rejected: int
    rows_duplicate: int
    leads_created: int
    leads_updated: int
    leads_unchanged: int
    leads_failed: int
    leads_ambiguous: int
    leads_conflict: int
    conflicts: tuple[dict[str, Any], ...]
    leads_missing: int
    lead_id_conflicts: int
    enrolments_mismatched: int
    campaign_entries_added: int
    tasks_created: int
    tasks_updated: int
    notes_created: int
    notes_updated: int
    enrolment_mismatches: tuple[Any, ...]
    ambiguity: dict[str, Any] | None
    warnings: tuple[str, ...]
    project_id: int | None
    campaign_id: str | None
    campaign_name: str | None
    timezone_sources: dict[str, int]
    phone_regions: dict[str, int]
    rows_with_warnings: int
    calling: dict[str, Any]
    rows_per_second: int
    timings: dict[str, float]
    files: tuple[dict[str, Any], ...]
    archive_dir: str | None
    run_id: int | None
    max_reject_rate: float | None
    error: str
    exit_code: int
    report_dir: Path
    retry_after: float | None = None
    retry_at: str | None = None
    errors_by_field: dict[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        """``summary.json``: its keys in their order (JSON-ready)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "calling":
                out.update(value)
            elif f.name == "report_dir" or f.name in self._optional() and value is None:
                continue  # not a key, or a key only some runs have
            elif isinstance(value, tuple):
                out[f.name] = list(value)
            else:
                out[f.name] = value
        return out

    def _optional(self) -> tuple[str, ...]:
        """The keys only some runs have: the wait the API asked for, and the rejects per field
        (written with the report folder)."""
        return ("errors_by_field",) + (("retry_at", "retry_after") if self.retry_at is None else ())

    @property
    def data(self) -> dict[str, Any]:
        """The whole ``summary.json`` as a dict."""
        return self.to_json()

    def __getitem__(self, key: str) -> Any:
        """``summary["rows_read"]``: a key of ``summary.json`` (for code that reads it as a
        dict); :class:`KeyError` for another name."""
        return self.to_json()[key]

    def as_dict(self) -> dict[str, Any]:
        """``summary.json`` as a dict with ``report_dir`` (JSON-ready: an orchestrator can store
        it as is)."""
        return {**self.to_json(), "report_dir": str(self.report_dir)}

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


@dataclass
class RunStats:
    """The counts of a run while it goes (rows, leads by outcome, files, errors, timings); the
    pipeline alone changes it, and :meth:`summary` freezes it.

    Attributes:
        started / started_at: the monotonic clock and the UTC time (whole seconds) at the start.
        rows_read / rows_rejected / rows_duplicate / rows_warned: rows so far.
        conflicts: the first :data:`MAX_CONFLICTS_LISTED` conflicts, as listed in the summary.
        zone_sources / phone_regions: valid rows by zone source; numbers sent by region.
        timings: seconds this process spent checking (``validate``: mapping, normalising,
            checking and duplicate keys, or waiting for the worker processes that check) and
            loading (``load``: waiting for the loader's outcomes, enrolling); the rest of the
            run's time is ``other`` (reading, reports, names, start and end).
        files: per-file entries (:func:`file_entry`), as the files are done.
        codes: exit codes met so far (combined at the end).
        file_errors: errors of single input files (the others still ran).
        error: the fatal error that stopped the run, if any.
        warnings: run-wide warnings.
        ambiguity: the estimate of ambiguous sends that reached the server.
        gate: the ``--max-reject-rate`` message when the gate closed ("" while open).
        clock: the monotonic clock ``started`` was read from (tests inject one).
    """

    started: float
    started_at: dt.datetime
    rows_read: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    rows_warned: int = 0
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    zone_sources: Counter[str] = field(default_factory=Counter)
    phone_regions: Counter[str] = field(default_factory=Counter)
    timings: dict[str, float] = field(default_factory=lambda: {"validate": 0.0, "load": 0.0})
    files: list[dict[str, Any]] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)
    file_errors: list[EtlError] = field(default_factory=list)
    error: EtlError | None = None
    warnings: list[str] = field(default_factory=list)
    ambiguity: dict[str, Any] | None = None
    gate: str = ""
    clock: Callable[[], float] = time.monotonic

    #: Most conflicts listed in ``summary.json`` (all are in ``loaded.csv``).
    MAX_CONFLICTS_LISTED = 100

    def file_failed(self, exc: EtlError, info: dict[str, Any] | None = None) -> None:
        """One input file failed (the others go on): its error, exit code and entry."""
        self.file_errors.append(exc)
        self.codes.append(exc.exit_code)
        if info is not None:
            info["result"] = "failed"
            info["error"] = str(exc)

    def add_conflict(self, entry: dict[str, Any]) -> None:
        """List a conflict in the summary (the first :attr:`MAX_CONFLICTS_LISTED` only)."""
        if len(self.conflicts) < self.MAX_CONFLICTS_LISTED:
            self.conflicts.append(entry)

    def summary(self, run: dict[str, Any], leads: dict[str, Any], exit_code: int) -> RunSummary:
        """The frozen summary.

        Args:
            run: what the run was and where it went: ``command``, ``dry_run``, ``sources``,
                ``mapping``, ``project_id``, ``campaign_id``, ``campaign_name``, ``calling``,
                ``archive_dir``, ``run_id``, ``max_reject_rate``, ``report_dir``, and
                ``retry_after``/``retry_at`` when the API asked to wait.
            leads: the loader's counts (the ``leads_*``, ``tasks_*``, ``notes_*`` keys,
                ``lead_id_conflicts``, ``enrolments_mismatched``, ``campaign_entries_added``,
                ``enrolment_mismatches``).
            exit_code: the run's exit code.
        """
        duration = round(self.clock() - self.started, 3)
        validate = round(max(0.0, self.timings["validate"]), 3)
        load = round(max(0.0, self.timings["load"]), 3)
        return RunSummary(
            started_at=self.started_at.isoformat().replace("+00:00", "Z"),
            duration_seconds=duration,
            rows_read=self.rows_read,
            rows_valid=self.rows_read - self.rows_rejected,
            rows_rejected=self.rows_rejected,
            rows_duplicate=self.rows_duplicate,
            conflicts=tuple(self.conflicts),
            ambiguity=self.ambiguity,
            warnings=tuple(self.warnings),
            timezone_sources=dict(sorted(self.zone_sources.items())),
            phone_regions=dict(self.phone_regions.most_common()),
            rows_with_warnings=self.rows_warned,
            rows_per_second=round(self.rows_read / duration) if duration > 0 else 0,
            timings={  # they add up to duration_seconds
                "validate_seconds": validate,
                "load_seconds": load,
                "other_seconds": round(max(0.0, duration - validate - load), 3),
            },
            files=tuple(self.files),
            error=str(self.error) if self.error else "; ".join(map(str, self.file_errors)),
            exit_code=exit_code,
            **run,
            **leads,
        )
