"""One ``voiptime-etl import`` run for the benchmark, in this process, with the load stage timed.

Runs the CLI exactly as a user would (``etl.cli.main`` with these arguments), and around the
loader's batches measures the wall time and this process's CPU time (every thread's) spent while
loading. Prints one JSON line: ``{"leads": created, "load_s": wall seconds in the loader,
"load_cpu_s": CPU seconds of the process meanwhile, "cpu_s": CPU seconds of the whole run,
"exit": exit code}``.

``--no-ledger`` (for the benchmark only; the command line has no such option, on purpose: a load
without its ledger is not exactly-once) replaces the ledger's per-lead work with nothing: no key
is looked up (every row is new), no ``sending`` row (claimed ahead or not), departed mark,
``created`` or enrolment row is written. The run's
own records (run start and end, files) are still written. Comparing a run with and without it at
0 ms latency gives the ledger's cost.

Usage: ``python scripts/bench_load.py [--no-ledger] -- IMPORT-ARGUMENTS...``
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from etl import cli, load, state  # noqa: E402

#: Ledger methods called once per lead or per batch while loading.
PER_LEAD = (
    "mark_sending",
    "mark_created",
    "mark_missing",
    "mark_ambiguous",
    "forget",
    "mark_rejected",
    "mark_updated",
    "mark_enrolling",
    "finish_enrolling",
    "stage_sending",
    "stage_done",
    "stage_ambiguous",
    "stage_forget",
)


def _nothing(*_: Any, **__: Any) -> None:
    return None


def without_ledger() -> None:
    """Make the ledger's per-lead work a no-op (see the module docstring)."""
    for name in PER_LEAD:
        setattr(state.Ledger, name, _nothing)
    # new leads: no claim written ahead, no departed mark, nothing to release
    state.Ledger.claim = _nothing  # type: ignore[method-assign]
    state.Ledger.depart = lambda self, project, key: True  # type: ignore[method-assign]
    state.Ledger.release = lambda self, project, keys: set()  # type: ignore[method-assign]
    state.Ledger.lookup = lambda self, project, keys: {}  # type: ignore[method-assign]
    state.Ledger.pending_enrolments = lambda self, *a, **k: []  # type: ignore[method-assign]


class Timer:
    """Wall and process CPU seconds from the first batch a loader is handed until its last
    outcomes are recorded (:meth:`etl.load.Loader.load_batches`, one call per chunk of rows)."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def wrap(self, fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                yield from fn(*args, **kwargs)
            finally:
                self.wall += time.perf_counter() - wall
                self.cpu += time.process_time() - cpu

        return timed


def main(argv: list[str]) -> int:
    if "--" not in argv:
        raise SystemExit(__doc__)
    split = argv.index("--")
    options, args = argv[:split], argv[split + 1 :]
    if "--no-ledger" in options:
        without_ledger()
    timer = Timer()
    load.Loader.load_batches = timer.wrap(load.Loader.load_batches)  # type: ignore[method-assign]
    sys.argv = ["voiptime-etl", "import", *args]
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    report = Path(args[args.index("--report-dir") + 1])
    summary = json.loads((report / "summary.json").read_text(encoding="utf-8"))
    print(
        json.dumps(
            {
                "leads": summary["leads_created"],
                "load_s": timer.wall,
                "load_cpu_s": timer.cpu,
                "cpu_s": time.process_time(),
                "exit": code,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
