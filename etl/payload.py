"""API bodies of a validated lead: the ``POST /leads`` body, its tasks and its notes.

The stage after validation: a row of :func:`etl.validate.normalize_frame` (column → normalised
value, columns named by :mod:`etl.columns`) that passed every check becomes the bodies the
loader sends (docs/api.md, "The lead", "The task"). Nothing here normalises or checks a value;
everything was settled by validation.
"""

from __future__ import annotations

from collections.abc import Mapping as AbcMapping
from typing import TYPE_CHECKING, Any

from etl import columns as col

if TYPE_CHECKING:
    from etl.mapping import CommentSpec, Mapping, References

__all__ = ["lead_payload", "note_slots", "task_bodies"]


def lead_payload(
    row: AbcMapping[str, Any], mapping: Mapping, refs: References, when: str
) -> dict[str, Any]:
    """The ``POST /leads`` body of one normalised, valid row (docs/api.md, "The lead").

    Args:
        row: one row of :func:`etl.validate.normalize_frame` (column → value).
        mapping: the mapping.
        refs: resolved ids.
        when: the run's time as ``YYYY-MM-DDTHH:MM:SSZ``, the ``dateTime`` of comments whose
            mapping names no date column (the row's ``comment_time.<i>`` otherwise); sent as
            it is, never parsed again.

    Returns:
        ``groupId``, optional ``statusId``/``sourceId``, ``name``, ``surname``, ``email``,
        ``timezoneId``, and when they have values ``phones`` (``{number, label, active}``, each
        number once), ``dynamicData`` (str → str; a blank cell sends no key) and ``comments``.
    """
    payload: dict[str, Any] = {"groupId": refs.project_id}
    if refs.status_id is not None:
        payload["statusId"] = refs.status_id
    if refs.source_id is not None:
        payload["sourceId"] = refs.source_id
    for kind in ("status", "source"):
        value = row.get(kind)
        if isinstance(value, int) and not isinstance(value, bool):
            payload[f"{kind}Id"] = value  # a per-row column, resolved to an id
    for name in ("name", "surname", "email", "timezoneId"):
        payload[name] = row[name]
    phones = _phones(row, mapping)
    if phones:
        payload["phones"] = phones
    dynamic = _dynamic_data(row, mapping)
    if dynamic:
        payload["dynamicData"] = dynamic
    comments = [body for _, body, _ in _comments(row, mapping, when)]
    if comments:
        payload["comments"] = comments
    return payload


def _phones(row: AbcMapping[str, Any], mapping: Mapping) -> list[dict[str, Any]]:
    """``{number, label, active}`` of each number of the row, each once, in mapping order."""
    phones: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, spec in enumerate(mapping.phones):
        numbers = row.get(col.phone(i))
        if not isinstance(numbers, tuple):
            continue
        for number in numbers:
            if number not in seen:
                seen.add(number)
                phones.append({"number": number, "label": spec.label, "active": True})
    return phones


def _dynamic_data(row: AbcMapping[str, Any], mapping: Mapping) -> dict[str, str]:
    """The filled dynamicData fields, then the phones' extensions named by ``extension``."""
    dynamic = {}
    for name in mapping.dynamic:
        value = row.get(col.dynamic(name))
        if isinstance(value, str) and value:
            dynamic[name] = value
    for i, spec in enumerate(mapping.phones):
        extension = row.get(col.extension(i))
        if spec.extension and isinstance(extension, str) and extension:
            dynamic[spec.extension] = extension
    return dynamic


def _comments(
    row: AbcMapping[str, Any], mapping: Mapping, when: str
) -> list[tuple[int, dict[str, Any], bool]]:
    """``(comment index, body, time from a column)`` of each filled comment, in mapping order."""
    out = []
    for i, note in enumerate(mapping.comments):
        text = row.get(col.comment(i))
        if isinstance(text, str) and text:
            at = row.get(col.comment_time(i))
            fixed = isinstance(at, str)
            out.append((i, _comment_body(text, at if isinstance(at, str) else when, note), fixed))
    return out


def _comment_body(text: str, at: str, note: CommentSpec) -> dict[str, Any]:
    """One comment: ``text``, ``dateTime`` (``YYYY-MM-DDTHH:MM:SSZ``), ``authorId`` if mapped."""
    comment: dict[str, Any] = {"text": text, "dateTime": at}
    if note.author:
        comment["authorId"] = str(note.author)
    return comment


def task_bodies(
    row: AbcMapping[str, Any], mapping: Mapping, payload: AbcMapping[str, Any]
) -> tuple[tuple[str, dict[str, Any]], ...]:
    """The ``POST /leads/{leadId}/tasks`` bodies of one valid row (docs/api.md, "The task"),
    without ``phoneId`` (the loader adds the lead's first phone): ``(slot, body)`` for each
    mapped task whose cells are filled. ``row`` is :func:`etl.validate.normalize_frame`'s."""
    out = []
    for slot, spec in mapping.tasks():
        when = row.get(slot)
        trigger = getattr(when, "trigger", None)
        if trigger is None:
            continue
        body: dict[str, Any] = {
            "type": spec.type,
            "triggerTime": trigger,
            "email": payload["email"],
            "teamIds": list(spec.teams),
        }
        if getattr(when, "finish", None):
            body["finishTime"] = when.finish  # type: ignore[union-attr]
        if spec.user is not None:
            body["userId"] = spec.user
        out.append((slot, body))
    return tuple(out)


def note_slots(
    row: AbcMapping[str, Any], mapping: Mapping, payload: AbcMapping[str, Any]
) -> tuple[tuple[str, dict[str, Any], bool], ...]:
    """The notes of ``payload["comments"]`` with their slot (``note.<i>``, ``<i>`` the
    mapping's comment index) and whether their ``dateTime`` came from a column."""
    sent = iter(payload.get("comments", []))
    return tuple(
        (f"note.{i}", dict(next(sent)), fixed) for i, _, fixed in _comments(row, mapping, "")
    )
