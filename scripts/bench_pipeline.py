"""Measure the importer on lists shaped like real ones, and print one table (``make bench``).

Everything is measured in this one run, each figure from a child process so its CPU time and
peak memory are its own:

1. ``validate`` of the 100,000- and 1,000,000-row CSVs of ``scripts/make_bench_data.py`` (every
   phone distinct): rows/s end to end (read, map, normalise, validate, reports) and peak RSS.
2. frictionless-py (``frictionless validate``; ``--install-extra`` installs it first with the
   version ``requirements.lock`` pins, as ``make bench`` does) on the same 1M-row file with a
   schema that checks what ours does where it can (required names, e-mail format, unique
   e-mails, patterns for phones, zones and dates): rows/s and our ratio to it.
3. ``validate`` of the 100,000-row XLSX: rows/s.
4. ``import`` (``scripts/bench_load.py``: the CLI in a child process, its load stage timed) into
   a sandbox in this process answering after ``--latency-ms 50``, at ``--concurrency`` 1, 16 and
   32: leads/s over the load stage next to the bound (concurrency / latency), and the client's
   CPU milliseconds per lead while loading.
5. The ledger's cost: the same import at 0 ms latency, concurrency 16, with the ledger and
   with its per-lead work made a no-op (``bench_load.py --no-ledger``, a benchmark-only switch).

The data is written once into ``.bench-data/`` (git-ignored), in a folder named after the
generator's version, a digest of its source and of the ``phonenumbers`` release it drew from,
and the row counts, and reused by later runs.

A figure that cannot be measured (frictionless-py not installable, or failing) is printed as
``not measured`` with the reason, and the rest of the table is measured all the same.

Usage: ``python scripts/bench_pipeline.py [--rows N] [--small-rows N] [--xlsx-rows N]
[--load-leads N] [--data DIR] [--install-extra]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import make_bench_data  # noqa: E402

from etl.sandbox import DEFAULT_API_KEY, SandboxServer  # noqa: E402

PHONE = r"\+?[0-9 ().\-]{6,24}(,? ?(x|ext\.?|#) ?[0-9]{1,5})?"
FRICTIONLESS_SCHEMA = {
    "fields": [
        {"name": "First Name", "type": "string", "constraints": {"required": True}},
        {"name": "Last Name", "type": "string", "constraints": {"required": True}},
        {
            "name": "Email",
            "type": "string",
            "format": "email",
            "constraints": {"required": True, "unique": True},
        },
        {"name": "Mobile", "type": "string", "constraints": {"pattern": PHONE}},
        {"name": "Work Phone", "type": "string", "constraints": {"pattern": PHONE}},
        {"name": "Country", "type": "string"},
        {
            "name": "Time Zone",
            "type": "string",
            "constraints": {"pattern": r"[A-Za-z_]+/[A-Za-z_/]+|GB-Eire|[A-Za-z ]+ Standard Time"},
        },
        {"name": "Company", "type": "string"},
        {
            "name": "Signed Up",
            "type": "string",
            "constraints": {"pattern": r"\d{4}-\d\d-\d\d(T\d\d:\d\d:\d\d)?|\d\d/\d\d/\d{4}"},
        },
        {"name": "Notes", "type": "string"},
    ]
}


def child(args: list[str], env: dict[str, str], stdout: Path | None = None) -> dict[str, float]:
    """Run a command (its output to ``stdout`` if given); its wall seconds, CPU seconds, peak RSS
    (MB) and exit code."""
    start = time.perf_counter()
    out = open(stdout, "wb") if stdout is not None else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if stdout is not None:
        out.close()  # type: ignore[union-attr]
    if proc.returncode not in (0, 3) and err.strip():
        print(err.decode(errors="replace")[-2000:], file=sys.stderr)
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss": usage.ru_maxrss / 1024,
        "code": proc.returncode,
    }


def install_extra() -> str | None:
    """Install the ``bench`` extra (frictionless-py) into this interpreter with the versions
    pinned in ``requirements.lock``; ``None``, or why it failed (pip's last ``ERROR:`` line)."""
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "--quiet"),
            *("-c", str(ROOT / "requirements.lock"), "-e", f"{ROOT}[bench]"),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode == 0:
        return None
    said = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    errors = [line.split("ERROR:", 1)[1].strip() for line in said if "ERROR:" in line]
    why = (errors or [line for line in said if not line.startswith("WARNING")] or [""])[-1]
    return f"pip could not install the bench extra: {why[:160] or f'exit {proc.returncode}'}"


