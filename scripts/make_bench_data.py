"""Write benchmark lead lists shaped like real ones: every phone distinct, typed as people type.

The CSV (default 1,000,000 rows) and the XLSX (default 100,000 rows, the same shape) have these
columns: ``First Name, Last Name, Email, Mobile, Work Phone, Country, Time Zone, Company,
Signed Up, Notes``.

* ``Mobile`` and ``Work Phone`` hold a different number on every row (no number repeats in the
  file, so no per-value cache can answer for another row). Half the rows are North American
  (US and a few CA), the rest GB, DE, FR, AU, MX, ES, IT, NL, IN and BR with the ``Country``
  column. The numbers are drawn from libphonenumber's own metadata: a random string of the
  region's fixed-line or mobile national-number pattern (so every area code and mobile range
  the pattern allows can come up), kept as a block of 1,000 numbers (its last three digits free)
  when ``phonenumbers`` finds the block's first and last numbers valid, of that region, and
  every written form of them readable as the same valid number.
* Written as people type them: North American ``+14155552671``, ``(415) 555-2671``,
  ``415.555.2671``, ``415-555-2671``, ``1 415 555 2671``, ``+1 (415) 555-2671``; the others in
  their national form (as ``phonenumbers`` formats it, or with dots, dashes or no spaces), as
  ``+<cc> …``, ``+44 (0)20 …`` where the trunk ``0`` is dropped abroad, or with ``00`` where that
  is the region's international prefix. About 2% of work phones (and a few mobiles) carry an
  extension (``x123``, ``ext. 12``, ``#45``); the mapping keeps the work phone's.
* About 1% of rows have a number made invalid on purpose: a digit lost (only in regions whose
  numbers have one length, so it stays invalid and distinct) or a North American area code
  that does not exist.
* ``Country``: an ISO code or a name in English or the country's language (``DE``,
  ``Germany``, ``Deutschland``); empty on about half the US rows.
* ``Time Zone``: mostly canonical IANA names of the row's country, some links (``US/Eastern``,
  ``Asia/Calcutta``), a few Windows names (``Eastern Standard Time``), some empty (the zone is
  then inferred from the phones: 10% of rows in one-zone countries, 4% where the two numbers
  may be in different zones, a reject then) and about 1% bad (``EST``, ``UTC+1``,
  ``Pacific Time``).
* Names: about 1% missing first names; some non-ASCII (``Müller``, ``García``, ``Łukasz``,
  ``王``). E-mails: distinct, some with capitals or stray spaces, about 1% bad.
* ``Signed Up``: month-first ``MM/DD/YYYY`` dates (as a US export writes them), ISO dates and
  date-times, some empty.
* ``Notes``: about one row in five holds a quoted note over two or three lines.

Everything comes from one ``random.Random(seed)``: the same seed writes the same file.

Usage: ``python scripts/make_bench_data.py OUT.csv [--rows N] [--xlsx OUT.xlsx --xlsx-rows N]``
(also importable: :func:`write_csv`, :func:`write_xlsx`, :func:`rows`, :data:`MAPPING`).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import random
import re
import re._constants as sre_c
import re._parser as sre_parse
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

#: Bump when the data written changes: ``make bench`` keeps the files per version.
VERSION = 3

#: The mapping the benchmark validates the files with.
MAPPING = """\
project: 1
campaign: Spring outreach
defaults: {region: US, region_column: Country, timezone: America/New_York}
key: [email]
fields: {name: First Name, surname: Last Name, email: Email, timezoneId: Time Zone}
phones:
  - {column: Mobile, label: mobile}
  - {column: Work Phone, label: work, extension: work_ext}
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

