"""Start data of the sandbox: the built-in demo data and ``--data`` files.

A data file is JSON of this shape (every key not marked optional is required; unknown keys are
errors, so a typo is caught)::

    {
      "projects": [
        {
          "id": 1,                              # int, unique
          "name": "Demo",                       # non-empty string
          "statuses": [                         # optional, default []
            {"id": 11, "name": "New",           # id: int, unique over all projects
             "active": true,                    # optional, default true
             "color": {"red": 0, "green": 128, "blue": 255}}   # optional
          ],
          "sources": [                          # optional, default []
            {"id": 31, "name": "Web form", "active": true}     # id unique over all projects
          ],
          "owner": "...", "schemaId": 1,        # optional project fields of GET /projects
          "createDate": "2024-01-15T09:00:00.000Z", "assignedUsers": ["..."]
        }
      ],
      "campaigns": [                            # optional, default []
        {"id": "65a000005d0de50001000001",      # 24 hex digits, unique
         "name": "Spring outreach",             # non-empty string
         "dialer": "PREDICTIVE"}                # optional: any other field of GET /campaigns
      ]
    }

Whatever a campaign leaves out gets the demo default (``totalEntries`` is the number of entries
the campaign starts with; entries added through the API are counted on top).

The normalized form (what :func:`validate_data` and :func:`load_data` return, and what
:class:`etl.sandbox.SandboxServer` takes as ``data``) is the same shape with every optional key
filled in.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from etl.errors import ConfigError

__all__ = [
    "SANDBOX_COMPANY_ID",
    "SANDBOX_USER_ID",
    "SANDBOX_USER_NAME",
    "demo_data",
    "load_data",
    "validate_data",
]

#: The user the API key belongs to: owner of leads and projects, author of comments by default.
SANDBOX_USER_ID = "5b2773d179b7880001da0001"
SANDBOX_USER_NAME = "Sandbox User"
SANDBOX_COMPANY_ID = "5b2773d179b7880001dac0de"
_TEAM_ID = "5b2773d179b7880001da77d5"
_HEX24 = re.compile(r"[0-9a-fA-F]{24}")

_CAMPAIGN_THEMES = (
    "Winter renewals",
    "Webinar follow-up",
    "Trial conversion",
    "Lapsed customers",
    "Premium upsell",
    "Event invitations",
    "Survey callbacks",
    "Cold outreach",
    "Partner referrals",
    "Holiday promo",
    "Product launch",
    "Win-back",
    "Onboarding calls",
    "Payment reminders",
    "Loyalty program",
    "Inbound leads",
    "Demo requests",
    "Contract renewals",
    "Feedback calls",
    "Newsletter signups",
)
_DIALERS = ("PREDICTIVE", "PROGRESSIVE", "PREVIEW")
_CAMPAIGN_STATUSES = (
    {"color": "#4caf50", "name": "Active"},
    {"color": "#ff9800", "name": "Paused"},
    {"color": "#9e9e9e", "name": "Stopped"},
)

_PROJECT_KEYS = {
    "id",
    "name",
    "statuses",
    "sources",
    "owner",
    "schemaId",
    "createDate",
    "assignedUsers",
}
_STATUS_KEYS = {"id", "name", "active", "color"}
_SOURCE_KEYS = {"id", "name", "active"}
_CAMPAIGN_KEYS = {
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


def _campaign_id(index: int) -> str:
    """A deterministic, ObjectId-like 24-hex id for demo campaign ``index`` (0-based)."""
    return f"{0x65A00000 + index * 86400:08x}5d0de50001{index:06x}"


def _default_campaign(index: int, campaign_id: str, name: str) -> dict[str, Any]:
    """Every field of a GET /campaigns item, with plausible values."""
    return {
        "id": campaign_id,
        "name": name,
        "gatewayId": f"{0x65900000 + index % 3:08x}6a7b8c9d0e1f2a3b",
        "dialer": _DIALERS[index % len(_DIALERS)],
        "status": dict(_CAMPAIGN_STATUSES[0 if index % 5 else (index // 5) % 3]),
        "totalEntries": 0,
        "createdBy": SANDBOX_USER_ID,
        "teamsByPriority": [_TEAM_ID],
        "autoAnswerEnabled": index % 4 == 0,
        "autoAnswerTimeout": 0 if index % 4 else 2,
        "leadAnswerTimeout": 30,
        "redialingConfiguration": {
            "failedEntriesDialingPercentage": 20,
            "maxCallAttemptsPerPhone": 3,
            "redialingConfigurationId": f"{0x65800000 + index:08x}1f2e3d4c5b6a7988",
        },
        "maxPercentOfAbandonedCalls": 3,
    }


def demo_data() -> dict[str, Any]:
    """The demo data of docs/sandbox.md, "Start data" (a fresh copy each call).

    Returns:
        Normalized data: projects 1 ``Demo`` (statuses 11 ``New``, 12 ``Callback``; sources
        31 ``Web form``, 32 ``Referral``) and 2 ``Spring list`` (status 21 ``New``; source 41
        ``Fair``); 61 campaigns with deterministic 24-hex ids, the last named ``Spring outreach``.
    """
    raw: dict[str, Any] = {
        "projects": [
            {
                "id": 1,
                "name": "Demo",
                "statuses": [
                    {"id": 11, "name": "New", "color": {"red": 33, "green": 150, "blue": 243}},
                    {"id": 12, "name": "Callback", "color": {"red": 255, "green": 152, "blue": 0}},
                ],
                "sources": [{"id": 31, "name": "Web form"}, {"id": 32, "name": "Referral"}],
            },
            {
                "id": 2,
                "name": "Spring list",
                "statuses": [
                    {"id": 21, "name": "New", "color": {"red": 33, "green": 150, "blue": 243}}
                ],
                "sources": [{"id": 41, "name": "Fair"}],
            },
        ],
        "campaigns": [],
    }
    names = [f"{theme} Q{wave}" for wave in range(1, 4) for theme in _CAMPAIGN_THEMES] + [
        "Spring outreach"
    ]
    raw["campaigns"] = [{"id": _campaign_id(i), "name": n} for i, n in enumerate(names)]
    return validate_data(raw, "demo data")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def objects(
    items: list[Any], name: str, shape: str, problems: list[str]
) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """The JSON objects of ``items`` as ``(key path, index, object)``; each item that is not an
    object is named in ``problems`` (``NAME[i]: must be an object SHAPE``) and passed over."""
    for i, item in enumerate(items):
        at = f"{name}[{i}]"
        if isinstance(item, dict):
            yield at, i, item
        else:
            problems.append(f"{at}: must be an object{shape}")


def _check_keys(obj: dict[str, Any], allowed: set[str], where: str, problems: list[str]) -> None:
    for key in obj:
        if key not in allowed:
            problems.append(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _check_named(obj: object, where: str, problems: list[str]) -> bool:
    """Check ``obj`` is an object with an int ``id`` and a non-empty string ``name``."""
    if not isinstance(obj, dict):
        problems.append(f"{where}: must be an object")
        return False
    ok = True
    if not _is_int(obj.get("id")):
        problems.append(f"{where}.id: must be an integer")
        ok = False
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{where}.name: must be a non-empty string")
        ok = False
    return ok


def _check_color(color: object, where: str, problems: list[str]) -> None:
    if not isinstance(color, dict) or set(color) != {"red", "green", "blue"}:
        problems.append(f"{where}: must be an object with exactly red, green, blue")
        return
    for part, value in color.items():
        if not _is_int(value) or not 0 <= value <= 255:
            problems.append(f"{where}.{part}: must be an integer 0-255")


def _check_entry(
    obj: object, keys: set[str], at: str, seen: set[int], what: str, problems: list[str]
) -> bool:
    """Check an ``{id, name, ...}`` object whose id must be unique among ``seen`` (added to
    it); ``False`` when it is not such an object (nothing more can be checked)."""
    if not _check_named(obj, at, problems) or not isinstance(obj, dict):
        return False
    _check_keys(obj, keys, at, problems)
    if obj["id"] in seen:
        problems.append(f"{at}.id: duplicate {what} {obj['id']}")
    seen.add(obj["id"])
    return True


def _check_items(
    project: dict[str, Any], at: str, seen: dict[str, set[int]], problems: list[str]
) -> None:
    """A project's ``statuses`` and ``sources``, filling in ``active`` (and a status's
    ``color``); ids unique over all projects (``seen`` by kind)."""
    for kind, keys in (("statuses", _STATUS_KEYS), ("sources", _SOURCE_KEYS)):
        items = project.setdefault(kind, [])
        if not isinstance(items, list):
            problems.append(f"{at}.{kind}: must be a list")
            project[kind] = []
            continue
        for j, item in enumerate(items):
            item_at = f"{at}.{kind}[{j}]"
            if not _check_entry(item, keys, item_at, seen[kind], "id", problems):
                continue
            item.setdefault("active", True)
            if not isinstance(item["active"], bool):
                problems.append(f"{item_at}.active: must be true or false")
            if kind == "statuses":
                item.setdefault("color", {"red": 158, "green": 158, "blue": 158})
                _check_color(item["color"], f"{item_at}.color", problems)


def _check_projects(data: dict[str, Any], problems: list[str]) -> None:
    """``projects``: each filled in with its defaults (owner, schemaId, createDate, users)."""
    projects = data.get("projects")
    if not isinstance(projects, list):
        problems.append("projects: required, a list of projects")
        projects = []
    seen_projects: set[int] = set()
    seen_items: dict[str, set[int]] = {"statuses": set(), "sources": set()}
    for i, project in enumerate(projects):
        at = f"projects[{i}]"
        if not _check_entry(project, _PROJECT_KEYS, at, seen_projects, "project id", problems):
            continue
        project.setdefault("owner", SANDBOX_USER_ID)
        project.setdefault("schemaId", 100 + len(seen_projects))
        project.setdefault("createDate", "2024-01-15T09:00:00.000Z")
        project.setdefault("assignedUsers", [SANDBOX_USER_ID])
        if not isinstance(project["owner"], str):
            problems.append(f"{at}.owner: must be a string")
        if not _is_int(project["schemaId"]):
            problems.append(f"{at}.schemaId: must be an integer")
        if not isinstance(project["createDate"], str):
            problems.append(f"{at}.createDate: must be a string")
        users = project["assignedUsers"]
        if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
            problems.append(f"{at}.assignedUsers: must be a list of strings")
        _check_items(project, at, seen_items, problems)


def _check_campaigns(data: dict[str, Any], problems: list[str]) -> None:
    """``campaigns``: each completed from :func:`_default_campaign`."""
    campaigns = data.setdefault("campaigns", [])
    if not isinstance(campaigns, list):
        problems.append("campaigns: must be a list of campaigns")
        campaigns = data["campaigns"] = []
    seen_campaigns: set[str] = set()
    for at, i, campaign in objects(campaigns, "campaigns", "", problems):
        _check_keys(campaign, _CAMPAIGN_KEYS, at, problems)
        cid, name = campaign.get("id"), campaign.get("name")
        if not isinstance(cid, str) or not _HEX24.fullmatch(cid):
            problems.append(f"{at}.id: must be a string of 24 hex digits")
        elif cid in seen_campaigns:
            problems.append(f"{at}.id: duplicate campaign id {cid!r}")
        else:
            seen_campaigns.add(cid)
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{at}.name: must be a non-empty string")
        full = _default_campaign(i, str(cid), str(name))
        full.update(campaign)
        campaigns[i] = full
        if not _is_int(full["totalEntries"]) or full["totalEntries"] < 0:
            problems.append(f"{at}.totalEntries: must be an integer >= 0")


def validate_data(raw: object, where: str = "data") -> dict[str, Any]:
    """Check start data and fill in every optional field.

    Args:
        raw: the parsed JSON (shape in the module docstring). Not modified.
        where: how to name the data in messages (a file path, or ``"data"``).

    Returns:
        A normalized deep copy.

    Raises:
        ConfigError: naming every problem found, each with its key path.
    """
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: sandbox data must be a JSON object with 'projects'")
    data = copy.deepcopy(raw)
    _check_keys(data, {"projects", "campaigns"}, "", problems)
    _check_projects(data, problems)
    _check_campaigns(data, problems)
    if problems:
        listing = "\n".join(f"  - {p.lstrip('.')}" for p in problems)
        n = len(problems)
        raise ConfigError(
            f"{where}: {n} problem{'s' if n != 1 else ''} in sandbox data:\n{listing}"
        )
    return data


def load_data(path: str | Path) -> dict[str, Any]:
    """Read a sandbox ``--data`` file (JSON; shape in the module docstring).

    Args:
        path: the file.

    Returns:
        The normalized data, ready for ``SandboxServer(data=...)``.

    Raises:
        ConfigError: the file cannot be read, is not JSON, or has the wrong shape (every problem
            listed with its key path).
    """
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{where}: sandbox data file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{where}: cannot read sandbox data file: {reason}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    return validate_data(raw, where)
