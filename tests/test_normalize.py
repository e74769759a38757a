"""Tests for etl.normalize: phones, zones, e-mails, names, dates, regions; exact values."""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path

import phonenumbers
import pytest
from clitools import CASES, SPRING, run_cli
from hypothesis import example, given, settings
from hypothesis import strategies as st

from etl.normalize import (
    DAY_FIRST,
    MIXED,
    MONTH_FIRST,
    DateOrder,
    Invalid,
    PhoneResult,
    canonical_zone,
    clean,
    date_reading,
    fold_text,
    normalize_date,
    normalize_email,
    normalize_name,
    normalize_region,
    parse_country,
    parse_phone,
    split_phones,
    visible_phone_text,
    windows_zone,
    zones_for_number,
)

PRECISION_LOST = (
    "precision lost: the number is in scientific notation (Excel shortened it); "
    "re-export the column as text"
)
GENERIC_HINT = "; write the lead's IANA zone, e.g. America/New_York or Europe/London"
OFFSET = "a fixed UTC offset, not a place" + GENERIC_HINT


def offset(*zones: str) -> str:
    """The reason for a written offset: the zones that have it in winter or summer."""
    return (
        "a fixed UTC offset, not a place; did you mean "
        + " or ".join(zones)
        + "? (the place, not today's offset)"
    )


AMBIGUOUS_DATE = (
    "ambiguous: day-first or month-first, and no date of this column has a day above 12 to "
    "tell; write it as YYYY-MM-DD"
)
UTC_ZONES = ("Atlantic/Azores", "Europe/London", "Europe/Lisbon")
ABBREV = "an abbreviation, not an IANA zone"
TWO_ADDRESSES = "more than one e-mail address in one cell; keep one"

SF = "+14155552671"  # San Francisco, 555 range
LDN = "+442079460958"  # Ofcom drama range 020 7946 0xxx
BER = "+493023125226"
SYD = "+61255501234"  # ACMA fictional 02 5550 xxxx
AU_MOB = "+61491570156"  # ACMA fictional mobile 0491 570 156
PAR = "+33199001234"  # ARCEP fiction range 01 99 00 xx xx
OTT = "+16135550123"
TOR = "+14165550199"

# --- phones ---------------------------------------------------------------------------------

PHONES_OK = [
    # US
    ("(415) 555-2671", "US", SF, "US"),
    ("415.555.2671", "US", SF, "US"),
    ("415-555-2671", "US", SF, "US"),
    ("1-415-555-2671", "US", SF, "US"),
    ("4155552671", "US", SF, "US"),
    ("+1 415 555 2671", None, SF, "US"),
    ("+14155552671", None, SF, "US"),
    ("tel:+1-415-555-2671", None, SF, "US"),
    ("TEL:+1-415-555-2671", "GB", SF, "US"),
    ("４１５５５５２６７１", "US", SF, "US"),
    ("＋１ ４１５ ５５５ ２６７１", None, SF, "US"),
    ("(415) 555-2671 x12", "US", SF, "US"),
    ("415-555-2671 ext. 12", "US", SF, "US"),
    ("415 555 2671 ext 12", "US", SF, "US"),
    ("\u00a0(415) 555-2671\u00a0", "US", SF, "US"),
    ("(212) 555-0100", "US", "+12125550100", "US"),
    ("0011 1 415 555 2671", "AU", SF, "US"),
    # GB
    ("+44 20 7946 0958", None, LDN, "GB"),
    ("+44 20 7946 0958 ext. 12", "DE", LDN, "GB"),
    ("0044 20 7946 0958", "GB", LDN, "GB"),
    ("0044 20 7946 0958", "US", LDN, "GB"),
    ("00 44 20 7946 0958", "US", LDN, "GB"),
    ("011 44 20 7946 0958", "US", LDN, "GB"),
    ("020 7946 0958", "GB", LDN, "GB"),
    ("(0)20 7946 0958", "GB", LDN, "GB"),
    ("+44 (0)20 7946 0958", None, LDN, "GB"),
    ("+44 (0) 20 7946 0958", "US", LDN, "GB"),
    ("0044 (0)20 7946 0958", "FR", LDN, "GB"),
    ("0011 44 20 7946 0958", "AU", LDN, "GB"),
    ("07400 123456", "GB", "+447400123456", "GB"),
    # DE
    ("030/23125-226", "DE", BER, "DE"),
    ("030 23125226", "DE", BER, "DE"),
    ("+49 30 23125226", None, BER, "DE"),
    ("+49 (0)30 23125226", None, BER, "DE"),
    ("0049 30 23125226", "US", BER, "DE"),
    ("00 49 30 23125226", "FR", BER, "DE"),
    ("0151 23456789", "DE", "+4915123456789", "DE"),
    ("089 1234567", "DE", "+49891234567", "DE"),
    # AU
    ("02 5550 1234", "AU", SYD, "AU"),
    ("(02) 5550 1234", "AU", SYD, "AU"),
    ("+61 2 5550 1234", None, SYD, "AU"),
    ("0011 61 2 5550 1234", "AU", SYD, "AU"),
    ("00 61 2 5550 1234", "DE", SYD, "AU"),
    ("0491 570 156", "AU", AU_MOB, "AU"),
    ("0011 61 491 570 156", "AU", AU_MOB, "AU"),
    ("+61 (0)491 570 156", None, AU_MOB, "AU"),
    # FR
    ("01 99 00 12 34", "FR", PAR, "FR"),
    ("+33 1 99 00 12 34", None, PAR, "FR"),
    ("+33 (0)1 99 00 12 34", None, PAR, "FR"),
    ("00 33 1 99 00 12 34", "US", PAR, "FR"),
    ("06 12 34 56 78", "FR", "+33612345678", "FR"),
    ("0033 6 12 34 56 78", "US", "+33612345678", "FR"),
    # CA
    ("(613) 555-0123", "CA", OTT, "CA"),
    ("613.555.0123", "CA", OTT, "CA"),
    ("+1 613 555 0123", None, OTT, "CA"),
    ("1 (416) 555-0199", "CA", TOR, "CA"),
    ("00 1 416 555 0199", "GB", TOR, "CA"),
    ("514 555 0142", "CA", "+15145550142", "CA"),
    ("(604) 555-0100", "CA", "+16045550100", "CA"),
]


