"""One run of ``validate`` or ``import``: typed stages, one after the other.

:func:`run` is what the ``validate`` and ``import`` commands call (and
:func:`etl.import_files`). It is the sequence of the stages:

1. :func:`etl.plan.read_setup`: the mapping file and the calling window;
2. the ledger's lock (``import``), then the input files opened (a folder run first leaves out
   the files still being written);
3. :func:`etl.plan.prepare` → a frozen :class:`~etl.plan.Plan` (columns per file, names
   resolved to ids, date orders), or one error listing every problem;
4. with ``--max-reject-rate``, a first pass of :func:`etl.check.check_chunk` over every chunk
   (in the worker processes when there are any) that only counts the rejects;
5. for each chunk in file order: :func:`etl.check.check_chunk` → a frozen
   :class:`~etl.check.ChunkVerdict` (in worker processes on a large input; read and checked
   again after a ``--max-reject-rate`` pass) holding the valid
   rows as lead records, duplicate keys (:func:`etl.check.find_duplicates`), the lead records
   sent through the :class:`~etl.load.Loader` in batches of ``batch_rows``, which returns
   their outcomes;
6. the counts of :class:`~etl.summary.RunStats` frozen into a :class:`~etl.summary.RunSummary`,
   the reports finished and the exit code chosen.

Memory is bounded by ``chunk_rows`` whatever the file's size. Bad rows never raise; a fatal
error (a mapping error, a refused key, an unreachable API) ends the run with its exit code after
the reports are written. Every report line is written by :class:`RunReport`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from etl.archive import archive_file, fingerprint, select_ready
from etl.calls import CallContext, LeadWindow, WindowCounter
from etl.cancel import Cancel
from etl.check import (
    ChunkPool,
    ChunkVerdict,
    Duplicates,
    check_chunk,
    find_duplicates,
)
from etl.client import VoiptimeClient, format_time
from etl.errors import (
    EXIT_AMBIGUOUS,
    EXIT_REJECTED,
    ApiError,
    ConfigError,
    EtlError,
    InputError,
    RateLimitedError,
    combine_exit_codes,
)
from etl.extract import (
    EXCEL_SUFFIXES,
    Chunk,
    CsvSlice,
    SourceReader,
    open_source,
    rejects_read_options,
)
from etl.load import (
    Loader,
    LoadStats,
    Outcome,
    check_new_ledger,
    estimate_ambiguity,
    record_baselines,
)
from etl.mapping import Mapping as LeadMapping
from etl.mapping import References
from etl.normalize import reason_kind
from etl.payload import LeadRows
from etl.phonefast import regions_many
from etl.plan import (
    DateScan,
    Plan,
    Readers,
    Scope,
    Setup,
    every_problem,
    prepare,
    read_setup,
)
from etl.report import ReportWriter, prune_reports
from etl.state import Ledger
from etl.summary import RunStats, RunSummary, file_entry
from etl.validate import KeyTracker
from etl.values import Caveat

__all__ = [
    "POOL_MIN_ROWS",
    "Progress",
    "RunOptions",
    "RunReport",
    "RunResult",
    "check_chunk",
    "run",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
#: A chunk, or a place in a CSV where a worker reads one.
_Part = TypeVar("_Part", bound=Chunk | CsvSlice)


#: ``progress(stage, rows)``: ``stage`` is ``validated`` (rows read and checked) or ``loaded``
#: (valid rows sent or decided), and ``rows`` how many more since the last call; or ``total``
#: once, with the number of rows of the run when the readers know it (CSV) up front.
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class RunOptions:
    """What to run.

    Attributes:
        sources: input files (already expanded from globs).
        mapping: the mapping file.
        command: ``import`` or ``validate``.
        campaign: overrides the mapping's campaign (id or name).
        dry_run: do everything but the writing calls.
        report_dir: the report folder.
        state: the ledger file.
        concurrency: worker threads sending leads.
        chunk_rows: rows read and validated at a time.
        batch_rows: rows sent before their leads are pushed into the campaign.
        retry_ambiguous: re-send rows an earlier run left ambiguous.
        recreate_missing: create again, as new leads, rows whose lead the dialer no longer has
            (an earlier run found it answering 404).
        new_ledger: a ledger that knows nothing of a project that already has contacts is
            intended (else such a run is refused, exit 78: every lead would be doubled).
        max_reject_rate: percent (0–100); when more rows than that are rejected, a first pass
            finds it and nothing is sent (exit 3, reports written). Costs a second read and check
            of every chunk (the first pass keeps nothing but the counts).
        keep_reports: after the run, keep only this many of the newest report folders that
            voiptime-etl wrote beside ``report_dir`` (see :func:`etl.report.prune_reports`);
            ``None`` keeps every one.
        on_created: called after each lead the ledger records created (a crash-test hook the
            tests inject to kill the process there; ``None`` in normal use).
        archive_dir: a folder run: each file whose rows are all recorded is moved to
            ``archive_dir/<UTC date>/``; a file that failed, or with rows whose outcome is unknown
            (ambiguous), stays; a file still being written is left for the next run; a file
            moved is never read again (its fingerprint is in the ledger).
        settle_seconds: with ``archive_dir``, seconds between the two looks that tell a file
            still being written (its size or modification time changes).
        before_archive: called after a file's rows are recorded and before it is moved (a
            crash-test hook, as ``on_created``; ``None`` in normal use).
        overwrite: rows replace the values of leads another file (or, from a rejects file,
            another row) fed, instead of being reported as ``conflict``/``duplicate``.
        workers: processes that check chunks while this one reads, keeps the keys and writes
            the reports: ``0`` one per core when the input has at least ``pool_min_rows`` rows
            (counted up front: CSV), ``1`` none (everything in this process).
        pool_min_rows: the size from which ``workers=0`` starts the pool (starting workers
            costs about a second; below this it does not pay).
        calling_window: ``HH:MM-HH:MM`` local time a lead may be called (else the mapping's
            ``calling_window``, else 08:00-21:00).
        operator_timezone: the IANA zone the operator's hours are counted in (else the
            machine's zone).
        now: the run's time (aware), for past callbacks and the calling-window numbers; the
            clock when ``None`` (tests inject it).
        on_check: called in this process as each chunk is given to be checked, with ``pool``
            (sent to a worker process) or ``here`` and the chunk's rows (a test hook, as
            ``on_created``; ``None`` in normal use).
    """

    sources: Sequence[Path]
    mapping: Path
    command: str = "import"
    campaign: str | None = None
    dry_run: bool = False
    report_dir: Path = Path("reports")
    state: Path = Path(".voiptime-etl/state.sqlite")
    concurrency: int = 4
    chunk_rows: int = 10_000
    batch_rows: int = 500
    retry_ambiguous: bool = False
    recreate_missing: bool = False
    new_ledger: bool = False
    max_reject_rate: float | None = None
    keep_reports: int | None = None
    on_created: Callable[[], None] | None = None
    archive_dir: Path | None = None
    settle_seconds: float = 2.0
    before_archive: Callable[[], None] | None = None
    overwrite: bool = False
    calling_window: str | None = None
    operator_timezone: str | None = None
    now: dt.datetime | None = None
    workers: int = 0
    pool_min_rows: int = 0
    on_check: Callable[[str, int], None] | None = None


#: Rows from which a run checks chunks in worker processes (``RunOptions.workers=0``).
POOL_MIN_ROWS = 50_000


@dataclass(frozen=True)
class RunResult:
    """The outcome of a run.

    Attributes:
        summary: what the run did (:meth:`RunSummary.to_json` is ``summary.json``).
        error: the fatal error that stopped the run, if any.
        file_errors: errors of single input files (the others still ran).
        reported: whether the report folder was written; a run stopped by its configuration
            before any input was opened (a bad mapping, an unknown name, no or a refused key,
            the lock) writes none.
    """

    summary: RunSummary
    error: EtlError | None = None
    file_errors: list[EtlError] = field(default_factory=list)
    reported: bool = True

    @property
    def exit_code(self) -> int:
        """The process exit code (docs/exit-codes.md)."""
        return self.summary.exit_code

    @property
    def report_dir(self) -> Path:
        """Where the reports are."""
        return self.summary.report_dir


class RunReport:
    """Every line of the report files of a run is written here, from the stages' results: the
    rejects of a chunk's verdict, the valid rows of ``validate``, the outcomes of the loader.

    Args:
        writer: the report folder's writer.
    """

    def __init__(self, writer: ReportWriter) -> None:
        self.writer = writer

    @classmethod
    def open(cls, folder: Path, plan: Plan | None, readers: Readers) -> RunReport:
        """The report folder, its CSVs open: rejects.csv with every file's columns (none when
        no input could be read: the folder then says which file failed and why)."""
        if plan is None:
            return cls(ReportWriter(folder, []))
        fields = plan.mapping.fields
        writer = ReportWriter(
            folder,
            list(plan.headers),
            xlsx=any(p.suffix.lower() in EXCEL_SUFFIXES for p, _ in readers),
            lead_columns=[
                spec.column if (spec := fields.get(f)) else "" for f in ("name", "surname", "email")
            ],
        )
        return cls(writer)

    def errors_by_field(self) -> dict[str, int]:
        """Rows rejected per field so far, by field name."""
        return dict(sorted(self.writer.errors_by_field.items()))

    def finish(self, summary: RunSummary, mapping_text: str) -> RunSummary:
        """Close the CSVs, write rejects.xlsx, summary.json and report.html; returns the
        summary with the rejects per field.

        Raises:
            OutputError: a file could not be written (exit 74); the others are.
        """
        summary = dataclasses.replace(summary, errors_by_field=self.errors_by_field())
        self.writer.finish(summary.to_json(), mapping_text)
        return summary

    def rejects(self, verdict: ChunkVerdict, dupes: Duplicates | None) -> None:
        """The rows of a verdict that do not load, with every reason, in row order (the rows
        the reader could not split as they are; all of them when the chunk had no other)."""
        unsplit = {p.row: p for p in verdict.problems}
        issues = dupes.by_row if dupes is not None else {}
        rows = [p.row for p in verdict.problems] if dupes is None else sorted([*issues, *unsplit])
        split: list[int] = []  # rows read as the header's fields, written column by column
        for row in [*rows, None]:
            if row is not None and row not in unsplit:
                split.append(row)
                continue
            if split:
                part = verdict.frame.loc[split]
                self.writer.reject_rows(
                    verdict.source_file,
                    split,
                    {c: part.iloc[:, n].tolist() for n, c in enumerate(part.columns)},
                    [[(i.field, i.value, i.describe(), i.kind) for i in issues[r]] for r in split],
                )
                split = []
            if row is not None:
                problem = unsplit[row]
                reasons = [("row", "", f"row: {problem.message}", problem.kind)]
                self.writer.reject(verdict.source_file, row, problem.values, reasons)

    def valid(self, leads: LeadRows, windows: Sequence[LeadWindow]) -> None:
        """``validate``: the rows that would load, in row order (``windows``: each row's
        :class:`LeadWindow`), written column by column."""
        self.writer.loaded_columns(
            leads.source_file, leads.rows, leads.keys, leads.zone_sources, leads.warnings, windows
        )

    def refused(self, out: Outcome, frame: pd.DataFrame, field: str, message: str) -> None:
        """A row the loader did not send or the server refused (``field`` ``api``), or the
        duplicate of another row of a rejects file (``field`` ``key``)."""
        r = out.row
        value, kind = (r.key, "duplicate") if field == "key" else ("", reason_kind(message))
        reason = [(field, value, f"{field}: {message}", kind)]
        self.writer.reject(r.source_file, r.source_row, frame.loc[r.source_row].to_dict(), reason)

    def loaded(
        self,
        out: Outcome,
        zone_source: str,
        warnings: Sequence[Caveat],
        ambiguous: bool,
        window: Any,
    ) -> None:
        """A row the loader decided: created, updated, unchanged, ambiguous, conflict, missing."""
        r = out.row
        self.writer.loaded(
            r.source_file,
            r.source_row,
            r.key,
            out.lead_id,
            out.action,
            out.campaign_id,
            zone_source,
            warnings,
            ambiguous=ambiguous,
            missing=out.action == "missing",
            window=window,
            extras="; ".join(out.extras),
        )


class _NoInput(Exception):
    """No input file of the run is readable: the run ends before any request (internal)."""


class _Run:
    """One run: :meth:`execute` calls the stages in turn (see the module docstring); what the
    stages return is passed on as arguments, and only the run's counts (:class:`RunStats`),
    the ledger, the report and the loader live here for the end to use."""

    def __init__(
        self,
        options: RunOptions,
        client: VoiptimeClient | None,
        cancel: Cancel,
        progress: Progress | None = None,
        pause: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.o = options
        self.clock = clock
        self.client = client
        self.cancel = cancel
        self.progress = progress or (lambda stage, rows: None)
        self.pause = pause
        started_at = (options.now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        self.stats = RunStats(clock(), started_at.replace(microsecond=0), clock=clock)
        self.folder_run = options.archive_dir is not None and options.command == "import"
        self.ledger: Ledger | None = None
        self.run_id: int | None = None
        self.fingerprints: dict[Path, str] = {}
        self.file_actions: dict[str, Counter[str]] = {}
        self.report: RunReport | None = None
        self.loader: Loader | None = None
        self.pool: ChunkPool | None = None
        self.dates: DateScan | None = None  # set when the sources are opened
        self.refs = References(None)  # what the summary names (the plan's, once it is made)
        self.calls: CallContext | None = None
        self.mapping_text = ""
        self.windows = WindowCounter()

    # --- the run --------------------------------------------------------------------------------

    def execute(self) -> RunResult:
        readers: Readers = []
        try:
            setup = read_setup(
                self.o.mapping,
                self.o.calling_window,
                self.o.operator_timezone,
                self.stats.started_at,
            )
            self.calls, self.mapping_text = setup.calls, setup.text
            self._lock(setup)  # before any input is read
            readers = self._open_sources(setup.mapping, self._ready_sources(list(self.o.sources)))
            plan = self._prepare(setup, readers)
            self._check_ledger(plan)
            self.report = report = RunReport.open(self.o.report_dir, plan, readers)
            self.pool = self._pool(plan, readers)
            gate = self._reject_rate(plan, readers)
            self.loader = self._loader(plan) if not gate else None
            self._check_files(plan, readers, report)
            self._enrol_leftovers()
            self._estimate()
            if self.loader is not None and self.loader.fatal is not None:
                raise self.loader.fatal
        except _NoInput:
            pass
        except EtlError as exc:
            self.stats.error = exc
            self.stats.codes.append(exc.exit_code)
        finally:
            self._close(readers)
        return self._end()

    def _lock(self, setup: Setup) -> None:
        """``import``: the ledger, its lock taken (read-only for a dry run) and the run
        recorded as started; bound to the API it belongs to."""
        if self.o.command != "import" or setup.broken is not None:
            return
        if self.o.dry_run:
            self.ledger = Ledger.open_readonly(self.o.state)
        else:
            self.ledger = Ledger.open(self.o.state, on_created=self.o.on_created)
            self.run_id = self.ledger.start_run(
                self.o.command,
                [str(p) for p in self.o.sources],
                self.stats.started_at.isoformat().replace("+00:00", "Z"),
            )
        if self.client is not None:
            self.ledger.bind_api(self.client.base_url)

    def _prepare(self, setup: Setup, readers: Readers) -> Plan:
        """The :class:`Plan`, or the one error listing every problem of the configuration."""
        scope = Scope(
            self.o.command,
            self.o.campaign,
            self.folder_run,
            self.o.chunk_rows,
            self._file_failed,
            self.dates,
        )
        if setup.broken is not None:
            raise every_problem(setup.broken, setup.mapping, readers, self.client, scope)
        if not readers and self.stats.file_errors:
            # No input is readable: no request is made. The report folder still says
            # which file failed and why (a nightly run's record), with no counts.
            self.report = RunReport.open(self.o.report_dir, None, readers)
            raise _NoInput
        plan = prepare(setup, readers, self.client, scope)
        self.refs = plan.refs
        return plan

    def _check_ledger(self, plan: Plan) -> None:
        """A ledger new to a project with contacts is refused (a dry run warns); a real run
        notes the server's counts for :meth:`_estimate`."""
        project = plan.listed.get("project")
        if self.ledger is None or project is None:
            return
        warning = check_new_ledger(
            self.ledger, project, dry_run=self.o.dry_run, new_ledger=self.o.new_ledger
        )
        if warning:
            log.warning("%s", warning)
            self.stats.warnings.append(warning)
        if not self.o.dry_run:
            record_baselines(self.ledger, project, plan.listed.get("campaign"))

    def _loader(self, plan: Plan) -> Loader | None:
        """``import``: the loader of the plan's project and campaign (none for validate)."""
        if self.ledger is None:
            return None
        project = plan.refs.project_id
        if project is None:  # resolve_references gives one whenever a client is set
            raise ConfigError("import needs the project's id: the names were not resolved")
        return Loader(
            self.client,
            self.ledger,
            project,
            plan.campaign_id,
            concurrency=self.o.concurrency,
            dry_run=self.o.dry_run,
            retry_ambiguous=self.o.retry_ambiguous,
            recreate_missing=self.o.recreate_missing,
            campaign_entries=plan.listed.get("campaign", {}).get("totalEntries"),
            cancel=self.cancel,
            overwrite=self.o.overwrite,
        )

    def _close(self, readers: Readers) -> None:
        if self.pool is not None:
            self.pool.close()
        for _, reader in readers:
            reader.close()
        if self.loader is not None:
            self.loader.close()

    def _stopped(self) -> bool:
        return self.cancel.is_set() or (self.loader is not None and self.loader.stopped)

    # --- the real pass --------------------------------------------------------------------------

    def _check_files(self, plan: Plan, readers: Readers, report: RunReport) -> None:
        """Every file in turn, chunk by chunk, until the run is stopped."""
        totals = [getattr(r, "rows_total", None) for _, r in readers]
        if totals and all(t is not None for t in totals):
            self.progress("total", sum(t or 0 for t in totals))
        with KeyTracker(plan.mapping.key) as keys:
            for path, reader in readers:
                if self._stopped():
                    break
                self._run_file(plan, path, reader, keys, report)

    def _pool(self, plan: Plan, readers: Readers) -> ChunkPool | None:
        """Worker processes for chunk checks when the input is large (``RunOptions.workers``),
        made before the ``--max-reject-rate`` pass so both passes use them."""
        workers = self.o.workers or (os.cpu_count() or 1)
        if workers < 2:
            return None
        if self.o.workers == 0:
            totals = [getattr(r, "rows_total", None) for _, r in readers]
            size = sum(t or 0 for t in totals)
            if None in totals or size < (self.o.pool_min_rows or POOL_MIN_ROWS):
                return None
        log.info("checking chunks in %d worker processes", workers)
        return ChunkPool(workers, plan)

    def _verdicts(self, plan: Plan, path: Path, reader: SourceReader) -> Iterator[ChunkVerdict]:
        """The verdict of each chunk of a file, in order (from the pool when there is one: a
        UTF-8 CSV's chunks are then read by the workers, at the places its structure pass
        noted, so this process parses the file once)."""
        if self.pool is not None:
            slices = reader.slices(self.o.chunk_rows)
            parts: Iterator[Chunk | CsvSlice]
            parts = iter(slices) if slices is not None else reader.chunks(self.o.chunk_rows)
            return self._timed(self.pool.verdicts(path, self._reading(parts)), "validate")
        chunks = self._reading(reader.chunks(self.o.chunk_rows))
        return self._timed(self._check_here(plan, path, chunks), "validate")

    def _check_here(
        self, plan: Plan, path: Path, chunks: Iterator[Chunk]
    ) -> Iterator[ChunkVerdict]:
        """Each chunk checked in this process."""
        for chunk in chunks:
            yield check_chunk(plan, path, chunk)

    def _timed(self, items: Iterator[_T], key: str) -> Iterator[_T]:
        """``items``, the time spent making each added to ``timings[key]`` (the time between
        two items, spent by the caller, is not)."""
        while True:
            started = self.clock()
            try:
                item = next(items)
            except StopIteration:
                return
            finally:
                self.stats.timings[key] += self.clock() - started
            yield item

    def _reading(self, chunks: Iterator[_Part]) -> Iterator[_Part]:
        """``chunks`` as read inside a verdict's time: the reading is taken back out of
        ``validate`` (it counts as the rest); each chunk is told to ``RunOptions.on_check``
        as it is given to be checked."""
        hook = self.o.on_check
        where = "pool" if self.pool is not None else "here"
        while True:
            started = self.clock()
            try:
                chunk = next(chunks)
                if hook is not None:
                    if isinstance(chunk, CsvSlice):
                        hook(where, chunk.rows)
                    else:
                        hook(where, len(chunk.frame) + len(chunk.problems))
            except StopIteration:
                return
            finally:
                self.stats.timings["validate"] -= self.clock() - started
            yield chunk

    def _run_file(
        self, plan: Plan, path: Path, reader: SourceReader, keys: KeyTracker, report: RunReport
    ) -> None:
        info = file_entry(path)
        self.stats.files.append(info)
        actions = self.file_actions.setdefault(str(path), Counter())
        try:
            for verdict in self._verdicts(plan, path, reader):
                rejected = self._run_chunk(plan, verdict, keys, report)
                self.progress("loaded", rejected)  # rows done without loading
                info["rows_read"] += verdict.rows_read
                info["rows_rejected"] += rejected
                if self._stopped():
                    break
        except InputError as exc:
            log.info("%s", exc)  # the CLI prints it once, from file_errors
            self.stats.file_failed(exc, info)
            return
        for action in ("created", "updated", "unchanged", "failed", "ambiguous"):
            info[f"leads_{action}"] = actions[action]
        self._file_done(path, info, actions)

    def _file_done(self, path: Path, info: dict[str, Any], actions: Counter[str]) -> None:
        """A file read to its end (or the run stopped): its result; a folder run archives it
        when every row is settled."""
        if self._stopped():
            info["result"] = "stopped"
            info["reason"] = "the run stopped before every row was done; it stays for the next run"
        elif not self.folder_run:
            info["result"] = "done"
        elif self.stats.gate:
            info["result"] = "left"
            info["reason"] = "nothing was sent (--max-reject-rate); it stays for the next run"
        elif actions["ambiguous"] or actions["failed"]:
            info["result"] = "left"
            info["reason"] = (
                f"{actions['ambiguous']} row(s) ambiguous, {actions['failed']} failed; it stays "
                "until they are settled (see `voiptime-etl state`)"
            )
        else:
            self._archive(path, info)

    def _run_chunk(
        self, plan: Plan, verdict: ChunkVerdict, keys: KeyTracker, report: RunReport
    ) -> int:
        """Count, report and load one checked chunk; returns its rows rejected."""
        read = verdict.rows_read
        self.stats.rows_read += read
        if verdict.frame.empty:
            self.progress("validated", read)
            report.rejects(verdict, None)
            self.stats.rows_rejected += len(verdict.problems)
            return len(verdict.problems)
        started = self.clock()
        dupes = find_duplicates(verdict, keys)
        self.stats.timings["validate"] += self.clock() - started
        self.progress("validated", read)
        self.stats.rows_duplicate += sum(1 for i in dupes.issues if i.check == "duplicate")
        report.rejects(verdict, dupes)
        rejected = len(verdict.problems) + len(dupes.by_row)
        self._count_valid(verdict, dupes.leads)
        rejected += self._load(plan, verdict, dupes.leads, report)
        self.stats.rows_rejected += rejected
        return rejected

    def _count_valid(self, verdict: ChunkVerdict, leads: LeadRows) -> None:
        """The summary's counts of the rows that load: zone sources, regions, warnings."""
        self.stats.zone_sources.update(filter(None, leads.zone_sources))
        sent = list(chain.from_iterable(leads.numbers))  # as sent: each number once a lead
        self.stats.phone_regions.update(regions_many(sent, known=verdict.regions))
        warned = [n for n, said in enumerate(leads.warnings) if said]
        self.stats.rows_warned += len(warned)
        if warned and log.isEnabledFor(logging.INFO):
            for n in warned:
                for warning in leads.warnings[n]:
                    log.info("%s row %d: %s", leads.source_file, leads.rows[n], warning.message)

    # --- loading --------------------------------------------------------------------------------

    def _load(self, plan: Plan, verdict: ChunkVerdict, leads: LeadRows, report: RunReport) -> int:
        """Send the lead records that load in batches (or, for validate, list them); returns
        rows rejected while loading (refused by the server, or a rejects file's duplicates)."""
        if self.stats.gate:
            return 0  # the data-quality gate closed: nothing is loaded
        windows = self.windows.add_many(leads.zones, plan.calls)
        if self.loader is None:  # validate: list the valid rows
            report.valid(leads, windows)
            return 0
        when = dict(zip(leads.rows, windows, strict=True))
        refused = 0
        for outcomes in self._send(self.loader, leads):
            for out in outcomes:
                refused += self._record(out, verdict.frame, when, report)
        return refused

    def _send(self, loader: Loader, rows: LeadRows) -> Iterator[list[Outcome]]:
        """The outcomes of each batch of ``batch_rows`` rows, until the loader stops."""
        size = self.o.batch_rows
        batches = [rows[start : start + size] for start in range(0, len(rows), size)]
        # the next batch is sent while one is enrolled and recorded (Loader.load_batches);
        # the time this process waits for the outcomes is the load's, not their recording
        for outcomes in self._timed(loader.load_batches(batches), "load"):
            yield outcomes
            self.progress("loaded", len(outcomes))

    def _record(
        self,
        out: Outcome,
        frame: pd.DataFrame,
        when: Mapping[int, LeadWindow],
        report: RunReport,
    ) -> int:
        """Count and report one outcome; returns 1 when the row counts as rejected."""
        r = out.row
        self.file_actions.setdefault(r.source_file, Counter())[
            "rejected" if out.rejected else out.action
        ] += 1
        if out.rejected:
            report.refused(out, frame, "api", out.message)
            return 1
        if out.action == "duplicate":
            log.warning("%s row %d: %s", r.source_file, r.source_row, out.message)
            self.stats.rows_duplicate += 1
            report.refused(out, frame, "key", out.message)
            return 1
        zone_source, warnings = r.zone_source, r.warnings
        if out.action == "conflict":
            log.warning("%s row %d: %s", r.source_file, r.source_row, out.message)
            warnings = (*_loader_note(out), *warnings)
            self.stats.add_conflict(_conflict(out))
        ambiguous = out.action == "ambiguous" or out.enrol_ambiguous or out.extras_ambiguous
        extras_failed = bool(out.message) and any(" failed" in e for e in out.extras)
        if out.action == "missing" or ambiguous or extras_failed:
            log.warning("%s row %d: %s", r.source_file, r.source_row, out.message)
        if out.action in ("ambiguous", "missing", "created") or ambiguous or extras_failed:
            warnings = (*_loader_note(out), *warnings)
        if out.action in ("created", "updated", "unchanged", "ambiguous", "conflict", "missing"):
            report.loaded(out, zone_source, warnings, ambiguous, when.get(r.source_row))
        return 0

    def _enrol_leftovers(self) -> None:
        """Enrol leads an earlier run created for this campaign but did not enrol."""
        loader = self.loader
        if loader is None or loader.stopped or loader.campaign_id is None or self.o.dry_run:
            return
        pending = loader.ledger.pending_enrolments(
            loader.project_id, loader.campaign_id, include_ambiguous=self.o.retry_ambiguous
        )
        if pending:
            log.info("enrolling %d lead(s) an earlier run created but did not enrol", len(pending))
            started = self.clock()
            loader.enrol(pending)
            self.stats.timings["load"] += self.clock() - started

    def _estimate(self) -> None:
        """When the ledger holds ambiguous sends, say how many probably reached the server."""
        loader = self.loader
        if loader is None or self.client is None or self.cancel.is_set() or loader.fatal:
            return
        try:
            found = estimate_ambiguity(
                self.client, loader.ledger, loader.project_id, loader.campaign_id
            )
        except ApiError as exc:
            log.warning("ambiguous sends cannot be estimated: %s", exc)
            return
        if found is not None:
            log.warning("%s", found.message())
            self.stats.ambiguity = found.as_dict()

    # --- the data-quality gate ------------------------------------------------------------------

    def _reject_rate(self, plan: Plan, readers: Readers) -> bool:
        """``--max-reject-rate`` (``import``): a first pass checks every chunk as the real pass
        does, sending and writing nothing; when more rows than the rate are rejected, the gate
        closes (:attr:`RunStats.gate`) and nothing is sent. Returns whether it closed."""
        limit = self.o.max_reject_rate
        if self.ledger is None or limit is None:
            return False
        read, rejected = self._count_rejects(plan, readers)
        rate = 100.0 * rejected / read if read else 0.0
        if rate <= limit:
            return False
        self.stats.gate = (
            f"{rejected} of {read} rows rejected ({rate:.1f}%), more than "
            f"--max-reject-rate {limit:g}%: nothing was sent; "
            "fix the rows in rejects.csv and run again"
        )
        return True

    def _count_rejects(self, plan: Plan, readers: Readers) -> tuple[int, int]:
        """``(rows read, rows rejected)`` of every file, as the real pass will find them (the
        verdicts are not kept: the real pass reads and checks every chunk again)."""
        read = rejected = 0
        with KeyTracker(plan.mapping.key) as keys:
            for path, reader in readers:
                try:
                    for verdict in self._verdicts(plan, path, reader):
                        read += verdict.rows_read
                        rejected += len(verdict.problems)
                        if not verdict.frame.empty:
                            started = self.clock()
                            rejected += len(find_duplicates(verdict, keys).by_row)
                            self.stats.timings["validate"] += self.clock() - started
                        if self.cancel.is_set():
                            return read, rejected
                except InputError:
                    continue  # reported by the real pass
        return read, rejected

    # --- folder runs ----------------------------------------------------------------------------

    def _ready_sources(self, sources: list[Path]) -> list[Path]:
        """A folder run's files to read: those still being written are left for the next run,
        and those whose rows an earlier run recorded (it died before moving them) are moved
        now without being read again. Any other run reads every source."""
        if not self.folder_run:
            return sources
        waiting = []
        for path in sources:
            if any(ch in str(path) for ch in "*?[") and not path.exists():
                log.warning("%s: no files match; nothing to import from it tonight", path)
            else:
                waiting.append(path)
        ready, left = select_ready(waiting, self.o.settle_seconds, self.pause)
        for path, reason in left:
            log.warning("%s: %s", path, reason)
            self.stats.files.append(file_entry(path, result="left", reason=reason))
        return [path for path in ready if not self._recorded_before(path)]

    def _recorded_before(self, path: Path) -> bool:
        """Whether an earlier run recorded every row of ``path`` (then it is archived now)."""
        try:
            self.fingerprints[path] = fingerprint(path)
        except OSError:
            return False  # missing or unreadable: the reader says so
        ledger = self.ledger
        earlier = None
        if ledger is not None and not ledger.readonly:
            earlier = ledger.file_recorded(self.fingerprints[path])
        if earlier is None:
            return False
        info = file_entry(path, reason=f"every row was recorded by run {earlier}; not read again")
        self.stats.files.append(info)
        self._archive(path, info)
        return True

    def _archive(self, path: Path, info: dict[str, Any]) -> None:
        """Move a file whose rows are all recorded into the archive of the run's date."""
        ledger = self.ledger
        archive_dir = self.o.archive_dir
        if self.o.dry_run or ledger is None or ledger.readonly or archive_dir is None:
            info["result"] = "would be archived"
            return
        fp = self.fingerprints[path]
        ledger.mark_file(fp, str(path), "recorded", self.run_id)
        if self.o.before_archive is not None:
            self.o.before_archive()
        try:
            target = archive_file(path, archive_dir / self.stats.started_at.strftime("%Y-%m-%d"))
        except EtlError as exc:
            log.info("%s", exc)  # the CLI prints it once, from file_errors
            self.stats.file_failed(exc, info)
            return
        ledger.mark_file(fp, str(path), "archived", self.run_id, str(target))
        info["result"] = "archived"
        info["archived_to"] = str(target)

    def _open_sources(self, mapping: LeadMapping, sources: list[Path]) -> Readers:
        """Open every source with the mapping's ``read:`` options (one of our rejects files
        with its own); a file that cannot be opened fails alone."""
        options = mapping.read
        readers = []
        self.dates = DateScan(mapping)  # the date columns, read while each file is checked
        for path in sources:
            try:
                found = rejects_read_options(path) or options
                readers.append((path, open_source(path, found, self.dates.watch(path))))
            except InputError as exc:
                self._file_failed(path, exc)
        return readers

    def _file_failed(self, path: Path, exc: EtlError) -> None:
        log.info("%s", exc)  # the CLI prints it once, from file_errors
        self.stats.files.append(file_entry(path, result="failed", error=str(exc)))
        self.stats.file_failed(exc)

    # --- the end --------------------------------------------------------------------------------

    def _end(self) -> RunResult:
        """The summary, the reports finished, the run recorded in the ledger, the ledger closed."""
        ledger = self.ledger
        try:
            result = self._finish()
            if ledger is not None and self.run_id is not None:
                try:
                    ledger.finish_run(self.run_id, result.summary.to_json())
                except EtlError as exc:
                    log.error("%s", exc)
            return result
        finally:
            if ledger is not None:
                ledger.close()

    def _finish(self) -> RunResult:
        stats = self.stats
        loaded = self.loader.stats if self.loader is not None else LoadStats()
        if loaded.failed or loaded.conflicts or stats.rows_rejected or stats.gate:
            stats.codes.append(EXIT_REJECTED)
        if loaded.ambiguous:
            stats.codes.append(EXIT_AMBIGUOUS)
        if stats.gate:
            stats.error = stats.error or EtlError(stats.gate)
        for info in stats.files:
            if not info["error"] and info["rows_read"] == 0 and stats.error is None:
                log.warning("%s: no data rows below the header", info["path"])
        order = {str(p): i for i, p in enumerate(self.o.sources)}
        stats.files.sort(key=lambda info: order.get(info["path"], len(order)))  # as given
        exit_code = combine_exit_codes(stats.codes)
        if self.cancel.is_set():
            exit_code = self.cancel.exit_code or 130
            stats.error = stats.error or EtlError("interrupted; rerun to finish the work")
        summary = stats.summary(self._run_keys(), self._lead_counts(loaded), exit_code)
        report = self.report
        if report is None:
            # Stopped by the configuration before any input was opened (a bad mapping or name,
            # no or a refused key, the lock): no report folder, the message is the whole story.
            return RunResult(summary, stats.error, stats.file_errors, False)
        errors = report.errors_by_field()
        try:
            summary = report.finish(summary, self.mapping_text)
        except EtlError as exc:
            stats.error = stats.error or exc
            exit_code = combine_exit_codes([*stats.codes, exc.exit_code])
            summary = dataclasses.replace(summary, errors_by_field=errors, exit_code=exit_code)
        if self.o.keep_reports is not None:
            prune_reports(Path(self.o.report_dir).parent, self.o.keep_reports)
        return RunResult(summary, stats.error, stats.file_errors)

    def _run_keys(self) -> dict[str, Any]:
        """The summary's keys that say what the run was (see :meth:`RunStats.summary`)."""
        keys: dict[str, Any] = {
            "command": self.o.command,
            "dry_run": self.o.dry_run,
            "sources": tuple(str(p) for p in self.o.sources),
            "mapping": str(self.o.mapping),
            "project_id": self.refs.project_id,
            "campaign_id": self.refs.campaign_id,
            "campaign_name": self.refs.campaign_name,
            "calling": self.windows.summary(self.calls),
            "archive_dir": str(self.o.archive_dir) if self.o.archive_dir is not None else None,
            "run_id": self.run_id,
            "max_reject_rate": self.o.max_reject_rate,
            "report_dir": Path(self.o.report_dir),
        }
        error = self.stats.error
        if isinstance(error, RateLimitedError) and error.retry_at is not None:
            keys["retry_after"] = error.retry_after
            keys["retry_at"] = format_time(error.retry_at)
        return keys

    def _lead_counts(self, loaded: LoadStats) -> dict[str, Any]:
        """The summary's counts of the loader (all 0 for validate)."""
        return {
            "leads_created": loaded.created,
            "leads_updated": loaded.updated,
            "leads_unchanged": loaded.unchanged,
            "leads_failed": loaded.failed,
            "leads_ambiguous": loaded.ambiguous,
            "leads_conflict": loaded.conflicts,
            "leads_missing": loaded.missing,
            "lead_id_conflicts": loaded.id_conflicts,
            "enrolments_mismatched": loaded.enrol_mismatched,
            "campaign_entries_added": loaded.campaign_entries_added,
            "tasks_created": loaded.tasks_created,
            "tasks_updated": loaded.tasks_updated,
            "notes_created": loaded.notes_created,
            "notes_updated": loaded.notes_updated,
            "enrolment_mismatches": tuple(self.loader.mismatches) if self.loader else (),
        }


