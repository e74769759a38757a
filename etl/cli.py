"""The ``voiptime-etl`` command line: parse options, call one library function, render, exit.

``click`` is imported only here (house style 1). Errors reach the user in one place,
:func:`_print_error`: ``Error: <what, where, what to do>`` on stderr (or one JSON ``error`` event
with ``--log-format json``); :func:`_fail` adds a traceback only with ``--debug`` and exits with
the error class's code (docs/exit-codes.md). stdout carries results only.
"""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import json
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from etl import __version__
from etl.cancel import Cancel
from etl.client import VoiptimeClient
from etl.config import DEFAULT_STATE, Settings, default_report_dir, environ
from etl.errors import (
    ConfigErrorGroup,
    EtlError,
    InputMissingError,
    ListenError,
    UsageError,
    exit_meaning,
)
from etl.jobs import expand_sources
from etl.pipeline import RunOptions, RunResult, run
from etl.references import match_reference
from etl.state import RUN_COUNTS, Ledger, LedgerReport, RunRecord, Settlement

__all__ = ["main"]

log = logging.getLogger("etl")


class _Redact(logging.Filter):
    """Replaces the API key wherever it would appear in a log record."""

    def __init__(self, secret: str | None) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secret:
            message = record.getMessage()
            if self.secret in message:
                record.msg = message.replace(self.secret, "***")
                record.args = ()
        return True


class _JsonFormatter(logging.Formatter):
    """One JSON object a line, for log collectors (``--log-format json``): ``time`` (UTC, ISO
    8601 with milliseconds), ``level``, ``logger``, ``message``, and the fields of an event
    (``event``, ``exit_code``, counts) where the record carries them."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


#: How log lines and errors are written on stderr: ``text`` or ``json`` (``--log-format``).
_LOG_FORMAT = {"format": "text"}


def _use_log_format(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """``--log-format``'s callback: takes effect before any other option is handled."""
    _LOG_FORMAT["format"] = value
    return value


def _event(level: int, message: str, secret: str | None = None, **fields: Any) -> None:
    """Write one JSON event on stderr whatever the log level (errors, a run's end)."""
    if secret:
        message = message.replace(secret, "***")
    record = logging.LogRecord("etl.cli", level, __file__, 0, message, None, None)
    record.fields = fields
    click.echo(_JsonFormatter().format(record), err=True)


def _setup_logging(verbose: int, quiet: bool, debug: bool, secret: str | None) -> None:
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    if verbose:
        level = logging.INFO
    if debug or verbose > 1:
        level = logging.DEBUG
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_voiptime", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._voiptime = True  # type: ignore[attr-defined]
    if _LOG_FORMAT["format"] == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_Redact(secret))
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("urllib3").setLevel(max(level, logging.INFO))


def _print_error(exc: BaseException, secret: str | None, code: int | None = None) -> None:
    """The one place an error reaches the user: ``Error: <message>`` on stderr, a line of its own
    for each error of a :class:`~etl.errors.ConfigErrorGroup`; with ``--log-format json`` one
    ``error`` event instead. ``code`` defaults to the error's exit code; the key is never shown.
    """
    parts = exc.errors if isinstance(exc, ConfigErrorGroup) else (exc,)
    message = "\nError: ".join(str(part) for part in parts)
    if secret:
        message = message.replace(secret, "***")
    if code is None:
        code = exc.exit_code if isinstance(exc, EtlError) else 1
    if _LOG_FORMAT["format"] == "json":
        _event(logging.ERROR, message, event="error", exit_code=code)
    else:
        click.echo(f"Error: {message}", err=True)


def _fail(exc: BaseException, debug: bool, secret: str | None = None) -> NoReturn:
    code = exc.exit_code if isinstance(exc, EtlError) else 1
    if debug:
        trace = "".join(traceback.format_exception(exc))
        click.echo(trace.replace(secret, "***") if secret else trace, err=True)
    _print_error(exc, secret, code)
    sys.exit(code)


