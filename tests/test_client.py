"""etl.client against the real sandbox: every endpoint, error sorting, retries, ambiguity."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from typing import Any

import pytest
import requests
from clitools import faults, release, state

from etl.client import RateLimiter, VoiptimeClient, api_time, classify, parse_retry_after
from etl.config import RetryPolicy
from etl.errors import (
    AmbiguousApiError,
    AuthError,
    NotFoundError,
    RateLimitedError,
    RequestRejectedError,
    RetriableApiError,
    RetryLaterError,
)

LEAD = {
    "groupId": 1,
    "name": "Ann",
    "surname": "Lee",
    "email": "ann@example.com",
    "timezoneId": "America/Chicago",
    "phones": [{"number": "+14155550101", "label": "mobile", "active": True}],
}


class Sleeps:
    """An injected sleep that records the waits and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make(
    sandbox: Any, sleeps: Sleeps | None = None, key: str = "sandbox-key", **kw: Any
) -> VoiptimeClient:
    retry = RetryPolicy(attempts=4, budget=60, min_wait=0.5, max_wait=8, sleep=sleeps or Sleeps())
    return VoiptimeClient(sandbox.url, key, retry=retry, timeout=(10, 30), **kw)


def test_read_only_endpoints(sandbox: Any) -> None:
    with make(sandbox) as client:
        projects = client.list_projects()
        assert [(p["id"], p["name"]) for p in projects] == [(1, "Demo"), (2, "Spring list")]
        assert [(s["id"], s["name"]) for s in client.list_statuses(1)] == [
            (11, "New"),
            (12, "Callback"),
        ]
        assert [(s["id"], s["name"]) for s in client.list_sources(1)] == [
            (31, "Web form"),
            (32, "Referral"),
        ]
        assert [(s["id"], s["name"]) for s in client.list_sources(2)] == [(41, "Fair")]
        campaigns = client.list_campaigns()
    assert len(campaigns) == 61
    assert campaigns[-1]["name"] == "Spring outreach"
    assert len({c["id"] for c in campaigns}) == 61
    # 50 + 11 + the empty page that ends the listing
    assert state(sandbox)["requests"]["GET /campaigns"] == 3


def test_find_campaign_reads_one_campaign_by_id(sandbox: Any) -> None:
    with make(sandbox) as client:
        spring = client.list_campaigns()[-1]
        found = client.find_campaign(spring["id"])
        exists = client.campaign_exists(spring["id"])
        gone = client.find_campaign("no-such-campaign")
        gone_exists = client.campaign_exists("no-such-campaign")
    assert (found, exists, gone, gone_exists) == (spring, True, None, False)
    assert found is not None and found["name"] == "Spring outreach"
    # 3 pages for the listing, then one GET each
    assert state(sandbox)["requests"]["GET /campaigns"] == 3 + 4


def test_writing_endpoints(sandbox: Any) -> None:
    when = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
    with make(sandbox) as client:
        lead = client.create_lead(LEAD)
        lead_id = lead["id"]
        assert isinstance(lead_id, int)
        client.update_lead(lead_id, {"surname": "Leigh"})
        task = client.create_task(
            lead_id,
            {
                "phoneId": lead["phones"][0]["id"],
                "email": "agent@example.com",
                "userId": "u1",
                "triggerTime": "2026-12-01T09:00:00Z",
                "type": "CALLBACK",
                "teamIds": [],
            },
        )
        assert task["status"] == "OPEN"
        client.update_task(
            lead_id,
            task["id"],
            {
                **{k: task[k] for k in ("phoneId", "email", "userId", "type")},
                "triggerTime": "2026-12-02T09:00:00Z",
                "teamIds": [],
            },
        )
        client.add_comment(lead_id, "first note", None, when)
        comments = client.list_comments(
            lead_id, when - dt.timedelta(hours=1), when + dt.timedelta(hours=1)
        )
        assert [c["text"] for c in comments] == ["first note"]
        client.update_comment(lead_id, comments[0]["id"], "edited", None, when)
        client.delete_comment(lead_id, comments[0]["id"])
        assert (
            client.list_comments(
                lead_id, when - dt.timedelta(hours=1), when + dt.timedelta(hours=1)
            )
            == []
        )
        campaign = client.list_campaigns()[-1]["id"]
        client.generate_entries(campaign, [lead_id])
    st = state(sandbox)
    assert [(x["id"], x["surname"]) for x in st["leads"]] == [(lead_id, "Leigh")]
    assert st["campaign_entries"][campaign] == [lead_id]
    assert st["tasks"][0]["triggerTime"].startswith("2026-12-02T09:00:00")


