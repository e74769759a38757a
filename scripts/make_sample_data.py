#!/usr/bin/env python3
"""Generate the demo lead files under ``sample_data/`` and the outcome they must give.

Run ``python scripts/make_sample_data.py`` (or ``make sample-data``) from anywhere; it rewrites

* ``sample_data/leads.csv`` - a marketing lead list (UTF-8, comma, CRLF, header on row 1);
* ``sample_data/accounts.xlsx`` - a workbook with the sheets ``Leads`` (header on row 1) and
  ``Partners`` (a title on row 1, a blank row 2, the header on row 3);
* ``sample_data/expected.json`` - the exact outcome per file/sheet: rows read, rows rejected,
  duplicates, and every rejected row (as a spreadsheet numbers it) with its reason;
* ``sample_data/README.md`` - what the files are and the same outcome as tables.

Everything is deterministic: one ``random.Random(SEED)`` drives all choices, the xlsx zip entries
and document properties carry a fixed time stamp, so re-running gives byte-identical files.

Every person, company and e-mail address is invented (e-mails only at example.com/.org/.net).
Phone numbers come only from ranges regulators reserve for drama and documentation:

* US/CA: NXX 555-0100..0199 (NANPA fictional range);
* GB: Ofcom drama ranges, e.g. 020 7946 0xxx, 0113 496 0xxx, 029 2018 0xxx, 028 9649 6xxx;
* DE: Bundesnetzagentur "Drama Numbers", e.g. 030 23125 xxx, 069 90009 xxx;
* AU: ACMA fictitious numbers, the listed 0491 57x xxx mobiles and (0x) 5550 xxxx / 7010 xxxx;
* FR: ARCEP fiction ranges 01 99 00 xx xx, 02 61 91 xx xx, 03 53 01 xx xx, 04 65 71 xx xx,
  05 36 49 xx xx.

Each number the script writes into a row meant to load is asserted valid with
``phonenumbers.is_valid_number`` for that row's region, and each row meant to be rejected is
asserted bad for its stated reason. After writing, the files are read back (csv module, openpyxl)
and run through a small reference check of the contract's rules, driven by ``mappings/*.yaml``;
the script fails if the outcome differs from ``expected.json`` in any row.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import json
import random
import re
import sys
import unicodedata
import zipfile
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import phonenumbers
import phonenumbers.timezone
import yaml
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font

SEED = 20261102
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "sample_data"
MAPPINGS = ROOT / "mappings"
FIXED_TIME = (2026, 11, 2, 9, 0, 0)  # zip entry time stamps and workbook properties
FIXED_ISO = "2026-11-02T09:00:00Z"
EXPORT_TITLE = "Partner contacts \u2013 exported 2026-11-02"

N_LEADS_CSV = 340
N_ACCOUNTS = 60
N_PARTNERS = 40

# --------------------------------------------------------------------------------------------
# Places and reserved phone ranges
# --------------------------------------------------------------------------------------------

CC = {"US": 1, "CA": 1, "GB": 44, "DE": 49, "AU": 61, "FR": 33}


@dataclass(frozen=True)
class Place:
    """A city with its zone and the reserved range its landlines are drawn from."""

    country: str
    city: str
    zone: str
    area: str  # key into the landline pools


PLACES: list[Place] = [
    Place("US", "San Francisco", "America/Los_Angeles", "US415"),
    Place("US", "Los Angeles", "America/Los_Angeles", "US213"),
    Place("US", "Seattle", "America/Los_Angeles", "US206"),
    Place("US", "Portland", "America/Los_Angeles", "US503"),
    Place("US", "Las Vegas", "America/Los_Angeles", "US702"),
    Place("US", "New York", "America/New_York", "US212"),
    Place("US", "New York", "America/New_York", "US646"),
    Place("US", "Brooklyn", "America/New_York", "US718"),
    Place("US", "Boston", "America/New_York", "US617"),
    Place("US", "Washington", "America/New_York", "US202"),
    Place("US", "Miami", "America/New_York", "US305"),
    Place("US", "Atlanta", "America/New_York", "US404"),
    Place("US", "Chicago", "America/Chicago", "US312"),
    Place("US", "Austin", "America/Chicago", "US512"),
    Place("US", "Dallas", "America/Chicago", "US214"),
    Place("US", "Denver", "America/Denver", "US303"),
    Place("US", "Aurora", "America/Denver", "US720"),
    Place("US", "Phoenix", "America/Phoenix", "US602"),
    Place("CA", "Vancouver", "America/Vancouver", "CA604"),
    Place("CA", "Toronto", "America/Toronto", "CA416"),
    Place("CA", "Ottawa", "America/Toronto", "CA613"),
    Place("CA", "Montr\u00e9al", "America/Toronto", "CA514"),
    Place("CA", "Calgary", "America/Edmonton", "CA403"),
    Place("GB", "London", "Europe/London", "GB20"),
    Place("GB", "London", "Europe/London", "GB20"),
    Place("GB", "Leeds", "Europe/London", "GB113"),
    Place("GB", "Sheffield", "Europe/London", "GB114"),
    Place("GB", "Leicester", "Europe/London", "GB116"),
    Place("GB", "Bristol", "Europe/London", "GB117"),
    Place("GB", "Reading", "Europe/London", "GB118"),
    Place("GB", "Birmingham", "Europe/London", "GB121"),
    Place("GB", "Edinburgh", "Europe/London", "GB131"),
    Place("GB", "Glasgow", "Europe/London", "GB141"),
    Place("GB", "Liverpool", "Europe/London", "GB151"),
    Place("GB", "Manchester", "Europe/London", "GB161"),
    Place("GB", "Newcastle upon Tyne", "Europe/London", "GB191"),
    Place("GB", "Cardiff", "Europe/London", "GB29"),
    Place("GB", "Belfast", "Europe/London", "GB28"),
    Place("DE", "Berlin", "Europe/Berlin", "DE30"),
    Place("DE", "Frankfurt am Main", "Europe/Berlin", "DE69"),
    Place("DE", "Hamburg", "Europe/Berlin", "DE40"),
    Place("DE", "K\u00f6ln", "Europe/Berlin", "DE221"),
    Place("DE", "M\u00fcnchen", "Europe/Berlin", "DE89"),
    Place("AU", "Sydney", "Australia/Sydney", "AU2"),
    Place("AU", "Canberra", "Australia/Sydney", "AU2"),
    Place("AU", "Melbourne", "Australia/Melbourne", "AU3"),
    Place("AU", "Hobart", "Australia/Hobart", "AU3"),
    Place("AU", "Brisbane", "Australia/Brisbane", "AU7"),
    Place("AU", "Perth", "Australia/Perth", "AU8"),
    Place("AU", "Adelaide", "Australia/Adelaide", "AU8"),
    Place("FR", "Paris", "Europe/Paris", "FR1"),
    Place("FR", "Nantes", "Europe/Paris", "FR2"),
    Place("FR", "Lille", "Europe/Paris", "FR3"),
    Place("FR", "Lyon", "Europe/Paris", "FR4"),
    Place("FR", "Bordeaux", "Europe/Paris", "FR5"),
]

# National significant numbers (no trunk 0, no country code) of every reserved number we use.


def _landline_ranges() -> dict[str, list[str]]:
    r: dict[str, list[str]] = {}
    for key in [p.area for p in PLACES if p.country in ("US", "CA")]:
        npa = key[2:]
        r[key] = [f"{npa}555{n:04d}" for n in range(100, 200)]  # NXX 555-0100..0199
    gb = {
        "GB20": "2079460",  # 020 7946 0xxx London
        "GB113": "1134960",  # 0113 496 0xxx Leeds
        "GB114": "1144960",
        "GB116": "1164960",
        "GB117": "1174960",
        "GB118": "1184960",
        "GB121": "1214960",
        "GB131": "1314960",
        "GB141": "1414960",
        "GB151": "1514960",
        "GB161": "1614960",
        "GB191": "1914980",  # 0191 498 0xxx Tyneside
        "GB29": "2920180",  # 029 2018 0xxx Cardiff
        "GB28": "2896496",  # 028 9649 6xxx Belfast
    }
    for key, prefix in gb.items():
        r[key] = [f"{prefix}{n:03d}" for n in range(1000)]
    de = {"DE30": "3023125", "DE69": "6990009", "DE40": "4066969", "DE221": "2214710"}
    de["DE89"] = "8999998"
    for key, prefix in de.items():
        r[key] = [f"{prefix}{n:03d}" for n in range(1000)]
    for digit in "2378":  # (0x) 5550 xxxx and (0x) 7010 xxxx
        nums = [f"{digit}5550{n:04d}" for n in range(10000)]
        nums += [f"{digit}7010{n:04d}" for n in range(10000)]
        r[f"AU{digit}"] = nums
    fr = {"FR1": "19900", "FR2": "26191", "FR3": "35301", "FR4": "46571", "FR5": "53649"}
    for key, prefix in fr.items():
        r[key] = [f"{prefix}{n:04d}" for n in range(10000)]
    return r


# ACMA's list of fictitious mobile numbers (each one listed individually, not a range).
AU_MOBILES = [
    "491570006", "491570156", "491570157", "491570158", "491570159", "491570110",
    "491570313", "491570737", "491571266", "491571491", "491571804", "491572549",
    "491572665", "491572983", "491573770", "491573087", "491574118", "491574632",
    "491575254", "491575789", "491576398", "491576801", "491577426", "491577644",
    "491578957", "491578148", "491578888", "491579212", "491579760", "491579455",
]  # fmt: skip


class PhonePool:
    """Draws reserved numbers without replacement, so no number is used twice in the data."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.ranges = _landline_ranges()
        self.used: set[str] = set()
        self.au_mobiles = list(AU_MOBILES)
        rng.shuffle(self.au_mobiles)

    def landline(self, area: str) -> str:
        while True:
            nsn = self.rng.choice(self.ranges[area])
            if nsn not in self.used:
                self.used.add(nsn)
                return nsn

    def au_mobile(self) -> str | None:
        return self.au_mobiles.pop() if self.au_mobiles else None


