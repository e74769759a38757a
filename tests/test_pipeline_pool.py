"""Chunks checked in worker processes give the very reports of a run in one process."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import multiprocessing
import os
import pickle
import signal
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from clitools import CHILD_TIMEOUT

from etl.calls import call_context
from etl.check import ChunkPool
from etl.client import VoiptimeClient
from etl.config import RetryPolicy
from etl.errors import WorkerError
from etl.extract import Chunk, CsvSlice
from etl.mapping import References, load_mapping
from etl.pipeline import RunOptions, check_chunk, run
from etl.plan import FilePlan, Plan, resolve_columns

MAPPING = """\
project: 1
campaign: Spring outreach
defaults: {region: US, region_column: Country, timezone: America/New_York}
key: [email]
fields: {name: First Name, surname: Last Name, email: Email, timezoneId: Time Zone}
phones:
  - {column: Mobile, label: mobile}
  - {column: Work Phone, label: work}
dynamicData: {signed_up: {column: Signed Up, type: date}}
comments:
  - {column: Notes}
"""
#: The runs' clock (a minute boundary between two runs would change local_time_at_run).
NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
HEADER = ["First Name", "Last Name", "Email", "Mobile", "Work Phone", "Country", "Time Zone"]
HEADER += ["Signed Up", "Notes"]


def _write(path: Path, rows: int) -> None:
    """A list with every kind of row: bad phones, zones, e-mails and dates, empty names,
    multi-line notes, short rows, and duplicates of rows several chunks back."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        for i in range(rows):
            email = f"lead{i}@example.com" if i % 97 else f"lead{i - 450}@example.com"
            if i % 131 == 0:
                email = f"lead{i} at example.com"
            mobile = [f"(212) 555-{i:04d}", f"+1415{2000000 + i}", f"415.555.{i % 10000:04d}"][
                i % 3
            ]
            work = f"020 7946 {i % 10000:04d}" if i % 5 == 0 else f"212-583-{i % 10000:04d}"
            if i % 89 == 0:
                mobile, work = "555-0100", ""
            country = "GB" if i % 5 == 0 else ("US" if i % 2 else "")
            zone = ["America/New_York", "US/Eastern", "", "EST", "Europe/London"][i % 5]
            date = "2024-02-30" if i % 113 == 0 else f"2024-03-{1 + i % 28:02d}"
            note = "first line\nsecond line" if i % 7 == 0 else ""
            row = ["Ann" if i % 61 else "", "Lee", email, mobile, work, country, zone, date, note]
            if i % 211 == 0:
                row = row[:4]
            out.writerow(row)


def _reports(folder: Path) -> tuple[bytes, bytes, dict[str, object]]:
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    for moving in ("started_at", "duration_seconds", "rows_per_second", "timings"):
        summary.pop(moving)
    return (folder / "rejects.csv").read_bytes(), (folder / "loaded.csv").read_bytes(), summary


def _validate(tmp_path: Path, rows: int, workers: int, **kw: Any) -> RunOptions:
    """``validate`` of a list of ``rows`` rows (:func:`_write`) in chunks of 300 rows, into
    ``r<workers>``; loaded.csv's local_time_at_run has minutes: the same clock for every run."""
    source, mapping = tmp_path / "leads.csv", tmp_path / "m.yaml"
    _write(source, rows)
    mapping.write_text(MAPPING, encoding="utf-8")
    return RunOptions(
        sources=[source],
        mapping=mapping,
        command="validate",
        report_dir=tmp_path / f"r{workers}",
        chunk_rows=300,
        workers=workers,
        now=NOW,
        **kw,
    )


def test_worker_processes_give_the_same_reports_as_one_process(tmp_path):
    results = {}
    for workers in (1, 2):
        result = run(_validate(tmp_path, 1_500, workers))
        assert result.exit_code == 3
        results[workers] = _reports(tmp_path / f"r{workers}")
    assert results[2] == results[1]
    summary = results[2][2]
    assert summary["rows_read"] == 1_500
    # the 11 rows i = 485, 582, ... 1455 (i % 97 == 0, i >= 450) repeat the e-mail of the row
    # 450 back (chunks earlier, in another worker): each is named a duplicate of it, also where
    # one of the two is rejected for another reason (the tracker keeps rejected rows' keys)
    assert summary["rows_duplicate"] == 11
    text = results[2][0].decode("utf-8")
    assert text.count("duplicate of row ") == summary["rows_duplicate"]


