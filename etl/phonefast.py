"""libphonenumber's answers for many phone numbers at once, for the forms nearly all cells take.

:func:`parse_many` takes cells such as ``+14155552671``, ``(415) 555-2671``, ``415.555.2671``,
``020 7946 0958`` (with the row's region) and returns, for each, the :class:`PhoneResult` that
:func:`etl.normalize.parse_phone` would return for a *valid* number, or ``None`` when this path
cannot decide (any other form, an invalid number, a region whose national-prefix rule rewrites
digits): the caller then asks :func:`etl.normalize.parse_phone`, so reasons for bad numbers always
come from the one slow path.

How it stays identical to ``phonenumbers`` (the source of every rule here):

* The steps of ``phonenumbers.parse`` for a cell of ASCII digits, spaces, ``().-`` and a leading
  ``+`` are followed one by one with the library's own metadata and compiled patterns: the IDD
  (``international_prefix``) and the country code of the default region, the national prefix
  (``national_prefix_for_parsing``), the possible lengths (``phonenumbers``' own
  ``_test_number_length``).
* Every *full match* of a national number pattern (each region's general pattern, its type
  patterns and its ``leading_digits``, for every region that shares the country code) is read
  from one deterministic automaton per country code, built lazily from the same patterns and run
  over all numbers at once with numpy. The answer of ``region_code_for_number``,
  ``is_valid_number`` and ``number_type`` depends only on which patterns match and on the
  number's length, so each distinct (matches, length) is answered once by ``phonenumbers``
  itself and reused.
* Zones: ``time_zones_for_number`` depends only on the number type's being geographical and,
  for a geographical number, on the longest prefix of its E.164 digits that its timezone table
  holds (for another, on the first digits), so each such key is answered once by
  :func:`etl.normalize.zones_for_number` and reused (:func:`zones_many`).

``tests/test_phonefast.py`` compares this path with plain ``phonenumbers`` on 200,000+ numbers of
every region the metadata knows.
"""

from __future__ import annotations

import re
import re._constants as sre_c
import re._parser as sre_parse
import threading
from collections.abc import Iterable, Sequence
from collections.abc import Mapping as AbcMapping
from typing import Any

import numpy as np
import phonenumbers
from phonenumbers import phonenumberutil as pnu
from phonenumbers import timezone as phone_timezone

from etl.normalize import PhoneResult, region_of, zones_for_number

__all__ = ["parse_many", "regions_many", "zones_many"]

#: A cell this path reads: ASCII digits with spaces, dots, hyphens and brackets, a leading ``+``.
SIMPLE = re.compile(r"\+?[0-9(][0-9 ().\-]*[0-9]")
_DROP = str.maketrans("", "", " ().-+")
_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)


class _Unsupported(Exception):
    """A pattern construct the automaton does not model (the country then takes the slow path)."""


