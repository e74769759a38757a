"""The second stage of a run: one chunk checked against the :class:`~etl.plan.Plan`.

:func:`check_chunk` shapes, normalises and validates a chunk of one input file and returns a
frozen :class:`ChunkVerdict`: the valid rows as lead records (:class:`etl.payload.LeadRow`: key,
``POST /leads`` body, tasks, notes, warnings), every issue of every other row. It is a pure
function of the plan and the chunk, so the ``--max-reject-rate`` pass and the real pass share it
and a :class:`ChunkPool` runs it in worker processes (the per-row work of building the bodies
with it). Duplicate keys span chunks and files, so the caller finds them with
:func:`find_duplicates` in file order.
"""

from __future__ import annotations

import gc
import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import pickle
import queue
import signal
import threading
import traceback
from collections import deque
from collections.abc import Iterable, Iterator
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import NoReturn

import pandas as pd

from etl.errors import WorkerError
from etl.extract import Chunk, CsvSlice, RowProblem, rejects_origins, unescape_rejects
from etl.payload import LeadRows, lead_rows
from etl.plan import Plan
from etl.shape import apply_mapping
from etl.validate import Issue, KeyTracker, lead_keys, rejected_keys, validate_chunk
from etl.values import Caveat

__all__ = [
    "ChunkPool",
    "ChunkVerdict",
    "Duplicates",
    "check_chunk",
    "find_duplicates",
]


@dataclass(frozen=True)
class ChunkVerdict:
    """One chunk of one file, checked.

    Attributes:
        source_file: the file, as given.
        frame: the chunk's text cells, index = source row (rows the reader refused but could
            split into the header's fields included), for the rejects' cells.
        problems: rows the reader could not split (rejected as they are).
        leads: the rows that passed every check, as lead records in row order, held column
            by column (:class:`etl.payload.LeadRows`: key, zone,
            numbers, origin, zone source, warnings, and when ``plan.bodies`` the ``POST
            /leads`` body for the run's time ``plan.when``, tasks and notes); duplicate keys
            not yet taken out (:func:`find_duplicates`).
        rejected_keys: source row → key of the rejected rows whose key fields are usable
            (:func:`etl.validate.rejected_keys`), so a duplicate among them is named too.
        issues: every reason of every rejected row (a row the reader refused with a formula
            without a saved value among them).
        regions: E.164 → region of the valid rows' numbers, worked out where the chunk was
            checked (:attr:`etl.validate.ValidatedChunk.regions`), so the run's counts need
            not parse them again.
    """

    source_file: str
    frame: pd.DataFrame
    problems: tuple[RowProblem, ...] = ()
    leads: LeadRows = field(default_factory=lambda: LeadRows(""))
    rejected_keys: AbcMapping[int, str] = field(default_factory=dict)
    issues: tuple[Issue, ...] = ()
    regions: AbcMapping[str, str] = field(default_factory=dict)

    @property
    def rows_read(self) -> int:
        """Rows of the chunk (those the reader could not split included)."""
        return len(self.frame) + len(self.problems)


