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

import multiprocessing
import pickle
import signal
from collections import deque
from collections.abc import Iterable, Iterator
from collections.abc import Mapping as AbcMapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from etl.errors import WorkerError
from etl.extract import Chunk, RowProblem, rejects_origins, unescape_rejects
from etl.payload import LeadRow, lead_rows
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
        leads: the rows that passed every check, as lead records in row order (key, zone,
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
    leads: tuple[LeadRow, ...] = ()
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
    """
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

    leads: tuple[LeadRow, ...]
    issues: tuple[Issue, ...]
    by_row: AbcMapping[int, tuple[Issue, ...]]


def find_duplicates(verdict: ChunkVerdict, keys: KeyTracker) -> Duplicates:
    """Check a verdict's keys against ``keys`` (and remember its valid rows' keys there)."""
    name = verdict.source_file
    dupes = keys.check_keys(((lead.source_row, lead.key) for lead in verdict.leads), name)
    if verdict.rejected_keys:
        dupes += keys.peek_keys(verdict.rejected_keys, name)
    by_row: dict[int, list[Issue]] = {}
    for issue in [*verdict.issues, *dupes]:
        by_row.setdefault(issue.source_row, []).append(issue)
    taken = {issue.source_row for issue in dupes}
    leads = tuple(lead for lead in verdict.leads if lead.source_row not in taken)
    return Duplicates(leads, tuple(dupes), {r: tuple(i) for r, i in by_row.items()})


class ChunkPool:
    """Worker processes checking chunks (:func:`check_chunk`) of one :class:`~etl.plan.Plan`
    ahead of the process that keeps reading, finds duplicates, loads and writes the reports in
    file order; at most two chunks per worker ahead, so memory stays bounded by a few chunks.

    The plan goes to each worker once, when it starts (the pool's initializer); a chunk is sent
    with only its file's name, and its verdict comes back pickled. A worker ignores SIGINT: a
    Ctrl-C reaches the whole process group, and only this process reacts to it (through
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
        self._executor = ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_adopt, initargs=(plan,)
        )

    def verdicts(self, source: Path, chunks: Iterable[Chunk]) -> Iterator[ChunkVerdict]:
        """The verdict of each chunk of ``source``, in order.

        Raises:
            WorkerError: a worker process died (killed, out of memory); the pool is unusable.
        """
        window: deque[Future[bytes]] = deque()
        try:
            for chunk in chunks:
                window.append(self._executor.submit(_check_here, source, chunk))
                if len(window) > 2 * self.workers:
                    yield pickle.loads(window.popleft().result())
            while window:
                yield pickle.loads(window.popleft().result())
        except BrokenProcessPool as exc:
            raise WorkerError(
                f"{source}: a worker process checking its rows died ({exc}); the run stopped "
                "there; run it again (the ledger sends nothing twice)"
            ) from exc

    def close(self) -> None:
        """Stop the workers (chunks not started are dropped)."""
        self._executor.shutdown(wait=True, cancel_futures=True)


#: The plan of a worker process of a :class:`ChunkPool` (set once, as it starts).
_PLAN: Plan | None = None


def _adopt(plan: Plan) -> None:
    """A worker's initializer: keep the run's plan for every chunk it checks, and ignore
    SIGINT (a Ctrl-C is for the main process, which stops the run and writes the reports)."""
    global _PLAN
    _PLAN = plan
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _check_here(source: Path, chunk: Chunk) -> bytes:
    """A worker's task: the pickled verdict of one chunk."""
    if _PLAN is None:  # pragma: no cover - the initializer always ran first
        raise RuntimeError("a ChunkPool worker without its plan")
    return pickle.dumps(check_chunk(_PLAN, source, chunk), pickle.HIGHEST_PROTOCOL)


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
