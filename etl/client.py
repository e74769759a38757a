"""The Voiptime Cloud REST API: every endpoint of ``docs/api.md``, with safe retries.

One :class:`VoiptimeClient` is shared by the loader's worker threads; each thread gets its own
``requests.Session`` (house style 7). Every call carries the ``Api-Key`` header and an explicit
``(connect, read)`` timeout in seconds. :func:`classify` is the one place that sorts an answer or a
transport failure into the :mod:`etl.errors` tree:

===========================================  ==========================  =======================
what happened                                GET / PUT / PATCH / DELETE  POST
===========================================  ==========================  =======================
connect failure, connect timeout             retriable                   retriable (never sent)
429, 503 (``Retry-After`` honoured)          retriable                   retriable (not processed)
read timeout, dropped answer, 500/502/504    retriable                   **ambiguous**
401 / 403                                    AuthError                   AuthError
404                                          NotFoundError               NotFoundError
other 4xx                                    RequestRejectedError        RequestRejectedError
===========================================  ==========================  =======================

A POST that reached the server and whose answer was lost is never retried blindly: the API has no
idempotency key and no lead search, so sending it again could create a second lead. It raises
:class:`~etl.errors.AmbiguousApiError` for the caller to record.

Retries use tenacity, at most ``attempts`` tries within ``budget`` seconds. The wait before a
retry is the server's ``Retry-After`` (seconds or an HTTP date, RFC 9110 §10.2.3), exactly, when it
asks for a positive wait; a wait longer than the run may take (``RetryPolicy.max_retry_after``, or
what is left of ``budget``) is not shortened: the request is not sent again early, and
:class:`~etl.errors.RetryLaterError` stops the run at once, naming when to retry. Without a usable
``Retry-After`` (absent, unreadable, a date already past, ``0``) the wait is jittered exponential
backoff between ``RetryPolicy.min_wait`` and ``RetryPolicy.max_wait`` seconds. ``sleep`` and the
clock are injectable so tests wait zero seconds. The first attempt of a request is made before
tenacity is set up (most requests succeed at once), and a failure that may be retried is handed
to tenacity as its first attempt, so attempts, waits, the budget and the log lines are the same.

Per request the client does what ``Session.request`` would, minus the work that gives the same
answer every time: each thread's session prepares a request once per method and path (URL,
headers, hooks) and copies it with each body (:meth:`VoiptimeClient._prepared`).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import requests
import tenacity

from etl.config import RetryPolicy, Settings
from etl.errors import (
    AmbiguousApiError,
    ApiError,
    AuthError,
    ConfigError,
    NotFoundError,
    RateLimitedError,
    RequestRejectedError,
    RetriableApiError,
    RetryLaterError,
)

__all__ = [
    "RateLimiter",
    "VoiptimeClient",
    "classify",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

#: The sandbox and the real service serve at most this many campaigns per page.
CAMPAIGN_PAGE = 50
_IDEMPOTENT = frozenset({"GET", "PUT", "PATCH", "DELETE", "HEAD"})
#: Most prepared requests a thread keeps for reuse (one per method and path).
_PREPARED = 64


class RateLimiter:
    """A token bucket shared by every thread of a client: ``--rate-limit`` requests per second.

    The bucket holds at most ``burst`` tokens and gains ``per_second`` tokens a second; each
    request takes one. A thread that finds the bucket empty takes its token on credit and waits
    until the bucket has refilled to it, so waiting threads are served in the order they asked,
    each ``1 / per_second`` seconds after the one before. Over any span of ``T`` seconds at most
    ``burst + per_second * T`` requests start (``burst`` 1: evenly spaced, never two at once).

    Args:
        per_second: tokens a second; ``None`` or 0 means unlimited.
        burst: the bucket's size (>= 1).
        clock: monotonic seconds (``time.monotonic``); tests inject their own.
        sleep: waits that many seconds (``time.sleep``); tests inject one that returns at once.
    """

    def __init__(
        self,
        per_second: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        burst: int = 1,
    ) -> None:
        self.per_second = per_second or 0.0
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(self.burst)
        self._at = clock()

    def reserve(self) -> float:
        """Take a token; the seconds to wait before using it (0.0: at once)."""
        if self.per_second <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            refill = (now - self._at) * self.per_second
            self._tokens = min(float(self.burst), self._tokens + refill) - 1.0
            self._at = now
            return 0.0 if self._tokens >= 0 else -self._tokens / self.per_second

    def acquire(self, cancel: threading.Event | None = None) -> bool:
        """Block until the next request may start; ``False`` (at once) if ``cancel`` is set
        while waiting, the token then spent."""
        wait = self.reserve()
        if wait > 0:
            if cancel is not None and self._sleep is time.sleep:
                return not cancel.wait(wait)
            self._sleep(wait)  # an injected sleep (tests) is used as it is
        return cancel is None or not cancel.is_set()


class _OutOfBudget(tenacity.stop.stop_base):
    """Stop retrying once ``budget`` seconds have passed since ``started`` (``time.monotonic``)
    when an attempt ends: tenacity's ``stop_after_delay``, counted from a start given."""

    def __init__(self, budget: float, started: float) -> None:
        self.budget = budget
        self.started = started

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        ended = retry_state.outcome_timestamp or time.monotonic()
        return ended - self.started >= self.budget


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date (RFC 9110
    §10.2.3), counted from ``now`` (default: the current UTC time).

    Returns ``None`` when the header is absent or unreadable; never negative (a date already
    past is ``0.0``).
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