def _common(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options every command that talks to the API shares."""
    f = click.option(
        "--debug", is_flag=True, help="Debug logging and tracebacks (the key is never shown)."
    )(f)
    f = click.option("-q", "--quiet", is_flag=True, help="Print nothing on success (for cron).")(f)
    f = click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv: debug).")(f)
    f = click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        callback=_use_log_format,
        is_eager=True,
        expose_value=False,
        help="Log lines on stderr as text or as one JSON object a line (log collectors).",
    )(f)
    f = click.option(
        "--api-key-file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="File whose first line is the API key (default: env VOIPTIME_API_KEY).",
    )(f)
    f = click.option(
        "--api-url",
        metavar="URL",
        help="API base URL (default: env VOIPTIME_API_URL, else https://app.voiptimecloud.com/api).",
    )(f)
    return f


def _settings(
    api_url: str | None, api_key_file: Path | None, rate_limit: float | None = None
) -> Settings:
    try:
        return Settings.build(
            environ(), api_url=api_url, api_key_file=api_key_file, rate_limit=rate_limit
        )
    except EtlError as exc:
        _fail(exc, False)


class _KillAfter:
    """A crash-test hook: kills this process (SIGKILL, no clean-up) at its ``calls``-th call
    (at the first when ``calls`` is 0); thread-safe (the loader's workers call it)."""

    def __init__(self, calls: int) -> None:
        self._left = calls
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            self._left -= 1
            if self._left <= 0:
                os.kill(os.getpid(), signal.SIGKILL)


def _crash_hook(name: str, flag: bool = False) -> Callable[[], None] | None:
    """A crash test's hook, read from the environment here at the edge only (the library takes it
    as ``RunOptions.on_created`` or ``before_archive``): ``VOIPTIME_TEST_CRASH_AFTER_CREATED=N``
    kills the process once N leads are recorded created; a ``flag`` variable
    (``VOIPTIME_TEST_CRASH_BEFORE_ARCHIVE=1``) kills it at the first call. ``None`` when unset."""
    value = environ().get(name, "")
    if not value.isdigit() or (flag and not int(value)):
        return None
    return _KillAfter(1 if flag else int(value))


def _test_now() -> dt.datetime | None:
    """The run's time from ``VOIPTIME_TEST_NOW`` (ISO 8601 with an offset), so tests of past
    callbacks and calling windows are exact; ``None`` (the clock) when unset or unreadable."""
    value = environ().get("VOIPTIME_TEST_NOW", "")
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
    except ValueError:
        return None
    return when if when is not None and when.tzinfo is not None else None


def _window_options(func: Any) -> Any:
    """``--calling-window`` and ``--operator-timezone`` (validate and import)."""
    func = click.option(
        "--operator-timezone",
        metavar="ZONE",
        help="IANA zone the operator's hours are counted in (default: this machine's zone).",
    )(func)
    return click.option(
        "--calling-window",
        metavar="HH:MM-HH:MM",
        help="Local time a lead may be called (default: the mapping's, else 08:00-21:00).",
    )(func)


def _expand(sources: tuple[str, ...]) -> list[Path]:
    return expand_sources(sources)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="voiptime-etl")
def cli() -> None:
    """Import leads from CSV and Excel files into the Voiptime Cloud dialer.

    \b
    Example:
      export VOIPTIME_API_KEY=...            # from Main settings >> API
      voiptime-etl validate leads.csv --mapping mappings/leads.yaml
      voiptime-etl import leads.csv --mapping mappings/leads.yaml --campaign "Spring outreach"
    """
    _LOG_FORMAT["format"] = "text"  # until a command's --log-format says otherwise


def _render(result: RunResult, quiet: bool) -> None:
    s = result.summary
    if not result.reported:
        return  # stopped before reading a row: the error message says it all
    if s.rows_read == 0 and (result.error is not None or result.file_errors):
        return  # nothing read and a reason printed: no table of zeros
    if not quiet or result.exit_code != 0:
        console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
        title = "voiptime-etl " + ("dry run" if s.dry_run else s.command)
        table = Table(title=title, show_header=False, title_justify="left")
        table.add_column("what")
        table.add_column("count", justify="right")
        rows = [
            ("rows read", s.rows_read),
            ("rows valid", s.rows_valid),
            ("rows rejected", s.rows_rejected),
            ("  of them duplicates", s.rows_duplicate),
        ]
        if s.command == "import":
            would = "would be " if s.dry_run else ""
            rows += [
                (f"leads {would}created", s.leads_created),
                (f"leads {would}updated", s.leads_updated),
                ("leads unchanged", s.leads_unchanged),
                ("leads failed", s.leads_failed),
                ("  of them missing in the dialer", s.leads_missing),
                ("leads ambiguous", s.leads_ambiguous),
                (f"campaign entries {would}added", s.campaign_entries_added),
            ]
        guess = (s.ambiguity or {}).get("leads_probably_created")
        if guess is not None:
            rows.append(("  ambiguous leads probably in the dialer", guess))
        for what, n in rows:
            table.add_row(what, str(n))
        console.print(table)
        if s.retry_at:
            console.print(f"The API asks to wait until {s.retry_at}: rerun after that time.")
        if s.errors_by_field:
            errors = Table(title="Rejects per field", title_justify="left")
            errors.add_column("field")
            errors.add_column("rows", justify="right")
            for name, n in s.errors_by_field.items():
                errors.add_row(name, str(n))
            console.print(errors)
        if s.archive_dir is not None or len(s.files) > 1:
            console.print(_files_table(s.files))
        console.print(f"Report: {Path(result.report_dir) / 'report.html'}")
        console.print(
            f"Exit code: {result.exit_code} ({exit_meaning(result.exit_code, s.command)})"
        )


def _files_table(files: Sequence[dict[str, Any]]) -> Table:
    """Per-file results of a run (folder runs and runs of several files)."""
    table = Table(title="Files", title_justify="left")
    for column in ("file", "rows", "rejected", "created", "updated", "unchanged", "result"):
        left = column in ("file", "result")
        # a path or a reason folds onto more lines rather than being cut to "inbox/04-no…"
        table.add_column(column, justify="left" if left else "right", overflow="fold")
    for info in files:
        result = info.get("result") or ("failed" if info.get("error") else "done")
        if info.get("archived_to"):
            result += f" -> {info['archived_to']}"
        if info.get("reason"):
            result += f": {info['reason']}"
        elif info.get("error"):
            # the whole error is its own "Error:" line (and in summary.json): a long one
            # here made every failed file dozens of table lines
            result += " (see its Error line)"
        table.add_row(
            str(info["path"]),
            str(info.get("rows_read", 0)),
            str(info.get("rows_rejected", 0)),
            str(info.get("leads_created", "")),
            str(info.get("leads_updated", "")),
            str(info.get("leads_unchanged", "")),
            result,
        )
    return table


def _run_command(
    options: RunOptions, settings: Settings | None, quiet: bool, debug: bool
) -> NoReturn:
    secret = settings.api_key if settings else None
    cancel = Cancel()
    previous = _on_signals(cancel)
    bars = _progress_bars(quiet)
    try:
        factory = (
            functools.partial(VoiptimeClient.from_settings, settings)
            if settings is not None and settings.api_key
            else None
        )
        if bars is None:
            result = run(options, factory, cancel)
        else:
            with bars:
                tasks = {
                    "validated": bars.add_task("reading and validating", total=None),
                    "loaded": bars.add_task(
                        "loading", total=None, visible=options.command == "import"
                    ),
                }

                def progress(stage: str, rows: int) -> None:
                    if stage == "total":
                        bars.update(tasks["validated"], total=rows)
                        bars.update(tasks["loaded"], total=rows)
                    else:
                        bars.advance(tasks[stage], rows)

                result = run(options, factory, cancel, progress)
    except EtlError as exc:
        _fail(exc, debug, secret)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    json_lines = _LOG_FORMAT["format"] == "json"
    for error in result.file_errors:
        _print_error(error, secret)
    if result.error is not None:
        _print_error(result.error, secret, result.exit_code)
    if json_lines:
        s = result.summary
        _event(
            logging.INFO if result.exit_code == 0 else logging.WARNING,
            f"{options.command} finished with exit code {result.exit_code}",
            secret,
            event="run_finished",
            exit_code=s.exit_code,
            run_id=s.run_id,
            dry_run=s.dry_run,
            **{k: getattr(s, k) for k in RUN_COUNTS},
            duration_seconds=s.duration_seconds,
            files=[
                {k: f.get(k) for k in ("path", "rows_read", "rows_rejected", "result")}
                for f in s.files
            ],
            report_dir=str(result.report_dir),
        )
    _render(result, quiet)
    if cancel.is_set():
        # Requests abandoned in flight may still hold worker threads; the ledger and the
        # reports are written, so leave now rather than wait for their timeouts.
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(result.exit_code)
    sys.exit(result.exit_code)


def _progress_bars(quiet: bool) -> Progress | None:
    """Progress bars on stderr (rows, rows/s, elapsed), only when stderr is a terminal."""
    if quiet or not sys.stderr.isatty():
        return None
    return Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RowsPerSecond(),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    )