#: (region, share of rows, zones written in its rows' zone column, its Country cells). Zones:
#: canonical names, then tz links and Windows names; "" in Country: the column left empty.
REGIONS: list[tuple[str, float, list[str], list[str]]] = [
    (
        "US",
        0.48,
        [
            *["America/New_York"] * 4,
            *["America/Chicago"] * 3,
            "America/Denver",
            "America/Phoenix",
            *["America/Los_Angeles"] * 3,
            "US/Eastern",
            "US/Pacific",
            "Eastern Standard Time",
        ],
        ["", "", "", "US", "US", "USA", "United States", "U.S."],
    ),
    ("CA", 0.02, ["America/Toronto", "America/Vancouver", "Canada/Eastern"], ["CA", "Canada"]),
    (
        "GB",
        0.08,
        ["Europe/London", "Europe/London", "Europe/London", "GB-Eire"],
        ["GB", "GB", "UK", "United Kingdom"],
    ),
    ("DE", 0.07, ["Europe/Berlin"], ["DE", "DE", "Germany", "Deutschland"]),
    ("FR", 0.06, ["Europe/Paris"], ["FR", "FR", "France"]),
    (
        "AU",
        0.05,
        ["Australia/Sydney", "Australia/Melbourne", "Australia/Brisbane", "Australia/NSW"],
        ["AU", "Australia"],
    ),
    (
        "MX",
        0.05,
        ["America/Mexico_City", "America/Mexico_City", "America/Monterrey", "Mexico/General"],
        ["MX", "Mexico", "México"],
    ),
    ("ES", 0.04, ["Europe/Madrid"], ["ES", "Spain", "España"]),
    ("IT", 0.04, ["Europe/Rome"], ["IT", "Italy", "Italia"]),
    ("NL", 0.04, ["Europe/Amsterdam"], ["NL", "Netherlands", "Nederland"]),
    ("IN", 0.04, ["Asia/Kolkata", "Asia/Kolkata", "Asia/Calcutta"], ["IN", "India"]),
    (
        "BR",
        0.03,
        ["America/Sao_Paulo", "America/Sao_Paulo", "Brazil/East"],
        ["BR", "Brazil", "Brasil"],
    ),
]
NANP = ("US", "CA")
#: regions with several time zones: fewer rows leave the zone empty there, as its two numbers
#: (drawn independently) are often in different zones and the zone is then not inferred
SEVERAL_ZONES = ("US", "CA", "AU", "MX", "BR")
BAD_ZONES = ["EST", "UTC+1", "Mars/Olympus", "Pacific Time", "GMT+2"]
FIRST = [
    *["Ann", "Bob", "Carla", "David", "Emma", "Frank", "Grace", "Hugo", "Isla", "Jack"],
    *["Chloé", "José", "Łukasz", "Zoë", "Søren", "Dmitri", "Farah", "Mei", "Priya", "Kai"],
    *["伟", "Ngọc", "Ólafur", "François", "Małgorzata", "Jürgen", "Siobhán", "Raúl"],
]
LAST = [
    *["Lee", "Smith", "Brown", "Johnson", "Taylor", "Martin", "Rossi", "Jansen", "Singh"],
    *["Müller", "García", "Dubois", "O'Brien", "Nguyen", "Kowalski", "Nowak", "Ødegaard"],
    *["王", "Sánchez", "Gonçalves", "Van der Berg", "Şahin", "Fernández-López", "Björk"],
]
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Müller & Söhne", "Café Olé", "Hooli"]
NOTES = [
    'Asked for a call back\nprefers mornings, "not Mondays"',
    "Met at the trade fair\nwants the premium plan\nbudget approved in Q3",
    "Existing customer, renewal due\nspeak to procurement",
    "Rückruf erbeten\nab 14 Uhr, bitte auf Deutsch",
    "Interested in 3 seats; call after lunch\r\nsent brochure",
]
EXTENSIONS = [" x{}", " ext. {}", " ext {}", " #{}", ", ext. {}"]
BLOCK = 1000  # numbers per block: the last three digits free
MIN_BLOCKS = 30  # blocks in use per region at once, so a small file's numbers spread too
#: An alternative of a number pattern is drawn with a weight of (the numbers it matches) ** DAMP:
#: 1 would make every number equally likely (the widest ranges, often machine-to-machine or
#: the longest lengths, would then crowd out the rest), 0 every alternative equally likely
#: (a lone area code written out as its own alternative would come up far too often).
DAMP = 0.85