@pytest.mark.parametrize(("raw", "region", "e164", "number_region"), PHONES_OK)
def test_parse_phone_valid(raw: str, region: str | None, e164: str, number_region: str) -> None:
    result = parse_phone(raw, region)
    assert isinstance(result, PhoneResult)
    assert (result.e164, result.region) == (e164, number_region)


@pytest.mark.parametrize(
    ("raw", "extension"),
    [
        ("(415) 555-2671 x12", "12"),
        ("415-555-2671 ext. 12", "12"),
        ("415 555 2671 #12", "12"),
        ("+44 20 7946 0958 ext. 7", "7"),
        ("(415) 555-2671", None),
    ],
)
def test_parse_phone_keeps_the_extension_apart(raw: str, extension: str | None) -> None:
    result = parse_phone(raw, "US")
    assert isinstance(result, PhoneResult)
    assert result.extension == extension


PHONES_BAD = [
    ("TBD", "US", "TBD", "not a phone number (no digits)"),
    ("n/a", "GB", "n/a", "not a phone number (no digits)"),
    ("4.15555E+09", "US", "4.15555E+09", PRECISION_LOST),
    ("4,15555E+09", "DE", "4,15555E+09", PRECISION_LOST),
    ("4.15555e9", "US", "4.15555e9", PRECISION_LOST),
    ("555-01", "US", "555-01", "too short for US"),
    ("123", "GB", "123", "too short for GB"),
    ("415 555 2671 1234", "US", "415 555 2671 1234", "too long for US"),
    ("+1 415 555 26712", None, "+1 415 555 26712", "too long for US"),
    ("+44 20 7946 09581", None, "+44 20 7946 09581", "too long for GB"),
    ("020 7946 0958", "US", "020 7946 0958", "too long for US"),
    ("(123) 456-7890", "US", "(123) 456-7890", "not a valid number for US"),
    ("+1 555 555 5555", None, "+1 555 555 5555", "not a valid number for US"),
    # Ofcom's drama mobile range is not a number libphonenumber accepts.
    ("07700 900123", "GB", "07700 900123", "not a valid number for GB"),
    # The reason names the number's own country, not the default region.
    ("+44 7700 900123", "US", "+44 7700 900123", "not a valid number for GB"),
    ("0044 7700 900123", "DE", "0044 7700 900123", "not a valid number for GB"),
    (
        "415 555 2671",
        None,
        "415 555 2671",
        "no country code and no region: write it as +<country>…",
    ),
    ("+999 123456", None, "+999 123456", "unknown country code"),
    ("+999 123456", "US", "+999 123456", "unknown country code"),
    ("  ", "US", "", "empty"),
]


@pytest.mark.parametrize(("raw", "region", "shown", "reason"), PHONES_BAD)
def test_parse_phone_rejects(raw: str, region: str | None, shown: str, reason: str) -> None:
    assert parse_phone(raw, region) == Invalid(shown, reason)


@pytest.mark.parametrize(
    ("cell", "parts"),
    [
        ("415 555 2671 or 212 555 0100", ["415 555 2671", "212 555 0100"]),
        ("+44 20 7946 0958; 0044 20 7946 0958", ["+44 20 7946 0958", "0044 20 7946 0958"]),
        ("415-555-2671, 415-555-2671", ["415-555-2671", "415-555-2671"]),
        ("06 12 34 56 78 ou 01 99 00 12 34", ["06 12 34 56 78", "01 99 00 12 34"]),
        ("0151 23456789 oder 030 23125226", ["0151 23456789", "030 23125226"]),
        ("(613) 555-0123 / (416) 555-0199", ["(613) 555-0123", "(416) 555-0199"]),
        # An area code and slash is one German number, not two.
        ("030/23125-226", ["030/23125-226"]),
        ("415 555 2671 / 12", ["415 555 2671 / 12"]),
        ("415 555 2671", ["415 555 2671"]),
    ],
)
def test_split_phones(cell: str, parts: list[str]) -> None:
    assert split_phones(cell) == parts


def test_two_numbers_in_one_cell_parse_each() -> None:
    parts = split_phones("(415) 555-2671 or +44 20 7946 0958")
    assert [parse_phone(p, "US") for p in parts] == [
        PhoneResult(SF, "US"),
        PhoneResult(LDN, "GB"),
    ]


@pytest.mark.parametrize(
    ("e164", "zones"),
    [
        (SF, ("America/Los_Angeles",)),
        ("+12125550100", ("America/New_York",)),
        (LDN, ("Europe/London",)),
        (BER, ("Europe/Berlin",)),
        (SYD, ("Australia/Sydney",)),
        (PAR, ("Europe/Paris",)),
        (OTT, ("America/Toronto",)),
        ("+16045550100", ("America/Vancouver",)),
        (
            AU_MOB,
            (
                "Asia/Bangkok",
                "Asia/Yangon",
                "Australia/Adelaide",
                "Australia/Brisbane",
                "Australia/Eucla",
                "Australia/Lord_Howe",
                "Australia/Perth",
                "Australia/Sydney",
            ),
        ),
        ("+80012345678", ()),  # international freephone: no zone known
    ],
)
def test_zones_for_number(e164: str, zones: tuple[str, ...]) -> None:
    assert zones_for_number(e164) == zones