class _RowsPerSecond(ProgressColumn):
    """``1,234 rows/s`` from rich's own speed estimate."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "", style="progress.data.speed")


def _on_signals(cancel: Cancel) -> dict[int, Any]:
    """SIGINT/SIGTERM stop the run cleanly (exit 130/143); a second one stops at once."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handle(signum: int, frame: Any) -> None:
        if cancel.is_set():
            os._exit(128 + signum)
        log.warning(
            "%s: stopping; finishing requests in flight, then writing the reports",
            signal.Signals(signum).name,
        )
        cancel.fire(128 + signum)

    previous: dict[int, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handle)
    return previous


#: Options several commands share, each declared once (a click option makes a new parameter each
#: time it decorates a command).
_mapping_option = click.option(
    "--mapping", "mapping", required=True, type=click.Path(path_type=Path), help="The YAML mapping."
)
_debug_option = click.option("--debug", is_flag=True, help="Tracebacks on errors.")
_by_option = click.option("--by", "who", help="Who checked (default: your login name).")


def _report_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--report-dir`` and ``--keep-reports`` (validate and import)."""
    f = click.option(
        "--keep-reports",
        type=click.IntRange(min=1),
        metavar="N",
        help="After the run, keep only the newest N report folders under reports/ "
        "(only folders voiptime-etl wrote are ever removed).",
    )(f)
    return click.option(
        "--report-dir",
        type=click.Path(path_type=Path),
        help="Report folder (default reports/<UTC time>/).",
    )(f)


def _report_dir(report_dir: Path | None, keep_reports: int | None) -> Path:
    """The run's report folder; ``--keep-reports`` prunes only the default ``reports/``."""
    if report_dir is not None and keep_reports is not None:
        _fail(
            UsageError(
                "--keep-reports prunes the default reports/ folder; it cannot be used with "
                "--report-dir (clean that folder yourself)"
            ),
            False,
        )
    return report_dir or default_report_dir()