def check_chunk(plan: Plan, source: Path, chunk: Chunk) -> ChunkVerdict:
    """Shape, normalise and validate one chunk of ``source`` (a file of ``plan.files``) and
    build the lead record of each valid row: a pure function of its arguments, so it runs as
    well in a worker process (they and the verdict pickle).

    Rows the reader refused but could split (an Excel formula without a saved value) are
    checked too, so every reason is found; they never load, unless the formula is only in
    columns whose field may be left out (``FilePlan.formula_optional``): then they load without
    it and with a warning.

    Args:
        plan: the run's plan (mapping, columns of ``source``, ids, date orders, the run's time).
        source: the file, a key of ``plan.files``.
        chunk: text cells of up to ``chunk_rows`` rows, index = source row, and the rows the
            reader refused (:class:`etl.extract.Chunk`).

    Returns:
        The frozen :class:`ChunkVerdict`: lead records of the valid rows (in row order), the
        issues of the others, the keys of the rejected rows for :func:`find_duplicates`.

    Python's cyclic garbage collector is paused while a chunk is checked (and resumed after,
    when it was running): nearly every object a check makes lives until its verdict is built,
    so the collections its allocations set off would only walk them again and again (about a
    sixth of a chunk's CPU time); cycles made meanwhile are collected by the next collection.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _check(plan, source, chunk)
    finally:
        if collecting:
            gc.enable()


def _check(plan: Plan, source: Path, chunk: Chunk) -> ChunkVerdict:
    """:func:`check_chunk`'s work."""
    file = plan.files[source]
    name = str(source)
    origins: dict[int, tuple[str, int]] = {}
    if file.rejects_file:
        chunk, origins = unescape_rejects(chunk), rejects_origins(chunk)
    chunk, forced, notes = _fold_problems(chunk, file.formula_optional)
    if chunk.frame.empty:
        return ChunkVerdict(name, chunk.frame, tuple(chunk.problems))
    mapped = apply_mapping(plan.mapping, chunk.frame, dict(file.columns))
    result = validate_chunk(
        mapped,
        plan.mapping,
        require_phone=plan.require_phone,
        source_file=name,
        date_orders=dict(plan.date_orders),
        calls=plan.calls,
        choices=plan.refs.choices,
    )
    valid, rejected, issues = result.valid, result.rejected, list(result.issues)
    if forced:
        moved = valid.index.isin(list(forced))
        parts = [p for p in (rejected, valid[moved]) if p is not None]
        rejected = pd.concat(parts) if parts else None
        valid = valid[~moved]
        issues += [
            Issue(name, row, "row", "", "invalid", "", message) for row, message in forced.items()
        ]
    warnings = dict(result.warnings)
    for row, messages in notes.items():
        if messages and row in valid.index:
            warnings[row] = (*messages, *warnings.get(row, ()))
    key = plan.mapping.key
    keys = lead_keys(valid, key)
    leads = lead_rows(
        valid,
        keys,
        plan.mapping,
        plan.refs,
        plan.when,
        source_file=name,
        origins=origins,
        warnings=warnings,
        bodies=plan.bodies,
    )
    return ChunkVerdict(
        name,
        chunk.frame,
        tuple(chunk.problems),
        leads,
        rejected_keys(rejected, key) if rejected is not None else {},
        tuple(issues),
        result.regions,
    )


@dataclass(frozen=True)
class Duplicates:
    """A verdict's rows against the keys of the rows before it (in the run's file order).

    Attributes:
        leads: the verdict's lead records whose key is not empty and came first: the rows that
            load, in row order.
        issues: one ``key`` issue per row whose key came before (or is empty).
        by_row: every issue of the chunk (the verdict's and these), by source row: the rows
            rejected, in the order their reasons were found.
    """

    leads: LeadRows
    issues: tuple[Issue, ...]
    by_row: AbcMapping[int, tuple[Issue, ...]]


def find_duplicates(verdict: ChunkVerdict, keys: KeyTracker) -> Duplicates:
    """Check a verdict's keys against ``keys`` (and remember its valid rows' keys there)."""
    name = verdict.source_file
    leads = verdict.leads
    dupes = keys.check_columns(leads.rows, leads.keys, name)
    if verdict.rejected_keys:
        dupes += keys.peek_keys(verdict.rejected_keys, name)
    by_row: dict[int, list[Issue]] = {}
    for issue in [*verdict.issues, *dupes]:
        by_row.setdefault(issue.source_row, []).append(issue)
    taken = {issue.source_row for issue in dupes}
    return Duplicates(leads.without(taken), tuple(dupes), {r: tuple(i) for r, i in by_row.items()})