def _plan(tmp_path: Path, rows: int, files: type[dict] = dict) -> tuple[Plan, Path, pd.DataFrame]:  # type: ignore[type-arg]
    """A plan of :data:`MAPPING` (with a campaign: each lead needs a phone) over a list of
    ``rows`` rows (``files``: the type of its ``files``), the list and its frame."""
    source, mapping_path = tmp_path / "leads.csv", tmp_path / "m.yaml"
    _write(source, rows)
    mapping_path.write_text(MAPPING, encoding="utf-8")
    mapping = load_mapping(mapping_path)
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    frame.index = pd.RangeIndex(2, 2 + len(frame))
    columns = resolve_columns(mapping, list(frame.columns), str(source))
    plan = Plan(
        mapping=mapping,
        files=files({source: FilePlan(source, columns)}),
        calls=call_context(None, "Europe/London", dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)),
        refs=References(1, campaign_id="c" * 24),
    )
    return plan, source, frame


def test_check_chunk_is_a_pure_function_whose_result_pickles(tmp_path):
    plan, source, frame = _plan(tmp_path, 40)
    first = check_chunk(plan, source, Chunk(frame))
    again = pickle.loads(pickle.dumps(first))
    assert again.leads == first.leads and len(first.leads) > 0
    assert again.issues == first.issues
    assert first.issues == check_chunk(plan, source, Chunk(frame)).issues
    # row 2 (i = 0) breaks every rule; every fifth row from i = 3 has the zone "EST"; every
    # fifth from i = 0 is in GB, where a US mobile written without +1 is not valid
    est = {i + 2 for i in range(3, 40, 5)}
    gb = {i + 2 for i in range(0, 40, 5) if i % 3 != 1}
    assert {i.source_row for i in first.issues} == est | gb


class _CountedFiles(dict):  # type: ignore[type-arg]
    """A plan's ``files`` that count how often they are pickled (in this process)."""

    pickled = 0

    def __reduce__(self):  # type: ignore[no-untyped-def]
        _CountedFiles.pickled += 1
        return (dict, (dict(self),))


def test_the_plan_goes_to_each_worker_once_and_the_verdicts_are_the_same(tmp_path):
    plan, source, frame = _plan(tmp_path, 160, _CountedFiles)
    chunks = [Chunk(frame.iloc[start : start + 20]) for start in range(0, 160, 20)]
    _CountedFiles.pickled = 0
    pool = ChunkPool(2, plan)
    try:
        verdicts = list(pool.verdicts(source, iter(chunks)))
    finally:
        pool.close()
    # once per worker process (both start with the pool), not once per chunk (eight)
    assert _CountedFiles.pickled == 2
    here = [check_chunk(plan, source, chunk) for chunk in chunks]
    assert [v.issues for v in verdicts] == [v.issues for v in here]
    assert [v.leads for v in verdicts] == [v.leads for v in here]
    assert sum(len(v.leads) for v in verdicts) == 102