def _start(command: str, given: dict[str, Any], **hooks: Any) -> NoReturn:
    """Run ``validate`` or ``import`` with the values of its options (``given``, as click passes
    them): the API options make the :class:`Settings` (with ``--rate-limit``), the logging ones
    set the log up, and every other option is the :class:`RunOptions` field of its name (the
    sources expanded, ``--report-dir`` checked against ``--keep-reports``), with ``hooks``."""
    settings = _settings(
        given.pop("api_url"), given.pop("api_key_file"), given.pop("rate_limit", None)
    )
    quiet, debug = given.pop("quiet"), given.pop("debug")
    _setup_logging(given.pop("verbose"), quiet, debug, settings.api_key)
    options = RunOptions(
        command=command,
        sources=_expand(given.pop("sources")),
        report_dir=_report_dir(given.pop("report_dir"), given["keep_reports"]),
        now=_test_now(),
        **given,
        **hooks,
    )
    _run_command(options, settings, quiet, debug)


@cli.command("validate")
@click.argument("sources", nargs=-1, required=True)
@_mapping_option
@_report_options
@click.option(
    "--campaign", metavar="ID|NAME", help="Validate as for this campaign (phones required)."
)
@_window_options
@_common
def validate_cmd(**given: Any) -> None:
    """Check files against a mapping without sending anything.

    With no API key it checks offline; with one it also resolves the project, status, source and
    campaign names with read-only requests. Exits 3 when rows are rejected.

    \b
    Example:
      voiptime-etl validate sample_data/leads.csv --mapping mappings/leads.yaml
    """
    _start("validate", given)