def e164(country: str, nsn: str) -> str:
    return f"+{CC[country]}{nsn}"


def check_phone(raw: str, region: str) -> str | None:
    """E.164 of ``raw`` parsed for ``region`` when phonenumbers calls it valid, else None."""
    try:
        num = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(num):
        return None
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


NANP_STYLES = [
    "paren", "paren", "dash", "dash", "dot", "space", "plain", "intl", "e164", "one_dash",
    "intl_paren",
]  # fmt: skip
INTL_STYLES = ["national", "national", "national", "intl", "intl", "e164", "compact"]


def format_phone(rng: random.Random, country: str, nsn: str, *, office: bool = False) -> str:
    """Write a reserved number the way people type it, checked to parse back to itself."""
    if country in ("US", "CA"):
        a, b, c = nsn[:3], nsn[3:6], nsn[6:]
        style = rng.choice(NANP_STYLES + (["ext"] if office else []))
        raw = {
            "paren": f"({a}) {b}-{c}",
            "dash": f"{a}-{b}-{c}",
            "dot": f"{a}.{b}.{c}",
            "space": f"{a} {b} {c}",
            "plain": f"{a}{b}{c}",
            "intl": f"+1 {a} {b} {c}",
            "e164": f"+1{a}{b}{c}",
            "one_dash": f"1-{a}-{b}-{c}",
            "intl_paren": f"+1 ({a}) {b}-{c}",
            "ext": f"({a}) {b}-{c} x{rng.randint(10, 499)}",
        }[style]
    else:
        num = phonenumbers.parse(f"+{CC[country]}{nsn}")
        national = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.NATIONAL)
        intl = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        styles = list(INTL_STYLES)
        if country != "AU":
            styles.append("00")  # 0044 20 7946 0018 (Australia's own prefix is 0011)
        if country in ("GB", "DE", "AU"):
            styles.append("trunk")  # +44 (0)20 7946 0018
        if country == "DE":
            styles.append("dash")  # 030 23125-123
        if country == "FR":
            styles.append("dots")  # 01.99.00.12.34
        style = rng.choice(styles)
        cc_part, rest = intl.split(" ", 1)
        if style == "national":
            raw = national
        elif style == "intl":
            raw = intl
        elif style == "e164":
            raw = f"+{CC[country]}{nsn}"
        elif style == "00":  # the international call prefix instead of "+"
            raw = "00" + intl[1:]
        elif style == "compact":
            raw = re.sub(r"[^0-9]", "", national)
            raw = raw if raw.startswith("0") else "0" + raw
        elif style == "trunk":
            raw = f"{cc_part} (0){rest}"
        elif style == "dash":
            area, subscriber = national.split(" ", 1)
            raw = f"{area} {subscriber[:-3]}-{subscriber[-3:]}"
        else:  # dots
            raw = national.replace(" ", ".")
    got = check_phone(raw, country)
    assert got == e164(country, nsn), (raw, country, got)
    return raw


# --------------------------------------------------------------------------------------------
# People
# --------------------------------------------------------------------------------------------

FIRST = {
    "US": "James Olivia Liam Emma Noah Ava Ethan Sophia Mason Isabella Lucas Mia Logan Harper "
    "Elijah Evelyn Aiden Abigail Caleb Ella Maya Jordan Tyler Grace Nathan Chloe Dylan Zoe "
    "Marcus Priya Diego Mei Andre Keisha Omar Rosa Hannah Wyatt Lily Miguel Tanya Derek",
    "CA": "Liam Olivia Noah Emma \u00c9mile Genevi\u00e8ve Mathieu Chlo\u00e9 Owen Avery Ryan "
    "Brooke Connor Madison Justin Tessa Rohan Simran Marc-Andr\u00e9 Isabelle",
    "GB": "Oliver Amelia George Isla Harry Ava Jack Freya Charlie Poppy Alfie Florence Thomas "
    "Evie Oscar Rosie William Imogen Archie Matilda Rhys Siobhan Callum Niamh Aled Fiona "
    "Imran Aisha Gareth Bethan",
    "DE": "Lukas Leon Finn Paul Jonas Felix Maximilian Emilia Hannah Mia Sophie Lena Marie Lea "
    "Clara J\u00fcrgen S\u00f6ren G\u00fcnther Anke Birgit J\u00f6rg Katrin Mehmet Aylin",
    "AU": "Jack Charlotte William Olivia Oliver Amelia Henry Isla Lachlan Matilda Cooper Ruby "
    "Hamish Zara Angus Chloe Kai Sienna Mitchell Tahlia Bronte Darcy",
    "FR": "Gabriel L\u00e9a Louis Chlo\u00e9 Rapha\u00ebl Manon Jules Camille Hugo In\u00e8s "
    "Arthur Zo\u00e9 Th\u00e9o L\u00e9onie Mathis Oc\u00e9ane No\u00e9mie \u00c9tienne "
    "H\u00e9l\u00e8ne Beno\u00eet",
}
LAST = {
    "US": "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
    "Lopez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Thompson White Harris Clark "
    "Lewis Walker Hall Young Allen King Wright Scott Nguyen Patel Kim O'Connor McAllister "
    "Reyes Okafor Fitzgerald Delgado Sullivan Brooks Castillo Bennett Hayes Kowalski",
    "CA": "Tremblay Gagnon Roy C\u00f4t\u00e9 Bouchard Gauthier Morin Lavoie Fortin Smith Brown "
    "Wilson MacDonald Campbell Anderson Singh Chen Leblanc Fraser Wong",
    "GB": "Smith Jones Taylor Brown Williams Wilson Evans Thomas Roberts Walker Wright Robinson "
    "Thompson Hughes Edwards Green Hall Wood Harris Clarke Patel Khan Campbell MacLeod Price "
    "Ellis Ashworth Pemberton Davies Lloyd Fraser Nolan Okoro Gallagher",
    "DE": "M\u00fcller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch "
    "Richter Wolf Schr\u00f6der Neumann Schwarz Zimmermann Braun Kr\u00fcger Hartmann Lange "
    "Werner Krause Vogel Wei\u00df Demir Kaya",
    "AU": "Smith Jones Williams Brown Wilson Taylor Nguyen Johnson Martin White Anderson Walker "
    "Thompson Kelly Ryan Campbell Murphy Mitchell O'Brien Tran Byrne Walsh Papadopoulos",
    "FR": "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent "
    "Lef\u00e8vre Michel Garcia Fournier Girard Bonnet Dupont Lambert Rousseau Faure Mercier "
    "Chevalier",
}