def test_the_reject_rate_pass_runs_in_the_pool_and_rejects_what_the_real_pass_does(
    tmp_path, sandbox
):
    source, mapping = tmp_path / "leads.csv", tmp_path / "m.yaml"
    _write(source, 600)
    mapping.write_text(MAPPING, encoding="utf-8")
    policy = RetryPolicy(min_wait=0, max_wait=0, sleep=lambda _s: None)
    checks: dict[str, list[tuple[str, int]]] = {}
    results = {}
    for name, workers, rate in (("here", 1, 0.0), ("pool", 2, 100.0)):
        checks[name] = []
        options = RunOptions(
            sources=[source],
            mapping=mapping,
            report_dir=tmp_path / name,
            state=tmp_path / f"{name}.sqlite",
            chunk_rows=100,
            workers=workers,
            max_reject_rate=rate,
            new_ledger=True,
            now=NOW,
            on_check=lambda where, rows, seen=checks[name]: seen.append((where, rows)),
        )
        results[name] = run(
            options, lambda: VoiptimeClient(sandbox.url, "sandbox-key", retry=policy)
        )
    # each chunk checked twice (the first pass keeps only its counts): in this process for one,
    # in a worker for two
    assert checks == {"here": [("here", 100)] * 12, "pool": [("pool", 100)] * 12}
    closed, opened = results["here"].summary, results["pool"].summary
    rejected = closed.rows_rejected
    assert str(results["here"].error).startswith(
        f"{rejected} of 600 rows rejected ({100 * rejected / 600:.1f}%), more than"
    )
    assert (closed.leads_created, opened.rows_rejected, opened.rows_read) == (0, rejected, 600)
    assert opened.leads_created == 600 - rejected
    assert (tmp_path / "here" / "rejects.csv").read_bytes() == (
        tmp_path / "pool" / "rejects.csv"
    ).read_bytes()


class _Clock:
    """Monotonic seconds that move one second at each reading, and as far as a test pushes."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_the_timings_split_the_run_and_reading_is_not_checking(tmp_path):
    for workers in (1, 2):
        clock = _Clock()

        def reading(where: str, rows: int, clock: _Clock = clock) -> None:
            clock.now += 1000.0  # each chunk takes 1,000 s to read

        summary = run(_validate(tmp_path, 900, workers, on_check=reading), clock=clock).summary
        timings = summary.timings
        assert list(timings) == ["validate_seconds", "load_seconds", "other_seconds"]
        assert sum(timings.values()) == summary.duration_seconds
        assert timings["load_seconds"] == 0
        # each of the 3 chunks' check (or the wait for its worker) is counted, its reading not
        assert 3 <= timings["validate_seconds"] < 1000
        assert timings["other_seconds"] >= 3000


def _ignored_signals(pid: int) -> int:
    """The mask of signals process ``pid`` ignores (``SigIgn`` of /proc/<pid>/status)."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    return int(next(line for line in status.splitlines() if line.startswith("SigIgn:"))[7:], 16)


def test_a_worker_ignores_sigint_so_only_the_main_process_reacts_to_ctrl_c(tmp_path):
    plan, source, frame = _plan(tmp_path, 40)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in the background
    pool = ChunkPool(2, plan)
    try:
        # two chunks: one to each worker, which ignores SIGINT once its verdict is back
        list(pool.verdicts(source, [Chunk(frame.iloc[:20]), Chunk(frame.iloc[20:])]))
        workers = [p for p in multiprocessing.active_children() if p.name.startswith("etl-")]
        assert len(workers) == 2
        for worker in workers:
            assert _ignored_signals(worker.pid or 0) & (1 << (signal.SIGINT - 1))
    finally:
        pool.close()
    assert signal.getsignal(signal.SIGINT) is before  # this process reacts as it did
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("etl-")]


# --- workers that die: a test-only worker (check._serve replaced in this process, so each
# worker the pool starts runs _faulty_serve) does what faults.json beside the list says to the
# chunk that holds a given row: production code takes no notice of any of it.


def _faulty_serve(plan: Plan, tasks: Any, results: Any) -> None:
    """``check._serve`` in a worker whose chunk checks first read ``faults.json`` beside the
    list: a list of ``{"row": n, "how": ...}``, applied in turn to the chunk holding row n:
    ``held`` waits until the FIFO ``hold`` beside the list is opened for writing and closed,
    ``killed`` SIGKILLs the worker, ``torn`` writes the first half of its verdict to the pipe and
    then SIGKILLs the worker (as a ``kill -9`` in the middle of the write), ``raises`` raises
    ValueError."""
    import struct

    from etl import check

    pipe = _TornPipe(results)
    real = check._check_here

    def faulty(plan: Plan, source: Path, chunk: Chunk | CsvSlice) -> bytes:
        if isinstance(chunk, CsvSlice):  # a large CSV's chunk comes as its place in the file
            chunk = chunk.read()
        rows = chunk.frame.index
        for fault in json.loads(source.with_name("faults.json").read_text(encoding="utf-8")):
            if not rows[0] <= fault["row"] <= rows[-1]:
                continue
            if fault["how"] == "held":
                with open(source.with_name("hold"), "rb") as fifo:
                    fifo.read()
            elif fault["how"] == "killed":
                os.kill(os.getpid(), signal.SIGKILL)
            elif fault["how"] == "torn":
                pipe.tear = struct.pack
            elif fault["how"] == "raises":
                raise ValueError(f"row {fault['row']} raises")
        return real(plan, source, chunk)

    check._check_here = faulty
    check._serve(plan, tasks, pipe)