@cli.command("import")
@click.argument("sources", nargs=-1, required=True)
@_mapping_option
@click.option(
    "--campaign", metavar="ID|NAME", help="Campaign to push the leads into (overrides the mapping)."
)
@click.option(
    "--dry-run", is_flag=True, help="Do everything but the writing calls; report what would happen."
)
@_report_options
@click.option(
    "--state",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_STATE,
    show_default=True,
    help="The run ledger (SQLite) that makes reruns safe.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Requests in flight.",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    metavar="PER_S",
    help="Most requests per second.",
)
@click.option("--retry-ambiguous", is_flag=True, help="Re-send rows an earlier run left ambiguous.")
@click.option(
    "--archive-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder run: move each file whose rows are all recorded to DIR/<UTC date>/.",
)
@click.option(
    "--settle-seconds",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="With --archive-dir: a file whose size or time changes within this is left alone.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Let these rows replace the values of leads another file (or, from a rejects file, "
    "another row) fed, instead of reporting a conflict or a duplicate.",
)
@click.option(
    "--recreate-missing",
    is_flag=True,
    help="Create again, as new leads, rows whose lead the dialer no longer has (answered 404).",
)
@click.option(
    "--new-ledger",
    is_flag=True,
    help="A state file that knows nothing of a project that already has contacts is intended "
    "(else refused: every lead would be doubled).",
)
@click.option(
    "--max-reject-rate",
    type=click.FloatRange(0, 100),
    metavar="PERCENT",
    help="Send nothing when more than this percent of rows are rejected (exit 3).",
)
@_window_options
@_common
def import_cmd(**given: Any) -> None:
    """Import leads into Voiptime Cloud and push them into a campaign.

    Rows are read, mapped, validated and sent in chunks; a rerun over the same rows creates
    nothing new (the --state ledger), and rejected rows go to rejects.csv in the report folder.

    With --archive-dir (a folder run), files run in name order; each one whose rows are all
    recorded is moved to DIR/<UTC date>/; one that failed stays (exit 65/78) and the others go on;
    one still being written (size or time changing, a .part or ~$ name) is left for the next run.

    \b
    Example:
      export VOIPTIME_API_KEY=...
      voiptime-etl import sample_data/leads.csv --mapping mappings/leads.yaml \\
          --campaign "Spring outreach" --report-dir reports/today
      voiptime-etl import 'inbox/*.csv' --mapping mappings/leads.yaml --archive-dir done/
    """
    _start(
        "import",
        given,
        on_created=_crash_hook("VOIPTIME_TEST_CRASH_AFTER_CREATED"),
        before_archive=_crash_hook("VOIPTIME_TEST_CRASH_BEFORE_ARCHIVE", flag=True),
    )


def _state_file(ctx: click.Context, state: Path | None, debug: bool, missing: str) -> Path:
    """The ledger a ``state`` command works on: its own --state, else the group's, else the
    default; logging set up. Exits 66 with ``missing`` as the reason when there is no such file."""
    _setup_logging(0, False, debug, None)
    path = state or (ctx.obj or {}).get("state") or DEFAULT_STATE
    if not path.exists():
        _fail(InputMissingError(str(path), missing), debug)
    return path


def _state_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--state",
        type=click.Path(path_type=Path, dir_okay=False),
        help=f"The run ledger (default {DEFAULT_STATE}).",
    )(f)


def _last_run_sentence(run: RunRecord) -> str:
    """``Last run (#3, 2026-12-01T03:00:00Z): created 1,204 leads, ... exit 0.``"""
    if run.exit_code is None:
        return (
            f"Last run (#{run.id}, started {run.started_at}) did not finish: the process "
            "stopped; run the import again to finish its work."
        )
    c = run.counts
    return (
        f"Last run (#{run.id}, {run.started_at}): created {c.get('leads_created', 0):,} leads, "
        f"updated {c.get('leads_updated', 0):,}, {c.get('leads_unchanged', 0):,} unchanged, "
        f"{c.get('rows_rejected', 0):,} rows rejected, {c.get('leads_ambiguous', 0):,} "
        f"ambiguous; exit {run.exit_code}."
    )


@cli.group("state", invoke_without_command=True)
@_state_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")
@click.option(
    "--runs", type=click.IntRange(1), default=10, show_default=True, help="How many runs to list."
)
@_debug_option
@click.pass_context
def state_cmd(
    ctx: click.Context, state: Path | None, as_json: bool, runs: int, debug: bool
) -> None:
    """What the ledger holds: leads per project and state, the ambiguous rows with their file
    and row, the last runs with their exit codes, and the settlements people made.

    An ambiguous row's lead was sent and its outcome is unknown. Look it up in the dialer, then
    settle it: `state resolve KEY --lead-id N` when the lead is there (the next run treats the
    row as created with that id), `state forget KEY` when it is not (the next run sends it).

    \b
    Example:
      voiptime-etl state
      voiptime-etl state --json | jq '.runs[0].counts.leads_created'
      voiptime-etl state resolve ann@example.com --lead-id 1042
    """
    ctx.ensure_object(dict)
    ctx.obj["state"] = state
    if ctx.invoked_subcommand is not None:
        return
    path = _state_file(ctx, state, debug, "no such state file (no import has run with it)")
    try:
        with Ledger.open_readonly(path) as ledger:
            report = ledger.report(runs)
    except EtlError as exc:
        _fail(exc, debug)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        return
    _render_state(report)