def test_zones_for_toll_free_number_are_many_canonical_and_sorted() -> None:
    zones = zones_for_number("+18005550100")
    assert len(zones) == 28
    assert "America/New_York" in zones and "America/Los_Angeles" in zones
    assert list(zones) == sorted(set(zones))
    assert all(canonical_zone(z) == z for z in zones)


# --- zones ----------------------------------------------------------------------------------

ZONES_OK = [
    ("America/New_York", "America/New_York"),
    ("america/new_york", "America/New_York"),
    ("AMERICA/NEW_YORK", "America/New_York"),
    ("  Europe/London\u00a0", "Europe/London"),
    ("US/Eastern", "America/New_York"),
    ("us/eastern", "America/New_York"),
    ("US/Pacific", "America/Los_Angeles"),
    ("Europe/Kiev", "Europe/Kyiv"),
    ("europe/kiev", "Europe/Kyiv"),
    ("Europe/Kyiv", "Europe/Kyiv"),
    ("Asia/Calcutta", "Asia/Kolkata"),
    ("Asia/Kolkata", "Asia/Kolkata"),
    ("Australia/NSW", "Australia/Sydney"),
    ("Asia/Saigon", "Asia/Ho_Chi_Minh"),
    ("America/Buenos_Aires", "America/Argentina/Buenos_Aires"),
    ("America/Indianapolis", "America/Indiana/Indianapolis"),
    ("America/Montreal", "America/Toronto"),
    ("Canada/Eastern", "America/Toronto"),
    ("Europe/Belfast", "Europe/London"),
    ("Japan", "Asia/Tokyo"),
    ("Pacific/Auckland", "Pacific/Auckland"),
]


@pytest.mark.parametrize(("raw", "canonical"), ZONES_OK)
def test_canonical_zone(raw: str, canonical: str) -> None:
    assert canonical_zone(raw) == canonical


ZONES_BAD = [
    ("EST", ABBREV + "; did you mean America/New_York or America/Toronto?"),
    ("est", ABBREV + "; did you mean America/New_York or America/Toronto?"),
    ("PST", ABBREV + "; did you mean America/Los_Angeles or America/Vancouver?"),
    ("CET", ABBREV + "; did you mean Europe/Berlin or Europe/Paris or Europe/Madrid?"),
    ("MST", ABBREV + "; did you mean America/Denver or America/Phoenix?"),
    ("HST", ABBREV + "; did you mean Pacific/Honolulu?"),
    ("ist", ABBREV + "; did you mean Asia/Kolkata or Europe/Dublin?"),
    # names that share their zones with another in the table (standard and summer time)
    ("EDT", ABBREV + "; did you mean America/New_York or America/Toronto?"),
    ("CT", ABBREV + "; did you mean America/Chicago?"),
    ("AKDT", ABBREV + "; did you mean America/Anchorage?"),
    ("BST", ABBREV + "; did you mean Europe/London?"),
    ("WEST", ABBREV + "; did you mean Europe/Lisbon?"),
    ("EEST", ABBREV + "; did you mean Europe/Athens or Europe/Helsinki or Europe/Kyiv?"),
    ("MESZ", ABBREV + "; did you mean Europe/Berlin or Europe/Vienna or Europe/Zurich?"),
    ("HAE", ABBREV + "; did you mean America/Toronto or America/New_York?"),
    ("EST5EDT", ABBREV + GENERIC_HINT),
    ("GB", ABBREV + GENERIC_HINT),
    ("GMT+2", offset("Europe/Berlin", "Europe/Paris", "Europe/Athens", "Africa/Johannesburg")),
    ("UTC-5", offset("America/Chicago", "America/New_York")),
    ("GMT−3", offset("America/Halifax", "America/Sao_Paulo")),  # U+2212 minus sign
    ("utc+05:30", offset("Asia/Kolkata")),
    ("+0530", offset("Asia/Kolkata")),
    ("UTC", offset(*UTC_ZONES)),
    ("GMT", offset(*UTC_ZONES)),
    ("Z", offset(*UTC_ZONES)),
    ("Zulu", offset(*UTC_ZONES)),
    ("Etc/GMT+5", OFFSET),
    ("Etc/UTC", OFFSET),
    ("Universal", OFFSET),
    ("Mars/Olympus", "not an IANA time zone" + GENERIC_HINT),
    ("America/New York", "not an IANA time zone" + GENERIC_HINT),
    # Not offsets: a letter and digits, or a bare number, are simply not zones.
    ("A12", "not an IANA time zone" + GENERIC_HINT),
    ("12", "not an IANA time zone" + GENERIC_HINT),
    ("Factory", "not a regional IANA time zone" + GENERIC_HINT),
]


@pytest.mark.parametrize(("raw", "reason"), ZONES_BAD)
def test_canonical_zone_rejects(raw: str, reason: str) -> None:
    assert canonical_zone(raw) == Invalid(raw, reason)


@pytest.mark.parametrize("raw", [None, "", "   ", "\u00a0\t"])
def test_canonical_zone_empty(raw: str | None) -> None:
    assert canonical_zone(raw) is None


# --- e-mails --------------------------------------------------------------------------------

