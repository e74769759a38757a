"""The vector phone path gives exactly what plain ``phonenumbers`` gives (etl/phonefast.py)."""

from __future__ import annotations

import multiprocessing
import random
from concurrent.futures import ProcessPoolExecutor

import phonenumbers
from phonenumbers import phonenumberutil as pnu

from etl import phonefast
from etl.normalize import PhoneResult, parse_phone, region_of, zones_for_number
from etl.values import clean

TYPES = [
    phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.TOLL_FREE,
    phonenumbers.PhoneNumberType.VOIP,
]


def _written(rnd: random.Random, cc: int, nsn: str, prefix: str, idd: str) -> str:
    """One way a person writes a number (some of them odd or broken)."""
    cut = rnd.randrange(1, max(2, len(nsn)))
    spaced = nsn[:cut] + rnd.choice([" ", "-", ".", ""]) + nsn[cut:]
    return rnd.choice(
        [
            f"+{cc}{nsn}",
            f"+{cc} {spaced}",
            f"+{cc} ({nsn[:3]}) {nsn[3:]}",
            f"{prefix}{spaced}",
            f"{prefix}{nsn}",
            nsn,
            f"({nsn[:3]}) {nsn[3:6]}-{nsn[6:]}",
            f"{cc}{nsn}",
            f"{cc} {spaced}",
            f"+{cc}{nsn}",
            f"{prefix}{nsn}",
            f"{idd}{cc} {spaced}",
            f"{prefix}{prefix}{nsn}",
            f"+{cc}{prefix}{nsn}",
        ]
    )


def _cases(count: int, seed: int = 7) -> list[tuple[str, str | None]]:
    """``count`` (cell, default region) pairs over every region the metadata knows: valid
    numbers with their last digits changed, and numbers a digit short or long."""
    rnd = random.Random(seed)
    regions = sorted(phonenumbers.SUPPORTED_REGIONS)
    seeds: list[tuple[str, int, str, str, str]] = []
    for region in regions:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        assert meta is not None
        for kind in TYPES:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                seeds.append(
                    (
                        region,
                        example.country_code,
                        pnu.national_significant_number(example),
                        meta.national_prefix or "",
                        (meta.preferred_international_prefix or meta.international_prefix or "00"),
                    )
                )
    cases: list[tuple[str, str | None]] = []
    while len(cases) < count:
        region, cc, nsn, prefix, idd = rnd.choice(seeds)
        keep = rnd.randrange(max(1, len(nsn) - 5), len(nsn) + 1)
        digits = nsn[:keep] + "".join(rnd.choice("0123456789") for _ in range(len(nsn) - keep))
        roll = rnd.random()
        if roll < 0.02:
            digits = digits[:-1]
        elif roll < 0.04:
            digits += rnd.choice("0123456789")
        if not idd.isdigit():
            idd = "00"
        default = rnd.choice([region] * 6 + [rnd.choice(regions), None])
        cases.append((_written(rnd, cc, digits, prefix, idd), default))
    return cases


def _reference(cell: str, region: str | None) -> PhoneResult | None:
    """Plain phonenumbers: the result parse_phone gives a valid number, else ``None``."""
    try:
        number = phonenumbers.parse(cell, region)
    except phonenumbers.NumberParseException:
        return None
    where = phonenumbers.region_code_for_number(number)
    if not pnu.is_valid_number_for_region(number, where):
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return PhoneResult(e164, where, number.extension or None)


def _mismatches(cases: list[tuple[str, str | None]]) -> tuple[int, list[tuple[str, str | None]]]:
    """Run the fast path on ``cases`` and check each of its answers against plain
    phonenumbers: ``(answers, cases whose answer differs)``."""
    fast = phonefast.parse_many([c for c, _ in cases], [r for _, r in cases])
    answered = [(case, got) for case, got in zip(cases, fast, strict=True) if got is not None]
    return len(answered), [case for case, got in answered if got != _reference(*case)]


def test_fast_path_equals_phonenumbers_on_200k_numbers_of_every_region():
    """Every answer of the fast path (200,000+ of them, all regions, odd forms among them) is
    plain phonenumbers' answer (forms written with the region's international prefix among
    them); what it leaves (invalid numbers, numbers whose digits the national-prefix rule
    rewrites) goes to phonenumbers itself in the pipeline.

    The reference costs ~100 us a number, so both cores check half each."""
    cases = _cases(290_000)  # ~204,000 answered: the reference runs on each answer
    halves = [cases[::2], cases[1::2]]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        results = list(pool.map(_mismatches, halves))
    assert [bad for _, bad in results] == [[], []]
    assert sum(n for n, _ in results) >= 200_000
    # and it leaves few valid numbers of the simple forms to the slow path
    sample = cases[:5_000]
    fast = phonefast.parse_many([c for c, _ in sample], [r for _, r in sample])
    left = sum(
        1
        for (cell, region), got in zip(sample, fast, strict=True)
        if got is None and phonefast.SIMPLE.fullmatch(cell) and _reference(cell, region)
    )
    assert left < 0.2 * sum(1 for got in fast if got is not None)