def test_429_retry_after_seconds_is_honoured(sandbox: Any) -> None:
    faults(sandbox, {"route": "POST /leads", "nth": 1, "status": 429, "retry_after": 7})
    sleeps = Sleeps()
    with make(sandbox, sleeps) as client:
        client.create_lead(LEAD)
    assert sleeps.waits == [7.0]
    st = state(sandbox)
    assert st["requests"]["POST /leads"] == 2 and len(st["leads"]) == 1


def test_503_retry_after_http_date_is_honoured(sandbox: Any) -> None:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    faults(
        sandbox,
        {
            "route": "GET /projects",
            "nth": 1,
            "status": 503,
            "retry_after": when.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        },
    )
    sleeps = Sleeps()
    with make(sandbox, sleeps) as client:
        assert len(client.list_projects()) == 2
    assert len(sleeps.waits) == 1 and 27 <= sleeps.waits[0] <= 30


def test_retry_after_longer_than_the_run_may_wait_stops_at_once(sandbox: Any) -> None:
    faults(sandbox, {"route": "POST /leads", "nth": 1, "status": 429, "retry_after": 86400})
    sleeps = Sleeps()
    now = dt.datetime(2026, 11, 30, 12, 0, 0, tzinfo=dt.UTC)
    retry = RetryPolicy(budget=600, max_retry_after=120, sleep=sleeps, now=lambda: now)
    with VoiptimeClient(sandbox.url, "sandbox-key", retry=retry) as client:
        with pytest.raises(RetryLaterError) as info:
            client.create_lead(LEAD)
    error = info.value
    assert (error.exit_code, error.retry_after, error.status_code) == (75, 86400.0, 429)
    assert error.retry_at == dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.UTC)
    assert str(error) == (
        "POST /leads: 429 Too Many Requests: the API asks to wait 86400 s (Retry-After), until "
        "2026-12-01T12:00:00Z, longer than this run may wait (120 s; VOIPTIME_RETRY_MAX_WAIT, "
        "VOIPTIME_RETRY_BUDGET); nothing was sent again early. Rerun after 2026-12-01T12:00:00Z"
    )
    assert sleeps.waits == []  # not the 120 s cap, then a send a day early
    assert state(sandbox)["requests"]["POST /leads"] == 1


def test_retry_after_beyond_what_is_left_of_the_budget_stops(sandbox: Any) -> None:
    faults(sandbox, {"route": "GET /projects", "nth": 1, "status": 503, "retry_after": 50})
    sleeps = Sleeps()
    retry = RetryPolicy(budget=40, max_retry_after=120, sleep=sleeps)
    with VoiptimeClient(sandbox.url, "sandbox-key", retry=retry) as client:
        with pytest.raises(RetryLaterError) as info:
            client.list_projects()
    assert (info.value.status_code, info.value.retry_after, sleeps.waits) == (503, 50.0, [])
    assert state(sandbox)["requests"]["GET /projects"] == 1


@pytest.mark.parametrize(
    "header", ["Wed, 21 Oct 2015 07:28:00 GMT", "soon", "0", "-5", "Mon, 99 Foo 2026"]
)
def test_retry_after_past_or_garbage_backs_off_with_the_minimum(sandbox: Any, header: str) -> None:
    faults(sandbox, {"route": "GET /projects", "status": 503, "retry_after": header, "times": 5})
    sleeps = Sleeps()
    retry = RetryPolicy(attempts=6, min_wait=0.5, max_wait=30, sleep=sleeps)
    with VoiptimeClient(sandbox.url, "sandbox-key", retry=retry) as client:
        assert len(client.list_projects()) == 2
    # five retries, none in less than the minimum: the first window is [0.5, 0.5], then it widens
    assert len(sleeps.waits) == 5 and sleeps.waits[0] == 0.5
    for n, wait in enumerate(sleeps.waits):
        assert 0.5 <= wait <= 0.5 * 2**n, sleeps.waits