EMAILS = [
    ("John@Example.COM", "john@example.com"),
    ("\u00a0john@example.com\u00a0", "john@example.com"),
    ("\t john@example.com \n", "john@example.com"),
    ("\u200bjohn@example.com\u3000", "john@example.com"),
    ("o'brien+tag@Sub.Example.co.uk", "o'brien+tag@sub.example.co.uk"),
    ("first.last@example.com", "first.last@example.com"),
    ("a@b.com; c@d.com", Invalid("a@b.com; c@d.com", TWO_ADDRESSES)),
    ("a@b.com c@d.com", Invalid("a@b.com c@d.com", TWO_ADDRESSES)),
    ("a@b.com,c@d.com", Invalid("a@b.com,c@d.com", TWO_ADDRESSES)),
    ("johnexample.com", Invalid("johnexample.com", "not an e-mail address (no @)")),
    ("a@@b.com", Invalid("a@@b.com", "not an e-mail address (more than one @)")),
    ("a@b@c.com", Invalid("a@b@c.com", "not an e-mail address (more than one @)")),
    ("john@", Invalid("john@", "not an e-mail address (nothing after @)")),
    ("@example.com", Invalid("@example.com", "not an e-mail address (nothing before @)")),
    (
        "john doe@example.com",
        Invalid(
            "john doe@example.com",
            "not a valid e-mail address: "
            "The email address contains invalid characters before the @-sign: SPACE.",
        ),
    ),
    (
        "john@exa mple.com",
        Invalid(
            "john@exa mple.com",
            "not a valid e-mail address: "
            "The part after the @-sign contains invalid characters: SPACE.",
        ),
    ),
    (
        "john@example",
        Invalid(
            "john@example",
            "not a valid e-mail address: "
            "The part after the @-sign is not valid. It should have a period.",
        ),
    ),
    (
        "john..doe@example.com",
        Invalid(
            "john..doe@example.com",
            "not a valid e-mail address: An email address cannot have two periods in a row.",
        ),
    ),
    (
        ".john@example.com",
        Invalid(
            ".john@example.com",
            "not a valid e-mail address: An email address cannot start with a period.",
        ),
    ),
    (
        "john@-example.com",
        Invalid(
            "john@-example.com",
            "not a valid e-mail address: "
            "An email address cannot have a hyphen immediately after the @-sign.",
        ),
    ),
    ("  ", None),
    ("", None),
]


@pytest.mark.parametrize(("raw", "expected"), EMAILS)
def test_normalize_email(raw: str, expected: str | Invalid | None) -> None:
    assert normalize_email(raw) == expected


def test_normalize_email_too_long() -> None:
    raw = "a" * 250 + "@b.com"
    assert normalize_email(raw) == Invalid(
        raw, "not a valid e-mail address: The email address is too long (2 characters too many)."
    )


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Jean   Pierre ", "Jean Pierre"),
        ("Mary\tAnn\nLee", "Mary Ann Lee"),
        ("\u00a0Zoë\u3000", "Zoë"),
        ("van der  Berg", "van der Berg"),
        ("José", "José"),
        ("Jose\u0301", "Jos\u00e9"),  # NFC: combining accent composed, accent kept
        ("McDONALD", "McDONALD"),
        ("O'Brien", "O'Brien"),
        ("NA", "NA"),
        ("NULL", "NULL"),
        ("Null", "Null"),
        ("None", "None"),
        ("-", "-"),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_normalize_name(raw: str | None, expected: str | None) -> None:
    assert normalize_name(raw) == expected


def test_clean_strips_interleaved_zero_width_and_spaces() -> None:
    assert clean("\u200b\u00a0\u200bAnn\u00a0\ufeff ") == "Ann"
    assert clean(42) == "42"


# --- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("45292", "2024-01-01"),
        ("45292.75", "2024-01-01"),
        ("45351", "2024-02-29"),
        ("10000", "1927-05-18"),
        ("2958465", "9999-12-31"),
        ("2024-03-10", "2024-03-10"),
        ("2024-03-10T14:30:00", "2024-03-10"),
        ("2024-03-10T14:30:00.123Z", "2024-03-10"),
        ("2024-03-10 14:30", "2024-03-10"),
        ("2024/03/10", "2024-03-10"),
        ("2024-02-29", "2024-02-29"),
        (" 2024-02-29 ", "2024-02-29"),
        ("", None),
        ("2025-02-30", Invalid("2025-02-30", "not a calendar date")),
        ("2024-13-01", Invalid("2024-13-01", "not a calendar date")),
        ("60", Invalid("60", "a number too small for an Excel date; write it as YYYY-MM-DD")),
        ("9999", Invalid("9999", "a number too small for an Excel date; write it as YYYY-MM-DD")),
        ("2024", Invalid("2024", "looks like a year, not a date; write it as YYYY-MM-DD")),
        ("not a date", Invalid("not a date", "not a date; write it as YYYY-MM-DD")),
        ("03/04/2024", Invalid("03/04/2024", AMBIGUOUS_DATE)),
        ("25/12/2023", "2023-12-25"),  # on its own, a value that reads one way is read so
        ("12/25/2023", "2023-12-25"),
        ("05/05/2024", "2024-05-05"),  # both readings give the same day
        ("31/02/2024", Invalid("31/02/2024", "not a calendar date")),
        ("0", Invalid("0", "a number too small for an Excel date; write it as YYYY-MM-DD")),
        ("2958466", Invalid("2958466", "not a date; write it as YYYY-MM-DD")),
    ],
)
def test_normalize_date(raw: str, expected: str | Invalid | None) -> None:
    assert normalize_date(raw) == expected


# --- regions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("GB", "GB"),
        ("gb", "GB"),
        ("United Kingdom", "GB"),
        (" united kingdom ", "GB"),
        ("UK", "GB"),
        ("44", "GB"),
        ("+44", "GB"),
        ("1", "US"),
        ("+1", "US"),
        ("usa", "US"),
        ("Deutschland", "DE"),
        ("+49", "DE"),
        ("Australia", "AU"),
        ("FR", "FR"),
        ("Canada", "CA"),
        ("", None),
        ("   ", None),
        (None, None),
        ("junk", None),
        ("999", None),
        ("ZZ", None),
    ],
)
def test_normalize_region(raw: str | None, expected: str | None) -> None:
    assert normalize_region(raw) == expected