def _sampler(pattern: str) -> Callable[[random.Random], str]:
    """A function drawing a random string that ``pattern`` (a libphonenumber national-number
    pattern: digits, classes, groups, alternatives, repeats) matches in full, each alternative
    and repeat count chosen in proportion to how many strings it matches: every number of the
    pattern about equally likely, so numbers spread over all its area codes and ranges."""
    tree = sre_parse.parse(pattern)
    counts: dict[int, float] = {}

    def count(items: Any) -> float:
        key = id(items)
        if key not in counts:
            total = 1.0
            for op, av in items:
                if op is sre_c.IN:
                    total *= len(_class_digits(av))
                elif op is sre_c.CATEGORY:
                    total *= 10
                elif op is sre_c.SUBPATTERN:
                    total *= count(av[3])
                elif op is sre_c.BRANCH:
                    total *= sum(count(b) for b in av[1])
                elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
                    low, high, sub = av
                    high = low + 3 if high is sre_c.MAXREPEAT else high
                    total *= count(sub) ** ((low + high) / 2)
            counts[key] = total
        return counts[key]

    def draw(items: Any, rnd: random.Random, out: list[str]) -> None:
        for op, av in items:
            if op is sre_c.LITERAL:
                out.append(chr(av))
            elif op is sre_c.IN:
                out.append(rnd.choice(_class_digits(av)))
            elif op is sre_c.CATEGORY:  # \d
                out.append(str(rnd.randrange(10)))
            elif op is sre_c.SUBPATTERN:
                draw(av[3], rnd, out)
            elif op is sre_c.BRANCH:
                draw(rnd.choices(av[1], [count(b) ** DAMP for b in av[1]])[0], rnd, out)
            elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
                low, high, sub = av
                high = low + 3 if high is sre_c.MAXREPEAT else high
                for _ in range(rnd.randint(low, high)):
                    draw(sub, rnd, out)
            else:
                raise ValueError(f"pattern element {op} not drawn: {pattern}")

    def sample(rnd: random.Random) -> str:
        out: list[str] = []
        draw(tree, rnd, out)
        return "".join(out)

    return sample


def _class_digits(items: Any) -> list[str]:
    digits: list[str] = []
    for op, av in items:
        if op is sre_c.LITERAL:
            digits.append(chr(av))
        elif op is sre_c.RANGE:
            digits.extend(chr(c) for c in range(av[0], av[1] + 1))
        elif op is sre_c.CATEGORY:
            digits.extend("0123456789")
        else:
            raise ValueError(f"class element {op} not drawn")
    return digits


def _template(text: str) -> str:
    """``text`` (a formatted number) with its last three digits as ``{}`` for str.format."""
    spots = [i for i, ch in enumerate(text) if ch.isdigit()][-3:]
    out = text  # formatted numbers hold no braces
    for spot in reversed(spots):
        out = out[:spot] + "{}" + out[spot + 1 :]
    return out


