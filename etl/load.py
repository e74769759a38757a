"""Create and update leads concurrently, enrol them in the campaign, record all in the ledger.

:class:`Loader` takes batches of valid rows (lead records, :class:`etl.payload.LeadRow`: key and
payload) and, for each:

* decides from the :class:`~etl.state.Ledger` whether the row is new (``POST /leads``), changed
  since it was sent (``PATCH /leads/{id}`` with the changed fields only), unchanged (nothing),
  ambiguous from an earlier run (nothing, unless ``retry_ambiguous``), or another source's lead
  (nothing, see below);
* sends the writes on ``concurrency`` worker threads, with ``sending`` committed to the ledger
  before each POST leaves and ``created`` with the id as soon as the answer arrives (the
  ledger's group commits share one fsync among the workers writing at the same moment). New
  leads are claimed ahead: a group's ``sending`` rows in one transaction before the group goes
  to the workers, and each worker writes the lead's departed mark just before its POST
  (:meth:`etl.state.Ledger.claim`, :meth:`~etl.state.Ledger.depart`), so no worker waits for the
  disk before a new lead's POST and a crash still leaves only the requests in flight unknown;
  claims not sent are released when the batch is done. Under ``--rate-limit`` nothing is
  claimed ahead: a worker waits for its turn (the client's token bucket, shared by all workers)
  *before* it commits the lead's ``sending`` row, so a row is never recorded while it waits;
* pushes the batch's lead ids into the campaign with one ``generate`` call (docs/api.md #13) per at
  most :data:`ENROL_BATCH` ids; a call refused for a bad id is split in halves until the bad id is
  found, and the rest are enrolled.

Sources. The ledger records which file and row each lead's values came from. A changed row
updates its lead only when it comes from the same source: the same file (rows may move when a
file is re-exported), or, for a row of a re-imported rejects file, the very row it was first read
from. Otherwise nothing is sent and the row's outcome says why: ``duplicate`` for a rejects-file
row whose lead came from another row of the same file (it was that row's duplicate), ``conflict``
when another file that is still there feeds the key with other values (the lead keeps that
file's values, so two files never change a lead back and forth run after run). A source file
that no longer exists at its path (archived, replaced by tonight's export under another name)
cannot change the lead back, so a row of another file then updates the lead and becomes its
source. With ``overwrite`` such rows replace
the lead's values, and their row becomes the lead's pinned source (docs/mapping.md, "Values").

The server's answers are checked, not trusted:

* a lead the dialer no longer has (``PATCH /leads/{id}``, a task or a note call of an existing
  lead answered 404, confirmed with a read) is that row's problem: the row is ``missing``
  (ledger state ``missing``) and the run goes on; ``recreate_missing`` sends such rows as new
  leads (and enrols the new ids);
* a lead id the ledger already holds for another key is never merged: the row is ``ambiguous``
  with the reason;
* after each ``generate`` call the campaign's ``totalEntries`` must have grown by at least the
  number of ids sent; when it did not, the answer does not fit and those enrolments are
  ambiguous.

A fatal error (401/403, a 404 of the project or campaign, retries exhausted) stops the loader:
requests not yet started are not sent, the error is kept in :attr:`Loader.fatal` and the caller
stops feeding batches. With ``dry_run`` the loader only reads the ledger and reports what a real
run would do.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from etl.cancel import Cancel
from etl.client import VoiptimeClient
from etl.errors import (
    AmbiguousApiError,
    ApiError,
    AuthError,
    ConfigError,
    EtlError,
    NotFoundError,
    OutputError,
    RequestRejectedError,
    RetriableApiError,
)
from etl.payload import LeadRow
from etl.state import Ledger, LedgerEntry, Stage, payload_hash

__all__ = [
    "AmbiguityEstimate",
    "CLAIM_GROUP",
    "Cancel",
    "ENROL_BATCH",
    "LeadRow",
    "LoadStats",
    "Loader",
    "Outcome",
    "check_new_ledger",
    "estimate_ambiguity",
    "other_source",
    "record_baselines",
    "same_source",
]

log = logging.getLogger(__name__)

#: Most lead ids sent in one ``generate`` call.
ENROL_BATCH = 500

#: Most new leads claimed in one ledger transaction (one fsync) before their POSTs. A batch's
#: rows go to the workers a group at a time, a group being four rounds of the workers (four
#: times ``concurrency``) up to this: the first POSTs of a batch do not wait for the whole
#: batch's claims, and a transaction stays small.
CLAIM_GROUP = 64


@dataclass
class Outcome:
    """What happened to one row.

    Attributes:
        action: ``created``, ``updated``, ``unchanged`` (the lead exists), ``ambiguous`` (sent,
            outcome unknown), ``missing`` (the dialer no longer has the lead ``lead_id``),
            ``failed`` (not sent or refused; ``message`` says why),
            ``conflict`` (another file's lead with other values: not sent), ``duplicate`` (a
            rejects-file row whose lead came from another row of its file: not sent).
        lead_id: the lead's id when known.
        campaign_id: the campaign the lead is enrolled in (``""`` when none or not yet).
        message: the reason for ``failed``/``ambiguous``, or a note.
        rejected: the server refused this row's body (a per-row 4xx): it belongs in rejects.
        enrol_ambiguous: the lead exists, but whether it is in the campaign is unknown.
        kept: for ``conflict``/``duplicate``: the ``(file, row)`` whose values the lead keeps.
        extras: what happened to the lead's tasks and notes (``callback created``,
            ``note.0 updated``…), in slot order.
        extras_ambiguous: a task or note was sent and its outcome is unknown (or an earlier
            run's was); ``message`` says which.
    """

    row: LeadRow
    action: str
    lead_id: int | None = None
    campaign_id: str = ""
    message: str = ""
    rejected: bool = False
    enrol_ambiguous: bool = False
    kept: tuple[str, int | None] | None = None
    extras: list[str] = field(default_factory=list)
    extras_ambiguous: bool = False


class _Started(NamedTuple):
    """A batch handed to the workers: its rows, what the ledger knew of them, their futures."""

    rows: Sequence[LeadRow]
    known: dict[str, LedgerEntry]
    futures: list[Future[Outcome]]
    claimed: list[str]


@dataclass
class LoadStats:
    """Counts of a run's loading, in leads (the summary's ``leads_*`` fields).

    ``missing`` (leads the dialer no longer has) are also counted in ``failed``; ``id_conflicts``
    (an id the ledger holds for another key) and ``enrol_mismatched`` (enrolments whose answer
    did not fit the campaign's ``totalEntries``) also in ``ambiguous``.
    """

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    ambiguous: int = 0
    missing: int = 0
    id_conflicts: int = 0
    enrol_mismatched: int = 0
    rejected_by_server: int = 0
    conflicts: int = 0
    duplicates: int = 0
    campaign_entries_added: int = 0
    tasks_created: int = 0
    tasks_updated: int = 0
    notes_created: int = 0
    notes_updated: int = 0
    requests: dict[str, int] = field(default_factory=dict)


class Loader:
    """Sends batches of leads; see the module docstring.

    Args:
        client: the API client (unused and may be ``None`` when ``dry_run``).
        ledger: the run's ledger (read-only when ``dry_run``).
        project_id: the project (groupId) the leads belong to.
        campaign_id: the campaign to enrol them in, or ``None``.
        concurrency: worker threads sending at once.
        dry_run: decide and count only; send nothing, write nothing.
        retry_ambiguous: re-send rows an earlier run left ambiguous.
        recreate_missing: send rows whose lead the dialer no longer has as new leads.
        campaign_entries: the campaign's ``totalEntries`` before this run's first enrolment
            (from ``GET /campaigns``); ``None``: read it before the first ``generate`` call.
        cancel: set from outside (a signal) to stop: no new request starts, requests in flight
            get ``grace`` seconds to finish, then are abandoned (the ledger keeps them
            ``sending``, so the next run reports them ambiguous).
        grace: seconds in-flight requests may take after ``cancel`` is set.
        overwrite: rows of another source replace a lead's values instead of being reported
            as ``conflict``/``duplicate``; their row becomes the lead's pinned source.
    """

    def __init__(
        self,
        client: VoiptimeClient | None,
        ledger: Ledger,
        project_id: int,
        campaign_id: str | None,
        *,
        concurrency: int = 4,
        dry_run: bool = False,
        retry_ambiguous: bool = False,
        recreate_missing: bool = False,
        campaign_entries: int | None = None,
        cancel: threading.Event | None = None,
        grace: float = 5.0,
        overwrite: bool = False,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.project_id = project_id
        self.campaign_id = campaign_id
        self.dry_run = dry_run
        self.retry_ambiguous = retry_ambiguous
        self.recreate_missing = recreate_missing
        self._entries = campaign_entries
        #: What did not fit: one line per ``generate`` answer the campaign's count contradicts.
        self.mismatches: list[str] = []
        self.stats = LoadStats()
        self.fatal: EtlError | None = None
        self._stop = threading.Event()
        self.cancel = cancel or threading.Event()
        self.grace = grace
        self.overwrite = overwrite
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="load")
        self._group = min(CLAIM_GROUP, 4 * max(1, concurrency))
        self._lock = threading.Lock()
        self._in_flight: set[str] = set()
        self._enrol_refused: set[int] = set()
        self._enrol_unknown: set[int] = set()
        self._mismatched: set[int] = set()
        self._campaign_known: bool | None = None
        self._grace_ends: float | None = None

    def close(self) -> None:
        """Stop the workers; after a cancel, do not wait for abandoned requests."""
        self._pool.shutdown(wait=not self.cancel.is_set(), cancel_futures=True)

    def stop(self, error: EtlError) -> None:
        """Stop sending: keep the first fatal error; requests not yet started are not sent."""
        with self._lock:
            if self.fatal is None:
                self.fatal = error
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """True once a fatal error or a cancel stopped the loader."""
        return self._stop.is_set() or self.cancel.is_set()

    # --- one batch ------------------------------------------------------------------------------

    def load_batch(self, rows: Sequence[LeadRow]) -> list[Outcome]:
        """Create or update the rows' leads and enrol them; one :class:`Outcome` per row."""
        return self._finish(self._start(rows))

    def load_batches(self, batches: Iterable[Sequence[LeadRow]]) -> Iterator[list[Outcome]]:
        """:meth:`load_batch` of each batch in turn, the outcomes yielded in the same order, but
        a batch's rows are handed to the workers before the previous batch is enrolled: the
        workers send them while that batch's ``generate`` call and count checks run, so they
        never wait for an enrolment or for the last answers of a batch. No new batch starts
        once the loader is stopped."""
        started: _Started | None = None
        for rows in batches:
            if self.stopped:
                break
            upcoming = self._start(rows)
            if started is not None:
                yield self._finish(started)
            started = upcoming
        if started is not None:
            yield self._finish(started)

    def _start(self, rows: Sequence[LeadRow]) -> _Started:
        """Look the rows up in the ledger and hand them to the workers a group at a time (see
        :data:`CLAIM_GROUP`), each group's new leads claimed first (:meth:`_claim`)."""
        known = self.ledger.lookup(self.project_id, [r.key for r in rows])
        claimed: list[str] = []
        futures: list[Future[Outcome]] = []
        for start in range(0, len(rows), self._group):
            group = rows[start : start + self._group]
            try:
                new = set(self._claim([r for r in group if r.key not in known]))
            except OutputError as exc:  # nothing claimed: no row from here on is sent
                for _ in rows[start:]:
                    futures.append(Future())
                    futures[-1].set_exception(exc)
                break
            claimed += new
            futures += [
                self._pool.submit(self._one, r, known.get(r.key), r.key in new) for r in group
            ]
        return _Started(rows, known, futures, claimed)

    def _claim(self, fresh: Sequence[LeadRow]) -> list[str]:
        """Claim new leads ahead of their POSTs, in one ledger transaction (one fsync for the
        group, while the workers still send the rows before): see
        :meth:`Ledger.claim`. Not under ``--rate-limit`` (a row waiting for its turn is never
        recorded), in a dry run, or when the ledger cannot tell an unsent claim after a crash
        (:attr:`Ledger.claims_ahead`): each lead then records its own ``sending`` row just
        before its POST. Returns the keys claimed.

        Raises:
            OutputError: the claims could not be written (none is).
        """
        if (
            not fresh
            or self.dry_run
            or self.client is None
            or self.client.limiter.per_second > 0
            or not self.ledger.claims_ahead
            or self.stopped
        ):
            return []
        self.ledger.claim(
            self.project_id, [(r.key, r.payload, r.source) for r in fresh], self.campaign_id
        )
        return [r.key for r in fresh]

    def _finish(self, started: _Started) -> list[Outcome]:
        """Wait for a started batch's rows (after a cancel, at most ``grace`` seconds from the
        first wait that saw it), release its claims not sent (:meth:`Ledger.release`), then
        enrol its leads; one :class:`Outcome` per row."""
        rows, known, futures, claimed = started
        pending = set(futures)
        while pending and not self.cancel.is_set():
            _, pending = wait(pending, timeout=0.1)
        if pending:  # cancelled: let requests in flight finish for a while, then abandon them
            with self._lock:
                if self._grace_ends is None:
                    self._grace_ends = time.monotonic() + self.grace
                left = self._grace_ends - time.monotonic()
            _, pending = wait(pending, timeout=max(0.0, left))
        departed = self.ledger.release(self.project_id, claimed) if claimed else set()
        outcomes = []
        for row, future in zip(rows, futures, strict=True):
            if future in pending or future.cancelled():
                with self._lock:
                    sent = row.key in self._in_flight or row.key in departed
                outcomes.append(
                    Outcome(row, "ambiguous", message="interrupted with the request in flight")
                    if sent
                    else Outcome(row, "failed", message="not sent: the run was interrupted")
                )
            else:
                outcomes.append(future.result())
        abandoned = sum(
            1 for o in outcomes if o.message == "interrupted with the request in flight"
        )
        with self._lock:
            self.stats.ambiguous += abandoned
        if self.campaign_id and not self.stopped:
            self._enrol_outcomes(outcomes, known)
        return outcomes

    def _one(self, row: LeadRow, entry: LedgerEntry | None, claimed: bool = False) -> Outcome:
        """One row's work on a worker thread; ``claimed``: a new lead claimed ahead."""
        if self.stopped:
            return Outcome(row, "failed", message="not sent: the run stopped early")
        if claimed:
            return self._create(row, claimed=True)
        if entry is not None and entry.status == "missing":
            if self.recreate_missing:
                return self._create(
                    row, f"re-created: lead {entry.lead_id} was missing in the dialer"
                )
            return self._missing(row, entry.lead_id, entry.note)
        if (
            entry is None
            or entry.status == "rejected"  # refused before: try again, the account may differ
            or (entry.status != "created" and self.retry_ambiguous)
        ):
            return self._create(row)
        if entry.status != "created":  # ambiguous (or sending: another process's, in flight)
            self._count("ambiguous")
            return Outcome(
                row,
                "ambiguous",
                entry.lead_id,
                message="an earlier run sent this lead and its outcome is unknown; "
                "check the dialer, then rerun with --retry-ambiguous to send it again",
            )
        assert entry.lead_id is not None
        if entry.payload_hash == payload_hash(row.payload):
            out = Outcome(row, "unchanged", entry.lead_id)
        else:
            other = None if self.overwrite else other_source(row, entry)
            if other is not None:
                self._count("duplicates" if other.action == "duplicate" else "conflicts")
                return other
            out = self._update(row, entry)
        if out.action in ("unchanged", "updated"):
            self._extras(out, entry.phone_id, entry.stages, entry.payload)
        sent = any(" created" in e or " updated" in e for e in out.extras)
        if out.action == "unchanged" and sent:
            out.action = "updated"
        if out.action in ("unchanged", "updated"):  # _update counts none; the others count
            self._count(out.action)
        return out

    def _create(self, row: LeadRow, note: str = "", claimed: bool = False) -> Outcome:
        """POST a new lead and record its outcome; ``claimed``: its ``sending`` row is
        committed already (:meth:`_claim`) and the departed mark is written just before the
        POST; otherwise its ``sending`` row is committed just before the POST."""
        if self.dry_run:
            self._count("created")
            out = Outcome(row, "created", message=note)
            out.extras = [f"{slot} would be created" for slot, _ in row.tasks]
            return out
        assert self.client is not None
        if claimed:
            if not self.ledger.depart(self.project_id, row.key):  # released: a stop
                why = "interrupted" if self.cancel.is_set() else "stopped early"
                return Outcome(row, "failed", message=f"not sent: the run was {why}")
        else:
            if not self.client.pace(self.cancel):  # --rate-limit: the turn, then the record
                return Outcome(row, "failed", message="not sent: the run was interrupted")
            self.ledger.mark_sending(
                self.project_id, row.key, row.payload, self.campaign_id, *row.source, note
            )
        with self._lock:
            self._in_flight.add(row.key)
        try:
            answer = self.client.create_lead(row.payload)
        except AmbiguousApiError as exc:
            self.ledger.mark_ambiguous(self.project_id, row.key)
            self._count("ambiguous")
            return Outcome(row, "ambiguous", message=str(exc))
        except RequestRejectedError as exc:
            self.ledger.mark_rejected(self.project_id, row.key)
            return self._failed(row, exc)
        except ApiError as exc:
            self.ledger.forget(self.project_id, row.key)
            return self._failed(row, exc)
        finally:
            with self._lock:
                self._in_flight.discard(row.key)
        lead_id = int(answer["id"])
        phones = answer.get("phones") or []
        phone_id = _int_or_none(phones[0].get("id")) if phones else None
        notes = _note_ids(row.notes, answer.get("comments") or [])
        holder = self.ledger.mark_created(self.project_id, row.key, lead_id, phone_id, notes)
        if holder is not None:  # never two keys on one lead: the server merged, or erred
            self._count("ambiguous", "id_conflicts")
            return Outcome(
                row,
                "ambiguous",
                message=f"the API answered lead id {lead_id}, which the ledger already holds "
                f"for {holder}: not recorded, never merged; the dialer may have merged the two "
                f"rows into one lead. Check lead {lead_id} in the dialer, then rerun with "
                "--retry-ambiguous to send this row again",
            )
        self._count("created")
        out = Outcome(row, "created", lead_id, message=note)
        stages = {slot: Stage("done", rid, body) for slot, rid, body in notes}
        self._extras(out, phone_id, stages, row.payload, created=True)
        return out

    def _missing(self, row: LeadRow, lead_id: int | None, why: str) -> Outcome:
        """The row's lead is no longer in the dialer: a row failure, the run goes on."""
        self._count("missing", "failed")
        return Outcome(
            row,
            "missing",
            lead_id,
            message=f"lead missing in the dialer: lead {lead_id} ({why}); not sent. Rerun with "
            "--recreate-missing to create it again (a new lead id, enrolled in the campaign again)",
        )

    def _record_missing(self, row: LeadRow, lead_id: int, exc: NotFoundError) -> str:
        """Record in the ledger that the dialer no longer has ``lead_id``; the reason kept."""
        today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        why = f"{exc.method} {exc.path} answered 404 on {today}"
        self.ledger.mark_missing(self.project_id, row.key, why)
        log.warning(
            "%s row %d: lead %d missing in the dialer (%s)",
            row.source_file,
            row.source_row,
            lead_id,
            why,
        )
        return why

    def _mark_missing(self, out: Outcome, lead_id: int, exc: NotFoundError) -> None:
        """A task or note call of an existing lead answered 404 and the lead is gone: the row
        becomes ``missing`` like a PATCH answered 404 (its other tasks and notes not sent)."""
        gone = self._missing(out.row, lead_id, self._record_missing(out.row, lead_id, exc))
        out.action, out.message = gone.action, gone.message
        out.extras.append("not sent: lead missing in the dialer")

    def _lead_gone(self, lead_id: int, exc: NotFoundError) -> bool:
        """Whether a 404 of a lead call means the lead is gone: asked again with a read
        (``GET /leads/{id}/comments``, docs/api.md #10), which also answers 404 for no such lead."""
        assert self.client is not None
        now = dt.datetime.now(dt.UTC)
        try:
            self.client.list_comments(lead_id, now, now)
        except NotFoundError:
            return True
        except ApiError:
            return True  # cannot tell; the write's own 404 stands
        log.warning("%s, yet lead %d answers a read: not treated as missing", exc, lead_id)
        return False

    def _update(self, row: LeadRow, entry: LedgerEntry) -> Outcome:
        """PATCH the changed fields (counted by the caller); notes are stages (:meth:`_extras`)."""
        changes = changed_fields(entry.payload, row.payload)
        pin = self.overwrite and not same_source(row, entry)
        if not changes:  # only notes changed: the stages send them
            if not self.dry_run:
                self.ledger.mark_updated(self.project_id, row.key, row.payload, row.source, pin)
            return Outcome(row, "unchanged", entry.lead_id)
        what = sorted(changes)
        if self.dry_run:
            return Outcome(row, "updated", entry.lead_id, message="changes: " + ", ".join(what))
        assert self.client is not None and entry.lead_id is not None
        try:
            self.client.update_lead(entry.lead_id, changes)
        except NotFoundError as exc:
            if not self._lead_gone(entry.lead_id, exc):
                self._count("failed")
                return Outcome(row, "failed", entry.lead_id, message=f"{exc}; the lead exists")
            return self._missing(row, entry.lead_id, self._record_missing(row, entry.lead_id, exc))
        except ApiError as exc:
            return self._failed(row, exc, entry.lead_id)
        self.ledger.mark_updated(self.project_id, row.key, row.payload, row.source, pin)
        return Outcome(row, "updated", entry.lead_id, message="changed: " + ", ".join(what))

    # --- tasks and notes (ledger stages) --------------------------------------------------------

    def _extras(
        self,
        out: Outcome,
        phone_id: int | None,
        stages: dict[str, Stage],
        old_payload: dict[str, Any],
        created: bool = False,
    ) -> None:
        """Create or update the row's tasks and notes after its lead exists.

        Each slot once: absent in the ledger → ``POST`` (``sending`` committed before it
        leaves); ``done`` with another payload → ``PUT`` with the id the ledger kept; the same
        payload → nothing; ``ambiguous`` → nothing unless ``retry_ambiguous``. A note created
        with the lead (in its create body) is already ``done``; a note text an older ledger
        sent with the lead but kept no id for counts as sent.
        """
        row = out.row
        assert out.lead_id is not None or self.dry_run
        for slot, body in row.tasks:
            if phone_id is not None:
                body = {**body, "phoneId": phone_id}
            self._extra(out, slot, body, stages.get(slot), "task")
            if self.stopped or out.action == "missing":
                return
        old_texts = {c.get("text") for c in old_payload.get("comments", [])}
        for slot, note, fixed in row.notes:
            sign = _note_sign(note, fixed)
            stage = stages.get(slot)
            if stage is None and not created and note["text"] in old_texts:
                continue  # an older ledger: sent with the lead, id unknown
            if stage is not None and stage.status == "done" and stage.payload == sign:
                continue
            self._extra(out, slot, note, stage, "note", sign)
            if self.stopped or out.action == "missing":
                return

    def _extra(
        self,
        out: Outcome,
        slot: str,
        body: dict[str, Any],
        stage: Stage | None,
        kind: str,
        sign: dict[str, Any] | None = None,
    ) -> None:
        """One task or note slot of :meth:`_extras`; ``sign`` is what a note is compared by."""
        row, lead_id = out.row, out.lead_id
        kept = body if sign is None else sign
        if stage is not None and stage.status == "done" and stage.payload == kept:
            return
        if stage is not None and stage.status != "done" and not self.retry_ambiguous:
            self._count("ambiguous")
            out.extras_ambiguous = True
            out.message = "; ".join(
                m
                for m in (
                    out.message,
                    f"{slot}: an earlier run sent it and its outcome is unknown; check the "
                    "dialer, then rerun with --retry-ambiguous to send it again",
                )
                if m
            )
            return
        edit = stage is not None and stage.status == "done" and stage.remote_id is not None
        verb = "updated" if edit else "created"
        if self.dry_run:
            out.extras.append(f"{slot} would be {verb}")
            return
        assert self.client is not None and lead_id is not None
        if not edit and not self.client.pace(self.cancel):  # --rate-limit: turn, then record
            why = f"{slot} not sent: the run was interrupted"
            out.message = "; ".join(m for m in (out.message, why) if m)
            out.extras.append(f"{slot} failed")
            return
        try:
            if edit:
                assert stage is not None and stage.remote_id is not None
                self._edit_extra(kind, lead_id, stage.remote_id, body)
                remote_id: str | None = stage.remote_id
            else:
                self.ledger.stage_sending(self.project_id, row.key, slot, kept)
                remote_id = self._create_extra(kind, lead_id, body)
        except AmbiguousApiError as exc:
            if not edit:
                self.ledger.stage_ambiguous(self.project_id, row.key, slot)
            self._count("ambiguous")
            out.extras_ambiguous = True
            out.message = "; ".join(m for m in (out.message, f"{slot}: {exc}") if m)
            out.extras.append(f"{slot} ambiguous")
            return
        except ApiError as exc:
            if not edit:
                self.ledger.stage_forget(self.project_id, row.key, slot)
            if (
                isinstance(exc, NotFoundError)
                and out.action in ("unchanged", "updated")
                and self._lead_gone(lead_id, exc)
            ):
                self._mark_missing(out, lead_id, exc)
                return
            if isinstance(exc, (AuthError, RetriableApiError)):
                self.stop(exc)
            out.message = "; ".join(m for m in (out.message, f"{slot} not sent: {exc}") if m)
            out.extras.append(f"{slot} failed")
            return
        self.ledger.stage_done(self.project_id, row.key, slot, remote_id, kept)
        out.extras.append(f"{slot} {verb}" + (f" {remote_id}" if remote_id else ""))
        what = f"{kind}s_{verb}"
        with self._lock:
            setattr(self.stats, what, getattr(self.stats, what) + 1)

    def _edit_extra(self, kind: str, lead_id: int, remote_id: str, body: dict[str, Any]) -> None:
        """PUT a task or note the API already has (its id ``remote_id``)."""
        assert self.client is not None
        if kind == "task":
            self.client.update_task(
                lead_id, remote_id, {**body, "id": remote_id, "leadId": lead_id}
            )
        else:
            self.client.update_comment(
                lead_id, remote_id, body["text"], body.get("authorId"), body["dateTime"]
            )

    def _create_extra(self, kind: str, lead_id: int, body: dict[str, Any]) -> str | None:
        """POST a task or note; the id the API gave it (``None`` when a note's cannot be
        found)."""
        assert self.client is not None
        if kind == "task":
            return str(self.client.create_task(lead_id, body)["id"])
        answer = self.client.add_comment(
            lead_id, body["text"], body.get("authorId"), body["dateTime"]
        )
        return self._comment_id(lead_id, body, answer)

    def _comment_id(self, lead_id: int, note: dict[str, Any], answer: Any) -> str | None:
        """The id of a comment just created: from the answer when it has one (the sandbox's
        does), else looked up with ``GET …/comments?from=&to=`` at its ``dateTime`` (the
        reference documents only ``200`` for the create)."""
        if isinstance(answer, dict) and answer.get("id") is not None:
            return str(answer["id"])
        assert self.client is not None
        when = note["dateTime"]  # sent as the payload holds it, never parsed back
        try:
            found = self.client.list_comments(lead_id, when, when)
        except ApiError:
            return None
        for c in reversed(found or []):
            if c.get("text") == note["text"]:
                return str(c.get("id"))
        return None

    def _failed(
        self, row: LeadRow, exc: ApiError, lead_id: int | None = None, count: bool = True
    ) -> Outcome:
        if isinstance(exc, RequestRejectedError):
            with self._lock:
                self.stats.rejected_by_server += 1
            return Outcome(
                row,
                "failed",
                lead_id,
                message=f"refused by the API: {exc.detail or exc}",
                rejected=True,
            )
        if isinstance(exc, (AuthError, NotFoundError, RetriableApiError)):
            self.stop(exc)
        if count:
            self._count("failed")
        return Outcome(row, "failed", lead_id, message=str(exc))

    def _count(self, *what: str) -> None:
        """Add one to each named :class:`LoadStats` count."""
        with self._lock:
            for name in what:
                setattr(self.stats, name, getattr(self.stats, name) + 1)

    # --- campaign enrolment ---------------------------------------------------------------------

    def _enrol_outcomes(self, outcomes: list[Outcome], known: dict[str, LedgerEntry]) -> None:
        assert self.campaign_id is not None
        todo: dict[int, Outcome] = {}
        for out in outcomes:
            if out.lead_id is None or out.action not in ("created", "updated", "unchanged"):
                continue
            entry = known.get(out.row.key)
            if entry is not None and entry.lead_id != out.lead_id:
                entry = None  # a new lead (re-created): the old one's enrolments are not its
            if entry and self.campaign_id in entry.enrolled:
                out.campaign_id = self.campaign_id
                continue
            if entry and self.campaign_id in entry.enrol_ambiguous and not self.retry_ambiguous:
                out.message = (
                    "campaign enrolment of an earlier run has an unknown outcome; check the "
                    "campaign, then rerun with --retry-ambiguous to send it again"
                )
                out.enrol_ambiguous = True
                with self._lock:
                    self.stats.ambiguous += 1
                continue
            todo[out.lead_id] = out
        if self.dry_run:
            for out in outcomes:
                if out.action == "created" or (out.lead_id in todo):
                    out.campaign_id = self.campaign_id
                    self.stats.campaign_entries_added += 1
            return
        done, unknown = self.enrol(list(todo))
        for lead_id in done:
            todo[lead_id].campaign_id = self.campaign_id
        for lead_id in unknown:
            todo[lead_id].message = (
                "campaign enrolment answered as done, but the campaign's totalEntries did not "
                "grow: outcome unknown"
                if lead_id in self._mismatched
                else "campaign enrolment sent, outcome unknown"
            )
            todo[lead_id].enrol_ambiguous = True

    def enrol(self, lead_ids: list[int]) -> tuple[list[int], list[int]]:
        """Push leads into the campaign in calls of at most :data:`ENROL_BATCH` ids.

        Returns:
            ``(enrolled, ambiguous)`` lead ids. Ids the API refuses are logged, counted as
            failed and left out of both.
        """
        enrolled: list[int] = []
        unknown: list[int] = []
        # once a run: not again after a refusal, nor after an unknown outcome in this run
        skip = self._enrol_refused | self._enrol_unknown
        lead_ids = [i for i in lead_ids if i not in skip]
        for start in range(0, len(lead_ids), ENROL_BATCH):
            if self.stopped:
                break
            done, amb = self._generate(lead_ids[start : start + ENROL_BATCH])
            enrolled += done
            unknown += amb
        return enrolled, unknown

    def _campaign(self) -> dict[str, Any] | None:
        """The campaign as ``GET /campaigns?includeIds=`` shows it, ``None`` when it is not
        listed.

        Raises:
            ApiError: the read failed.
        """
        assert self.client is not None and self.campaign_id is not None
        return self.client.find_campaign(self.campaign_id)

    def _campaign_exists(self) -> bool:
        """Whether the campaign is still there (one GET, asked once per run): a ``generate``
        404 means either a bad lead id or a campaign that is gone."""
        if self._campaign_known is None:
            try:
                assert self.client is not None and self.campaign_id is not None
                self._campaign_known = self.client.campaign_exists(self.campaign_id)
            except ApiError:
                self._campaign_known = True  # cannot tell: look for the bad id instead
        return self._campaign_known

    def _total_entries(self) -> int | None:
        """The campaign's ``totalEntries`` now, or ``None`` when it cannot be read."""
        try:
            campaign = self._campaign()
        except ApiError as exc:
            log.info("campaign entries cannot be counted (%s); enrolment not checked", exc)
            return None
        if self._campaign_known is None:
            self._campaign_known = campaign is not None
        total = campaign.get("totalEntries") if campaign else None
        return int(total) if isinstance(total, int) and not isinstance(total, bool) else None

    def _check_entries(self, ids: list[int]) -> bool:
        """After a ``generate`` call: did the campaign's ``totalEntries`` grow by at least
        ``len(ids)``? Growth from elsewhere is not an error; a shortfall is (the answer said
        the entries were added, the campaign's count says they were not all)."""
        before = self._entries
        after = self._total_entries()
        self._entries = after
        if before is None or after is None or after - before >= len(ids):
            return True
        line = (
            f"the campaign's totalEntries went from {before} to {after} after a generate call "
            f"for {len(ids)} lead(s) was answered as done: the answer does not fit; those "
            "enrolments are recorded ambiguous (check the campaign, then rerun with "
            "--retry-ambiguous to enrol them again)"
        )
        log.warning("%s", line)
        with self._lock:
            self.mismatches.append(line)
            self.stats.ambiguous += len(ids)
            self.stats.enrol_mismatched += len(ids)
            self._enrol_unknown.update(ids)
            self._mismatched.update(ids)
        return False

    def _generate(self, ids: list[int]) -> tuple[list[int], list[int]]:
        assert self.client is not None and self.campaign_id is not None
        if not ids or self.stopped:
            return [], []
        if self._entries is None:
            self._entries = self._total_entries()
        self.ledger.mark_enrolling(self.campaign_id, ids)
        try:
            self.client.generate_entries(self.campaign_id, ids)
        except AmbiguousApiError as exc:
            log.warning("%s: enrolment of %d lead(s) has an unknown outcome", exc, len(ids))
            self.ledger.finish_enrolling(self.campaign_id, ids, "ambiguous")
            with self._lock:
                self.stats.ambiguous += len(ids)
                self._enrol_unknown.update(ids)
            return [], ids
        except (RequestRejectedError, NotFoundError) as exc:
            self.ledger.finish_enrolling(self.campaign_id, ids, "failed")
            if isinstance(exc, NotFoundError) and not self._campaign_exists():
                self.stop(
                    NotFoundError(
                        exc.method, exc.path, f"campaign {self.campaign_id} no longer exists", 404
                    )
                )
                return [], []
            if len(ids) == 1:
                log.error("lead %d could not be enrolled: %s", ids[0], exc.detail or exc)
                self._enrol_refused.add(ids[0])
                self._count("failed")
                return [], []
            half = len(ids) // 2
            first = self._generate(ids[:half])
            second = self._generate(ids[half:])
            return first[0] + second[0], first[1] + second[1]
        except ApiError as exc:
            self.ledger.finish_enrolling(self.campaign_id, ids, "failed")
            self.stop(exc)
            return [], []
        if not self._check_entries(ids):
            self.ledger.finish_enrolling(self.campaign_id, ids, "ambiguous")
            return [], ids
        self.ledger.finish_enrolling(self.campaign_id, ids, "done")
        with self._lock:
            self.stats.campaign_entries_added += len(ids)
        return ids, []


def _same_file(a: str, b: str) -> bool:
    """Whether two file names as runs gave them name one file (relative names are taken from
    the current folder)."""
    return a == b or os.path.abspath(a) == os.path.abspath(b)


def same_source(row: LeadRow, entry: LedgerEntry) -> bool:
    """Whether ``row`` is the source of ``entry``'s values: its very row, or (for a row of a
    file read as it is, not a rejects file) the same file when the source is not pinned."""
    if entry.source_file is None:  # recorded before sources were: any row may update it
        return True
    file, line = row.source
    if not _same_file(file, entry.source_file):
        return False
    if line == entry.source_row:
        return True
    return row.origin is None and not entry.source_pinned


def other_source(row: LeadRow, entry: LedgerEntry) -> Outcome | None:
    """The ``duplicate``/``conflict`` outcome of a changed row that is not ``entry``'s source
    (see the module docstring), or ``None`` when it may update the lead."""
    if same_source(row, entry):
        return None
    assert entry.source_file is not None
    kept = f"{entry.source_file} row {entry.source_row}"
    fields = sorted(changed_fields(entry.payload, row.payload)) or ["comments"]
    lead = f"lead {entry.lead_id}"

    source = (entry.source_file, entry.source_row)

    def refused(action: str, message: str) -> Outcome:
        return Outcome(row, action, entry.lead_id, kept=source, message=message)

    if row.origin is not None and _same_file(row.origin[0], entry.source_file):
        return refused(
            "duplicate",
            f"duplicate of {kept}, whose values {lead} holds: a rejects file never updates a "
            "lead from another row; give this row its own key to load it as a new lead, or "
            "rerun with --overwrite to replace the lead's values with it",
        )
    if not entry.source_pinned and not os.path.exists(entry.source_file):
        # the other file is gone (archived, say): it cannot change the lead back, so this
        # row takes over, as tonight's export does from last night's
        return None
    why = "the values pinned with --overwrite" if entry.source_pinned else "its values"
    return refused(
        "conflict",
        f"conflict: {lead} keeps {why} from {kept}; this row ({row.source[0]} row "
        f"{row.source[1]}) has other {', '.join(fields)} and was not sent; fix one of the two "
        "files, or rerun with --overwrite to make this row the lead's source",
    )


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _note_sign(note: dict[str, Any], fixed: bool) -> dict[str, Any]:
    """What a note is compared by between runs: text and author, and its time when it came
    from a column (the run's time changes every run and is no edit)."""
    return {k: v for k, v in note.items() if k != "dateTime" or fixed}


def _note_ids(
    notes: Sequence[tuple[str, dict[str, Any], bool]], answered: list[dict[str, Any]]
) -> list[tuple[str, str | None, dict[str, Any]]]:
    """The notes sent in a create body matched to the comments of the answer (by text, in
    order): ``(slot, comment id or None, what the note is compared by)``."""
    left = list(answered)
    out = []
    for slot, note, fixed in notes:
        found = next((c for c in left if c.get("text") == note["text"]), None)
        if found is not None:
            left.remove(found)
        rid = None if found is None or found.get("id") is None else str(found["id"])
        out.append((slot, rid, _note_sign(note, fixed)))
    return out


def changed_fields(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The top-level lead fields whose value differs, with their new values (for PATCH).

    Comments are not compared: they are notes added when the lead is created.
    """
    return {k: v for k, v in new.items() if k != "comments" and old.get(k) != v}


# --- the ledger against the server's own counts ------------------------------------------------


def _count(item: dict[str, Any] | None, name: str) -> int | None:
    value = (item or {}).get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_new_ledger(
    ledger: Ledger, project: dict[str, Any], *, dry_run: bool, new_ledger: bool
) -> str:
    """Refuse a ledger that knows nothing of a project that already has contacts.

    A deleted or replaced state file would otherwise send every row again as a new lead (the
    API has no lead search): every lead doubled.

    Args:
        project: the project as ``GET /projects`` lists it (docs/api.md #1: ``contacts``, the number
            of all its contacts).
        dry_run: only warn (a dry run sends nothing, but its counts are then wrong).
        new_ledger: the person said a fresh ledger is intended (``--new-ledger``).

    Returns:
        A warning to show (``""`` when the ledger knows the project or the project is empty).

    Raises:
        ConfigError: a real run without ``new_ledger`` (exit 78).
    """
    contacts = _count(project, "contacts")
    pid = project.get("id")
    if not contacts or ledger.knows_project(int(pid)):  # type: ignore[arg-type]
        return ""
    what = (
        f"project {pid} ({project.get('name')!r}) already holds {contacts:,} contact(s) "
        f"(GET /projects), but the state file {ledger.path} has no record of this project: "
        "a new, deleted or replaced ledger"
    )
    if dry_run:
        return (
            f"{what}. This dry run counts every row as a new lead, so its numbers are wrong if "
            "those contacts came from these files; a real run would be refused unless you pass "
            "--new-ledger"
        )
    if not new_ledger:
        raise ConfigError(
            f"{what}. Every row would be created again, doubling leads that exist. Restore the "
            "state file the earlier runs used (--state), or, if creating new leads is intended "
            "(those contacts came from elsewhere), rerun with --new-ledger"
        )
    return f"{what}; going on as asked (--new-ledger)"


def record_baselines(
    ledger: Ledger,
    project: dict[str, Any],
    campaign: dict[str, Any] | None,
) -> None:
    """Before a real run sends anything: note the server's counts beside the ledger's, for
    :func:`estimate_ambiguity`; only while nothing of that project (campaign) is ambiguous, so
    the baseline stays the last moment the two agreed.

    Args:
        project: as ``GET /projects`` lists it (``contacts``).
        campaign: as ``GET /campaigns`` lists it (``totalEntries``), or ``None``.
    """
    pid = int(project["id"])
    tally = ledger.tally(pid, campaign.get("id") if campaign else None)
    contacts = _count(project, "contacts")
    if contacts is not None and tally["ambiguous"] == 0:
        ledger.set_baseline(f"project:{pid}", contacts, tally["created"])
    entries = _count(campaign, "totalEntries")
    if campaign is not None and entries is not None and tally["enrol_ambiguous"] == 0:
        ledger.set_baseline(f"campaign:{campaign['id']}", entries, tally["enrolled"])


@dataclass(frozen=True)
class AmbiguityEstimate:
    """How many ambiguous sends probably reached the server, from its own counts.

    The project's ``contacts`` (docs/api.md #1) grow with every lead created; the ledger counts the
    leads it knows were created. Since the last baseline (a moment with nothing ambiguous), the
    server's growth beyond the ledger's is the number of ambiguous creations that landed, if
    nobody else added or deleted contacts meanwhile. Campaign entries likewise, from the
    campaign's ``totalEntries`` (docs/api.md #12).

    Attributes:
        leads_ambiguous: leads of the project whose creation outcome is unknown (ledger).
        leads_probably_created: how many of them the project's count says exist, or ``None``
            when it cannot be told (no baseline, or the count unreadable).
        project_contacts: the project's ``contacts`` now.
        contacts_accounted: what the ledger accounts for (baseline plus leads created since).
        enrolments_ambiguous: enrolments in the campaign with an unknown outcome (ledger).
        enrolments_probably_done: how many of them the campaign's ``totalEntries`` says exist.
        campaign_entries: the campaign's ``totalEntries`` now.
        entries_accounted: what the ledger accounts for.
        since: when the project's baseline was taken (UTC), or ``None``.
    """

    leads_ambiguous: int
    leads_probably_created: int | None
    project_contacts: int | None
    contacts_accounted: int | None
    enrolments_ambiguous: int = 0
    enrolments_probably_done: int | None = None
    campaign_entries: int | None = None
    entries_accounted: int | None = None
    since: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The estimate as ``summary.json`` holds it (``ambiguity``), with ``message``."""
        return {
            "leads_ambiguous": self.leads_ambiguous,
            "leads_probably_created": self.leads_probably_created,
            "project_contacts": self.project_contacts,
            "contacts_accounted": self.contacts_accounted,
            "enrolments_ambiguous": self.enrolments_ambiguous,
            "enrolments_probably_done": self.enrolments_probably_done,
            "campaign_entries": self.campaign_entries,
            "entries_accounted": self.entries_accounted,
            "since": self.since,
            "message": self.message(),
        }

    def message(self) -> str:
        """What a person reads before choosing ``--retry-ambiguous``."""
        parts = []
        if self.leads_ambiguous:
            if self.leads_probably_created is None:
                parts.append(
                    f"{self.leads_ambiguous} lead(s) are ambiguous; how many reached the dialer "
                    "cannot be told from the project's contact count (no baseline in this state "
                    "file yet)"
                )
            else:
                n = self.leads_probably_created
                parts.append(
                    f"{self.leads_ambiguous} lead(s) are ambiguous; the project holds "
                    f"{self.project_contacts:,} contacts where the ledger accounts for "
                    f"{self.contacts_accounted:,}, so about {n} of the {self.leads_ambiguous} "
                    f"probably reached the dialer: --retry-ambiguous would likely create about "
                    f"{n} duplicate lead(s)"
                )
        if self.enrolments_ambiguous:
            if self.enrolments_probably_done is None:
                parts.append(
                    f"{self.enrolments_ambiguous} campaign enrolment(s) are ambiguous; the "
                    "campaign's totalEntries cannot tell how many landed"
                )
            else:
                n = self.enrolments_probably_done
                parts.append(
                    f"{self.enrolments_ambiguous} campaign enrolment(s) are ambiguous; the "
                    f"campaign holds {self.campaign_entries:,} entries where the ledger accounts "
                    f"for {self.entries_accounted:,}, so about {n} probably landed: "
                    f"--retry-ambiguous would likely enrol about {n} lead(s) twice"
                )
        since = f" since {self.since}" if self.since else ""
        return (
            "; ".join(parts)
            + " (an estimate: it assumes nobody else added or deleted contacts or entries"
            + f"{since}). Check those rows in the dialer (loaded.csv lists them) before "
            "rerunning with --retry-ambiguous"
        )


def _probably(
    server_now: int | None, base: tuple[int, int, str] | None, ledger_now: int, ambiguous: int
) -> tuple[int | None, int | None]:
    """``(how many ambiguous sends the server's growth says landed, what the ledger accounts
    for)``; ``(None, None)`` when it cannot be told."""
    if server_now is None or base is None:
        return None, None
    accounted = base[0] + (ledger_now - base[1])
    return max(0, min(ambiguous, server_now - accounted)), accounted


def estimate_ambiguity(
    client: VoiptimeClient, ledger: Ledger, project_id: int, campaign_id: str | None
) -> AmbiguityEstimate | None:
    """Estimate how many of the ledger's ambiguous sends reached the server (two read-only GETs,
    only when something is ambiguous); see :class:`AmbiguityEstimate`.

    Returns:
        ``None`` when nothing of the project (campaign) is ambiguous in the ledger.

    Raises:
        ApiError: the counts could not be read.
    """
    tally = ledger.tally(project_id, campaign_id)
    if not tally["ambiguous"] and not tally["enrol_ambiguous"]:
        return None
    project = next((p for p in client.list_projects() if str(p.get("id")) == str(project_id)), None)
    contacts = _count(project, "contacts")
    base = ledger.baseline(f"project:{project_id}")
    leads, accounted = _probably(contacts, base, tally["created"], tally["ambiguous"])
    entries = done = entries_accounted = None
    if campaign_id is not None and tally["enrol_ambiguous"]:
        campaign = client.find_campaign(campaign_id)
        entries = _count(campaign, "totalEntries")
        done, entries_accounted = _probably(
            entries,
            ledger.baseline(f"campaign:{campaign_id}"),
            tally["enrolled"],
            tally["enrol_ambiguous"],
        )
    return AmbiguityEstimate(
        leads_ambiguous=tally["ambiguous"],
        leads_probably_created=leads,
        project_contacts=contacts,
        contacts_accounted=accounted,
        enrolments_ambiguous=tally["enrol_ambiguous"],
        enrolments_probably_done=done,
        campaign_entries=entries,
        entries_accounted=entries_accounted,
        since=base[2] if base else None,
    )