# --- countries written any way ----------------------------------------------------------------

NOT_A_COUNTRY = "not a country name or code; write its ISO code (GB, DE, US)"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # ISO alpha-2 and alpha-3, any case and punctuation
        ("de", "DE"),
        ("U.S.", "US"),
        ("u.s", "US"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("GBR", "GB"),
        ("mex", "MX"),
        # calling codes
        ("0044", "GB"),
        ("+52", "MX"),
        ("(49)", "DE"),
        # English names and common forms
        ("UK", "GB"),
        ("Great Britain", "GB"),
        ("England", "GB"),
        ("United States of America", "US"),
        ("Mexico", "MX"),
        ("Ivory Coast", "CI"),
        # CLDR names in other languages, accents and case as typed or not
        ("México", "MX"),
        ("MÉXICO", "MX"),
        ("Vereinigtes Königreich", "GB"),
        ("vereinigtes konigreich", "GB"),
        ("Großbritannien", "GB"),
        ("Grossbritannien", "GB"),
        ("Frankreich", "FR"),
        ("Deutschland", "DE"),
        ("Österreich", "AT"),
        ("Royaume-Uni", "GB"),
        ("États-Unis", "US"),
        ("Estados Unidos", "US"),
        ("EE.UU.", "US"),
        ("Reino Unido", "GB"),
        ("Nederland", "NL"),
        ("Polska", "PL"),
        ("Россия", "RU"),
        ("日本", "JP"),
        ("  Spanien  ", "ES"),
    ],
)
def test_parse_country_in_any_form(raw: str, expected: str) -> None:
    assert parse_country(raw) == expected
    assert normalize_region(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("Narnia", NOT_A_COUNTRY),
        ("Oz", NOT_A_COUNTRY),
        ("ZZ", NOT_A_COUNTRY),
        ("999", "not a country calling code"),
        # one locale's name for Congo-Kinshasa, another's for Congo-Brazzaville: no guess
        ("Kongo", "names more than one country (CD or CG); write its ISO code"),
    ],
)
def test_parse_country_refuses_what_names_no_country(raw: str, reason: str) -> None:
    assert parse_country(raw) == Invalid(raw, reason)
    assert normalize_region(raw) is None


def test_parse_country_empty_cell_is_none() -> None:
    assert parse_country(" \u00a0") is None


def test_fold_text() -> None:
    assert fold_text("  Großbritannien ") == "grossbritannien"
    assert fold_text("U.S.") == "u s"
    assert fold_text("Côte d’Ivoire") == "cote d ivoire"


# --- invisible characters inside a number ---------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "\u200e+44 20 7946 0958\u200f",  # LRM / RLM around it (right-to-left text)
        "+44\u202f20\u202f7946\u202f0958",  # narrow no-break spaces (French typography)
        "+44\u00a020\u00a07946\u00a00958",  # no-break spaces
        "+44 20\u200b7946\u200b0958",  # zero-width spaces
        "+44 20 7946 0958\ufe0f",  # a variation selector (copied from an emoji keypad)
        "\ufeff+44 20 7946 0958",  # a BOM
        "+44\u2009(20)\u20097946\u2060 0958",  # thin space, word joiner
        "+\u200d44 20 7946 0958",  # zero-width joiner after the plus
    ],
)
def test_invisible_and_unicode_spaces_inside_a_number_are_dropped(raw: str) -> None:
    assert parse_phone(raw, None) == PhoneResult("+442079460958", "GB")


def test_visible_phone_text() -> None:
    assert visible_phone_text("\u200e030\u202f1234\u00a05678\ufe0f") == "030 1234 5678"
    assert visible_phone_text("(415) 555-2671") == "(415) 555-2671"


# --- dialling conventions libphonenumber refuses, that still reach the subscriber ------------


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+52 1 55 3320 5716", None, "+525533205716"),  # old mobile-from-abroad 1
        ("+521 33 2735 5743", "US", "+523327355743"),
        ("0052 1 55 3320 5716", "DE", "+525533205716"),
        ("0052 1 55 3320 5716", "US", "+525533205716"),  # 00 where the US dials 011
        ("044 33 2735 5743", "MX", "+523327355743"),  # old local mobile prefix
        ("045 55 3320 5716", "MX", "+525533205716"),  # old long-distance mobile prefix
        ("01 55 5123 4567", "MX", "+525551234567"),  # old long-distance prefix
        ("+52 044 33 2735 5743", None, "+523327355743"),
    ],
)
def test_old_mexican_forms_become_current_e164(raw: str, region: str | None, e164: str) -> None:
    result = parse_phone(raw, region)
    assert result == PhoneResult(e164, "MX")


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+44 (0)20 7946 0958", None, "+442079460958"),  # trunk zero in brackets
        ("+44 (0) 7812 985479", "DE", "+447812985479"),
        ("+49 (0)30 1234567", None, "+49301234567"),
        ("+33 (0)6 12 34 56 78", None, "+33612345678"),
        ("011 15 2345-6789", "AR", "+5491123456789"),  # Argentina: area 11, mobile 15
        ("+54 11 15 2345 6789", None, "+5491123456789"),
        ("8 (495) 123-45-67", "RU", "+74951234567"),  # Russia's trunk 8
        ("0 21 11 98765 4321", "BR", "+5511987654321"),  # Brazil: carrier code 21
    ],
)
def test_conventions_libphonenumber_already_reads(raw: str, region: str | None, e164: str) -> None:
    result = parse_phone(raw, region)
    assert isinstance(result, PhoneResult) and result.e164 == e164