class _Region:
    """Blocks of valid numbers of one region and the forms they are written in."""

    def __init__(self, region: str, rnd: random.Random) -> None:
        self.region = region
        self.rnd = rnd
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        assert meta is not None
        self.cc = str(meta.country_code)
        self.trunk = meta.national_prefix or ""
        self.idd00 = bool(re.fullmatch(meta.international_prefix or "", "00"))
        self.samplers = [
            _sampler(meta.fixed_line.national_number_pattern),
            _sampler(meta.mobile.national_number_pattern),
        ]
        #: the longest numbers drawn: one digit more than the region's longer example number
        #: (leaves out 13-digit German and 11-digit Dutch machine-to-machine ranges)
        self.longest = 1 + max(
            len(str(phonenumbers.example_number_for_type(region, kind).national_number))
            for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE)
        )
        #: one length for every number: a lost digit is then always invalid
        self.one_length = len(meta.general_desc.possible_length) == 1
        #: digits to add to any number drawn to make it longer than any number of the region
        self.too_long = max(meta.general_desc.possible_length) - self.longest + 1
        self.seen: set[str] = set()

    def block(self) -> list[str]:
        """A new block of 1,000 numbers (the last three digits free): the templates of its
        written forms, each checked with ``phonenumbers`` on the block's first number, the
        E.164 form on its last and on one between."""
        for _ in range(10_000):
            nsn = self.samplers[self.rnd.randrange(2)](self.rnd)
            prefix = nsn[:-3]
            if not 7 <= len(nsn) <= self.longest or prefix in self.seen:
                continue
            forms = self._forms(prefix + "000")
            if forms and all(
                self._reads(f"+{self.cc}{prefix}{{}}{{}}{{}}", prefix + end)
                for end in ("999", f"{self.rnd.randrange(1000):03d}")
            ):
                self.seen.add(prefix)
                return [_template(f) for f in forms]
        raise SystemExit(f"no valid number blocks found for {self.region}")

    def _reads(self, template: str, nsn: str) -> bool:
        """Whether ``template`` filled with the last digits of ``nsn`` is read (in this region)
        as the valid number ``nsn`` of this region."""
        try:
            number = phonenumbers.parse(template.format(*nsn[-3:]), self.region)
        except phonenumbers.NumberParseException:
            return False
        return (
            phonenumbers.format_number(number, PhoneNumberFormat.E164) == f"+{self.cc}{nsn}"
            and phonenumbers.is_valid_number(number)
            and phonenumbers.region_code_for_number(number) == self.region
        )

    def _forms(self, nsn: str) -> list[str]:
        """The forms of ``nsn`` a person types, each read back as the same valid number of this
        region; [] when the number is not one."""
        if not self._reads(f"+{self.cc}{nsn[:-3]}{{}}{{}}{{}}", nsn):
            return []
        number = phonenumbers.parse(f"+{self.cc}{nsn}")
        if self.region in NANP:
            a, b, c = nsn[:3], nsn[3:6], nsn[6:]
            forms = [
                f"+1{nsn}",
                f"({a}) {b}-{c}",
                f"({a}) {b}-{c}",
                f"{a}.{b}.{c}",
                f"{a}-{b}-{c}",
                f"{a}-{b}-{c}",
                f"1 {a} {b} {c}",
                f"+1 ({a}) {b}-{c}",
                f"{a} {b} {c}",
                f"1-{a}-{b}-{c}",
                f"+1 {a}-{b}-{c}",
            ]
        else:
            national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
            world = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
            abroad = world[len(self.cc) + 2 :]
            forms = [
                national,
                national,
                national,
                national.replace(" ", "."),
                national.replace(" ", "-"),
                national.replace(" ", ""),
                world,
                world,
                f"+{self.cc}{nsn}",
                world.replace(" ", "-"),
            ]
            if self.trunk == "0" and national.startswith("0"):
                forms.append(f"+{self.cc} (0){abroad}")  # +44 (0)20 7946 0958
            if self.idd00:
                forms += [f"00{self.cc} {abroad}", f"00{self.cc}{nsn}"]
        if not all(self._reads(_template(f), nsn) for f in dict.fromkeys(forms)):
            return []
        return forms

    def supply(self, count: int) -> Iterator[str]:
        """An endless supply of distinct written numbers: each from a random one of about
        ``count / 1000`` blocks (at least :data:`MIN_BLOCKS`; a used-up block is replaced by a
        new one), its lines in an order of its own."""
        rnd = self.rnd
        blocks = [self._open() for _ in range(max(MIN_BLOCKS, count // BLOCK + 1))]
        while True:
            at = rnd.randrange(len(blocks))
            forms, start, step, used = blocks[at]
            blocks[at][3] = used + 1
            if used + 1 == BLOCK:
                blocks[at] = self._open()
            yield forms[rnd.randrange(len(forms))].format(*f"{(start + used * step) % BLOCK:03d}")

    def _open(self) -> list[Any]:
        """A new block as [templates, first line, step (prime to 1,000), lines used]."""
        step = self.rnd.choice([s for s in range(1, BLOCK, 2) if s % 5])
        return [self.block(), self.rnd.randrange(BLOCK), step, 0]


def _spoilt(rnd: random.Random, region: _Region, text: str, spoilt: set[str]) -> str:
    """``text`` made invalid: a digit lost (where the region's numbers have one length), digits
    added (elsewhere), or (NANP) an area code that does not exist; distinct from every other
    spoilt number of the file (``spoilt`` holds the numbers as read)."""
    for _ in range(20):
        if region.region in NANP and rnd.random() < 0.4:
            bad = f"({rnd.randint(100, 199)}) {rnd.randint(200, 999)}-{rnd.randrange(10_000):04d}"
        elif region.one_length:
            bad = text[:-1]
        else:  # digits added past the longest number the region has
            bad = text + "".join(str(rnd.randrange(10)) for _ in range(region.too_long))
        try:  # the number libphonenumber reads (invalid, but a number)
            number = phonenumbers.parse(bad, region.region)
            key = f"+{number.country_code} {number.national_number}"
        except phonenumbers.NumberParseException:
            key = bad
        if key not in spoilt:
            spoilt.add(key)
            return bad
    return text


def rows(count: int, seed: int = 12) -> Iterator[list[str]]:
    """The data rows (without the header), deterministic for a seed."""
    rnd = random.Random(seed)
    names = [r for r, _, _, _ in REGIONS]
    weights = [w for _, w, _, _ in REGIONS]
    info = {r: (zones, countries) for r, _, zones, countries in REGIONS}
    regions = {r: _Region(r, rnd) for r in names}
    supply = {r: regions[r].supply(int(count * share * 2.1) + 50) for r, share, _, _ in REGIONS}
    spoilt: set[str] = set()
    drawn = rnd.choices(names, weights, k=count)
    for i, region in enumerate(drawn):
        zones, countries = info[region]
        phones = [next(supply[region]), next(supply[region])]
        for j in (0, 1):
            roll = rnd.random()
            if roll < 0.006:  # ~1% of rows have a number made invalid
                phones[j] = _spoilt(rnd, regions[region], phones[j], spoilt)
            elif roll < (0.025 if j else 0.008):  # extensions: mostly on work phones
                ext = str(rnd.randint(1, 9999))
                phones[j] += rnd.choice(EXTENSIONS).format(ext)
        first = rnd.choice(FIRST) if rnd.random() > 0.01 else ""
        last = rnd.choice(LAST)
        ascii_name = [
            "".join(ch for ch in part.lower() if "a" <= ch <= "z") for part in (first, last)
        ]
        email = ".".join([*filter(None, ascii_name), str(i)]) + f"@example{i % 50}.com"
        roll = rnd.random()
        if roll < 0.01:  # bad
            email = rnd.choice(
                [email.replace("@", " at "), email.split("@")[0] + "@", email.replace(".com", "")]
            )
        elif roll < 0.05:
            email = f" {email.title()} "
        roll = rnd.random()
        if roll < 0.01:
            zone = rnd.choice(BAD_ZONES)
        elif roll < (0.05 if region in SEVERAL_ZONES else 0.11):
            zone = ""  # inferred from the phones (refused when they are in different zones)
        else:
            zone = rnd.choice(zones)
        country = rnd.choice(countries)
        year, month, day = 2019 + rnd.randrange(7), 1 + rnd.randrange(12), 1 + rnd.randrange(28)
        roll = rnd.random()
        if roll < 0.65:
            signed = f"{month:02d}/{day:02d}/{year}"
        elif roll < 0.9:
            signed = f"{year}-{month:02d}-{day:02d}"
        elif roll < 0.97:
            signed = (
                f"{year}-{month:02d}-{day:02d}T{rnd.randrange(24):02d}:{rnd.randrange(60):02d}:00"
            )
        else:
            signed = ""
        note = rnd.choice(NOTES) if rnd.random() < 0.2 else ""
        company = f"{rnd.choice(COMPANIES)} {i % 997}"
        yield [first, last, email, *phones, country, zone, company, signed, note]


def fingerprint() -> str:
    """8 hex digits that change with this script's text and the ``phonenumbers`` release (whose
    metadata the numbers are drawn from): with :data:`VERSION`, the name of a cached data set."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(phonenumbers.__version__.encode())
    return digest.hexdigest()[:8]


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
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--xlsx", type=Path)
    parser.add_argument("--xlsx-rows", type=int, default=100_000)
    args = parser.parse_args()
    write_csv(args.csv, args.rows, args.seed)
    if args.xlsx:
        write_xlsx(args.xlsx, args.xlsx_rows, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
