"""libphonenumber's answers for many phone numbers at once, for the forms nearly all cells take.

:func:`parse_many` takes cells such as ``+14155552671``, ``(415) 555-2671``, ``415.555.2671``,
``020 7946 0958`` (with the row's region) and returns, for each, the :class:`PhoneResult` that
:func:`etl.normalize.parse_phone` would return for a *valid* number, or ``None`` when this path
cannot decide (any other form, an invalid number, a number whose digits the region's
national-prefix rule rewrites: a carrier code in Brazil, a local number in the Caribbean): the
caller then asks :func:`etl.normalize.parse_phone`, so reasons for bad numbers always come from
the one slow path.

How it stays identical to ``phonenumbers`` (the source of every rule here):

* The steps of ``phonenumbers.parse`` for a cell of ASCII digits, spaces, ``().-`` and a leading
  ``+`` are followed one by one with the library's own metadata and compiled patterns: the IDD
  (``international_prefix``) and the country code of the default region, the national prefix
  (``national_prefix_for_parsing``), the possible lengths (``phonenumbers``' own
  ``_test_number_length``). Each step is taken for all numbers of a call at once: the digits
  are a numpy matrix, a number is ``(row, start)`` in it, the branches of ``parse`` are boolean
  masks; only the prefix patterns' ``match`` runs per number (in C, through ``re``).
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
from itertools import compress
from typing import Any, cast

import numpy as np
import pandas as pd
import phonenumbers
from phonenumbers import phonenumberutil as pnu
from phonenumbers import timezone as phone_timezone

from etl.normalize import PhoneResult, region_of, zones_for_number

__all__ = ["e164_many", "e164_with_extensions", "parse_many", "regions_many", "zones_many"]

#: A cell this path reads: ASCII digits with spaces, dots, hyphens and brackets, a leading ``+``.
SIMPLE = re.compile(r"\+?[0-9(][0-9 ().\-]*[0-9]")
_DROP = b" ().-+"
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
        #: pattern id -> whether it fully matches, by automaton state (as far as built)
        self.flags: dict[int, np.ndarray] = {}

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
        transform = bool(meta.national_prefix_transform_rule) and self.np is not None
        #: a national prefix rule that rewrites digits (``national_prefix_transform_rule``) when
        #: its pattern's last group takes part in the match (Brazil's carrier codes, the
        #: Caribbean's seven-digit local numbers): such a number is left to ``parse`` itself
        self.transform = transform and self.np is not None and self.np.groups > 0
        #: a rewrite rule this path does not model at all (a pattern without groups)
        self.rewrites = transform and not self.transform
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
_CC = {str(cc): cc for cc in pnu.COUNTRY_CODE_TO_REGION_CODE}
_SHORT = {
    pnu.ValidationResult.TOO_SHORT,
    pnu.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    pnu.ValidationResult.INVALID_LENGTH,
}
_TOO_LONG = {pnu.ValidationResult.TOO_LONG}


def _cc_table() -> tuple[np.ndarray, np.ndarray]:
    """For each three digits ``abc`` a number starts with: the country code ``parse`` reads
    there (one digit, else two, else three: ``_extract_country_code``), ``0`` for none, and its
    length."""
    codes = np.zeros(1000, dtype=np.int32)
    sizes = np.zeros(1000, dtype=np.int32)
    for n in range(1000):
        text = f"{n:03d}"
        for size in (1, 2, 3):
            cc = _CC.get(text[:size])
            if cc:
                codes[n], sizes[n] = cc, size
                break
    return codes, sizes


_CC_CODES, _CC_SIZES = _cc_table()


class _Batch:
    """The simple cells of one call on their way through ``parse``'s steps.

    ``digits[k]`` is the k-th cell's digits (str), ``matrix[k]``/``lengths[k]`` the same as
    digit values (uint8) and their count; a number is addressed as ``(row, start)``: the digits
    of row ``row`` from ``start`` on.
    """

    def __init__(self, digits: list[str]) -> None:
        self.digits = digits
        self.matrix, self.lengths = _matrix(digits)

    def texts(self, rows: np.ndarray, starts: np.ndarray) -> list[str]:
        digits = self.digits
        return [
            digits[r][s:] if s else digits[r]
            for r, s in zip(rows.tolist(), starts.tolist(), strict=True)
        ]

    def states(self, country: _Country, rows: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """The final state of ``country``'s automaton for each number ``(row, start)``."""
        lengths = self.lengths[rows] - starts
        width = max(int(lengths.max()), 1) if len(rows) else 1
        last = self.matrix.shape[1] - 1
        cols = np.minimum(starts[:, None] + np.arange(width)[None, :], last)
        return country.automaton.run(self.matrix[rows[:, None], cols], lengths)

    def general(
        self, country: _Country, rules: _Region, rows: np.ndarray, starts: np.ndarray
    ) -> np.ndarray:
        """``_match_national_number(number, rules.general_desc)`` of each ``(row, start)``."""
        return _has(country, self.states(country, rows, starts), country.general[rules.code])