class _TornPipe:
    """A worker's verdict pipe; once ``tear`` is set (to ``struct.pack``), the next verdict is
    written half (after the 4-byte length a multiprocessing Connection puts before a message)
    and the worker is SIGKILLed: the pipe holds a message that never ends."""

    def __init__(self, pipe: Any) -> None:
        self.pipe, self.tear = pipe, None

    def send_bytes(self, data: bytes) -> None:
        if self.tear is not None:
            os.write(self.pipe.fileno(), self.tear("!i", len(data)) + data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        self.pipe.send_bytes(data)


def _faults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *faults: tuple[int, str]) -> Path:
    """Workers of the pools started from now on obey ``faults`` ((row, how), see
    :func:`_faulty_serve`); the FIFO that releases a ``held`` worker."""
    from etl import check

    monkeypatch.setattr(check, "_serve", _faulty_serve)
    listed = [{"row": row, "how": how} for row, how in faults]
    (tmp_path / "faults.json").write_text(json.dumps(listed), encoding="utf-8")
    os.mkfifo(tmp_path / "hold")
    return tmp_path / "hold"


def _release_after(verdicts: int, hold: Path) -> Any:
    """A ``progress`` for :func:`run` that releases the held worker once ``verdicts`` chunks'
    verdicts are counted (the open waits for the worker to be waiting)."""
    seen: list[int] = []

    def progress(stage: str, rows: int) -> None:
        if stage == "validated":
            seen.append(rows)
            if len(seen) == verdicts:
                with open(hold, "wb"):
                    pass

    return progress


class _SafetyNet:
    """Whatever waits on the FIFO ``hold`` (a held worker, or this process releasing it) is let
    go after :data:`clitools.CHILD_TIMEOUT` seconds, so a pool that waits for the wrong thing
    fails its test (``fired``) instead of hanging the suite; only a hang can reach it."""

    def __init__(self, hold: Path) -> None:
        self.hold, self.fired = hold, False
        self._timer = threading.Timer(CHILD_TIMEOUT, self._fire)

    def _fire(self) -> None:
        self.fired = True
        for mode in (os.O_WRONLY, os.O_RDONLY):
            try:
                os.close(os.open(self.hold, mode | os.O_NONBLOCK))
            except OSError:  # no one waits on that side
                pass

    def __enter__(self) -> _SafetyNet:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


@pytest.mark.parametrize("how", ["killed", "torn"])
def test_a_dead_worker_stops_the_run_with_exit_75_and_its_reports(tmp_path, monkeypatch, how):
    # the worker given the 4th chunk (rows 902-1201 of 6) waits there until the first three
    # verdicts are counted, then dies: killed, or killed halfway through writing its verdict
    # (the pipe holds a message that never ends)
    hold = _faults(tmp_path, monkeypatch, (1000, "held"), (1000, how))
    with _SafetyNet(hold) as net:
        result = run(_validate(tmp_path, 1800, 2), progress=_release_after(3, hold))
    assert not net.fired
    assert isinstance(result.error, WorkerError)
    assert str(result.error) == (
        f"{tmp_path / 'leads.csv'}: a worker process checking its rows died (etl-check-1 "
        f"(pid {_pid(result.error)}) killed by SIGKILL); the run stopped there; run it again "
        "(the ledger sends nothing twice)"
    )
    assert result.summary.exit_code == 75
    summary = json.loads((tmp_path / "r2" / "summary.json").read_text(encoding="utf-8"))
    assert (summary["exit_code"], summary["rows_read"]) == (75, 900)
    assert (tmp_path / "r2" / "report.html").exists()
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("etl-")]


