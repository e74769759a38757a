"""The mapping: which column of a lead list becomes which lead field.

A mapping is a YAML file (docs/mapping.md) read with ``yaml.safe_load`` into the
frozen :class:`Mapping`. :func:`load_mapping` checks the whole file before any data is read and
raises one :class:`~etl.errors.MappingError` listing every problem with its key path. This
module only reads and checks the mapping: :func:`etl.plan.resolve_columns` matches its columns
to each file's headers, :func:`etl.shape.apply_mapping` applies it to each chunk.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Sequence
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers
import yaml

from etl.calls import CallingWindow
from etl.errors import MappingError, closest
from etl.extract import TAB_NAMES, ReadOptions
from etl.values import Invalid, fold_key
from etl.zones import canonical_zone

__all__ = [
    "ColumnSpec",
    "CommentSpec",
    "Defaults",
    "KEY_FIELDS",
    "LEAD_FIELDS",
    "Mapping",
    "PhoneSpec",
    "References",
    "TaskSpec",
    "ValueMap",
    "load_mapping",
    "parse_mapping",
    "parse_value_map",
]

#: Lead fields a column can fill (docs/api.md, "The lead").
LEAD_FIELDS = ("name", "surname", "email", "timezoneId")
REQUIRED_FIELDS = ("name", "surname", "email")
#: What a ``key`` entry may name besides a dynamicData field.
KEY_FIELDS = ("email", "name", "surname", "phone")
VALUE_TYPES = ("text", "date")

_TOP_KEYS = (
    "project",
    "status",
    "source",
    "campaign",
    "read",
    "defaults",
    "key",
    "fields",
    "phones",
    "dynamicData",
    "comments",
    "callback",
    "meeting",
    "calling_window",
)
_READ_KEYS = (
    "sheet",
    "header_row",
    "encoding",
    "delimiter",
    "max_field_lines",
    "max_field_chars",
)
_DEFAULT_KEYS = (
    "region",
    "region_column",
    "timezone",
    "ambiguous_timezone",
    "timezone_by_country",
)
#: What to do when an empty zone cannot be inferred because the phone spans several zones.
AMBIGUOUS_ZONE_POLICIES = ("reject", "default")


@dataclass(frozen=True)
class ValueMap:
    """A value map: cells written one way replaced by the value meant, before normalisation.

    Written in the mapping as ``map: {EST: America/New_York, Hot: New}`` under a ``{column,
    map}`` spec. Keys match a cell after :func:`etl.values.fold_key` (trim, collapse whitespace,
    case-fold); a cell no key matches is kept as it is (and then checked like any other).
    :func:`etl.shape.apply_mapping` applies it to a chunk's column.

    Attributes:
        entries: ``(folded key, value)`` pairs, in mapping order.
    """

    entries: tuple[tuple[str, str], ...] = ()

    def get(self, cell: object) -> str | None:
        """The mapped value of one cell, or ``None`` when no key matches."""
        if cell is None or (isinstance(cell, float) and cell != cell):
            return None
        wanted = fold_key(cell)
        return next((value for key, value in self.entries if key == wanted), None)


def parse_value_map(
    raw: Any,
    where: str,
    problems: list[str],
    check: Callable[[str], str | None] | None = None,
) -> ValueMap | None:
    """Check the ``map:`` of a ``{column, map}`` spec (``where`` is its key path).

    Args:
        raw: the YAML value: a mapping of written value → meant value (scalars; a number is
            read as its text; a boolean, an unquoted ``true``/``false``, is a problem: it
            must be quoted).
        where: key path for messages (``fields.timezoneId.map``).
        problems: list to add problems to.
        check: optional check of a meant value; returns why it is wrong, or ``None``.

    Returns:
        The :class:`ValueMap`, or ``None`` (problems added) when ``raw`` is not usable. Two keys
        that fold to the same text are a problem (which value would win is not obvious).
    """
    if not isinstance(raw, AbcMapping) or not raw:
        problems.append(
            f"{where}: expected a mapping of value as written → value meant, "
            f"e.g. {{EST: America/New_York}}, got {_describe(raw)}"
        )
        return None
    entries: list[tuple[str, str]] = []
    seen: dict[str, object] = {}
    for key, value in raw.items():
        if isinstance(key, bool) or isinstance(value, bool):
            problems.append(
                f"{where}: an unquoted true or false is a boolean, not text; quote it "
                f'("true": …) (entry {key!r}: {value!r})'
            )
            continue
        if key is None or isinstance(key, (AbcMapping, list)) or not str(key).strip():
            problems.append(f"{where}: a key must be a value as written, got {_describe(key)}")
            continue
        if value is None or isinstance(value, (AbcMapping, list)) or not str(value).strip():
            problems.append(f"{where}.{key}: expected the value meant, got {_describe(value)}")
            continue
        folded = fold_key(key)
        if folded in seen:
            problems.append(
                f"{where}.{key}: the same key as {seen[folded]!r} (keys ignore case and spaces)"
            )
            continue
        seen[folded] = key
        meant = str(value).strip()
        if check is not None:
            why = check(meant)
            if why:
                problems.append(f"{where}.{key}: {why}")
                continue
        entries.append((folded, meant))
    return ValueMap(tuple(entries))


@dataclass(frozen=True)
class ColumnSpec:
    """A column and how to read its values (``text``, or ``date`` sent as ``YYYY-MM-DD``).

    ``map`` is an optional :class:`ValueMap` applied to the column's cells before they are
    normalised.
    """

    column: str
    type: str = "text"
    map: ValueMap | None = None


@dataclass(frozen=True)
class PhoneSpec:
    """A phone column and the label its numbers get (``mobile``, ``work``…).

    ``extension`` names the dynamicData field that receives a trailing extension (``x12``);
    without it an extension is dropped with a warning.
    """

    column: str
    label: str = "main"
    extension: str | None = None


@dataclass(frozen=True)
class CommentSpec:
    """A column whose text becomes a comment on the lead; ``author`` is an optional authorId;
    ``date`` a column whose cell is the note's time, read in the lead's zone (else the run's
    time)."""

    column: str
    author: str | int | None = None
    date: str | None = None


#: What to do with a callback or meeting time already past when the run starts.
PAST_POLICIES = ("reject", "skip")


@dataclass(frozen=True)
class TaskSpec:
    """A CALLBACK or MEETING task per lead (docs/api.md #6), its times read from columns.

    Attributes:
        type: ``CALLBACK`` or ``MEETING``.
        start: the column of the local time (``triggerTime``).
        end: the column of a meeting's end (``finishTime``); ``None`` for a callback.
        timezone: ``lead`` (the lead's zone) or a canonical IANA zone the cells are read in.
        timezone_column: a column naming each row's zone for the cells (wins over ``timezone``
            when filled).
        user: ``userId`` of the task, or ``None``.
        teams: ``teamIds`` the task is shared with.
        past: ``reject`` (the default) refuses a row whose time is past; ``skip`` sends no task
            for it, with a warning.
    """

    type: str
    start: str
    end: str | None = None
    timezone: str = "lead"
    timezone_column: str | None = None
    user: str | int | None = None
    teams: tuple[str, ...] = ()
    past: str = "reject"


@dataclass(frozen=True)
class Defaults:
    """Values used where a row gives none.

    Attributes:
        region: ISO 3166 alpha-2 region for numbers written without ``+country``.
        region_column: column holding each row's region (parsed, not sent).
        timezone: canonical IANA zone when no column gives one and none can be inferred.
        timezone_by_country: ISO region → canonical IANA zone, used like ``timezone`` for a
            row of that country (its ``region_column`` country, else its first phone's) whose
            zone is empty; ``timezone`` stays the fallback for other countries.
        ambiguous_timezone: ``reject`` (the default) refuses a row whose empty zone the phone
            cannot settle (a US or Australian mobile spans several zones) unless
            ``timezone`` is among the phone's zones; ``default`` uses ``timezone`` anyway.
    """

    region: str | None = None
    region_column: str | None = None
    timezone: str | None = None
    ambiguous_timezone: str = "reject"
    timezone_by_country: tuple[tuple[str, str], ...] = ()

    def zone_for(self, country: str | None) -> str | None:
        """The default zone of a row of ``country`` (ISO region or ``None``)."""
        for region, zone in self.timezone_by_country:
            if region == country:
                return zone
        return self.timezone


@dataclass(frozen=True)
class Mapping:
    """A checked mapping. Project, status, source and campaign are ids or names (unresolved)."""

    path: str
    project: int | str
    fields: dict[str, ColumnSpec]
    key: tuple[str, ...] = ("email",)
    status: int | str | None = None
    source: int | str | None = None
    status_column: ColumnSpec | None = None
    source_column: ColumnSpec | None = None
    campaign: int | str | None = None
    read: ReadOptions = field(default_factory=ReadOptions)
    defaults: Defaults = field(default_factory=Defaults)
    phones: tuple[PhoneSpec, ...] = ()
    dynamic: dict[str, ColumnSpec] = field(default_factory=dict)
    comments: tuple[CommentSpec, ...] = ()
    callback: TaskSpec | None = None
    meeting: TaskSpec | None = None
    calling_window: str | None = None

    def per_row(self) -> list[tuple[str, ColumnSpec]]:
        """``(status|source, spec)`` of the per-row status and source columns that are mapped."""
        return [
            (k, c) for k, c in (("status", self.status_column), ("source", self.source_column)) if c
        ]

    def tasks(self) -> list[tuple[str, TaskSpec]]:
        """``(slot, spec)`` of the mapped tasks: ``callback``, ``meeting``."""
        return [(n, t) for n, t in (("callback", self.callback), ("meeting", self.meeting)) if t]

    def columns(self) -> list[tuple[str, str]]:
        """Every mapped column as ``(key path, column header)``, in mapping order."""
        out = [(f"fields.{name}", spec.column) for name, spec in self.fields.items()]
        out += [(f"phones[{i}].column", p.column) for i, p in enumerate(self.phones)]
        out += [(f"dynamicData.{k}", s.column) for k, s in self.dynamic.items()]
        out += [(f"comments[{i}].column", c.column) for i, c in enumerate(self.comments)]
        out += [(f"{k}.column", c.column) for k, c in self.per_row() if c]
        out += [(f"comments[{i}].date", c.date) for i, c in enumerate(self.comments) if c.date]
        for slot, task in self.tasks():
            first = "column" if slot == "callback" else "start"
            out.append((f"{slot}.{first}", task.start))
            if task.end:
                out.append((f"{slot}.end", task.end))
            if task.timezone_column:
                out.append((f"{slot}.timezone_column", task.timezone_column))
        if self.defaults.region_column:
            out.append(("defaults.region_column", self.defaults.region_column))
        return out


#: Keys whose value is an id or a name; a plain value there that YAML 1.1 would have turned into
#: something else (``0123`` → 83, ``1:20`` → 80, ``1_000``, ``0x1F``, ``1.0``) is refused.
_ID_KEYS = ("project", "status", "source", "campaign")


class _MappingLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a strict YAML 1.2 core-schema subset for plain scalars.

    Only these plain (unquoted) scalars are not text: ``null``/``Null``/``NULL``/``~``/empty
    (nothing), ``true``/``false`` in those three spellings (booleans), and decimal integers
    written without a leading zero (``0``, ``7``, ``-3``, ``+12``). Everything else is the text
    as typed: ``0123``, ``0x1F``, ``1_000``, ``1.5``, ``1:20``, ``2024-03-10``, ``yes``/``no``/
    ``on``/``off``/``y``/``n`` in any case (the Norway problem: region ``NO``), ``=`` and ``<<``.
    YAML 1.1, which ``yaml.safe_load`` implements, turns those into octal/hex/sexagesimal
    numbers, floats, dates and booleans (YAML 1.1 type repository, yaml.org/type); YAML 1.2's
    core schema (yaml.org/spec/1.2.2, 10.3) reads ``0123`` as 123, which still changes what was
    typed, so leading zeros stay text here. A key given twice in one mapping is an error (YAML
    says keys are unique; PyYAML would keep the last silently).
    """

    yaml_implicit_resolvers: dict[Any, Any] = {}


for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^[-+]?(?:0|[1-9][0-9]*)$", list("-+0123456789")),
):
    _MappingLoader.add_implicit_resolver(_tag, re.compile(_pattern), _first)


def _construct_unique_mapping(loader: _MappingLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    """A YAML mapping whose keys are unique (``True`` and ``1`` are different keys)."""
    seen: dict[tuple[type, Any], int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        marker = (type(key), key)
        try:
            first = seen.get(marker)
        except TypeError:  # an unhashable key: construct_mapping reports it
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {key!r} is given twice (first on line {first}); a key may appear once",
                key_node.start_mark,
            )
        seen[marker] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=True)


_MappingLoader.add_constructor("tag:yaml.org,2002:map", _construct_unique_mapping)


def _yaml11_surprises(root: yaml.Node | None) -> list[tuple[str, str, Any, int]]:
    """Plain scalars that YAML 1.1 (``yaml.safe_load``) reads as something other than the text
    :class:`_MappingLoader` keeps: ``(key path, text, YAML 1.1 value, line)`` in file order."""
    out: list[tuple[str, str, Any, int]] = []
    old = yaml.SafeLoader("")

    def walk(node: yaml.Node, where: str) -> None:
        if isinstance(node, yaml.ScalarNode):
            if node.style is None and node.tag == "tag:yaml.org,2002:str":
                # types-PyYAML leaves BaseResolver.resolve unannotated
                tag = old.resolve(yaml.ScalarNode, node.value, (True, False))  # type: ignore[no-untyped-call]
                if tag != "tag:yaml.org,2002:str":
                    try:
                        value = old.construct_object(yaml.ScalarNode(tag, node.value))
                    except yaml.YAMLError:
                        value = node.value
                    out.append((where, node.value, value, node.start_mark.line + 1))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{where}[{i}]")
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else "?"
                walk(value, f"{where}.{name}" if where else str(name))

    if root is not None:
        walk(root, "")
    old.dispose()
    return out


def _surprise_problems(surprises: list[tuple[str, str, Any, int]]) -> list[str]:
    """Refuse an id written so that YAML 1.1 would change it (``project: 0123`` is 83 there)."""
    problems = []
    for where, text, value, line in surprises:
        if where not in _ID_KEYS:
            continue
        meant = f"{type(value).__name__} {value!r}"
        if text.isdigit():
            fix = (
                f"write the id without leading zeros ({int(text)}), or quote a name made of "
                f'digits ({where}: "{text}")'
            )
        else:
            fix = f'quote it if it is a name ({where}: "{text}"), or write the id as plain digits'
        problems.append(
            f"{where}: {text} (line {line}) is ambiguous: YAML 1.1 readers take it as {meant}; "
            f"{fix}"
        )
    return problems


def _load_yaml(text: str) -> tuple[Any, list[tuple[str, str, Any, int]]]:
    """Parse mapping YAML with :class:`_MappingLoader`.

    Returns:
        ``(document, surprises)``: the document (``None`` when empty) with plain values as
        typed, and the plain values YAML 1.1 would have read otherwise (see
        :func:`_yaml11_surprises`).

    Raises:
        yaml.YAMLError: not valid YAML, or a key given twice (``problem_mark`` says where).
    """
    loader = _MappingLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        return loader.construct_document(node), _yaml11_surprises(node)
    finally:
        loader.dispose()


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file.

    The YAML is read by :func:`load_yaml` (plain values are the text typed, see
    :class:`_MappingLoader`); an id (``project``, ``status``, ``source``, ``campaign``) written
    so that YAML 1.1 readers would change it (``0123``, ``0x1F``, ``1_000``, ``1:20``, ``1.0``)
    is refused with the reason.

    Raises:
        MappingError: the file is missing, not YAML, or wrong; ``problems`` lists each with its
            key path (``fields.surname: required``).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise MappingError(str(path), ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(str(path), [f"cannot be read: {exc}"]) from None
    try:
        data, surprises = _load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise MappingError(str(path), [f"{where}not valid YAML ({problem})"]) from None
    early = _surprise_problems(surprises)
    try:
        mapping = parse_mapping(data, str(path))
    except MappingError as exc:
        raise MappingError(str(path), [*early, *exc.problems], exc.partial) from None
    if early:
        raise MappingError(str(path), early, mapping)
    return mapping


def _column_spec(value: Any, where: str, problems: list[str], typed: bool) -> ColumnSpec | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # an unquoted numeric header such as 2024
    if isinstance(value, str) and value.strip():
        return ColumnSpec(value.strip())
    if isinstance(value, AbcMapping):
        allowed = ("column", "type", "map") if typed else ("column", "map")
        column = _spec_column(value, where, allowed, problems)
        if column is None:
            return None
        vtype = value.get("type", "text")
        if vtype not in VALUE_TYPES:
            problems.append(f"{where}.type: {vtype!r} is not one of {', '.join(VALUE_TYPES)}")
            return None
        value_map = None
        if "map" in value:
            check = _zone_check if where == "fields.timezoneId" else None
            value_map = parse_value_map(value["map"], f"{where}.map", problems, check)
            if value_map is None:
                return None
        return ColumnSpec(column.strip(), vtype, value_map)
    problems.append(f"{where}: expected a column header (text), got {_describe(value)}")
    return None


def _zone_check(value: str) -> str | None:
    """Why ``value`` cannot be a mapped zone (it must be a canonical-able IANA zone)."""
    zone = canonical_zone(value)
    return zone.reason if isinstance(zone, Invalid) else None


def _did_you_mean(value: object, choices: Sequence[str]) -> str:
    """``, did you mean 'email'?`` for the one choice close to ``value``, else ``""``."""
    found = closest(value, choices)
    return f", did you mean {found!r}?" if found is not None else ""


def _unknown_key(where: str, key: object, allowed: Sequence[str]) -> str:
    """``read.shet: unknown key, did you mean 'sheet'? (allowed: sheet, header_row, …)``."""
    return f"{where}: unknown key{_did_you_mean(key, allowed)} (allowed: {', '.join(allowed)})"


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"


def _ref(data: AbcMapping[str, Any], key: str, problems: list[str]) -> int | str | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        problems.append(f"{key}: expected an id (number) or a name (text), got {_describe(value)}")
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            problems.append(f"{key}: empty")
            return None
        if value.isdigit() and (value == "0" or not value.startswith("0")):
            return int(value)  # "0123" stays a name: an id has no leading zero
    return value


def parse_mapping(data: Any, path: str = "<mapping>") -> Mapping:
    """Check a mapping already parsed from YAML; see :func:`load_mapping`."""
    problems: list[str] = []
    if not isinstance(data, AbcMapping):
        raise MappingError(
            path, [f"(top level): expected a mapping of keys, got {_describe(data)}"]
        )
    for key in data:
        if key not in _TOP_KEYS:
            problems.append(_unknown_key(str(key), key, _TOP_KEYS))

    project = _ref(data, "project", problems)
    if "project" not in data:
        problems.append("project: required (a project id or name)")
    status_column = _per_row_column(data, "status", problems)
    source_column = _per_row_column(data, "source", problems)
    status = None if isinstance(data.get("status"), AbcMapping) else _ref(data, "status", problems)
    source = None if isinstance(data.get("source"), AbcMapping) else _ref(data, "source", problems)
    campaign = _ref(data, "campaign", problems)

    read = _parse_read(data.get("read"), problems)
    defaults = _parse_defaults(data.get("defaults"), problems)
    fields = _parse_fields(data.get("fields"), problems)
    phones = _parse_phones(data, problems)
    dynamic = _parse_dynamic(data.get("dynamicData") or {}, problems)
    comments = _parse_comments(data, problems)
    callback = _parse_task(data.get("callback"), "callback", problems)
    meeting = _parse_task(data.get("meeting"), "meeting", problems)
    calling_window = _parse_window(data.get("calling_window"), problems)

    for i, phone in enumerate(phones):
        if phone.extension and phone.extension in dynamic:
            problems.append(
                f"phones[{i}].extension: {phone.extension!r} is also a dynamicData field; "
                "use another name"
            )

    key = _parse_key(data.get("key", ["email"]), dynamic, phones, problems)

    mapping = Mapping(
        path=path,
        project=project if project is not None else "",
        status=status,
        source=source,
        status_column=status_column,
        source_column=source_column,
        campaign=campaign,
        read=read,
        defaults=defaults,
        key=key,
        fields=fields,
        phones=tuple(phones),
        dynamic=dynamic,
        comments=tuple(comments),
        callback=callback,
        meeting=meeting,
        calling_window=calling_window,
    )
    if problems:  # what did parse goes along, so columns and names are checked too
        raise MappingError(path, problems, partial=mapping)
    return mapping


def _per_row_column(
    data: AbcMapping[str, Any], kind: str, problems: list[str]
) -> ColumnSpec | None:
    """``status``/``source`` written as ``{column, map}``: a per-row column, else ``None``."""
    if isinstance(data.get(kind), AbcMapping):
        return _column_spec(data[kind], kind, problems, typed=False)
    return None


def _parse_fields(raw_fields: Any, problems: list[str]) -> dict[str, ColumnSpec]:
    """``fields``: lead field → column (``name``, ``surname``, ``email`` required)."""
    fields: dict[str, ColumnSpec] = {}
    if not isinstance(raw_fields, AbcMapping):
        problems.append(
            f"fields: required, a mapping of lead field to column, got {_describe(raw_fields)}"
        )
        raw_fields = {}
    for name, value in raw_fields.items():
        if name not in LEAD_FIELDS:
            problems.append(
                f"fields.{name}: unknown lead field{_did_you_mean(name, LEAD_FIELDS)} "
                f"(lead fields: {', '.join(LEAD_FIELDS)}; "
                "put custom fields under dynamicData)"
            )
            continue
        spec = _column_spec(value, f"fields.{name}", problems, typed=False)
        if spec:
            fields[name] = spec
    for name in REQUIRED_FIELDS:
        if name not in raw_fields:
            problems.append(f"fields.{name}: required (the API needs a lead's {name})")
    return fields


def _parse_phones(data: AbcMapping[str, Any], problems: list[str]) -> list[PhoneSpec]:
    """``phones``: a list of ``{column, label, extension}`` (a bare text entry is a column)."""
    phones: list[PhoneSpec] = []
    phone_keys = ("column", "label", "extension")
    for where, column, item in _column_items(data, "phones", phone_keys, "label", problems):
        label, extension = item.get("label", "main"), item.get("extension")
        if not isinstance(label, str) or not label.strip():
            problems.append(f"{where}.label: expected text, got {_describe(label)}")
            continue
        if extension is not None and (not isinstance(extension, str) or not extension.strip()):
            problems.append(
                f"{where}.extension: expected a dynamicData field name, got {_describe(extension)}"
            )
            continue
        phones.append(PhoneSpec(column, label.strip(), extension.strip() if extension else None))
    return phones


def _parse_dynamic(raw_dynamic: Any, problems: list[str]) -> dict[str, ColumnSpec]:
    """``dynamicData``: custom field → column (or ``{column, type, map}``)."""
    dynamic: dict[str, ColumnSpec] = {}
    if not isinstance(raw_dynamic, AbcMapping):
        problems.append(
            "dynamicData: expected a mapping of custom field to column, "
            f"got {_describe(raw_dynamic)}"
        )
        raw_dynamic = {}
    for name, value in raw_dynamic.items():
        if not isinstance(name, str) or not name.strip():
            problems.append(f"dynamicData.{name}: the custom field name must be text")
            continue
        spec = _column_spec(value, f"dynamicData.{name}", problems, typed=True)
        if spec:
            dynamic[name] = spec
    return dynamic


def _parse_comments(data: AbcMapping[str, Any], problems: list[str]) -> list[CommentSpec]:
    """``comments``: a list of ``{column, author, date}`` (a bare text entry is a column)."""
    comments: list[CommentSpec] = []
    for where, column, item in _column_items(
        data, "comments", ("column", "author", "date"), "author", problems
    ):
        author, date = item.get("author"), item.get("date")
        if author is not None and (isinstance(author, bool) or not isinstance(author, (str, int))):
            problems.append(f"{where}.author: expected an authorId (text), got {_describe(author)}")
            continue
        if date is not None and (not isinstance(date, str) or not date.strip()):
            problems.append(f"{where}.date: expected a column header, got {_describe(date)}")
            continue
        comments.append(CommentSpec(column, author, date.strip() if date else None))
    return comments


def _parse_window(calling_window: Any, problems: list[str]) -> str | None:
    """``calling_window``: ``HH:MM-HH:MM`` as :meth:`etl.calls.CallingWindow.parse` reads it
    (the same rules the run applies), trimmed, or ``None``."""
    if calling_window is None:
        return None
    try:
        CallingWindow.parse(str(calling_window))
    except ValueError as exc:
        problems.append(f"calling_window: {exc} (local time, HH:MM-HH:MM)")
        return None
    return str(calling_window).strip()


def _zone(value: Any) -> tuple[str | None, str]:
    """A zone the mapping names: ``(canonical IANA name, "")`` or ``(None, why not)``."""
    canonical = canonical_zone(value) if isinstance(value, str) else None
    if isinstance(canonical, str):
        return canonical, ""
    return None, canonical.reason if isinstance(canonical, Invalid) else "expected an IANA zone"


_TASK_KEYS = {
    "callback": ("column", "timezone", "timezone_column", "user", "teams", "past"),
    "meeting": ("start", "end", "timezone", "timezone_column", "user", "teams", "past"),
}


def _parse_task(raw: Any, slot: str, problems: list[str]) -> TaskSpec | None:
    """``callback: {column, …}`` or ``meeting: {start, end, …}`` (see :class:`TaskSpec`)."""
    if raw is None:
        return None
    if slot == "callback" and isinstance(raw, str) and raw.strip():
        raw = {"column": raw}
    allowed = _TASK_KEYS[slot]
    if not isinstance(raw, AbcMapping):
        problems.append(f"{slot}: expected {{{', '.join(allowed)}}}, got {_describe(raw)}")
        return None
    count = len(problems)
    for k in raw:
        if k not in allowed:
            problems.append(_unknown_key(f"{slot}.{k}", k, allowed))
    cols = _task_columns(raw, slot, allowed, problems)
    zone = raw.get("timezone", "lead")
    if zone != "lead":
        canonical, why = _zone(zone)
        if canonical is None:
            problems.append(f"{slot}.timezone: 'lead' or an IANA zone; {why}")
        else:
            zone = canonical
    user = raw.get("user")
    if user is not None and (isinstance(user, bool) or not isinstance(user, (str, int))):
        problems.append(f"{slot}.user: expected a userId, got {_describe(user)}")
    teams = _task_teams(raw.get("teams", []), slot, problems)
    past = raw.get("past", "reject")
    if past not in PAST_POLICIES:
        problems.append(f"{slot}.past: {past!r} is not one of {', '.join(PAST_POLICIES)}")
    if len(problems) > count:
        return None
    return TaskSpec(
        type=slot.upper(),
        start=str(cols.get("column") or cols.get("start")),
        end=cols.get("end"),
        timezone=str(zone),
        timezone_column=cols.get("timezone_column"),
        user=user,
        teams=tuple(str(t) for t in teams),
        past=str(past),
    )


def _task_columns(
    raw: AbcMapping[str, Any], slot: str, allowed: Sequence[str], problems: list[str]
) -> dict[str, str | None]:
    """A task's column headers (``column``/``start``, ``end``, ``timezone_column``), trimmed."""
    cols: dict[str, str | None] = {}
    for name in ("column", "start", "end", "timezone_column"):
        if name not in allowed:
            continue
        value = raw.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if value is None and name != "timezone_column":
            problems.append(f"{slot}.{name}: required, the column header (text)")
        elif value is not None and (not isinstance(value, str) or not value.strip()):
            problems.append(f"{slot}.{name}: expected a column header, got {_describe(value)}")
        cols[name] = value.strip() if isinstance(value, str) else None
    return cols


def _task_teams(teams: Any, slot: str, problems: list[str]) -> list[Any]:
    """A task's ``teams``: a team id or a list of them (an unusable value is a problem)."""
    if isinstance(teams, (str, int)) and not isinstance(teams, bool):
        teams = [teams]
    if not isinstance(teams, list) or any(
        isinstance(t, bool) or not isinstance(t, (str, int)) for t in teams
    ):
        problems.append(f"{slot}.teams: expected a list of team ids, got {_describe(teams)}")
        return []
    return teams


def _column_items(
    data: AbcMapping[str, Any],
    key: str,
    allowed: Sequence[str],
    second: str,
    problems: list[str],
) -> list[tuple[str, str, AbcMapping[str, Any]]]:
    """The entries of a list of ``{column, …}`` specs (``phones``, ``comments``); a bare text
    entry is a column. Returns ``(key path, column, entry)`` for each usable entry and adds a
    problem for each other (``second`` names the spec's other key in messages)."""
    raw = data.get(key) or []
    shape = f"{{column, {second}}}"
    if not isinstance(raw, list):
        problems.append(f"{key}: expected a list of {shape}, got {_describe(raw)}")
        return []
    out: list[tuple[str, str, AbcMapping[str, Any]]] = []
    for i, item in enumerate(raw):
        where = f"{key}[{i}]"
        if isinstance(item, str) and item.strip():
            out.append((where, item.strip(), {}))
            continue
        if not isinstance(item, AbcMapping):
            problems.append(f"{where}: expected {shape}, got {_describe(item)}")
            continue
        column = _spec_column(item, where, allowed, problems)
        if column is not None:
            out.append((where, column, item))
    return out


def _spec_column(
    spec: AbcMapping[str, Any], where: str, allowed: Sequence[str], problems: list[str]
) -> str | None:
    """The trimmed ``column`` of a ``{column, …}`` spec, or ``None`` (a problem added); each key
    not in ``allowed`` is a problem too."""
    for k in spec:
        if k not in allowed:
            problems.append(_unknown_key(f"{where}.{k}", k, allowed))
    column = spec.get("column")
    if not isinstance(column, str) or not column.strip():
        problems.append(f"{where}.column: required, the column header (text)")
        return None
    return column.strip()


def _section(
    raw: Any, name: str, keys: Sequence[str], problems: list[str]
) -> AbcMapping[str, Any] | None:
    """A section of the mapping (``read``, ``defaults``), or ``None`` when it is absent or not a
    mapping (a problem then); each key it does not know is a problem."""
    if raw is None:
        return None
    if not isinstance(raw, AbcMapping):
        problems.append(f"{name}: expected a mapping, got {_describe(raw)}")
        return None
    for k in raw:
        if k not in keys:
            problems.append(_unknown_key(f"{name}.{k}", k, keys))
    return raw


def _parse_read(raw: Any, problems: list[str]) -> ReadOptions:
    raw = _section(raw, "read", _READ_KEYS, problems)
    if raw is None:
        return ReadOptions()
    sheet = raw.get("sheet")
    if sheet is not None and (isinstance(sheet, bool) or not isinstance(sheet, (str, int))):
        problems.append(
            f"read.sheet: expected a sheet name or 0-based index, got {_describe(sheet)}"
        )
        sheet = None
    header_row = raw.get("header_row")
    if header_row is not None and (
        isinstance(header_row, bool) or not isinstance(header_row, int) or header_row < 1
    ):
        problems.append(
            f"read.header_row: expected a row number from 1, got {_describe(header_row)}"
        )
        header_row = None
    encoding = raw.get("encoding")
    if encoding is not None:
        try:
            codecs.lookup(str(encoding))
        except LookupError:
            problems.append(f"read.encoding: unknown encoding {encoding!r}")
            encoding = None
    delimiter = raw.get("delimiter")
    if delimiter is not None:
        if delimiter in TAB_NAMES:
            delimiter = "\t"
        if not isinstance(delimiter, str) or len(delimiter) != 1:
            problems.append(f"read.delimiter: expected one character, got {_describe(delimiter)}")
            delimiter = None
    limits: dict[str, int] = {}
    for name in ("max_field_lines", "max_field_chars"):
        limit = raw.get(name)
        if limit is None:
            continue
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            problems.append(f"read.{name}: expected a whole number from 1, got {_describe(limit)}")
        else:
            limits[name] = limit
    return ReadOptions(
        sheet=sheet, header_row=header_row, encoding=encoding, delimiter=delimiter, **limits
    )


def _default_region(region: Any, problems: list[str]) -> str | None:
    """``defaults.region``: an ISO 3166 alpha-2 code libphonenumber knows, upper-cased."""
    if region is None:
        return None
    if not isinstance(region, str) or region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        problems.append(
            f"defaults.region: {region!r} is not an ISO 3166 region code (e.g. US, GB, DE)"
        )
        return None
    return region.upper()


def _parse_defaults(raw: Any, problems: list[str]) -> Defaults:
    raw = _section(raw, "defaults", _DEFAULT_KEYS, problems)
    if raw is None:
        return Defaults()
    region = _default_region(raw.get("region"), problems)
    region_column = raw.get("region_column")
    if region_column is not None and (
        not isinstance(region_column, str) or not region_column.strip()
    ):
        problems.append(
            f"defaults.region_column: expected a column header, got {_describe(region_column)}"
        )
        region_column = None
    timezone = raw.get("timezone")
    if timezone is not None:
        timezone, why = _zone(timezone)
        if timezone is None:
            problems.append(f"defaults.timezone: {why}")
    policy = raw.get("ambiguous_timezone", "reject")
    if policy not in AMBIGUOUS_ZONE_POLICIES:
        problems.append(
            f"defaults.ambiguous_timezone: {policy!r} is not one of "
            f"{', '.join(AMBIGUOUS_ZONE_POLICIES)}"
        )
        policy = "reject"
    elif policy == "default" and timezone is None and "timezone" not in raw:
        problems.append("defaults.ambiguous_timezone: 'default' needs defaults.timezone")
    return Defaults(
        region=region,
        region_column=region_column.strip() if region_column else None,
        timezone=timezone,
        ambiguous_timezone=policy,
        timezone_by_country=_zones_by_country(raw.get("timezone_by_country"), problems),
    )


def _zones_by_country(raw: Any, problems: list[str]) -> tuple[tuple[str, str], ...]:
    """``defaults.timezone_by_country``: ``(ISO region, canonical IANA zone)`` pairs."""
    if raw is None:
        return ()
    if not isinstance(raw, AbcMapping) or not raw:
        problems.append(
            "defaults.timezone_by_country: expected a mapping of ISO region → IANA zone, "
            f"e.g. {{DE: Europe/Berlin}}, got {_describe(raw)}"
        )
        return ()
    by_country: list[tuple[str, str]] = []
    for country, zone in raw.items():
        where = f"defaults.timezone_by_country.{country}"
        code = str(country).strip().upper()
        if code not in phonenumbers.SUPPORTED_REGIONS:
            problems.append(f"{where}: {country!r} is not an ISO 3166 region code (e.g. DE)")
            continue
        canonical, why = _zone(zone)
        if canonical is None:
            problems.append(f"{where}: {why}")
            continue
        by_country.append((code, canonical))
    return tuple(by_country)


def _parse_key(
    raw: Any, dynamic: dict[str, ColumnSpec], phones: Sequence[PhoneSpec], problems: list[str]
) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        problems.append(f"key: expected a list of field names, e.g. [email], got {_describe(raw)}")
        return ("email",)
    out: list[str] = []
    for i, name in enumerate(raw):
        if not isinstance(name, str):
            problems.append(f"key[{i}]: expected a field name, got {_describe(name)}")
        elif name == "phone" and not phones:
            problems.append(f"key[{i}]: 'phone' needs a phones: column")
        elif name not in KEY_FIELDS and name not in dynamic:
            problems.append(
                f"key[{i}]: {name!r} is neither a lead field ({', '.join(KEY_FIELDS)}) "
                f"nor a dynamicData field{_did_you_mean(name, [*KEY_FIELDS, *dynamic])}"
            )
        else:
            out.append(name)
    return tuple(out)


@dataclass(frozen=True)
class References:
    """Ids the names of a mapping resolve to (docs/api.md #1–#3, #12).

    Attributes:
        project_id: the project (``groupId``).
        status_id: ``statusId`` for every lead, or ``None``.
        source_id: ``sourceId`` for every lead, or ``None``.
        campaign_id: the campaign (24 hex digits) to enrol leads in, or ``None``.
        campaign_name: its name, for reports.
        choices: for a per-row ``status``/``source`` column, the project's ``(id, name)``
            pairs a cell may name (#2, #3); ``None`` offline, when they cannot be listed.
    """

    project_id: int | None
    status_id: int | None = None
    source_id: int | None = None
    campaign_id: str | None = None
    campaign_name: str | None = None
    choices: dict[str, tuple[tuple[int, str], ...]] | None = None
