"""One run: extract → map → normalise → validate → load → report, chunk by chunk.

:func:`run` is what the ``validate`` and ``import`` commands call. It reads every source in chunks
(memory is bounded by ``chunk_rows`` whatever the file's size), validates each chunk with the
schema built from the mapping, sends the valid rows through the :class:`~etl.load.Loader` in
batches of ``batch_rows``, and streams rejects and loaded rows into the report folder. It returns
a :class:`RunResult`; bad rows never raise, and a fatal error (a mapping error, a refused key, an
unreachable API) ends the run with its exit code after the reports are written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import multiprocessing
import os
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd

from etl import columns as col
from etl.archive import archive_file, fingerprint, select_ready
from etl.calls import CallContext, LeadWindow, WindowCounter, call_context
from etl.client import VoiptimeClient, format_time
from etl.errors import (
    EXIT_AMBIGUOUS,
    EXIT_REJECTED,
    ApiError,
    ConfigError,
    ConfigErrorGroup,
    EtlError,
    InputError,
    MappingError,
    RateLimitedError,
    combine_exit_codes,
)
from etl.extract import (
    EXCEL_SUFFIXES,
    Chunk,
    ReadOptions,
    SourceReader,
    open_source,
    original_headers,
    rejects_origins,
    rejects_read_options,
    unescape_rejects,
)
from etl.load import (
    Cancel,
    LeadRow,
    Loader,
    LoadStats,
    Outcome,
    check_new_ledger,
    estimate_ambiguity,
    record_baselines,
)
from etl.mapping import (
    Mapping,
    References,
    apply_mapping,
    load_mapping,
    resolve_columns,
)
from etl.normalize import DateOrder, reason_kind
from etl.payload import lead_payload, note_slots, task_bodies
from etl.phonefast import regions_many
from etl.references import find_references, offline_references, resolve_references
from etl.report import (
    ReportWriter,
    is_rejects_file,
    prune_reports,
)
from etl.state import Ledger
from etl.summary import RunStats, RunSummary, file_entry
from etl.validate import Issue, KeyTracker, ValidatedChunk, date_orders, validate_chunk

__all__ = [
    "POOL_MIN_ROWS",
    "Progress",
    "RunOptions",
    "RunResult",
    "check_chunk",
    "run",
]

log = logging.getLogger(__name__)


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
            finds it and nothing is sent (exit 3, reports written). Costs a second read.
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


#: Rows from which a run checks chunks in worker processes (``RunOptions.workers=0``).
POOL_MIN_ROWS = 50_000


def check_chunk(
    mapping: Mapping,
    columns: dict[str, str],
    frame: pd.DataFrame,
    *,
    require_phone: bool,
    source_file: str,
    date_orders: dict[str, DateOrder] | None = None,
    calls: CallContext | None = None,
    choices: dict[str, tuple[tuple[int, str], ...]] | None = None,
) -> ValidatedChunk:
    """Map, normalise and validate one chunk: a pure function of its arguments, so it runs as
    well in a worker process (the arguments and the result pickle). Duplicates span chunks and
    files, so the caller checks them (:class:`~etl.validate.KeyTracker`).

    Args:
        mapping: the checked mapping.
        columns: the file's columns for the mapping (:func:`etl.mapping.resolve_columns`).
        frame: the chunk's text cells, index = source row.
        require_phone: a campaign is set (see :func:`etl.validate.build_schema`).
        source_file: the file name for the issues.
        date_orders: the day/month order of each ambiguous date field, read from the whole
            file (:func:`etl.validate.date_orders`).
        calls: the run's time and calling window (callbacks, meetings, note times).
        choices: the project's statuses and sources a per-row column may name.
    """
    mapped = apply_mapping(mapping, frame, columns)
    return validate_chunk(
        mapped,
        mapping,
        require_phone=require_phone,
        source_file=source_file,
        date_orders=date_orders,
        calls=calls,
        choices=choices,
    )


def _start_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes from a fork server (a clean process: safe while this one runs threads)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["etl.pipeline"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


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


class _NoInput(Exception):
    """No input file of the run is readable: the run ends before any request (internal)."""


class _Run:
    """The state of one run; :func:`run` is its only user."""

    def __init__(
        self,
        options: RunOptions,
        client: VoiptimeClient | None,
        cancel: Cancel,
        progress: Progress | None = None,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self.o = options
        self.pause = pause
        self.ledger: Ledger | None = None
        self.run_id: int | None = None
        self.fingerprints: dict[Path, str] = {}
        self.file_actions: dict[str, Counter[str]] = {}
        self.client = client
        self.cancel = cancel
        self.progress = progress or (lambda stage, rows: None)
        started_at = (options.now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        self.stats = RunStats(time.monotonic(), started_at.replace(microsecond=0))
        self.when = format_time(self.stats.started_at)
        self.formula_optional: dict[Path, dict[str, str | None]] = {}
        self.report: ReportWriter | None = None
        self.loader: Loader | None = None
        self.refs = References(None)
        self.campaign_id: str | None = None
        self.mapping: Mapping | None = None
        self.mapping_text = ""
        self.pool: ProcessPoolExecutor | None = None
        self.pool_workers = 0
        self.date_orders: dict[str, DateOrder] = {}
        self.listed: dict[str, dict[str, Any]] = {}  # project, campaign as the API lists them
        self.calls: CallContext | None = None
        self.windows = WindowCounter()
        self.when_of: dict[int, LeadWindow] = {}

    # --- the run --------------------------------------------------------------------------------

    def execute(self) -> RunResult:
        readers: list[tuple[Path, SourceReader]] = []
        ledger: Ledger | None = None
        structural: MappingError | None = None
        try:
            try:
                self.mapping = load_mapping(self.o.mapping)
            except MappingError as exc:
                if not isinstance(exc.partial, Mapping):  # not YAML, not a mapping of keys
                    raise
                # Check the columns and names of what did parse too, so the one message
                # lists every problem; nothing is read or sent.
                self.mapping, structural = exc.partial, exc
            assert self.mapping is not None
            self.mapping_text = Path(self.o.mapping).read_text(encoding="utf-8-sig")
            self.calls = call_context(
                self.o.calling_window or self.mapping.calling_window,
                self.o.operator_timezone,
                self.stats.started_at,
            )
            if self.o.command == "import" and structural is None:  # the lock first
                if self.o.dry_run:
                    ledger = Ledger.open_readonly(self.o.state)
                else:
                    ledger = Ledger.open(self.o.state, on_created=self.o.on_created)
                    self.run_id = ledger.start_run(
                        self.o.command,
                        [str(p) for p in self.o.sources],
                        self.stats.started_at.isoformat().replace("+00:00", "Z"),
                    )
                self.ledger = ledger
            if ledger is not None and self.client is not None:
                ledger.bind_api(self.client.base_url)
            sources = list(self.o.sources)
            if self.o.archive_dir is not None and self.o.command == "import":
                sources = self._ready_sources(sources)
            readers = self._open_sources(sources)
            if structural is not None:
                self._check_all(readers, structural)
            if not readers and self.stats.file_errors:
                # No input is readable: no request is made. The report folder still says
                # which file failed and why (a nightly run's record), with no counts.
                self.report = ReportWriter(self.o.report_dir, [])
                raise _NoInput
            self._check_setup(readers)
            self.date_orders = self._date_orders(readers)
            if ledger is not None and "project" in self.listed:
                self._check_ledger(ledger)
            self.report = ReportWriter(
                self.o.report_dir,
                _union_headers(r for _, r in readers),
                xlsx=any(p.suffix.lower() in EXCEL_SUFFIXES for p, _ in readers),
                lead_columns=[
                    spec.column if (spec := self.mapping.fields.get(f)) else ""
                    for f in ("name", "surname", "email")
                ],
            )
            gated = False
            if ledger is not None and self.o.max_reject_rate is not None:
                read, rejected = self._reject_rate(readers)
                rate = 100.0 * rejected / read if read else 0.0
                if rate > self.o.max_reject_rate:
                    self.stats.gate = (
                        f"{rejected} of {read} rows rejected ({rate:.1f}%), more than "
                        f"--max-reject-rate {self.o.max_reject_rate:g}%: nothing was sent; "
                        "fix the rows in rejects.csv and run again"
                    )
                    gated = True
            if ledger is not None and not gated:
                assert self.refs.project_id is not None
                self.loader = Loader(
                    self.client,
                    ledger,
                    self.refs.project_id,
                    self.campaign_id,
                    concurrency=self.o.concurrency,
                    dry_run=self.o.dry_run,
                    retry_ambiguous=self.o.retry_ambiguous,
                    recreate_missing=self.o.recreate_missing,
                    campaign_entries=self.listed.get("campaign", {}).get("totalEntries"),
                    cancel=self.cancel,
                    overwrite=self.o.overwrite,
                )
            totals = [getattr(r, "rows_total", None) for _, r in readers]
            if totals and all(t is not None for t in totals):
                self.progress("total", sum(t or 0 for t in totals))
            self.pool = self._pool(totals)
            with KeyTracker(self.mapping.key) as keys:
                for path, reader in readers:
                    if self.cancel.is_set() or (self.loader is not None and self.loader.stopped):
                        break
                    self._run_file(path, reader, keys)
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
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)
            for _, reader in readers:
                reader.close()
            if self.loader is not None:
                self.loader.close()
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

    def _check_ledger(self, ledger: Ledger) -> None:
        """A ledger new to a project with contacts is refused (a dry run warns); a real run
        notes the server's counts for :meth:`_estimate`."""
        warning = check_new_ledger(
            ledger, self.listed["project"], dry_run=self.o.dry_run, new_ledger=self.o.new_ledger
        )
        if warning:
            log.warning("%s", warning)
            self.stats.warnings.append(warning)
        if not self.o.dry_run:
            record_baselines(ledger, self.listed["project"], self.listed.get("campaign"))

    def _estimate(self) -> None:
        """When the ledger holds ambiguous sends, say how many probably reached the server."""
        loader = self.loader
        if loader is None or self.client is None or self.cancel.is_set() or loader.fatal:
            return
        assert self.refs.project_id is not None
        try:
            found = estimate_ambiguity(
                self.client, loader.ledger, self.refs.project_id, self.campaign_id
            )
        except ApiError as exc:
            log.warning("ambiguous sends cannot be estimated: %s", exc)
            return
        if found is not None:
            log.warning("%s", found.message())
            self.stats.ambiguity = found.as_dict()

    # --- folder runs ----------------------------------------------------------------------------

    def _ready_sources(self, sources: list[Path]) -> list[Path]:
        """A folder run's files to read: those still being written are left for the next run,
        and those whose rows an earlier run recorded (it died before moving them) are moved
        now without being read again."""
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
        out: list[Path] = []
        for path in ready:
            try:
                self.fingerprints[path] = fingerprint(path)
            except OSError:
                out.append(path)  # missing or unreadable: the reader says so
                continue
            ledger = self.ledger
            earlier = None
            if ledger is not None and not ledger.readonly:
                earlier = ledger.file_recorded(self.fingerprints[path])
            if earlier is None:
                out.append(path)
                continue
            info = file_entry(
                path, reason=f"every row was recorded by run {earlier}; not read again"
            )
            self.stats.files.append(info)
            self._archive(path, info)
        return out

    def _archive(self, path: Path, info: dict[str, Any]) -> None:
        """Move a file whose rows are all recorded into the archive of the run's date."""
        assert self.o.archive_dir is not None
        ledger = self.ledger
        if self.o.dry_run or ledger is None or ledger.readonly:
            info["result"] = "would be archived"
            return
        fp = self.fingerprints[path]
        ledger.mark_file(fp, str(path), "recorded", self.run_id)
        if self.o.before_archive is not None:
            self.o.before_archive()
        try:
            day = self.stats.started_at.strftime("%Y-%m-%d")
            target = archive_file(path, self.o.archive_dir / day)
        except EtlError as exc:
            log.info("%s", exc)  # the CLI prints it once, from file_errors
            self.stats.file_failed(exc, info)
            return
        ledger.mark_file(fp, str(path), "archived", self.run_id, str(target))
        info["result"] = "archived"
        info["archived_to"] = str(target)

    def _pool(self, totals: list[int | None]) -> ProcessPoolExecutor | None:
        """Worker processes for chunk checks when the input is large (``RunOptions.workers``)."""
        workers = self.o.workers or (os.cpu_count() or 1)
        if workers < 2:
            return None
        if self.o.workers == 0:
            size = sum(t or 0 for t in totals)
            if None in totals or size < (self.o.pool_min_rows or POOL_MIN_ROWS):
                return None
        log.info("checking chunks in %d worker processes", workers)
        self.pool_workers = workers
        return _start_pool(workers)

    def _checked(
        self, name: str, chunks: Iterable[tuple[Chunk, dict[int, tuple[str, int]]]]
    ) -> Iterator[
        tuple[
            Chunk,
            dict[int, tuple[str, int]],
            dict[int, str],
            dict[int, list[str]],
            ValidatedChunk | None,
        ]
    ]:
        """Each chunk with its reader-refused rows folded in (:func:`_fold_problems`), and, with a
        pool, its check done in a worker: up to two chunks per worker ahead of the one this
        process handles, so memory stays bounded by a few chunks. In file order."""
        assert self.mapping is not None
        optional = self.formula_optional[Path(name)]
        if self.pool is None:
            for chunk, origins in chunks:
                folded, forced, notes = _fold_problems(chunk, optional)
                yield folded, origins, forced, notes, None
            return
        ahead = 2 * self.pool_workers
        window: deque[Any] = deque()
        for chunk, origins in chunks:
            folded, forced, notes = _fold_problems(chunk, optional)
            future = None
            if not folded.frame.empty:
                future = self.pool.submit(
                    check_chunk,
                    self.mapping,
                    self.columns[Path(name)],
                    folded.frame,
                    require_phone=self.campaign_id is not None,
                    source_file=name,
                    date_orders=self.date_orders,
                    calls=self.calls,
                    choices=self.refs.choices,
                )
            window.append((folded, origins, forced, notes, future))
            if len(window) > ahead:
                done, where, why, said, pending = window.popleft()
                yield done, where, why, said, pending.result() if pending is not None else None
        while window:
            done, where, why, said, pending = window.popleft()
            yield done, where, why, said, pending.result() if pending is not None else None

    def _open_sources(self, sources: list[Path]) -> list[tuple[Path, SourceReader]]:
        assert self.mapping is not None
        read = self.mapping.read
        options = ReadOptions(
            sheet=read.sheet,
            header_row=read.header_row,
            encoding=read.encoding,
            delimiter=read.delimiter,
            max_field_lines=read.max_field_lines,
            max_field_chars=read.max_field_chars,
        )
        readers = []
        for path in sources:
            try:
                readers.append((path, open_source(path, rejects_read_options(path) or options)))
            except InputError as exc:
                self._file_failed(path, exc)
        return readers

    def _file_failed(self, path: Path, exc: EtlError) -> None:
        log.info("%s", exc)  # the CLI prints it once, from file_errors
        self.stats.files.append(file_entry(path, result="failed", error=str(exc)))
        self.stats.file_failed(exc)

    def _check_columns(self, readers: list[tuple[Path, SourceReader]]) -> None:
        """Every mapped column must be in every file: all problems of all files at once."""
        assert self.mapping is not None
        problems: list[str] = []
        self.columns: dict[Path, dict[str, str]] = {}
        for path, reader in list(readers):
            try:
                where = f"{path} (header read on row {reader.header_row})"
                self.columns[path] = resolve_columns(self.mapping, original_headers(reader), where)
                self.formula_optional[path] = _formula_optional(
                    self.mapping, reader.headers, self.columns[path]
                )
            except MappingError as exc:
                if self.o.archive_dir is not None and self.o.command == "import":
                    # a folder run goes on with the other files; this one stays in the inbox
                    self._file_failed(path, exc)
                    readers.remove((path, reader))
                    reader.close()
                    continue
                problems += exc.problems
        campaign = self.o.campaign if self.o.campaign is not None else self.mapping.campaign
        if campaign is not None and not self.mapping.phones:
            problems.append(
                "phones: a campaign is set, so each lead needs a phone; map a phone column"
            )
        if problems:
            raise MappingError(self.mapping.path, problems)

    def _check_setup(self, readers: list[tuple[Path, SourceReader]]) -> None:
        """Columns and names together, so one run reports every configuration problem.

        Missing columns and unknown names are one :class:`MappingError` (one count, one list,
        each line with its key path); another configuration error (no API key) follows it.
        """
        try:
            self._check_columns(readers)
        except MappingError as columns:
            assert self.mapping is not None
            unknown = self._unknown_names(self.mapping) if self.client is not None else []
            if unknown:
                raise MappingError(columns.path, columns.problems + unknown) from None
            try:
                self._resolve()
            except ConfigError as names:
                raise ConfigErrorGroup([columns, names]) from None
            raise
        self._resolve()

    def _unknown_names(self, mapping: Mapping) -> list[str]:
        """The mapping's unknown project, status, source and campaign, one line each with the
        key (or ``--campaign``) that names them. API errors propagate."""
        assert self.client is not None
        campaign = self.o.campaign if self.o.campaign is not None else mapping.campaign
        _, unknown = find_references(self.client, mapping, campaign)
        return [
            f"{'--campaign' if err.kind == 'campaign' and self.o.campaign else err.kind}: {err}"
            for err in unknown
        ]

    def _check_all(
        self, readers: list[tuple[Path, SourceReader]], structural: MappingError
    ) -> NoReturn:
        """A mapping with structural problems: add every missing column and unknown name of
        what did parse, and raise them all as one :class:`MappingError`."""
        assert self.mapping is not None
        problems = list(structural.problems)
        try:
            self._check_columns(readers)
        except MappingError as columns:
            problems += columns.problems
        # Names whose own key has a problem are left out (the problem says it already).
        broken = {re.split(r"[.\[: ]", p, maxsplit=1)[0] for p in structural.problems}
        mapping = dataclasses.replace(
            self.mapping,
            status=None if "status" in broken else self.mapping.status,
            source=None if "source" in broken else self.mapping.source,
            campaign=None if "campaign" in broken else self.mapping.campaign,
        )
        if self.client is not None and mapping.project != "" and "project" not in broken:
            try:
                problems += self._unknown_names(mapping)
            except EtlError as exc:  # the API itself failed: say so, after the problems
                problems.append(f"(names not checked: {exc})")
        raise MappingError(structural.path, problems)

    def _resolve(self) -> None:
        assert self.mapping is not None
        campaign = self.o.campaign if self.o.campaign is not None else self.mapping.campaign
        if self.client is None:
            if self.o.command == "import":
                raise ConfigError(
                    "No API key: set VOIPTIME_API_KEY or pass --api-key-file (import needs one; "
                    "validate runs offline without it)."
                )
            self.refs = offline_references(self.mapping, campaign)
        else:
            self.refs = resolve_references(self.client, self.mapping, campaign, self.listed)
        self.campaign_id = self.refs.campaign_id

    def _run_file(self, path: Path, reader: SourceReader, keys: KeyTracker) -> None:
        assert self.mapping is not None and self.report is not None
        name = str(path)
        info = file_entry(path)
        self.stats.files.append(info)
        actions = self.file_actions.setdefault(name, Counter())
        rejects_file = is_rejects_file(reader.headers)

        def source() -> Iterator[tuple[Chunk, dict[int, tuple[str, int]]]]:
            for chunk in reader.chunks(self.o.chunk_rows):
                if rejects_file:
                    yield unescape_rejects(chunk), rejects_origins(chunk)
                else:
                    yield chunk, {}

        try:
            for chunk, origins, forced, notes, verdict in self._checked(name, source()):
                read, rejected = self._run_chunk(name, chunk, keys, origins, forced, notes, verdict)
                self.progress("loaded", rejected)  # rows done without loading
                info["rows_read"] += read
                info["rows_rejected"] += rejected
                if self.cancel.is_set() or (self.loader is not None and self.loader.stopped):
                    break
        except InputError as exc:
            log.info("%s", exc)  # the CLI prints it once, from file_errors
            self.stats.file_failed(exc, info)
            return
        for action in ("created", "updated", "unchanged", "failed", "ambiguous"):
            info[f"leads_{action}"] = actions[action]
        stopped = self.cancel.is_set() or (self.loader is not None and self.loader.stopped)
        if stopped:
            info["result"] = "stopped"
            info["reason"] = "the run stopped before every row was done; it stays for the next run"
        elif self.o.archive_dir is None or self.o.command != "import":
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

    def _check(
        self,
        name: str,
        chunk: Chunk,
        keys: KeyTracker,
        forced: dict[int, str] | None = None,
        notes: dict[int, list[str]] | None = None,
        verdict: ValidatedChunk | None = None,
    ) -> tuple[ValidatedChunk, pd.Series, list[Issue], dict[int, list[Issue]]]:
        """Map and validate one chunk; duplicates against ``keys``.

        Args:
            forced: rows already refused by the reader (a formula without a value), with the
                reason; they are validated too, so ``_errors`` gives every reason, but never load.
            notes: warnings of rows that load without an optional column's formula.
            verdict: :func:`check_chunk` of the chunk when a worker did it already.

        Returns:
            ``(result, keys of the valid rows, duplicate issues, issues by source row)``.
        """
        assert self.mapping is not None
        result = verdict or check_chunk(
            self.mapping,
            self.columns[Path(name)],
            chunk.frame,
            require_phone=self.campaign_id is not None,
            source_file=name,
            date_orders=self.date_orders,
            calls=self.calls,
            choices=self.refs.choices,
        )
        if forced:
            moved = result.valid.index.isin(list(forced))
            parts = [p for p in (result.rejected, result.valid[moved]) if p is not None]
            result.rejected = pd.concat(parts) if parts else None
            result.valid = result.valid[~moved]
            result.issues += [
                Issue(name, row, "row", "", "invalid", "", message)
                for row, message in forced.items()
            ]
        for row, messages in (notes or {}).items():
            if messages and row in result.valid.index:
                result.warnings[row] = (*messages, *result.warnings.get(row, ()))
        row_keys, dupes = keys.check(result.valid, name)
        if result.rejected is not None and not result.rejected.empty:
            dupes += keys.peek(result.rejected, name)
        issues: dict[int, list[Issue]] = {}
        for issue in [*result.issues, *dupes]:
            issues.setdefault(issue.source_row, []).append(issue)
        return result, row_keys, dupes, issues

    def _date_orders(self, readers: list[tuple[Path, SourceReader]]) -> dict[str, DateOrder]:
        """A first pass over the date columns only (when the mapping has ``type: date``
        fields): each column's order of year-last dates, decided over every file of the run
        (:func:`etl.validate.date_orders`). Costs one more read of the files that have them."""
        assert self.mapping is not None
        dates = {n: s.column for n, s in self.mapping.dynamic.items() if s.type == "date"}
        if not dates:
            return {}

        def cells() -> Any:
            for path, reader in readers:
                columns = self.columns[path]
                rejects_file = is_rejects_file(reader.headers)
                try:
                    for chunk in reader.chunks(self.o.chunk_rows):
                        if rejects_file:
                            chunk = unescape_rejects(chunk)
                        for name, column in dates.items():
                            values = chunk.frame[columns[column]]
                            for row, cell in values.items():
                                yield name, str(path), int(row), cell
                except InputError:
                    continue  # reported by the real pass

        return date_orders(self.mapping, cells())

    def _reject_rate(self, readers: list[tuple[Path, SourceReader]]) -> tuple[int, int]:
        """A first pass for ``--max-reject-rate``: ``(rows read, rows rejected)``, sending and
        writing nothing."""
        assert self.mapping is not None
        read = rejected = 0
        with KeyTracker(self.mapping.key) as keys:
            for path, reader in readers:
                rejects_file = is_rejects_file(reader.headers)
                try:
                    for chunk in reader.chunks(self.o.chunk_rows):
                        if rejects_file:
                            chunk = unescape_rejects(chunk)
                        read += len(chunk.frame) + len(chunk.problems)
                        chunk, forced, notes = _fold_problems(chunk, self.formula_optional[path])
                        rejected += len(chunk.problems)
                        if not chunk.frame.empty:
                            rejected += len(self._check(str(path), chunk, keys, forced, notes)[3])
                        if self.cancel.is_set():
                            return read, rejected
                except InputError:
                    continue  # reported by the real pass
        return read, rejected

    def _run_chunk(
        self,
        name: str,
        chunk: Chunk,
        keys: KeyTracker,
        origins: dict[int, tuple[str, int]],
        forced: dict[int, str],
        notes: dict[int, list[str]],
        verdict: ValidatedChunk | None = None,
    ) -> tuple[int, int]:
        """Check (unless ``verdict`` is given), report and load one chunk whose reader-refused
        rows are folded in already (:func:`_fold_problems`); returns ``(rows read, rows
        rejected)``."""
        assert self.mapping is not None and self.report is not None
        read = len(chunk.frame) + len(chunk.problems)
        frame = chunk.frame
        self.stats.rows_read += read
        rejected = len(chunk.problems)
        if frame.empty:
            self.progress("validated", read)
            for problem in chunk.problems:
                self.report.reject(
                    name,
                    problem.row,
                    problem.values,
                    [("row", "", f"row: {problem.message}", problem.kind)],
                )
            self.stats.rows_rejected += rejected
            return read, rejected
        started = time.monotonic()
        result, row_keys, dupes, issues = self._check(name, chunk, keys, forced, notes, verdict)
        self.stats.timings["validate"] += time.monotonic() - started
        self.progress("validated", read)
        self.stats.rows_duplicate += sum(1 for i in dupes if i.check == "duplicate")
        unsplit = {p.row: p for p in chunk.problems}
        for row in sorted([*issues, *unsplit]):  # rejects.csv in row order
            if row in unsplit:
                problem = unsplit[row]
                self.report.reject(
                    name,
                    row,
                    problem.values,
                    [("row", "", f"row: {problem.message}", problem.kind)],
                )
            else:
                self.report.reject(
                    name,
                    row,
                    frame.loc[row].to_dict(),
                    [(i.field, i.value, i.describe(), i.kind) for i in issues[row]],
                )
        rejected += len(issues)
        dupe_rows = {i.source_row for i in dupes}
        valid = result.valid.loc[[r not in dupe_rows for r in result.valid.index]]
        self.stats.zone_sources.update(s for s in valid[col.TIMEZONE_SOURCE] if s)
        phone_cols = col.phone_columns(valid.columns)
        sent = [  # as sent: each number once a lead
            n
            for cells in zip(*(valid[c] for c in phone_cols), strict=True)
            for n in {n for cell in cells if isinstance(cell, tuple) for n in cell}
        ]
        self.stats.phone_regions.update(regions_many(sent))
        for row, messages in result.warnings.items():
            if row not in dupe_rows:
                self.stats.rows_warned += 1
                for message in messages:
                    log.info("%s row %d: %s", name, row, message)
        rejected += self._load(name, frame, valid, row_keys, result.warnings, origins)
        self.stats.rows_rejected += rejected
        return read, rejected

    def _load(
        self,
        name: str,
        frame: pd.DataFrame,
        valid: pd.DataFrame,
        keys: pd.Series,
        warnings: dict[int, tuple[str, ...]],
        origins: dict[int, tuple[str, int]],
    ) -> int:
        """Send valid rows in batches (or, for validate, list them); returns rows rejected
        while loading (refused by the server, or a rejects file's duplicates)."""
        assert self.mapping is not None and self.report is not None
        if self.stats.gate:
            return 0  # the data-quality gate closed: nothing is loaded
        assert self.calls is not None
        notes = {
            int(row): (src or "", "; ".join(warnings.get(int(row), ())))
            for row, src in valid[col.TIMEZONE_SOURCE].items()
        }
        self.when_of = {
            int(row): self.windows.add(zone, self.calls)
            for row, zone in valid["timezoneId"].items()
        }
        if self.loader is None:  # validate: list the valid rows, build no payloads
            for row, key in keys.items():
                if int(row) in notes:
                    self.report.loaded(
                        name,
                        int(row),
                        key,
                        None,
                        "valid",
                        "",
                        *notes[int(row)],
                        window=self.when_of[int(row)],
                    )
            return 0
        rows = []
        for idx, rec in zip(valid.index, valid.to_dict("records"), strict=True):
            payload = lead_payload(rec, self.mapping, self.refs, self.when)
            rows.append(
                LeadRow(
                    name,
                    int(idx),
                    keys.at[idx],
                    payload,
                    origins.get(int(idx)),
                    tasks=task_bodies(rec, self.mapping, payload),
                    notes=note_slots(rec, self.mapping, payload),
                )
            )
        refused = 0
        size = self.o.batch_rows
        batches = [rows[start : start + size] for start in range(0, len(rows), size)]
        started = time.monotonic()
        # the next batch is sent while one is enrolled and recorded (Loader.load_batches)
        for outcomes in self.loader.load_batches(batches):
            for out in outcomes:
                refused += self._record(out, frame, notes)
            self.progress("loaded", len(outcomes))
        self.stats.timings["load"] += time.monotonic() - started
        return refused

    def _record(self, out: Outcome, frame: pd.DataFrame, notes: dict[int, tuple[str, str]]) -> int:
        assert self.report is not None
        r = out.row
        self.file_actions.setdefault(r.source_file, Counter())[
            "rejected" if out.rejected else out.action
        ] += 1
        if out.rejected:
            self.report.reject(
                r.source_file,
                r.source_row,
                frame.loc[r.source_row].to_dict(),
                [("api", "", f"api: {out.message}", reason_kind(out.message))],
            )
            return 1
        if out.action == "duplicate":
            log.warning("%s row %d: %s", r.source_file, r.source_row, out.message)
            self.stats.rows_duplicate += 1
            self.report.reject(
                r.source_file,
                r.source_row,
                frame.loc[r.source_row].to_dict(),
                [("key", r.key, f"key: {out.message}", "duplicate")],
            )
            return 1
        zone_source, warnings = notes[r.source_row]
        if out.action == "conflict":
            log.warning("%s row %d: %s", r.source_file, r.source_row, out.message)
            warnings = "; ".join(w for w in (out.message, warnings) if w)
            self.stats.add_conflict(
                {
                    "key": r.key,
                    "lead_id": out.lead_id,
                    "row": {"file": r.source[0], "row": r.source[1]},
                    "kept": {"file": out.kept[0], "row": out.kept[1]} if out.kept else None,
                    "reason": out.message,
                }
            )
        ambiguous = out.action == "ambiguous" or out.enrol_ambiguous or out.extras_ambiguous
        extras_failed = bool(out.message) and any(" failed" in e for e in out.extras)
        if out.action == "missing" or ambiguous or extras_failed:
            log.warning("%s row %d: %s", r.source_file, r.source_row, out.message)
        if out.action in ("ambiguous", "missing", "created") or ambiguous or extras_failed:
            warnings = "; ".join(w for w in (out.message, warnings) if w)
        if out.action in ("created", "updated", "unchanged", "ambiguous", "conflict", "missing"):
            self.report.loaded(
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
                window=self.when_of.get(r.source_row),
                extras="; ".join(out.extras),
            )
        return 0

    def _enrol_leftovers(self) -> None:
        """Enrol leads an earlier run created for this campaign but did not enrol."""
        if self.loader is None or self.loader.stopped or self.campaign_id is None or self.o.dry_run:
            return
        assert self.refs.project_id is not None
        pending = self.loader.ledger.pending_enrolments(
            self.refs.project_id, self.campaign_id, include_ambiguous=self.o.retry_ambiguous
        )
        if pending:
            log.info("enrolling %d lead(s) an earlier run created but did not enrol", len(pending))
            self.loader.enrol(pending)

    # --- the end --------------------------------------------------------------------------------

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
        summary = dataclasses.replace(
            summary, errors_by_field=dict(sorted(report.errors_by_field.items()))
        )
        try:
            report.finish(summary.to_json(), self.mapping_text)
        except EtlError as exc:
            stats.error = stats.error or exc
            exit_code = combine_exit_codes([*stats.codes, exc.exit_code])
            summary = dataclasses.replace(summary, exit_code=exit_code)
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
            "campaign_id": self.campaign_id,
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


