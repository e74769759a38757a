"""scripts/make_bench_data.py writes lists shaped like real ones: every phone distinct, about 1%
invalid (as plain ``phonenumbers`` judges them), typed in the forms people type, spread over
many area codes; the same seed writes the same rows; the benchmark's mapping reads them."""

from __future__ import annotations

import collections
import csv
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import phonenumbers
import pytest

from etl.normalize import parse_country
from etl.pipeline import RunOptions, run

ROOT = Path(__file__).resolve().parent.parent


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_bench_data", ROOT / "scripts/make_bench_data.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_bench_data", module)
    spec.loader.exec_module(module)
    return module


bench = _module()
ROWS = 3_000


@pytest.fixture(scope="module")
def rows() -> list[list[str]]:
    return list(bench.rows(ROWS, seed=21))


def _read(cell: str, country: str) -> tuple[str, bool, str | None]:
    """(the number as libphonenumber reads it, valid?, region) in the row's region."""
    region = parse_country(country) if country else "US"
    assert isinstance(region, str) and len(region) == 2, country
    try:
        number = phonenumbers.parse(cell, region)
    except phonenumbers.NumberParseException:
        return cell, False, None
    valid = phonenumbers.is_valid_number(number)
    key = f"+{number.country_code}-{number.italian_leading_zero}-{number.national_number}"
    return key, valid, phonenumbers.region_code_for_number(number) if valid else None


def test_the_same_seed_writes_the_same_rows_and_another_seed_others(
    rows: list[list[str]],
) -> None:
    assert list(bench.rows(ROWS, seed=21))[:500] == rows[:500]
    assert all(len(row) == len(bench.HEADER) for row in rows)
    other = list(bench.rows(500, seed=22))
    assert not {r[3] for r in other} & {r[3] for r in rows}


def test_every_phone_is_distinct_and_about_one_row_in_a_hundred_has_an_invalid_one(
    rows: list[list[str]],
) -> None:
    keys: list[str] = []
    bad_rows = 0
    regions: collections.Counter[str | None] = collections.Counter()
    for row in rows:
        read = [_read(cell, row[5]) for cell in row[3:5]]
        keys += [key for key, _, _ in read]
        bad_rows += not all(valid for _, valid, _ in read)
        regions.update(region for _, _, region in read)
    assert len(set(keys)) == len(keys) == 2 * ROWS
    assert 0.005 * ROWS <= bad_rows <= 0.02 * ROWS, bad_rows
    # every region of the generator, each in about its share of the rows
    for region, share, _, _ in bench.REGIONS:
        assert 0.6 * share <= regions[region] / (2 * ROWS) <= 1.4 * share, (region, regions)


def test_numbers_spread_over_many_area_codes_and_both_kinds(rows: list[list[str]]) -> None:
    prefixes: dict[str, set[str]] = collections.defaultdict(set)
    kinds: dict[str, set[int]] = collections.defaultdict(set)
    for row in rows:
        for cell in row[3:5]:
            key, valid, region = _read(cell, row[5])
            if valid and region:
                nsn = key.rsplit("-", 1)[1]
                prefixes[region].add(nsn[:3])
                number = phonenumbers.parse(cell, region)
                kinds[region].add(phonenumbers.number_type(number))
    assert len(prefixes["US"]) >= 25, prefixes["US"]
    for region in ("GB", "DE", "FR", "AU", "MX", "ES", "IT", "NL", "IN", "BR"):
        assert len(prefixes[region]) >= 8, (region, prefixes[region])
    mobile, fixed = phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE
    for region in ("GB", "DE", "FR", "AU", "ES", "IT", "NL"):
        assert {mobile, fixed} <= kinds[region], (region, kinds[region])


