"""The run ledger: a SQLite file that makes imports idempotent and resumable.

The API has no idempotency key and no lead search, so only this file knows which rows already
became leads. Rows are keyed by project and the row's normalised ``key`` (never by position in the
file). A lead moves::

    (absent) ──mark_sending──▶ sending ──mark_created──▶ created(lead_id) ──mark_missing──▶ missing
                                  │                                                       │
                                  ├──mark_ambiguous──▶ ambiguous (sent, outcome unknown)   │
                                  ├──mark_rejected───▶ rejected (the server refused it: 4xx)
                                  └──forget──────────▶ (absent) (429/503/401: not processed)
                                                                                          │
    missing: the dialer answered 404 for the lead (deleted there); not sent again until a run
    with ``recreate_missing`` sends it as new (missing ──mark_sending──▶ sending ...).
    ``mark_created`` with a lead id the ledger already holds for another key records the row
    ``ambiguous`` instead (never two keys on one lead), with the reason in ``note``.


    Campaign enrolment (``in_campaign``) is the ``enrolments`` table below; a lead's tasks and
    notes are the ``stages`` table (one row per slot: ``callback``, ``meeting``, ``note.<i>``):

    (absent) ──stage_sending──▶ sending ──stage_done──▶ done(remote id, payload sent)
                                   ├──stage_ambiguous──▶ ambiguous
                                   └──stage_forget─────▶ (absent)

``sending`` is committed *before* the POST leaves, ``created`` as soon as the answer arrives; a
``sending`` row found when the ledger is opened again belonged to a run that died with the
request in flight, so it becomes ``ambiguous`` and is not re-sent unless a person asks. New
leads are *claimed* ahead (:meth:`Ledger.claim`): a group's ``sending`` rows in one transaction,
tagged with the run, before any of their POSTs leaves; just before each POST a *departed* mark
is appended to ``<file>.departed`` without an fsync (:meth:`Ledger.depart`: it outlives the
process, not the machine). The run records the boot it started in (``runs.boot_id``), so the
next run can tell: in the same boot, with the run's departed file whole, a claim without a mark
was never sent and is dropped (sent as new); any other claim is ``ambiguous`` like a request in
flight. A run that ends releases its claims not sent and removes its departed file. Campaign
enrolment is its own table, ``enrolments`` (``sending`` → ``done`` or ``ambiguous``), so leads
created but not enrolled are enrolled on the next run even if the file is gone.

Besides the leads, the ledger keeps what an on-call person needs the morning after: one row per
run (``runs``: start, end, files, counts, exit code), the files a folder run has fully recorded
(``files``: so a file whose rows are all recorded is never read again if the run died before
moving it to the archive), and every settlement a person made with ``state resolve`` or
``state forget`` (``settlements``: who, when, what). The schema is versioned in ``meta``; an older
file is migrated forward by additive steps (:data:`_MIGRATIONS`) when it is opened for a run.

Each lead remembers its *source*: the file and row whose values it holds now (``source_file``,
``source_row``; for a row of a re-imported rejects file, the file and row it was first read from),
and whether a person chose that source with ``--overwrite`` (``source_pinned``, schema 3). The
loader uses them so that two sources feeding one key do not overwrite each other run after run.

The ``baselines`` table keeps, per project and per campaign, the server's count (contacts,
``totalEntries``) beside the ledger's own count at a moment when nothing was ambiguous: later,
the server's growth beyond the ledger's tells how many ambiguous sends probably reached it.

SQLite in WAL mode with ``synchronous=FULL``: a commit survives a crash of the process or the
machine. Writes are *group commits*: the writes that the loader's threads ask for at the same
moment share one transaction and one fsync (:meth:`Ledger._group`), and each call still returns
only once its own write is committed, so a ``sending`` row is on disk before its POST leaves
(claims are committed a group at a time, before the group's first POST). The exception is the
``created`` row: it returns before its commit ends, and a transaction of such rows alone has no
fsync of its own (it survives the process, and reaches the disk with the next durable commit):
lost with the machine, its lead is ``sending`` again, hence ambiguous. Every
write a lead needs is a look-up by primary key or by an index (``leads.lead_id``,
``enrolments.lead_id``): none grows with the number of rows the ledger holds. A lock file
beside the ledger (``<file>.lock``, ``fcntl.flock``) keeps a second run off it, and so off its
departed file. The ledger holds payloads (lead fields) but never the API key; the departed file
holds digests only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import sqlite3
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from etl.errors import ConfigError, LockedError, OutputError, StateVersionError, UsageError

__all__ = [
    "AmbiguousRow",
    "LEAD_STATES",
    "Ledger",
    "LedgerEntry",
    "LedgerReport",
    "RUN_COUNTS",
    "RunRecord",
    "SCHEMA_VERSION",
    "Settlement",
    "Stage",
    "payload_hash",
    "read_boot_id",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 6

#: Every state a lead row of the ledger can be in (``missing`` from schema 4 on).
LEAD_STATES = ("sending", "created", "ambiguous", "rejected", "missing")

#: The counts of a run the ledger keeps (``runs.counts``, from ``summary.json``'s keys of the same
#: names) and the ``run_finished`` log event carries, in this order.
RUN_COUNTS = (
    "rows_read",
    "rows_rejected",
    "leads_created",
    "leads_updated",
    "leads_unchanged",
    "leads_failed",
    "leads_ambiguous",
    "campaign_entries_added",
)

#: ``leads`` as schema 1 created it; schema 4 rebuilds the table from the same text with a wider
#: state CHECK and two more columns (SQLite cannot widen a CHECK in place). Like every step below
#: it is frozen: a ledger migrated from any version must end as a new one does (a new column or
#: state is a new step; tests/test_state.py compares old files migrated with a new ledger).
_LEADS = """
CREATE TABLE {name} (
    project      INTEGER NOT NULL,
    key          TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN{states}),
    lead_id      INTEGER,
    payload_hash TEXT NOT NULL,
    payload      TEXT NOT NULL,
    campaign_id  TEXT,
    source_file  TEXT,
    source_row   INTEGER,
    updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),{added}
    PRIMARY KEY (project, key)
);"""

#: Schema 1; a new ledger gets it and then every step of :data:`_MIGRATIONS`, in order.
_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"""
    + _LEADS.format(
        name="IF NOT EXISTS leads",
        states=" ('sending', 'created', 'ambiguous', 'rejected')",
        added="",
    )
    + """
CREATE TABLE IF NOT EXISTS enrolments (
    campaign_id TEXT NOT NULL,
    lead_id     INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('sending', 'done', 'ambiguous')),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (campaign_id, lead_id)
);
"""
)

