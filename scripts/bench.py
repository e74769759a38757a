"""Measure the sandbox API's throughput over loopback (requests per second).

Starts an in-process :class:`etl.sandbox.SandboxServer` (or uses ``--url``, an API base such as
``http://127.0.0.1:8080/api`` with ``--api-key``) and times ``GET /projects`` and ``POST /leads``
with keep-alive ``requests.Session`` clients, 1 and 4 client threads. The in-process numbers are a
floor: client and server share one interpreter (and its GIL).

Usage: ``python scripts/bench.py [--duration SECONDS] [--url URL --api-key KEY]``
"""

from __future__ import annotations

import argparse
import itertools
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from etl.sandbox import DEFAULT_API_KEY, SandboxServer  # noqa: E402

_counter = itertools.count(1)


def _lead_body() -> dict[str, object]:
    n = next(_counter)
    return {
        "groupId": 1,
        "name": "Bench",
        "surname": f"Lead{n}",
        "email": f"bench{n}@example.com",
        "timezoneId": "America/New_York",
        "phones": [{"number": f"+1415555{n % 10000:04d}", "label": "mobile"}],
    }


def _run(
    url: str, key: str, threads: int, duration: float, call: Callable[[requests.Session, str], int]
) -> float:
    """Run ``call`` in ``threads`` sessions for ``duration`` seconds; return requests per second."""
    counts = [0] * threads
    errors: list[str] = []
    start_gate = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def worker(i: int) -> None:
        with requests.Session() as session:
            session.headers.update({"Api-Key": key})
            call(session, url)  # warm the connection
            start_gate.wait()
            while time.perf_counter() < stop_at[0]:
                status = call(session, url)
                if status >= 400:
                    errors.append(str(status))
                    return
                counts[i] += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    stop_at[0] = time.perf_counter() + duration + 0.05
    start_gate.wait()
    began = time.perf_counter()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise SystemExit(f"bench failed: HTTP {errors[0]}")
    return sum(counts) / elapsed


def _get_projects(session: requests.Session, url: str) -> int:
    return session.get(url + "/projects").status_code


def _post_lead(session: requests.Session, url: str) -> int:
    return session.post(url + "/leads", json=_lead_body()).status_code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=1.5, help="seconds per measurement")
    parser.add_argument("--url", help="bench this API base URL instead of an in-process sandbox")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    args = parser.parse_args()
    server = None if args.url else SandboxServer().start()
    url = args.url or server.url  # type: ignore[union-attr]
    where = url if args.url else f"in-process sandbox at {url}"
    print(f"Benchmarking {where}, {args.duration:g} s per measurement")
    try:
        for label, call in (("GET /projects", _get_projects), ("POST /leads", _post_lead)):
            for threads in (1, 4):
                rate = _run(url, args.api_key, threads, args.duration, call)
                noun = "thread " if threads == 1 else "threads"
                print(f"  {label:<14} {threads} client {noun}: {rate:8.0f} requests/s")
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