def _has(country: _Country, states: np.ndarray, pattern: int) -> np.ndarray:
    """Whether pattern ``pattern`` fully matches, for each final state of the automaton."""
    labels = country.automaton.labels
    flags = country.flags.get(pattern)
    if flags is None or len(flags) < len(labels):  # states were added since
        flags = np.array([pattern in label for label in labels], dtype=np.bool_)
        country.flags[pattern] = flags
    found: np.ndarray = flags[states]
    return found


def _length_in(rules: _Region, counts: np.ndarray, results: set[Any]) -> np.ndarray:
    """Whether ``_test_number_length`` of a number of each length of ``counts`` (at most 20)
    is in ``results``."""
    table = np.array([rules.length_result(n) in results for n in range(21)], dtype=np.bool_)
    found: np.ndarray = table[counts]
    return found


def _strip(
    batch: _Batch, country: _Country, rules: _Region, rows: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_maybe_strip_national_prefix_carrier_code(number, rules)[1]`` of each number
    ``(row, start)``, as its new start: the national prefix is stripped unless the number fits
    the general pattern and what is left does not; whether the national prefix for parsing did
    not match at all; and whether ``rules``' transform rule rewrites the number's digits (its
    pattern's last group took part in the match: the new start is then meaningless, and the
    number is left to ``parse``)."""
    out = starts.copy()
    if rules.np is None or not len(rows):
        return out, np.ones(len(rows), dtype=np.bool_), np.zeros(len(rows), dtype=np.bool_)
    match = rules.np.match
    found = [match(t) for t in batch.texts(rows, starts)]
    ends = np.array([m.end() if m else -1 for m in found], dtype=np.int32)
    if rules.transform:
        last = rules.np.groups
        rewrites = np.array([m is not None and m.group(last) is not None for m in found])
    else:
        rewrites = np.zeros(len(rows), dtype=np.bool_)
    hit = np.nonzero(ends >= 0)[0]
    if len(hit):
        r, s = rows[hit], starts[hit]
        e = s + ends[hit]
        keep = batch.general(country, rules, r, s) & ~batch.general(country, rules, r, e)
        out[hit] = np.where(keep, s, e)
    return out, ends < 0, rewrites


def _national_number(
    batch: _Batch, country: _Country, rules: _Region, rows: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the national significant number ``parse`` ends with starts, read with ``rules``
    from ``start``: the national prefix stripped, unless what is left is too short for it;
    whether the national prefix for parsing did not match at all; and whether the digits are
    rewritten (:func:`_strip`: such a number has no answer here)."""
    stripped, plain, rewrites = _strip(batch, country, rules, rows, starts)
    short = _length_in(rules, batch.lengths[rows] - stripped, _SHORT)
    return np.where(short, starts, stripped), plain, rewrites


#: Numbers on their way: rules region -> parts of (rows, start of the national number).
_Pending = dict[_Region, list[tuple[np.ndarray, np.ndarray]]]


def _plan_international(
    batch: _Batch, rows: np.ndarray, starts: np.ndarray, pending: _Pending
) -> None:
    """Numbers written after ``+`` (or an international prefix ending at ``starts``): the
    country code there, and the national number after it, read with the code's main region."""
    enough = batch.lengths[rows] - starts >= 3
    rows, starts = rows[enough], starts[enough]
    m = batch.matrix
    three = m[rows, starts].astype(np.int32) * 100 + m[rows, starts + 1] * 10 + m[rows, starts + 2]
    codes, sizes = _CC_CODES[three], _CC_SIZES[three]
    for cc in np.unique(codes[codes > 0]).tolist():
        main = _main_region(cc)
        if main is None or main.rewrites:
            continue
        sel = np.nonzero(codes == cc)[0]
        national = starts[sel] + sizes[sel]
        fit = batch.lengths[rows[sel]] - national >= 2
        pending.setdefault(main, []).append((rows[sel][fit], national[fit]))


def _plan_national(batch: _Batch, rows: np.ndarray, code: str, pending: _Pending) -> None:
    """Numbers written without ``+`` in region ``code``: with its international prefix (read as
    after a ``+``), starting with its country code, or national."""
    home = _region(code)
    if home is None or home.rewrites:
        return
    if home.idd is not None:
        match = home.idd.match
        texts = [batch.digits[k] for k in rows.tolist()]
        ends = np.array([m.end() if (m := match(t)) else -1 for t in texts], dtype=np.int32)
        hit = np.nonzero(ends >= 0)[0]
        if len(hit):
            r, e = rows[hit], ends[hit]
            last = batch.matrix.shape[1] - 1
            after = np.where(e < batch.lengths[r], batch.matrix[r, np.minimum(e, last)], 255)
            # the prefix (``0044 …`` in GB) is stripped and the rest read as after a ``+``
            # (_maybe_strip_i18n_prefix_and_normalize), unless a 0 follows it; two digits or
            # fewer after it is TOO_SHORT_AFTER_IDD, whose reason the slow path gives
            idd = after != 0
            more = batch.lengths[r] - e > 2
            _plan_international(batch, r[idd & more], e[idd & more], pending)
            rows = np.concatenate([np.delete(rows, hit), r[~idd]])
    main = _main_region(home.cc)
    country = _country(home.cc)
    if main is None or main.rewrites or country is None or not len(rows):
        return
    size = len(home.cc_text)
    with_cc = np.ones(len(rows), dtype=bool)
    for n, digit in enumerate(home.cc_text):
        with_cc &= batch.matrix[rows, n] == int(digit)
    plain = rows[~with_cc]
    pending.setdefault(home, []).append((plain, np.zeros(len(plain), dtype=np.int32)))
    if with_cc.any():
        _plan_country_code(batch, country, home, main, rows[with_cc], size, pending)


def _plan_country_code(
    batch: _Batch,
    country: _Country,
    home: _Region,
    main: _Region,
    rows: np.ndarray,
    size: int,
    pending: _Pending,
) -> None:
    """National numbers that start with their country code (``1 415 555 2671`` in US): the code
    is taken as one when the whole number does not fit the general pattern and what follows it
    (national prefix stripped) does, or when the whole is too long
    (``_maybe_extract_country_code``)."""
    after, _, rewrites = _strip(
        batch, country, home, rows, np.full(len(rows), size, dtype=np.int32)
    )
    rows, after = rows[~rewrites], after[~rewrites]  # what follows the code is rewritten
    whole = batch.general(country, home, rows, np.zeros(len(rows), dtype=np.int32))
    fits = batch.general(country, home, rows, after)
    too_long = _length_in(home, batch.lengths[rows], _TOO_LONG)
    cut = (~whole & fits) | too_long
    pending.setdefault(main, []).append((rows[cut], after[cut]))
    pending.setdefault(home, []).append((rows[~cut], np.zeros(int((~cut).sum()), dtype=np.int32)))


#: A valid number's (region, geographical); one tuple per distinct answer, shared.
_Answer = tuple[str | None, bool]
#: Each cell's E.164 and answer (``None`` and ``None``: empty, another form, invalid, undecided).
_Parsed = tuple[list[str | None], list[_Answer | None]]


def _parse(cells: Sequence[str | None], regions: Sequence[str | None]) -> _Parsed:
    """The E.164 and answer of each valid number this path reads, worked out array-wise;
    remembered in :data:`_KNOWN` when the E.164 form parses to the same number."""
    if len(_KNOWN) > _KNOWN_MAX:  # a new generation; the last one still answers
        _KNOWN_OLD.clear()
        _KNOWN_OLD.update(_KNOWN)
        _KNOWN.clear()
    out: _Parsed = ([None] * len(cells), [None] * len(cells))
    fullmatch = SIMPLE.fullmatch
    take = [i for i, cell in enumerate(cells) if cell and fullmatch(cell)]
    texts = cast(list[str], [cells[i] for i in take])
    # the cells are ASCII without line breaks (SIMPLE): their punctuation is dropped in one pass
    digits = "\n".join(texts).encode("ascii").translate(None, _DROP).decode("ascii").split("\n")
    sizes = np.fromiter(map(len, digits), dtype=np.int32, count=len(digits))
    fit = np.nonzero((sizes >= 3) & (sizes <= 20))[0].tolist()
    if len(fit) < len(take):
        take = [take[k] for k in fit]
        texts = [texts[k] for k in fit]
        digits = [digits[k] for k in fit]
    if not take:
        return out
    batch = _Batch(digits)
    pending: _Pending = {}
    # 1. the country code, and the rules (default region, main region of the code) that apply
    plus = np.array([text[0] == "+" for text in texts], dtype=np.bool_)
    rows = np.nonzero(plus)[0]
    _plan_international(batch, rows, np.zeros(len(rows), dtype=np.int32), pending)
    national = np.nonzero(~plus)[0]
    codes, names = pd.factorize(pd.Series([regions[take[k]] for k in national], dtype=object))
    for n, code in enumerate(names):
        if code:
            _plan_national(batch, national[codes == n], str(code), pending)
    # 2. per rules region, the national number; per country code, the answers
    for rules, parts in pending.items():
        country = _country(rules.cc)
        if country is not None:
            rows = np.concatenate([p[0] for p in parts])
            starts = np.concatenate([p[1] for p in parts]).astype(np.int32)
            nsn, plain, rewrites = _national_number(batch, country, rules, rows, starts)
            same = plain & (rules is _main_region(rules.cc))
            keep = ~rewrites
            _answer(batch, country, (rows[keep], nsn[keep], same[keep]), take, out)
    return out


def _answer(
    batch: _Batch,
    country: _Country,
    found: tuple[np.ndarray, np.ndarray, np.ndarray],
    take: list[int],
    out: _Parsed,
) -> None:
    """The answers of national numbers ``found`` (rows, where each starts, whether ``parse``
    of its E.164 form surely reads the same digits) of ``country`` into ``out``: the region,
    validity and type of each distinct (automaton state, length) asked once."""
    rows, nsn, same = found
    counts = batch.lengths[rows] - nsn
    fit = (counts >= 2) & (counts <= 17)
    rows, nsn, same, counts = rows[fit], nsn[fit], same[fit], counts[fit]
    if not len(rows):
        return
    states = batch.states(country, rows, nsn)
    inverse, first = _groups(states.astype(np.int64) * 64 + counts)
    labels = country.automaton.labels
    answers = [
        country.answer(labels[state], text)
        for state, text in zip(
            states[first].tolist(), batch.texts(rows[first], nsn[first]), strict=True
        )
    ]
    valid = np.array([a[1] for a in answers], dtype=np.bool_)[inverse]
    rows, nsn, same, inverse = rows[valid], nsn[valid], same[valid], inverse[valid]
    prefix = f"+{country.cc}"
    texts = batch.texts(rows, nsn)
    parts = [(a[0], a[2]) for a in answers]
    e164s = [prefix + t for t in texts]
    kinds = [parts[a] for a in inverse.tolist()]
    numbers, answered = out
    for row, e164, kind in zip(rows.tolist(), e164s, kinds, strict=True):
        numbers[take[row]] = e164
        answered[take[row]] = kind
    # parse(e164) reads the same digits again when it has no national prefix to strip, so
    # zones_many and regions_many may answer such a number without parsing it
    main = _main_region(country.cc)
    if main is not None and main.np is not None and not same.all():
        match = main.np.match
        same = same | np.array([match(t) is None for t in texts], dtype=np.bool_)
    _KNOWN.update(zip(compress(e164s, same), compress(kinds, same), strict=True))


def parse_many(cells: Sequence[str | None], regions: Sequence[str | None]) -> list[Any]:
    """The :class:`etl.normalize.PhoneResult` of each valid number this path can read.

    Args:
        cells: cleaned cells (trimmed text, or ``None``).
        regions: each cell's default region (ISO 3166, upper case) or ``None``.

    Returns:
        One item per cell: a ``PhoneResult`` (E.164, region, no extension) or ``None`` (empty,
        another form, invalid, or undecided: ask :func:`etl.normalize.parse_phone`).
    """
    numbers, answered = _parse(cells, regions)
    return [
        None if e164 is None or a is None else PhoneResult(e164, a[0], None)
        for e164, a in zip(numbers, answered, strict=True)
    ]


def e164_many(cells: Sequence[object], regions: Sequence[str | None]) -> list[str | None]:
    """:func:`parse_many`'s E.164 of each cell as read (``None`` where it has no answer).

    A cell is trimmed with ``str.strip``, not :func:`etl.values.clean`: where what is left is a
    form this path reads (it starts and ends with ``+``, ``(`` or an ASCII digit), both trim
    the same whitespace; a cell with a zero-width character at an end is left to the caller.
    """
    trimmed = [cell.strip() if type(cell) is str else None for cell in cells]
    return _parse(trimmed, regions)[0]


#: A cell of the simple forms followed by an extension as people write it (`` x123``,
#: ``ext. 12``, ``, ext 5``, `` #45``): ``parse`` strips that tail with its extension patterns
#: (the first of them that matches to the end starts at the comma or space before the label,
#: so what is left is the number as written) and reads the rest as it reads it alone.
_EXTENDED = re.compile(r"(\+?[0-9(][0-9 ().\-]*[0-9]),? ?(?:x|ext\.?|#) ?([0-9]{1,5})", re.I)


def e164_with_extensions(
    cells: Sequence[object], regions: Sequence[str | None]
) -> tuple[list[str | None], list[str | None]]:
    """:func:`e164_many`, and for a cell that is such a number followed by an extension
    (``415-555-2671 x12``, ``+61 420 546 669 ext. 7725``) the number's E.164 and the
    extension's digits as ``parse`` gives them.

    Returns:
        ``(E.164 or None, extension or None)`` of each cell (``None`` where this path has no
        answer: ask :func:`etl.normalize.parse_phone`).
    """
    trimmed = [cell.strip() if type(cell) is str else None for cell in cells]
    numbers = _parse(trimmed, regions)[0]
    extensions: list[str | None] = [None] * len(numbers)
    fullmatch = _EXTENDED.fullmatch
    tails = [
        (n, found)
        for n, e164 in enumerate(numbers)
        if e164 is None and (cell := trimmed[n]) and (found := fullmatch(cell))
    ]
    if tails:
        bases = _parse([m.group(1) for _, m in tails], [regions[n] for n, _ in tails])[0]
        for (n, found), e164 in zip(tails, bases, strict=True):
            if e164 is not None:
                numbers[n], extensions[n] = e164, found.group(2)
    return numbers, extensions


def zones_many(e164s: Sequence[str]) -> list[tuple[str, ...]]:
    """:func:`etl.normalize.zones_for_number` of valid E.164 numbers, answered once per key.

    ``zones_for_number`` parses the number again and calls ``time_zones_for_number``: for a
    geographical number type that returns the entry of ``phonenumbers.timezone.TIMEZONE_DATA``
    under the longest prefix of the E.164 digits it holds (``time_zones_for_geographical_number``),
    for another type the country's zones, read from the first
    ``TIMEZONE_LONGEST_PREFIX`` digits at most; the North American widening reads the area code.
    So the answer for the first number with a given key is the answer for all of them: (table
    prefix, area code) for a geographical number, (first digits) for another. The keys are
    worked out array-wise (:func:`_zone_keys`).
    """
    parsed = _parse_e164(e164s)
    out: list[Any] = [None] * len(e164s)
    rows: list[int] = []
    for n, found in enumerate(parsed):
        if found is None:
            out[n] = zones_for_number(e164s[n])
        else:
            rows.append(n)
    if rows:
        numbers = [e164s[n] for n in rows]
        geo = np.array([cast(_Answer, parsed[n])[1] for n in rows], dtype=np.bool_)
        inverse, first = _groups(_zone_keys(numbers, geo))
        answers = [_zones_of(numbers[f], bool(geo[f])) for f in first.tolist()]
        for n, a in zip(rows, inverse.tolist(), strict=True):
            out[n] = answers[a]
    return out


def _zones_of(e164: str, geo: bool) -> tuple[str, ...]:
    """The zones of ``e164`` through the cache of its key (see :func:`zones_many`)."""
    width = _TZ_WIDTH
    key: tuple[str | None, ...]
    if geo:
        key = (_table_prefix(e164, width), e164[2:5] if e164.startswith("+1") else "")
    else:
        key = (e164[:width],)
    zones = _ZONES.get(key)
    if zones is None:
        zones = _ZONES[key] = zones_for_number(e164)
    return zones


def _zone_keys(e164s: list[str], geo: np.ndarray) -> np.ndarray:
    """One integer per number, equal for two numbers exactly when their keys of
    :func:`zones_many` are: (geographical, the prefix read, the area code read), each prefix
    coded as its digit count and value (E.164 digits never start with 0)."""
    width = _TZ_WIDTH
    matrix, counts = _matrix([e[1:] for e in e164s])
    n = len(e164s)
    # value[:, j]: the number of e164[1 : 1 + j], whose digit count is min(j, counts)
    value = np.zeros((n, width), dtype=np.int64)
    for j in range(1, width):
        more = counts >= j
        value[:, j] = np.where(
            more, value[:, j - 1] * 10 + matrix[:, min(j - 1, matrix.shape[1] - 1)], value[:, j - 1]
        )
    code = np.minimum(np.arange(width)[None, :], counts[:, None]) * _TZ_SCALE + value
    # the longest prefix (at most width - 1 digits) that TIMEZONE_DATA holds, else -1
    table = np.full(n, -1, dtype=np.int64)
    last = len(_TZ_CODES) - 1
    for j in range(width - 1, 0, -1):
        at = np.minimum(np.searchsorted(_TZ_CODES, code[:, j]), last)  # _TZ_CODES is sorted
        hit = (table < 0) & (_TZ_CODES[at] == code[:, j])
        table[hit] = code[hit, j]
    nanp = np.array([e.startswith("+1") for e in e164s], dtype=bool)
    area = np.where(nanp & geo, code[:, min(4, width - 1)], 0)
    read = np.where(geo, table, code[:, width - 1])
    # one integer per distinct (geographical, prefix read, area code)
    prefixes = pd.factorize(read)[0].astype(np.int64)
    areas = pd.factorize(area)[0].astype(np.int64)
    keys: np.ndarray = (geo.astype(np.int64) * (n + 1) + prefixes) * (n + 1) + areas
    return keys


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The group of each key (equal keys, one group) and each group's first position."""
    codes = pd.factorize(keys)[0]
    if not len(codes):
        return codes, codes
    # groups are numbered in order of first appearance: a first is a new highest number
    seen = np.maximum.accumulate(codes)
    first = np.nonzero(np.r_[True, codes[1:] > seen[:-1]])[0]
    return codes, first


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
        (found[0] or "ZZ") if found is not None else region_of(e164)
        for e164, found in zip(e164s, _parse_e164(e164s), strict=True)
    ]