COMPANY_A = (
    "Bluepeak Harborline Ironleaf Quillon Redfern Sunmesa Tallgrass Westbrook Northgate "
    "Copperfield Brightwater Silverbirch Oakhaven Stonebridge Larkspur Pinecrest Riverbend "
    "Foxglove Highmoor Clearwater Kestrel Meridian Driftwood Amberly Granite Willowmere"
).split()
COMPANY_B = (
    "Logistics Analytics Dental Studios Consulting Foods Robotics Insurance Health Freight "
    "Software Energy Realty Outfitters Labs Hospitality Telecom Finance Print Solar"
).split()
COMPANY_SUFFIX = {
    "US": ["Inc.", "LLC", "Corp.", "Group", ""],
    "CA": ["Inc.", "Ltd.", "Corp.", ""],
    "GB": ["Ltd", "Ltd", "plc", "LLP", ""],
    "DE": ["GmbH", "GmbH", "AG", "KG"],
    "AU": ["Pty Ltd", "Pty Ltd", "Group", ""],
    "FR": ["SARL", "SAS", "SA"],
}
COMPANY_ODD = [
    "Fairweather, Hale & Co.",
    'The "Good Coffee" Company',
    "Smith, Jones & Partners LLP",
    "M\u00fcller & S\u00f6hne GmbH",
    "O'Donnell Brothers",
    "Caf\u00e9 de l'Est SARL",
]
TITLES = [
    "Head of Sales", "Operations Manager", "CX Director", "Contact Centre Lead",
    "VP Customer Success", "Office Manager", "Founder", "Procurement Specialist", "IT Manager",
    "Team Lead, Inbound", "Sales Development Rep", "COO", "Marketing Manager", "",
]  # fmt: skip
NOTES = [
    "Downloaded the pricing guide, wants a demo next week",
    "Met at the trade show booth; interested in the predictive dialer",
    'Said "call after 3pm", not before',
    "Prefers e-mail first, then phone",
    "Budget approved for Q3, decision by end of month",
    "Referred by an existing customer",
    "Asked about GDPR and call recording, send the DPA",
    "Gatekeeper: ask for the ops manager, not reception",
    "Wants 25 seats, maybe 40 later",
    "- left voicemail twice",
    "Trial expired; asked for an extension",
    'Interested in "Team" plan, compare with competitor quote',
    "Webinar attendee",
    "Call back in January",
    "Not the decision maker, CFO signs off",
    "Needs Salesforce integration",
    "R\u00fcckruf erbeten, bitte vormittags",
    "Pr\u00e9f\u00e8re \u00eatre rappel\u00e9e le matin",
    "Hot lead!! call today",
    "Existing customer of a reseller, check contract first",
]
MULTILINE_NOTE = 'Spoke to assistant.\nCall back Tuesday 10:00 local time, ask for "Sam".'
DEAL_VALUES = ["12500", "4,200.00", "980", "15000.50", "2,750", "60000", "1.234,50", "350.00"]

LEGACY_ZONE = {
    "America/New_York": "US/Eastern",
    "America/Los_Angeles": "US/Pacific",
    "America/Chicago": "US/Central",
    "Australia/Sydney": "Australia/NSW",
    "America/Toronto": "Canada/Eastern",
    "America/Vancouver": "Canada/Pacific",
}


def ascii_fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]", "", text.lower())


class People:
    """Invented people: names from common-name pools, unique e-mails across every file."""

    def __init__(self, rng: random.Random, pool: PhonePool) -> None:
        self.rng = rng
        self.pool = pool
        self.emails: set[str] = set()
        self.first = {k: v.split() for k, v in FIRST.items()}
        self.last = {k: v.split() for k, v in LAST.items()}

    def email(self, first: str, last: str) -> str:
        rng = self.rng
        f, sur = ascii_fold(first), ascii_fold(last)
        for attempt in range(100):
            pattern = rng.choice(["f.l", "f.l", "f.l", "fl", "f_l", "fl2", "f.l+"])
            loc = {
                "f.l": f"{f}.{sur}",
                "fl": f"{f[0]}{sur}",
                "f_l": f"{f}_{sur}",
                "fl2": f"{f}.{sur}{rng.randint(2, 99)}",
                "f.l+": f"{f}.{sur}+web",
            }[pattern]
            if attempt > 5:
                loc = f"{f}.{sur}{rng.randint(100, 999)}"
            domain = rng.choice(["example.com"] * 5 + ["example.org"] * 3 + ["example.net"] * 2)
            addr = f"{loc}@{domain}"
            if addr not in self.emails:
                self.emails.add(addr)
                return addr
        raise AssertionError("no free e-mail")

    def person(self, country: str) -> dict[str, Any]:
        rng = self.rng
        place = rng.choice([p for p in PLACES if p.country == country])
        first = rng.choice(self.first[country])
        last = rng.choice(self.last[country])
        return {
            "country": country,
            "place": place,
            "first": first,
            "last": last,
            "email": self.email(first, last),
        }