def _fold_problems(
    chunk: Chunk, optional: dict[str, str | None]
) -> tuple[Chunk, dict[int, str], dict[int, list[str]]]:
    """Put rows the reader refused but could split into the header's fields (a formula without
    a saved value) back into the frame, so their other faults are found too.

    Args:
        optional: headers whose formula without a saved value is left out (the cell stays
            empty) rather than refusing the row: header → the field it feeds for the warning,
            or ``None`` for a column the mapping does not use (left out without a word).

    Returns:
        The new chunk (ragged rows stay problems), the reasons of rows that must not load (a
        formula in a column a required field, a phone or the key needs), and the warnings of
        rows that load without their optional columns' formulas.
    """
    width = len(chunk.frame.columns)
    whole = [p for p in chunk.problems if len(p.values) == width]
    if not whole:
        return chunk, {}, {}
    extra = pd.DataFrame(
        [list(p.values) for p in whole],
        index=pd.Index([p.row for p in whole], name=chunk.frame.index.name),
        columns=chunk.frame.columns,
        dtype=object,
    )
    frame = pd.concat([chunk.frame, extra]).sort_index()
    rest = [p for p in chunk.problems if len(p.values) != width]
    forced: dict[int, str] = {}
    notes: dict[int, list[str]] = {}
    for p in whole:
        if p.formula_columns and all(c in optional for c in p.formula_columns):
            notes[p.row] = [
                f"{optional[c]} ({c}): a formula without a saved value, left out (the file "
                "was saved by a program that does not compute formulas: open and save it in "
                "Excel to keep the result)"
                for c in p.formula_columns
                if optional[c] is not None
            ]
        else:  # name only the columns the mapping uses (one part per column, in order)
            parts = p.message.split("; ")
            if len(parts) == len(p.formula_columns):
                parts = [
                    m
                    for m, c in zip(parts, p.formula_columns, strict=True)
                    if c not in optional or optional[c] is not None
                ]
            forced[p.row] = "; ".join(parts)
    return Chunk(frame=frame, problems=rest), forced, notes