class ChunkPool:
    """Worker processes checking chunks (:func:`check_chunk`) of one :class:`~etl.plan.Plan`
    ahead of the process that keeps reading, finds duplicates, loads and writes the reports in
    file order; at most two chunks per worker ahead, so memory stays bounded by a few chunks.

    Every worker starts with the pool and has two pipes of its own: chunks go in through one
    (each with only its file's name, sent by a thread of this process so a busy worker never
    holds up the reading), verdicts come back pickled through the other (read by a thread as
    they arrive, so a worker goes on with its next chunk while its verdict waits here). A
    worker that dies (killed by a person or the out-of-memory killer, even halfway through
    writing a verdict) closes its pipe: that is seen at once, whatever the other workers are
    doing, and ends the run with :class:`~etl.errors.WorkerError`; nothing is shared between
    workers, so no dead worker can leave a lock or a half-written message in another's way.
    The plan goes to each worker once, as it starts. A worker ignores SIGINT: a Ctrl-C reaches
    the whole process group, and only this process reacts to it (through
    :class:`etl.cancel.Cancel`), so the run still stops cleanly and writes its reports.

    Args:
        workers: processes, started from a fork server (a clean process: safe while this one
            runs threads).
        plan: the run's plan, sent to each worker as it starts.
    """

    def __init__(self, workers: int, plan: Plan) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["etl.check"])
        self.workers = workers
        #: (worker, its next verdict, or None once its pipe closed), as they arrive
        self._inbox: queue.SimpleQueue[tuple[_Worker, bytes | None]] = queue.SimpleQueue()
        self._broken: str | None = None
        self._pool: list[_Worker] = []
        _start_fork_server()
        try:
            for number in range(workers):
                self._pool.append(_Worker(context, plan, number, self._inbox))
        except BaseException:
            self.close()
            raise

    def verdicts(self, source: Path, chunks: Iterable[Chunk | CsvSlice]) -> Iterator[ChunkVerdict]:
        """The verdict of each chunk of ``source``, in order (a :class:`~etl.extract.CsvSlice`
        is read by the worker that checks it). A chunk goes to the worker that
        owes the fewest verdicts (the first of them on a tie), so which worker checks which
        chunk depends only on the order of the chunks. Verdicts this iterator did not hand out
        (it was closed early, or raised) are dropped as they arrive.

        Raises:
            WorkerError: a worker process died (killed, out of memory); the other workers are
                stopped and the pool is unusable.
        """
        window: deque[_Worker] = deque()
        try:
            for chunk in chunks:
                if self._broken is not None:
                    raise WorkerError(self._broken)
                worker = min(self._pool, key=lambda w: w.owed)
                worker.send((source, chunk))
                window.append(worker)
                if len(window) > 2 * self.workers:
                    yield self._verdict(window.popleft(), source)
            while window:
                yield self._verdict(window.popleft(), source)
        finally:
            for worker in window:
                worker.drop()

    def _verdict(self, worker: _Worker, source: Path) -> ChunkVerdict:
        """``worker``'s next verdict, waiting for it (and for any worker's death)."""
        while not worker.arrived:
            if self._broken is not None:
                raise WorkerError(self._broken)
            sender, message = self._inbox.get()
            if message is None:
                self._break(sender, source)
            else:
                sender.arrive(message)
        outcome = pickle.loads(worker.take())
        if isinstance(outcome, _Failed):
            raise outcome.error from _RemoteTraceback(outcome.trace)
        return outcome  # type: ignore[no-any-return]

    def _break(self, dead: _Worker, source: Path) -> NoReturn:
        """A worker's pipe closed: it died (or this process could not read or write it). Stop
        every worker and raise :class:`WorkerError`."""
        self._stop(kill=True)
        self._broken = (
            f"{source}: a worker process checking its rows died ({dead.fate}); the run "
            "stopped there; run it again (the ledger sends nothing twice)"
        )
        raise WorkerError(self._broken)

    def close(self) -> None:
        """Stop the workers: an idle one is told to exit, one still checking (chunks not
        handed out, or a broken pool) is killed; returns once every worker has exited."""
        self._stop(kill=self._broken is not None)

    def _stop(self, *, kill: bool) -> None:
        """Every worker told to stop (killed if ``kill`` or still owing verdicts), then waited
        for."""
        for worker in self._pool:
            worker.stop(kill=kill or worker.owed > 0)
        for worker in self._pool:
            worker.join()