def pick_country(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def phone_zones(raws: list[str], region: str) -> set[str]:
    """Zones libphonenumber gives for the valid numbers among ``raws``, Etc/Unknown left out."""
    zones: set[str] = set()
    for raw in raws:
        got = check_phone(raw, region) if raw.strip() else None
        if got:
            zones.update(phonenumbers.timezone.time_zones_for_number(phonenumbers.parse(got)))
    return zones - {"Etc/Unknown"}


def keep_zone_inferable(
    row: dict[str, Any], zone_col: str, zone: str, phone_cols: list[str]
) -> None:
    """A blank zone only where the phones point to one zone; else the row's own zone.

    The contract infers a blank zone from the phone or takes ``defaults.timezone``; a number that
    could be in several zones (an Australian mobile, (08) Perth/Adelaide) is left out of that
    question so the expected outcome does not hang on how the tool settles it.
    """
    if str(row[zone_col] or "").strip():
        return
    region = str(row.get("Country") or row.get("Region") or "US")
    if len(phone_zones([cell_text(row[c]) for c in phone_cols], region)) > 1:
        row[zone_col] = zone


def zone_cell(rng: random.Random, zone: str, *, empty_rate: float, legacy_rate: float) -> str:
    x = rng.random()
    if x < empty_rate:
        return ""
    if x < empty_rate + legacy_rate and zone in LEGACY_ZONE:
        return LEGACY_ZONE[zone]
    return zone


def messy_email(rng: random.Random, addr: str) -> str:
    """Mostly as is; sometimes capitalised or padded (the tool trims and lower-cases)."""
    x = rng.random()
    if x < 0.07:
        loc, dom = addr.split("@")
        return ".".join(p[:1].upper() + p[1:] for p in loc.split(".")) + "@" + dom.capitalize()
    if x < 0.10:
        return f" {addr} "
    return addr


# --------------------------------------------------------------------------------------------
# Reject bookkeeping
# --------------------------------------------------------------------------------------------


@dataclass
class Reject:
    field: str  # lead field / dynamicData key / "duplicate"
    column: str  # source column holding the bad value
    value: str
    reason: str
    first_row: int | None = None  # duplicates: the row that wins


def reject_dict(rejects: dict[int, Reject], rows_read: int, mapping: str) -> dict[str, Any]:
    rows = sorted(rejects)
    return {
        "mapping": mapping,
        "rows_read": rows_read,
        "rows_valid": rows_read - len(rows),
        "rows_rejected": len(rows),
        "rows_duplicate": sum(1 for r in rows if rejects[r].field == "duplicate"),
        "rejected_rows": {str(r): rejects[r].reason for r in rows},
        "rejected_detail": {
            str(r): {
                "field": rejects[r].field,
                "column": rejects[r].column,
                "value": rejects[r].value,
                **({"first_row": rejects[r].first_row} if rejects[r].first_row else {}),
            }
            for r in rows
        },
    }


def spread_positions(
    rng: random.Random, lo: int, hi: int, count: int, avoid: frozenset[int] = frozenset()
) -> list[int]:
    """``count`` distinct indexes in [lo, hi), one per equal slice, none in ``avoid``."""
    bounds = [lo + (hi - lo) * k // count for k in range(count + 1)]
    out = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        out.append(rng.choice([x for x in range(a, b) if x not in avoid]))
    return out


# --------------------------------------------------------------------------------------------
# leads.csv
# --------------------------------------------------------------------------------------------

LEADS_HEADER = [
    "First Name", "Last Name", "Email", "Mobile", "Office Phone", "Country", "Time Zone",
    "Company", "Job Title", "City", "Deal Value", "Signed Up", "Notes",
]  # fmt: skip
LEADS_WEIGHTS = {"US": 44, "GB": 17, "DE": 10, "AU": 12, "CA": 9, "FR": 8}

# Reject kinds in the order their rows appear in the file (positions are spread evenly).
LEADS_REJECTS = [
    "email_trailing_at", "zone_mars", "phone_tbd", "surname_empty", "duplicate_case",
    "email_at_word", "zone_est", "phone_short", "name_empty", "date_bad", "phone_sci",
    "email_two", "zone_pst", "surname_blank", "phone_letters", "duplicate_same", "zone_cet",
    "phone_none", "email_double_at", "zone_utc_offset", "phone_no_area", "duplicate_padded",
]  # fmt: skip


def company_name(rng: random.Random, country: str) -> str:
    if rng.random() < 0.04:
        return rng.choice(COMPANY_ODD)
    suffix = rng.choice(COMPANY_SUFFIX[country])
    name = f"{rng.choice(COMPANY_A)} {rng.choice(COMPANY_B)}"
    return f"{name} {suffix}".strip()


def random_date(rng: random.Random, start: dt.date, days: int) -> dt.date:
    return start + dt.timedelta(days=rng.randrange(days))


def lead_row(
    rng: random.Random, people: People, pool: PhonePool, country: str | None = None
) -> dict[str, Any]:
    """One valid lead as a dict of cell texts (plus private keys starting with '_')."""
    country = country or pick_country(rng, LEADS_WEIGHTS)
    p = people.person(country)
    place: Place = p["place"]
    mobile = office = ""
    if country in ("US", "CA"):
        shape = rng.choices(["both", "mobile", "office"], weights=[5, 3, 2])[0]
        if shape in ("both", "mobile"):
            other = rng.choice([q for q in PLACES if q.country == country])
            area = place.area if rng.random() < 0.6 else other.area
            mobile = format_phone(rng, country, pool.landline(area))
        if shape in ("both", "office"):
            office = format_phone(rng, country, pool.landline(place.area), office=True)
    elif country == "AU":
        nsn = pool.au_mobile() if rng.random() < 0.65 else None
        if nsn:
            mobile = format_phone(rng, "AU", nsn)
        if not mobile or rng.random() < 0.4:
            office = format_phone(rng, "AU", pool.landline(place.area))
    else:
        # No reserved GB/DE/FR mobile range is valid for phonenumbers (Ofcom's 07700 900xxx is
        # not), so these leads have an office number and sometimes a second landline.
        office = format_phone(rng, country, pool.landline(place.area))
        if rng.random() < 0.2:
            mobile = format_phone(rng, country, pool.landline(place.area))
    country_cell = country
    if country == "US" and rng.random() < 0.05:
        country_cell = ""  # blank: defaults.region (US) applies
    row: dict[str, Any] = {
        "First Name": p["first"],
        "Last Name": p["last"],
        "Email": messy_email(rng, p["email"]),
        "Mobile": mobile,
        "Office Phone": office,
        "Country": country_cell,
        "Time Zone": zone_cell(rng, place.zone, empty_rate=0.05, legacy_rate=0.04),
        "Company": company_name(rng, country),
        "Job Title": rng.choice(TITLES),
        "City": place.city,
        "Deal Value": rng.choice(DEAL_VALUES) if rng.random() < 0.7 else "",
        "Signed Up": (
            random_date(rng, dt.date(2024, 1, 1), 1000).isoformat() if rng.random() < 0.9 else ""
        ),
        "Notes": rng.choice(NOTES) if rng.random() < 0.6 else "",
        "_email": p["email"],
        "_country": country,
        "_place": place,
    }
    keep_zone_inferable(row, "Time Zone", place.zone, ["Mobile", "Office Phone"])
    return row


def make_leads_csv(rng: random.Random, people: People, pool: PhonePool) -> dict[str, Any]:
    rows = [lead_row(rng, people, pool) for _ in range(N_LEADS_CSV)]
    rows[3]["Notes"] = MULTILINE_NOTE  # row 5 spans two physical lines; still one row
    specials = frozenset([3])

    positions = spread_positions(rng, 8, N_LEADS_CSV, len(LEADS_REJECTS), specials)
    rejects: dict[int, Reject] = {}
    originals: set[int] = set()  # rows that a later duplicate repeats
    for kind, i in zip(LEADS_REJECTS, positions, strict=True):
        if kind in ("phone_sci", "phone_short", "phone_no_area") and rows[i]["_country"] != "US":
            rows[i] = lead_row(rng, people, pool, "US")  # a US number mangled on the way
        row = rows[i]
        sheet_row = i + 2
        if kind.startswith("duplicate"):
            # The same lead submitted again: the first row wins, this one is a duplicate.
            taken = specials | set(positions) | originals
            j = next(k for k in range(i - 20, 5, -1) if k not in taken)
            originals.add(j)
            first = rows[j]
            dup = copy.deepcopy(first)
            addr = first["_email"]
            if kind == "duplicate_case":
                # The brief's example: Anna Berg, once lower-case, once capitalised.
                first["First Name"], first["Last Name"] = "Anna", "Berg"
                people.emails.discard(addr)
                addr = "anna.berg@example.com"
                assert addr not in people.emails
                people.emails.add(addr)
                first["Email"] = first["_email"] = addr
                dup = copy.deepcopy(first)
                dup["Email"] = "Anna.Berg@Example.com"
            elif kind == "duplicate_same":
                dup["Email"] = addr
                dup["Notes"] = "Filled in the web form a second time"
            else:
                dup["Email"] = f"  {addr.upper()} "
            if dup["Office Phone"] and first["_country"] in CC:
                nsn = re.sub(r"\D", "", check_phone(dup["Office Phone"], first["_country"]) or "")
                nsn = nsn[len(str(CC[first["_country"]])) :]
                dup["Office Phone"] = format_phone(rng, first["_country"], nsn)
            dup["Signed Up"] = ""
            rows[i] = dup
            rejects[sheet_row] = Reject(
                "duplicate",
                "Email",
                dup["Email"],
                f"duplicate of row {j + 2} (email {addr})",
                first_row=j + 2,
            )
            continue
        f, sur = ascii_fold(row["First Name"]), ascii_fold(row["Last Name"])
        if kind.startswith("email"):
            value = {
                "email_trailing_at": f"{f}.{sur}@",
                "email_at_word": f"{f}.{sur} at example.com",
                "email_two": f"{f}.{sur}@example.com; {f}@example.org",
                "email_double_at": f"{f}.{sur}@@example.net",
            }[kind]
            row["Email"] = value
            rejects[sheet_row] = Reject("email", "Email", value, f"bad email ({value!r})")
        elif kind.startswith("zone"):
            value = {
                "zone_mars": "Mars/Olympus",
                "zone_est": "EST",
                "zone_pst": "PST",
                "zone_cet": "CET",
                "zone_utc_offset": "UTC-5",
            }[kind]
            row["Time Zone"] = value
            why = "unknown time zone" if value in ("Mars/Olympus",) else "zone abbreviation"
            if value.startswith("UTC"):
                why = "fixed UTC offset, not a zone"
            rejects[sheet_row] = Reject("timezoneId", "Time Zone", value, f"{why} ({value!r})")
        elif kind in ("surname_empty", "surname_blank"):
            value = "" if kind == "surname_empty" else "   "
            row["Last Name"] = value
            rejects[sheet_row] = Reject("surname", "Last Name", value, "missing surname")
        elif kind == "name_empty":
            row["First Name"] = ""
            rejects[sheet_row] = Reject("name", "First Name", "", "missing first name")
        elif kind == "date_bad":
            row["Signed Up"] = "2025-02-30"
            rejects[sheet_row] = Reject(
                "signed_up", "Signed Up", "2025-02-30", "bad date in Signed Up ('2025-02-30')"
            )
        else:  # phones: every phone column of the row is unusable
            mobile, office = {
                "phone_tbd": ("TBD", ""),
                "phone_short": ("555-01", ""),
                "phone_sci": ("4.15555E+09", ""),
                "phone_letters": ("ask for reception", "n/a"),
                "phone_none": ("", ""),
                "phone_no_area": ("555-0147", ""),
            }[kind]
            row["Mobile"], row["Office Phone"] = mobile, office
            shown = " / ".join(v for v in (mobile, office) if v)
            reason = f"no valid phone ({shown!r})" if shown else "no phone (both columns empty)"
            rejects[sheet_row] = Reject("phones", "Mobile", mobile, reason)

    # A few odd but valid values a careless importer would break, on rows that load.
    free = [k for k in range(30, len(rows)) if k not in positions and k not in originals]
    nan = next(k for k in free if rows[k]["_country"] == "US")
    rows[nan]["First Name"], rows[nan]["Last Name"] = "Nan", "Null"
    rows[nan]["Email"] = people.email("Nan", "Null")
    rest = [k for k in free if k != nan]
    rows[rest[0]]["Last Name"] += "\u00a0"  # trailing no-break space
    rows[rest[1]]["First Name"] = rows[rest[1]]["First Name"].upper()
    rows[rest[2]]["Notes"] = "+ upsell: wants the recording add-on"
    kyiv = next(k for k in rest[3:] if rows[k]["_country"] in ("DE", "GB"))
    rows[kyiv]["Time Zone"] = "Europe/Kiev"
    rows[kyiv]["Notes"] = "Works from the Kyiv office, call in Kyiv office hours"
    sydney = [k for k in rest if rows[k]["Time Zone"] == "Australia/Sydney"]
    for k in sydney[:2]:
        rows[k]["Time Zone"] = "Australia/NSW"

    # Assert each row is what it is meant to be, before writing.
    for i, row in enumerate(rows):
        assert_row("leads.csv", i + 2, row_view_csv(row), rejects.get(i + 2))

    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(LEADS_HEADER)
    for row in rows:
        w.writerow([row[h] for h in LEADS_HEADER])
    (OUT / "leads.csv").write_bytes(buf.getvalue().encode("utf-8"))
    return reject_dict(rejects, len(rows), "mappings/leads.yaml")


def row_view_csv(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["First Name"],
        "surname": row["Last Name"],
        "email": row["Email"],
        "zone": row["Time Zone"],
        "region": row["Country"].strip() or "US",
        "phones": [row["Mobile"], row["Office Phone"]],
        "dates": [row["Signed Up"]],
    }


# --------------------------------------------------------------------------------------------
# Checks shared by the generator (before writing) and the read-back (after writing)
# --------------------------------------------------------------------------------------------

EMAIL_RE = re.compile(r"^[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)+$")
ZONES = zoneinfo.available_timezones()


def zone_problem(zone: str) -> str | None:
    """Why ``zone`` is no good for timezoneId under the contract (None when fine or empty)."""
    if not zone:
        return None
    if zone not in ZONES:
        return "unknown zone"
    if "/" not in zone or zone.startswith(("Etc/", "SystemV/")):
        return "abbreviation or fixed offset"
    return None


def date_problem(value: Any) -> str | None:
    if value in ("", None) or isinstance(value, dt.date):
        return None
    try:
        dt.date.fromisoformat(str(value).strip())
    except ValueError:
        return "not a date"
    return None


def row_problems(view: dict[str, Any]) -> dict[str, str]:
    """The contract's per-row checks (duplicates aside): field -> problem."""
    out: dict[str, str] = {}
    if not str(view["name"]).strip():
        out["name"] = "missing"
    if not str(view["surname"]).strip():
        out["surname"] = "missing"
    if not EMAIL_RE.match(str(view["email"]).strip().lower()):
        out["email"] = "invalid"
    zp = zone_problem(str(view["zone"]).strip())
    if zp:
        out["timezoneId"] = zp
    phones = [str(p).strip() for p in view["phones"] if str(p).strip()]
    valid = [p for p in phones if check_phone(p, view["region"])]
    if not str(view["zone"]).strip() and len(phone_zones(valid, view["region"])) > 1:
        out["zone_ambiguous"] = "blank zone, phones in several zones"  # never in our data
    if not valid:
        out["phones"] = "no valid phone"
    elif len(valid) != len(phones):
        out["phones_partial"] = "a non-empty phone is invalid"  # never in our data
    for d in view["dates"]:
        if date_problem(d):
            out["date"] = "not a date"
    return out


FIELD_OF = {"signed_up": "date", "renewal_date": "date", "partner_since": "date"}


def assert_row(label: str, sheet_row: int, view: dict[str, Any], rej: Reject | None) -> None:
    problems = row_problems(view)
    if rej is None or rej.field == "duplicate":
        assert not problems, (label, sheet_row, problems, view)
    else:
        want = FIELD_OF.get(rej.field, rej.field)
        assert set(problems) == {want}, (label, sheet_row, problems, rej)


# --------------------------------------------------------------------------------------------
# accounts.xlsx
# --------------------------------------------------------------------------------------------

ACCOUNT_HEADER = [
    "First Name", "Last Name", "Email", "Phone", "Country", "Time Zone", "Account",
    "Employees", "Renewal Date", "Notes",
]  # fmt: skip
PARTNER_HEADER = [
    "Contact First", "Contact Last", "Work Email", "Direct Line", "Mobile", "Region", "TZ",
    "Partner Company", "Partner Tier", "Partner Since", "Comments",
]  # fmt: skip
ACCOUNT_WEIGHTS = {"US": 45, "GB": 18, "DE": 10, "AU": 12, "CA": 8, "FR": 7}
US_PHONE_FORMAT = "[<=9999999]###-####;(###) ###-####"  # Excel's "Phone Number" format
ACCOUNT_NOTES = [
    "Renewal owner changed in March",
    "Asked for a multi-year quote",
    "Churn risk: low usage last quarter",
    "Upgrade to 50 seats discussed",
    "Pays by invoice, PO required",
    "Champion left; new contact",
    'Wants "quiet hours" configured, see ticket',
    "",
    "",
]


def phone_cell(rng: random.Random, country: str, nsn: str) -> tuple[Any, str | None]:
    """A phone as an Excel cell value: a number (with a display format) or typed text."""
    if rng.random() < 0.45:
        if country in ("US", "CA"):
            if rng.random() < 0.7:
                return int(nsn), US_PHONE_FORMAT
            return int(f"1{nsn}"), "0"
        if rng.random() < 0.5:
            return int(f"{CC[country]}{nsn}"), '"+"0'  # typed with the country code
        # Typed with the trunk 0, which Excel dropped; a format shows it again.
        fmt = "0" * (len(nsn) + 1)
        if country == "AU":
            fmt = "0000 000 000" if nsn.startswith("4") else "00 0000 0000"
        return int(nsn), fmt
    return format_phone(rng, country, nsn), None


def cell_text(value: Any) -> str:
    """What the tool reads from a cell: numbers without '.0', dates as YYYY-MM-DD."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def account_row(rng: random.Random, people: People, pool: PhonePool) -> dict[str, Any]:
    country = pick_country(rng, ACCOUNT_WEIGHTS)
    p = people.person(country)
    place: Place = p["place"]
    nsn = None
    if country == "AU" and rng.random() < 0.5:
        nsn = pool.au_mobile()
    nsn = nsn or pool.landline(place.area)
    phone, fmt = phone_cell(rng, country, nsn)
    renewal = random_date(rng, dt.date(2026, 1, 1), 700) if rng.random() < 0.85 else None
    row: dict[str, Any] = {
        "First Name": p["first"],
        "Last Name": p["last"],
        "Email": messy_email(rng, p["email"]),
        "Phone": phone,
        "Country": country,
        "Time Zone": zone_cell(rng, place.zone, empty_rate=0.05, legacy_rate=0.05),
        "Account": company_name(rng, country),
        "Employees": rng.choice([8, 12, 25, 40, 75, 120, 250, 500, 1200, 4800]),
        "Renewal Date": renewal,
        "Notes": rng.choice(ACCOUNT_NOTES),
        "_fmt": {"Phone": fmt},
        "_email": p["email"],
        "_country": country,
    }
    keep_zone_inferable(row, "Time Zone", place.zone, ["Phone"])
    return row


def partner_row(rng: random.Random, people: People, pool: PhonePool) -> dict[str, Any]:
    country = pick_country(rng, {"US": 40, "GB": 20, "DE": 15, "AU": 15, "CA": 5, "FR": 5})
    p = people.person(country)
    place: Place = p["place"]
    direct, dfmt = phone_cell(rng, country, pool.landline(place.area))
    mobile: Any = None
    mfmt = None
    if country in ("US", "CA") and rng.random() < 0.6:
        mobile, mfmt = phone_cell(rng, country, pool.landline(place.area))
    elif country == "AU" and rng.random() < 0.7:
        nsn = pool.au_mobile()
        if nsn:
            mobile, mfmt = phone_cell(rng, country, nsn)
    since = random_date(rng, dt.date(2018, 1, 1), 2900) if rng.random() < 0.9 else None
    row: dict[str, Any] = {
        "Contact First": p["first"],
        "Contact Last": p["last"],
        "Work Email": messy_email(rng, p["email"]),
        "Direct Line": direct,
        "Mobile": mobile,
        "Region": country,
        "TZ": zone_cell(rng, place.zone, empty_rate=0.05, legacy_rate=0.05),
        "Partner Company": company_name(rng, country),
        "Partner Tier": rng.choice(["Gold", "Silver", "Silver", "Bronze", "Registered"]),
        "Partner Since": since,
        "Comments": rng.choice(["", "", "Co-sell agreement signed", "Quarterly review due"]),
        "_fmt": {"Direct Line": dfmt, "Mobile": mfmt},
        "_email": p["email"],
        "_country": country,
    }
    keep_zone_inferable(row, "TZ", place.zone, ["Direct Line", "Mobile"])
    return row


def make_duplicate(
    rows: list[dict[str, Any]], i: int, j: int, email_col: str, *, cased: bool, offset: int
) -> Reject:
    """Make data row ``i`` a re-submission of row ``j`` (0-based); rows start at ``offset``."""
    first = rows[j]
    dup = copy.deepcopy(first)
    addr = first["_email"]
    if cased:
        loc, dom = addr.split("@")
        dup[email_col] = loc.title() + "@" + dom.upper()
    else:
        dup[email_col] = addr
    rows[i] = dup
    reason = f"duplicate of row {j + offset} (email {addr})"
    return Reject("duplicate", email_col, dup[email_col], reason, first_row=j + offset)


def make_accounts_xlsx(rng: random.Random, people: People, pool: PhonePool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    wb = Workbook()
    bold = Font(bold=True)

    # ---- Leads: header on row 1, data from row 2.
    rows = [account_row(rng, people, pool) for _ in range(N_ACCOUNTS)]
    rej: dict[int, Reject] = {}
    i_email, i_phone, i_name, i_dup = spread_positions(rng, 4, N_ACCOUNTS, 4)
    r = rows[i_email]
    bad = f"{ascii_fold(r['First Name'])}.{ascii_fold(r['Last Name'])}example.com"
    r["Email"] = bad
    rej[i_email + 2] = Reject("email", "Email", bad, f"bad email ({bad!r}: no @)")
    rows[i_phone]["Phone"], rows[i_phone]["_fmt"]["Phone"] = "TBC", None
    rej[i_phone + 2] = Reject("phones", "Phone", "TBC", "no valid phone ('TBC')")
    rows[i_name]["First Name"] = None
    rej[i_name + 2] = Reject("name", "First Name", "", "missing first name")
    j = next(k for k in range(i_dup - 7, 0, -1) if k not in (i_email, i_phone, i_name))
    rej[i_dup + 2] = make_duplicate(rows, i_dup, j, "Email", cased=True, offset=2)
    for k, row in enumerate(rows):
        assert_row("Leads", k + 2, account_view(row), rej.get(k + 2))

    ws = wb.active
    assert ws is not None
    ws.title = "Leads"
    ws.append(ACCOUNT_HEADER)
    for row in rows:
        ws.append([row[h] for h in ACCOUNT_HEADER])
    style_sheet(ws, ACCOUNT_HEADER, rows, header_row=1, bold=bold, rng=rng)
    out["accounts.xlsx#Leads"] = reject_dict(rej, len(rows), "mappings/accounts.yaml")

    # ---- Partners: title on row 1, blank row 2, header row 3, data from row 4.
    rows = [partner_row(rng, people, pool) for _ in range(N_PARTNERS)]
    rej = {}
    first_data = 4
    i_sur, i_tz, i_dup = spread_positions(rng, 3, N_PARTNERS, 3)
    rows[i_sur]["Contact Last"] = None
    rej[i_sur + first_data] = Reject("surname", "Contact Last", "", "missing surname")
    rows[i_tz]["TZ"] = "CET"
    rej[i_tz + first_data] = Reject("timezoneId", "TZ", "CET", "zone abbreviation ('CET')")
    j = next(k for k in range(i_dup - 9, 0, -1) if k not in (i_sur, i_tz))
    rej[i_dup + first_data] = make_duplicate(
        rows, i_dup, j, "Work Email", cased=False, offset=first_data
    )
    rows[i_dup]["Partner Tier"] = "Gold"  # re-exported after an upgrade
    for k, row in enumerate(rows):
        assert_row("Partners", k + first_data, partner_view(row), rej.get(k + first_data))

    ws = wb.create_sheet("Partners")
    ws.append([EXPORT_TITLE])
    ws["A1"].font = Font(bold=True, size=13)
    ws.append([])
    ws.append(PARTNER_HEADER)
    for row in rows:
        ws.append([row[h] for h in PARTNER_HEADER])
    style_sheet(ws, PARTNER_HEADER, rows, header_row=3, bold=bold, rng=rng)
    out["accounts.xlsx#Partners"] = reject_dict(rej, len(rows), "mappings/accounts.Partners.yaml")

    save_deterministic(wb, OUT / "accounts.xlsx")
    return out


def account_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": cell_text(row["First Name"]),
        "surname": cell_text(row["Last Name"]),
        "email": cell_text(row["Email"]),
        "zone": cell_text(row["Time Zone"]),
        "region": cell_text(row["Country"]) or "US",
        "phones": [cell_text(row["Phone"])],
        "dates": [row["Renewal Date"]],
    }


def partner_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": cell_text(row["Contact First"]),
        "surname": cell_text(row["Contact Last"]),
        "email": cell_text(row["Work Email"]),
        "zone": cell_text(row["TZ"]),
        "region": cell_text(row["Region"]) or "US",
        "phones": [cell_text(row["Direct Line"]), cell_text(row["Mobile"])],
        "dates": [row["Partner Since"]],
    }


DATE_FORMATS = ["yyyy-mm-dd", "mm/dd/yyyy", "d mmm yyyy"]


def style_sheet(
    ws: Any,
    header: list[str],
    rows: list[dict[str, Any]],
    *,
    header_row: int,
    bold: Font,
    rng: random.Random,
) -> None:
    for cell in ws[header_row]:
        cell.font = bold
    ws.freeze_panes = ws.cell(row=header_row + 1, column=1)
    date_fmt = rng.choice(DATE_FORMATS)
    for k, row in enumerate(rows):
        excel_row = header_row + 1 + k
        for col, h in enumerate(header, start=1):
            cell = ws.cell(row=excel_row, column=col)
            fmt = row["_fmt"].get(h)
            if fmt:
                cell.number_format = fmt
            elif isinstance(cell.value, dt.date):
                cell.number_format = date_fmt
    for col, h in enumerate(header, start=1):
        width = max(len(h), *(len(cell_text(r[h])) for r in rows)) + 2
        ws.column_dimensions[ws.cell(row=header_row, column=col).column_letter].width = min(
            width, 48
        )


def save_deterministic(wb: Workbook, path: Path) -> None:
    """Save with fixed zip time stamps and document dates, so re-runs are byte-identical."""
    wb.properties.creator = "scripts/make_sample_data.py"
    buf = io.BytesIO()
    wb.save(buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = data.decode("utf-8")
                text = re.sub(
                    r"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:)",
                    rf"\g<1>{FIXED_ISO}\g<3>",
                    text,
                )
                data = text.encode("utf-8")
            zi = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            dst.writestr(zi, data)
    path.write_bytes(out.getvalue())


# --------------------------------------------------------------------------------------------
# Read-back: the written files through the mappings, against the expected outcome
# --------------------------------------------------------------------------------------------


def norm(h: Any) -> str:
    return str(h or "").strip().casefold()


def read_back_rows(source: str, mapping: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(sheet row, {normalised header: cell}) for every data row of a written file."""
    read = mapping.get("read") or {}
    header_row = int(read.get("header_row", 1))
    if source.endswith(".csv"):
        raw = (OUT / source).read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf"), "leads.csv must have no BOM"
        with open(OUT / source, newline="", encoding="utf-8") as fh:
            records = list(csv.reader(fh))
        header = [norm(h) for h in records[header_row - 1]]
        out = []
        for k, rec in enumerate(records[header_row:]):
            assert len(rec) == len(header), (source, k, rec)
            out.append((header_row + 1 + k, dict(zip(header, rec, strict=True))))
        return out
    wb = load_workbook(OUT / source, read_only=True)
    ws = wb[read["sheet"]]
    values = list(ws.iter_rows(values_only=True))
    header = [norm(h) for h in values[header_row - 1]]
    out = []
    for k, vals in enumerate(values[header_row:]):
        if all(v is None for v in vals):
            raise AssertionError(f"blank row {header_row + 1 + k} in {source}")
        out.append((header_row + 1 + k, dict(zip(header, vals, strict=True))))
    wb.close()
    return out


def verify(expected: dict[str, Any]) -> None:
    """Apply the contract's row rules to the written files via the mappings; compare."""
    for label, exp in expected.items():
        source = label.split("#")[0]
        mapping = yaml.safe_load((ROOT / exp["mapping"]).read_text(encoding="utf-8"))
        rows = read_back_rows(source, mapping)
        headers = set(rows[0][1])
        fields = mapping["fields"]
        columns = list(fields.values())
        columns += [p["column"] for p in mapping.get("phones", [])]
        columns += [
            v["column"] if isinstance(v, dict) else v for v in mapping["dynamicData"].values()
        ]
        columns += [c["column"] for c in mapping.get("comments", [])]
        columns.append(mapping["defaults"]["region_column"])
        missing = [c for c in columns if norm(c) not in headers]
        assert not missing, (label, missing)
        date_cols = [
            norm(v["column"])
            for v in mapping["dynamicData"].values()
            if isinstance(v, dict) and v.get("type") == "date"
        ]
        region_col = norm(mapping["defaults"]["region_column"])
        got: dict[int, str] = {}
        first_by_key: dict[str, int] = {}
        for sheet_row, cells in rows:
            view = {
                "name": cell_text(cells[norm(fields["name"])]),
                "surname": cell_text(cells[norm(fields["surname"])]),
                "email": cell_text(cells[norm(fields["email"])]),
                "zone": cell_text(cells[norm(fields["timezoneId"])]),
                "region": cell_text(cells[region_col]).strip().upper()
                or mapping["defaults"]["region"],
                "phones": [cell_text(cells[norm(p["column"])]) for p in mapping["phones"]],
                "dates": [
                    cells[c] if isinstance(cells[c], dt.date) else cell_text(cells[c])
                    for c in date_cols
                ],
            }
            problems = row_problems(view)
            assert "phones_partial" not in problems, (label, sheet_row)
            key = view["email"].strip().lower()
            if "email" not in problems:
                if key in first_by_key:
                    assert not problems, (label, sheet_row, "duplicate with other problems")
                    got[sheet_row] = f"duplicate:{first_by_key[key]}"
                    continue
                first_by_key[key] = sheet_row
            if problems:
                got[sheet_row] = ",".join(sorted(problems))
        want = {}
        for r, d in exp["rejected_detail"].items():
            f = d["field"]
            want[int(r)] = f"duplicate:{d['first_row']}" if f == "duplicate" else FIELD_OF.get(f, f)
        assert got == want, (label, got, want)
        assert len(rows) == exp["rows_read"], label
        # Every file is unique across the run apart from the intended duplicates.
    all_keys: dict[str, str] = {}
    for label, exp in expected.items():
        source = label.split("#")[0]
        mapping = yaml.safe_load((ROOT / exp["mapping"]).read_text(encoding="utf-8"))
        dups = {int(r) for r, d in exp["rejected_detail"].items() if d["field"] == "duplicate"}
        for sheet_row, cells in read_back_rows(source, mapping):
            key = cell_text(cells[norm(mapping["fields"]["email"])]).strip().lower()
            if sheet_row in dups or not key:
                continue
            assert key not in all_keys, (label, sheet_row, key, all_keys[key])
            all_keys[key] = label


# --------------------------------------------------------------------------------------------
# callcentre.csv: callbacks, meetings, notes, per-row stages and sources (no randomness)
# --------------------------------------------------------------------------------------------

CALLCENTRE_HEADER = [
    "First Name", "Last Name", "Email", "Phone", "Time Zone", "Stage", "Lead Source",
    "Call Back At", "Meeting Start", "Meeting End", "Last Call Note", "Last Call At",
    "Agent Remark",
]  # fmt: skip
#: Rows written by hand: times in 2030 (future for years; the mapping skips a past callback
#: anyway, so the counts below do not change with the date), each on the lead's own clock.
CALLCENTRE_ROWS = [
    ["Ava", "Lopez", "cc.ava.lopez@example.com", "+1 212 555 0142", "America/New_York", "Hot",
     "Web form", "2030-03-05 10:30", "", "", "Asked for pricing, call back Tuesday",
     "2030-02-27 16:05", ""],
    ["Ben", "Carter", "cc.ben.carter@example.org", "(312) 555-0117", "America/Chicago", "Warm",
     "Referral", "2030-03-11 09:15", "", "", "Wants a demo with the team", "2030-02-28 11:40",
     "Decision maker"],
    ["Chloe", "Nguyen", "cc.chloe.nguyen@example.net", "415-555-0193", "America/Los_Angeles",
     "Cold", "Web form", "", "2030-03-12 14:00", "2030-03-12 14:45", "Meeting booked by phone",
     "2030-02-28 09:20", ""],
    ["Dev", "Patel", "cc.dev.patel@example.com", "+44 20 7946 0321", "Europe/London", "Hot",
     "Referral", "2030-03-04 19:30", "", "", "", "", "Prefers evenings"],
    ["Emma", "Schulz", "cc.emma.schulz@example.com", "+49 30 23125 417", "Europe/Berlin", "Hot",
     "Web form", "2030-03-06 21:30", "", "", "Call after work", "2030-02-26 18:00", ""],
    ["Felix", "Martin", "cc.felix.martin@example.org", "+33 1 99 00 12 34", "Europe/Paris",
     "Warm", "", "", "", "", "", "", ""],
    ["Grace", "Wilson", "cc.grace.wilson@example.net", "+61 491 570 156", "Australia/Sydney",
     "Cold", "Referral", "2030-03-07 11:00", "", "", "Time difference: mornings only",
     "2030-02-27 10:30", ""],
    ["Hugo", "Reyes", "cc.hugo.reyes@example.com", "+1 646 555 0168", "America/New_York", "Hot",
     "Web form", "2030-03-10 02:30", "", "", "", "", ""],
    ["Ines", "Fischer", "cc.ines.fischer@example.org", "+49 30 23125 418", "Europe/Berlin",
     "Warm", "Referral", "2030-10-27 02:30", "", "", "", "", ""],
    ["Jack", "Turner", "cc.jack.turner@example.net", "+1 206 555 0155", "America/Los_Angeles",
     "Lukewarm", "Web form", "2030-03-08 12:00", "", "", "", "", ""],
    ["Kira", "Novak", "cc.kira.novak@example.com", "+44 161 496 0724", "Europe/London", "Cold",
     "Web form", "", "", "", "Sent brochure", "2030-02-25 15:45", "Follow up in spring"],
    ["Liam", "Brooks", "cc.liam.brooks@example.org", "(212) 555-0176", "America/New_York", "Hot",
     "Referral", "2030-03-05 17:00", "2030-03-13 10:00", "2030-03-13 11:00",
     "Callback and meeting both", "2030-02-28 13:10", ""],
]  # fmt: skip
#: Rejected rows of callcentre.csv: row → (field, column, value, reason). The stage is checked
#: against the project's statuses, so only an import (or validate with an API key) finds row 11.
CALLCENTRE_REJECTS = {
    9: ("callback", "Call Back At", "2030-03-10 02:30",
        "callback time in the spring DST gap of America/New_York"),
    10: ("callback", "Call Back At", "2030-10-27 02:30",
         "callback time in the autumn DST fold of Europe/Berlin"),
    11: ("status", "Stage", "Lukewarm", "stage not among the project's statuses"),
}  # fmt: skip


def make_callcentre_csv() -> dict[str, Any]:
    """Write ``sample_data/callcentre.csv``; returns its expected outcome (imported with
    ``mappings/callcentre.yaml`` into the sandbox's Demo project)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CALLCENTRE_HEADER)
    writer.writerows(CALLCENTRE_ROWS)
    (OUT / "callcentre.csv").write_bytes(buf.getvalue().encode("utf-8"))
    for row in CALLCENTRE_ROWS:
        assert check_phone(row[3], "US"), row[3]
    loaded = [r for n, r in enumerate(CALLCENTRE_ROWS, start=2) if n not in CALLCENTRE_REJECTS]
    callbacks = sum(1 for r in loaded if r[7])
    meetings = sum(1 for r in loaded if r[8])
    return {
        "mapping": "mappings/callcentre.yaml",
        "rows_read": len(CALLCENTRE_ROWS),
        "rows_valid": len(loaded),
        "rows_rejected": len(CALLCENTRE_REJECTS),
        "rows_duplicate": 0,
        "rejected_rows": {str(r): why for r, (_, _, _, why) in CALLCENTRE_REJECTS.items()},
        "rejected_detail": {
            str(r): {"field": f, "column": c, "value": v}
            for r, (f, c, v, _) in CALLCENTRE_REJECTS.items()
        },
        "tasks_created": callbacks + meetings,
        "notes_with_leads": sum(1 for r in loaded for cell in (r[10], r[12]) if cell),
    }


# --------------------------------------------------------------------------------------------
# Report: expected.json, README.md, and the table on stdout
# --------------------------------------------------------------------------------------------


def outcome_tables(expected: dict[str, Any]) -> str:
    lines = [
        "| file | mapping | rows read | valid (leads) | rejected | of which duplicates |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for label, e in expected.items():
        lines.append(
            f"| `{label}` | `{e['mapping']}` | {e['rows_read']} | {e['rows_valid']} | "
            f"{e['rows_rejected']} | {e['rows_duplicate']} |"
        )
    total = {k: sum(e[k] for e in expected.values()) for k in ("rows_read", "rows_valid")}
    rej = sum(e["rows_rejected"] for e in expected.values())
    dup = sum(e["rows_duplicate"] for e in expected.values())
    lines.append(f"| **total** | | {total['rows_read']} | {total['rows_valid']} | {rej} | {dup} |")
    for label, e in expected.items():
        lines += ["", f"### Rejected rows of `{label}`", ""]
        lines += ["| row | field | column | value | reason |", "| ---: | --- | --- | --- | --- |"]
        for r, reason in e["rejected_rows"].items():
            d = e["rejected_detail"][r]
            value = "(empty)" if not d["value"].strip() else f"`{d['value'].strip()}`"
            if d["value"] and not d["value"].strip():
                value = "(spaces only)"
            reason = reason.replace("|", "\\|")
            lines.append(f"| {r} | {d['field']} | {d['column']} | {value} | {reason} |")
    return "\n".join(lines)


README_HEAD = """\
# Sample data

Generated by `scripts/make_sample_data.py` (`make sample-data`); do not edit by hand, re-run the
script. It is deterministic (`random.Random({seed})`, fixed zip time stamps), so a re-run gives
byte-identical files. `make demo` imports these files through `mappings/` into the sandbox.

| file | what it is | mapping |
| --- | --- | --- |
| `callcentre.csv` | a call centre's list, written by hand: callback times, meetings, the \
last call's note with its time, an agent's remark, a stage and a lead source per row, {n_cc} \
rows across seven zones (two callbacks fall in a daylight-saving gap or fold and one stage is \
not the project's, so 3 are rejected on import; validate offline cannot check the stage). \
| `mappings/callcentre.yaml` |
| `leads.csv` | a marketing lead list: UTF-8 (no BOM), comma, CRLF, header on row 1; {n_csv} data \
rows. Columns: {csv_cols}. | `mappings/leads.yaml` |
| `accounts.xlsx`, sheet `Leads` | B2B account contacts, header on row 1; {n_acc} data rows. \
Phones partly stored as Excel **numbers** (some with a phone display format, some with the \
trunk 0 dropped and shown by a format, some with the country code), partly as text; \
`Employees` are numbers, `Renewal Date` real date cells. | `mappings/accounts.yaml` |
| `accounts.xlsx`, sheet `Partners` | partner contacts as exported from a partner portal: a \
title on row 1 (`{title}`), row 2 blank, header on **row 3**, data from row 4; {n_par} rows. \
`Partner Since` is a date cell. | `mappings/accounts.Partners.yaml` |
| `expected.json` | the exact outcome below, machine-readable, for the tests. | |

## Where the data comes from

Everything is invented. Names are random pairs from common first-name and surname lists per
country; companies are random word pairs. E-mail addresses are only at `example.com`,
`example.org` and `example.net` (RFC 2606). Phone numbers are only from ranges the regulators
reserve for films, drama and documentation, and the script asserts each number of a row meant to
load with `phonenumbers.is_valid_number` for that row's country:

| country | ranges used |
| --- | --- |
| US, CA | NXX 555-0100 to 555-0199 (NANPA's fictional range) with area codes 202 206 212 \
213 214 303 305 312 404 415 503 512 602 617 646 702 718 720 (US) and 403 416 514 604 613 (CA) |
| GB | Ofcom drama numbers: 020 7946 0xxx; 0113/0114/0116/0117/0118/0121/0131/0141/0151/0161 \
496 0xxx; 0191 498 0xxx; 029 2018 0xxx; 028 9649 6xxx |
| DE | Bundesnetzagentur "Drama Numbers": 030 23125 xxx, 069 90009 xxx, 040 66969 xxx, \
0221 4710 xxx, 089 99998 xxx |
| AU | ACMA fictitious numbers: the listed mobiles 0491 570 006 ... 0491 579 760 (30 numbers), \
(02/03/07/08) 5550 xxxx and 7010 xxxx |
| FR | ARCEP fiction numbers: 01 99 00 xx xx, 02 61 91 xx xx, 03 53 01 xx xx, \
04 65 71 xx xx, 05 36 49 xx xx |

Not used, because `phonenumbers` does not accept them as valid: Ofcom's drama mobiles
07700 900xxx and 01632 960xxx, 0115 496 0xxx, ARCEP's mobile range 06 39 98 xx xx, Ireland's
020 91x xxxx. So GB, DE and FR leads carry a landline (sometimes one in the Mobile column too).

Phones are written in the shapes people type them (42 distinct shapes), such as `(415) 555-0123`,
`415.555.0123`,
`1-415-555-0123`, `+1 (415) 555-0123`, `+14155550123`, `(212) 555-0143 x214`,
`020 7946 0018`, `+44 (0)20 7946 0018`, `0044 20 7946 0018`, `030 23125-123`,
`01.99.00.12.34`, `0491 570 156` and so on; numbers without `+` are read in the row's country
(`Country` / `Region` column, `defaults.region_column`; a blank country means US).

Other things in the files that a careless importer breaks: a quoted note spanning two lines
(leads.csv row 5, still one row), notes and company names with commas and doubled quotes,
e-mails in mixed case or with surrounding spaces, a trailing no-break space after a surname,
the name `Nan Null`, a note starting with `+`, deal values typed as text (`4,200.00`,
`1.234,50`), blank Country cells, empty time zones (only where the phone points to a single
zone, so inferring it or taking the default are both unambiguous),
legacy zone links (`US/Eastern`, `US/Pacific`, `US/Central`, `Canada/Eastern`,
`Canada/Pacific`, `Australia/NSW`, `Europe/Kiev`) that go out canonical.

## Expected outcome

Row numbers are those a spreadsheet shows (header row 1 for `leads.csv` and `Leads`, so the first
data row is 2; header row 3 for `Partners`, so its first data row is 4). A quoted cell spanning
two lines is still one row. Each rejected row has exactly one problem; a duplicate is otherwise
valid and names the row that wins. The campaign is set in every mapping, so a lead needs a valid
phone. Rows meant to load have only valid phones (a row never mixes a good and a bad number).

"""


def write_reports(expected: dict[str, Any]) -> str:
    (OUT / "expected.json").write_text(
        json.dumps(expected, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    table = outcome_tables(expected)
    head = README_HEAD.format(
        seed=SEED,
        n_csv=N_LEADS_CSV,
        n_acc=N_ACCOUNTS,
        n_par=N_PARTNERS,
        title=EXPORT_TITLE,
        csv_cols=", ".join(f"`{h}`" for h in LEADS_HEADER),
        n_cc=len(CALLCENTRE_ROWS),
    )
    (OUT / "README.md").write_text(head + table + "\n", encoding="utf-8")
    return table


def main() -> int:
    OUT.mkdir(exist_ok=True)
    rng = random.Random(SEED)
    pool = PhonePool(rng)
    people = People(rng, pool)
    expected: dict[str, Any] = {}
    expected["leads.csv"] = make_leads_csv(rng, people, pool)
    expected.update(make_accounts_xlsx(rng, people, pool))
    verify(expected)
    expected["callcentre.csv"] = make_callcentre_csv()  # not part of the random lists above
    table = write_reports(expected)
    sys.stdout.write(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