def test_a_mexican_number_too_long_even_without_the_old_prefix_stays_refused() -> None:
    assert parse_phone("+52 1 55 3320 57161", None) == Invalid(
        "+52 1 55 3320 57161", "too long for MX"
    )


# --- Windows zone names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "zone"),
    [
        ("Eastern Standard Time", "America/New_York"),
        ("eastern standard time", "America/New_York"),
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("GMT Standard Time", "Europe/London"),
        ("India Standard Time", "Asia/Kolkata"),  # CLDR says Asia/Calcutta: a link
        ("AUS Eastern Standard Time", "Australia/Sydney"),
        ("(GMT-05:00) Eastern Time (US & Canada)", "America/New_York"),
        ("(UTC-05:00) Eastern Time (US & Canada)", "America/New_York"),
        ("(UTC-06:00) Central Time (US & Canada)", "America/Chicago"),
        ("(UTC-07:00) Mountain Time (US & Canada)", "America/Denver"),
        ("(UTC-08:00) Pacific Time (US & Canada)", "America/Los_Angeles"),
        ("(UTC-04:00) Atlantic Time (Canada)", "America/Halifax"),
        ("(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna", "Europe/Berlin"),
        ("(GMT) Greenwich Mean Time : Dublin, Edinburgh, Lisbon, London", "Europe/London"),
        ("(UTC+00:00) Dublin, Edinburgh, Lisbon, London", "Europe/London"),
        ("(UTC-06:00) Guadalajara, Mexico City, Monterrey", "America/Mexico_City"),
        ("(UTC+05:30) Chennai, Kolkata, Mumbai, New Delhi", "Asia/Kolkata"),
        ("(UTC+10:00) Canberra, Melbourne, Sydney", "Australia/Sydney"),
        ("(UTC-03:00) Brasilia", "America/Sao_Paulo"),
        ("(UTC+03:00) Moscow, St. Petersburg", "Europe/Moscow"),
    ],
)
def test_windows_zone_names_are_read_as_iana(raw: str, zone: str) -> None:
    assert windows_zone(raw) == zone
    assert canonical_zone(raw) == zone


def test_windows_names_for_fixed_offsets_are_refused() -> None:
    assert canonical_zone("Dateline Standard Time") == Invalid(
        "Dateline Standard Time",
        "a Windows name for a fixed UTC offset, not a place" + GENERIC_HINT,
    )


def test_a_windows_display_name_with_places_not_known_is_refused_with_its_offset() -> None:
    result = canonical_zone("(UTC+01:00) Narnia, Lilliput")
    assert result == Invalid(
        "(UTC+01:00) Narnia, Lilliput",
        "a Windows zone name whose places are not known here; did you mean Europe/London or "
        "Europe/Lisbon or Europe/Berlin or Europe/Paris?",
    )


def test_a_windows_display_name_whose_places_disagree_is_refused() -> None:
    result = canonical_zone("(UTC+01:00) Berlin, London")
    assert isinstance(result, Invalid)
    assert result.reason.startswith("a Windows zone name whose places keep different clocks")


def test_not_a_windows_name() -> None:
    assert windows_zone("Somewhere Standard Time") is None
    assert windows_zone("(no offset) Berlin") is None


@pytest.mark.parametrize(
    ("raw", "reason", "suggestion"),
    [
        ("MEZ", ABBREV + "; did you mean Europe/Berlin or Europe/Vienna or Europe/Zurich?",
         "Europe/Berlin"),
        ("MESZ", ABBREV + "; did you mean Europe/Berlin or Europe/Vienna or Europe/Zurich?",
         "Europe/Berlin"),
        ("OEZ", ABBREV + "; did you mean Europe/Athens or Europe/Helsinki?", "Europe/Athens"),
        ("GMT", offset(*UTC_ZONES), "Europe/London"),
        ("EST", ABBREV + "; did you mean America/New_York or America/Toronto?",
         "America/New_York"),
        ("GMT+1", offset("Europe/London", "Europe/Lisbon", "Europe/Berlin", "Europe/Paris"),
         "Europe/Berlin"),
        ("UTC-5", offset("America/Chicago", "America/New_York"), "America/New_York"),
    ],
)  # fmt: skip
def test_local_abbreviations_get_suggestions(raw: str, reason: str, suggestion: str) -> None:
    result = canonical_zone(raw)
    assert result == Invalid(raw, reason)
    assert isinstance(result, Invalid) and result.suggestion == suggestion


# --- day-first and month-first dates --------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reading"),
    [
        ("25/12/2023", DAY_FIRST),
        ("13.01.2024", DAY_FIRST),
        ("12/25/2023", MONTH_FIRST),
        ("03/04/2024", "either"),
        ("05/05/2024", None),
        ("2024-03-04", None),
        ("45292", None),
    ],
)
def test_date_reading(raw: str, reading: str | None) -> None:
    assert date_reading(raw) == reading


DAY = DateOrder.decide("'25/12/2023' in a.csv row 2", "")
MONTH = DateOrder.decide("", "'12/25/2023' in a.csv row 3")
BOTH = DateOrder.decide("'25/12/2023' in a.csv row 2", "'12/25/2023' in a.csv row 3")


def test_date_order_decide() -> None:
    assert DAY.order == DAY_FIRST and MONTH.order == MONTH_FIRST and BOTH.order == MIXED
    assert DateOrder.decide("", "") == DateOrder()