def test_cells_come_in_the_forms_people_type(rows: list[list[str]]) -> None:
    phones = [cell for row in rows for cell in row[3:5]]
    shapes = {
        "E.164": r"\+\d{8,15}",
        "(415) 555-2671": r"\(\d{3}\) \d{3}-\d{4}",
        "415.555.2671": r"\d{3}\.\d{3}\.\d{4}",
        "415-555-2671": r"\d{3}-\d{3}-\d{4}",
        "+44 (0)20 …": r"\+(44|49|33|31|61) \(0\).*",
        "00 prefix": r"00(44|49|33|52|34|39|31|91) ?\d.*",
        "+cc with spaces": r"\+\d{2} \d.*",
        "national with trunk 0": r"0[1-9][\d .-]+",
        "extension": r".*\d(,? ext\.? | x| #)\d{1,4}",
    }
    for name, shape in shapes.items():
        found = sum(bool(re.fullmatch(shape, cell)) for cell in phones)
        assert found >= 20, (name, found)
    countries = collections.Counter(row[5] for row in rows)
    assert {"Germany", "Deutschland", "España", "México", "UK", "", "US", "GB"} <= set(countries)
    names = {row[0] for row in rows} | {row[1] for row in rows}
    assert {"Müller", "García", "Łukasz", "王"} <= names
    assert 0.005 * ROWS <= sum(row[0] == "" for row in rows) <= 0.02 * ROWS
    assert 0.1 * ROWS <= sum("\n" in row[9] for row in rows) <= 0.3 * ROWS
    zones = collections.Counter(row[6] for row in rows)
    assert zones["US/Eastern"] and zones["Eastern Standard Time"] and zones[""]
    assert 0.005 * ROWS <= sum(zones[z] for z in bench.BAD_ZONES) <= 0.02 * ROWS
    dates = [row[8] for row in rows]
    assert sum(bool(re.fullmatch(r"\d\d/\d\d/\d{4}", d)) for d in dates) > ROWS / 2
    assert sum(bool(re.fullmatch(r"\d{4}-\d\d-\d\d", d)) for d in dates) > ROWS / 10


def test_the_benchmark_mapping_reads_the_file_and_refuses_what_was_spoilt(
    tmp_path: Path,
) -> None:
    """1,500 rows validated with the benchmark's mapping: each phone refused exactly when plain
    phonenumbers finds it invalid, every e-mail refused that the generator spoilt, about 5% of
    rows rejected in all."""
    source, mapping = tmp_path / "bench.csv", tmp_path / "bench.yaml"
    bench.write_csv(source, 1_500, seed=8)
    mapping.write_text(bench.MAPPING, encoding="utf-8")
    result = run(
        RunOptions(
            sources=[source],
            mapping=mapping,
            command="validate",
            report_dir=tmp_path / "r",
            state=tmp_path / "s.sqlite",
            workers=1,
        )
    )
    assert result.exit_code == 3
    with open(source, newline="", encoding="utf-8") as fh:
        written = list(csv.reader(fh))[1:]
    with open(tmp_path / "r" / "rejects.csv", newline="", encoding="utf-8") as fh:
        rejects = {int(r["_source_row"]): r["_errors"] for r in csv.DictReader(fh)}
    bad_phone_rows = {
        n
        for n, row in enumerate(written, start=2)
        if not all(_read(cell, row[5])[1] for cell in row[3:5])
    }
    assert {n for n, errors in rejects.items() if "phone (" in errors} == bad_phone_rows
    assert {n for n, row in enumerate(written, start=2) if "@example" not in row[2].lower()} <= {
        n for n, errors in rejects.items() if "email (" in errors
    }
    summary = json.loads((tmp_path / "r" / "summary.json").read_text(encoding="utf-8"))
    assert summary["rows_read"] == 1_500
    assert 0.02 <= summary["rows_rejected"] / 1_500 <= 0.09, summary["rows_rejected"]


def test_the_workbook_holds_the_same_rows_as_text(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    book = tmp_path / "bench.xlsx"
    bench.write_xlsx(book, 50, seed=3)
    sheet = load_workbook(book, read_only=True)["Leads"]
    got = [[cell if cell is not None else "" for cell in row] for row in sheet.values]
    # an XML parser reads a line break written as CR LF as LF, as Excel shows it
    expected = [[cell.replace("\r\n", "\n") for cell in row] for row in bench.rows(50, seed=3)]
    assert any("\r\n" in row[9] for row in bench.rows(50, seed=3))
    assert got == [bench.HEADER, *expected]
