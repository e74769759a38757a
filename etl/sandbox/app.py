"""The sandbox's in-memory Voiptime Cloud API: routing, validation, storage (no HTTP here).

:class:`SandboxApp` holds the whole state behind one lock. The HTTP layer
(:mod:`etl.sandbox.server`) asks it to :meth:`~SandboxApp.match` a request to a route, to
:meth:`~SandboxApp.admit` it (count it and decide its fault), and to :meth:`~SandboxApp.handle`
it, which returns a :class:`Reply`.

Error answers are JSON ``{"timestamp", "status", "error", "message", "path"}`` (the Spring Boot
shape; ``message`` says which field and why). Validation follows the vendor's reference as
``docs/api.md`` restates it (quirks noted there); where it is silent the sandbox
is strict, so that a client bug shows up here rather than in production:

- a write with a body must say ``Content-Type: application/json`` (else 415);
- unknown keys are 400 (with a "did you mean" hint, e.g. ``timezoneID``);
- path ids that are not integers (project, lead, comment) are 400; unknown ids are 404.
"""

from __future__ import annotations

import copy
import difflib
import functools
import hmac
import json
import re
import threading
import zoneinfo
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from etl.sandbox.data import (
    SANDBOX_COMPANY_ID,
    SANDBOX_USER_ID,
    SANDBOX_USER_NAME,
    objects,
)
from etl.sandbox.faults import FaultDecision, FaultRule, decide

__all__ = ["MAX_HOLD_S", "ApiFailure", "Match", "Reply", "SandboxApp", "parse_datetime"]

FIRST_LEAD_ID = 1001
FIRST_PHONE_ID = 5001
FIRST_COMMENT_ID = 9001
MAX_PAGE = 50
#: The longest a ``hold`` fault rule keeps a request (seconds), in case nobody releases it.
MAX_HOLD_S = 600.0
_INT64 = (-(2**63), 2**63 - 1)

#: A lead's fields a create or update body may set as plain values (a PATCH copies them as sent).
_LEAD_SCALARS = ("groupId", "statusId", "sourceId", "email", "name", "surname", "timezoneId")
_LEAD_WRITABLE = (*_LEAD_SCALARS, "phones", "dynamicData", "comments")
_LEAD_READ_ONLY = ("id", "createDate", "lastInteractionDate", "owner")
_TASK_FIELDS = ("phoneId", "email", "userId", "triggerTime", "finishTime", "type", "teamIds")
_TASK_PUT_EXTRA = (
    "id",
    "leadId",
    "leadName",
    "phoneNumber",
    "companyId",
    "createDate",
    "lastUpdateDate",
    "deleted",
    "status",
)
_TASK_TYPES = ("CALLBACK", "MEETING")
_TASK_STATUSES = ("OPEN", "CANCELLED", "DONE")


# --------------------------------------------------------------------------- small helpers


@dataclass
class Reply:
    """An HTTP answer.

    Attributes:
        status: HTTP status code.
        body: the bytes to send (``b""`` for none).
        content_type: the ``Content-Type``, or ``None`` for an empty body.
        headers: extra ``(name, value)`` headers.
    """

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