def _parse_e164(e164s: Sequence[str]) -> list[_Answer | None]:
    """``_parse`` of E.164 numbers, from the numbers parsed lately where it knows them."""
    known = [_KNOWN.get(e) or _KNOWN_OLD.get(e) for e in e164s]
    missing = [i for i, found in enumerate(known) if found is None]
    if missing:
        parsed = _parse([e164s[i] for i in missing], [None] * len(missing))[1]
        for i, found in zip(missing, parsed, strict=True):
            known[i] = found
    return known


#: E.164 → answer of numbers parsed lately whose E.164 form parses to the same number, in two
#: generations of at most ``_KNOWN_MAX`` (when the new one is full it becomes the old one), so
#: memory does not grow with the run and the numbers of the last ``_KNOWN_MAX`` parsed are
#: always there (a chunk's numbers, between its parse and its zones).
_KNOWN: dict[str, _Answer] = {}
_KNOWN_OLD: dict[str, _Answer] = {}
_KNOWN_MAX = 60_000


_ZONES: dict[tuple[str | None, ...], tuple[str, ...]] = {}
_TZ_DATA = phone_timezone.TIMEZONE_DATA  # type: ignore[attr-defined]
_TZ_WIDTH = 1 + int(phone_timezone.TIMEZONE_LONGEST_PREFIX)  # type: ignore[attr-defined]
#: A prefix of j digits with value v is coded j * _TZ_SCALE + v.
_TZ_SCALE = 10 ** (_TZ_WIDTH + 1)
_TZ_CODES = np.array(
    sorted(len(k) * _TZ_SCALE + int(k) for k in _TZ_DATA if k.isdigit() and k[0] != "0"),
    dtype=np.int64,
)
