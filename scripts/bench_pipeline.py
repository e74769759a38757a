"""Measure the importer itself: validation rows/s on a large CSV, and import leads/s.

1. Writes a CSV of ``--rows`` invented leads (default 100,000; phones from fictional ranges,
   about 2% bad rows) and runs ``voiptime-etl validate`` on it in a child process: rows per
   second and the child's peak memory (RSS, MB).
2. Imports ``--import-rows`` of them (default 5,000) into an in-process sandbox through the CLI
   (a child process, ``--concurrency 4``): leads per second end to end, campaign enrolment
   included.

Usage: ``python scripts/bench_pipeline.py [--rows N] [--import-rows N]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from etl.sandbox import DEFAULT_API_KEY, SandboxServer  # noqa: E402

MAPPING = """\
project: Demo
campaign: Spring outreach
defaults: {region: US, region_column: Country, timezone: America/New_York}
key: [email]
fields: {name: First Name, surname: Last Name, email: Email, timezoneId: Time Zone}
phones: [{column: Mobile, label: mobile}]
dynamicData: {company: Company, signed_up: {column: Signed Up, type: date}}
"""
ZONES = ["America/New_York", "America/Chicago", "US/Pacific", "", "Europe/London"]


def write_csv(path: Path, rows: int) -> None:
    rnd = random.Random(1)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("First Name,Last Name,Email,Mobile,Country,Time Zone,Company,Signed Up\n")
        for i in range(rows):
            zone = rnd.choice(ZONES)
            if zone == "Europe/London":
                phone, country = f"020 7946 {i % 1000:04d}", "GB"
            else:
                phone, country = f"({rnd.choice([212, 312, 415, 617])}) 555-01{i % 100:02d}", "US"
            email = f"lead{i}@example.com" if rnd.random() > 0.02 else f"lead{i} at example.com"
            fh.write(
                f"Ann{i},Lee,{email},{phone},{country},{zone},Acme {i % 97},"
                f"2025-03-{1 + i % 28:02d}\n"
            )


def child(args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Run the CLI; return (seconds, peak RSS MB of children so far, exit code)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "etl", *args], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if proc.returncode not in (0, 3):
        print(proc.stderr, file=sys.stderr)
    return seconds, peak, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--import-rows", type=int, default=5_000)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOIPTIME_")}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mapping = folder / "m.yaml"
        mapping.write_text(MAPPING, encoding="utf-8")
        big = folder / "big.csv"
        write_csv(big, args.rows)
        seconds, peak, code = child(
            ["validate", str(big), "--mapping", str(mapping), "--report-dir", str(folder / "v")],
            env,
        )
        summary = json.loads((folder / "v" / "summary.json").read_text())
        print(
            f"validate {args.rows:,} rows: {seconds:.1f} s, {args.rows / seconds:,.0f} rows/s, "
            f"peak RSS {peak:.0f} MB, {summary['rows_rejected']:,} rejected (exit {code})"
        )
        small = folder / "small.csv"
        write_csv(small, args.import_rows)
        with SandboxServer() as sandbox:
            sandbox.start()
            env_api = {**env, "VOIPTIME_API_URL": sandbox.url, "VOIPTIME_API_KEY": DEFAULT_API_KEY}
            seconds, _, code = child(
                [
                    "import",
                    str(small),
                    "--mapping",
                    str(mapping),
                    "--report-dir",
                    str(folder / "i"),
                    "--state",
                    str(folder / "s.sqlite"),
                    "--concurrency",
                    "4",
                ],
                env_api,
            )
            summary = json.loads((folder / "i" / "summary.json").read_text())
            created = summary["leads_created"]
            print(
                f"import {args.import_rows:,} rows: {seconds:.1f} s, "
                f"{created / seconds:,.0f} leads/s "
                f"created and enrolled ({created:,} leads, "
                f"{summary['campaign_entries_added']:,} entries, exit {code})"
            )
            seconds, _, code = child(
                [
                    "import",
                    str(small),
                    "--mapping",
                    str(mapping),
                    "--report-dir",
                    str(folder / "j"),
                    "--state",
                    str(folder / "s.sqlite"),
                ],
                env_api,
            )
            print(
                f"rerun of the same {args.import_rows:,} rows (nothing to send): {seconds:.1f} s "
                f"(exit {code})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