def _formula_optional(
    mapping: Mapping, headers: Sequence[str], columns: dict[str, str]
) -> dict[str, str | None]:
    """The headers whose formula without a saved value leaves that field out (with a warning)
    instead of refusing the row: columns only of comments or of ``dynamicData`` fields that are
    not part of the key (→ the field, for the warning), and columns the mapping does not use
    (→ ``None``). A column of a lead field, a phone, the region or the key is not among them."""
    needed: set[str] = set()
    labels: dict[str, str] = {}
    for where, column in mapping.columns():
        header = columns.get(column, column)
        dynamic = where.split(".", 1)[1] if where.startswith("dynamicData.") else None
        if where.startswith("comments[") or (dynamic is not None and dynamic not in mapping.key):
            labels.setdefault(header, where.removesuffix(".column"))
        else:
            needed.add(header)
    return {h: labels.get(h) for h in headers if h not in needed}


def _union_headers(readers: Any) -> list[str]:
    """The run's columns for rejects.csv: every file's headers, first spelling wins among those
    that match after trimming and case-folding (as the mapping matches them)."""
    out: list[str] = []
    seen: set[str] = set()
    for reader in readers:
        for h in original_headers(reader):
            if h.strip().casefold() not in seen:
                seen.add(h.strip().casefold())
                out.append(h)
    return out


def run(
    options: RunOptions,
    client_factory: Callable[[], VoiptimeClient] | None = None,
    cancel: Cancel | None = None,
    progress: Progress | None = None,
    pause: Callable[[float], None] = time.sleep,
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

    Returns:
        The :class:`RunResult`; the reports are written in ``options.report_dir``.
    """
    client = client_factory() if client_factory is not None else None
    try:
        return _Run(options, client, cancel or Cancel(), progress, pause).execute()
    finally:
        if client is not None:
            client.close()