class ApiFailure(Exception):
    """Raised inside a handler to answer an error (``status``, ``message``)."""

    def __init__(self, status: int, message: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


def json_reply(status: int, payload: Any) -> Reply:
    """A JSON answer (compact, UTF-8)."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Reply(status, body, "application/json")


def error_reply(status: int, message: str, path: str) -> Reply:
    """The error JSON ``{"timestamp", "status", "error", "message", "path"}``."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return json_reply(
        status,
        {
            "timestamp": _iso_ms(_now(), zulu=True),
            "status": status,
            "error": phrase,
            "message": message,
            "path": path,
        },
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _iso_ms(dt: datetime, zulu: bool) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmm`` (UTC), with a trailing ``Z`` when ``zulu``."""
    text = dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{dt.microsecond // 1000:03d}"
    return text + "Z" if zulu else text


_OFFSET_NO_COLON = re.compile(r"([+-]\d{2})(\d{2})$")


def parse_datetime(value: object) -> datetime | None:
    """Parse an API date-time, in any of the forms the reference writes.

    Accepted: ``2018-10-06T08:39:02Z``, ``2018-10-16T09:55:53.228Z``, ``2018-10-19T07:14:22.439``
    (read as UTC), ``2018-10-19T07:14:22.439+0000``, ``...+02:00``.

    Returns:
        An aware UTC datetime, or ``None`` when ``value`` is not such a string.
    """
    if not isinstance(value, str) or "T" not in value:
        return None
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    text = _OFFSET_NO_COLON.sub(r"\1:\2", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _is_int(value: object) -> bool:
    return (
        isinstance(value, int) and not isinstance(value, bool) and _INT64[0] <= value <= _INT64[1]
    )


def _int_or_digits(value: object) -> int | None:
    """An int, or a string of digits (the reference quotes some ids); else ``None``."""
    if isinstance(value, int) and _is_int(value):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _nonempty_str(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _unknown_key(key: str, known: tuple[str, ...]) -> str:
    hint = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if not hint:
        lowered = {k.lower(): k for k in known}
        hint = [lowered[key.lower()]] if key.lower() in lowered else []
    suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
    return f"{key}: unknown field{suffix}"


def _bad_request(problems: list[str]) -> ApiFailure:
    return ApiFailure(400, "; ".join(problems))


def _list_of(
    value: object, name: str, shape: str, problems: list[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The objects of the list ``value`` of a body's ``name`` as ``(key path, object)``; when
    ``value`` is no list, or an item no object, ``problems`` says so (``must be a list of
    SHAPE``, ``must be an object SHAPE``)."""
    if not isinstance(value, list):
        problems.append(f"{name}: must be a list of {shape}")
        return
    for at, _, item in objects(value, name, f" {shape}", problems):
        yield at, item


def _check_phone(at: str, phone: dict[str, Any], problems: list[str]) -> None:
    """One phone's own keys: ``number`` (required), ``label``, ``active``."""
    for key in phone:
        if key not in ("number", "label", "active", "id", "leadId"):
            problems.append(f"{at}.{_unknown_key(key, ('number', 'label', 'active'))}")
    if "number" not in phone:
        problems.append(f"{at}.number: required")
    elif not _nonempty_str(phone["number"]):
        problems.append(f"{at}.number: must be a non-empty string")
    if "label" in phone and not isinstance(phone["label"], str):
        problems.append(f"{at}.label: must be a string")
    if "active" in phone and not isinstance(phone["active"], bool):
        problems.append(f"{at}.active: must be true or false")


def _check_phone_ids(
    at: str,
    phone: dict[str, Any],
    lead: dict[str, Any] | None,
    own: set[int],
    seen: set[int],
    problems: list[str],
) -> None:
    """A phone's ``id`` and ``leadId``: only in an update, naming a phone of that lead
    (``own``) once (``seen``)."""
    if "id" in phone:
        if lead is None:
            problems.append(f"{at}.id: only when updating an existing phone of a lead")
        elif not _is_int(phone["id"]) or phone["id"] not in own:
            problems.append(f"{at}.id: {phone['id']!r} is not a phone of lead {lead['id']}")
        elif phone["id"] in seen:
            problems.append(f"{at}.id: phone {phone['id']} given twice")
        else:
            seen.add(phone["id"])
    if "leadId" in phone:
        if lead is None:
            problems.append(f"{at}.leadId: only when updating an existing phone of a lead")
        elif _int_or_digits(phone["leadId"]) != lead["id"]:
            problems.append(f"{at}.leadId: must be {lead['id']}")


def _check_lead_comment(
    at: str, comment: dict[str, Any], updating: bool, problems: list[str]
) -> None:
    """One note of a lead body: ``authorId``, ``dateTime`` and ``text`` (an update may also
    carry the ``id`` and ``authorName`` it read)."""
    allowed = ("authorId", "dateTime", "text")
    for key in comment:
        if key in allowed or (updating and key in ("id", "authorName")):
            continue
        problems.append(f"{at}.{_unknown_key(key, allowed)}")
    if "authorId" in comment and not _nonempty_str(comment["authorId"]):
        problems.append(f"{at}.authorId: must be a non-empty string")
    if "dateTime" not in comment:
        problems.append(f"{at}.dateTime: required")
    elif parse_datetime(comment["dateTime"]) is None:
        problems.append(f"{at}.dateTime: {comment['dateTime']!r} is not a date-time")
    if "text" not in comment:
        problems.append(f"{at}.text: required")
    elif not _nonempty_str(comment["text"]):
        problems.append(f"{at}.text: must be a non-empty string")


def _lead_key_problems(body: dict[str, Any], lead: dict[str, Any] | None) -> list[str]:
    """Keys a lead body may not carry (unknown, read-only at creation, an ``id`` not the
    path's) and, at creation, the required ones it lacks."""
    problems: list[str] = []
    for key in body:
        if key in _LEAD_WRITABLE:
            continue
        if key in _LEAD_READ_ONLY:
            if lead is None:
                problems.append(f"{key}: read-only, not accepted when creating a lead")
            elif key == "id" and _int_or_digits(body["id"]) != lead["id"]:
                problems.append(f"id: {body['id']!r} does not match the path ({lead['id']})")
            continue
        problems.append(_unknown_key(key, _LEAD_WRITABLE))
    if lead is None:
        for key in ("groupId", "name", "surname", "email", "timezoneId"):
            if key not in body:
                problems.append(f"{key}: required")
    return problems


def _lead_value_problems(body: dict[str, Any]) -> list[str]:
    """The types of a lead body's scalar fields, and its ``timezoneId`` a known zone."""
    problems: list[str] = []
    for key in ("groupId", "statusId", "sourceId"):
        if key in body and not _is_int(body[key]):
            problems.append(f"{key}: must be an integer, not {_json_type(body[key])}")
    for key in ("name", "surname", "email"):
        if key in body and not _nonempty_str(body[key]):
            problems.append(f"{key}: must be a non-empty string")
    if "timezoneId" in body:
        zone = body["timezoneId"]
        if not isinstance(zone, str):
            problems.append(f"timezoneId: must be a string, not {_json_type(zone)}")
        elif zone not in _zones():
            problems.append(f"timezoneId: {zone!r} is not an IANA time zone name")
    return problems


def _check_task_times(
    body: dict[str, Any], kind: object, problems: list[str], out: dict[str, Any]
) -> None:
    """A task's ``triggerTime`` (required) and ``finishTime`` (a MEETING's only, not before the
    trigger), into ``out`` as ``YYYY-MM-DDTHH:MM:SS``."""
    times: dict[str, datetime] = {}
    for key in ("triggerTime", "finishTime"):
        if key not in body or (key == "finishTime" and body[key] is None and kind != "MEETING"):
            continue
        parsed = parse_datetime(body[key])
        if parsed is None:
            problems.append(f"{key}: {body[key]!r} is not a date-time (YYYY-MM-DDTHH:MM:SSZ)")
        else:
            times[key] = parsed
            out[key] = parsed.strftime("%Y-%m-%dT%H:%M:%S")
    if "triggerTime" not in body:
        problems.append("triggerTime: required")
    if kind == "MEETING" and "finishTime" not in body:
        problems.append("finishTime: required for a MEETING")
    if kind == "CALLBACK" and body.get("finishTime") is not None:
        problems.append("finishTime: only for a MEETING")
    if len(times) == 2 and times["finishTime"] < times["triggerTime"]:
        problems.append("finishTime: before triggerTime")


def _check_task_people(
    body: dict[str, Any], lead: dict[str, Any], problems: list[str], out: dict[str, Any]
) -> None:
    """Whom a task is for and with: ``phoneId`` (a phone of the lead, with its number),
    ``email``, ``userId``, ``teamIds``."""
    if body.get("phoneId") is not None:
        phone_id = _int_or_digits(body["phoneId"])
        phone = next((p for p in lead["phones"] if p["id"] == phone_id), None)
        if phone is None:
            problems.append(f"phoneId: {body['phoneId']!r} is not a phone of lead {lead['id']}")
        else:
            out["phoneId"] = phone["id"]
            out["phoneNumber"] = phone["number"]
    if body.get("email") is not None:
        if isinstance(body["email"], str):
            out["email"] = body["email"]
        else:
            problems.append("email: must be a string")
    if body.get("userId") is not None:
        if isinstance(body["userId"], str) or _is_int(body["userId"]):
            out["userId"] = body["userId"]
        else:
            problems.append("userId: must be a string")
    if "teamIds" in body:
        teams = body["teamIds"]
        if not isinstance(teams, list) or not all(isinstance(t, str) for t in teams):
            problems.append("teamIds: must be a list of strings")
        else:
            out["teamIds"] = list(teams)


def _check_task_put(
    body: dict[str, Any],
    lead: dict[str, Any],
    task: dict[str, Any],
    problems: list[str],
    out: dict[str, Any],
) -> None:
    """What only a PUT of an existing task may carry: its ``id`` and ``leadId`` (the path's),
    ``status`` and ``deleted``."""
    if "id" in body and body["id"] != task["id"]:
        problems.append(f"id: {body['id']!r} does not match the path ({task['id']})")
    if "leadId" in body and _int_or_digits(body["leadId"]) != lead["id"]:
        problems.append(f"leadId: {body['leadId']!r} does not match the path")
    if "status" in body:
        if body["status"] not in _TASK_STATUSES:
            problems.append(f"status: {body['status']!r} is not OPEN, CANCELLED or DONE")
        else:
            out["status"] = body["status"]
    if "deleted" in body:
        if not isinstance(body["deleted"], bool):
            problems.append("deleted: must be true or false")
        else:
            out["deleted"] = body["deleted"]


# --------------------------------------------------------------------------- routing


@dataclass
class Request:
    """What a handler gets.

    Attributes:
        method: ``"GET"`` etc.
        path: the full URL path (``/api/...``), for error answers.
        params: path parameters by template name (strings as sent).
        query: query parameters, each a list of values.
        body: the raw body bytes.
        content_type: the ``Content-Type`` header, or ``None``.
    """

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, list[str]]
    body: bytes
    content_type: str | None


