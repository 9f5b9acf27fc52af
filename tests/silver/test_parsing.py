import datetime as dt
from decimal import Decimal

from chispa import assert_df_equality

from lakehouse.silver.parsing import parse_date_fr, parse_decimal_fr, parse_int


def test_french_decimals_dates_and_integers_parse_or_become_null(spark):
    raw = spark.createDataFrame(
        [
            ("12,50", "31/12/2026", "3"),
            ("1 234,5", "01/02/2026", " 7 "),
            ("abc", "31/02/2026", "2.5"),  # not a number, impossible date, not an int
            (None, None, None),
        ],
        "amount string, day string, qty string",
    )
    actual = raw.select(
        parse_decimal_fr("amount").alias("amount"),
        parse_date_fr("day").alias("day"),
        parse_int("qty").alias("qty"),
    )
    expected = spark.createDataFrame(
        [
            (Decimal("12.5000"), dt.date(2026, 12, 31), 3),
            (Decimal("1234.5000"), dt.date(2026, 2, 1), 7),
            (None, None, None),
            (None, None, None),
        ],
        "amount decimal(12,4), day date, qty int",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)
