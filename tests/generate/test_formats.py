"""Spelling of values in the landing files."""

from __future__ import annotations

import datetime as dt

import pytest

from lakehouse.generate.formats import (
    cip13_from_body,
    csv_line,
    ean13_check_digit,
    fr_decimal,
    is_valid_ean13,
    iso_ts,
)
from lakehouse.generate.order_export import impossible_date
from lakehouse.generate.vocabulary import check_latin1_safe

from .helpers import parse_fr_date


def test_ean13_check_digit_matches_known_codes():
    assert ean13_check_digit("400638133393") == 1  # 4006381333931, a textbook EAN-13
    assert is_valid_ean13("4006381333931")
    assert not is_valid_ean13("4006381333932")
    assert is_valid_ean13("3400935955838")  # a real CIP13 (Doliprane 1000 mg)
    assert cip13_from_body(1234567) == "3400912345676"  # sum 84 -> check digit 6
    assert is_valid_ean13(cip13_from_body(9_999_999))
    with pytest.raises(ValueError, match="expected 12 digits, found '12'"):
        ean13_check_digit("12")


def test_french_decimals_and_csv_quoting():
    assert list(fr_decimal([3.5, 0, 12.346], 2)) == ["3,50", "0,00", "12,35"]
    assert csv_line(["a", "b;c", 'd"e']) == 'a;"b;c";"d""e"'
    assert csv_line(["1,5", "x"]) == "1,5;x"  # a comma needs no quoting with ';'


@pytest.mark.parametrize("day", [dt.date(2026, 2, 10), dt.date(2026, 11, 3), dt.date(2026, 12, 31)])
def test_impossible_dates_are_well_formed_but_not_on_any_calendar(day):
    text = impossible_date(day)
    assert len(text) == 10 and text[2] == text[5] == "/"
    assert text.endswith(f"/{day.month:02d}/{day.year}")
    assert parse_fr_date(text) is None


def test_iso_timestamps_are_utc_with_z():
    stamps = iso_ts([0, 61, 1440], dt.date(2026, 11, 26))
    assert list(stamps) == ["2026-11-26T00:00:00Z", "2026-11-26T01:01:00Z", "2026-11-27T00:00:00Z"]


def test_latin1_safety_rejects_characters_cp1252_reads_differently():
    check_latin1_safe("Paracétamol 100 µg")
    with pytest.raises(UnicodeEncodeError):
        check_latin1_safe("Cœur")
    with pytest.raises(ValueError, match="cp1252"):
        check_latin1_safe("bad \x85 char")