#: The report's group of a warning the loader wrote (``Outcome.message``), by action.
_LOADER_KINDS = {
    "conflict": "conflict: the lead keeps another row's values; this row was not sent",
    "ambiguous": "ambiguous: the outcome of a request is unknown",
    "missing": "missing: the lead is no longer in the dialer",
}


def _loader_note(out: Outcome) -> tuple[Caveat, ...]:
    """The loader's message on a loaded row as a warning (none when it wrote none)."""
    if not out.message:
        return ()
    kind = _LOADER_KINDS.get(out.action, "loaded, with a note from the loader (see loaded.csv)")
    return (Caveat("load", kind, out.message, "" if out.lead_id is None else str(out.lead_id)),)


def _conflict(out: Outcome) -> dict[str, Any]:
    """A conflict as ``summary.json`` lists it."""
    r = out.row
    return {
        "key": r.key,
        "lead_id": out.lead_id,
        "row": {"file": r.source[0], "row": r.source[1]},
        "kept": {"file": out.kept[0], "row": out.kept[1]} if out.kept else None,
        "reason": out.message,
    }


def run(
    options: RunOptions,
    client_factory: Callable[[], VoiptimeClient] | None = None,
    cancel: Cancel | None = None,
    progress: Progress | None = None,
    pause: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RunResult:
    """Run ``validate`` or ``import`` over the sources.

    Args:
        options: what to run.
        client_factory: makes the API client, or ``None`` to run offline (``validate`` only).
        cancel: set it (from a signal handler) to stop: no new request starts, the ledger is
            committed, the reports are written, and the exit code is ``cancel.exit_code``.
        progress: called as the run goes (see :data:`Progress`), e.g. to draw progress bars.
        pause: waits between the two looks of a folder run (``options.archive_dir``) at its files
            (see :func:`etl.archive.select_ready`).
        clock: monotonic seconds for ``duration_seconds`` and ``timings`` (tests inject one).

    Returns:
        The :class:`RunResult`; the reports are written in ``options.report_dir``.
    """
    client = client_factory() if client_factory is not None else None
    try:
        return _Run(options, client, cancel or Cancel(), progress, pause, clock).execute()
    finally:
        if client is not None:
            client.close()