def _server_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if body.get(key):
                return str(body[key])[:300]
    return json.dumps(body)[:200]


def classify(
    method: str,
    path: str,
    response: requests.Response | None = None,
    exc: BaseException | None = None,
    now: dt.datetime | None = None,
) -> ApiError | None:
    """Sort an answer or a transport failure into the error tree; ``None`` for a success.

    Args:
        method: HTTP method.
        path: URL path below the API base (used in messages; never the key).
        response: the answer, when one arrived.
        exc: the ``requests`` exception, when none did.
        now: the current UTC time, for a ``Retry-After`` date (default: the clock).
    """
    safe = method.upper() in _IDEMPOTENT
    if response is None:
        return _no_answer(method, path, exc, safe)
    status = response.status_code
    if status < 400:
        return None
    detail = _server_message(response)
    if status in (429, 503):
        now = now or dt.datetime.now(dt.UTC)
        wait = parse_retry_after(response.headers.get("Retry-After"), now)
        if not wait:  # absent, unreadable, past or 0: no usable hint, back off as usual
            wait = None
        return RateLimitedError(
            method,
            path,
            "429 Too Many Requests" if status == 429 else "503 Service Unavailable",
            status_code=status,
            detail=detail,
            retry_after=wait,
            retry_at=None if wait is None else now + dt.timedelta(seconds=wait),
        )
    if status in (401, 403):
        return AuthError(
            method,
            path,
            f"{status} {'Unauthorized' if status == 401 else 'Forbidden'}: "
            "the API key was refused; "
            "check VOIPTIME_API_KEY or --api-key-file",
            status,
            detail,
        )
    if status == 404:
        return NotFoundError(
            method, path, f"404 Not Found: {detail or 'no such resource'}", 404, detail
        )
    if 400 <= status < 500:
        return RequestRejectedError(method, path, f"{status}: {detail}", status, detail)
    if safe:
        return RetriableApiError(method, path, f"{status} server error", status, detail)
    return AmbiguousApiError(
        method,
        path,
        f"{status} server error after the request was sent; outcome unknown",
        status,
        detail,
    )