def test_storm_of_503_exhausts_attempts_with_backoff(sandbox: Any) -> None:
    faults(sandbox, {"route": "POST /leads", "status": 503})
    sleeps = Sleeps()
    with make(sandbox, sleeps) as client, pytest.raises(RateLimitedError) as info:
        client.create_lead(LEAD)
    assert info.value.status_code == 503 and info.value.exit_code == 75
    assert len(sleeps.waits) == 3  # 4 attempts
    assert all(0 <= w <= 8 for w in sleeps.waits)
    assert state(sandbox)["leads"] == []


def test_dropped_answer_to_a_post_is_ambiguous_and_not_retried(sandbox: Any) -> None:
    faults(sandbox, {"route": "POST /leads", "nth": 1, "drop": "after"})
    sleeps = Sleeps()
    with make(sandbox, sleeps) as client, pytest.raises(AmbiguousApiError) as info:
        client.create_lead(LEAD)
    assert info.value.exit_code == 4
    st = state(sandbox)
    assert st["requests"]["POST /leads"] == 1 and len(st["leads"]) == 1
    assert sleeps.waits == []


def test_dropped_answer_to_a_get_is_retried(sandbox: Any) -> None:
    faults(sandbox, {"route": "GET /projects", "nth": 1, "drop": "before"})
    with make(sandbox) as client:
        assert len(client.list_projects()) == 2
    assert state(sandbox)["requests"]["GET /projects"] == 2


@pytest.mark.parametrize("status", [500, 502, 504])
def test_5xx_after_a_post_is_ambiguous(sandbox: Any, status: int) -> None:
    faults(sandbox, {"route": "POST /leads", "nth": 1, "status": status})
    with make(sandbox) as client, pytest.raises(AmbiguousApiError):
        client.create_lead(LEAD)
    assert state(sandbox)["requests"]["POST /leads"] == 1


def test_read_timeout_of_a_post_is_ambiguous(sandbox: Any) -> None:
    # held until released: the answer cannot beat the read timeout however busy the machine is
    faults(sandbox, {"route": "POST /leads", "nth": 1, "hold": True})
    retry = RetryPolicy(sleep=Sleeps())
    try:
        with VoiptimeClient(sandbox.url, "sandbox-key", retry=retry, timeout=(2, 0.3)) as client:
            with pytest.raises(AmbiguousApiError):
                client.create_lead(LEAD)
    finally:
        assert release(sandbox) == 1
    assert state(sandbox)["requests"]["POST /leads"] == 1  # not sent again


def test_a_2xx_without_an_id_is_ambiguous(sandbox: Any) -> None:
    faults(sandbox, {"route": "POST /leads", "nth": 1, "status": 201, "body": {"ok": True}})
    with make(sandbox) as client, pytest.raises(AmbiguousApiError, match="no lead id"):
        client.create_lead(LEAD)


def test_fatal_errors(sandbox: Any) -> None:
    with make(sandbox, key="wrong") as client, pytest.raises(AuthError) as auth:
        client.list_projects()
    assert auth.value.exit_code == 77 and auth.value.status_code == 401
    assert "wrong" not in str(auth.value)
    with make(sandbox) as client:
        with pytest.raises(NotFoundError) as missing:
            client.list_sources(99)
        assert missing.value.exit_code == 78
        with pytest.raises(RequestRejectedError) as bad:
            client.create_lead({**LEAD, "timezoneId": "Mars/Olympus"})
        assert bad.value.status_code == 400 and "timezoneId" in bad.value.detail
        with pytest.raises(NotFoundError):
            client.generate_entries("0" * 24, [1])
    assert state(sandbox)["requests"]["GET /projects/{projectId}/sources"] == 1  # no retry


