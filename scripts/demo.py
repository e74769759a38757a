"""`make demo`: import the sample data into the built-in sandbox, as a user would.

Starts `voiptime-etl sandbox` on a free loopback port, runs `voiptime-etl import` once per sample
file and mapping (the same commands a user types), prints each summary, then what the sandbox now
holds, and stops the sandbox. Reports go to `reports/demo/<name>/`. Exits 0 when every import
finished (the sample data is meant to have rejects, exit 3), else the first other exit code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = [
    ("leads", ["sample_data/leads.csv"], "mappings/leads.yaml"),
    ("accounts", ["sample_data/accounts.xlsx"], "mappings/accounts.yaml"),
    ("accounts.Partners", ["sample_data/accounts.xlsx"], "mappings/accounts.Partners.yaml"),
    ("callcentre", ["sample_data/callcentre.csv"], "mappings/callcentre.yaml"),
]


def main() -> int:
    os.chdir(ROOT)
    out = Path("reports/demo")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cli = [sys.executable, "-m", "etl"]
    sandbox = subprocess.Popen([*cli, "sandbox", "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert sandbox.stdout is not None
        url = sandbox.stdout.readline().strip()
        if not url.startswith("http"):
            print("The sandbox did not start.", file=sys.stderr)
            return 1
        print(f"Sandbox API at {url} (key: sandbox-key)\n")
        env = {**os.environ, "VOIPTIME_API_URL": url, "VOIPTIME_API_KEY": "sandbox-key"}
        worst = 0
        for name, sources, mapping in RUNS:
            command = [
                *cli,
                "import",
                *sources,
                "--mapping",
                mapping,
                "--report-dir",
                str(out / name),
                "--state",
                str(out / "state.sqlite"),
            ]
            print("$ voiptime-etl " + " ".join(command[3:]))
            code = subprocess.run(command, env=env).returncode
            print()
            if code not in (0, 3) and worst == 0:
                worst = code
        base = url.removesuffix("/api")
        with urllib.request.urlopen(base + "/_sandbox/state") as answer:
            state = json.load(answer)
        entries = sum(len(v) for v in state["campaign_entries"].values())
        print(
            f"The sandbox now holds {len(state['leads'])} leads, {entries} campaign entries, "
            f"{len(state['tasks'])} tasks (callbacks and meetings) and "
            f"{len(state['comments'])} notes."
        )
        for name, _, _ in RUNS:
            summary = json.loads((out / name / "summary.json").read_text())
            print(
                f"  {name}: read {summary['rows_read']}, created {summary['leads_created']}, "
                f"rejected {summary['rows_rejected']}, "
                f"in campaign {summary['campaign_entries_added']}, "
                f"tasks {summary['tasks_created']}; callable now {summary['callable_now']}"
            )
            print(f"    rejects: {out / name / 'rejects.csv'}")
            print(f"    report:  {out / name / 'report.html'}")
        return worst
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