#: Additive steps from one schema version to the next: ``(version reached, SQL script)``. Each
#: step only adds (tables, columns, indexes, a state), so an older voiptime-etl's data stays as it
#: was; step 4 rebuilds ``leads`` with every row to widen its state CHECK.
_MIGRATIONS: list[tuple[int, str]] = [
    (
        2,
        """
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    command     TEXT NOT NULL,
    sources     TEXT NOT NULL DEFAULT '[]',
    files       TEXT NOT NULL DEFAULT '[]',
    counts      TEXT NOT NULL DEFAULT '{}',
    exit_code   INTEGER,
    error       TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS files (
    fingerprint TEXT PRIMARY KEY,
    path        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('recorded', 'archived')),
    run_id      INTEGER,
    archived_to TEXT,
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS settlements (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    who         TEXT NOT NULL,
    action      TEXT NOT NULL,
    project     INTEGER NOT NULL,
    key         TEXT NOT NULL,
    was         TEXT NOT NULL,
    lead_id     INTEGER,
    source_file TEXT,
    source_row  INTEGER
);
""",
    ),
    (3, "ALTER TABLE leads ADD COLUMN source_pinned INTEGER NOT NULL DEFAULT 0;"),
    (
        4,
        # ``leads`` rebuilt (SQLite cannot widen a CHECK in place) to allow the state ``missing``
        # and add ``note``; every row and column is kept. ``baselines`` added.
        _LEADS.format(
            name="leads_v4",
            states="""
                     ('sending', 'created', 'ambiguous', 'rejected', 'missing')""",
            added="""
    source_pinned INTEGER NOT NULL DEFAULT 0,
    note         TEXT NOT NULL DEFAULT '',""",
        )
        + """
INSERT INTO leads_v4 (project, key, status, lead_id, payload_hash, payload, campaign_id,
                      source_file, source_row, updated_at, source_pinned)
    SELECT project, key, status, lead_id, payload_hash, payload, campaign_id, source_file,
           source_row, updated_at, source_pinned FROM leads;
DROP TABLE leads;
ALTER TABLE leads_v4 RENAME TO leads;
CREATE TABLE IF NOT EXISTS baselines (
    what         TEXT PRIMARY KEY,
    server_count INTEGER NOT NULL,
    ledger_count INTEGER NOT NULL,
    at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
""",
    ),
    (
        5,
        """
CREATE TABLE IF NOT EXISTS stages (
    project    INTEGER NOT NULL,
    key        TEXT NOT NULL,
    slot       TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('sending', 'done', 'ambiguous')),
    remote_id  TEXT,
    payload    TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (project, key, slot)
);
ALTER TABLE leads ADD COLUMN phone_id INTEGER
""",
    ),
    (
        6,
        # the boot a run started in, and the run whose claim a ``sending`` row is (see
        # :meth:`Ledger.claim`)
        """
ALTER TABLE runs ADD COLUMN boot_id TEXT;
ALTER TABLE leads ADD COLUMN claim_run INTEGER
""",
    ),
]


#: Indexes that keep every per-lead statement a look-up, whatever the ledger holds (created after
#: the migrations, which rebuild ``leads``; an index adds no data, so no schema version).
_INDEXES = """
CREATE INDEX IF NOT EXISTS leads_lead_id ON leads (lead_id);
CREATE INDEX IF NOT EXISTS enrolments_lead_id ON enrolments (lead_id);
"""


class _Job:
    """One thread's write waiting for a group commit: ``work`` runs on the connection inside the
    group's transaction; ``result`` or ``error`` is set when the group is committed (or, when
    not ``durable``, as soon as the group's writes are done, before the COMMIT's fsync)."""

    __slots__ = ("committed", "done", "durable", "error", "lead", "result", "wake", "work")

    def __init__(self, work: Callable[[sqlite3.Connection], Any], durable: bool) -> None:
        self.work = work
        self.durable = durable
        self.done = False
        self.committed = False
        self.lead = False
        self.wake = threading.Lock()  # held until the job is done or its thread is to lead
        self.wake.acquire()
        self.result: Any = None
        self.error: BaseException | None = None


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back after a failed statement; SQLite may already have rolled back (a COMMIT that
    failed with a disk I/O error), and that is not a second error."""
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


#: Where Linux tells the boot the machine is in (a new random id at each boot).
BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"


def read_boot_id() -> str | None:
    """The operating system's id of the current boot (Linux), or ``None`` when it cannot be
    read (another system): then no lead is claimed ahead (see :meth:`Ledger.claim`)."""
    try:
        with open(BOOT_ID_FILE, encoding="ascii") as f:
            text = f.read().strip()
    except (OSError, ValueError):
        return None
    return text or None


#: One record of a run's departed file (``<ledger>.departed``), 32 bytes: a tag, the run's id
#: and a 20-byte BLAKE2b digest. The first record (tag ``VTRH``) names the run and holds the
#: digest of its boot id; each later one (``VTDM``) is a lead whose POST is about to leave, by
#: the digest of its project and key: no lead data, no secret.
_RECORD = struct.Struct("<4sQ20s")
_HEAD, _MARK = b"VTRH", b"VTDM"


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=20).digest()


def _key_digest(project: int, key: str) -> bytes:
    return _digest(f"{project}\x1f{key}")


def _departed_path(path: Path) -> Path:
    return Path(f"{path}.departed")


#: File systems on which a write the kernel accepted may still fail later (at writeback, on a
#: server): a departed mark there might be lost with the process still alive, so no lead is
#: claimed ahead on them. ``fuse.*`` too.
_NETWORK_FS = frozenset(
    ("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "lustre", "gpfs")
)


def _mount_type(path: Path, mounts: str) -> str | None:
    """The file-system type of the mount holding ``path`` (absolute), from the text of
    ``/proc/self/mounts`` (``device mountpoint type options ...``; spaces in a mount point
    written ``\\040``); ``None`` when no line matches."""
    best, found = -1, None
    target = str(path)
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ").replace("\\011", "\t")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > best:
            best, found = len(point), fields[2]
    return found


def _local_disk(path: Path) -> bool:
    """Whether ``path`` is on a file system whose accepted writes outlive the process (not a
    network or FUSE one); ``False`` when the mounts cannot be read."""
    try:
        mounts = Path("/proc/self/mounts").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    kind = _mount_type(path, mounts)
    return kind is not None and kind not in _NETWORK_FS and not kind.startswith("fuse")


def _run_holds(path: Path) -> bool:
    """Whether a run holds the ledger's lock now (tried, never kept); ``True`` when that cannot
    be told."""
    try:
        fd = os.open(f"{path}.lock", os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops a lock taken
    return False


def _read_departed(path: Path) -> dict[int, tuple[bytes, set[bytes]]] | None:
    """The departed file's runs: ``{run id: (boot digest, key digests)}``; ``None`` when it is
    missing, cut short (not whole records) or holds a record it does not expect."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data or len(data) % _RECORD.size:
        return None
    runs: dict[int, tuple[bytes, set[bytes]]] = {}
    for tag, run, digest in _RECORD.iter_unpack(data):
        if tag == _HEAD and run not in runs:
            runs[run] = (digest, set())
        elif tag == _MARK and run in runs:
            runs[run][1].add(digest)
        else:
            return None
    return runs


def _unsent_claims(conn: sqlite3.Connection, path: Path, boot_id: str | None) -> set[Any]:
    """``(project, key)`` of the claims (``sending`` rows written ahead by :meth:`Ledger.claim`)
    whose POST is known never to have left: their run started in this very boot (so what it
    wrote to the operating system is still there, even if the process died), its departed file
    is whole, and the file has no mark for the lead. Every other ``sending`` row may have been
    sent. Empty on a ledger older than claims, or when the boot id is unknown."""
    if boot_id is None or "claim_run" not in _columns(conn, "leads"):
        return set()
    claims = conn.execute(
        "SELECT l.project, l.key, l.claim_run, r.boot_id FROM leads l "
        "LEFT JOIN runs r ON r.id = l.claim_run "
        "WHERE l.status = 'sending' AND l.claim_run IS NOT NULL"
    ).fetchall()
    if not claims:
        return set()
    runs = _read_departed(_departed_path(path))
    if runs is None:
        return set()
    unsent = set()
    for project, key, run, run_boot in claims:
        found = runs.get(run)
        if run_boot != boot_id or found is None or found[0] != _digest(boot_id):
            continue
        if _key_digest(project, key) not in found[1]:
            unsent.add((project, key))
    return unsent


@dataclass(frozen=True)
class RunRecord:
    """One run as the ledger recorded it.

    Attributes:
        id: the run's number in this ledger (1, 2, ...).
        started_at / finished_at: UTC ISO 8601; ``finished_at`` is ``None`` for a run that
            died (or is still going).
        command: ``import``.
        files: per-file results (dicts as in ``summary.json``'s ``files``).
        counts: ``rows_read``, ``rows_rejected``, ``leads_created``, ``leads_updated``,
            ``leads_unchanged``, ``leads_failed``, ``leads_ambiguous``, ``campaign_entries_added``.
        exit_code: the process's exit code, ``None`` when the run did not finish.
        error: the run's error message, if any.
    """

    id: int
    started_at: str
    finished_at: str | None
    command: str
    files: tuple[dict[str, Any], ...]
    counts: dict[str, int]
    exit_code: int | None
    error: str


@dataclass(frozen=True)
class AmbiguousRow:
    """A lead sent with an unknown outcome, and where its row came from (file, 1-based row)."""

    project: int
    key: str
    source_file: str | None
    source_row: int | None
    since: str