def frictionless(big: Path, count: int, folder: Path, env: dict[str, str]) -> dict[str, float]:
    """``frictionless validate`` of ``big`` (every error counted, the report as JSON): its wall
    seconds and the errors it found. Raises RuntimeError (why) when it is not installed or does
    not finish with a report."""
    friction = shutil.which("frictionless", path=str(Path(sys.executable).parent))
    if not friction:
        raise RuntimeError("frictionless-py is not installed (pip install -e '.[bench]')")
    schema = folder / "schema.json"
    schema.write_text(json.dumps(FRICTIONLESS_SCHEMA), encoding="utf-8")
    # every error counted (frictionless stops at 1,000 by default), the report as JSON
    found = folder / "frictionless.json"
    out = child(
        [
            *(friction, "validate", "--trusted", "--schema", str(schema)),
            *("--limit-errors", "100000000", "--json", str(big)),
        ],
        env,
        stdout=found,
    )
    try:
        stats = json.loads(found.read_text(encoding="utf-8"))["tasks"][0]["stats"]
    except (ValueError, LookupError, TypeError) as exc:
        raise RuntimeError(
            f"frictionless exited {out['code']:.0f} without a report ({type(exc).__name__})"
        ) from exc
    if stats["rows"] != count:
        raise RuntimeError(f"frictionless read {stats['rows']:,} rows of {count:,}")
    return {**out, "errors": stats["errors"]}


def etl(args: list[str], env: dict[str, str]) -> dict[str, float]:
    return child([sys.executable, "-m", "etl", *args], env)


