"""Fault injection rules of the sandbox (``POST /_sandbox/faults``).

A rule is a JSON object:

- ``route`` (required): ``"METHOD /template"`` naming one of the 13 endpoints, e.g.
  ``"POST /leads"``, ``"POST /campaigns/{campaignId}/entries/actions/generate"``, or ``"*"`` for
  every API request (unknown routes included).
- a trigger, at most one of: ``nth: N`` (only the N-th matching request, 1-based), ``every: N``
  (the N-th, 2N-th, ... matching request), ``after: N`` (every matching request after the first N);
  none means every matching request.
- ``times: K`` (optional): the rule fires at most K times.
- exactly one action:

  - ``status: CODE`` (200-599): answer CODE without processing the request; optional
    ``retry_after`` (a number of seconds, or a string such as an HTTP-date, sent verbatim as the
    ``Retry-After`` header) and optional ``body`` (a string is sent as ``text/plain``, any other
    JSON value as JSON; default ``{"status", "error", "message"}``);
  - ``delay_ms: N``: sleep N milliseconds, then go on (later rules may still fire);
  - ``hold: true``: wait until released (``POST /_sandbox/release``, new fault rules, a reset or
    the server stopping), then go on (later rules may still fire). Tests use it to hold a client
    in the middle of a request for as long as they need, with no race against a clock;
  - ``drop: "before"``: close the connection without answering and without processing;
  - ``drop: "after"``: process the request fully (a lead IS stored), then close the connection
    without answering.

Each rule counts its own matching requests (every API request whose route matches, whatever
happens to it). Rules are tried in order: a firing ``delay_ms`` or ``hold`` rule waits and the next
rules are still tried; the first firing ``status``/``drop`` rule decides the request and later
rules are not tried. A rule "fires" when its trigger matches and its ``times`` are not used up;
only firing uses a time. Example: ``{"route": "*", "status": 401, "after": 5}`` answers 401 to
every request after the fifth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ENDPOINTS", "FaultDecision", "FaultRule", "FaultRuleError", "decide", "parse_rules"]

#: The 13 endpoints as ``"METHOD /template"`` (the keys of the request counts, too).
ENDPOINTS: tuple[str, ...] = (
    "GET /projects",
    "GET /projects/{projectId}/sources",
    "GET /projects/{projectId}/statuses",
    "POST /leads",
    "PATCH /leads/{leadId}",
    "POST /leads/{leadId}/tasks",
    "PUT /leads/{leadId}/tasks/{taskId}",
    "POST /leads/{leadId}/comments",
    "PUT /leads/{leadId}/comments/{commentId}",
    "GET /leads/{leadId}/comments",
    "DELETE /leads/{leadId}/comments/{commentId}",
    "GET /campaigns",
    "POST /campaigns/{campaignId}/entries/actions/generate",
)

_RULE_KEYS = {
    "route",
    "nth",
    "every",
    "after",
    "times",
    "status",
    "retry_after",
    "body",
    "delay_ms",
    "hold",
    "drop",
}
_MAX_DELAY_MS = 600_000


class FaultRuleError(ValueError):
    """A fault rule is malformed; the message says which rule and why."""


@dataclass
class FaultRule:
    """One parsed rule (see the module docstring) with its counters.

    Attributes:
        route: ``"METHOD /template"`` or ``"*"``.
        nth, every, after: the trigger (at most one is set).
        times: most firings, or ``None`` for no limit.
        status, retry_after, body, delay_ms, hold, drop: the action (one of
            status/delay_ms/hold/drop).
        matched: matching requests seen so far.
        fired: times the rule fired so far.
    """

    route: str
    nth: int | None = None
    every: int | None = None
    after: int | None = None
    times: int | None = None
    status: int | None = None
    retry_after: int | float | str | None = None
    body: Any = None
    has_body: bool = False
    delay_ms: int | float | None = None
    hold: bool = False
    drop: str | None = None
    matched: int = 0
    fired: int = 0

    def matches(self, route_key: str) -> bool:
        """Whether a request of ``route_key`` (``"METHOD /template"``) is one of this rule's."""
        return self.route == "*" or self.route == route_key

    def count_and_check(self) -> bool:
        """Count one matching request; return whether the trigger fires for it (ignores times)."""
        self.matched += 1
        n = self.matched
        if self.nth is not None:
            return n == self.nth
        if self.every is not None:
            return n % self.every == 0
        if self.after is not None:
            return n > self.after
        return True

    def may_fire(self) -> bool:
        """Whether ``times`` leaves room for one more firing."""
        return self.times is None or self.fired < self.times

    def to_json(self) -> dict[str, Any]:
        """The rule as given (normalized), plus its ``matched`` and ``fired`` counters."""
        out: dict[str, Any] = {"route": self.route}
        for key in ("nth", "every", "after", "times", "status", "retry_after"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.has_body:
            out["body"] = self.body
        if self.delay_ms is not None:
            out["delay_ms"] = self.delay_ms
        if self.hold:
            out["hold"] = True
        if self.drop is not None:
            out["drop"] = self.drop
        out["matched"] = self.matched
        out["fired"] = self.fired
        return out


@dataclass
class FaultDecision:
    """What the faults decided for one request.

    Attributes:
        delay_s: seconds to sleep before going on (sum of firing delay rules).
        hold: a firing ``hold`` rule: wait until released before going on.
        rule: the firing status/drop rule, or ``None`` to process normally.
    """

    delay_s: float = 0.0
    hold: bool = False
    rule: FaultRule | None = field(default=None)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_route(where: str, raw: dict[str, Any]) -> str:
    """``route``: ``*`` or ``METHOD /template`` of :data:`ENDPOINTS` (the method in any case)."""
    route = raw.get("route")
    if not isinstance(route, str):
        raise FaultRuleError(f"{where}.route: required, 'METHOD /template' or '*'")
    parts = route.split()
    route = "*" if route.strip() == "*" else " ".join([parts[0].upper(), *parts[1:]])
    if route != "*" and route not in ENDPOINTS:
        raise FaultRuleError(
            f"{where}.route: {raw['route']!r} is not '*' nor one of: {', '.join(ENDPOINTS)}"
        )
    return route


def _parse_trigger(where: str, raw: dict[str, Any], rule: FaultRule) -> None:
    """At most one of ``nth``, ``every``, ``after``; and ``times``."""
    triggers = [k for k in ("nth", "every", "after") if k in raw]
    if len(triggers) > 1:
        raise FaultRuleError(f"{where}: give at most one of nth, every, after (got {triggers})")
    for key in triggers:
        value = raw[key]
        low = 0 if key == "after" else 1
        if not _is_int(value) or value < low:
            raise FaultRuleError(f"{where}.{key}: must be an integer >= {low}")
        setattr(rule, key, value)
    if "times" in raw:
        if not _is_int(raw["times"]) or raw["times"] < 1:
            raise FaultRuleError(f"{where}.times: must be an integer >= 1")
        rule.times = raw["times"]


def _parse_retry_after(where: str, ra: object) -> int | float | str:
    """``retry_after``: seconds (>= 0) or an HTTP-date on one line."""
    if isinstance(ra, int | float) and _is_number(ra):
        if ra < 0:
            raise FaultRuleError(f"{where}.retry_after: must be >= 0 seconds")
        return ra
    if isinstance(ra, str):
        if not ra.strip() or any(c in ra for c in "\r\n"):
            raise FaultRuleError(f"{where}.retry_after: a string must be non-empty and on one line")
        return ra
    raise FaultRuleError(f"{where}.retry_after: must be a number of seconds or an HTTP-date string")


def _parse_status(where: str, raw: dict[str, Any], rule: FaultRule) -> None:
    """The ``status`` action, with its optional ``retry_after`` and ``body``."""
    status = raw["status"]
    if not _is_int(status) or not 200 <= status <= 599:
        raise FaultRuleError(f"{where}.status: must be an integer 200-599")
    rule.status = status
    if "retry_after" in raw:
        rule.retry_after = _parse_retry_after(where, raw["retry_after"])
    if "body" in raw:
        rule.body = raw["body"]
        rule.has_body = True


def _parse_action(where: str, raw: dict[str, Any], rule: FaultRule) -> None:
    """Exactly one of ``status``, ``delay_ms``, ``hold``, ``drop``."""
    actions = [k for k in ("status", "delay_ms", "hold", "drop") if k in raw]
    if len(actions) != 1:
        raise FaultRuleError(
            f"{where}: give exactly one action of status, delay_ms, hold, drop "
            f"(got {actions or 'none'})"
        )
    if actions != ["status"]:
        extra = [k for k in ("retry_after", "body") if k in raw]
        if extra:
            raise FaultRuleError(f"{where}.{extra[0]}: only allowed with status")
    if "status" in raw:
        _parse_status(where, raw, rule)
    elif "delay_ms" in raw:
        delay = raw["delay_ms"]
        if not _is_number(delay) or not 0 <= delay <= _MAX_DELAY_MS:
            raise FaultRuleError(f"{where}.delay_ms: must be a number 0-{_MAX_DELAY_MS}")
        rule.delay_ms = delay
    elif "hold" in raw:
        if raw["hold"] is not True:
            raise FaultRuleError(f"{where}.hold: must be true")
        rule.hold = True
    else:
        if raw["drop"] not in ("before", "after"):
            raise FaultRuleError(f'{where}.drop: must be "before" or "after"')
        rule.drop = raw["drop"]


def _parse_rule(i: int, raw: object) -> FaultRule:
    where = f"rules[{i}]"
    if not isinstance(raw, dict):
        raise FaultRuleError(f"{where}: must be an object")
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise FaultRuleError(
            f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_RULE_KEYS))})"
        )
    rule = FaultRule(route=_parse_route(where, raw))
    _parse_trigger(where, raw, rule)
    _parse_action(where, raw, rule)
    return rule