@pytest.mark.parametrize(
    ("raw", "order", "expected"),
    [
        ("03/04/2024", DAY, "2024-04-03"),
        ("03/04/2024", MONTH, "2024-03-04"),
        ("13/01/2024", DAY, "2024-01-13"),
        ("13.01.2024", DAY, "2024-01-13"),
        ("03-04-2024", DAY, "2024-04-03"),
        ("05/05/2024", MONTH, "2024-05-05"),
        ("2024-03-04", BOTH, "2024-03-04"),  # ISO dates are never in doubt
        (
            "12/25/2023",
            DAY,
            Invalid(
                "12/25/2023",
                "month-first, but the column's other dates are day-first "
                "('25/12/2023' in a.csv row 2); write it as YYYY-MM-DD",
            ),
        ),
        (
            "25/12/2023",
            BOTH,
            Invalid(
                "25/12/2023",
                "the column mixes day-first dates ('25/12/2023' in a.csv row 2) and month-first "
                "dates ('12/25/2023' in a.csv row 3), so its dates cannot be trusted; "
                "write it as YYYY-MM-DD",
            ),
        ),
        ("30/02/2024", DAY, Invalid("30/02/2024", "not a calendar date")),
    ],
)
def test_normalize_date_follows_the_column_order(
    raw: str, order: DateOrder, expected: str | Invalid
) -> None:
    assert normalize_date(raw, order) == expected


# --- properties -----------------------------------------------------------------------------

_TZ_TEXT = importlib.resources.files("tzdata.zoneinfo").joinpath("tzdata.zi").read_text("utf-8")
ZONE_LINES = sorted(line.split()[1] for line in _TZ_TEXT.splitlines() if line.startswith("Z "))
LINK_NAMES = sorted(line.split()[2] for line in _TZ_TEXT.splitlines() if line.startswith("L "))
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
REGIONS = ("US", "GB", "DE", "AU", "FR", "CA")
TYPES = (
    phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.TOLL_FREE,
)

PROPS = settings(max_examples=150, deadline=None)


@PROPS
@given(st.one_of(st.emails(), st.text(max_size=40)))
def test_email_normalising_twice_changes_nothing(raw: str) -> None:
    once = normalize_email(raw)
    if isinstance(once, str):
        assert normalize_email(once) == once
        assert once == once.lower() == once.strip()


@PROPS
@given(st.text(max_size=40))
@example("\u200b\u00a0\u200bAnn \u00a0")
def test_name_normalising_twice_changes_nothing(raw: str) -> None:
    once = normalize_name(raw)
    assert normalize_name(once) == once
    if once is not None:
        assert once == once.strip() and "  " not in once


@PROPS
@given(st.text(max_size=30))
@example("\u200b\u00a0\u200bAnn")
def test_clean_twice_changes_nothing(raw: str) -> None:
    assert clean(clean(raw)) == clean(raw)


@PROPS
@given(st.sampled_from(ZONE_LINES + LINK_NAMES), st.sampled_from([str, str.lower, str.upper]))
def test_zone_normalising_twice_changes_nothing(name: str, case) -> None:
    once = canonical_zone(case(name))
    if isinstance(once, str):
        assert once in ZONE_LINES
        assert canonical_zone(once) == once
        assert canonical_zone(once.swapcase()) == once
    else:
        assert isinstance(once, Invalid)


@PROPS
@given(
    st.sampled_from(REGIONS),
    st.sampled_from(TYPES),
    st.text(alphabet="0123456789", min_size=1, max_size=4),
    st.sampled_from(REGIONS),
)
def test_phone_e164_reparses_to_itself(region: str, kind, tail: str, other: str) -> None:
    example = phonenumbers.example_number_for_type(region, kind)
    national = phonenumbers.national_significant_number(example)
    trunk = "" if region in ("US", "CA") else "0"  # the national prefix of the others is 0
    raw = trunk + national[: -len(tail)] + tail
    result = parse_phone(raw, region)
    if isinstance(result, Invalid):
        return
    assert E164.match(result.e164)
    assert parse_phone(result.e164, None) == result
    assert parse_phone(result.e164, other) == result
    parsed = phonenumbers.parse(result.e164, None)
    assert phonenumbers.is_valid_number(parsed)
    assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == result.e164


@pytest.mark.parametrize(("raw", "region", "e164", "number_region"), PHONES_OK)
def test_every_listed_e164_reparses_to_itself(
    raw: str, region: str | None, e164: str, number_region: str
) -> None:
    assert parse_phone(e164, None) == PhoneResult(e164, number_region)


@PROPS
@given(st.text(alphabet="0123456789-/.T: ", max_size=20))
def test_date_normalising_twice_changes_nothing(raw: str) -> None:
    once = normalize_date(raw)
    if isinstance(once, str):
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", once)
        assert normalize_date(once) == once


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize("region", REGIONS)
def test_example_numbers_written_nationally_parse(region: str, kind) -> None:
    example = phonenumbers.example_number_for_type(region, kind)
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    trunk = "" if region in ("US", "CA") else "0"
    national = trunk + phonenumbers.national_significant_number(example)
    result = parse_phone(national, region)
    assert isinstance(result, PhoneResult)
    assert result.e164 == e164
    assert parse_phone(e164, None) == result


# Found by a new user in a trial run (were tests/test_regressions.py): each pinned through the
# CLI against the sandbox.


def test_reserved_mail_domains_are_refused_on_the_fast_path_too() -> None:
    import pandas as pd

    from etl.normalize import Invalid, normalize_email, normalize_emails

    reason = (
        "not a valid e-mail address: The part after the @-sign is a special-use or reserved name "
        "that cannot be used with email."
    )
    cells = pd.Series(["x@corp.local", "y@shop.test", "z@example.com"], dtype=object)
    assert normalize_emails(cells).tolist() == [
        Invalid("x@corp.local", reason),
        Invalid("y@shop.test", reason),
        "z@example.com",
    ]
    assert normalize_email("a@x.onion") == Invalid("a@x.onion", reason)