Handler = Callable[["SandboxApp", Request], Reply]


@dataclass
class Match:
    """A request matched to a route.

    Attributes:
        key: ``"METHOD /template"`` (counts and fault rules use it), or
            ``"METHOD (unknown route)"``.
        handler: the endpoint function, or ``None`` (unknown route or method not allowed).
        params: path parameters.
        allowed: methods the template allows (empty for an unknown route).
    """

    key: str
    handler: Handler | None
    params: dict[str, str]
    allowed: tuple[str, ...]


_ROUTES: list[tuple[str, re.Pattern[str], dict[str, str]]] = []


def _route(template: str, methods: dict[str, str]) -> None:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    _ROUTES.append((template, re.compile(pattern), methods))


_route("/projects", {"GET": "get_projects"})
_route("/projects/{projectId}/sources", {"GET": "get_sources"})
_route("/projects/{projectId}/statuses", {"GET": "get_statuses"})
_route("/leads", {"POST": "create_lead"})
_route("/leads/{leadId}", {"PATCH": "update_lead"})
_route("/leads/{leadId}/tasks", {"POST": "create_task"})
_route("/leads/{leadId}/tasks/{taskId}", {"PUT": "update_task"})
_route("/leads/{leadId}/comments", {"POST": "create_comment", "GET": "list_comments"})
_route(
    "/leads/{leadId}/comments/{commentId}", {"PUT": "update_comment", "DELETE": "delete_comment"}
)
_route("/campaigns", {"GET": "get_campaigns"})
_route("/campaigns/{campaignId}/entries/actions/generate", {"POST": "generate_entries"})


# --------------------------------------------------------------------------- the app