def _pid(error: Exception) -> int:
    """The pid a WorkerError names."""
    return int(str(error).split("(pid ")[1].split(")")[0])


def test_a_dead_worker_ends_the_run_while_another_worker_is_still_busy(tmp_path, monkeypatch):
    # worker 0 is held on the 1st chunk and never released; worker 1 dies on the 2nd: the run
    # waits for the 1st verdict, so it ends only if the death is seen without it
    hold = _faults(tmp_path, monkeypatch, (100, "held"), (400, "killed"))
    with _SafetyNet(hold) as net:
        result = run(_validate(tmp_path, 1800, 2))
    assert not net.fired
    assert isinstance(result.error, WorkerError)
    assert "etl-check-1 (pid " in str(result.error) and "killed by SIGKILL" in str(result.error)
    summary = json.loads((tmp_path / "r2" / "summary.json").read_text(encoding="utf-8"))
    assert (summary["exit_code"], summary["rows_read"]) == (75, 0)
    assert (tmp_path / "r2" / "report.html").exists()
    # the held worker was killed, not waited for
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("etl-")]


def test_an_error_in_a_worker_is_raised_here_and_the_pool_goes_on(tmp_path, monkeypatch):
    _faults(tmp_path, monkeypatch, (25, "raises"))
    plan, source, frame = _plan(tmp_path, 160)
    chunks = [Chunk(frame.iloc[start : start + 20]) for start in range(0, 160, 20)]
    pool = ChunkPool(2, plan)
    try:
        with pytest.raises(ValueError, match="^row 25 raises$") as raised:
            list(pool.verdicts(source, chunks))
        assert "in faulty" in str(raised.value.__cause__)  # the worker's traceback
        # the verdicts of the chunks after it, checked or not, are dropped: the next file's
        # are its own
        again = list(pool.verdicts(source, chunks[2:]))
    finally:
        pool.close()
    assert [v.issues for v in again] == [check_chunk(plan, source, c).issues for c in chunks[2:]]


def test_workers_ignore_sigint_from_their_start(tmp_path):
    # a Ctrl-C to the process group as the pool starts (before a worker has run a line of
    # its own) reaches the workers too: they start with SIGINT blocked, then ignore it
    plan, source, frame = _plan(tmp_path, 40)
    pool = ChunkPool(2, plan)
    try:
        for worker in multiprocessing.active_children():
            if worker.name.startswith("etl-"):
                os.kill(worker.pid or 0, signal.SIGINT)
        chunks = [Chunk(frame.iloc[:20]), Chunk(frame.iloc[20:])]
        verdicts = list(pool.verdicts(source, chunks))
    finally:
        pool.close()
    assert [v.issues for v in verdicts] == [check_chunk(plan, source, c).issues for c in chunks]


def test_a_verdict_this_process_cannot_read_stops_the_pool_and_names_why(tmp_path, monkeypatch):
    # the third verdict read here raises MemoryError (as for a verdict too large for the
    # address space): its worker is killed and the run is told, it does not wait for ever
    from multiprocessing.connection import Connection

    plan, source, frame = _plan(tmp_path, 160)
    chunks = [Chunk(frame.iloc[start : start + 20]) for start in range(0, 160, 20)]
    real, calls = Connection.recv_bytes, itertools.count(1)

    def recv_bytes(self: Connection, maxlength: int | None = None) -> bytes:
        if next(calls) == 3:
            raise MemoryError("no room for the verdict")
        return real(self, maxlength)

    pool = ChunkPool(2, plan)
    monkeypatch.setattr(Connection, "recv_bytes", recv_bytes)
    try:
        with pytest.raises(WorkerError, match="no room for the verdict") as raised:
            list(pool.verdicts(source, chunks))
    finally:
        pool.close()
    assert "its pipe could not be used here: MemoryError: no room for the verdict" in str(
        raised.value
    )
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("etl-")]
