"""docs/orchestrators.md: every example runs the library call as written, against the sandbox.

The orchestrators are not installed: their decorators are replaced by plain functions (what the
decorated code does when the orchestrator calls it), the rest of each example runs unchanged with
its ``/srv/leads`` paths pointed at a temporary folder (sqlite-utils' habit of testing its docs).
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import logging
import re
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from clitools import ROOT, state
from test_folder_runs import HEADER, MAPPING, rows

import etl
from etl.errors import RunFailedError
from etl.sandbox import SandboxServer

DOC = ROOT / "docs" / "orchestrators.md"


def example(title: str) -> str:
    """The first python block under the ``## <title>`` heading."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"\n## {title}", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, title
    return found.group(1)


def decorator(wrap: Callable[[Callable[..., Any]], Callable[..., Any]] = lambda f: f) -> Any:
    """A decorator usable bare (``@task``) or with options (``@task(retries=3)``)."""

    def deco(*args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return wrap(args[0])
        return wrap

    return deco


def airflow_task(f: Callable[..., Any]) -> Callable[..., Any]:
    """Airflow passes the run's date as ``ds`` to a task that asks for it."""

    def run(*args: Any, **kwargs: Any) -> Any:
        if "ds" in inspect.signature(f).parameters:
            kwargs.setdefault("ds", "2026-12-01")
        return f(*args, **kwargs)

    return run


class MaterializeResult:
    def __init__(self, metadata: dict[str, Any]) -> None:
        self.metadata = metadata


def frameworks() -> dict[str, types.ModuleType]:
    modules = {}
    for name, attrs in {
        "airflow": {},
        "airflow.decorators": {"dag": decorator(), "task": decorator(airflow_task)},
        "dagster": {
            "asset": decorator(),
            "AssetExecutionContext": object,
            "MaterializeResult": MaterializeResult,
            "Definitions": lambda **kw: kw,
            "ScheduleDefinition": lambda **kw: kw,
        },
        "prefect": {
            "flow": decorator(),
            "task": decorator(),
            "get_run_logger": lambda: logging.getLogger("prefect"),
        },
    }.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        modules[name] = module
    return modules


@pytest.fixture
def srv(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, SandboxServer]:
    base = tmp_path / "srv" / "leads"
    (base / "inbox").mkdir(parents=True)
    (base / "inbox" / "a.csv").write_text(HEADER + rows("a", 2), encoding="utf-8")
    (base / "inbox" / "b.csv").write_text(HEADER + rows("b", 1), encoding="utf-8")
    (base / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    monkeypatch.setenv("VOIPTIME_API_KEY", "sandbox-key")
    monkeypatch.setenv("VOIPTIME_API_URL", sandbox.url)
    for name, module in frameworks().items():
        monkeypatch.setitem(sys.modules, name, module)
    return base, sandbox


def run_example(title: str, base: Path) -> dict[str, Any]:
    code = example(title).replace("/srv/leads", str(base))
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(code, f"{DOC}:{title}", "exec"), namespace)  # noqa: S102
    return namespace


def check_done(base: Path, sandbox: SandboxServer, report: Path) -> None:
    assert list((base / "inbox").iterdir()) == []
    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    assert sorted(p.name for p in (base / "done" / day).iterdir()) == ["a.csv", "b.csv"]
    assert len(state(sandbox)["leads"]) == 3
    summary = json.loads((report / "summary.json").read_text(encoding="utf-8"))
    assert (summary["leads_created"], summary["exit_code"]) == (3, 0)


def test_the_airflow_task(srv: tuple[Path, SandboxServer]) -> None:
    base, sandbox = srv
    run_example("Airflow", base)  # the module-level nightly_leads() runs the task
    check_done(base, sandbox, base / "reports" / "2026-12-01")


def test_the_dagster_asset(srv: tuple[Path, SandboxServer]) -> None:
    base, sandbox = srv
    ns = run_example("Dagster", base)
    context = types.SimpleNamespace(run_id="run-7", log=logging.getLogger("dagster"))
    result = ns["dialer_leads"](context)
    assert result.metadata == {
        "leads_created": 3,
        "leads_updated": 0,
        "rows_rejected": 0,
        "report": str(base / "reports" / "run-7" / "report.html"),
    }
    assert ns["defs"]["assets"] == [ns["dialer_leads"]]
    check_done(base, sandbox, base / "reports" / "run-7")


def test_the_prefect_flow(srv: tuple[Path, SandboxServer]) -> None:
    base, sandbox = srv
    ns = run_example("Prefect", base)
    out = ns["nightly_leads"]()
    assert (out["leads_created"], out["report_dir"]) == (3, str(base / "reports" / "latest"))
    check_done(base, sandbox, base / "reports" / "latest")


def test_the_flow_fails_on_a_file_it_cannot_map_and_keeps_it(
    srv: tuple[Path, SandboxServer],
) -> None:
    base, sandbox = srv
    (base / "inbox" / "c.csv").write_text("Vorname,Nachname\nAnn,Lee\n", encoding="utf-8")
    ns = run_example("Prefect", base)
    with pytest.raises(
        RunFailedError, match="(?s)exit code 78: .*column 'First' is not in"
    ) as info:
        ns["nightly_leads"]()
    assert info.value.exit_code == 78
    assert info.value.report_dir == str(base / "reports" / "latest")
    assert [p.name for p in (base / "inbox").iterdir()] == ["c.csv"]
    assert len(state(sandbox)["leads"]) == 3


def test_the_documented_call_is_the_public_one() -> None:
    assert etl.import_files is etl.jobs.import_files and "import_files" in etl.__all__
    assert "etl.import_files(" in example("Airflow") and "etl.import_files(" in example("Prefect")