def test_an_unknown_country_is_named(tmp_path: Path) -> None:
    source = tmp_path / "c.csv"
    source.write_text(
        "first_name,last_name,email,phone,country\n"
        "Pia,Rhee,pia@example.com,0491 570 156,Oz\n"
        "Ned,Orr,ned@example.com,0491 570 157,AUS\n"
    )
    mapping = tmp_path / "m.yaml"
    text = (CASES / "c16_numeric_phones.yaml").read_text().replace("  timezoneId: timezone\n", "")
    mapping.write_text(
        text.replace(
            "  region_column: country", "  region_column: country\n  ambiguous_timezone: default"
        )
    )
    ran = run_cli(
        ["validate", str(source), "--mapping", str(mapping), "--campaign", SPRING],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert [r["_errors"] for r in ran.rejects()] == [
        "phone (phone): '0491 570 156': written without +country, and the country 'Oz' is not "
        "a country name or code; write the country as an ISO code (GB, DE, US) or the number "
        "with +country"
    ]
    assert [r["_source_row"] for r in ran.loaded()] == ["3"]  # AUS is Australia


def test_an_extension_with_no_field_is_dropped_with_a_warning(tmp_path: Path) -> None:
    source = tmp_path / "x.csv"
    source.write_text(
        "first_name,last_name,email,phone,timezone\n"
        "Ann,Lee,ann@example.com,(415) 555-2671 x12,America/Los_Angeles\n"
    )
    ran = run_cli(
        ["validate", str(source), "--mapping", str(CASES / "c12_ragged_rows.yaml")],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert ran.code == 0
    assert [r["warnings"] for r in ran.loaded()] == [
        "phone (phone): extension 12 dropped; name a dynamicData field for it with "
        "phones[0].extension"
    ]


def test_zones_from_phones_that_disagree_or_straddle_are_not_guessed(tmp_path: Path) -> None:
    source = tmp_path / "z.csv"
    source.write_text(
        "first_name,last_name,email,mobile,office,timezone\n"
        "Ann,Lee,ann@example.com,(415) 555-0123,(212) 555-0124,\n"  # LA and NY: no one zone
        "Bea,Ode,bea@example.com,(850) 555-0123,,\n"  # Florida panhandle: Central or Eastern
        "Cy,Moe,cy@example.com,(415) 555-0125,,\n"  # one zone: Los Angeles
        "Di,Roe,di@example.com,(317) 555-0126,,America/Indianapolis\n"  # same clock as NY
    )
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "project: 1\ndefaults: {region: US}\nkey: [email]\n"
        "fields: {name: first_name, surname: last_name, email: email, timezoneId: timezone}\n"
        "phones: [{column: mobile, label: mobile}, {column: office, label: work}]\n"
    )
    ran = run_cli(
        ["validate", str(source), "--mapping", str(mapping)],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "r",
        subprocess_mode=False,
    )
    assert {r["_source_row"]: r["_errors"] for r in ran.rejects()} == {
        "2": "timezoneId (timezone): zone ambiguous: +14155550123 and +12125550124 could be in "
        "America/Los_Angeles, America/New_York; fill the time zone column",
        "3": "timezoneId (timezone): zone ambiguous: +18505550123 could be in America/Chicago, "
        "America/New_York; fill the time zone column",
    }
    loaded = {r["_source_row"]: (r["timezone_source"], r["warnings"]) for r in ran.loaded()}
    assert loaded == {"4": ("phone", ""), "5": ("column", "")}


def test_normalize_emails_is_normalize_email_of_each_cell() -> None:
    """The column-wise form gives, cell by cell, what the one-cell form gives (its fast path
    only takes cells of the common ASCII form, whatever surrounds or fills them)."""
    import pandas as pd

    from etl.normalize import normalize_email, normalize_emails

    cells: list[object] = [
        "  Ann.Lee@Example.COM ",
        "ann@example.com\u200b",
        "\u00a0bob@example.org\t",
        None,
        float("nan"),
        "",
        "   ",
        "x@y",
        "a@b.com; c@d.com",
        "a@b@c.com",
        "@example.com",
        "ann@",
        "jürgen@exämple.de",
        "o'brien+tag@sub.example.co.uk",
        "a" * 64 + "@example.com",
        "a" * 65 + "@example.com",
        "a@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + "." + "e" * 57 + ".com",
        "z@corp.local",
        "=cmd@example.com",
        "ANN@EXAMPLE.COM\n",
        5,
    ]
    series = pd.Series(cells, index=range(10, 10 + len(cells)), dtype=object)
    got = normalize_emails(series)
    assert got.index.tolist() == series.index.tolist()
    assert got.tolist() == [normalize_email(c) for c in cells]  # type: ignore[arg-type]
    assert got.tolist()[:3] == ["ann.lee@example.com", "ann@example.com", "bob@example.org"]


def test_country_names_of_every_locale_are_read_without_keeping_the_locales() -> None:
    """Reading every CLDR locale's territory names once (a country named in any language)
    leaves Babel's locale cache as it found it, less what was read: ~190 MB otherwise."""
    import babel.localedata

    from etl import normalize

    normalize._country_names.cache_clear()
    normalize.parse_country.cache_clear()
    before = set(babel.localedata._cache)
    try:
        assert normalize.parse_country("Vereinigtes Königreich") == "GB"
        assert len(babel.localedata.locale_identifiers()) > 500
        assert set(babel.localedata._cache) - before <= {"en", "root"}  # English names
    finally:
        normalize._country_names.cache_clear()
        normalize.parse_country.cache_clear()