def parse_rules(payload: object) -> list[FaultRule]:
    """Parse the body of ``POST /_sandbox/faults``.

    Args:
        payload: the parsed JSON, ``{"rules": [rule, ...]}``.

    Returns:
        The rules, counters at zero, in order.

    Raises:
        FaultRuleError: the payload or a rule is malformed (the message names the rule).
    """
    if not isinstance(payload, dict) or set(payload) != {"rules"}:
        raise FaultRuleError('body must be {"rules": [...]}')
    rules = payload["rules"]
    if not isinstance(rules, list):
        raise FaultRuleError("rules: must be a list")
    return [_parse_rule(i, raw) for i, raw in enumerate(rules)]


def decide(rules: list[FaultRule], route_key: str) -> FaultDecision:
    """Count one request against every matching rule and decide its fault (caller holds the lock).

    Args:
        rules: the active rules, in order.
        route_key: ``"METHOD /template"`` of the request.

    Returns:
        The summed delay, whether a hold rule fired, and the first firing status/drop rule, if
        any.
    """
    decision = FaultDecision()
    triggered: list[FaultRule] = [r for r in rules if r.matches(route_key) and r.count_and_check()]
    for rule in triggered:
        if not rule.may_fire():
            continue
        rule.fired += 1
        if rule.delay_ms is not None:
            decision.delay_s += rule.delay_ms / 1000.0
            continue
        if rule.hold:
            decision.hold = True
            continue
        decision.rule = rule
        break
    return decision