class SandboxApp:
    """The sandbox API's state and endpoints (thread-safe: every access holds :attr:`lock`).

    Args:
        data: normalized start data (:func:`etl.sandbox.data.validate_data`).
        api_key: the key every ``/api`` request must send in ``Api-Key``.
    """

    def __init__(self, data: dict[str, Any], api_key: str) -> None:
        self.lock = threading.Lock()
        # Requests held by a ``hold`` fault rule wait on this; a release bumps the generation.
        self._holds = threading.Condition(self.lock)
        self._holding = 0
        self._hold_generation = 0
        self._closing = False
        self._api_key = api_key.encode("utf-8")
        self._start_data = copy.deepcopy(data)
        self.rules: list[FaultRule] = []
        self.reset()

    # ------------------------------------------------------------------ state and admin

    def reset(self) -> None:
        """Restore the start data; forget leads, tasks, comments, entries, counts and faults."""
        data = copy.deepcopy(self._start_data)
        with self.lock:
            self.projects: dict[int, dict[str, Any]] = {}
            self.statuses: dict[int, dict[str, Any]] = {}  # id -> status (with groupId)
            self.sources: dict[int, dict[str, Any]] = {}
            for project in data["projects"]:
                self.projects[project["id"]] = project
                for status in project["statuses"]:
                    self.statuses[status["id"]] = {**status, "groupId": project["id"]}
                for source in project["sources"]:
                    self.sources[source["id"]] = {**source, "groupId": project["id"]}
            self.campaigns: list[dict[str, Any]] = data["campaigns"]
            self.campaigns_by_id = {c["id"]: c for c in self.campaigns}
            self.entries: dict[str, list[int]] = {c["id"]: [] for c in self.campaigns}
            self.leads: dict[int, dict[str, Any]] = {}
            self.comments: dict[int, dict[str, Any]] = {}  # id -> comment (with leadId)
            self.lead_comments: dict[int, dict[int, dict[str, Any]]] = {}  # lead id -> id -> c
            self.tasks: dict[str, dict[str, Any]] = {}
            # project id -> status id (or None) -> number of leads
            self.lead_counts: dict[int, Counter[int | None]] = {p: Counter() for p in self.projects}
            self.request_counts: Counter[str] = Counter()
            self.patches: list[dict[str, Any]] = []  # every accepted PATCH body, in order
            self.rules = []
            self._release_locked()
            self._next_lead = FIRST_LEAD_ID
            self._next_phone = FIRST_PHONE_ID
            self._next_comment = FIRST_COMMENT_ID
            self._next_task = 1

    def snapshot(self) -> dict[str, Any]:
        """The state of ``GET /_sandbox/state`` (a deep copy).

        Returns:
            ``{"leads": [lead, ...], "campaign_entries": {campaignId: [leadId, ...]}`` (campaigns
            with at least one entry), ``"tasks": [task, ...], "comments": [comment with leadId,
            ...], "requests": {"METHOD /template": n}, "patches": [{"leadId", "body"}, ...]}``
            (``patches``: every accepted ``PATCH /leads/{id}`` body, so tests can see exactly
            which fields an update sent).
        """
        with self.lock:
            state = {
                "leads": [self._render_lead(lead) for lead in self.leads.values()],
                "campaign_entries": {cid: list(ids) for cid, ids in self.entries.items() if ids},
                "tasks": [dict(task) for task in self.tasks.values()],
                "comments": [dict(c) for c in self.comments.values()],
                "requests": dict(self.request_counts),
                "patches": list(self.patches),
            }
        return copy.deepcopy(state)

    def delete_lead(self, lead_id: int) -> bool:
        """Delete a lead as a person would in the dialer (``DELETE /_sandbox/leads/{id}``): its
        comments and tasks go with it and the project's ``contacts`` drop by one; campaign
        entries naming it stay. The API itself has no such call.

        Returns:
            ``False`` when there is no such lead.
        """
        with self.lock:
            lead = self.leads.pop(lead_id, None)
            if lead is None:
                return False
            self.lead_counts[lead["groupId"]][lead["statusId"]] -= 1
            for comment_id in self.lead_comments.pop(lead_id, {}):
                self.comments.pop(comment_id, None)
            for task_id in [t for t, task in self.tasks.items() if task["leadId"] == lead_id]:
                del self.tasks[task_id]
        return True

    def set_rules(self, rules: list[FaultRule]) -> None:
        """Replace the fault rules (an empty list clears them)."""
        with self.lock:
            self.rules = list(rules)
            self._release_locked()

    def rules_json(self) -> list[dict[str, Any]]:
        """The active rules with their ``matched``/``fired`` counters."""
        with self.lock:
            return [rule.to_json() for rule in self.rules]

    # ------------------------------------------------------------------ held requests

    def hold(self) -> None:
        """Wait, as a request a ``hold`` rule fired for, until :meth:`release` (or new rules, a
        reset, :meth:`close`); at most :data:`MAX_HOLD_S` seconds, so nothing hangs forever."""
        with self._holds:
            if self._closing:
                return
            generation = self._hold_generation
            self._holding += 1
            self._holds.notify_all()
            try:
                self._holds.wait_for(
                    lambda: self._hold_generation != generation or self._closing, MAX_HOLD_S
                )
            finally:
                self._holding -= 1
                self._holds.notify_all()

    def release(self) -> int:
        """Let every request held now go on.

        Returns:
            How many requests were held.
        """
        with self._holds:
            return self._release_locked()

    def _release_locked(self) -> int:
        held = self._holding
        self._hold_generation += 1
        self._holds.notify_all()
        return held

    def wait_held(self, count: int, timeout: float) -> int:
        """Wait until at least ``count`` requests are held, or ``timeout`` seconds passed.

        Returns:
            How many requests are held now (less than ``count`` after a timeout).
        """
        with self._holds:
            self._holds.wait_for(lambda: self._holding >= count or self._closing, timeout)
            return self._holding

    def close(self) -> None:
        """Release every held request and hold none from now on (the server is stopping)."""
        with self._holds:
            self._closing = True
            self._release_locked()

    # ------------------------------------------------------------------ request flow

    def match(self, method: str, subpath: str) -> Match:
        """Match ``METHOD /subpath`` (the path below ``/api``; one trailing ``/`` is ignored)."""
        if len(subpath) > 1 and subpath.endswith("/"):
            subpath = subpath[:-1]
        for template, pattern, methods in _ROUTES:
            found = pattern.fullmatch(subpath)
            if found:
                name = methods.get(method)
                handler: Handler | None = getattr(SandboxApp, name) if name else None
                return Match(f"{method} {template}", handler, found.groupdict(), tuple(methods))
        return Match(f"{method} (unknown route)", None, {}, ())

    def admit(self, key: str) -> FaultDecision:
        """Count one API request and decide its fault.

        Args:
            key: the :attr:`Match.key`.

        Returns:
            The fault decision (no rule: process normally).
        """
        with self.lock:
            self.request_counts[key] += 1
            if not self.rules:
                return FaultDecision()
            return decide(self.rules, key)

    def handle(self, match: Match, request: Request, key: str | None) -> Reply:
        """Check the key and run the endpoint.

        Args:
            match: from :meth:`match`.
            request: the request (``params`` is replaced by the match's).
            key: the ``Api-Key`` header, or ``None`` when missing.

        Returns:
            The reply: the endpoint's, or a 401/404/405/4xx error.
        """
        if key is None or not hmac.compare_digest(key.strip().encode("utf-8"), self._api_key):
            why = "missing" if key is None else "invalid"
            return error_reply(401, f"Unauthorized: {why} Api-Key header", request.path)
        if match.handler is None:
            if match.allowed:
                reply = error_reply(405, f"Method {request.method} not allowed here", request.path)
                reply.headers.append(("Allow", ", ".join(match.allowed)))
                return reply
            return error_reply(404, f"No endpoint {request.method} {request.path}", request.path)
        request.params = match.params
        try:
            return match.handler(self, request)
        except ApiFailure as failure:
            reply = error_reply(failure.status, failure.message, request.path)
            reply.headers.extend(failure.headers)
            return reply

    # ------------------------------------------------------------------ request helpers

    @staticmethod
    def _json_body(request: Request, required: bool = True) -> Any:
        """Parse the JSON body (415 for a non-JSON content type, 400 for bad JSON)."""
        if not request.body.strip():
            if required:
                raise ApiFailure(400, "Request body is required (a JSON object)")
            return None
        ctype = (request.content_type or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiFailure(
                415, f"Content-Type {request.content_type!r} not supported: use application/json"
            )

        def no_constants(name: str) -> Any:
            raise ValueError(f"{name} is not valid JSON")

        try:
            return json.loads(request.body.decode("utf-8"), parse_constant=no_constants)
        except UnicodeDecodeError:
            raise ApiFailure(400, "Invalid JSON: the body is not UTF-8") from None
        except json.JSONDecodeError as exc:
            raise ApiFailure(
                400, f"Invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
        except ValueError as exc:
            raise ApiFailure(400, f"Invalid JSON: {exc}") from None

    @classmethod
    def _json_object(cls, request: Request) -> dict[str, Any]:
        body = cls._json_body(request)
        if not isinstance(body, dict):
            raise ApiFailure(400, f"Body must be a JSON object, not {type(body).__name__}")
        return body

    @staticmethod
    def _path_int(request: Request, name: str) -> int:
        raw = request.params[name]
        if not (raw.isascii() and raw.isdigit()) or not _is_int(int(raw)):
            raise ApiFailure(400, f"{name}: {raw!r} is not an integer")
        return int(raw)

    def _project(self, request: Request) -> dict[str, Any]:
        return self._stored(self.projects, request, "projectId", "Project")

    def _lead(self, request: Request) -> dict[str, Any]:
        return self._stored(self.leads, request, "leadId", "Lead")

    def _stored(
        self, table: dict[int, dict[str, Any]], request: Request, name: str, what: str
    ) -> dict[str, Any]:
        """The item of ``table`` whose id is the path parameter ``name``; 404 ``WHAT ID not
        found`` when there is none."""
        key = self._path_int(request, name)
        found = table.get(key)
        if found is None:
            raise ApiFailure(404, f"{what} {key} not found")
        return found

    @staticmethod
    def _query_one(request: Request, name: str) -> str | None:
        values = request.query.get(name)
        return values[-1] if values else None

    # ------------------------------------------------------------------ projects (#1-#3)

    def get_projects(self, request: Request) -> Reply:
        """#1 ``GET /projects`` → 200 ``[{id, name, contacts, numberOfNewContacts, schemaId,
        createDate, owner, assignedUsers}]``."""
        with self.lock:
            out = []
            for project in self.projects.values():
                counts = self.lead_counts[project["id"]]
                new = sum(
                    n
                    for status_id, n in counts.items()
                    if status_id is None or self.statuses[status_id]["name"].lower() == "new"
                )
                out.append(
                    {
                        "id": project["id"],
                        "name": project["name"],
                        "contacts": sum(counts.values()),
                        "numberOfNewContacts": new,
                        "schemaId": project["schemaId"],
                        "createDate": project["createDate"],
                        "owner": project["owner"],
                        "assignedUsers": list(project["assignedUsers"]),
                    }
                )
        return json_reply(200, out)

    def get_sources(self, request: Request) -> Reply:
        """#2 ``GET /projects/{projectId}/sources`` → 200 ``[{id, name, groupId, active}]``; 404."""
        with self.lock:
            project = self._project(request)
            out = [
                {"id": s["id"], "name": s["name"], "groupId": project["id"], "active": s["active"]}
                for s in project["sources"]
            ]
        return json_reply(200, out)

    def get_statuses(self, request: Request) -> Reply:
        """#3 ``GET /projects/{projectId}/statuses`` → 200 ``[{id, name, active, color:{red,
        green, blue}}]`` (a plain list); 404."""
        with self.lock:
            project = self._project(request)
            out = [
                {"id": s["id"], "name": s["name"], "active": s["active"], "color": dict(s["color"])}
                for s in project["statuses"]
            ]
        return json_reply(200, out)

    # ------------------------------------------------------------------ leads (#4, #5)

    def _check_phones(
        self, value: object, lead: dict[str, Any] | None, problems: list[str]
    ) -> None:
        own = {p["id"] for p in lead["phones"]} if lead else set()
        seen: set[int] = set()
        for at, phone in _list_of(value, "phones", "{number, label, active}", problems):
            _check_phone(at, phone, problems)
            _check_phone_ids(at, phone, lead, own, seen, problems)

    @staticmethod
    def _check_dynamic(value: object, problems: list[str]) -> None:
        if not isinstance(value, dict):
            problems.append("dynamicData: must be an object of string values")
            return
        for key, item in value.items():
            if not key.strip():
                problems.append("dynamicData: keys must be non-empty")
            if not isinstance(item, str):
                problems.append(f"dynamicData.{key}: must be a string, not {_json_type(item)}")

    def _check_lead_comments(
        self, value: object, lead: dict[str, Any] | None, problems: list[str]
    ) -> None:
        for at, comment in _list_of(value, "comments", "{authorId, dateTime, text}", problems):
            _check_lead_comment(at, comment, lead is not None, problems)
            if "id" in comment and lead is not None:
                cid = _int_or_digits(comment["id"])
                stored = self.comments.get(cid) if cid is not None else None
                if stored is None or stored["leadId"] != lead["id"]:
                    problems.append(f"{at}.id: {comment['id']!r} is not a comment of this lead")

    def _validate_lead(self, body: dict[str, Any], lead: dict[str, Any] | None) -> None:
        """Check a create (``lead`` None) or update body; raise 400/404 naming the field."""
        problems = _lead_key_problems(body, lead) + _lead_value_problems(body)
        if "phones" in body:
            self._check_phones(body["phones"], lead, problems)
        if "dynamicData" in body:
            self._check_dynamic(body["dynamicData"], problems)
        if "comments" in body:
            self._check_lead_comments(body["comments"], lead, problems)
        if problems:
            raise _bad_request(problems)
        self._check_lead_refs(body, lead)

    def _check_lead_refs(self, body: dict[str, Any], lead: dict[str, Any] | None) -> None:
        """The project (404 when unknown), and the status and source of that project (400)."""
        group = body["groupId"] if "groupId" in body else lead["groupId"]  # type: ignore[index]
        if group not in self.projects:
            raise ApiFailure(404, f"groupId: project {group} not found")
        problems: list[str] = []
        for key, table, kind in (
            ("statusId", self.statuses, "status"),
            ("sourceId", self.sources, "source"),
        ):
            value = body[key] if key in body else (lead or {}).get(key)
            if value is None or (key not in body and "groupId" not in body):
                continue
            if value not in table or table[value]["groupId"] != group:
                problems.append(f"{key}: {value} is not a {kind} of project {group}")
        if problems:
            raise _bad_request(problems)

    def _new_comment(self, lead_id: int, raw: dict[str, Any]) -> dict[str, Any]:
        comment = {
            "id": self._next_comment,
            "leadId": lead_id,
            "text": raw["text"],
            "authorId": raw.get("authorId", SANDBOX_USER_ID),
            "authorName": SANDBOX_USER_NAME,
            "dateTime": raw["dateTime"],
        }
        self._next_comment += 1
        self.comments[comment["id"]] = comment
        self.lead_comments.setdefault(lead_id, {})[comment["id"]] = comment
        return comment

    def _apply_phones(self, lead: dict[str, Any], phones: list[dict[str, Any]]) -> None:
        old = {p["id"]: p for p in lead["phones"]}
        new: list[dict[str, Any]] = []
        for raw in phones:
            if "id" in raw:
                phone = dict(old[raw["id"]])
            else:
                phone = {
                    "id": self._next_phone,
                    "leadId": lead["id"],
                    "label": None,
                    "active": True,
                }
                self._next_phone += 1
            phone["number"] = raw["number"]
            for key in ("label", "active"):
                if key in raw:
                    phone[key] = raw[key]
            new.append(phone)
        lead["phones"] = new

    def _render_lead(self, lead: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(lead)
        out["comments"] = [
            {k: c[k] for k in ("id", "authorId", "authorName", "dateTime", "text")}
            for c in self.lead_comments.get(lead["id"], {}).values()
        ]
        return out

    def create_lead(self, request: Request) -> Reply:
        """#4 ``POST /leads`` → 201 the stored lead (``id`` from 1001, ``createDate``,
        ``lastInteractionDate``, ``owner``, phones with ``id``/``leadId``, comments with ``id``);
        400 naming the field; 404 for an unknown ``groupId``."""
        body = self._json_object(request)
        with self.lock:
            self._validate_lead(body, None)
            now = _iso_ms(_now(), zulu=True)
            lead: dict[str, Any] = {
                "id": self._next_lead,
                "groupId": body["groupId"],
                "statusId": body.get("statusId"),
                "sourceId": body.get("sourceId"),
                "email": body["email"],
                "name": body["name"],
                "surname": body["surname"],
                "timezoneId": body["timezoneId"],
                "phones": [],
                "dynamicData": dict(body.get("dynamicData", {})),
                "createDate": now,
                "lastInteractionDate": now,
                "owner": SANDBOX_USER_ID,
            }
            self._next_lead += 1
            self._apply_phones(lead, body.get("phones", []))
            for raw in body.get("comments", []):
                self._new_comment(lead["id"], raw)
            self.leads[lead["id"]] = lead
            self.lead_counts[lead["groupId"]][lead["statusId"]] += 1
            return json_reply(201, self._render_lead(lead))

    def update_lead(self, request: Request) -> Reply:
        """#5 ``PATCH /leads/{leadId}`` → 200 the updated lead; only the given fields change.

        ``phones`` replaces the list (a phone with ``id`` keeps it); ``dynamicData`` is merged
        key by key; ``comments`` without ``id`` are added, with ``id`` edited. ``id`` (must match
        the path), ``createDate``, ``lastInteractionDate``, ``owner`` are accepted and ignored.
        400 naming the field; 404 for an unknown lead or ``groupId``.
        """
        body = self._json_object(request)
        with self.lock:
            lead = self._lead(request)
            self._validate_lead(body, lead)
            self.patches.append({"leadId": lead["id"], "body": copy.deepcopy(body)})
            old_key = (lead["groupId"], lead["statusId"])
            for key in _LEAD_SCALARS:
                if key in body:
                    lead[key] = body[key]
            if "phones" in body:
                self._apply_phones(lead, body["phones"])
            if "dynamicData" in body:
                lead["dynamicData"].update(body["dynamicData"])
            for raw in body.get("comments", []):
                if "id" in raw:
                    stored = self.comments[int(_int_or_digits(raw["id"]))]  # type: ignore[arg-type]
                    stored["text"] = raw["text"]
                    stored["dateTime"] = raw["dateTime"]
                    if "authorId" in raw:
                        stored["authorId"] = raw["authorId"]
                else:
                    self._new_comment(lead["id"], raw)
            self.lead_counts[old_key[0]][old_key[1]] -= 1
            self.lead_counts[lead["groupId"]][lead["statusId"]] += 1
            return json_reply(200, self._render_lead(lead))

    # ------------------------------------------------------------------ tasks (#6, #7)

    def _check_task(
        self, body: dict[str, Any], lead: dict[str, Any], task: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Validate a task body (``task`` given for PUT); return the normalized fields."""
        problems: list[str] = []
        known = _TASK_FIELDS + (_TASK_PUT_EXTRA if task is not None else ())
        for key in body:
            if key not in known:
                problems.append(_unknown_key(key, known))
        out: dict[str, Any] = {}
        kind = body.get("type")
        if kind is None:
            problems.append("type: required, CALLBACK or MEETING")
        elif kind not in _TASK_TYPES:
            problems.append(f"type: {kind!r} is not CALLBACK or MEETING")
        _check_task_times(body, kind, problems, out)
        _check_task_people(body, lead, problems, out)
        if task is not None:
            _check_task_put(body, lead, task, problems, out)
        if problems:
            raise _bad_request(problems)
        out["type"] = kind
        return out

    def create_task(self, request: Request) -> Reply:
        """#6 ``POST /leads/{leadId}/tasks`` → 201 the task: ``id`` (24 hex), ``leadName``,
        ``leadId``, ``companyId``, ``userId``, ``type``, ``createDate``, ``lastUpdateDate``,
        ``triggerTime``, ``deleted: false``, ``finishTime`` (MEETING), ``status: OPEN``,
        ``teamIds``, and ``phoneId``/``phoneNumber`` when a phone was given. 400; 404."""
        body = self._json_object(request)
        with self.lock:
            lead = self._lead(request)
            fields = self._check_task(body, lead, None)
            now = _iso_ms(_now(), zulu=False)
            task: dict[str, Any] = {
                "id": f"5bb473365d0de50001{self._next_task:06x}",
                "leadName": f"{lead['name']} {lead['surname']}",
                "leadId": lead["id"],
                "companyId": SANDBOX_COMPANY_ID,
                "userId": SANDBOX_USER_ID,
                "type": fields["type"],
                "createDate": now,
                "lastUpdateDate": now,
                "deleted": False,
                "status": "OPEN",
                "teamIds": [],
            }
            self._next_task += 1
            task.update(fields)
            self.tasks[task["id"]] = task
            return json_reply(201, dict(task))

    def update_task(self, request: Request) -> Reply:
        """#7 ``PUT /leads/{leadId}/tasks/{taskId}`` with the whole task → 200 the task
        (``lastUpdateDate`` renewed; read-only fields in the body are ignored). 400; 404."""
        body = self._json_object(request)
        with self.lock:
            lead = self._lead(request)
            task_id = request.params["taskId"]
            task = self.tasks.get(task_id)
            if task is None or task["leadId"] != lead["id"]:
                raise ApiFailure(404, f"Task {task_id} of lead {lead['id']} not found")
            fields = self._check_task(body, lead, task)
            for key in ("finishTime", "phoneId", "phoneNumber", "email"):
                task.pop(key, None)
            task.update(fields)
            task["lastUpdateDate"] = _iso_ms(_now(), zulu=False)
            return json_reply(200, dict(task))

    # ------------------------------------------------------------------ comments (#8-#11)

    @staticmethod
    def _check_comment(body: dict[str, Any], comment_id: int | None) -> None:
        problems: list[str] = []
        allowed = ("text", "authorId", "dateTime") + (("id", "authorName") if comment_id else ())
        for key in body:
            if key not in allowed:
                problems.append(_unknown_key(key, allowed))
        if "text" not in body:
            problems.append("text: required")
        elif not _nonempty_str(body["text"]):
            problems.append("text: must be a non-empty string")
        if "dateTime" not in body:
            problems.append("dateTime: required")
        elif parse_datetime(body["dateTime"]) is None:
            problems.append(f"dateTime: {body['dateTime']!r} is not a date-time")
        if "authorId" in body and not (
            _nonempty_str(body["authorId"]) or _is_int(body["authorId"])
        ):
            problems.append("authorId: must be a non-empty string")
        if comment_id is not None and "id" in body and _int_or_digits(body["id"]) != comment_id:
            problems.append(f"id: {body['id']!r} does not match the path ({comment_id})")
        if problems:
            raise _bad_request(problems)

    @staticmethod
    def _comment_json(comment: dict[str, Any]) -> dict[str, Any]:
        return {k: comment[k] for k in ("id", "text", "authorId", "dateTime")}

    def _comment(self, request: Request, lead: dict[str, Any]) -> dict[str, Any]:
        comment_id = self._path_int(request, "commentId")
        comment = self.comments.get(comment_id)
        if comment is None or comment["leadId"] != lead["id"]:
            raise ApiFailure(404, f"Comment {comment_id} of lead {lead['id']} not found")
        return comment

    def create_comment(self, request: Request) -> Reply:
        """#8 ``POST /leads/{leadId}/comments`` ``{text, authorId?, dateTime}`` → 200
        ``{id, text, authorId, dateTime}``. 400; 404."""
        body = self._json_object(request)
        with self.lock:
            lead = self._lead(request)
            self._check_comment(body, None)
            return json_reply(200, self._comment_json(self._new_comment(lead["id"], body)))

    def update_comment(self, request: Request) -> Reply:
        """#9 ``PUT /leads/{leadId}/comments/{commentId}`` ``{id?, text, authorId?, dateTime}``
        → 200 ``{id, text, authorId, dateTime}``. 400; 404."""
        body = self._json_object(request)
        with self.lock:
            lead = self._lead(request)
            comment = self._comment(request, lead)
            self._check_comment(body, comment["id"])
            comment["text"] = body["text"]
            comment["dateTime"] = body["dateTime"]
            if "authorId" in body:
                comment["authorId"] = body["authorId"]
            return json_reply(200, self._comment_json(comment))

    def list_comments(self, request: Request) -> Reply:
        """#10 ``GET /leads/{leadId}/comments?from=&to=`` → 200 ``[{id, text, authorId,
        dateTime}]``, those with ``from <= dateTime <= to`` (each bound optional). 400; 404."""
        bounds: dict[str, datetime] = {}
        for name in ("from", "to"):
            raw = self._query_one(request, name)
            if raw is None or raw == "":
                continue
            parsed = parse_datetime(raw) or parse_datetime(raw.replace(" ", "+"))
            if parsed is None:
                raise ApiFailure(400, f"{name}: {raw!r} is not a date-time")
            bounds[name] = parsed
        with self.lock:
            lead = self._lead(request)
            out = []
            for comment in self.lead_comments.get(lead["id"], {}).values():
                when = parse_datetime(comment["dateTime"])
                assert when is not None  # validated on the way in
                if "from" in bounds and when < bounds["from"]:
                    continue
                if "to" in bounds and when > bounds["to"]:
                    continue
                out.append(self._comment_json(comment))
        return json_reply(200, out)

    def delete_comment(self, request: Request) -> Reply:
        """#11 ``DELETE /leads/{leadId}/comments/{commentId}`` → 200 (empty body). 404."""
        with self.lock:
            lead = self._lead(request)
            comment = self._comment(request, lead)
            del self.comments[comment["id"]]
            del self.lead_comments[lead["id"]][comment["id"]]
        return Reply(200)

    # ------------------------------------------------------------------ campaigns (#12, #13)

    def _ids_param(self, request: Request, name: str) -> set[str] | None:
        values = request.query.get(name)
        if values is None:
            return None
        return {part.strip() for v in values for part in v.split(",") if part.strip()}

    def get_campaigns(self, request: Request) -> Reply:
        """#12 ``GET /campaigns?offset=&limit=&includeIds=&excludeIds=`` → 200 a page of
        campaigns (at most 50 whatever ``limit`` says; ``[]`` past the end). ``limit`` > 0
        (default 10), ``offset`` >= 0 (default 0), else 400. Id lists: repeated or comma-separated.
        """
        page: dict[str, int] = {}
        for name, default, low in (("offset", 0, 0), ("limit", 10, 1)):
            raw = self._query_one(request, name)
            if raw is None or raw == "":
                page[name] = default
                continue
            if not raw.strip().lstrip("-").isdigit():
                raise ApiFailure(400, f"{name}: {raw!r} is not an integer")
            page[name] = int(raw)
            if page[name] < low:
                word = "greater than 0" if low else ">= 0"
                raise ApiFailure(400, f"{name}: must be {word}, got {page[name]}")
        include = self._ids_param(request, "includeIds")
        exclude = self._ids_param(request, "excludeIds") or set()
        with self.lock:
            chosen = [
                c
                for c in self.campaigns
                if (include is None or c["id"] in include) and c["id"] not in exclude
            ]
            start = page["offset"]
            window = chosen[start : start + min(page["limit"], MAX_PAGE)]
            out = []
            for campaign in window:
                item = copy.deepcopy(campaign)
                item["totalEntries"] = campaign["totalEntries"] + len(self.entries[campaign["id"]])
                out.append(item)
        return json_reply(200, out)

    def generate_entries(self, request: Request) -> Reply:
        """#13 ``POST /campaigns/{campaignId}/entries/actions/generate`` ``{"leadIds": [int]}``
        → 201 (empty body): every id is appended to the campaign's entries (a repeat too).
        404 for an unknown campaign, or if ANY lead is unknown (then nothing is added); 400."""
        campaign_id = request.params["campaignId"]
        with self.lock:
            if campaign_id not in self.campaigns_by_id:
                raise ApiFailure(404, f"Campaign {campaign_id} not found")
        body = self._json_object(request)
        problems = [_unknown_key(k, ("leadIds",)) for k in body if k != "leadIds"]
        ids = body.get("leadIds")
        if ids is None:
            problems.append("leadIds: required, a list of lead ids")
        elif not isinstance(ids, list) or not ids:
            problems.append("leadIds: must be a non-empty list of integers")
        else:
            bad = [i for i, v in enumerate(ids) if not _is_int(v)]
            if bad:
                shown = ", ".join(f"leadIds[{i}]={ids[i]!r}" for i in bad[:5])
                problems.append(f"leadIds: not integers: {shown}")
        if problems:
            raise _bad_request(problems)
        assert isinstance(ids, list)
        with self.lock:
            missing = sorted({i for i in ids if i not in self.leads})
            if missing:
                raise ApiFailure(
                    404,
                    f"Leads not found: {', '.join(map(str, missing))}; no entries were added",
                )
            self.entries[campaign_id].extend(ids)
        return Reply(201)


def _json_type(value: object) -> str:
    """The JSON type name of a parsed value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