def load(
    source: Path,
    mapping: Path,
    folder: Path,
    env: dict[str, str],
    latency: int,
    concurrency: int,
    ledger: bool,
) -> dict[str, float]:
    """One import into a fresh sandbox (in this process) with ``latency_ms``; the load stage's
    leads/s and the client's CPU ms per lead (while loading, and over the whole process)."""
    name = f"i-{latency}-{concurrency}-{'ledger' if ledger else 'none'}"
    with SandboxServer(latency_ms=latency) as sandbox:
        sandbox.start()
        env_api = {**env, "VOIPTIME_API_URL": sandbox.url, "VOIPTIME_API_KEY": DEFAULT_API_KEY}
        found = folder / f"{name}.json"
        child(
            [
                sys.executable,
                str(ROOT / "scripts" / "bench_load.py"),
                *([] if ledger else ["--no-ledger"]),
                "--",
                str(source),
                "--mapping",
                str(mapping),
                "--report-dir",
                str(folder / name),
                "--state",
                str(folder / f"{name}.sqlite"),
                "--concurrency",
                str(concurrency),
                "-q",
            ],
            env_api,
            stdout=found,
        )
    got = json.loads(found.read_text(encoding="utf-8").strip().splitlines()[-1])
    leads = max(int(got["leads"]), 1)
    return {
        "leads": leads,
        "rate": leads / got["load_s"],
        "cpu_ms": 1000 * got["load_cpu_s"] / leads,
        "cpu_all_ms": 1000 * got["cpu_s"] / leads,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=100_000)
    parser.add_argument("--xlsx-rows", type=int, default=100_000)
    parser.add_argument("--load-leads", type=int, default=4_000)
    parser.add_argument("--data", type=Path, default=ROOT / ".bench-data", help="data cache")
    parser.add_argument(
        "--install-extra",
        action="store_true",
        help="first install the bench extra (frictionless-py) with requirements.lock's pins; "
        "a failure leaves its row 'not measured' and the rest is measured",
    )
    args = parser.parse_args()
    not_installed = install_extra() if args.install_extra else None
    if not_installed:
        print(f"frictionless-py not measured: {not_installed}", flush=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOIPTIME_")}
    data = args.data / (
        f"v{make_bench_data.VERSION}-{make_bench_data.fingerprint()}-{args.rows}-"
        f"{args.small_rows}-{args.xlsx_rows}-{args.load_leads}"
    )
    data.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="voiptime-bench-"))
    rows: list[tuple[str, str, str]] = []
    try:
        mapping = folder / "bench.yaml"
        mapping.write_text(make_bench_data.MAPPING, encoding="utf-8")
        big, small, book = data / "big.csv", data / "small.csv", data / "book.xlsx"
        leads, few = data / "leads.csv", data / "leads-few.csv"
        started = time.perf_counter()
        for path, write in (
            (big, lambda p: make_bench_data.write_csv(p, args.rows)),
            (small, lambda p: make_bench_data.write_csv(p, args.small_rows, seed=5)),
            (book, lambda p: make_bench_data.write_xlsx(p, args.xlsx_rows, seed=6)),
            (leads, lambda p: make_bench_data.write_csv(p, args.load_leads, seed=9)),
            # concurrency 1: 20 leads/s at best, so a smaller file
            (few, lambda p: make_bench_data.write_csv(p, max(100, args.load_leads // 20), seed=9)),
        ):
            if not path.exists():  # written under a temporary name: a stopped run leaves none
                part = path.with_name("part-" + path.name)
                write(part)
                part.replace(path)
        print(f"data ready in {time.perf_counter() - started:.0f} s ({data})", flush=True)

        def validate(path: Path, count: int, label: str) -> dict[str, float]:
            out = etl(
                [
                    "validate",
                    str(path),
                    "--mapping",
                    str(mapping),
                    "--report-dir",
                    str(folder / f"r-{path.stem}"),
                ],
                env,
            )
            summary = json.loads((folder / f"r-{path.stem}" / "summary.json").read_text())
            assert summary["rows_read"] == count, summary["rows_read"]
            out["rate"] = count / out["wall"]
            rows.append(
                (
                    label,
                    f"{out['rate']:,.0f} rows/s",
                    f"{out['wall']:.1f} s, peak RSS {out['rss']:.0f} MB, "
                    f"{summary['rows_rejected']:,} rejected",
                )
            )
            print(*rows[-1], flush=True)
            return out

        small_run = validate(small, args.small_rows, f"validate CSV {args.small_rows:,} rows")
        big_run = validate(big, args.rows, f"validate CSV {args.rows:,} rows")
        rows.append(
            (
                f"  peak RSS {args.rows:,} / {args.small_rows:,} rows",
                f"{big_run['rss'] / small_run['rss']:.2f}x",
                "target <= 1.3x and <= 400 MB",
            )
        )
        try:
            if not_installed:
                raise RuntimeError(not_installed)
            out = frictionless(big, args.rows, folder, env)
            rate = args.rows / out["wall"]
            rows.append(
                (
                    f"frictionless-py {args.rows:,} rows",
                    f"{rate:,.0f} rows/s",
                    f"ours {big_run['rate'] / rate:.2f}x (target >= 4x); {out['wall']:.1f} s, "
                    f"{out['errors']:,.0f} errors",
                )
            )
        except RuntimeError as exc:  # the rest of the table is still measured
            rows.append((f"frictionless-py {args.rows:,} rows", "not measured", str(exc)))
        print(*rows[-1], flush=True)
        validate(book, args.xlsx_rows, f"validate XLSX {args.xlsx_rows:,} rows")

        loads = {}
        for latency, concurrency, ledger in (
            (50, 1, True),
            (50, 16, True),
            (50, 32, True),
            (0, 16, True),
            (0, 16, False),
        ):
            loads[latency, concurrency, ledger] = run = load(
                few if concurrency == 1 else leads,
                mapping,
                folder,
                env,
                latency,
                concurrency,
                ledger,
            )
            if latency:
                bound = concurrency / (latency / 1000)
                rows.append(
                    (
                        f"import at {latency} ms, concurrency {concurrency}",
                        f"{run['rate']:,.0f} leads/s",
                        f"bound {bound:,.0f}/s: {100 * run['rate'] / bound:.1f}% "
                        f"({run['leads']:,} leads; client CPU {run['cpu_ms']:.2f} ms/lead)",
                    )
                )
                print(*rows[-1], flush=True)
        with_ledger, without = loads[0, 16, True], loads[0, 16, False]
        rows.append(
            (
                "import at 0 ms, concurrency 16",
                f"{with_ledger['rate']:,.0f} leads/s",
                f"client CPU {with_ledger['cpu_ms']:.2f} ms/lead while loading "
                f"(whole process {with_ledger['cpu_all_ms']:.2f}: read, validate, send, reports)",
            )
        )
        rows.append(
            (
                "  same, ledger's per-lead work off",
                f"{without['rate']:,.0f} leads/s",
                f"ledger cost {100 * (1 - with_ledger['rate'] / without['rate']):.1f}% of the "
                f"rate, {with_ledger['cpu_ms'] - without['cpu_ms']:.2f} ms CPU/lead "
                "(target <= 10%)",
            )
        )
        print(*rows[-2], flush=True)
        print(*rows[-1], flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'measure':<{width}} | {'figure':>16} | notes")
    print(f"{'-' * width}-|-{'-' * 16}-|------")
    for label, figure, note in rows:
        print(f"{label:<{width}} | {figure:>16} | {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
