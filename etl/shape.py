"""A chunk shaped by the mapping: the file's columns become the lead's fields.

The step between reading and normalising: :func:`apply_mapping` takes a chunk of text cells
(:mod:`etl.extract`) and the columns :func:`etl.plan.resolve_columns` matched in its file,
and returns one column per thing the mapping fills, named by :mod:`etl.columns`, the cells still
raw text (only a column's value map is applied). :mod:`etl.mapping` reads and checks the mapping
once; this module applies it to every chunk (:func:`etl.check.check_chunk`, in worker processes
on a large input).
"""

from __future__ import annotations

import pandas as pd

from etl import columns as col
from etl.mapping import ColumnSpec, Mapping
from etl.values import fold_key

__all__ = ["apply_mapping"]


def apply_mapping(mapping: Mapping, frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Project a chunk of text cells onto the lead's fields.

    Args:
        mapping: the checked mapping.
        frame: text cells (``str``) of one chunk, index = source row.
        columns: :func:`etl.plan.resolve_columns`' result for this file (mapped column →
            header as in the file).

    Returns:
        A frame with the same index and these object (``str``) columns (named by
        :mod:`etl.columns`), cells still raw text:
        ``name``, ``surname``, ``email``, ``timezoneId`` (mapped ones only), ``phone.<i>`` per
        phone spec, ``dyn.<field>`` per dynamicData field, ``comment.<i>`` per comment spec
        (``comment_date.<i>`` when it names a date column), ``callback.start``,
        ``meeting.start``, ``meeting.end`` and ``<slot>.zone`` for mapped tasks, and
        ``region`` when ``defaults.region_column`` is set. A column's value map (``{column,
        map}``) is applied here: a cell that matches a key holds the mapped value.
    """
    out: dict[str, pd.Series] = {}
    for name, spec in mapping.fields.items():
        out[name] = _mapped(frame[columns[spec.column]], spec)
    for i, phone in enumerate(mapping.phones):
        out[col.phone(i)] = frame[columns[phone.column]]
    for name, spec in mapping.dynamic.items():
        out[col.dynamic(name)] = _mapped(frame[columns[spec.column]], spec)
    for i, comment in enumerate(mapping.comments):
        out[col.comment(i)] = frame[columns[comment.column]]
        if comment.date:
            out[col.comment_date(i)] = frame[columns[comment.date]]
    for kind, spec in mapping.per_row():
        out[kind] = _mapped(frame[columns[spec.column]], spec)
    for slot, task in mapping.tasks():
        out[col.task(slot, "start")] = frame[columns[task.start]]
        if task.end:
            out[col.task(slot, "end")] = frame[columns[task.end]]
        if task.timezone_column:
            out[col.task(slot, "zone")] = frame[columns[task.timezone_column]]
    if mapping.defaults.region_column:
        out[col.REGION] = frame[columns[mapping.defaults.region_column]]
    return pd.DataFrame(out, index=frame.index, dtype=object)


def _mapped(cells: pd.Series, spec: ColumnSpec) -> pd.Series:
    """A column's cells (object Series, index = source row) with its value map applied: a
    ``str`` cell whose :func:`~etl.values.fold_key` matches a key holds the key's value; other
    cells are kept. The Series itself when the spec has no map."""
    if spec.map is None or not spec.map.entries:
        return cells
    table = dict(spec.map.entries)
    return pd.Series(
        [table.get(fold_key(v), v) if isinstance(v, str) else v for v in cells],
        index=cells.index,
        dtype=object,
    )
