"""Write benchmark lead lists shaped like real ones: every phone distinct, typed as people type.

The CSV (default 1,000,000 rows) and the XLSX (default 100,000 rows, the same shape) have these
columns: ``First Name, Last Name, Email, Mobile, Work Phone, Country, Time Zone, Company,
Signed Up, Notes``.

* ``Mobile`` and ``Work Phone`` hold a different number on every row (no number repeats in the
  file, so no per-value cache can answer for another row). About 60% of rows are North American
  (``+14155552671``, ``(415) 555-2671``, ``415.555.2671``, ``415-555-2671``, ``1 415 555 2671``),
  the rest GB, DE, FR, AU and MX written in their national forms (with the ``Country`` column),
  as ``+<cc> …`` or with the ``00`` international prefix. Numbers come from blocks checked with
  ``phonenumbers`` once at start-up (so about 1% invalid: the ones made so on purpose, a digit
  dropped).
* ``Time Zone``: mostly canonical IANA names of the row's country, some links (``US/Eastern``),
  about 10% empty (the zone is then inferred from the phones) and about 1% bad (``EST``,
  ``UTC+1``, ``Mars/Olympus``).
* ``Notes``: about one row in five holds a quoted note over two or three lines.
* About 1% bad e-mails and 1% missing first names.

Usage: ``python scripts/make_bench_data.py OUT.csv [--rows N] [--xlsx OUT.xlsx --xlsx-rows N]``
(also importable: :func:`write_csv`, :func:`write_xlsx`, :data:`MAPPING`).
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import phonenumbers

#: Bump when the data written changes: ``make bench`` keeps the files per version.
VERSION = 2

#: The mapping the benchmark validates the files with.
MAPPING = """\
project: 1
campaign: Spring outreach
defaults: {region: US, region_column: Country, timezone: America/New_York}
key: [email]
fields: {name: First Name, surname: Last Name, email: Email, timezoneId: Time Zone}
phones:
  - {column: Mobile, label: mobile}
  - {column: Work Phone, label: work}
dynamicData: {company: Company, signed_up: {column: Signed Up, type: date}}
comments:
  - {column: Notes}
