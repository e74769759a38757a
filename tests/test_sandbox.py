"""The sandbox API (etl/sandbox), over real HTTP on loopback."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from etl.errors import ConfigError
from etl.sandbox import SandboxServer, load_data

KEY = {"Api-Key": "sandbox-key"}
HEX24 = re.compile(r"[0-9a-f]{24}")
LEAD_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
TASK_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}")


def lead_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "groupId": 1,
        "name": "Ada",
        "surname": "Lovelace",
        "email": "ada@example.com",
        "timezoneId": "Europe/London",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


@pytest.fixture
def api(sandbox: SandboxServer) -> Iterator[requests.Session]:
    """A keep-alive session sending the sandbox key."""
    with requests.Session() as session:
        session.headers.update(KEY)
        yield session


def state(sandbox: SandboxServer) -> dict[str, Any]:
    return requests.get(sandbox.base_url + "/_sandbox/state").json()


def set_faults(sandbox: SandboxServer, *rules: dict[str, Any]) -> requests.Response:
    return requests.post(sandbox.base_url + "/_sandbox/faults", json={"rules": list(rules)})


def create(api: requests.Session, sandbox: SandboxServer, **changes: Any) -> dict[str, Any]:
    resp = api.post(sandbox.url + "/leads", json=lead_body(**changes))
    assert resp.status_code == 201, resp.text
    return resp.json()


# --------------------------------------------------------------------------- server basics


def test_urls_and_context_manager() -> None:
    with SandboxServer() as server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.base_url)
        assert server.url == server.base_url + "/api"
        assert server.port > 0
        assert requests.get(server.url + "/projects", headers=KEY).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/projects", headers=KEY, timeout=2)


def test_stop_closes_open_keep_alive_connections(sandbox: SandboxServer) -> None:
    with requests.Session() as session:
        assert session.get(sandbox.url + "/projects", headers=KEY).status_code == 200
        sandbox.stop()
        with pytest.raises(requests.ConnectionError):
            session.get(sandbox.url + "/projects", headers=KEY, timeout=2)


def test_keep_alive_connections_do_not_wait_on_nagle(
    api: requests.Session, sandbox: SandboxServer
) -> None:
    # Nagle + delayed ACK would cost ~40 ms per answer (200 requests: 8 s). Checked on the
    # server's own sockets rather than with a clock, so a busy machine cannot fail it.
    for _ in range(3):
        assert api.get(sandbox.url + "/projects").status_code == 200
    connections = list(sandbox._httpd._connections)
    assert len(connections) == 1  # one keep-alive connection served all three
    assert connections[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_latency_ms_delays_every_api_answer() -> None:
    with SandboxServer(latency_ms=60) as server:
        began = time.perf_counter()
        assert requests.get(server.url + "/projects").status_code == 401
        assert time.perf_counter() - began >= 0.06
    # /_sandbox is never delayed: with ten minutes of latency it still answers at once
    with SandboxServer(latency_ms=600_000) as server:
        assert requests.get(server.base_url + "/_sandbox/state", timeout=60).status_code == 200


def test_concurrent_creates_get_distinct_sequential_ids(sandbox: SandboxServer) -> None:
    def worker(n: int) -> list[int]:
        with requests.Session() as session:
            session.headers.update(KEY)
            return [
                session.post(sandbox.url + "/leads", json=lead_body(email=f"{n}-{i}@x.org")).json()[
                    "id"
                ]
                for i in range(25)
            ]

    with ThreadPoolExecutor(4) as pool:
        ids = [i for chunk in pool.map(worker, range(4)) for i in chunk]
    assert sorted(ids) == list(range(1001, 1101))
    assert len(state(sandbox)["leads"]) == 100
    assert state(sandbox)["requests"] == {"POST /leads": 100}


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="latency_ms"):
        SandboxServer(latency_ms=-1)
    with pytest.raises(ValueError, match="api_key"):
        SandboxServer(api_key="")


# --------------------------------------------------------------------------- auth and routing


@pytest.mark.parametrize("headers", [{}, {"Api-Key": "wrong"}, {"api-key": ""}])
def test_auth_failure_is_401_json(sandbox: SandboxServer, headers: dict[str, str]) -> None:
    resp = requests.get(sandbox.url + "/projects", headers=headers)
    assert resp.status_code == 401
    assert resp.headers["Content-Type"] == "application/json"
    body = resp.json()
    assert body["status"] == 401
    assert body["error"] == "Unauthorized"
    assert "Api-Key" in body["message"]
    assert "wrong" not in resp.text


def test_custom_api_key_and_case_insensitive_header() -> None:
    with SandboxServer(api_key="s3cret") as server:
        assert requests.get(server.url + "/projects", headers=KEY).status_code == 401
        ok = requests.get(server.url + "/projects", headers={"api-key": "s3cret"})
        assert ok.status_code == 200


def test_unknown_route_404_and_wrong_method_405(api: requests.Session, sandbox: SandboxServer):
    resp = api.get(sandbox.url + "/nothing")
    assert resp.status_code == 404
    assert resp.json()["status"] == 404
    assert api.get(sandbox.base_url + "/projects").status_code == 404
    resp = api.delete(sandbox.url + "/leads")
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "POST"
    assert api.get(sandbox.base_url + "/_sandbox/nothing").status_code == 404


# --------------------------------------------------------------------------- projects


def test_projects(api: requests.Session, sandbox: SandboxServer) -> None:
    resp = api.get(sandbox.url + "/projects")
    assert resp.status_code == 200
    owner = "5b2773d179b7880001da0001"
    common = {"createDate": "2024-01-15T09:00:00.000Z", "owner": owner, "assignedUsers": [owner]}
    assert resp.json() == [
        {"id": 1, "name": "Demo", "contacts": 0, "numberOfNewContacts": 0, "schemaId": 101}
        | common,
        {"id": 2, "name": "Spring list", "contacts": 0, "numberOfNewContacts": 0, "schemaId": 102}
        | common,
    ]
    create(api, sandbox)
    create(api, sandbox, statusId=12)
    create(api, sandbox, statusId=11)
    demo = api.get(sandbox.url + "/projects").json()[0]
    assert (demo["contacts"], demo["numberOfNewContacts"]) == (3, 2)


def test_sources(api: requests.Session, sandbox: SandboxServer) -> None:
    assert api.get(sandbox.url + "/projects/1/sources").json() == [
        {"id": 31, "name": "Web form", "groupId": 1, "active": True},
        {"id": 32, "name": "Referral", "groupId": 1, "active": True},
    ]
    assert api.get(sandbox.url + "/projects/2/sources").json() == [
        {"id": 41, "name": "Fair", "groupId": 2, "active": True}
    ]
    missing = api.get(sandbox.url + "/projects/99/sources")
    assert missing.status_code == 404
    assert missing.json()["message"] == "Project 99 not found"
    assert api.get(sandbox.url + "/projects/abc/sources").status_code == 400


def test_statuses_is_a_plain_list(api: requests.Session, sandbox: SandboxServer) -> None:
    assert api.get(sandbox.url + "/projects/1/statuses").json() == [
        {"id": 11, "name": "New", "active": True, "color": {"red": 33, "green": 150, "blue": 243}},
        {
            "id": 12,
            "name": "Callback",
            "active": True,
            "color": {"red": 255, "green": 152, "blue": 0},
        },
    ]
    assert api.get(sandbox.url + "/projects/2/statuses").json() == [
        {"id": 21, "name": "New", "active": True, "color": {"red": 33, "green": 150, "blue": 243}}
    ]
    assert api.get(sandbox.url + "/projects/3/statuses").status_code == 404


# --------------------------------------------------------------------------- leads


def test_create_lead_answer(api: requests.Session, sandbox: SandboxServer) -> None:
    body = lead_body(
        statusId=11,
        sourceId=32,
        phones=[{"number": "+14155552671", "label": "mobile", "active": True}, {"number": "+1"}],
        dynamicData={"company": "Analytical Engines", "signup_date": "2024-03-01"},
        comments=[{"authorId": "abc", "dateTime": "2024-03-01T10:00:00Z", "text": "Met at fair"}],
    )
    resp = api.post(sandbox.url + "/leads", json=body)
    assert resp.status_code == 201
    lead = resp.json()
    assert LEAD_DATE.fullmatch(lead.pop("createDate"))
    assert LEAD_DATE.fullmatch(lead.pop("lastInteractionDate"))
    assert lead == {
        "id": 1001,
        "groupId": 1,
        "statusId": 11,
        "sourceId": 32,
        "email": "ada@example.com",
        "name": "Ada",
        "surname": "Lovelace",
        "timezoneId": "Europe/London",
        "phones": [
            {
                "id": 5001,
                "leadId": 1001,
                "number": "+14155552671",
                "label": "mobile",
                "active": True,
            },
            {"id": 5002, "leadId": 1001, "number": "+1", "label": None, "active": True},
        ],
        "dynamicData": {"company": "Analytical Engines", "signup_date": "2024-03-01"},
        "comments": [
            {
                "id": 9001,
                "authorId": "abc",
                "authorName": "Sandbox User",
                "dateTime": "2024-03-01T10:00:00Z",
                "text": "Met at fair",
            }
        ],
        "owner": "5b2773d179b7880001da0001",
    }
    assert create(api, sandbox)["id"] == 1002
    stored = state(sandbox)
    assert [lead["id"] for lead in stored["leads"]] == [1001, 1002]
    assert stored["leads"][0]["phones"][0]["number"] == "+14155552671"
    assert stored["comments"] == [
        {
            "id": 9001,
            "leadId": 1001,
            "text": "Met at fair",
            "authorId": "abc",
            "authorName": "Sandbox User",
            "dateTime": "2024-03-01T10:00:00Z",
        }
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ...}, "name: required"),
        ({"surname": ""}, "surname: must be a non-empty string"),
        ({"email": "   "}, "email: must be a non-empty string"),
        ({"name": 5}, "name: must be a non-empty string"),
        ({"groupId": "1"}, "groupId: must be an integer, not string"),
        ({"groupId": True}, "groupId: must be an integer, not boolean"),
        (
            {"timezoneId": "Mars/Olympus"},
            "timezoneId: 'Mars/Olympus' is not an IANA time zone name",
        ),
        ({"timezoneId": ""}, "timezoneId: '' is not an IANA time zone name"),
        ({"timezoneId": None}, "timezoneId: must be a string, not null"),
        ({"timezoneId": ..., "timezoneID": "UTC"}, "timezoneID: unknown field (did you mean"),
        ({"nickname": "x"}, "nickname: unknown field"),
        ({"id": 5}, "id: read-only"),
        ({"statusId": 21}, "statusId: 21 is not a status of project 1"),
        ({"statusId": "11"}, "statusId: must be an integer"),
        ({"sourceId": 41}, "sourceId: 41 is not a source of project 1"),
        ({"phones": {"number": "1"}}, "phones: must be a list"),
        ({"phones": [{"label": "x"}]}, "phones[0].number: required"),
        ({"phones": [{"number": 14155552671}]}, "phones[0].number: must be a non-empty string"),
        ({"phones": [{"number": "1", "active": "yes"}]}, "phones[0].active: must be true or false"),
        ({"phones": [{"number": "1", "label": 3}]}, "phones[0].label: must be a string"),
        ({"phones": [{"number": "1", "id": 5}]}, "phones[0].id: only when updating"),
        ({"phones": [{"number": "1", "type": "m"}]}, "phones[0].type: unknown field"),
        ({"dynamicData": {"age": 42}}, "dynamicData.age: must be a string, not number"),
        ({"dynamicData": ["a"]}, "dynamicData: must be an object"),
        ({"comments": [{"text": "x"}]}, "comments[0].dateTime: required"),
        ({"comments": [{"dateTime": "yesterday", "text": "x"}]}, "is not a date-time"),
        ({"comments": [{"dateTime": "2024-01-01T00:00:00Z"}]}, "comments[0].text: required"),
        ({"comments": [{"dateTime": "2024-01-01T00:00Z", "text": "x", "authorId": 7}]}, "authorId"),
    ],
)
def test_create_lead_validation(
    api: requests.Session, sandbox: SandboxServer, changes: dict[str, Any], message: str
) -> None:
    resp = api.post(sandbox.url + "/leads", json=lead_body(**changes))
    assert resp.status_code == 400
    body = resp.json()
    assert body["status"] == 400
    assert body["error"] == "Bad Request"
    assert message in body["message"]
    assert state(sandbox)["leads"] == []


def test_create_lead_reports_every_problem(api: requests.Session, sandbox: SandboxServer) -> None:
    resp = api.post(sandbox.url + "/leads", json={"groupId": "1", "name": "", "email": "e"})
    assert resp.json()["message"] == (
        "surname: required; timezoneId: required; groupId: must be an integer, not string; "
        "name: must be a non-empty string"
    )


def test_create_lead_unknown_project_404(api: requests.Session, sandbox: SandboxServer) -> None:
    resp = api.post(sandbox.url + "/leads", json=lead_body(groupId=7))
    assert resp.status_code == 404
    assert resp.json()["message"] == "groupId: project 7 not found"


@pytest.mark.parametrize(
    ("data", "content_type", "status", "message"),
    [
        (b'{"groupId": 1,}', "application/json", 400, "Invalid JSON"),
        (b"[1, 2]", "application/json", 400, "Body must be a JSON object, not list"),
        (b"", "application/json", 400, "Request body is required"),
        (b'{"groupId": NaN}', "application/json", 400, "Invalid JSON"),
        (b"\xff\xfe", "application/json", 400, "not UTF-8"),
        (b'{"groupId": 1}', "text/plain", 415, "use application/json"),
    ],
)
def test_create_lead_bad_bodies(
    api: requests.Session,
    sandbox: SandboxServer,
    data: bytes,
    content_type: str,
    status: int,
    message: str,
) -> None:
    resp = api.post(sandbox.url + "/leads", data=data, headers={"Content-Type": content_type})
    assert resp.status_code == status
    assert message in resp.json()["message"]


def test_patch_lead(api: requests.Session, sandbox: SandboxServer) -> None:
    lead = create(
        api,
        sandbox,
        phones=[{"number": "+111", "label": "a"}, {"number": "+222"}],
        dynamicData={"a": "1", "b": "2"},
        statusId=11,
    )
    resp = api.patch(
        sandbox.url + "/leads/1001",
        json={
            "id": 1001,
            "surname": "Byron",
            "statusId": 12,
            "phones": [{"id": 5002, "number": "+333", "active": False}, {"number": "+444"}],
            "dynamicData": {"b": "3"},
            "comments": [{"dateTime": "2024-01-01T00:00:00Z", "text": "later"}],
            "createDate": "ignored",
        },
    )
    assert resp.status_code == 200
    after = resp.json()
    assert after["surname"] == "Byron"
    assert after["statusId"] == 12
    assert (after["name"], after["email"], after["sourceId"]) == ("Ada", "ada@example.com", None)
    assert after["createDate"] == lead["createDate"]
    assert after["phones"] == [
        {"id": 5002, "leadId": 1001, "number": "+333", "label": None, "active": False},
        {"id": 5003, "leadId": 1001, "number": "+444", "label": None, "active": True},
    ]
    assert after["dynamicData"] == {"a": "1", "b": "3"}
    assert [c["text"] for c in after["comments"]] == ["later"]
    assert state(sandbox)["leads"] == [after]
    assert api.patch(sandbox.url + "/leads/1001", json={}).json() == after
    patches = state(sandbox)["patches"]
    assert [p["leadId"] for p in patches] == [1001, 1001]
    assert patches[0]["body"]["surname"] == "Byron" and patches[1]["body"] == {}


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/leads/4242", {"name": "X"}, 404, "Lead 4242 not found"),
        ("/leads/abc", {"name": "X"}, 400, "leadId: 'abc' is not an integer"),
        ("/leads/1001", {"timezoneId": "Mars/Olympus"}, 400, "timezoneId: 'Mars/Olympus'"),
        ("/leads/1001", {"name": ""}, 400, "name: must be a non-empty string"),
        ("/leads/1001", {"id": 1002}, 400, "id: 1002 does not match the path (1001)"),
        ("/leads/1001", {"statusId": 21}, 400, "statusId: 21 is not a status of project 1"),
        ("/leads/1001", {"groupId": 2}, 400, "sourceId: 31 is not a source of project 2"),
        ("/leads/1001", {"groupId": 9}, 404, "groupId: project 9 not found"),
        ("/leads/1001", {"phones": [{"id": 1, "number": "1"}]}, 400, "1 is not a phone of lead"),
        ("/leads/1001", {"webToLead": False}, 400, "webToLead: unknown field"),
    ],
)
def test_patch_lead_errors(
    api: requests.Session,
    sandbox: SandboxServer,
    path: str,
    body: dict[str, Any],
    status: int,
    message: str,
) -> None:
    before = create(api, sandbox, sourceId=31)
    resp = api.patch(sandbox.url + path, json=body)
    assert resp.status_code == status
    assert message in resp.json()["message"]
    assert state(sandbox)["leads"] == [before]


def test_patch_lead_moves_project(api: requests.Session, sandbox: SandboxServer) -> None:
    create(api, sandbox, statusId=11)
    resp = api.patch(sandbox.url + "/leads/1001", json={"groupId": 2, "statusId": 21})
    assert resp.status_code == 200
    counts = {p["id"]: p["contacts"] for p in api.get(sandbox.url + "/projects").json()}
    assert counts == {1: 0, 2: 1}


# --------------------------------------------------------------------------- tasks


def test_tasks(api: requests.Session, sandbox: SandboxServer) -> None:
    create(api, sandbox, phones=[{"number": "+13024552004"}])
    resp = api.post(
        sandbox.url + "/leads/1001/tasks",
        json={
            "phoneId": 5001,
            "email": "agent@example.com",
            "userId": "u1",
            "triggerTime": "2019-01-17T11:00:02Z",
            "type": "CALLBACK",
            "teamIds": ["5b2773d179b7880001da77d5"],
        },
    )
    assert resp.status_code == 201
    task = resp.json()
    assert TASK_DATE.fullmatch(task.pop("createDate"))
    assert TASK_DATE.fullmatch(task.pop("lastUpdateDate"))
    assert task == {
        "id": "5bb473365d0de50001000001",
        "leadName": "Ada Lovelace",
        "leadId": 1001,
        "phoneNumber": "+13024552004",
        "phoneId": 5001,
        "companyId": "5b2773d179b7880001dac0de",
        "userId": "u1",
        "email": "agent@example.com",
        "type": "CALLBACK",
        "triggerTime": "2019-01-17T11:00:02",
        "deleted": False,
        "status": "OPEN",
        "teamIds": ["5b2773d179b7880001da77d5"],
    }
    meeting = api.post(
        sandbox.url + "/leads/1001/tasks",
        json={
            "type": "MEETING",
            "triggerTime": "2018-10-06T07:39:02.000Z",
            "finishTime": "2018-10-06T09:39:02+02:00",
        },
    ).json()
    assert meeting["id"] == "5bb473365d0de50001000002"
    assert (meeting["triggerTime"], meeting["finishTime"]) == (
        "2018-10-06T07:39:02",
        "2018-10-06T07:39:02",
    )
    put = dict(meeting, status="DONE", triggerTime="2018-10-17T15:00:02", leadId="1001")
    put["finishTime"] = "2018-10-17T15:39:02"
    resp = api.put(sandbox.url + f"/leads/1001/tasks/{meeting['id']}", json=put)
    assert resp.status_code == 200
    updated = resp.json()
    assert (updated["status"], updated["triggerTime"]) == ("DONE", "2018-10-17T15:00:02")
    assert updated["finishTime"] == "2018-10-17T15:39:02"
    assert updated["createDate"] == meeting["createDate"]
    stored = state(sandbox)["tasks"]
    assert [t["id"] for t in stored] == ["5bb473365d0de50001000001", "5bb473365d0de50001000002"]
    assert stored[1] == updated


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"triggerTime": "2019-01-17T11:00:02Z"}, "type: required"),
        ({"type": "CALL", "triggerTime": "2019-01-17T11:00:02Z"}, "type: 'CALL' is not"),
        ({"type": "CALLBACK"}, "triggerTime: required"),
        ({"type": "CALLBACK", "triggerTime": "tomorrow"}, "triggerTime: 'tomorrow' is not"),
        ({"type": "MEETING", "triggerTime": "2019-01-17T11:00:02Z"}, "finishTime: required"),
        (
            {
                "type": "CALLBACK",
                "triggerTime": "2019-01-17T11:00:02Z",
                "finishTime": "2019-01-17T12:00Z",
            },
            "finishTime: only for a MEETING",
        ),
        ({"type": "CALLBACK", "triggerTime": "2019-01-17T11:00Z", "phoneId": 77}, "phoneId: 77"),
        ({"type": "CALLBACK", "triggerTime": "2019-01-17T11:00Z", "teamIds": "t"}, "teamIds"),
        ({"type": "CALLBACK", "triggerTime": "2019-01-17T11:00Z", "status": "OPEN"}, "status:"),
    ],
)
def test_task_validation(
    api: requests.Session, sandbox: SandboxServer, body: dict[str, Any], message: str
) -> None:
    create(api, sandbox)
    resp = api.post(sandbox.url + "/leads/1001/tasks", json=body)
    assert resp.status_code == 400
    assert message in resp.json()["message"]
    assert state(sandbox)["tasks"] == []


def test_task_not_found(api: requests.Session, sandbox: SandboxServer) -> None:
    task = {"type": "CALLBACK", "triggerTime": "2019-01-17T11:00:02Z"}
    assert api.post(sandbox.url + "/leads/1001/tasks", json=task).status_code == 404
    create(api, sandbox)
    resp = api.put(sandbox.url + "/leads/1001/tasks/5bb473365d0de50001000001", json=task)
    assert resp.status_code == 404
    assert "Task 5bb473365d0de50001000001 of lead 1001 not found" in resp.json()["message"]


# --------------------------------------------------------------------------- comments


def test_comments(api: requests.Session, sandbox: SandboxServer) -> None:
    create(api, sandbox)
    url = sandbox.url + "/leads/1001/comments"
    first = api.post(
        url, json={"text": "one", "authorId": "a1", "dateTime": "2018-10-06T08:39:02Z"}
    )
    assert first.status_code == 200
    assert first.json() == {
        "id": 9001,
        "text": "one",
        "authorId": "a1",
        "dateTime": "2018-10-06T08:39:02Z",
    }
    api.post(url, json={"text": "two", "dateTime": "2018-10-07T12:40:02.000Z"})
    api.post(url, json={"text": "three", "dateTime": "2018-10-08T00:00:00"})
    listed = api.get(url)
    assert [c["text"] for c in listed.json()] == ["one", "two", "three"]
    assert listed.json()[1]["authorId"] == "5b2773d179b7880001da0001"
    window = {"from": "2018-10-07T00:00:00Z", "to": "2018-10-07T23:59:59Z"}
    assert [c["id"] for c in api.get(url, params=window).json()] == [9002]
    assert [
        c["id"] for c in api.get(url + "/", params={"from": "2018-10-07T12:40:02Z"}).json()
    ] == [
        9002,
        9003,
    ]
    assert [c["id"] for c in api.get(url, params={"to": "2018-10-06T10:39:02+02:00"}).json()] == [
        9001
    ]
    assert api.get(url, params={"from": "last week"}).status_code == 400

    edit = {
        "id": "9001",
        "text": "one, edited",
        "authorId": "a2",
        "dateTime": "2018-10-06T10:39:02Z",
    }
    resp = api.put(url + "/9001", json=edit)
    assert resp.status_code == 200
    assert resp.json() == {
        "id": 9001,
        "text": "one, edited",
        "authorId": "a2",
        "dateTime": "2018-10-06T10:39:02Z",
    }
    assert api.put(url + "/9001", json=dict(edit, id=9002)).status_code == 400
    assert api.put(url + "/9001", json={"text": "no date"}).status_code == 400
    deleted = api.delete(url + "/9002")
    assert (deleted.status_code, deleted.content) == (200, b"")
    assert api.delete(url + "/9002").status_code == 404
    assert [c["id"] for c in state(sandbox)["comments"]] == [9001, 9003]
    lead = api.patch(sandbox.url + "/leads/1001", json={}).json()
    assert [c["text"] for c in lead["comments"]] == ["one, edited", "three"]


def test_comment_errors(api: requests.Session, sandbox: SandboxServer) -> None:
    url = sandbox.url + "/leads/1001/comments"
    body = {"text": "x", "dateTime": "2018-10-06T08:39:02Z"}
    assert api.post(url, json=body).status_code == 404
    assert api.get(url).status_code == 404
    create(api, sandbox)
    create(api, sandbox)
    api.post(sandbox.url + "/leads/1002/comments", json=body)
    assert api.put(url + "/9001", json=body).status_code == 404  # a comment of another lead
    assert api.delete(url + "/9001").status_code == 404
    resp = api.post(url, json={"text": "", "dateTime": "x", "author": "me"})
    assert resp.status_code == 400
    assert resp.json()["message"] == (
        "author: unknown field (did you mean 'authorId'?); text: must be a non-empty string; "
        "dateTime: 'x' is not a date-time"
    )


# --------------------------------------------------------------------------- campaigns


def test_campaign_paging(api: requests.Session, sandbox: SandboxServer) -> None:
    url = sandbox.url + "/campaigns"
    pages = [api.get(url, params={"offset": o, "limit": 100}).json() for o in (0, 50, 100)]
    assert [len(p) for p in pages] == [50, 11, 0]
    everything = pages[0] + pages[1]
    ids = [c["id"] for c in everything]
    assert len(set(ids)) == 61
    assert all(HEX24.fullmatch(i) for i in ids)
    assert everything[-1]["name"] == "Spring outreach"
    assert len({c["name"] for c in everything}) == 61
    assert [c["id"] for c in api.get(url, params={"offset": 5, "limit": 10}).json()] == ids[5:15]
    assert [c["id"] for c in api.get(url).json()] == ids[:10]
    assert len(api.get(url, params={"offset": 60, "limit": 50}).json()) == 1
    assert set(everything[0]) == {
        "id",
        "name",
        "gatewayId",
        "dialer",
        "status",
        "totalEntries",
        "createdBy",
        "teamsByPriority",
        "autoAnswerEnabled",
        "autoAnswerTimeout",
        "leadAnswerTimeout",
        "redialingConfiguration",
        "maxPercentOfAbandonedCalls",
    }
    assert set(everything[0]["status"]) == {"color", "name"}
    assert set(everything[0]["redialingConfiguration"]) == {
        "failedEntriesDialingPercentage",
        "maxCallAttemptsPerPhone",
        "redialingConfigurationId",
    }
    assert everything[0]["totalEntries"] == 0
    # the same ids on every start
    assert api.get(url, params={"offset": 60}).json()[0]["id"] == "65ef1a005d0de5000100003c"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": 0}, "limit: must be greater than 0, got 0"),
        ({"limit": -5}, "limit: must be greater than 0, got -5"),
        ({"limit": "ten"}, "limit: 'ten' is not an integer"),
        ({"offset": -1}, "offset: must be >= 0, got -1"),
    ],
)
def test_campaign_paging_errors(
    api: requests.Session, sandbox: SandboxServer, params: dict[str, Any], message: str
) -> None:
    resp = api.get(sandbox.url + "/campaigns", params=params)
    assert resp.status_code == 400
    assert resp.json()["message"] == message


def test_campaign_include_exclude(api: requests.Session, sandbox: SandboxServer) -> None:
    url = sandbox.url + "/campaigns"
    ids = [c["id"] for c in api.get(url, params={"limit": 50}).json()]
    picked = api.get(url, params={"includeIds": [ids[3], ids[1]]}).json()
    assert [c["id"] for c in picked] == [ids[1], ids[3]]
    picked = api.get(url, params={"includeIds": f"{ids[1]},{ids[3]},{ids[4]}"}).json()
    assert [c["id"] for c in picked] == [ids[1], ids[3], ids[4]]
    rest = api.get(url, params={"excludeIds": f"{ids[0]},{ids[2]}", "limit": 3}).json()
    assert [c["id"] for c in rest] == [ids[1], ids[3], ids[4]]


def test_generate_entries(api: requests.Session, sandbox: SandboxServer) -> None:
    spring = api.get(sandbox.url + "/campaigns", params={"offset": 60}).json()[0]
    url = sandbox.url + f"/campaigns/{spring['id']}/entries/actions/generate"
    create(api, sandbox)
    create(api, sandbox)
    resp = api.post(url, json={"leadIds": [1001, 1002]})
    assert resp.status_code == 201
    assert api.post(url, json={"leadIds": [1001]}).status_code == 201
    assert state(sandbox)["campaign_entries"] == {spring["id"]: [1001, 1002, 1001]}
    again = api.get(sandbox.url + "/campaigns", params={"offset": 60}).json()[0]
    assert again["totalEntries"] == 3


def test_generate_with_a_bad_id_adds_nothing(api: requests.Session, sandbox: SandboxServer):
    campaign = api.get(sandbox.url + "/campaigns", params={"limit": 1}).json()[0]
    url = sandbox.url + f"/campaigns/{campaign['id']}/entries/actions/generate"
    create(api, sandbox)
    resp = api.post(url, json={"leadIds": [1001, 4242, 1001, 77]})
    assert resp.status_code == 404
    assert resp.json()["message"] == "Leads not found: 77, 4242; no entries were added"
    assert state(sandbox)["campaign_entries"] == {}


@pytest.mark.parametrize(
    ("campaign", "body", "status", "message"),
    [
        ("65a000005d0de50001000000", {"leadIds": ["1001"]}, 400, "leadIds: not integers"),
        ("65a000005d0de50001000000", {"leadIds": [True]}, 400, "leadIds: not integers"),
        ("65a000005d0de50001000000", {"leadIds": []}, 400, "must be a non-empty list"),
        ("65a000005d0de50001000000", {"ids": [1001]}, 400, "ids: unknown field"),
        ("ffffffffffffffffffffffff", {"leadIds": [1001]}, 404, "Campaign ffffffffffffffffffffffff"),
    ],
)
def test_generate_errors(
    api: requests.Session,
    sandbox: SandboxServer,
    campaign: str,
    body: dict[str, Any],
    status: int,
    message: str,
) -> None:
    create(api, sandbox)
    resp = api.post(sandbox.url + f"/campaigns/{campaign}/entries/actions/generate", json=body)
    assert resp.status_code == status
    assert message in resp.json()["message"]
    assert state(sandbox)["campaign_entries"] == {}


# --------------------------------------------------------------------------- counting, reset


def test_request_counting(api: requests.Session, sandbox: SandboxServer) -> None:
    api.get(sandbox.url + "/projects")
    api.get(sandbox.url + "/projects/1/statuses")
    api.get(sandbox.url + "/projects/2/statuses")
    requests.get(sandbox.url + "/projects")  # 401: counted too
    create(api, sandbox)
    api.post(sandbox.url + "/leads", json={})  # 400
    api.patch(sandbox.url + "/leads/1001", json={"name": "B"})
    api.get(sandbox.url + "/leads/1001/comments")
    api.get(sandbox.url + "/campaigns")
    api.get(sandbox.url + "/nowhere")
    state(sandbox)  # never counted
    set_faults(sandbox, {"route": "GET /campaigns", "status": 503})
    api.get(sandbox.url + "/campaigns")  # faulted: counted
    assert state(sandbox)["requests"] == {
        "GET /projects": 2,
        "GET /projects/{projectId}/statuses": 2,
        "POST /leads": 2,
        "PATCH /leads/{leadId}": 1,
        "GET /leads/{leadId}/comments": 1,
        "GET /campaigns": 2,
        "GET (unknown route)": 1,
    }


def test_reset(api: requests.Session, sandbox: SandboxServer) -> None:
    create(api, sandbox)
    set_faults(sandbox, {"route": "*", "delay_ms": 1})
    assert requests.post(sandbox.base_url + "/_sandbox/reset").status_code == 200
    assert state(sandbox) == {
        "leads": [],
        "campaign_entries": {},
        "tasks": [],
        "comments": [],
        "requests": {},
        "patches": [],
    }
    assert requests.get(sandbox.base_url + "/_sandbox/faults").json() == {"rules": []}
    assert create(api, sandbox)["id"] == 1001


def test_delete_a_lead_as_a_person_would_in_the_dialer(
    api: requests.Session, sandbox: SandboxServer
) -> None:
    kept = create(api, sandbox)
    gone = create(api, sandbox, email="bob@example.com")
    api.post(
        sandbox.url + f"/leads/{gone['id']}/comments",
        json={"text": "x", "dateTime": "2026-12-01T10:00:00Z"},
    )
    resp = requests.delete(sandbox.base_url + f"/_sandbox/leads/{gone['id']}")
    assert (resp.status_code, resp.json()) == (200, {"deleted": gone["id"]})
    assert [p["contacts"] for p in api.get(sandbox.url + "/projects").json()] == [1, 0]
    assert api.patch(sandbox.url + f"/leads/{gone['id']}", json={"name": "B"}).status_code == 404
    listed = api.get(sandbox.url + f"/leads/{gone['id']}/comments")
    assert listed.status_code == 404
    st = state(sandbox)
    assert ([x["id"] for x in st["leads"]], st["comments"]) == ([kept["id"]], [])
    assert "DELETE (unknown route)" not in st["requests"]  # not an API call: never counted
    again = requests.delete(sandbox.base_url + f"/_sandbox/leads/{gone['id']}")
    assert (again.status_code, again.json()["message"]) == (404, f"Lead {gone['id']} not found")


# --------------------------------------------------------------------------- faults


def test_fault_status_with_retry_after_seconds(api: requests.Session, sandbox: SandboxServer):
    resp = set_faults(sandbox, {"route": "POST /leads", "status": 429, "retry_after": 7, "nth": 2})
    assert resp.status_code == 200
    assert resp.json() == {
        "rules": [
            {
                "route": "POST /leads",
                "nth": 2,
                "status": 429,
                "retry_after": 7,
                "matched": 0,
                "fired": 0,
            }
        ]
    }
    codes = []
    for _ in range(4):
        resp = api.post(sandbox.url + "/leads", json=lead_body())
        codes.append(resp.status_code)
        if resp.status_code == 429:
            assert resp.headers["Retry-After"] == "7"
            assert resp.json()["status"] == 429
            assert resp.json()["error"] == "Too Many Requests"
        else:
            assert "Retry-After" not in resp.headers
    assert codes == [201, 429, 201, 201]
    assert [lead["id"] for lead in state(sandbox)["leads"]] == [1001, 1002, 1003]
    rules = requests.get(sandbox.base_url + "/_sandbox/faults").json()["rules"]
    assert (rules[0]["matched"], rules[0]["fired"]) == (4, 1)


@pytest.mark.parametrize(
    ("retry_after", "header"),
    [
        (0, "0"),
        (2.5, "2.5"),
        (3.0, "3"),
        ("Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:00 GMT"),
    ],
)
def test_fault_retry_after_values(
    api: requests.Session, sandbox: SandboxServer, retry_after: Any, header: str
) -> None:
    set_faults(sandbox, {"route": "GET /projects", "status": 503, "retry_after": retry_after})
    resp = api.get(sandbox.url + "/projects")
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == header


def test_fault_custom_body(api: requests.Session, sandbox: SandboxServer) -> None:
    set_faults(
        sandbox,
        {"route": "GET /projects", "status": 502, "body": "<html>Bad gateway</html>", "nth": 1},
        {"route": "GET /projects", "status": 500, "body": {"oops": 1}, "nth": 2},
    )
    first = api.get(sandbox.url + "/projects")
    assert (first.status_code, first.text) == (502, "<html>Bad gateway</html>")
    assert first.headers["Content-Type"].startswith("text/plain")
    second = api.get(sandbox.url + "/projects")
    assert (second.status_code, second.json()) == (500, {"oops": 1})
    assert api.get(sandbox.url + "/projects").status_code == 200


def test_fault_every_and_times(api: requests.Session, sandbox: SandboxServer) -> None:
    set_faults(sandbox, {"route": "GET /projects", "status": 500, "every": 2, "times": 2})
    codes = [api.get(sandbox.url + "/projects").status_code for _ in range(7)]
    assert codes == [200, 500, 200, 500, 200, 200, 200]


def test_fault_no_trigger_means_every_request(api: requests.Session, sandbox: SandboxServer):
    set_faults(sandbox, {"route": "GET /campaigns", "status": 503, "times": 3})
    codes = [api.get(sandbox.url + "/campaigns").status_code for _ in range(4)]
    assert codes == [503, 503, 503, 200]
    assert api.get(sandbox.url + "/projects").status_code == 200  # another route: untouched


def test_fault_401_after_n(api: requests.Session, sandbox: SandboxServer) -> None:
    set_faults(sandbox, {"route": "*", "status": 401, "after": 5})
    codes = [api.get(sandbox.url + "/projects").status_code for _ in range(3)]
    codes += [api.post(sandbox.url + "/leads", json=lead_body()).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 201, 201, 401, 401]
    assert len(state(sandbox)["leads"]) == 2
    assert requests.get(sandbox.base_url + "/_sandbox/state").status_code == 200  # never faulted


def test_each_rule_counts_its_own_requests(api: requests.Session, sandbox: SandboxServer):
    set_faults(
        sandbox,
        {"route": "GET /projects", "status": 500, "nth": 2},
        {"route": "*", "status": 503, "nth": 3},
    )
    first = api.get(sandbox.url + "/campaigns").status_code  # * sees 1
    codes = [api.get(sandbox.url + "/projects").status_code for _ in range(3)]
    # /projects #1 (* 2): 200; /projects #2 (* 3): both fire, the first rule wins; #3: 200
    assert [first, *codes] == [200, 200, 500, 200]
    rules = requests.get(sandbox.base_url + "/_sandbox/faults").json()["rules"]
    assert [(r["matched"], r["fired"]) for r in rules] == [(3, 1), (4, 0)]


def test_fault_delay(api: requests.Session, sandbox: SandboxServer) -> None:
    set_faults(
        sandbox,
        {"route": "GET /projects", "delay_ms": 150, "nth": 1},
        {"route": "GET /projects", "status": 503, "nth": 1},
    )
    began = time.perf_counter()
    resp = api.get(sandbox.url + "/projects")
    assert time.perf_counter() - began >= 0.15
    assert resp.status_code == 503  # a delay rule lets later rules fire too
    assert api.get(sandbox.url + "/projects").status_code == 200
    rules = requests.get(sandbox.base_url + "/_sandbox/faults").json()["rules"]
    assert [(r["matched"], r["fired"]) for r in rules] == [(2, 1), (2, 1)]  # no second delay


def test_fault_delay_then_normal_processing(api: requests.Session, sandbox: SandboxServer):
    set_faults(sandbox, {"route": "POST /leads", "delay_ms": 100})
    began = time.perf_counter()
    assert api.post(sandbox.url + "/leads", json=lead_body()).status_code == 201
    assert time.perf_counter() - began >= 0.1


def test_fault_drop_before(api: requests.Session, sandbox: SandboxServer) -> None:
    set_faults(sandbox, {"route": "POST /leads", "drop": "before", "nth": 1})
    with pytest.raises(requests.ConnectionError):
        api.post(sandbox.url + "/leads", json=lead_body())
    assert state(sandbox)["leads"] == []
    assert api.post(sandbox.url + "/leads", json=lead_body()).json()["id"] == 1001


def test_fault_drop_after_stores_the_lead(api: requests.Session, sandbox: SandboxServer):
    set_faults(sandbox, {"route": "POST /leads", "drop": "after", "nth": 1})
    with pytest.raises(requests.ConnectionError):
        api.post(sandbox.url + "/leads", json=lead_body(email="lost@example.com"))
    stored = state(sandbox)["leads"]
    assert [(lead["id"], lead["email"]) for lead in stored] == [(1001, "lost@example.com")]
    assert api.post(sandbox.url + "/leads", json=lead_body()).json()["id"] == 1002


def test_fault_drop_after_on_generate(api: requests.Session, sandbox: SandboxServer) -> None:
    create(api, sandbox)
    campaign = api.get(sandbox.url + "/campaigns", params={"limit": 1}).json()[0]["id"]
    route = "POST /campaigns/{campaignId}/entries/actions/generate"
    set_faults(sandbox, {"route": route, "drop": "after"})
    with pytest.raises(requests.ConnectionError):
        api.post(
            sandbox.url + f"/campaigns/{campaign}/entries/actions/generate",
            json={"leadIds": [1001]},
        )
    assert state(sandbox)["campaign_entries"] == {campaign: [1001]}


def test_faults_delete_clears(api: requests.Session, sandbox: SandboxServer) -> None:
    set_faults(sandbox, {"route": "*", "status": 500})
    assert api.get(sandbox.url + "/projects").status_code == 500
    resp = requests.delete(sandbox.base_url + "/_sandbox/faults")
    assert resp.json() == {"rules": []}
    assert api.get(sandbox.url + "/projects").status_code == 200


def held_post(sandbox: SandboxServer, email: str) -> tuple[threading.Thread, list[int]]:
    """Start ``POST /leads`` in a thread; its status code lands in the list when answered,
    ``-1`` when the connection ended without an answer (a stopped server may close it before
    or after it writes the answer: either is right, and neither may raise in the thread)."""
    answers: list[int] = []

    def send() -> None:
        with requests.Session() as session:
            session.headers.update(KEY)
            try:
                answer = session.post(
                    sandbox.url + "/leads", json=lead_body(email=email), timeout=60
                )
            except requests.ConnectionError:
                answers.append(-1)
            else:
                answers.append(answer.status_code)

    thread = threading.Thread(target=send)
    thread.start()
    return thread, answers


def held(sandbox: SandboxServer, at_least: int, timeout: float = 30) -> Any:
    params = {"at_least": at_least, "timeout": timeout}
    return requests.get(sandbox.base_url + "/_sandbox/held", params=params, timeout=60).json()


def test_fault_hold_waits_for_release_then_processes(
    api: requests.Session, sandbox: SandboxServer
) -> None:
    set_faults(
        sandbox,
        {"route": "POST /leads", "hold": True, "nth": 1},
        {"route": "POST /leads", "status": 503, "nth": 1},
    )
    assert held(sandbox, 1, timeout=0) == {"held": 0}  # nothing held yet: answered at once
    thread, answers = held_post(sandbox, "held@example.com")
    assert held(sandbox, 1) == {"held": 1}
    assert state(sandbox)["leads"] == [] and answers == []  # held before processing
    assert requests.post(sandbox.base_url + "/_sandbox/release").json() == {"released": 1}
    thread.join(60)
    assert answers == [503]  # a hold, like a delay, lets later rules fire
    thread, answers = held_post(sandbox, "next@example.com")
    thread.join(60)
    assert answers == [201]  # nth: 1 held only the first
    assert requests.post(sandbox.base_url + "/_sandbox/release").json() == {"released": 0}
    rules = requests.get(sandbox.base_url + "/_sandbox/faults").json()["rules"]
    assert rules[0] == {"route": "POST /leads", "nth": 1, "hold": True, "matched": 2, "fired": 1}


@pytest.mark.parametrize("how", ["new rules", "delete", "reset", "stop"])
def test_fault_hold_ends_with_the_rules(sandbox: SandboxServer, how: str) -> None:
    set_faults(sandbox, {"route": "POST /leads", "hold": True})
    threads = [held_post(sandbox, f"h{i}@example.com") for i in range(2)]
    assert held(sandbox, 2) == {"held": 2}
    if how == "new rules":
        set_faults(sandbox)
    elif how == "delete":
        requests.delete(sandbox.base_url + "/_sandbox/faults")
    elif how == "reset":
        requests.post(sandbox.base_url + "/_sandbox/reset")
    else:
        sandbox.stop()
    for thread, _ in threads:
        thread.join(60)
        assert not thread.is_alive()
    got = sorted(a for _, answers in threads for a in answers)
    if how == "stop":
        assert len(got) == 2 and set(got) <= {-1, 201}  # answered or cut off, never left hanging
    else:
        assert got == [201, 201]
        assert held(sandbox, 1, timeout=0) == {"held": 0}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("at_least=x", "at_least: must be a number 0-10000, got 'x'"),
        ("at_least=-1", "at_least: must be a number 0-10000, got '-1'"),
        ("timeout=601", "timeout: must be a number 0-600, got '601'"),
    ],
)
def test_held_bad_query(sandbox: SandboxServer, query: str, message: str) -> None:
    answer = requests.get(sandbox.base_url + "/_sandbox/held?" + query)
    assert answer.status_code == 400 and answer.json()["message"] == message
    assert requests.get(sandbox.base_url + "/_sandbox/release").status_code == 405


def test_faults_post_replaces(api: requests.Session, sandbox: SandboxServer) -> None:
    set_faults(sandbox, {"route": "*", "status": 500})
    set_faults(sandbox, {"route": "GET /campaigns", "status": 503})
    assert api.get(sandbox.url + "/projects").status_code == 200


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], 'body must be {"rules": [...]}'),
        ({"rules": {}}, "rules: must be a list"),
        ({"rules": [1]}, "rules[0]: must be an object"),
        ({"rules": [{"status": 500}]}, "rules[0].route: required"),
        ({"rules": [{"route": "GET /lead", "status": 500}]}, "rules[0].route: 'GET /lead' is not"),
        ({"rules": [{"route": "GET /leads", "status": 500}]}, "is not '*' nor one of"),
        ({"rules": [{"route": "*"}]}, "give exactly one action"),
        ({"rules": [{"route": "*", "status": 500, "drop": "after"}]}, "give exactly one action"),
        ({"rules": [{"route": "*", "status": 99}]}, "rules[0].status: must be an integer 200-599"),
        ({"rules": [{"route": "*", "status": "500"}]}, "rules[0].status: must be an integer"),
        ({"rules": [{"route": "*", "drop": "during"}]}, 'rules[0].drop: must be "before"'),
        ({"rules": [{"route": "*", "delay_ms": -1}]}, "rules[0].delay_ms: must be a number"),
        ({"rules": [{"route": "*", "hold": False}]}, "rules[0].hold: must be true"),
        ({"rules": [{"route": "*", "hold": True, "status": 500}]}, "give exactly one action"),
        ({"rules": [{"route": "*", "hold": True, "body": "x"}]}, "only allowed with status"),
        (
            {"rules": [{"route": "*", "status": 500, "nth": 0}]},
            "rules[0].nth: must be an integer >= 1",
        ),
        ({"rules": [{"route": "*", "status": 500, "every": 0}]}, "rules[0].every: must be"),
        ({"rules": [{"route": "*", "status": 500, "after": -1}]}, "rules[0].after: must be"),
        ({"rules": [{"route": "*", "status": 500, "nth": 1, "after": 1}]}, "at most one of"),
        ({"rules": [{"route": "*", "status": 500, "times": 0}]}, "rules[0].times: must be"),
        (
            {"rules": [{"route": "*", "status": 429, "retry_after": -1}]},
            "retry_after: must be >= 0",
        ),
        ({"rules": [{"route": "*", "status": 429, "retry_after": [1]}]}, "retry_after: must be a"),
        ({"rules": [{"route": "*", "status": 429, "retry_after": "a\nb"}]}, "on one line"),
        ({"rules": [{"route": "*", "delay_ms": 5, "retry_after": 1}]}, "only allowed with status"),
        ({"rules": [{"route": "*", "status": 500, "when": 1}]}, "unknown key 'when'"),
        ({"rules": [{"route": "*", "status": 200}, {"route": "*", "drop": 1}]}, "rules[1].drop"),
    ],
)
def test_malformed_fault_rules(
    sandbox: SandboxServer, payload: Any, message: str, api: requests.Session
) -> None:
    set_faults(sandbox, {"route": "*", "status": 500})
    resp = requests.post(sandbox.base_url + "/_sandbox/faults", json=payload)
    assert resp.status_code == 400
    assert message in resp.json()["message"]
    assert api.get(sandbox.url + "/projects").status_code == 500  # the old rules stay


def test_faults_bad_json(sandbox: SandboxServer) -> None:
    resp = requests.post(sandbox.base_url + "/_sandbox/faults", data=b"{rules")
    assert resp.status_code == 400
    assert "Invalid JSON" in resp.json()["message"]


# --------------------------------------------------------------------------- --data files


CUSTOM = {
    "projects": [
        {
            "id": 7,
            "name": "Custom",
            "statuses": [{"id": 70, "name": "Fresh", "active": False}],
            "sources": [{"id": 71, "name": "Import"}],
        }
    ],
    "campaigns": [{"id": "0123456789abcdef01234567", "name": "Only one", "dialer": "PREVIEW"}],
}


def test_data_file(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps(CUSTOM), encoding="utf-8")
    data = load_data(path)
    with SandboxServer(data=data) as server, requests.Session() as session:
        session.headers.update(KEY)
        projects = session.get(server.url + "/projects").json()
        assert [(p["id"], p["name"]) for p in projects] == [(7, "Custom")]
        assert session.get(server.url + "/projects/7/statuses").json() == [
            {
                "id": 70,
                "name": "Fresh",
                "active": False,
                "color": {"red": 158, "green": 158, "blue": 158},
            }
        ]
        campaigns = session.get(server.url + "/campaigns").json()
        assert [(c["id"], c["name"], c["dialer"]) for c in campaigns] == [
            ("0123456789abcdef01234567", "Only one", "PREVIEW")
        ]
        body = lead_body(groupId=7, statusId=70, sourceId=71)
        assert session.post(server.url + "/leads", json=body).status_code == 201
        assert session.post(server.url + "/leads", json=lead_body()).status_code == 404


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON (line 1, column 2"),
        ("[]", "must be a JSON object with 'projects'"),
        ("{}", "projects: required"),
        ('{"projects": [], "campaign": []}', "campaign: unknown key"),
        ('{"projects": [{"id": "1", "name": "x"}]}', "projects[0].id: must be an integer"),
        ('{"projects": [{"id": 1, "name": ""}]}', "projects[0].name: must be a non-empty string"),
        (
            '{"projects": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]}',
            "projects[1].id: duplicate project id 1",
        ),
        (
            json.dumps(
                {"projects": [{"id": 1, "name": "a", "statuses": [{"id": 5, "name": "s", "x": 1}]}]}
            ),
            "projects[0].statuses[0].x: unknown key",
        ),
        ('{"projects": [], "campaigns": [{"id": "xyz", "name": "c"}]}', "campaigns[0].id: must be"),
    ],
)
def test_bad_data_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_data(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_data_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sandbox data file not found"):
        load_data(tmp_path / "nope.json")


def test_bad_data_dict_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="projects: required"):
        SandboxServer(data={"campaigns": []})