def _render_state(report: LedgerReport) -> None:
    # Piped or mailed (cron), rich takes 80 columns and cuts the 11 columns of "Last runs" to
    # "sta…" and "202…"; there the tables keep their width. A terminal's width and COLUMNS win.
    wide = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    console = Console(file=sys.stdout, highlight=False, soft_wrap=True, width=160 if wide else None)
    api = f", bound to {report.api_url}" if report.api_url else ""
    console.print(f"Ledger {report.path} (schema {report.schema_version}{api})")
    if report.runs:
        console.print(_last_run_sentence(report.runs[0]))
    console.print(_leads_table(report))
    if report.enrolments:
        shown = ", ".join(f"{n:,} {s}" for s, n in report.enrolments.items())
        console.print(f"Campaign enrolments: {shown}")
    if report.ambiguous:
        console.print(_ambiguous_table(report))
    else:
        console.print("No ambiguous rows.")
    if report.missing:
        console.print(_missing_table(report))
    if report.runs:
        console.print(_runs_table(report))
    if report.settlements:
        console.print(_settlements_table(report))


def _leads_table(report: LedgerReport) -> Table:
    """Leads per project (rows) and ledger state (columns)."""
    states = sorted({s for counts in report.leads.values() for s in counts})
    table = Table(title="Leads per project and state", title_justify="left")
    table.add_column("project", justify="right")
    for name in states:
        table.add_column(name, justify="right")
    for project, counts in report.leads.items():
        table.add_row(str(project), *[f"{counts.get(name, 0):,}" for name in states])
    return table