def test_connect_failure_is_retriable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = Sleeps()
    client = VoiptimeClient(
        f"http://127.0.0.1:{port}/api", "k", retry=RetryPolicy(attempts=3, sleep=sleeps)
    )
    with client, pytest.raises(RetriableApiError, match="cannot connect"):
        client.create_lead(LEAD)  # even a POST: it never left
    assert len(sleeps.waits) == 2


def test_classify_table() -> None:
    def resp(code: int, headers: dict[str, str] | None = None) -> requests.Response:
        r = requests.Response()
        r.status_code = code
        r.headers.update(headers or {})
        r._content = b'{"message": "nope"}'
        return r

    assert classify("GET", "/x", resp(200)) is None
    assert type(classify("GET", "/x", resp(429, {"Retry-After": "3"}))) is RateLimitedError
    assert classify("GET", "/x", resp(429, {"Retry-After": "3"})).retry_after == 3.0  # type: ignore[union-attr]
    assert type(classify("POST", "/x", resp(503))) is RateLimitedError
    assert type(classify("GET", "/x", resp(500))) is RetriableApiError
    assert type(classify("POST", "/x", resp(500))) is AmbiguousApiError
    assert type(classify("PATCH", "/x", resp(502))) is RetriableApiError
    assert type(classify("GET", "/x", resp(403))) is AuthError
    assert type(classify("GET", "/x", resp(404))) is NotFoundError
    assert type(classify("POST", "/x", resp(422))) is RequestRejectedError
    assert classify("POST", "/x", resp(422)).detail == "nope"  # type: ignore[union-attr]
    read_timeout = requests.exceptions.ReadTimeout()
    assert type(classify("POST", "/x", exc=read_timeout)) is AmbiguousApiError
    assert type(classify("PUT", "/x", exc=read_timeout)) is RetriableApiError
    assert (
        type(classify("POST", "/x", exc=requests.exceptions.ConnectTimeout())) is RetriableApiError
    )