def test_fast_path_equals_parse_phone_with_reasons_on_invalid_and_odd_cells():
    """Where the fast path has no answer, parse_phone gives the reason; where it has one, it is
    parse_phone's answer, for the cells of a real list (odd ones included)."""
    cells = [
        "+14155552671",
        "(415) 555-2671",
        "415.555.2671",
        "1 415 555 2671",
        "011 44 20 7946 0958",
        "0044 20 7946 0958",
        "020 7946 0958",
        "+44 (0)20 7946 0958",
        "415 555 267",
        "+1 415 555 26712",
        "555-0100",
        "+999 1234 5678",
        "4.15555E+09",
        "(415) 555-2671 x12",
        "+52 1 55 1234 5678",
        "044 55 1234 5678",
        "030/23125-226",
        "+49 30 23125226",
        "06 12 34 56 78",
        "0412 345 678",
        "+61 412 345 678",
        "55 1234 5678",
        "++1 415 555 2671",
        "+(1) 415 555 2671",
        "()415555 2671",
        "1-800-FLOWERS",
    ]
    for region in ("US", "GB", "DE", "FR", "AU", "MX", "CA", None):
        fast = phonefast.parse_many(cells, [region] * len(cells))
        for cell, got in zip(cells, fast, strict=True):
            slow = parse_phone(cell, region)
            if got is not None:
                assert got == slow, (cell, region)
    # the common forms are answered by the fast path
    fast = phonefast.parse_many(cells[:4], ["US"] * 4)
    assert fast == [PhoneResult("+14155552671", "US", None)] * 4


def test_zones_and_regions_many_equal_one_at_a_time():
    cases = _cases(20_000, seed=11)
    results = phonefast.parse_many([c for c, _ in cases], [r for _, r in cases])
    e164s = sorted({r.e164 for r in results if r is not None})
    assert len(e164s) > 5_000
    want_zones = [zones_for_number(e) for e in e164s]
    want_regions = [region_of(e) for e in e164s]
    assert phonefast.zones_many(e164s) == want_zones
    assert phonefast.regions_many(e164s) == want_regions
    # the same when the numbers were not parsed lately (each E.164 form parsed again), and
    # with numbers the fast path leaves (an extension: zones_for_number one by one)
    phonefast._KNOWN.clear()
    phonefast._KNOWN_OLD.clear()
    phonefast._ZONES.clear()
    odd = ["+14155552671;ext=12", "+80012345678"]
    assert phonefast.zones_many(e164s[::-1] + odd) == want_zones[::-1] + [
        zones_for_number(e) for e in odd
    ]
    assert phonefast.regions_many(e164s[::-1]) == want_regions[::-1]


def test_e164_many_reads_cells_as_written_as_parse_many_reads_clean_ones():
    """e164_many trims a cell itself (str.strip): the same answers as parse_many of the
    cleaned cell, except that a zero-width character at an end leaves the cell to the caller."""
    rnd = random.Random(5)
    cases = _cases(20_000, seed=13)
    pads = ["", "", " ", "  ", "\t", "\u00a0", "\u3000 ", "\n", "\u200b", " \ufeff"]
    cells: list[object] = [rnd.choice(pads) + c + rnd.choice(pads) for c, _ in cases]
    cells += [None, "", "   ", 4155552671, float("nan")]
    regions = [r for _, r in cases] + ["US"] * 5
    got = phonefast.e164_many(cells, regions)
    want = phonefast.parse_many([clean(c) for c in cells], regions)
    zero_width = ("\u200b", "\ufeff")
    answered = 0
    for cell, g, w in zip(cells, got, want, strict=True):
        if isinstance(cell, str) and any(z in cell for z in zero_width):
            assert g is None or g == w.e164, cell
        else:
            assert g == (None if w is None or not isinstance(cell, str) else w.e164), cell
            answered += g is not None
    assert answered > 8_000