def _table(title: str, columns: Sequence[str]) -> Table:
    """An empty table, its title on the left, with these columns (left-aligned)."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    return table


def _ambiguous_table(report: LedgerReport) -> Table:
    """The rows whose outcome is unknown, with what to do about each."""
    table = _table(
        f"Ambiguous rows ({len(report.ambiguous)}): check each in the dialer, then "
        "`state resolve KEY --lead-id N` or `state forget KEY`",
        ("project", "key", "file", "row", "since"),
    )
    for a in report.ambiguous:
        table.add_row(str(a.project), a.key, a.source_file or "", str(a.source_row or ""), a.since)
    return table


def _missing_table(report: LedgerReport) -> Table:
    """The leads the dialer answered 404 for, with what answered 404."""
    table = _table(
        f"Leads missing in the dialer ({len(report.missing)}): not sent again until "
        "an import with --recreate-missing",
        ("project", "key", "lead", "file", "row", "why"),
    )
    for m in report.missing:
        table.add_row(
            str(m.project),
            m.key,
            str(m.lead_id or ""),
            m.source_file or "",
            str(m.source_row or ""),
            m.note or "",
        )
    return table


def _runs_table(report: LedgerReport) -> Table:
    """The last runs: files, counts and exit code of each."""
    table = Table(title="Last runs", title_justify="left")
    for column in ("run", "started", "finished", "files", "read", "rejected", "created"):
        table.add_column(column, justify="left" if column in ("started", "finished") else "right")
    for column in ("updated", "unchanged", "ambiguous", "exit"):
        table.add_column(column, justify="right")
    for r in report.runs:
        c = r.counts
        table.add_row(
            str(r.id),
            r.started_at,
            r.finished_at or "did not finish",
            str(len(r.files)),
            *[
                f"{c.get(k, 0):,}"
                for k in (
                    "rows_read",
                    "rows_rejected",
                    "leads_created",
                    "leads_updated",
                    "leads_unchanged",
                    "leads_ambiguous",
                )
            ],
            "" if r.exit_code is None else str(r.exit_code),
        )
    return table


def _settlements_table(report: LedgerReport) -> Table:
    """What people settled by hand (``state resolve`` / ``state forget``)."""
    table = _table(
        "Settled by people",
        ("at", "who", "action", "project", "key", "was", "lead id", "file", "row"),
    )
    for st in report.settlements:
        table.add_row(
            st.at,
            st.who,
            st.action,
            str(st.project),
            st.key,
            st.was,
            "" if st.lead_id is None else str(st.lead_id),
            st.source_file or "",
            "" if st.source_row is None else str(st.source_row),
        )
    return table


def _settle(
    ctx: click.Context,
    state: Path | None,
    debug: bool,
    act: Callable[[Ledger], list[Settlement]],
) -> list[Settlement]:
    """Run ``act`` on the ledger opened for writing (locked: not while an import runs)."""
    path = _state_file(ctx, state, debug, "no such state file")
    try:
        with Ledger.open(path) as ledger:
            return act(ledger)
    except EtlError as exc:
        _fail(exc, debug)


@state_cmd.command("resolve")
@click.argument("key")
@click.option(
    "--lead-id", type=click.IntRange(1), required=True, help="The lead's id in the dialer."
)
@click.option("--project", type=int, help="The project id, when the key is in several.")
@_by_option
@_state_option
@_debug_option
@click.pass_context
def state_resolve_cmd(
    ctx: click.Context,
    key: str,
    lead_id: int,
    project: int | None,
    who: str | None,
    state: Path | None,
    debug: bool,
) -> None:
    """Settle an ambiguous row: its lead is in the dialer with this id.

    The next run treats the row as created with that id (unchanged, or updated when the file
    changed, and enrolled in its campaign). Who, when and what are kept in the ledger.

    \b
    Example:
      voiptime-etl state resolve ann@example.com --lead-id 1042
    """
    by = who or getpass.getuser()
    (done,) = _settle(
        ctx, state, debug, lambda ledger: [ledger.resolve_key(key, lead_id, by, project)]
    )
    click.echo(
        f"{done.key} (project {done.project}): was {done.was}, now created as lead "
        f"{done.lead_id}; recorded as settled by {done.who} at {done.at}"
    )


@state_cmd.command("forget")
@click.argument("keys", nargs=-1, required=True)
@click.option("--project", type=int, help="The project id, when a key is in several.")
@_by_option
@_state_option
@_debug_option
@click.pass_context
def state_forget_cmd(
    ctx: click.Context,
    keys: tuple[str, ...],
    project: int | None,
    who: str | None,
    state: Path | None,
    debug: bool,
) -> None:
    """Forget ambiguous or rejected rows whose lead is NOT in the dialer: the next run sends
    them again. A created row is never forgotten (it would be created twice).

    \b
    Example:
      voiptime-etl state forget ann@example.com bob@example.com
    """
    by = who or getpass.getuser()
    settled = _settle(ctx, state, debug, lambda ledger: ledger.forget_keys(keys, by, project))
    for done in settled:
        click.echo(
            f"{done.key} (project {done.project}): was {done.was}, forgotten (the next run "
            f"sends it); recorded as settled by {done.who} at {done.at}"
        )


@cli.command("sandbox", context_settings={"show_default": True})  # every option's default
@click.option("--host", default="127.0.0.1", help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8765, help="Port (0: any free port)."
)
@click.option(
    "--latency-ms", type=click.IntRange(min=0), default=0, help="Delay added to every answer."
)
@click.option(
    "--data",
    type=click.Path(path_type=Path, dir_okay=False),
    help="JSON file of start data (projects, campaigns).",
)
@click.option("--api-key", default="sandbox-key", help="The key the sandbox accepts.")
def sandbox_cmd(host: str, port: int, latency_ms: int, data: Path | None, api_key: str) -> None:
    """Serve a local, in-memory Voiptime Cloud API for trying things out and for tests.

    Prints its base URL on the first line of stdout, then serves until interrupted.
    Fault injection: POST /_sandbox/faults (see docs/sandbox.md); state: GET /_sandbox/state.

    \b
    Example:
      voiptime-etl sandbox --port 8765 &
      VOIPTIME_API_URL=http://127.0.0.1:8765/api VOIPTIME_API_KEY=sandbox-key voiptime-etl projects
    """
    from etl.sandbox import SandboxServer, load_data

    try:
        start = load_data(data) if data else None
        server = SandboxServer(
            host=host, port=port, api_key=api_key, latency_ms=latency_ms, data=start
        )
    except EtlError as exc:
        _fail(exc, False)
    except OSError as exc:
        _fail(ListenError(f"cannot listen on {host}:{port}: {exc.strerror}"), False)

    def stop_serving(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM ends the sandbox as Ctrl-C does

    # Installed explicitly: a process started in the background by a shell inherits SIGINT
    # ignored, and Python then never turns Ctrl-C into KeyboardInterrupt.
    signal.signal(signal.SIGINT, stop_serving)
    signal.signal(signal.SIGTERM, stop_serving)
    click.echo(server.url, nl=True)
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _listing(rows: list[dict[str, Any]], columns: list[str], title: str) -> None:
    table = _table(title, columns)
    for row in rows:
        table.add_row(*[str(row.get(c, "")) for c in columns])
    Console(file=sys.stdout, highlight=False, soft_wrap=True).print(table)


def _api_call(
    api_url: str | None, api_key_file: Path | None, debug: bool, call: Callable[[Any], Any]
) -> Any:
    settings = _settings(api_url, api_key_file)
    _setup_logging(0, False, debug, settings.api_key)
    try:
        with VoiptimeClient.from_settings(settings) as client:
            return call(client)
    except EtlError as exc:
        _fail(exc, debug, settings.api_key)


def _project_id(client: Any, project: str) -> int:
    """A project id from an id or a name (exit 78 when unknown)."""
    wanted: int | str = int(project) if project.isdigit() else project
    return int(match_reference(client.list_projects(), wanted, "project")["id"])


def _api_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options of the commands that only list what the API holds."""
    f = _debug_option(f)
    f = click.option(
        "--api-key-file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="File holding the API key (default: env VOIPTIME_API_KEY).",
    )(f)
    return click.option(
        "--api-url", metavar="URL", help="API base URL (default: env VOIPTIME_API_URL)."
    )(f)


