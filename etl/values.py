"""Cells as text, and a value that could not be read.

The lowest layer of the values a lead list holds: :func:`clean` says what is missing (an empty or
all-whitespace cell), :func:`fold_text` the form names are compared in, and :class:`Invalid` a
value that could not be normalised, with why and what kind of fault that is
(:func:`reason_kind`). :mod:`etl.zones` and :mod:`etl.normalize` build on them; the mapping uses
them to check the zones it names without depending on normalisation.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

__all__ = ["Caveat", "Invalid", "clean", "fold_key", "fold_text", "reason_kind"]


@dataclass(frozen=True)
class Invalid:
    """A value that could not be normalised.

    Attributes:
        raw: the value as it was in the file (trimmed).
        reason: why, in words a person understands, with what to do.
        suggestion: the value most likely meant (``America/New_York`` for ``EST``), when there
            is one; callers use it to show a value map that fixes every such cell.
    """

    raw: str
    reason: str
    suggestion: str | None = field(default=None, compare=False)
    #: What kind of fault this is, for counting faults of one kind together (``not a phone
    #: number``, ``too short for US``): given by the check, else :func:`reason_kind` of
    #: ``reason``.
    kind: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", reason_kind(self.reason))

    def __str__(self) -> str:
        return self.raw


@dataclass(frozen=True)
class Caveat:
    """A warning on a row that loads: made where the check finds it, grouped by the report.

    Attributes:
        field: the field or column it is about (``phone (Mobile)``, ``timezoneId``,
            ``country``, a task slot, a header).
        kind: the warning without its values, as report.html names the group
            (``phone (Mobile): extension … dropped``); warnings of one ``(field, kind)`` are
            counted together.
        message: the whole warning, as loaded.csv and the log show it.
        value: the value it names (the extension, the zone, the cell), or ``""``.
    """

    field: str
    kind: str
    message: str
    value: str = ""

    def __str__(self) -> str:
        return self.message


def reason_kind(reason: str) -> str:
    """The kind of a reason written as this package writes them, ``what (detail): value;
    what to do``: its words before the first ``(``, ``:`` or ``;``, after the value it may
    start with (``'x': not an e-mail address (no @)`` → ``not an e-mail address``)."""
    text = reason
    if text.startswith("'") and "': " in text:
        text = text.split("': ", 1)[1]
    ends = [at for at in (text.find(mark) for mark in "(:;") if at >= 0]
    return text[: min(ends, default=len(text))].strip()


_EDGE = re.compile(r"^[\s\u200b\u200c\u200d\u2060\ufeff]+|[\s\u200b\u200c\u200d\u2060\ufeff]+$")


def clean(value: object) -> str | None:
    """Trim all Unicode whitespace (including no-break space); empty becomes ``None``.

    Only an empty or all-whitespace cell is missing: ``NA``, ``NULL``, ``None``, ``-`` are text.
    (The value ``None`` and a float NaN, pandas' own markers for a missing cell, are missing too;
    the readers never produce them, but frames built by hand may.)
    """
    if value is None or (isinstance(value, float) and value != value):
        return None
    if not isinstance(value, str):
        value = str(value)
    if value[:1].isalnum() and value[-1:].isalnum():
        return value  # no whitespace or zero-width character is alphanumeric: nothing to trim
    # \s covers Unicode whitespace, including U+00A0 and U+3000; add the zero-width ones, in any
    # interleaving (so that cleaning twice changes nothing).
    text = _EDGE.sub("", value)
    return text or None


def fold_text(value: str) -> str:
    """The form names are compared in: accents on Latin letters dropped, case-folded, every
    run of punctuation or space one space, trimmed (``U.S.`` → ``u s``, ``México`` →
    ``mexico``, ``Großbritannien`` → ``grossbritannien``). Marks that other scripts spell with
    (Devanagari vowel signs, the Cyrillic breve of ``й``) are kept."""
    kept: list[str] = []
    after_latin = False
    for ch in unicodedata.normalize("NFKD", value):
        if unicodedata.combining(ch):
            if not after_latin:
                kept.append(ch)
            continue
        kept.append(ch)
        after_latin = ch.isascii()
    text = unicodedata.normalize("NFC", "".join(kept)).casefold()
    words = "".join(
        ch if ch.isalnum() or unicodedata.category(ch).startswith("M") else " " for ch in text
    )
    return " ".join(words.split())


def fold_key(value: object) -> str:
    """How a value-map key and a cell are compared: trimmed (all Unicode whitespace), inner
    whitespace collapsed to one space, case-folded (``" est "`` and ``EST`` are one key)."""
    return " ".join(str(value).split()).casefold()