def _no_answer(method: str, path: str, exc: BaseException | None, safe: bool) -> ApiError:
    """:func:`classify` of a request that got no answer: never sent (retriable), or sent and
    cut off (retriable when ``safe``, else ambiguous)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout) or _is_connect_failure(exc):
        return RetriableApiError(method, path, "cannot connect to the API; check --api-url")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        if safe:
            return RetriableApiError(method, path, "no answer within the read timeout")
        return AmbiguousApiError(
            method, path, "sent, but no answer within the read timeout; outcome unknown"
        )
    if safe:
        return RetriableApiError(method, path, f"connection lost ({type(exc).__name__})")
    return AmbiguousApiError(method, path, "sent, but the connection dropped before the answer")


def _is_connect_failure(exc: BaseException | None) -> bool:
    if not isinstance(exc, requests.exceptions.ConnectionError):
        return False
    # urllib3 wraps NewConnectionError (refused, DNS) in MaxRetryError: nothing was sent.
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        name = type(cause).__name__
        if name in ("NewConnectionError", "ConnectTimeoutError", "NameResolutionError"):
            return True
        reason = getattr(cause, "reason", None)
        if isinstance(reason, BaseException):
            cause = reason
            continue
        args = getattr(cause, "args", ())
        nested = next((a for a in args if isinstance(a, BaseException)), None)
        cause = nested or cause.__cause__ or cause.__context__
    return False


class VoiptimeClient:
    """A thread-safe client of the Voiptime Cloud REST API.

    Args:
        base_url: e.g. ``https://app.voiptimecloud.com/api`` (no trailing slash needed).
        api_key: sent as the ``Api-Key`` header; never logged or put in a message.
        timeout: ``(connect, read)`` seconds for every call.
        retry: the :class:`RetryPolicy`.
        rate_limit: requests per second over all threads (``None``: unlimited).
        session_factory: makes one ``requests.Session`` per thread.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        retry: RetryPolicy | None = None,
        rate_limit: float | None = None,
        session_factory: Callable[[], requests.Session] = requests.Session,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.limiter = RateLimiter(rate_limit)
        self._session_factory = session_factory
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self.request_count = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> VoiptimeClient:
        """A client for the run's settings (URL, key, timeouts, retry policy, rate limit).

        Raises:
            ConfigError: there is no API key.
        """
        if not settings.api_key:
            raise ConfigError("No API key: set VOIPTIME_API_KEY or pass --api-key-file.")
        return cls(
            settings.api_url,
            settings.api_key,
            timeout=(settings.connect_timeout, settings.read_timeout),
            retry=settings.retry,
            rate_limit=settings.rate_limit,
        )

    def __repr__(self) -> str:  # never show the key
        return f"VoiptimeClient({self.base_url!r})"

    # --- plumbing -------------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._session_factory()
            # What requests reads from the environment on every call (proxies for the API's
            # host, honouring NO_PROXY; REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE), read once here: every
            # call goes to that one host. About a fifth of the client's CPU per request otherwise.
            found = session.merge_environment_settings(self.base_url, {}, None, None, None)
            session.proxies.update(found["proxies"] or {})
            session.verify = found["verify"]
            session.trust_env = False
            session.headers.update(
                {
                    "Api-Key": self._api_key,
                    "content-type": "application/json",
                    "accept": "application/json",
                }
            )
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        """Close every thread's session."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def __enter__(self) -> VoiptimeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pace(self, cancel: threading.Event | None = None) -> bool:
        """Wait for this thread's turn under the rate limit before the caller records what it
        is about to send; the next request of this thread then starts without waiting again.
        ``False`` when ``cancel`` was set while waiting: nothing is sent then.

        The loader calls it before committing a ``sending`` row, so the row is committed just
        before its POST leaves, not a token's wait earlier.
        """
        if not self.limiter.acquire(cancel):
            return False
        self._local.paced = True
        return True

    def _send(
        self, method: str, path: str, body: Any = None, params: Any = None
    ) -> requests.Response:
        if getattr(self._local, "paced", False):
            self._local.paced = False  # this thread took the token already (pace)
        else:
            self.limiter.acquire()
        with self._lock:
            self.request_count += 1
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        log.debug("%s %s", method, path)
        session = self._session()
        try:
            if params is None and not session.cookies:
                response = session.send(
                    self._prepared(session, method, path, data),
                    timeout=self.timeout,
                    allow_redirects=True,
                    stream=False,
                    verify=session.verify,
                    cert=session.cert,
                    proxies=session.proxies,
                )
            else:
                response = session.request(
                    method, self.base_url + path, data=data, params=params, timeout=self.timeout
                )
        except requests.exceptions.RequestException as exc:
            error = classify(method, path, exc=exc)
            assert error is not None
            raise error from None
        if response.status_code < 400:
            return response
        error = classify(method, path, response=response, now=self.retry.now())
        assert error is not None
        raise error

    def _prepared(
        self, session: requests.Session, method: str, path: str, data: bytes | None
    ) -> requests.PreparedRequest:
        """The request ``Session.request`` would send: this thread's session prepares one per
        method and path once (URL, its headers, hooks), and each call copies it with its body.
        The same request is sent as the session's own ``request`` sends (``send`` with the
        settings ``request`` would merge: redirects followed, the session's proxies, CA bundle
        and certificate); it skips preparing the URL and merging the settings every time,
        about a third of the client's CPU per request. At most :data:`_PREPARED` are kept."""
        kept: dict[tuple[str, str], requests.PreparedRequest] = self._local.__dict__.setdefault(
            "prepared", {}
        )
        template = kept.get((method, path))
        if template is None:
            if len(kept) >= _PREPARED:
                kept.clear()
            template = session.prepare_request(requests.Request(method, self.base_url + path))
            kept[method, path] = template
        request = template.copy()
        if data is not None:
            request.body = data
            request.headers["Content-Length"] = str(len(data))
        return request

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """The server's ``Retry-After`` exactly (``request`` has checked it fits), else jittered
        exponential backoff in ``[min_wait, max_wait]`` seconds."""
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            return float(retry_after)
        backoff = tenacity.wait_random_exponential(
            multiplier=self.retry.min_wait, max=self.retry.max_wait, min=self.retry.min_wait
        )
        return float(backoff(state))

    def _fits(self, exc: RateLimitedError, started: float) -> None:
        """Raise :class:`RetryLaterError` when the server asks for a longer wait than the run
        may take: the most a ``Retry-After`` is waited out, or what is left of the budget."""
        if not exc.retry_after:
            return
        left = self.retry.budget - (time.monotonic() - started)
        allowed = max(0.0, min(self.retry.max_retry_after, left))
        if exc.retry_after <= allowed:
            return
        when = exc.retry_at or self.retry.now() + dt.timedelta(seconds=exc.retry_after)
        at = when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        raise RetryLaterError(
            exc.method,
            exc.path,
            f"{exc.message.split(': ', 1)[1]}: the API asks to wait {exc.retry_after:g} s "
            f"(Retry-After), until {at}, longer than this run may wait ({allowed:.0f} s; "
            "VOIPTIME_RETRY_MAX_WAIT, VOIPTIME_RETRY_BUDGET); nothing was sent again early. "
            f"Rerun after {at}",
            exc.status_code,
            exc.detail,
            retry_after=exc.retry_after,
            retry_at=when,
        ) from None

    def request(self, method: str, path: str, body: Any = None, params: Any = None) -> Any:
        """Send one request, retrying what is safe, and return the decoded JSON answer.

        Returns:
            The decoded JSON body, or ``None`` for an empty body.

        Raises:
            RetriableApiError: still failing after ``attempts`` tries or ``budget`` seconds.
            RetryLaterError: the server's ``Retry-After`` is longer than the run may wait.
            AmbiguousApiError: a POST was sent and its outcome is unknown.
            AuthError, NotFoundError, RequestRejectedError: as :func:`classify` sorts them.
        """
        started = time.monotonic()

        def attempt() -> requests.Response:
            try:
                return self._send(method, path, body, params)
            except RateLimitedError as exc:
                self._fits(exc, started)
                raise

        try:
            response = attempt()
        except RetriableApiError as exc:
            if isinstance(exc, RetryLaterError):
                raise
            first: list[RetriableApiError] = [exc]

            def again() -> requests.Response:  # the first attempt's outcome, then new ones
                if first:
                    raise first.pop()
                return attempt()

            response = self._retrying(started)(again)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            if method.upper() == "POST":
                raise AmbiguousApiError(
                    method, path, "answer is not JSON; outcome unknown"
                ) from None
            raise RetriableApiError(method, path, "answer is not JSON") from None

    def _retrying(self, started: float) -> tenacity.Retrying:
        """The retries of a request whose first attempt failed and may be retried: it is made
        outside tenacity (a request that succeeds at once pays nothing for the machinery, about a
        tenth of the client's CPU per request), and :meth:`request` replays its outcome as
        tenacity's first attempt, so attempts are counted, waited for and logged as if tenacity
        had made it. The budget runs from ``started`` (``time.monotonic``), the first attempt's
        start."""

        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(RetriableApiError)
            & tenacity.retry_if_not_exception_type(RetryLaterError),
            wait=self._wait,
            stop=tenacity.stop_after_attempt(self.retry.attempts)
            | _OutOfBudget(self.retry.budget, started),
            sleep=self.retry.sleep,
            reraise=True,
            before_sleep=self._log_retry,
        )

    @staticmethod
    def _log_retry(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s; retry %d in %.1f s", exc, state.attempt_number, wait)

    # --- endpoints (docs/api.md #1–#13) --------------------------------------------------------

    def list_projects(self) -> list[dict[str, Any]]:
        """#1 ``GET /projects``."""
        return list(self.request("GET", "/projects") or [])

    def list_sources(self, project_id: int) -> list[dict[str, Any]]:
        """#2 ``GET /projects/{projectId}/sources``."""
        return list(self.request("GET", f"/projects/{int(project_id)}/sources") or [])

    def list_statuses(self, project_id: int) -> list[dict[str, Any]]:
        """#3 ``GET /projects/{projectId}/statuses``; the reference's doubly nested list is
        flattened."""
        answer = self.request("GET", f"/projects/{int(project_id)}/statuses") or []
        if answer and isinstance(answer[0], list):
            return [item for inner in answer for item in inner]
        return list(answer)

    def create_lead(self, lead: dict[str, Any]) -> dict[str, Any]:
        """#4 ``POST /leads``; returns the created lead with its integer ``id``.

        Raises:
            AmbiguousApiError: sent, but no answer or an answer without an ``id``.
        """
        answer = self.request("POST", "/leads", lead)
        missing = AmbiguousApiError("POST", "/leads", "answer has no lead id; outcome unknown")
        if not isinstance(answer, dict):
            raise missing
        try:
            answer["id"] = int(answer["id"])
        except (KeyError, TypeError, ValueError):
            raise missing from None
        return answer

    def update_lead(self, lead_id: int, fields: dict[str, Any]) -> Any:
        """#5 ``PATCH /leads/{leadId}`` with only the fields to change."""
        return self.request("PATCH", f"/leads/{int(lead_id)}", fields)

    def create_task(self, lead_id: int, task: dict[str, Any]) -> dict[str, Any]:
        """#6 ``POST /leads/{leadId}/tasks``; returns the task with its string ``id``."""
        return self.request("POST", f"/leads/{int(lead_id)}/tasks", task)  # type: ignore[no-any-return]

    def update_task(self, lead_id: int, task_id: str, task: dict[str, Any]) -> dict[str, Any]:
        """#7 ``PUT /leads/{leadId}/tasks/{taskId}`` with the whole task."""
        return self.request("PUT", f"/leads/{int(lead_id)}/tasks/{task_id}", task)  # type: ignore[no-any-return]

    def add_comment(
        self, lead_id: int, text: str, author_id: str | int | None, when: dt.datetime | str
    ) -> Any:
        """#8 ``POST /leads/{leadId}/comments``; ``when`` as :func:`api_time` takes it."""
        body: dict[str, Any] = {"text": text, "dateTime": api_time(when)}
        if author_id:
            body["authorId"] = author_id
        return self.request("POST", f"/leads/{int(lead_id)}/comments", body)

    def update_comment(
        self,
        lead_id: int,
        comment_id: str,
        text: str,
        author_id: str | int | None,
        when: dt.datetime | str,
    ) -> Any:
        """#9 ``PUT /leads/{leadId}/comments/{commentId}``; ``when`` as :func:`api_time` takes
        it."""
        body: dict[str, Any] = {"id": comment_id, "text": text, "dateTime": api_time(when)}
        if author_id:
            body["authorId"] = author_id
        return self.request("PUT", f"/leads/{int(lead_id)}/comments/{comment_id}", body)

    def list_comments(
        self, lead_id: int, start: dt.datetime | str, end: dt.datetime | str
    ) -> list[dict[str, Any]]:
        """#10 ``GET /leads/{leadId}/comments?from=&to=`` (UTC date-times, as :func:`api_time`
        takes them)."""
        params = {"from": api_time(start), "to": api_time(end)}
        return list(self.request("GET", f"/leads/{int(lead_id)}/comments", params=params) or [])

    def delete_comment(self, lead_id: int, comment_id: str) -> Any:
        """#11 ``DELETE /leads/{leadId}/comments/{commentId}``."""
        return self.request("DELETE", f"/leads/{int(lead_id)}/comments/{comment_id}")

    def iter_campaigns(self, page_size: int = CAMPAIGN_PAGE) -> Iterator[dict[str, Any]]:
        """#12 ``GET /campaigns``, paging with ``offset``/``limit`` until an empty page.

        A page may hold fewer than ``limit`` campaigns (the service caps it), so a short page
        does not mean the end; only an empty one does.
        """
        offset = 0
        while True:
            page = self.request("GET", "/campaigns", params={"offset": offset, "limit": page_size})
            if not page:
                return
            yield from page
            offset += len(page)

    def list_campaigns(self) -> list[dict[str, Any]]:
        """Every campaign (see :meth:`iter_campaigns`)."""
        return list(self.iter_campaigns())

    def find_campaign(self, campaign_id: str) -> dict[str, Any] | None:
        """#12 ``GET /campaigns?includeIds={campaignId}``: the campaign as the API lists it now
        (e.g. its ``totalEntries``), or ``None`` when it is not listed (deleted, or never was).

        Raises:
            ApiError: the read failed (as :meth:`request`).
        """
        params = {"includeIds": campaign_id, "limit": CAMPAIGN_PAGE}
        found = self.request("GET", "/campaigns", params=params)
        return next((c for c in found or [] if c.get("id") == campaign_id), None)

    def campaign_exists(self, campaign_id: str) -> bool:
        """Whether the API still lists the campaign (one GET, see :meth:`find_campaign`).

        Raises:
            ApiError: the read failed, so it cannot be told.
        """
        return self.find_campaign(campaign_id) is not None

    def generate_entries(self, campaign_id: str, lead_ids: Iterable[int]) -> Any:
        """#13 ``POST /campaigns/{campaignId}/entries/actions/generate``: enrol leads.

        Raises:
            AmbiguousApiError: sent, outcome unknown (the leads may or may not be enrolled).
        """
        body = {"leadIds": [int(i) for i in lead_ids]}
        return self.request("POST", f"/campaigns/{campaign_id}/entries/actions/generate", body)


def format_time(when: dt.datetime) -> str:
    """A UTC date-time as the API wants it: ``YYYY-MM-DDTHH:MM:SSZ``."""
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def api_time(when: dt.datetime | str) -> str:
    """A date-time of a request: a ``datetime`` formatted by :func:`format_time`, or text that is
    already the API's ``YYYY-MM-DDTHH:MM:SSZ`` (a payload's ``dateTime``), sent as it is."""
    return when if isinstance(when, str) else format_time(when)
