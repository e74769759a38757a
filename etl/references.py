"""Names to ids: the mapping's project, status, source and campaign as the API lists them.

:func:`resolve_references` looks each name (or id) up with read-only GETs
(:class:`~etl.client.VoiptimeClient`'s ``list_*`` calls) and returns the
:class:`~etl.mapping.References` the payloads are built with; :func:`match_reference` is the
lookup of one name in one list (the listing commands use it too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from etl.client import VoiptimeClient
from etl.errors import ConfigErrorGroup, UnknownReferenceError
from etl.mapping import Mapping, References

__all__ = ["find_references", "match_reference", "offline_references", "resolve_references"]


def match_reference(items: list[dict[str, Any]], value: int | str, kind: str) -> dict[str, Any]:
    """Find a project, status, source or campaign by id or by name (case-insensitive, trimmed).

    Raises:
        UnknownReferenceError: none matches (exit 78); the message lists the known names.
    """
    wanted = str(value).strip().casefold()
    for item in items:
        if isinstance(value, int) and not isinstance(value, bool):
            if str(item.get("id")) == str(value):
                return item
        elif str(item.get("name", "")).strip().casefold() == wanted:
            return item
        elif str(item.get("id")).casefold() == wanted:  # a campaign id in capitals
            return item
    raise UnknownReferenceError(kind, value, [str(i.get("name")) for i in items])


def resolve_references(
    client: VoiptimeClient,
    mapping: Mapping,
    campaign: int | str | None,
    found: dict[str, dict[str, Any]] | None = None,
) -> References:
    """Resolve the mapping's project, status, source and campaign to ids with read-only GETs.

    Args:
        found: when given, filled with what the API listed for each kind (``project``,
            ``campaign``, ...), e.g. the project's ``contacts``.

    Raises:
        UnknownReferenceError: one name or id the API does not know (exit 78).
        ConfigErrorGroup: several of them, all listed (exit 78).
    """
    refs, problems = find_references(client, mapping, campaign, found)
    if refs is not None:
        return refs
    if len(problems) == 1:
        raise problems[0]
    raise ConfigErrorGroup(problems)


def find_references(
    client: VoiptimeClient,
    mapping: Mapping,
    campaign: int | str | None,
    found: dict[str, dict[str, Any]] | None = None,
) -> tuple[References | None, list[UnknownReferenceError]]:
    """:func:`resolve_references` without raising: ``(references or None, what is unknown)``."""
    problems: list[UnknownReferenceError] = []

    names: dict[str, str] = {}
    listed = found if found is not None else {}

    def find(items: Callable[[], list[dict[str, Any]]], value: int | str, kind: str) -> Any:
        try:
            found = match_reference(items(), value, kind)
        except UnknownReferenceError as exc:
            problems.append(exc)
            return None
        names[kind] = str(found.get("name", ""))
        listed[kind] = found
        return found["id"]

    project_id = find(client.list_projects, mapping.project, "project")
    status_id = source_id = campaign_id = None
    if project_id is not None and mapping.status is not None:
        status_id = find(lambda: client.list_statuses(project_id), mapping.status, "status")
    if project_id is not None and mapping.source is not None:
        source_id = find(lambda: client.list_sources(project_id), mapping.source, "source")
    if campaign is not None:
        campaign_id = find(client.list_campaigns, str(campaign), "campaign")
    choices: dict[str, tuple[tuple[int, str], ...]] = {}
    lists = {"status": client.list_statuses, "source": client.list_sources}
    for kind, _ in mapping.per_row() if project_id is not None else []:
        choices[kind] = tuple(
            (int(i["id"]), str(i.get("name", ""))) for i in lists[kind](project_id)
        )
    if problems:
        return None, problems
    return References(
        int(project_id),
        None if status_id is None else int(status_id),
        None if source_id is None else int(source_id),
        None if campaign_id is None else str(campaign_id),
        names.get("campaign"),
        choices,
    ), []


def offline_references(mapping: Mapping, campaign: int | str | None) -> References:
    """The references of a run without the API (``validate`` offline): the project when the
    mapping gives its id, the campaign as given; nothing else is known."""
    project = mapping.project if isinstance(mapping.project, int) else None
    return References(project, None, None, str(campaign) if campaign is not None else None)
