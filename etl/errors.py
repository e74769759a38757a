"""The one exception tree of voiptime-etl, and the process exit codes.

Every error the library raises derives from :class:`EtlError`; each class knows the exit code the
CLI maps it to (``docs/exit-codes.md``)::

    EtlError                         1   (never raised bare)
    ├── UsageError                   2   bad command-line use
    ├── ConfigError                  78  bad settings or configuration
    │   ├── MappingError             78  the mapping file: every problem at once, with key paths
    │   ├── UnknownReferenceError    78  unknown project / status / source / campaign
    │   └── ConfigErrorGroup         78  several of these at once (``errors``), one line each
    ├── InputError                   65  an input file cannot be read (path)
    │   └── InputMissingError        66  an input file does not exist
    ├── OutputError                  74  a report or the state file cannot be written (path)
    │   └── StateVersionError        74  the ledger was written by a newer voiptime-etl
    ├── LockedError                  75  another run holds the state lock
    ├── ListenError                  75  the sandbox cannot listen on its address
    ├── WorkerError                  75  a worker process checking chunks died (killed)
    ├── RunFailedError               *   a library run ended with an exit code its caller refuses
    └── ApiError                     the Voiptime Cloud API (method, path, status_code)
        ├── RetriableApiError        75  429, 503, connect failures: safe to try again
        │   └── RateLimitedError     75  429 / 503 (retry_after seconds, retry_at)
        │       └── RetryLaterError  75  the server asks to wait longer than the run may: stop now
        ├── FatalApiError            75  not worth retrying
        │   ├── AuthError            77  401 / 403
        │   ├── NotFoundError        78  404 (a project, campaign or lead that does not exist)
        │   └── RequestRejectedError 3   another 4xx: the server refused this body
        └── AmbiguousApiError        4   a write reached the server, the answer was lost

Messages name the file, row, column and the URL *path* (never the host's key or query secrets);
the API key is never part of any message or attribute. A message never starts with ``Error:``:
the CLI prints every error in one place, as ``Error: <message>`` (one line for each error of a
:class:`ConfigErrorGroup`).
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "AmbiguousApiError",
    "ApiError",
    "AuthError",
    "ConfigError",
    "ConfigErrorGroup",
    "EXIT_AMBIGUOUS",
    "EXIT_AUTH",
    "EXIT_CANTCREAT",
    "EXIT_CONFIG",
    "EXIT_DATAERR",
    "EXIT_NOINPUT",
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_TEMPFAIL",
    "EXIT_USAGE",
    "EtlError",
    "FatalApiError",
    "InputError",
    "InputMissingError",
    "ListenError",
    "LockedError",
    "MappingError",
    "NotFoundError",
    "OutputError",
    "RateLimitedError",
    "RequestRejectedError",
    "RetriableApiError",
    "RetryLaterError",
    "RunFailedError",
    "StateVersionError",
    "UnknownReferenceError",
    "UsageError",
    "WorkerError",
    "closest",
    "combine_exit_codes",
    "exit_meaning",
]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_REJECTED = 3
EXIT_AMBIGUOUS = 4
EXIT_DATAERR = 65
EXIT_NOINPUT = 66
EXIT_CANTCREAT = 74
EXIT_TEMPFAIL = 75
EXIT_AUTH = 77
EXIT_CONFIG = 78

#: When several exit codes apply, the first of this order wins (docs/exit-codes.md).
EXIT_PRECEDENCE: Sequence[int] = (77, 78, 74, 65, 66, 4, 75, 3, 0)


def combine_exit_codes(codes: Iterable[int]) -> int:
    """Pick the exit code of a run from the codes of its parts.

    Args:
        codes: exit codes that apply (any order, repeats allowed).

    Returns:
        The first code of :data:`EXIT_PRECEDENCE` that occurs, or 0 when none does. A code
        outside the table (1) ranks just before 0.
    """
    seen = set(codes)
    for code in EXIT_PRECEDENCE:
        if code in seen and code != 0:
            return code
    return 1 if 1 in seen else 0


#: Each exit code in the words of the person who owns the list (README, "Exit codes").
_EXIT_MEANINGS = {
    0: "finished: every row was done",
    1: "stopped by an unexpected error",
    2: "the command line was wrong",
    3: "finished, but some rows were rejected or refused: they are listed in rejects.csv",
    4: "finished, but for some rows the dialer's answer was lost: a person must check them",
    65: "an input file could not be read: nothing of that file was sent",
    66: "an input file was not found",
    74: "a report or the state file could not be written",
    75: "a temporary problem (the dialer busy or unreachable, or another run at work): "
    "running again is safe",
    77: "the dialer refused the API key",
    78: "the mapping or the settings are wrong, or name a project, status, source or campaign "
    "the dialer does not know",
    130: "interrupted (Ctrl-C): running again finishes the work",
    143: "stopped (terminated): running again finishes the work",
}


def exit_meaning(code: int, command: str = "import") -> str:
    """An exit code in plain words (``3`` → ``finished, but some rows were rejected …``).

    ``validate`` says "valid" where ``import`` says "done" for exit 0.
    """
    if code == 0 and command == "validate":
        return "finished: every row is valid"
    return _EXIT_MEANINGS.get(code, f"exit code {code}")


def closest(value: object, choices: Iterable[object], cutoff: float = 0.6) -> str | None:
    """The one choice most like ``value`` (case-insensitive, ``difflib`` ratio ≥ ``cutoff``).

    ``closest("Sprng outreach", ["Spring outreach", "Autumn"])`` → ``"Spring outreach"``;
    ``None`` when nothing is close, so a message suggests nothing rather than something unrelated.
    """
    names = {str(c).strip().casefold(): str(c) for c in choices}
    found = difflib.get_close_matches(str(value).strip().casefold(), names, n=1, cutoff=cutoff)
    return names[found[0]] if found else None


class EtlError(Exception):
    """Root of every error raised by voiptime-etl."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled with its attributes whatever its ``__init__`` takes (a worker process that
        reads a file raises it to the main process)."""
        return (_rebuilt, (type(self), self.message, dict(self.__dict__)))


def _rebuilt(kind: type[EtlError], message: str, state: dict[str, Any]) -> EtlError:
    """An :class:`EtlError` of ``kind`` made again from its pickle (see ``__reduce__``)."""
    error = kind.__new__(kind)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class UsageError(EtlError):
    """The command line asks for something impossible (exit 2)."""

    exit_code = EXIT_USAGE


class ConfigError(EtlError):
    """Settings or configuration are wrong (exit 78)."""

    exit_code = EXIT_CONFIG


class MappingError(ConfigError):
    """The mapping file is wrong.

    Attributes:
        path: the mapping file (or the data file whose headers did not match).
        problems: every problem found, each ``"<key path>: <what is wrong>"``.
        partial: what of the mapping could be read despite the problems (an
            ``etl.mapping.Mapping``, its project ``""`` when none was usable), so its columns
            and names can be checked in the same run; ``None`` when nothing could be read
            (not YAML, not a mapping of keys).
    """

    def __init__(self, path: str, problems: Sequence[str], partial: object = None) -> None:
        self.path = str(path)
        self.problems = list(problems)
        self.partial = partial
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(
            f"{self.path}: {n} mapping problem{'s' if n != 1 else ''}:\n{lines}\n"
            "Fix the mapping file and run again."
        )


class UnknownReferenceError(ConfigError):
    """A project, status, source or campaign named in the mapping does not exist.

    Attributes:
        kind: ``"project"``, ``"status"``, ``"source"`` or ``"campaign"``.
        value: what the mapping or command line gave.
        known: names that do exist (to suggest).
    """

    def __init__(self, kind: str, value: object, known: Sequence[str] = ()) -> None:
        self.kind = kind
        self.value = value
        self.known = list(known)
        #: The one known name most like ``value``, or ``None`` when none is close.
        self.suggestion = closest(value, self.known) if self.known else None
        plural = "statuses" if kind == "status" else f"{kind}s"
        listing = _LISTINGS.get(kind, "")
        if self.suggestion is not None:
            hint = f" Did you mean {self.suggestion!r}?"
        elif 0 < len(self.known) <= 10:
            hint = f" Known {plural}: {', '.join(repr(k) for k in self.known)}."
        elif self.known:
            hint = f" None of the {len(self.known)} known {plural} is close; {listing} lists them."
        else:
            hint = f" There are no {plural}." if kind != "project" else ""
        super().__init__(f"Unknown {kind} {value!r}.{hint}")


class ConfigErrorGroup(ConfigError):
    """Several configuration errors found at once (exit 78), e.g. three unknown names, or
    missing columns and no API key; each is reported on its own (an ``Error:`` line each).

    Attributes:
        errors: the errors in the order found (a group given among them is flattened).
    """

    errors: tuple[ConfigError, ...]

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        flat: list[ConfigError] = []
        for error in errors:
            flat += error.errors if isinstance(error, ConfigErrorGroup) else [error]
        self.errors = tuple(flat)
        super().__init__("\n".join(str(e) for e in self.errors))


#: The command that lists each kind of name.
_LISTINGS = {
    "project": "`voiptime-etl projects`",
    "status": "`voiptime-etl statuses PROJECT`",
    "source": "`voiptime-etl sources PROJECT`",
    "campaign": "`voiptime-etl campaigns`",
}


class InputError(EtlError):
    """An input file cannot be read; nothing of it is sent (exit 65).

    Attributes:
        path: the input file.
        row: the source row, when the problem is at one place.
    """

    exit_code = EXIT_DATAERR

    def __init__(self, path: str, message: str, row: int | None = None) -> None:
        self.path = str(path)
        self.row = row
        where = f"{self.path}, row {row}" if row is not None else self.path
        super().__init__(f"{where}: {message}")


class InputMissingError(InputError):
    """An input file does not exist (exit 66)."""

    exit_code = EXIT_NOINPUT


class OutputError(EtlError):
    """A report or the state file cannot be written (exit 74).

    Attributes:
        path: what could not be written.
    """

    exit_code = EXIT_CANTCREAT

    def __init__(self, path: str, message: str) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: {message}")


class StateVersionError(OutputError):
    """The ledger was written by a newer voiptime-etl than this one (exit 74)."""


class LockedError(EtlError):
    """Another run holds the lock of the state file (exit 75)."""

    exit_code = EXIT_TEMPFAIL


class ListenError(EtlError):
    """The sandbox cannot listen on its address: the port is taken, or not allowed (exit 75)."""

    exit_code = EXIT_TEMPFAIL


class WorkerError(EtlError):
    """A worker process of :class:`etl.check.ChunkPool` died while checking a chunk (killed,
    out of memory); the run stops there, writes its reports, and is safe to run again."""

    exit_code = EXIT_TEMPFAIL


class RunFailedError(EtlError):
    """A run (:func:`etl.import_files`) ended with an exit code its caller does not accept
    (``RunSummary.raise_for_exit_code``); raised so an orchestrator marks its task failed.

    Attributes:
        exit_code: the run's exit code (docs/exit-codes.md), e.g. 75: safe to retry.
        report_dir: the run's report folder.
    """

    def __init__(self, message: str, exit_code: int, report_dir: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.report_dir = report_dir


class ApiError(EtlError):
    """The Voiptime Cloud API answered with an error or could not be reached.

    Attributes:
        method: HTTP method, e.g. ``"POST"``.
        path: URL path below the API base, e.g. ``"/leads"`` (never the key).
        status_code: HTTP status, or ``None`` when no answer arrived.
        detail: the server's message, when it gave one.
    """

    exit_code = EXIT_TEMPFAIL

    def __init__(
        self,
        method: str,
        path: str,
        message: str,
        status_code: int | None = None,
        detail: str = "",
    ) -> None:
        self.method = method
        self.path = path
        self.status_code = status_code
        self.detail = detail
        super().__init__(f"{method} {path}: {message}")


class RetriableApiError(ApiError):
    """A failure that is safe to retry: 429, 503, or no connection (exit 75 when exhausted)."""

    exit_code = EXIT_TEMPFAIL


class RateLimitedError(RetriableApiError):
    """429 Too Many Requests (or 503 Service Unavailable).

    Attributes:
        retry_after: seconds the server asked us to wait (``Retry-After``), or ``None`` when it
            gave no usable value (absent, unreadable, or a date already past).
        retry_at: when that wait ends (UTC), or ``None``.
    """

    def __init__(
        self,
        method: str,
        path: str,
        message: str,
        status_code: int | None = 429,
        detail: str = "",
        retry_after: float | None = None,
        retry_at: dt.datetime | None = None,
    ) -> None:
        super().__init__(method, path, message, status_code, detail)
        self.retry_after = retry_after
        self.retry_at = retry_at


class RetryLaterError(RateLimitedError):
    """The server's ``Retry-After`` is longer than this run may wait (RFC 9110 §10.2.3): the
    request is not sent again before that time; the run stops at once (exit 75).

    ``retry_after`` and ``retry_at`` say when a rerun may send again.
    """


class FatalApiError(ApiError):
    """A failure that retrying will not fix."""

    exit_code = EXIT_TEMPFAIL


class AuthError(FatalApiError):
    """401 Unauthorized or 403 Forbidden: the key is wrong or lacks rights (exit 77)."""

    exit_code = EXIT_AUTH


class NotFoundError(FatalApiError):
    """404 Not Found: the project, campaign or lead does not exist (exit 78)."""

    exit_code = EXIT_CONFIG


class RequestRejectedError(FatalApiError):
    """Another 4xx: the server refused this request body (exit 3 for the row)."""

    exit_code = EXIT_REJECTED


class AmbiguousApiError(ApiError):
    """A writing request reached the server and its answer was lost (exit 4).

    The lead or campaign entry may or may not exist; the API has no idempotency key and no lead
    search, so the request is not re-sent automatically.
    """

    exit_code = EXIT_AMBIGUOUS