def test_parse_retry_after() -> None:
    now = dt.datetime(2026, 11, 30, 12, 0, 0, tzinfo=dt.UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Mon, 30 Nov 2026 12:00:45 GMT", now) == 45.0
    assert parse_retry_after("Mon, 30 Nov 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("-5", now) == 0.0


def test_rate_limiter_spaces_requests() -> None:
    clock = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(round(s, 6))

    limiter = RateLimiter(4, clock=lambda: clock[0], sleep=sleep)
    for _ in range(4):
        limiter.acquire()
    assert slept == [0.25, 0.5, 0.75]


def test_key_is_not_in_repr() -> None:
    client = VoiptimeClient("http://127.0.0.1:1/api", "s3cret-key-value")
    assert "s3cret" not in repr(client)


class FakeClock:
    """A clock that moves only when told; ``sleep`` records each wait and moves nothing."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_token_bucket_gives_a_burst_then_one_token_per_interval_and_refills_to_its_size() -> None:
    clock = FakeClock()
    bucket = RateLimiter(2, clock=clock, sleep=clock.sleep, burst=3)
    assert [bucket.reserve() for _ in range(5)] == [0.0, 0.0, 0.0, 0.5, 1.0]
    clock.now += 1.5  # the two on credit are paid, and one token more
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.5]
    clock.now += 60  # a long pause refills no more than the bucket holds
    assert [bucket.reserve() for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]


def test_token_bucket_is_shared_by_threads_each_turn_given_once() -> None:
    clock = FakeClock()
    bucket = RateLimiter(4, clock=clock, sleep=clock.sleep)
    lock = threading.Lock()
    waits: list[float] = []

    def worker() -> None:
        for _ in range(5):
            wait = bucket.reserve()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == [i * 0.25 for i in range(40)]


def test_a_cancelled_wait_for_a_token_returns_false_at_once() -> None:
    clock = FakeClock()
    bucket = RateLimiter(1 / 3600, clock=clock)  # waits on the event, not a sleep
    cancel = threading.Event()
    assert bucket.acquire(cancel) is True  # the bucket's one token
    cancel.set()
    assert bucket.acquire(cancel) is False  # would wait an hour: cancelled instead


def test_pace_takes_the_token_of_the_threads_next_request(sandbox: Any) -> None:
    clock = FakeClock()
    c = VoiptimeClient(sandbox.url, "sandbox-key", rate_limit=4)
    c.limiter = RateLimiter(4, clock=clock, sleep=clock.sleep)
    with c:
        assert c.pace() is True
        c.list_projects()  # its token was taken by pace: no second one
        c.list_projects()
    assert clock.slept == [0.25]


def test_a_payload_date_time_is_sent_as_written_and_a_datetime_formatted_once() -> None:
    assert api_time("2026-03-10T14:30:00Z") == "2026-03-10T14:30:00Z"
    paris = dt.timezone(dt.timedelta(hours=1))
    assert api_time(dt.datetime(2026, 3, 10, 15, 30, 5, 999, tzinfo=paris)) == (
        "2026-03-10T14:30:05Z"
    )


class Recording(requests.Session):
    """A real session that keeps what it prepares and sends."""

    def __init__(self) -> None:
        super().__init__()
        self.prepared = 0
        self.sent: list[requests.PreparedRequest] = []

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        self.prepared += 1
        return super().prepare_request(request)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent.append(request)
        return super().send(request, **kwargs)


def test_posts_reuse_one_prepared_request_and_send_what_session_request_sends(
    sandbox: Any,
) -> None:
    sessions: list[Recording] = []

    def factory() -> Recording:
        sessions.append(Recording())
        return sessions[-1]

    body = b'{"email": "bob@example.com", "groupId": 1, "name": "Bob", "phones": [], '
    body += b'"surname": "Lee", "timezoneId": "America/Chicago"}'
    with make(sandbox, session_factory=factory) as client:
        first = client.create_lead(LEAD)
        second = client.create_lead(json.loads(body))  # serialised as `body`
        assert second["id"] == first["id"] + 1 and second["email"] == "bob@example.com"
        # the reference: what Session.request prepares for the same call
        reference = requests.Session()
        reference.headers.update(sessions[0].headers)
        expected = reference.prepare_request(
            requests.Request("POST", sandbox.url + "/leads", data=body)
        )
    (session,) = sessions
    assert session.prepared == 1  # once for both POSTs
    one, two = session.sent
    assert (two.method, two.url, two.body) == ("POST", expected.url, body)
    assert dict(two.headers) == dict(expected.headers)
    assert one.body == (
        b'{"groupId": 1, "name": "Ann", "surname": "Lee", "email": "ann@example.com", '
        b'"timezoneId": "America/Chicago", "phones": [{"number": "+14155550101", "label": '
        b'"mobile", "active": true}]}'
    )
    assert one.headers["Content-Length"] == str(len(one.body))  # each copy has its own


def test_a_cookie_the_session_gets_is_sent_back(sandbox: Any) -> None:
    # a load balancer's cookie (say), set after the first POST: the next POST carries it
    sessions: list[Recording] = []

    def factory() -> Recording:
        sessions.append(Recording())
        return sessions[-1]

    with make(sandbox, session_factory=factory) as client:
        client.create_lead(LEAD)
        sessions[0].cookies.set("lb", "a1")
        client.create_lead({**LEAD, "email": "bob@example.com"})
    first, second = sessions[0].sent
    assert ("Cookie" in first.headers, second.headers["Cookie"]) == (False, "lb=a1")


def test_the_retry_budget_runs_from_the_first_attempt(sandbox: Any) -> None:
    # the first attempt is made outside tenacity; a budget already spent retries nothing
    faults(sandbox, {"route": "GET /projects", "status": 503})
    sleeps = Sleeps()
    retry = RetryPolicy(attempts=5, budget=0, sleep=sleeps)
    with VoiptimeClient(sandbox.url, "sandbox-key", retry=retry) as client:
        with pytest.raises(RateLimitedError):
            client.list_projects()
    assert (sleeps.waits, state(sandbox)["requests"]["GET /projects"]) == ([], 1)
