"""Each module's public surface: a sorted ``__all__`` of names that exist; the exit-code order."""

from __future__ import annotations

import importlib

import pytest

from etl.errors import EXIT_PRECEDENCE, combine_exit_codes

MODULES = [
    "etl",
    "etl.errors",
    "etl.config",
    "etl.extract",
    "etl.mapping",
    "etl.shape",
    "etl.mapping_init",
    "etl.normalize",
    "etl.values",
    "etl.zones",
    "etl.validate",
    "etl.client",
    "etl.state",
    "etl.load",
    "etl.report",
    "etl.columns",
    "etl.payload",
    "etl.pipeline",
    "etl.cancel",
    "etl.check",
    "etl.plan",
    "etl.references",
    "etl.summary",
    "etl.archive",
    "etl.jobs",
    "etl.cli",
    "etl.sandbox",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_and_exists(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=str.casefold) or exported == sorted(exported)
    for item in exported:
        assert hasattr(module, item), item


def test_click_is_imported_only_by_the_cli() -> None:
    import pathlib

    root = pathlib.Path(importlib.import_module("etl").__file__).parent  # type: ignore[arg-type]
    users = sorted(p.name for p in root.rglob("*.py") if "import click" in p.read_text())
    assert users == ["cli.py"]


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([], 0),
        ([0, 3], 3),
        ([3, 75], 75),
        ([75, 4], 4),
        ([4, 66], 66),
        ([66, 65], 65),
        ([65, 74], 74),
        ([74, 78], 78),
        ([78, 77, 3], 77),
        ([1, 0], 1),
        ([1, 3], 3),
    ],
)
def test_exit_code_precedence(codes: list[int], expected: int) -> None:
    assert combine_exit_codes(codes) == expected
    assert list(EXIT_PRECEDENCE) == [77, 78, 74, 65, 66, 4, 75, 3, 0]