class _Automaton:
    """A lazily built DFA over the digits 0–9 whose states record which patterns fully match.

    Patterns are parsed with Python's own regular-expression parser into a Thompson NFA; DFA
    states are sets of NFA states, made when first reached.
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[frozenset[int], int]]] = []
        self.accept: dict[int, int] = {}  # NFA end state -> pattern id
        starts = []
        for pid, pattern in enumerate(patterns):
            start = self._new()
            end = self._seq(sre_parse.parse(pattern), start)
            self.accept[end] = pid
            starts.append(start)
        self.sets: list[frozenset[int]] = []
        self.ids: dict[frozenset[int], int] = {}
        self.labels: list[frozenset[int]] = []
        self.trans = np.full((64, 10), -1, dtype=np.int32)
        self._state(frozenset())  # 0: dead
        self.start = self._state(self._closure(starts))
        self.lock = threading.Lock()

    # -- NFA ------------------------------------------------------------------------------
    def _new(self) -> int:
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1

    def _seq(self, items: Iterable[Any], start: int) -> int:
        cur = start
        for op, av in items:
            cur = self._one(op, av, cur)
        return cur

    def _edge(self, digits: set[int], start: int) -> int:
        end = self._new()
        self.edges[start].append((frozenset(digits), end))
        return end

    def _one(self, op: Any, av: Any, s: int) -> int:
        if op is sre_c.LITERAL:
            d = av - 48
            return self._edge({d} if 0 <= d <= 9 else set(), s)
        if op is sre_c.ANY:
            return self._edge(set(range(10)), s)
        if op is sre_c.IN:
            return self._edge(_class_digits(av), s)
        if op is sre_c.SUBPATTERN:
            return self._seq(av[-1], s)
        if op is sre_c.BRANCH:
            end = self._new()
            for alt in av[1]:
                a = self._new()
                self.eps[s].append(a)
                self.eps[self._seq(alt, a)].append(end)
            return end
        if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
            lo, hi, item = av
            cur = s
            for _ in range(lo):
                cur = self._seq(item, cur)
            if hi is sre_c.MAXREPEAT:
                loop = self._new()
                self.eps[cur].append(loop)
                self.eps[self._seq(item, loop)].append(loop)
                return loop
            ends = [cur]
            for _ in range(hi - lo):
                cur = self._seq(item, cur)
                ends.append(cur)
            end = self._new()
            for e in ends:
                self.eps[e].append(end)
            return end
        raise _Unsupported(str(op))

    def _closure(self, states: Iterable[int]) -> frozenset[int]:
        seen = set(states)
        todo = list(seen)
        while todo:
            for t in self.eps[todo.pop()]:
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        return frozenset(seen)

    # -- DFA ------------------------------------------------------------------------------
    def _state(self, nfa: frozenset[int]) -> int:
        found = self.ids.get(nfa)
        if found is not None:
            return found
        sid = len(self.sets)
        self.sets.append(nfa)
        self.ids[nfa] = sid
        self.labels.append(frozenset(self.accept[s] for s in nfa if s in self.accept))
        if sid >= len(self.trans):
            grown = np.full((len(self.trans) * 2, 10), -1, dtype=np.int32)
            grown[: len(self.trans)] = self.trans
            self.trans = grown
        if not nfa:
            self.trans[sid] = sid
        return sid

    def _step(self, sid: int, digit: int) -> int:
        targets = [t for s in self.sets[sid] for ds, t in self.edges[s] if digit in ds]
        nxt = self._state(self._closure(targets))
        self.trans[sid, digit] = nxt
        return nxt

    def run(self, matrix: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Final DFA state of each row of ``matrix`` (digits 0–9, uint8) read to its length."""
        with self.lock:
            state = np.full(len(lengths), self.start, dtype=np.int32)
            for pos in range(matrix.shape[1]):
                rows = np.nonzero((lengths > pos) & (state != 0))[0]
                if not len(rows):
                    break
                cur = state[rows]
                digits = matrix[rows, pos]
                nxt = self.trans[cur, digits]
                missing = nxt < 0
                if missing.any():
                    pairs = zip(cur[missing].tolist(), digits[missing].tolist(), strict=True)
                    for s, d in set(pairs):
                        self._step(s, d)
                    nxt = self.trans[cur, digits]
                state[rows] = nxt
            return state


def _class_digits(items: Any) -> set[int]:
    found: set[int] = set()
    negate = False
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            found.add(av - 48)
        elif op is sre_c.RANGE:
            found.update(range(av[0] - 48, av[1] - 47))
        elif op is sre_c.CATEGORY and av is sre_c.CATEGORY_DIGIT:
            found.update(range(10))
        else:
            raise _Unsupported(str(op))
    digits = {d for d in found if 0 <= d <= 9}
    return set(range(10)) - digits if negate else digits