def _account_list_command(kind: str, summary: str, columns: list[str]) -> None:
    """Add the command ``KIND`` that lists the account's ``KIND`` (``projects``, ``campaigns``):
    the client's ``list_KIND``, shown in these columns."""

    @cli.command(kind, help=f"{summary}\n\n\b\nExample:\n  voiptime-etl {kind}")
    @_api_options
    def command(api_url: str | None, api_key_file: Path | None, debug: bool) -> None:
        rows = _api_call(api_url, api_key_file, debug, lambda c: getattr(c, f"list_{kind}")())
        _listing(rows, columns, kind.capitalize())


_account_list_command(
    "projects", "List the projects (groupId) the key can see.", ["id", "name", "contacts"]
)
_account_list_command(
    "campaigns", "List every campaign (all pages).", ["id", "name", "totalEntries"]
)


def _project_list_command(kind: str, example: str) -> None:
    """Add the command ``KIND PROJECT`` that lists a project's lead ``KIND`` (``sources``,
    ``statuses``): the client's ``list_KIND``."""

    @cli.command(
        kind,
        help=f"List the lead {kind} of a project (id or name).\n\n"
        f"\b\nExample:\n  voiptime-etl {kind} {example}",
    )
    @click.argument("project")
    @_api_options
    def command(project: str, api_url: str | None, api_key_file: Path | None, debug: bool) -> None:
        def fetch(client: Any) -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = getattr(client, f"list_{kind}")(
                _project_id(client, project)
            )
            return rows

        rows = _api_call(api_url, api_key_file, debug, fetch)
        _listing(rows, ["id", "name", "active"], f"{kind.capitalize()} of {project}")


_project_list_command("sources", "Demo")
_project_list_command("statuses", "1")


@cli.command("mapping-init")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--sheet", help="Sheet name or 0-based index (workbooks; default: the first).")
@_debug_option
def mapping_init_cmd(source: Path, sheet: str | None, debug: bool) -> None:
    """Print a starter mapping guessed from a file's headers and values.

    Headers are matched to lead fields by common synonyms in several languages (First Name,
    Vorname, Prénom → name; E-mail, Mail → email; Mobile, Cell, Handy → a mobile phone; TZ →
    timezoneId); the rest become dynamicData. Lines it guessed carry a comment.

    \b
    Example:
      voiptime-etl mapping-init sample_data/leads.csv > mappings/my-list.yaml
      voiptime-etl validate sample_data/leads.csv --mapping mappings/my-list.yaml
    """
    from etl.mapping_init import starter_mapping

    _setup_logging(0, False, debug, None)
    which: str | int | None = int(sheet) if sheet is not None and sheet.isdigit() else sheet
    try:
        click.echo(starter_mapping(source, sheet=which), nl=False)
    except EtlError as exc:
        _fail(exc, debug)


def main() -> None:
    """Entry point of the ``voiptime-etl`` console script."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(UsageError.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