def _rewriting_cases(seed: int = 17) -> list[tuple[str, str | None]]:
    """Cells of every region whose national-prefix rule may rewrite digits
    (``national_prefix_transform_rule``: Brazil's and Argentina's carrier codes, the
    Caribbean's and Guernsey's local numbers, Japan's…), written with and without the parts
    that trigger the rewrite, with their last digits changed."""
    rnd = random.Random(seed)
    regions = sorted(
        r
        for r in phonenumbers.SUPPORTED_REGIONS
        if (m := phonenumbers.PhoneMetadata.metadata_for_region(r)) is not None
        and m.national_prefix_transform_rule
    )
    assert {"AR", "BR", "AG", "GG", "JP"} <= set(regions)
    cases: list[tuple[str, str | None]] = []
    for region in regions:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        assert meta is not None
        cc, prefix = meta.country_code, meta.national_prefix or "0"
        for kind in TYPES:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            nsn = pnu.national_significant_number(example)
            for _ in range(30):
                keep = rnd.randrange(max(1, len(nsn) - 4), len(nsn) + 1)
                digits = nsn[:keep] + "".join(rnd.choice("0123456789") for _ in nsn[keep:])
                carrier = rnd.choice(["12", "14", "15", "21", "31", "41", "55", "99", "11"])
                local = digits[-rnd.choice([5, 6, 7, 8]) :]
                cases += [
                    (cell, rnd.choice([region, region, None, "US"]))
                    for cell in (
                        digits,
                        f"{prefix}{digits}",
                        f"{prefix} {carrier} {digits}",
                        f"90{carrier}{digits}",
                        f"{prefix}{digits[:3]} 15 {digits[3:]}",
                        local,
                        f"{prefix}{local}",
                        f"+{cc} {digits}",
                        f"+{cc} {prefix}{carrier}{digits}",
                        f"{cc}{digits}",
                        f"{cc}{prefix}{carrier}{digits}",
                    )
                ]
    return cases


def test_regions_whose_national_prefix_rewrites_digits_answer_their_plain_forms():
    """Where the national prefix's pattern matches without its last group (no carrier code,
    no local number to complete), ``parse`` strips it as in any region, so the fast path
    answers; where the group takes part (``0 21 …`` in Brazil, seven digits in Antigua) the
    digits are rewritten and the number is left to phonenumbers itself."""
    cases = _rewriting_cases()
    answered, bad = _mismatches(cases)
    assert bad == []
    assert len(cases) > 30_000
    assert answered > 0.2 * len(cases)
    # the forms of the bench data in Brazil are answered; a carrier code is left
    cells = ["(46) 91896-1445", "046 91896-1445", "+55 46 91896-1445", "0 21 46 91896-1445"]
    fast = phonefast.parse_many(cells, ["BR"] * 4)
    assert fast == [PhoneResult("+5546918961445", "BR", None)] * 3 + [None]
    assert parse_phone(cells[3], "BR") == PhoneResult("+5546918961445", "BR", None)
    # and a seven-digit Antiguan number (completed with its area code) is left too
    assert phonefast.parse_many(["464 1234"], ["AG"]) == [None]
    assert parse_phone("464 1234", "AG") == PhoneResult("+12684641234", "AG", None)


def test_numbers_with_an_extension_are_answered_as_parse_phone_reads_them():
    """A number of the simple forms followed by ``x12``, ``ext. 12``, ``, ext 12`` or ``#12``
    (any case, up to five digits) gets parse_phone's E.164 and extension; every other tail is
    left to parse_phone (``None``), and without a tail the answers are e164_many's."""
    rnd = random.Random(23)
    tails = [
        " x{}", "x{}", " X {}", " ext. {}", " ext.{}", " Ext {}", " EXT. {}", ", ext. {}",
        ",ext {}", ", x{}", " #{}", "#{}", " # {}",
        # not of the forms answered here: left to parse_phone
        " ext: {}", ", {}", " extension {}", " x-{}", "  x{}", " ;ext={}", " x{}#", "/x{}",
    ]  # fmt: skip
    base = [(c, r) for c, r in _cases(12_000, seed=29) if phonefast.SIMPLE.fullmatch(c)]
    cells: list[object] = []
    regions: list[str | None] = []
    for cell, region in base:
        digits = "".join(rnd.choice("0123456789") for _ in range(rnd.choice([1, 2, 3, 4, 5, 6])))
        cells.append(cell + rnd.choice(tails).format(digits) if rnd.random() < 0.8 else cell)
        regions.append(region)
    numbers, extensions = phonefast.e164_with_extensions(cells, regions)
    answered = with_tail = 0
    for cell, region, e164, ext in zip(cells, regions, numbers, extensions, strict=True):
        if e164 is None:
            assert ext is None
            continue
        slow = parse_phone(str(cell), region)
        assert isinstance(slow, PhoneResult), (cell, region)
        assert (e164, ext) == (slow.e164, slow.extension), (cell, region)
        answered += 1
        with_tail += ext is not None
    assert answered > 4_000 and with_tail > 2_500
    plain = [c for c in cells if isinstance(c, str) and phonefast.SIMPLE.fullmatch(c)]
    assert phonefast.e164_with_extensions(plain, ["US"] * len(plain))[0] == phonefast.e164_many(
        plain, ["US"] * len(plain)
    )
    assert phonefast.e164_with_extensions(
        ["1-208-308-9251 x3325", "227 366 7589, ext. 5214", "+61420546669 ext. 7725", "x12"],
        ["US", "US", "AU", "US"],
    ) == (["+12083089251", "+12273667589", "+61420546669", None], ["3325", "5214", "7725", None])