class _Worker:
    """One worker process of a :class:`ChunkPool`, its two pipes and the two threads of this
    process that write its chunks and read its verdicts.

    Args:
        context: the multiprocessing context (fork server).
        plan: the run's plan, given to the process as it starts.
        number: the worker's place in the pool (for its threads' names).
        inbox: where its verdicts go as they arrive, then ``None`` once its pipe closed.
    """

    def __init__(
        self,
        context: multiprocessing.context.ForkServerContext,
        plan: Plan,
        number: int,
        inbox: queue.SimpleQueue[tuple[_Worker, bytes | None]],
    ) -> None:
        self.owed = 0  # chunks sent whose verdicts were not taken or dropped yet
        #: how the process ended, once it has (:meth:`join`)
        self.fate = ""
        #: what stopped this process' reading or writing of its pipes, if not the worker's end
        self.error: BaseException | None = None
        self.arrived: deque[bytes] = deque()
        self._stale = 0  # verdicts still to come that no one will take
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._inbox = inbox
        tasks_out, tasks_in = context.Pipe(duplex=False)
        results_out, results_in = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_serve,
            args=(plan, tasks_out, results_in),
            name=f"etl-check-{number}",
            daemon=True,
        )
        self.process.start()
        # this process keeps one end of each pipe: a worker that dies closes the other
        tasks_out.close()
        results_in.close()
        self._tasks, self._results = tasks_in, results_out
        self._threads = [
            threading.Thread(target=self._write, name=f"etl-check-{number}-in", daemon=True),
            threading.Thread(target=self._read, name=f"etl-check-{number}-out", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def send(self, task: tuple[Path, Chunk | CsvSlice]) -> None:
        """Give the worker a chunk (pickled here, so a chunk that cannot be raises here)."""
        message = pickle.dumps(task, pickle.HIGHEST_PROTOCOL)
        self.owed += 1
        self._outbox.put(message)

    def arrive(self, message: bytes) -> None:
        """A verdict came: kept for :meth:`take`, or dropped if no one will take it."""
        if self._stale:
            self._stale -= 1
            self.owed -= 1
        else:
            self.arrived.append(message)

    def take(self) -> bytes:
        self.owed -= 1
        return self.arrived.popleft()

    def drop(self) -> None:
        """The oldest verdict not taken yet will not be: dropped now, or as it arrives."""
        if self.arrived:
            self.take()
        else:
            self._stale += 1

    def _ended(self) -> str:
        """How the process ended, e.g. ``etl-check-1 (pid 4242) killed by SIGKILL``."""
        code = self.process.exitcode
        if code is None:
            how = "its pipe closed"
        elif code < 0:
            how = f"killed by {signal.Signals(-code).name}"
        else:
            how = f"exit status {code}"
        if self.error is not None:  # this process' fault, not the worker's: killed for it
            how = f"its pipe could not be used here: {type(self.error).__name__}: {self.error}"
        return f"{self.process.name} (pid {self.process.pid}) {how}"

    def stop(self, *, kill: bool) -> None:
        """Tell the process to exit once its chunks are done (the pipe closes after them), or
        kill it now."""
        if self.fate:  # stopped and waited for already
            return
        self._outbox.put(None)
        if kill and self.process.exitcode is None:
            self.process.kill()

    def join(self) -> None:
        """Wait for the process (after :meth:`stop`; one not out within :data:`_EXIT_WAIT`
        seconds is killed) and for the threads."""
        if self.fate:
            return
        self.process.join(_EXIT_WAIT)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()
        for thread in self._threads:
            thread.join()
        self._results.close()
        self.fate = self._ended()
        self.process.close()

    def _write(self) -> None:
        """This process' writer thread: each chunk to the worker, in order; at the end (or
        once the worker is gone) the pipe is closed, which tells an idle worker to exit."""
        try:
            while (message := self._outbox.get()) is not None:
                self._tasks.send_bytes(message)
        except OSError:  # the worker died (its reader thread says so)
            pass
        except BaseException as exc:  # a chunk it cannot deliver: the worker goes, the run is told
            self.error = exc
            self.process.kill()
        finally:
            self._tasks.close()

    def _read(self) -> None:
        """This process' reader thread: each verdict as it arrives; ``None`` once the pipe
        closed (the worker exited or died, even halfway through a verdict)."""
        try:
            while True:
                self._inbox.put((self, self._results.recv_bytes()))
        except (EOFError, OSError):  # the worker exited or died
            pass
        except BaseException as exc:  # e.g. MemoryError for a verdict: the worker goes
            self.error = exc
            self.process.kill()
        finally:  # whatever ended the reading, the run is told (it never waits for nothing)
            self._inbox.put((self, None))


def _start_fork_server() -> None:
    """Start the fork server the workers come from (once a process), SIGINT ignored: it keeps
    that, and so does every worker from its first instruction (a Ctrl-C to the process group
    as the run starts cannot kill one before :func:`_serve` runs). In this process SIGINT is only
    blocked meanwhile (a few milliseconds): one that comes then is taken as it ends. From a
    thread other than the main one (no signal handlers there) the server starts as it is."""
    if threading.current_thread() is not threading.main_thread():
        multiprocessing.forkserver.ensure_running()
        return
    handler = signal.getsignal(signal.SIGINT)
    if handler is None:  # set outside Python: cannot be put back
        multiprocessing.forkserver.ensure_running()
        return
    masked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            multiprocessing.forkserver.ensure_running()
        finally:
            signal.signal(signal.SIGINT, handler)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, masked)


#: Seconds an idle worker has to exit when its pool closes before it is killed.
_EXIT_WAIT = 10.0


@dataclass(frozen=True)
class _Failed:
    """A worker's chunk check raised ``error`` (``trace``: its traceback there)."""

    error: BaseException
    trace: str


class _RemoteTraceback(Exception):
    """The traceback of an error raised in a worker, as the cause of the same error here."""

    def __str__(self) -> str:
        return str(self.args[0])


def _serve(plan: Plan, tasks: Connection, results: Connection) -> None:
    """A worker process: the verdict of each chunk that comes, for the run's ``plan`` (sent
    once, as the worker starts), until the pool closes the pipe. SIGINT is ignored (a Ctrl-C is
    for the main process, which stops the run and writes the reports). An error of a check is
    sent back (:class:`_Failed`) and raised there."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            message = tasks.recv_bytes()
        except (EOFError, OSError):  # the pool closed, or its process is gone
            return
        try:
            source, chunk = pickle.loads(message)
            del message
            answer = _check_here(plan, source, chunk)
        except BaseException as exc:  # noqa: BLE001 - the main process raises it
            answer = _failure(exc)
        try:
            results.send_bytes(answer)
        except OSError:  # the pool's process is gone: no one to tell
            return


def _failure(exc: BaseException) -> bytes:
    """``exc`` pickled as a :class:`_Failed`; as a RuntimeError with its text when it would not
    come back whole."""
    trace = "".join(traceback.format_exception(exc))
    try:
        answer = pickle.dumps(_Failed(exc, trace), pickle.HIGHEST_PROTOCOL)
        pickle.loads(answer)
    except Exception:  # noqa: BLE001 - e.g. an exception class whose __init__ takes more
        answer = pickle.dumps(_Failed(RuntimeError(f"{type(exc).__name__}: {exc}"), trace))
    return answer


def _check_here(plan: Plan, source: Path, chunk: Chunk | CsvSlice) -> bytes:
    """A worker's task: the pickled verdict of one chunk (read here when given as a slice)."""
    if isinstance(chunk, CsvSlice):
        chunk = chunk.read()
    return pickle.dumps(check_chunk(plan, source, chunk), pickle.HIGHEST_PROTOCOL)


def _fold_problems(
    chunk: Chunk, optional: AbcMapping[str, str | None]
) -> tuple[Chunk, dict[int, str], dict[int, list[Caveat]]]:
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
    notes: dict[int, list[Caveat]] = {}
    for p in whole:
        if p.formula_columns and all(c in optional for c in p.formula_columns):
            notes[p.row] = [
                _left_out(name, c) for c in p.formula_columns if (name := optional[c]) is not None
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


def _left_out(field_name: str, header: str) -> Caveat:
    """The warning on a row loaded without ``header``'s formula (it feeds ``field_name``)."""
    message = (
        f"{field_name} ({header}): a formula without a saved value, left out (the file was "
        "saved by a program that does not compute formulas: open and save it in Excel to keep "
        "the result)"
    )
    return Caveat(f"{field_name} ({header})", message, message, header)