@dataclass(frozen=True)
class MissingRow:
    """A lead the dialer no longer has (a call for it answered 404), where its row came from
    (file, 1-based row), and ``note``: what answered 404 and when."""

    project: int
    key: str
    lead_id: int | None
    source_file: str | None
    source_row: int | None
    since: str
    note: str | None


@dataclass(frozen=True)
class Settlement:
    """A person's decision on a row: ``resolve`` (the lead exists, with ``lead_id``) or
    ``forget`` (drop the row from the ledger, so the next run sends it again)."""

    at: str
    who: str
    action: str
    project: int
    key: str
    was: str
    lead_id: int | None
    source_file: str | None
    source_row: int | None


@dataclass(frozen=True)
class LedgerReport:
    """What a ledger holds, for ``voiptime-etl state``.

    Attributes:
        path: the state file.
        schema_version: the file's schema version.
        api_url: the API the ledger is bound to (``None`` before anything was sent).
        leads: ``{project: {state: count}}``: every state the ledger has, whatever it is.
        enrolments: ``{state: count}`` of campaign enrolments.
        ambiguous: rows whose outcome is unknown, oldest first.
        missing: rows whose lead the dialer no longer has, oldest first.
        runs: the last runs, newest first.
        settlements: the last decisions people made, newest first.
    """

    path: str
    schema_version: int
    api_url: str | None
    leads: dict[int, dict[str, int]]
    enrolments: dict[str, int]
    ambiguous: tuple[AmbiguousRow, ...]
    runs: tuple[RunRecord, ...]
    settlements: tuple[Settlement, ...]
    missing: tuple[MissingRow, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: project ids become strings (JSON object keys)."""
        return {
            "path": self.path,
            "schema_version": self.schema_version,
            "api_url": self.api_url,
            "leads": {str(p): dict(c) for p, c in self.leads.items()},
            "enrolments": dict(self.enrolments),
            "ambiguous": [asdict(a) for a in self.ambiguous],
            "missing": [asdict(m) for m in self.missing],
            "runs": [{**asdict(r), "files": list(r.files)} for r in self.runs],
            "settlements": [asdict(s) for s in self.settlements],
        }


def payload_hash(payload: dict[str, Any]) -> str:
    """SHA-256 of a lead payload in canonical JSON, without comments' ``dateTime``.

    Comments carry the run's time, which takes no part in deciding whether a lead changed
    (docs/mapping.md, "Values").
    """
    stable = dict(payload)
    if "comments" in stable:
        stable["comments"] = [
            {k: v for k, v in c.items() if k != "dateTime"} for c in stable["comments"]
        ]
    text = json.dumps(stable, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LedgerEntry:
    """What the ledger knows of one key.

    Attributes:
        status: one of :data:`LEAD_STATES`.
        lead_id: the API's lead id once created.
        payload_hash: :func:`payload_hash` of what was last sent.
        payload: what was last sent (a dict).
        enrolled: campaign ids the lead is enrolled in (``done``).
        enrol_ambiguous: campaign ids whose enrolment outcome is unknown.
        source_file: the file whose values the lead holds (as the run that sent them named it),
            or ``None`` when unknown.
        source_row: that file's row number, or ``None``.
        source_pinned: a person chose this source with ``--overwrite``; rows of the same file
            but another row do not replace it.
        note: why the entry is ``missing`` or ``ambiguous``, when a run said so.
        phone_id: the id of the lead's first phone from the create answer (tasks need it).
        stages: slot (``callback``, ``meeting``, ``note.<i>``) → its :class:`Stage`.
    """

    status: str
    lead_id: int | None
    payload_hash: str
    payload: dict[str, Any]
    enrolled: frozenset[str] = frozenset()
    enrol_ambiguous: frozenset[str] = frozenset()
    source_file: str | None = None
    source_row: int | None = None
    source_pinned: bool = False
    note: str = ""
    phone_id: int | None = None
    stages: dict[str, Stage] = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    """A task or note of a lead as the ledger knows it.

    Attributes:
        status: ``sending``, ``done`` or ``ambiguous``.
        remote_id: the task id (24 hex) or comment id the API gave, when known.
        payload: what was last sent for it (a dict).
    """

    status: str
    remote_id: str | None
    payload: dict[str, Any]


class Ledger:
    """The SQLite ledger of one state file; thread-safe (one connection behind a lock).

    Use :meth:`open` (writable, locked) or :meth:`open_readonly` (dry runs: no lock, no writes).
    """

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection | None,
        lock_fd: int | None,
        on_created: Callable[[], None] | None = None,
        boot_id: str | None = None,
        hidden: frozenset[tuple[int, str]] = frozenset(),
    ) -> None:
        self.path = path
        self._conn = conn
        self._lock_fd = lock_fd
        self._mutex = threading.Lock()
        self.readonly = lock_fd is None
        self._on_created = on_created
        #: The boot this process runs in (:func:`read_boot_id`), ``None`` when unknown.
        self.boot_id = boot_id
        #: The run :meth:`start_run` recorded, ``None`` before.
        self.run_id: int | None = None
        # claims (see claim): the departed file, and each claim of this run not yet settled:
        # False = committed, its POST not left; True = departed
        self._departed_fd: int | None = None
        self._departing = False  # departures allowed (the file is open and not failed)
        self._writing = 0  # departures writing their mark now (no lock held meanwhile)
        self._claims: dict[tuple[int, str], bool] = {}
        self._claiming = threading.Condition()
        # read-only: claims a dead run left whose POST never left (read as absent rows)
        self._hidden = hidden
        self._unbound_url: str | None = None
        self._binding = threading.Lock()  # the first send of each thread waits for the binding
        self._pinned_column: bool | None = None
        # group commit: writes queued by threads while another thread commits (see _group)
        self._queue: list[_Job] = []
        self._leading = False
        self._turn = threading.Lock()
        #: Transactions committed by this process, and those of them committed with an fsync:
        #: for tests and the benchmark.
        self.commits = 0
        self.synced = 0
        self._synced = True  # the connection's synchronous=FULL (see _run)

    # --- opening --------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        on_created: Callable[[], None] | None = None,
        boot_id: Callable[[], str | None] = read_boot_id,
    ) -> Ledger:
        """Open (creating if needed) and lock the ledger for a run.

        ``on_created`` is called after each commit that records a lead created (a crash-test
        hook: the tests inject one that kills the process there; ``None`` in normal use).
        ``boot_id`` reads the operating system's boot id (injected by tests).

        A ``sending`` row left by a run that died is settled here: a claim whose POST is known
        never to have left (same boot, no departed mark: :meth:`claim`) is dropped, so the row
        is sent as new; any other becomes ``ambiguous``.

        Raises:
            OutputError: the file or its folder cannot be written (exit 74).
            LockedError: another run holds the lock (exit 75).
            StateVersionError: the file was written by a newer voiptime-etl (exit 74).
        """
        path = Path(path).resolve()  # a symlink or another spelling shares one lock
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise OutputError(str(path), f"state file cannot be written: {exc.strerror}") from None
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise LockedError(
                f"{path}: another voiptime-etl run holds this state file; wait for it to finish "
                "or use another --state"
            ) from None
        try:
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            version = cls._check_version(conn, path, create=True)
            conn.executescript(_SCHEMA)
            cls._migrate(conn, path, version)
            conn.executescript(_INDEXES)
            if version < SCHEMA_VERSION:  # created or migrated: the schema into the file itself
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            boot = boot_id()
            # A claim of a run that died before its POST left: never sent, dropped.
            unsent = _unsent_claims(conn, path, boot)
            if unsent:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "DELETE FROM leads WHERE project=? AND key=? AND status='sending'",
                    sorted(unsent),
                )
                conn.execute("COMMIT")
            # A 'sending' row left by a run that died with the request in flight: outcome unknown.
            stale = conn.execute(
                "UPDATE leads SET status='ambiguous' WHERE status='sending'"
            ).rowcount
            stale_e = conn.execute(
                "UPDATE enrolments SET status='ambiguous' WHERE status='sending'"
            ).rowcount
            stale_e += conn.execute(
                "UPDATE stages SET status='ambiguous' WHERE status='sending'"
            ).rowcount
        except sqlite3.Error as exc:
            os.close(lock_fd)
            raise OutputError(str(path), f"state file cannot be written: {exc}") from None
        # every claim is settled: the earlier run's departed file is not needed any more
        departed = _departed_path(path)
        try:
            departed.unlink(missing_ok=True)
        except OSError as exc:
            conn.close()
            os.close(lock_fd)
            raise OutputError(str(departed), f"cannot be removed: {exc.strerror}") from None
        if unsent:
            log.info(
                "%s: %d lead(s) claimed by an earlier run that stopped before sending them; "
                "they are sent as new",
                path,
                len(unsent),
            )
        if stale or stale_e:
            log.warning(
                "%s: %d lead(s) and %d enrolment(s), task(s) or note(s) were in flight when an "
                "earlier run stopped; marked ambiguous",
                path,
                stale,
                stale_e,
            )
        return cls(path, conn, lock_fd, on_created, boot)

    @classmethod
    def open_readonly(
        cls, path: str | os.PathLike[str], *, boot_id: Callable[[], str | None] = read_boot_id
    ) -> Ledger:
        """Open the ledger without writing or locking (``--dry-run``, ``state``); a missing file
        is empty. The claims a run that died left unsent (see :meth:`open`) read as absent, as
        the next run will find them."""
        path = Path(path)
        if not path.exists():
            return cls(path, None, None)
        try:
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
            cls._check_version(conn, path, create=False)
            hidden: frozenset[tuple[int, str]] = frozenset()
            if not _run_holds(path.resolve()):  # a live run's claims may depart any moment
                hidden = frozenset(_unsent_claims(conn, path.resolve(), boot_id()))
        except sqlite3.Error as exc:
            raise OutputError(str(path), f"state file cannot be read: {exc}") from None
        return cls(path, conn, None, hidden=hidden)

    @staticmethod
    def _check_version(conn: sqlite3.Connection, path: Path, create: bool) -> int:
        """The file's schema version (0 for a file being created: the migrations follow)."""
        has_meta = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not has_meta:
            if create:
                conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
            return 0
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row else 1
        if version > SCHEMA_VERSION:
            raise StateVersionError(
                str(path),
                f"written by a newer voiptime-etl (ledger schema {version}, this tool knows "
                f"{SCHEMA_VERSION}); upgrade voiptime-etl",
            )
        return version

    @staticmethod
    def _migrate(conn: sqlite3.Connection, path: Path, version: int) -> None:
        """Apply the additive steps above ``version``, each in one transaction."""
        for reached, script in _MIGRATIONS:
            if reached <= version:
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(reached),)
                )
                conn.execute("COMMIT")
            except sqlite3.Error:
                conn.execute("ROLLBACK")
                raise
            if version:
                log.info("%s: ledger schema migrated to version %d", path, reached)

    def bind_api(self, api_url: str) -> None:
        """Tie the ledger to one API: the first run that sends something records its base URL,
        later runs must match.

        The ledger knows which rows became leads *in one account*; used against another API
        (the sandbox, then production) it would skip rows that were never sent there. A run that
        sent nothing (a mistyped URL) binds nothing.

        Raises:
            ConfigError: the ledger belongs to another API (exit 78).
        """
        url = api_url.rstrip("/").lower()
        row = self._query("SELECT value FROM meta WHERE key='api_url'")
        if row and row[0][0] != url:
            raise ConfigError(
                f"{self.path}: this state file records the leads sent to {row[0][0]}, but this "
                f"run talks to {url}; use another --state for another API or account"
            )
        if not row and not self.readonly:
            self._unbound_url = url  # written with the first thing sent

    def _bind_now(self) -> None:
        """Record the API this ledger is bound to, committed before any write that sends:
        every thread's first send waits here until the binding is on disk (or raises)."""
        if self._unbound_url is None:
            return
        with self._binding:
            if self._unbound_url is not None:
                url = self._unbound_url
                self._write("INSERT OR IGNORE INTO meta VALUES ('api_url', ?)", (url,))
                self._unbound_url = None

    def close(self) -> None:
        """Release this run's claims not sent (:meth:`release`), remove its departed file when
        nothing in it is needed, close the connection and release the lock."""
        if self.run_id is not None and not self.readonly:
            with self._claiming:
                self._departing = False  # no departure from now on
                while self._writing:  # a mark being written still uses the file
                    self._claiming.wait()
                left = [k for k, departed in self._claims.items() if not departed]
                fd, self._departed_fd = self._departed_fd, None
            if fd is not None:
                os.close(fd)
            if self._drop_claims(left):
                # what is left sending was sent: with no file, the next run takes it ambiguous
                try:
                    _departed_path(self.path).unlink(missing_ok=True)
                except OSError as exc:  # the next open settles the claims, or says why not
                    log.warning("%s cannot be removed: %s", _departed_path(self.path), exc)
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading --------------------------------------------------------------------------------

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._mutex:
            if self._conn is None:
                return []
            return self._conn.execute(sql, args).fetchall()

    def lookup(self, project: int, keys: Iterable[str]) -> dict[str, LedgerEntry]:
        """Entries of these keys of a project (keys the ledger does not know are left out)."""
        keys = list(keys)
        out: dict[str, LedgerEntry] = {}
        note = "note" if self._has_column("leads", "note") else "''"  # schema < 4, read-only
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            marks = ",".join("?" * len(part))
            pinned = "source_pinned" if self._has_pinned() else "0"  # a schema < 3 file, read-only
            rows = self._query(
                f"SELECT key, status, lead_id, payload_hash, payload, source_file, source_row, "
                f"{pinned}, {note}, {self._phone_column} FROM leads WHERE project=? "
                f"AND key IN ({marks})",
                [project, *part],
            )
            ids = [r[2] for r in rows if r[2] is not None]
            enrol = self._enrolments(ids)
            stages = self._stages(project, [r[0] for r in rows])
            for (
                key,
                status,
                lead_id,
                phash,
                payload,
                s_file,
                s_row,
                s_pinned,
                text,
                phone_id,
            ) in rows:
                if status == "sending" and (project, key) in self._hidden:
                    continue  # a claim never sent: absent, as the next run finds it
                done, unknown = enrol.get(lead_id, (set(), set()))
                out[key] = LedgerEntry(
                    status,
                    lead_id,
                    phash,
                    json.loads(payload),
                    frozenset(done),
                    frozenset(unknown),
                    s_file,
                    s_row,
                    bool(s_pinned),
                    text,
                    phone_id,
                    stages.get(key, {}),
                )
        return out

    def _has_pinned(self) -> bool:
        """Whether the file has ``leads.source_pinned`` (schema 3; a dry run reads older files
        as they are)."""
        if self._pinned_column is None:
            columns = self._query("PRAGMA table_info(leads)")
            self._pinned_column = any(c[1] == "source_pinned" for c in columns)
        return self._pinned_column

    @property
    def _phone_column(self) -> str:
        """``phone_id``, or ``NULL`` in a read-only ledger of schema 1 (a dry run migrates
        nothing)."""
        if getattr(self, "_has_phone", None) is None:
            cols = {r[1] for r in self._query("PRAGMA table_info(leads)")}
            self._has_phone = "phone_id" in cols
        return "phone_id" if self._has_phone else "NULL"

    def _stages(self, project: int, keys: list[str]) -> dict[str, dict[str, Stage]]:
        out: dict[str, dict[str, Stage]] = {}
        if not keys:
            return out
        has = self._query("SELECT 1 FROM sqlite_master WHERE type='table' AND name='stages'")
        if not has:
            return out
        marks = ",".join("?" * len(keys))
        for key, slot, status, remote_id, payload in self._query(
            "SELECT key, slot, status, remote_id, payload FROM stages "
            f"WHERE project=? AND key IN ({marks})",
            [project, *keys],
        ):
            out.setdefault(key, {})[slot] = Stage(status, remote_id, json.loads(payload))
        return out

    def _enrolments(self, lead_ids: list[int]) -> dict[int, tuple[set[str], set[str]]]:
        out: dict[int, tuple[set[str], set[str]]] = {}
        if not lead_ids:
            return out
        marks = ",".join("?" * len(lead_ids))
        for campaign, lead_id, status in self._query(
            f"SELECT campaign_id, lead_id, status FROM enrolments WHERE lead_id IN ({marks})",
            lead_ids,
        ):
            done, unknown = out.setdefault(lead_id, (set(), set()))
            (done if status == "done" else unknown).add(campaign)
        return out

    def pending_enrolments(
        self, project: int, campaign_id: str, include_ambiguous: bool = False
    ) -> list[int]:
        """Lead ids created for ``campaign_id`` in earlier runs and not enrolled there yet
        (with ``include_ambiguous``, also those whose enrolment outcome is unknown)."""
        done = "e.status = 'done'" if include_ambiguous else "1"
        rows = self._query(
            "SELECT l.lead_id FROM leads l WHERE l.project=? AND l.campaign_id=? "
            "AND l.status='created' AND NOT EXISTS (SELECT 1 FROM enrolments e "
            f"WHERE e.campaign_id=l.campaign_id AND e.lead_id=l.lead_id AND {done}) "
            "ORDER BY l.lead_id",
            (project, campaign_id),
        )
        return [r[0] for r in rows]

    def _has_column(self, table: str, column: str) -> bool:
        with self._mutex:
            if self._conn is None:
                return False
            return column in _columns(self._conn, table)

    def knows_project(self, project: int) -> bool:
        """Whether this ledger has worked on ``project`` before (a lead row or a baseline)."""
        if self._query("SELECT 1 FROM leads WHERE project=? LIMIT 1", (project,)):
            return True
        return self._has_table("baselines") and bool(
            self._query("SELECT 1 FROM baselines WHERE what=?", (f"project:{project}",))
        )

    def tally(self, project: int, campaign_id: str | None) -> dict[str, int]:
        """What the ledger counts against the server's totals.

        Returns:
            ``created`` (leads of ``project`` the ledger knows exist), ``ambiguous`` (leads of
            ``project`` sent with an unknown outcome), and for ``campaign_id``: ``enrolled``
            (enrolments confirmed) and ``enrol_ambiguous``.
        """
        out = {"created": 0, "ambiguous": 0, "enrolled": 0, "enrol_ambiguous": 0}
        for status, n in self._query(
            "SELECT status, COUNT(*) FROM leads WHERE project=? GROUP BY status", (project,)
        ):
            if status == "sending":
                n -= self._hidden_now().get(project, 0)
            if status == "created":
                out["created"] = n
            elif status in ("ambiguous", "sending"):
                out["ambiguous"] += n
        if campaign_id is not None:
            for status, n in self._query(
                "SELECT status, COUNT(*) FROM enrolments WHERE campaign_id=? GROUP BY status",
                (campaign_id,),
            ):
                if status == "done":
                    out["enrolled"] = n
                else:
                    out["enrol_ambiguous"] += n
        return out

    def baseline(self, what: str) -> tuple[int, int, str] | None:
        """``(server_count, ledger_count, at)`` recorded for ``what`` (``project:<id>`` or
        ``campaign:<id>``), or ``None``."""
        if not self._has_table("baselines"):
            return None
        rows = self._query(
            "SELECT server_count, ledger_count, at FROM baselines WHERE what=?", (what,)
        )
        return (int(rows[0][0]), int(rows[0][1]), str(rows[0][2])) if rows else None

    def set_baseline(self, what: str, server_count: int, ledger_count: int) -> None:
        """Record the server's count of ``what`` beside the ledger's own, taken together at a
        moment when nothing of ``what`` is ambiguous (see :meth:`baseline`)."""
        self._write(
            "INSERT OR REPLACE INTO baselines (what, server_count, ledger_count) VALUES (?, ?, ?)",
            (what, server_count, ledger_count),
        )

    def counts(self) -> dict[str, int]:
        """Leads per status, and enrolments per status prefixed ``enrol_``."""
        out = {s: n for s, n in self._query("SELECT status, COUNT(*) FROM leads GROUP BY status")}
        hidden = sum(self._hidden_now().values())  # claims never sent read as absent
        if hidden:
            out["sending"] = out.get("sending", 0) - hidden
            if out["sending"] <= 0:
                del out["sending"]
        for s, n in self._query("SELECT status, COUNT(*) FROM enrolments GROUP BY status"):
            out[f"enrol_{s}"] = n
        return out

    def iter_leads(self) -> Iterator[tuple[int, str, str, int | None]]:
        """Every lead as ``(project, key, status, lead_id)``."""
        for row in self._query("SELECT project, key, status, lead_id FROM leads ORDER BY rowid"):
            if row[2] != "sending" or (row[0], row[1]) not in self._hidden:
                yield row

    def _hidden_now(self) -> dict[int, int]:
        """Per project, the claims read as absent (:meth:`open_readonly`) still ``sending``."""
        if not self._hidden:
            return {}
        out: dict[int, int] = {}
        for project, key in self._query(
            "SELECT project, key FROM leads WHERE status='sending' AND claim_run IS NOT NULL"
        ):
            if (project, key) in self._hidden:
                out[project] = out.get(project, 0) + 1
        return out

    def _has_table(self, name: str) -> bool:
        return bool(
            self._query("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,))
        )

    def _rows_in_state(self, status: str, columns: str) -> list[tuple[Any, ...]]:
        """``columns`` of the leads rows in ``status``, oldest change first."""
        return self._query(
            f"SELECT {columns} FROM leads WHERE status=? ORDER BY updated_at, project, key",
            (status,),
        )

    def report(self, last_runs: int = 10) -> LedgerReport:
        """What the ledger holds: leads per project and state (every state found, so states
        added later show up too), enrolments per state, the ambiguous and the missing rows with
        their file and row, the last ``last_runs`` runs and the last settlements. Works
        read-only, on a file written by an older version (missing tables read as empty) and on a
        missing file."""
        version = self._query("SELECT value FROM meta WHERE key='schema_version'")
        url = self._query("SELECT value FROM meta WHERE key='api_url'")
        leads: dict[int, dict[str, int]] = {}
        for project, status, n in self._query(
            "SELECT project, status, COUNT(*) FROM leads GROUP BY project, status "
            "ORDER BY project, status"
        ):
            if status == "sending":  # claims never sent read as absent
                n -= self._hidden_now().get(project, 0)
            if n > 0:
                leads.setdefault(project, {})[status] = n
        enrolments = dict(
            self._query("SELECT status, COUNT(*) FROM enrolments GROUP BY status ORDER BY status")
        )
        ambiguous = tuple(
            AmbiguousRow(*row)
            for row in self._rows_in_state(
                "ambiguous", "project, key, source_file, source_row, updated_at"
            )
        )
        missing: tuple[MissingRow, ...] = ()
        if any(c[1] == "note" for c in self._query("PRAGMA table_info(leads)")):  # schema 4+
            missing = tuple(
                MissingRow(*row)
                for row in self._rows_in_state(
                    "missing", "project, key, lead_id, source_file, source_row, updated_at, note"
                )
            )
        runs: tuple[RunRecord, ...] = ()
        if self._has_table("runs"):
            runs = tuple(
                RunRecord(
                    rid,
                    started,
                    finished,
                    command,
                    tuple(json.loads(files)),
                    json.loads(counts),
                    code,
                    error,
                )
                for rid, started, finished, command, files, counts, code, error in self._query(
                    "SELECT id, started_at, finished_at, command, files, counts, exit_code, "
                    "error FROM runs ORDER BY id DESC LIMIT ?",
                    (last_runs,),
                )
            )
        settled: tuple[Settlement, ...] = ()
        if self._has_table("settlements"):
            settled = tuple(
                Settlement(*row)
                for row in self._query(
                    "SELECT at, who, action, project, key, was, lead_id, source_file, source_row "
                    "FROM settlements ORDER BY id DESC LIMIT ?",
                    (last_runs,),
                )
            )
        return LedgerReport(
            str(self.path),
            int(version[0][0]) if version else SCHEMA_VERSION,
            url[0][0] if url else None,
            leads,
            enrolments,
            ambiguous,
            runs,
            settled,
            missing,
        )

    def file_recorded(self, fingerprint: str) -> int | None:
        """The run that recorded every row of the file with this fingerprint (sha256 of its
        bytes) but did not archive it, or ``None``."""
        rows = self._query(
            "SELECT run_id FROM files WHERE fingerprint=? AND status='recorded'", (fingerprint,)
        )
        return int(rows[0][0] or 0) if rows else None

    # --- writing (each call one committed transaction) -----------------------------------------

    def _group(self, work: Callable[[sqlite3.Connection], Any], durable: bool = True) -> Any:
        """Run ``work`` in a transaction shared with the writes other threads ask for meanwhile,
        and return its result once that transaction is committed (one fsync for all of them).

        Group commit, leader and followers: the first thread to find no commit under way takes
        every queued write, runs each in one ``BEGIN IMMEDIATE`` … ``COMMIT`` and wakes the
        others; writes queued during that commit wait for it, then the next of their threads
        commits them all together. When one write fails, the group is rolled back and each
        write is run again in a transaction of its own, so a failure is only its own caller's.

        With ``durable=False`` the call returns as soon as the group's writes are done, while
        its COMMIT is still writing (a later durable write of any thread waits for it, since
        groups commit in order), and a group of such writes alone is committed without an
        fsync (:meth:`_run`). For writes whose loss in a machine crash is harmless: a
        ``created`` row not on disk leaves ``sending``, which the next run reports as ambiguous.

        Raises:
            OutputError: the write or its commit failed (exit 74).
            RuntimeError: the ledger is read-only or closed.
        """
        job = _Job(work, durable)
        with self._turn:
            self._queue.append(job)
            job.lead = not self._leading
            self._leading = True
        if not job.lead:
            job.wake.acquire()  # until done, or until the leader hands over to this thread
        if not job.done:
            with self._turn:
                jobs, self._queue = self._queue, []
            try:
                self._commit(jobs)
            finally:
                self._release(jobs)
                with self._turn:
                    if self._queue:  # writes queued meanwhile: their first thread leads next
                        self._queue[0].lead = True
                        self._queue[0].wake.release()
                    else:
                        self._leading = False
        if job.error is not None:
            raise job.error
        return job.result

    def _release(self, jobs: list[_Job]) -> None:
        """Wake the threads waiting for ``jobs`` (each once; the leader's own is not waiting)."""
        with self._turn:
            for job in jobs:
                if not job.done:
                    job.done = True
                    if not job.lead:
                        job.wake.release()

    def _commit(self, jobs: list[_Job]) -> None:
        """Commit ``jobs`` in one transaction (each alone when one of them fails)."""
        with self._mutex:
            if self._conn is None or self.readonly:
                for job in jobs:
                    job.error = RuntimeError("ledger is read-only")
                return
            try:
                if len(jobs) > 1 and self._run(self._conn, jobs) is None:
                    return
                # the group was rolled back: every write of it (one released early too) again
                for job in jobs:
                    self._run(self._conn, [job])
            except BaseException:  # an interrupt mid-commit: what is not committed is not written
                for job in jobs:
                    if not job.committed and not job.done:
                        job.error = OutputError(str(self.path), "state file write interrupted")
                raise

    def _run(self, conn: sqlite3.Connection, jobs: list[_Job]) -> Exception | None:
        """One transaction of ``jobs``; the error (also set on the jobs) or ``None``.

        A transaction of writes none of which is ``durable`` is committed without an fsync
        (``synchronous=NORMAL``: in WAL mode its pages reach the operating system at once and
        the disk with the next fsync, which any later durable commit makes for every earlier
        page): it survives the death of the process, not of the machine."""
        durable = any(job.durable for job in jobs)
        try:
            if durable != self._synced:
                conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                self._synced = durable
            conn.execute("BEGIN IMMEDIATE")
            results = [job.work(conn) for job in jobs]
            for job, result in zip(jobs, results, strict=True):
                job.result, job.error = result, None
            self._release([job for job in jobs if not job.durable])
            conn.execute("COMMIT")
        except BaseException as exc:
            _rollback(conn)
            if not isinstance(exc, Exception):
                raise
            error = (
                OutputError(str(self.path), f"state file cannot be written: {exc}")
                if isinstance(exc, sqlite3.Error)
                else exc
            )
            if any(job.done for job in jobs):
                log.error("%s: a commit failed after its writes were done: %s", self.path, exc)
            for job in jobs:
                if not job.done:  # a write released early has been answered already
                    job.error = error
            return error
        for job in jobs:
            job.committed = True
        self.commits += 1
        self.synced += durable
        return None

    def _transaction(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        def work(conn: sqlite3.Connection) -> None:
            for sql, args in statements:
                conn.execute(sql, args)

        self._group(work)

    def start_run(self, command: str, sources: Sequence[str], started_at: str) -> int:
        """Record that a run started (``finished_at`` and ``exit_code`` stay empty until
        :meth:`finish_run`, so a run that died shows as such), and the boot it runs in;
        returns its id. When the boot id is known, the run's departed file is started, so
        leads can be claimed ahead (:meth:`claim`)."""
        with self._mutex:
            if self._conn is None or self.readonly:
                raise RuntimeError("ledger is read-only")
            try:
                cur = self._conn.execute(
                    "INSERT INTO runs (started_at, command, sources, boot_id) VALUES (?, ?, ?, ?)",
                    (
                        started_at,
                        command,
                        json.dumps(list(sources), ensure_ascii=False),
                        self.boot_id,
                    ),
                )
            except sqlite3.Error as exc:
                raise OutputError(str(self.path), f"state file cannot be written: {exc}") from None
            self.run_id = int(cur.lastrowid or 0)
        if self.boot_id is not None and _local_disk(self.path):
            self._start_departed(self.run_id, self.boot_id)
        return self.run_id

    def _start_departed(self, run_id: int, boot_id: str) -> None:
        """Create the run's departed file with its first record; when it cannot be written no
        lead is claimed ahead (each is recorded ``sending`` on its own before its POST)."""
        head = _RECORD.pack(_HEAD, run_id, _digest(boot_id))
        path = _departed_path(self.path)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        except OSError as exc:
            log.info("%s cannot be written (%s): leads are not claimed ahead", path, exc.strerror)
            return
        try:
            written = os.write(fd, head)
        except OSError as exc:
            written, why = 0, exc.strerror
        else:
            why = "short write"
        if written != len(head):
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            log.info("%s cannot be written (%s): leads are not claimed ahead", path, why)
            return
        self._departed_fd = fd
        self._departing = True

    @property
    def claims_ahead(self) -> bool:
        """Whether leads can be claimed ahead of their POSTs (:meth:`claim`): a run is
        recorded, with the boot it runs in, and its departed file is open."""
        return self._departing and self.run_id is not None

    def finish_run(self, run_id: int, summary: dict[str, Any]) -> None:
        """Record a run's end: its per-file results, counts, exit code and error, from the
        summary (``summary.json``'s keys; the counts are :data:`RUN_COUNTS`)."""
        self._write(
            "UPDATE runs SET finished_at=strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), files=?, "
            "counts=?, exit_code=?, error=? WHERE id=?",
            (
                json.dumps(summary.get("files", []), ensure_ascii=False),
                json.dumps({k: int(summary.get(k) or 0) for k in RUN_COUNTS}),
                int(summary.get("exit_code", 0)),
                str(summary.get("error", "")),
                run_id,
            ),
        )

    def mark_file(
        self,
        fingerprint: str,
        path: str,
        status: str,
        run_id: int | None,
        archived_to: str | None = None,
    ) -> None:
        """Record that every row of a file is recorded (``recorded``), or that it was moved to
        the archive (``archived``, with ``archived_to``)."""
        self._write(
            "INSERT INTO files (fingerprint, path, status, run_id, archived_to) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO UPDATE SET "
            "path=excluded.path, status=excluded.status, "
            "run_id=COALESCE(files.run_id, excluded.run_id), archived_to=excluded.archived_to, "
            "updated_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            (fingerprint, path, status, run_id, archived_to),
        )

    def _one_key(self, key: str, project: int | None) -> tuple[int, str, int | None, Any, Any]:
        args: list[Any] = [key]
        where = "key=?"
        if project is not None:
            where += " AND project=?"
            args.append(project)
        rows = self._query(
            f"SELECT project, status, lead_id, source_file, source_row FROM leads WHERE {where}",
            args,
        )
        if not rows:
            raise UsageError(
                f"{self.path}: no row with key {key!r}"
                + (f" in project {project}" if project is not None else "")
                + "; `voiptime-etl state` lists the keys of the ambiguous rows"
            )
        if len(rows) > 1:
            projects = ", ".join(str(r[0]) for r in rows)
            raise UsageError(
                f"{self.path}: key {key!r} is in several projects ({projects}); "
                "say which with --project"
            )
        return rows[0]

    def resolve_key(
        self, key: str, lead_id: int, who: str, project: int | None = None
    ) -> Settlement:
        """Settle an ambiguous row a person checked in the dialer: the lead exists with
        ``lead_id``. The row becomes ``created``; the next run treats it as created (unchanged
        or updated, and enrolled in its campaign if it is not yet). Recorded in ``settlements``.

        Raises:
            UsageError: no such key, the key is in several projects (pass ``project``), or the
                row is not ambiguous (exit 2).
        """
        proj, status, _, source_file, source_row = self._one_key(key, project)
        if status != "ambiguous":
            raise UsageError(
                f"{self.path}: key {key!r} is {status}, not ambiguous; only an ambiguous row "
                "is resolved"
            )
        self._transaction(
            [
                (
                    "UPDATE leads SET status='created', lead_id=?, "
                    "updated_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE project=? AND key=?",
                    (lead_id, proj, key),
                ),
                (
                    "INSERT INTO settlements (who, action, project, key, was, lead_id, "
                    "source_file, source_row) VALUES (?, 'resolve', ?, ?, ?, ?, ?, ?)",
                    (who, proj, key, status, lead_id, source_file, source_row),
                ),
            ]
        )
        return self.report(1).settlements[0]

    def forget_keys(
        self, keys: Sequence[str], who: str, project: int | None = None
    ) -> list[Settlement]:
        """Drop ambiguous or rejected rows a person checked in the dialer and did not find: the
        next run sends them again. All or none: every key is checked first, then all are
        dropped and recorded in ``settlements`` in one transaction.

        Returns:
            The settlements, in the order of ``keys``.

        Raises:
            UsageError: a key is unknown, in several projects (pass ``project``), or
                ``created`` (forgetting it would create the lead twice) (exit 2).
        """
        found = []
        for key in keys:
            proj, status, lead_id, source_file, source_row = self._one_key(key, project)
            if status == "created":
                raise UsageError(
                    f"{self.path}: key {key!r} is created (lead {lead_id}); forgetting it "
                    "would create the lead a second time, so nothing was forgotten"
                )
            found.append((proj, key, status, lead_id, source_file, source_row))
        statements: list[tuple[str, Sequence[Any]]] = []
        for proj, key, status, lead_id, source_file, source_row in found:
            statements.append(("DELETE FROM leads WHERE project=? AND key=?", (proj, key)))
            statements.append(
                (
                    "INSERT INTO settlements (who, action, project, key, was, lead_id, "
                    "source_file, source_row) VALUES (?, 'forget', ?, ?, ?, ?, ?, ?)",
                    (who, proj, key, status, lead_id, source_file, source_row),
                )
            )
        self._transaction(statements)
        return list(reversed(self.report(len(found)).settlements))

    def _write(self, sql: str, args: Sequence[Any] = ()) -> None:
        self._transaction([(sql, args)])

    def _write_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        many = list(rows)

        def work(conn: sqlite3.Connection) -> None:
            conn.executemany(sql, many)

        self._group(work)

    def mark_sending(
        self,
        project: int,
        key: str,
        payload: dict[str, Any],
        campaign_id: str | None,
        source_file: str,
        source_row: int,
        note: str = "",
    ) -> None:
        """Record, before the POST leaves, that this key's lead is being created (an earlier
        lead id of the key, e.g. one missing in the dialer, is dropped; ``note`` says why)."""
        self._bind_now()
        self._write(
            _SENDING,
            (
                project,
                key,
                payload_hash(payload),
                _dump(payload),
                campaign_id,
                source_file,
                source_row,
                note,
                None,
            ),
        )

    def claim(
        self,
        project: int,
        rows: Sequence[tuple[str, dict[str, Any], tuple[str, int]]],
        campaign_id: str | None,
    ) -> None:
        """Claim new leads ahead of their POSTs: the ``sending`` rows of ``rows`` (``(key,
        payload, (source file, row))``), tagged with this run, in one transaction (one fsync).
        A claimed lead's POST may leave only after :meth:`depart`; a claim not departed is
        dropped by :meth:`release` (or :meth:`close`), so a run that ends leaves none.

        After a crash the next run tells the claims apart (:meth:`open`): in the same boot a
        claim with no departed mark was never sent and is sent as new; one with a mark, or any
        claim after a reboot or without a whole departed file, is ``ambiguous``.

        Raises:
            OutputError: the transaction failed: nothing is claimed (exit 74).
            RuntimeError: :attr:`claims_ahead` is false.
        """
        if self.run_id is None:
            raise RuntimeError("no run to claim leads for")
        if not self.claims_ahead:  # a mark could not be written (depart raised): nor can these
            raise OutputError(str(_departed_path(self.path)), "cannot be written")
        self._bind_now()
        args = [
            (project, key, payload_hash(p), _dump(p), campaign_id, *source, "", self.run_id)
            for key, p, source in rows
        ]
        self._write_many(_SENDING, args)
        with self._claiming:
            for key, _, _ in rows:
                self._claims[(project, key)] = False

    def depart(self, project: int, key: str) -> bool:
        """Mark a claimed lead's POST as leaving, just before it leaves: one record appended
        to the departed file with one ``write`` and no fsync (it outlives the process, not the
        machine). ``False``: the claim was released, the POST must not leave.

        Raises:
            OutputError: the mark could not be written: the POST must not leave; no lead of
                this run departs after it (exit 74).
        """
        run, claim = self.run_id, (project, key)
        if run is None:
            return False
        record = _RECORD.pack(_MARK, run, _key_digest(project, key))
        with self._claiming:
            fd = self._departed_fd
            if not self._departing or fd is None or self._claims.get(claim) is not False:
                return False
            self._claims[claim] = True  # from here on release leaves it: its POST may leave
            self._writing += 1
        # the write holds no lock: a thread waiting for the GIL after it must not hold up the
        # other workers' departures
        try:
            written = os.write(fd, record)
        except OSError as exc:
            written, why = -1, exc.strerror
        else:
            why = "short write"
        with self._claiming:
            self._writing -= 1
            if written != len(record):
                # not sent: released as any claim not sent. No departure from now on; the
                # file is kept: cut short, the next run takes every claim of this run as
                # ambiguous; whole, it still tells them apart
                self._claims[claim] = False
                self._departing = False
            self._claiming.notify_all()
        if written != len(record):
            raise OutputError(str(_departed_path(self.path)), f"cannot be written: {why}")
        return True

    def release(self, project: int, keys: Iterable[str]) -> set[str]:
        """Settle this run's claims of ``keys`` once their workers are done or abandoned: the
        ``sending`` rows of claims not departed are deleted (the next run sends them as new);
        returns the keys that departed (their POST may have left). Never raises: a release
        that cannot be written is logged, and the next run drops those claims itself."""
        departed: set[str] = set()
        unsent = []
        with self._claiming:
            for key in keys:
                state = self._claims.pop((project, key), None)
                if state is True:
                    departed.add(key)
                elif state is False:
                    unsent.append((project, key))
        self._drop_claims(unsent)
        return departed

    def _drop_claims(self, claims: list[tuple[int, str]]) -> bool:
        """Delete these claims' ``sending`` rows; whether that was written (logged if not)."""
        with self._claiming:
            for k in claims:
                self._claims.pop(k, None)
        if not claims:
            return True
        try:
            self._write_many(
                "DELETE FROM leads WHERE project=? AND key=? AND status='sending'", claims
            )
        except (OutputError, RuntimeError) as exc:
            log.warning("%d claim(s) not sent could not be released: %s", len(claims), exc)
            return False
        return True

    def mark_created(
        self,
        project: int,
        key: str,
        lead_id: int,
        phone_id: int | None = None,
        notes: Sequence[tuple[str, str | None, dict[str, Any]]] = (),
    ) -> str | None:
        """Record the id of the lead the API created for this key, the id of its first phone,
        and the notes created with it (``(slot, comment id, payload)``), in one transaction.

        A lead id is never recorded for two keys: when another key already holds ``lead_id``
        (``created`` or ``missing``), this key is recorded ``ambiguous`` with a note instead.

        Returns:
            ``None`` when recorded; else who holds the id (``key 'x' (file.csv row 3)``).
        """

        def work(conn: sqlite3.Connection) -> str | None:
            holder = conn.execute(
                "SELECT project, key, source_file, source_row FROM leads WHERE lead_id=? "
                "AND status IN ('created', 'missing') AND NOT (project=? AND key=?) LIMIT 1",
                (lead_id, project, key),
            ).fetchone()
            if holder is None:
                conn.execute(
                    "UPDATE leads SET status='created', lead_id=?, phone_id=?, note='', "
                    "updated_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                    "WHERE project=? AND key=?",
                    (lead_id, phone_id, project, key),
                )
                conn.executemany(
                    _STAGE_UPSERT,
                    [(project, key, slot, "done", rid, _dump(p)) for slot, rid, p in notes],
                )
                return None
            where = f" ({holder[2]} row {holder[3]})" if holder[2] else ""
            project_part = f" of project {holder[0]}" if holder[0] != project else ""
            who = f"key {holder[1]!r}{project_part}{where}"
            conn.execute(
                "UPDATE leads SET status='ambiguous', note=?, "
                "updated_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                "WHERE project=? AND key=?",
                (f"the API answered lead id {lead_id}, already the lead of {who}", project, key),
            )
            return who

        # returns once written, before the fsync, unless on_created needs it on disk
        who: str | None = self._group(work, durable=self._on_created is not None)
        if who is not None:
            return who
        if self._on_created is not None:
            self._on_created()
        return None

    def mark_missing(self, project: int, key: str, note: str) -> None:
        """Record that the dialer no longer has this key's lead (it answered 404); the lead id
        is kept, ``note`` says what answered 404 and when."""
        self._write(
            "UPDATE leads SET status='missing', note=?, "
            "updated_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE project=? AND key=?",
            (note, project, key),
        )

    def mark_ambiguous(self, project: int, key: str) -> None:
        """Record that this key's POST was sent and its outcome is unknown."""
        self._write(
            "UPDATE leads SET status='ambiguous', updated_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
            "WHERE project=? AND key=?",
            (project, key),
        )

    def forget(self, project: int, key: str) -> None:
        """Drop a key whose POST was never processed (429/503/401: nothing was created)."""
        self._write(
            "DELETE FROM leads WHERE project=? AND key=? AND status='sending'", (project, key)
        )

    def mark_rejected(self, project: int, key: str) -> None:
        """Record that the server refused this key's POST (a 4xx: nothing was created). The next
        run sends it again, since the account may have changed (a custom field added)."""
        self._write(
            "UPDATE leads SET status='rejected', updated_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
            "WHERE project=? AND key=? AND status='sending'",
            (project, key),
        )

    def mark_updated(
        self,
        project: int,
        key: str,
        payload: dict[str, Any],
        source: tuple[str, int] | None = None,
        pin: bool = False,
    ) -> None:
        """Record the payload a PATCH brought the lead to, and the row it came from.

        Args:
            source: ``(file, row)`` whose values the lead now holds (``None``: keep the one
                recorded).
            pin: the source was chosen with ``--overwrite`` (kept pinned until another
                ``--overwrite``); otherwise the pin stays as it was.
        """
        sets = "payload_hash=?, payload=?"
        args: list[Any] = [
            payload_hash(payload),
            _dump(payload),
        ]
        if source is not None:
            sets += ", source_file=?, source_row=?"
            args += list(source)
        if pin:
            sets += ", source_pinned=1"
        self._write(
            f"UPDATE leads SET {sets}, updated_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
            "WHERE project=? AND key=?",
            (*args, project, key),
        )

    def mark_enrolling(self, campaign_id: str, lead_ids: Sequence[int]) -> None:
        """Record, before the ``generate`` call leaves, that these leads are being enrolled."""
        self._bind_now()
        self._write_many(
            "INSERT INTO enrolments (campaign_id, lead_id, status) VALUES (?, ?, 'sending') "
            "ON CONFLICT DO UPDATE SET status='sending'",
            [(campaign_id, i) for i in lead_ids],
        )

    def finish_enrolling(self, campaign_id: str, lead_ids: Sequence[int], status: str) -> None:
        """Record the outcome of a ``generate`` call: ``done``, ``ambiguous`` or ``failed``.

        ``failed`` (the server refused the call, nothing was enrolled) removes the records so
        the next run tries again.
        """
        if status == "failed":
            self._write_many(
                "DELETE FROM enrolments WHERE campaign_id=? AND lead_id=?",
                [(campaign_id, i) for i in lead_ids],
            )
            return
        self._write_many(
            "UPDATE enrolments SET status=?, updated_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
            "WHERE campaign_id=? AND lead_id=?",
            [(status, campaign_id, i) for i in lead_ids],
        )

    # --- tasks and notes ------------------------------------------------------------------------

    def stage_sending(self, project: int, key: str, slot: str, payload: dict[str, Any]) -> None:
        """Record, before a task or note POST leaves, that it is being created."""
        self._bind_now()
        self._write(_STAGE_UPSERT, (project, key, slot, "sending", None, _dump(payload)))

    def stage_done(
        self, project: int, key: str, slot: str, remote_id: str | None, payload: dict[str, Any]
    ) -> None:
        """Record a task or note the API created or updated, its id and what was sent."""
        self._write(_STAGE_UPSERT, (project, key, slot, "done", remote_id, _dump(payload)))

    def stage_ambiguous(self, project: int, key: str, slot: str) -> None:
        """Record that a task or note POST was sent and its outcome is unknown."""
        self._write(
            "UPDATE stages SET status='ambiguous', "
            "updated_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
            "WHERE project=? AND key=? AND slot=?",
            (project, key, slot),
        )

    def stage_forget(self, project: int, key: str, slot: str) -> None:
        """Drop a task or note POST that was not processed (refused or never arrived)."""
        self._write(
            "DELETE FROM stages WHERE project=? AND key=? AND slot=? AND status='sending'",
            (project, key, slot),
        )


#: A lead's ``sending`` row (an earlier lead id of the key dropped); the last value is the run
#: whose claim it is (:meth:`Ledger.claim`), ``NULL`` for a row written just before its POST.
_SENDING = (
    "INSERT INTO leads (project, key, status, payload_hash, payload, campaign_id, "
    "source_file, source_row, note, claim_run) VALUES (?, ?, 'sending', ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (project, key) DO UPDATE SET status='sending', lead_id=NULL, "
    "payload_hash=excluded.payload_hash, "
    "payload=excluded.payload, campaign_id=excluded.campaign_id, "
    "source_file=excluded.source_file, source_row=excluded.source_row, note=excluded.note, "
    "source_pinned=0, claim_run=excluded.claim_run, "
    "updated_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
)

_STAGE_UPSERT = (
    "INSERT INTO stages (project, key, slot, status, remote_id, payload) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (project, key, slot) DO UPDATE SET "
    "status=excluded.status, remote_id=COALESCE(excluded.remote_id, stages.remote_id), "
    "payload=excluded.payload, updated_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
)


def _dump(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True)