"""

HEADER = [
    "First Name",
    "Last Name",
    "Email",
    "Mobile",
    "Work Phone",
    "Country",
    "Time Zone",
    "Company",
    "Signed Up",
    "Notes",
]

#: (region, share of rows, zones written in the zone column: canonical names first, links last)
REGIONS = [
    ("US", 0.60, ["America/New_York", "America/Chicago", "America/Los_Angeles", "US/Eastern"]),
    ("GB", 0.10, ["Europe/London", "Europe/London", "GB-Eire"]),
    ("DE", 0.08, ["Europe/Berlin"]),
    ("FR", 0.08, ["Europe/Paris"]),
    ("AU", 0.07, ["Australia/Sydney", "Australia/Melbourne", "Australia/NSW"]),
    ("MX", 0.07, ["America/Mexico_City", "Mexico/General"]),
]
BAD_ZONES = ["EST", "UTC+1", "Mars/Olympus", "Pacific Time", "GMT"]
FIRST = ["Ann", "Bob", "Chloé", "Dmitri", "Eve", "Farah", "Gus", "Hana", "Ivan", "José", "Kai"]
LAST = ["Lee", "Müller", "Smith", "Dubois", "García", "O'Brien", "Nguyen", "Kowalski", "Brown"]
NOTES = [
    'Asked for a call back\nprefers mornings, "not Mondays"',
    "Met at the trade fair\nwants the premium plan\nbudget approved in Q3",
    "Existing customer, renewal due\nspeak to procurement",
]
LINES = 10_000  # numbers per block: the last four digits


def _blocks(region: str, rnd: random.Random, wanted: int) -> list[str]:
    """National-number prefixes (all but the last four digits) whose numbers libphonenumber calls
    valid: checked at four line numbers each, so nearly every number of a block is valid."""
    found: list[str] = []
    if region == "US":
        seeds = []
        for _ in range(wanted * 8):
            seeds.append(f"{rnd.randint(201, 989)}{rnd.randint(200, 999)}")
    else:
        seeds = []
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            nsn = str(example.national_number)
            stem = nsn[:-4]
            for _ in range(wanted * 4):
                seeds.append(stem[:-2] + f"{rnd.randint(0, 99):02d}")
    for prefix in dict.fromkeys(seeds):
        checks = [prefix + line for line in ("0000", "3141", "5926", "9999")]
        if all(phonenumbers.is_valid_number(phonenumbers.parse(n, region)) for n in checks) and all(
            phonenumbers.region_code_for_number(phonenumbers.parse(n, region)) == region
            for n in checks[:1]
        ):
            found.append(prefix)
            if len(found) >= wanted:
                break
    if not found:
        raise SystemExit(f"no valid number blocks for {region}")
    return found


def _trunk(region: str) -> str:
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    return (meta.national_prefix or "") if meta is not None else ""


def _written(region: str, nsn: str, form: int) -> str:
    """One number as a person types it."""
    cc = str(phonenumbers.country_code_for_region(region))
    if region == "US":
        a, b, c = nsn[:3], nsn[3:6], nsn[6:]
        return [
            f"+1{nsn}",
            f"({a}) {b}-{c}",
            f"{a}.{b}.{c}",
            f"{a}-{b}-{c}",
            f"1 {a} {b} {c}",
            f"+1 ({a}) {b}-{c}",
        ][form % 6]
    spaced = " ".join([nsn[:-8], nsn[-8:-4], nsn[-4:]]).strip() if len(nsn) > 8 else nsn
    national = _trunk(region) + spaced
    return [national, national, f"+{cc} {spaced}", f"00{cc} {spaced}", f"+{cc}{nsn}"][form % 5]


def _numbers(rnd: random.Random, rows: int) -> dict[str, Iterator[str]]:
    """Per region, an endless supply of distinct valid national numbers."""
    supply: dict[str, Iterator[str]] = {}
    for region, share, _ in REGIONS:
        need = int(rows * share * 2.2) + 100
        blocks = _blocks(region, rnd, need // LINES + 2)

        def gen(blocks: list[str] = blocks) -> Iterator[str]:
            lines = list(range(LINES))
            rnd.shuffle(lines)
            for line in lines:
                for block in blocks:
                    yield f"{block}{line:04d}"
            raise SystemExit("ran out of benchmark numbers")

        supply[region] = gen()
    return supply


def rows(count: int, seed: int = 12) -> Iterator[list[str]]:
    """The data rows (without the header), deterministic for a seed."""
    rnd = random.Random(seed)
    supply = _numbers(rnd, count)
    regions = [r for r, _, _ in REGIONS]
    weights = [w for _, w, _ in REGIONS]
    zones = {r: z for r, _, z in REGIONS}
    for i in range(count):
        region = rnd.choices(regions, weights)[0]
        phones = []
        for _ in range(2):
            text = _written(region, next(supply[region]), rnd.randrange(30))
            if rnd.random() < 0.005:  # ~1% of rows have one phone made invalid: a digit lost
                text = text[:-1]
            phones.append(text)
        first = rnd.choice(FIRST) if rnd.random() > 0.01 else ""
        last = rnd.choice(LAST)
        email = (
            f"{(first or 'x').lower().encode('ascii', 'ignore').decode()}.{i}@example{i % 50}.com"
        )
        if rnd.random() < 0.01:
            email = email.replace("@", " at ")
        roll = rnd.random()
        if roll < 0.01:
            zone = rnd.choice(BAD_ZONES)
        elif roll < 0.11:
            zone = ""
        else:
            zone = rnd.choice(zones[region])
        country = region if region != "US" or rnd.random() < 0.5 else ""
        signed = f"202{rnd.randrange(6)}-{1 + rnd.randrange(12):02d}-{1 + rnd.randrange(28):02d}"
        note = rnd.choice(NOTES) if rnd.random() < 0.2 else ""
        yield [first, last, email, *phones, country, zone, f"Acme {i % 997}", signed, note]


def write_csv(path: Path, count: int, seed: int = 12) -> None:
    """Write ``count`` rows to a UTF-8 CSV (header on row 1; quoted where needed)."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        out.writerows(rows(count, seed))


def write_xlsx(path: Path, count: int, seed: int = 12) -> None:
    """Write ``count`` rows to one sheet ``Leads`` of an XLSX workbook (text cells)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Leads")
    sheet.append(HEADER)
    for row in rows(count, seed):
        sheet.append(row)
    book.save(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--xlsx", type=Path)
    parser.add_argument("--xlsx-rows", type=int, default=100_000)
    args = parser.parse_args()
    write_csv(args.csv, args.rows)
    if args.xlsx:
        write_xlsx(args.xlsx, args.xlsx_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