def _matrix(strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """ASCII digit strings as a (rows, width) uint8 matrix of digit values, and their lengths."""
    width = max((len(s) for s in strings), default=1) or 1
    raw = np.array(strings, dtype=f"S{width}")
    matrix = raw.view(np.uint8).reshape(len(strings), width).copy()
    lengths = np.char.str_len(raw).astype(np.int32) if len(strings) else np.zeros(0, np.int32)
    matrix -= 48
    return matrix, lengths


class _Country:
    """Everything needed for one country calling code: its regions' patterns in one automaton."""

    def __init__(self, cc: int) -> None:
        self.cc = cc
        self.regions = list(pnu.COUNTRY_CODE_TO_REGION_CODE[cc])
        if "001" in self.regions:
            raise _Unsupported("non-geographic")
        patterns: list[str] = []
        self.general: dict[str, int] = {}
        for region in self.regions:
            meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
            if meta is None:
                raise _Unsupported(region)
            self.general[region] = len(patterns)
            general = meta.general_desc.national_number_pattern if meta.general_desc else None
            patterns.append(general or "(?!)")
            for name in _TYPES:
                desc = getattr(meta, name)
                pattern = desc.national_number_pattern if desc is not None else None
                if pattern:
                    patterns.append(pattern)
            if meta.leading_digits:
                patterns.append(f"(?:{meta.leading_digits})[0-9]*")
        if any("(?!)" == p for p in patterns):
            raise _Unsupported("empty general pattern")
        self.automaton = _Automaton(patterns)
        #: (label id, length) -> (region, valid, geographical) as phonenumbers answers
        self.answers: dict[tuple[frozenset[int], int], tuple[str | None, bool, bool]] = {}

    def labels(self, nsns: Sequence[str]) -> list[frozenset[int]]:
        if not nsns:
            return []
        matrix, lengths = _matrix(nsns)
        states = self.automaton.run(matrix, lengths)
        labels = self.automaton.labels
        return [labels[s] for s in states.tolist()]

    def answer(self, label: frozenset[int], nsn: str) -> tuple[str | None, bool, bool]:
        key = (label, len(nsn))
        found = self.answers.get(key)
        if found is None:
            number = phonenumbers.PhoneNumber(country_code=self.cc, national_number=int(nsn))
            pnu._set_italian_leading_zeros_for_phone_number(nsn, number)
            kind = phonenumbers.number_type(number)
            found = (
                phonenumbers.region_code_for_number(number),
                phonenumbers.is_valid_number(number),
                pnu.is_number_type_geographical(kind, self.cc),
            )
            self.answers[key] = found
        return found


_COUNTRIES: dict[int, _Country | None] = {}
_COUNTRIES_LOCK = threading.Lock()


def _country(cc: int) -> _Country | None:
    with _COUNTRIES_LOCK:
        if cc not in _COUNTRIES:
            try:
                _COUNTRIES[cc] = _Country(cc)
            except (_Unsupported, re.error, RecursionError):
                _COUNTRIES[cc] = None
        return _COUNTRIES[cc]


class _Region:
    """The default region's rules used while parsing a number written without ``+``."""

    def __init__(self, meta: Any) -> None:
        self.meta = meta
        self.cc = meta.country_code
        self.cc_text = str(meta.country_code)
        self.code = str(meta.id)
        self.idd = re.compile(meta.international_prefix) if meta.international_prefix else None
        prefix = meta.national_prefix_for_parsing
        self.np = re.compile(prefix) if prefix else None
        self.rewrites = bool(meta.national_prefix_transform_rule)
        self.lengths: dict[int, Any] = {}

    def length_result(self, n: int) -> Any:
        """``_test_number_length`` of a number of ``n`` digits (it depends on nothing else)."""
        found = self.lengths.get(n)
        if found is None:
            found = self.lengths[n] = pnu._test_number_length("0" * n, self.meta)
        return found


_REGIONS: dict[str, _Region | None] = {}


def _region(code: str) -> _Region | None:
    if code not in _REGIONS:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(code)
        _REGIONS[code] = _Region(meta) if meta is not None else None
    return _REGIONS[code]


_MAIN: dict[int, _Region | None] = {}


def _main_region(cc: int) -> _Region | None:
    found = _MAIN.get(cc, False)
    if found is False:
        found = _MAIN[cc] = _region(phonenumbers.region_code_for_country_code(cc))
    return found  # type: ignore[return-value]


_CC = {str(cc): cc for cc in pnu.COUNTRY_CODE_TO_REGION_CODE}
_SHORT = {
    pnu.ValidationResult.TOO_SHORT,
    pnu.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    pnu.ValidationResult.INVALID_LENGTH,
}


def _strip_end(region: _Region, number: str) -> int | None:
    """Where ``national_prefix_for_parsing`` ends in ``number`` (``None``: no match)."""
    if region.np is None or not number:
        return None
    match = region.np.match(number)
    return match.end() if match else None


def parse_many(cells: Sequence[str | None], regions: Sequence[str | None]) -> list[Any]:
    """The :class:`etl.normalize.PhoneResult` of each valid number this path can read.

    Args:
        cells: cleaned cells (trimmed text, or ``None``).
        regions: each cell's default region (ISO 3166, upper case) or ``None``.

    Returns:
        One item per cell: a ``PhoneResult`` (E.164, region, no extension) or ``None`` (empty,
        another form, invalid, or undecided: ask :func:`etl.normalize.parse_phone`).
    """
    return [None if found is None else found[0] for found in _parse(cells, regions)]


#: A number on its way: (index, digits, national digits, 0 written with +/IDD or 1 national,
#: the rules it is parsed with, the main region of its country code).
_Item = tuple[int, str, str, int, "_Region", "_Region"]


def _parse(cells: Sequence[str | None], regions: Sequence[str | None]) -> list[Any]:
    """:func:`parse_many`, with whether each number's type is geographical: ``(result, geo)``."""
    if len(_KNOWN) > _KNOWN_MAX:  # a new generation; the last one still answers
        _KNOWN_OLD.clear()
        _KNOWN_OLD.update(_KNOWN)
        _KNOWN.clear()
    out: list[Any] = [None] * len(cells)
    # 1. the country code, and the rules (default region, main region of the code) that apply
    pending: dict[int, list[_Item]] = {}
    for i, (cell, region_code) in enumerate(zip(cells, regions, strict=True)):
        if not cell or not SIMPLE.fullmatch(cell):
            continue
        digits = cell.translate(_DROP)
        if len(digits) < 3 or len(digits) > 20:
            continue
        item = _international(i, digits) if cell[0] == "+" else _national(i, digits, region_code)
        if item is not None:
            pending.setdefault(item[5].cc, []).append(item)
    # 2. per country code, the pattern matches of every string a step of parse() tests, at once
    for cc, items in pending.items():
        country = _country(cc)
        if country is not None:
            _settle(country, items, out)
    return out


def _international(i: int, digits: str) -> _Item | None:
    """A number written after ``+`` (or the default region's international prefix)."""
    if digits[0] == "0":
        return None
    cc = _CC.get(digits[:1]) or _CC.get(digits[:2]) or _CC.get(digits[:3])
    if cc is None:
        return None
    main = _main_region(cc)
    if main is None or main.rewrites:
        return None
    national = digits[len(str(cc)) :]
    if len(national) < 2:
        return None
    return (i, digits, national, 0, main, main)


def _national(i: int, digits: str, region_code: str | None) -> _Item | None:
    """A number written without ``+``, read in its row's region."""
    if not region_code:
        return None
    home = _region(region_code)
    if home is None or home.rewrites:
        return None
    match = home.idd.match(digits) if home.idd is not None else None
    if match and digits[match.end() : match.end() + 1] != "0":
        # the region's international prefix (``0044 …`` in GB): parse() strips it and reads the
        # rest as after a ``+`` (_maybe_strip_i18n_prefix_and_normalize); two digits or fewer
        # after it is TOO_SHORT_AFTER_IDD, whose reason the slow path gives
        rest = digits[match.end() :]
        return _international(i, rest) if len(rest) > 2 else None
    main = _main_region(home.cc)
    if main is None or main.rewrites:
        return None
    return (i, digits, digits, 1, home, main)


def _settle(country: _Country, items: list[_Item], out: list[Any]) -> None:
    """The answers of one country code's numbers into ``out`` (valid ones only)."""
    asked: dict[str, None] = {}
    # the usual case decided at once: no national prefix to strip (and, written without +,
    # not starting with the country code): parse() keeps the digits as they are
    direct: list[str | None] = []
    for _, digits, national, kind, home, main in items:
        nsn = None
        if kind == 0:
            nsn = national if _strip_end(main, national) is None else None
        elif not digits.startswith(home.cc_text) and _strip_end(home, digits) is None:
            nsn = digits
        direct.append(nsn)
        for s in [nsn] if nsn is not None else _plan(digits, national, kind, home, main):
            asked[s] = None
    suffixes = list(asked)
    label_of = dict(zip(suffixes, country.labels(suffixes), strict=True))
    for (i, digits, national, kind, home, main), nsn in zip(items, direct, strict=True):
        plain = nsn is not None and (kind == 0 or home is main)
        if nsn is None:
            nsn = _decide(digits, national, kind, home, main, country, label_of)
        if len(nsn) < 2 or len(nsn) > 17:
            continue
        region, valid, geo = country.answer(label_of[nsn], nsn)
        if valid:
            result = PhoneResult(f"+{country.cc}{nsn}", region, None)
            out[i] = (result, geo)
            if plain or _strip_end(main, nsn) is None:
                # parse(e164) reads the same digits again (no national prefix to strip), so
                # zones_many and regions_many may answer this number without parsing it
                _KNOWN[result.e164] = (result, geo)


def _strip_candidates(region: _Region, number: str) -> list[str]:
    end = _strip_end(region, number)
    return [number] if end is None else [number, number[end:]]


def _plan(digits: str, national: str, kind: int, home: _Region, main: _Region) -> list[str]:
    """Every string whose general-pattern match :func:`_decide` tests, and its outcomes."""
    wanted: list[str] = []
    if kind == 1:
        if digits.startswith(home.cc_text):
            wanted.append(digits)
            for potential in _strip_candidates(home, digits[len(home.cc_text) :]):
                wanted += _strip_candidates(main, potential)
        wanted += _strip_candidates(home, digits)
    else:
        wanted += _strip_candidates(main, national)
    return wanted


def _gen(region: _Region, country: _Country, label_of: dict[str, frozenset[int]], s: str) -> bool:
    """``_match_national_number(s, general_desc)`` of ``region``."""
    label = label_of.get(s)
    if label is None:  # not planned (cannot happen for the forms read here): ask the automaton
        label = label_of[s] = country.labels([s])[0]
    return country.general[region.code] in label


def _strip(
    region: _Region, number: str, country: _Country, label_of: dict[str, frozenset[int]]
) -> str:
    """``_maybe_strip_national_prefix_carrier_code(number, metadata)[1]`` (no transform rule)."""
    end = _strip_end(region, number)
    if end is None:
        return number
    stripped = number[end:]
    if _gen(region, country, label_of, number) and not _gen(region, country, label_of, stripped):
        return number
    return stripped


def _decide(
    digits: str,
    national: str,
    kind: int,
    home: _Region,
    main: _Region,
    country: _Country,
    label_of: dict[str, frozenset[int]],
) -> str:
    """The national significant number ``parse`` ends with."""
    metadata = main
    if kind == 1:
        metadata = home
        if digits.startswith(home.cc_text):
            potential = _strip(home, digits[len(home.cc_text) :], country, label_of)
            if (
                not _gen(home, country, label_of, digits)
                and _gen(home, country, label_of, potential)
            ) or home.length_result(len(digits)) == pnu.ValidationResult.TOO_LONG:
                national = potential
                metadata = main  # the country code was found: its main region's rules
    potential = _strip(metadata, national, country, label_of)
    if metadata.length_result(len(potential)) not in _SHORT:
        national = potential
    return national


def zones_many(e164s: Sequence[str]) -> list[tuple[str, ...]]:
    """:func:`etl.normalize.zones_for_number` of valid E.164 numbers, answered once per key.

    ``zones_for_number`` parses the number again and calls ``time_zones_for_number``: for a
    geographical number type that returns the entry of ``phonenumbers.timezone.TIMEZONE_DATA``
    under the longest prefix of the E.164 digits it holds (``time_zones_for_geographical_number``),
    for another type the country's zones, read from the first
    ``TIMEZONE_LONGEST_PREFIX`` digits at most; the North American widening reads the area code.
    So the answer for the first number with a given key is the answer for all of them: (table
    prefix, area code) for a geographical number, (first digits) for another.
    """
    width = 1 + int(phone_timezone.TIMEZONE_LONGEST_PREFIX)  # type: ignore[attr-defined]
    parsed = _parse_e164(e164s)
    out: list[tuple[str, ...]] = []
    for e164, found in zip(e164s, parsed, strict=True):
        if found is None:
            out.append(zones_for_number(e164))
            continue
        key: tuple[str | None, ...]
        if found[1]:
            area = e164[2:5] if e164.startswith("+1") else ""
            key = (_table_prefix(e164, width), area)
        else:
            key = (e164[:width],)
        zones = _ZONES.get(key)
        if zones is None:
            zones = _ZONES[key] = zones_for_number(e164)
        out.append(zones)
    return out


def _table_prefix(e164: str, width: int) -> str | None:
    """The key ``time_zones_for_geographical_number`` reads for ``e164`` (``None``: none)."""
    for end in range(width, 1, -1):
        if e164[1:end] in _TZ_DATA:
            return e164[1:end]
    return None


def regions_many(e164s: Sequence[str], known: AbcMapping[str, str] | None = None) -> list[str]:
    """:func:`etl.normalize.region_of` of E.164 numbers, many at once.

    ``known``: E.164 → region already worked out (a checked chunk's
    :attr:`etl.validate.ValidatedChunk.regions`); the others are parsed here.
    """
    if known:
        missing = [e for e in e164s if e not in known]
        found = dict(zip(missing, regions_many(missing), strict=True)) if missing else {}
        return [known[e] if e in known else found[e] for e in e164s]
    return [
        (found.region or "ZZ") if found is not None else region_of(e164)
        for e164, found in zip(
            e164s, [None if f is None else f[0] for f in _parse_e164(e164s)], strict=True
        )
    ]


def _parse_e164(e164s: Sequence[str]) -> list[Any]:
    """``_parse`` of E.164 numbers, from the numbers parsed lately where it knows them."""
    known = [_KNOWN.get(e) or _KNOWN_OLD.get(e) for e in e164s]
    missing = [i for i, found in enumerate(known) if found is None]
    if missing:
        parsed = _parse([e164s[i] for i in missing], [None] * len(missing))
        for i, found in zip(missing, parsed, strict=True):
            known[i] = found
    return known


#: E.164 → (PhoneResult, geographical) of numbers parsed lately whose E.164 form parses to the
#: same number, in two generations of at most ``_KNOWN_MAX`` (when the new one is full it
#: becomes the old one), so memory does not grow with the run and the numbers of the last
#: ``_KNOWN_MAX`` parsed are always there (a chunk's numbers, between its parse and its zones).
_KNOWN: dict[str, tuple[Any, bool]] = {}
_KNOWN_OLD: dict[str, tuple[Any, bool]] = {}
_KNOWN_MAX = 60_000


_ZONES: dict[tuple[str | None, ...], tuple[str, ...]] = {}
_TZ_DATA = phone_timezone.TIMEZONE_DATA  # type: ignore[attr-defined]
