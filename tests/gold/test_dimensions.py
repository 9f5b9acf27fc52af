import datetime as dt
from decimal import Decimal

import pytest
from chispa import assert_df_equality

from lakehouse.gold.dimensions import (
    OPEN_END,
    build_dim_produit,
    build_dim_site,
    build_dim_temps,
    calendar_rows,
    resolve_key,
    with_unknown_date,
    with_unknown_product,
    with_unknown_site,
)
from lakehouse.gold.keys import with_unknown_member


def test_calendar_has_iso_weeks_weekends_and_french_holidays():
    rows = {r[1]: r for r in calendar_rows(dt.date(2026, 12, 31), dt.date(2027, 1, 4))}
    assert len(rows) == 5
    new_year = rows[dt.date(2027, 1, 1)]
    assert new_year[0] == 20270101
    assert new_year[5] == "janvier" and new_year[8] == "vendredi"
    assert (new_year[9], new_year[10]) == (2026, 53)  # ISO week belongs to 2026
    assert new_year[12] is True and new_year[13] == "Jour de l'an"
    assert rows[dt.date(2027, 1, 2)][11] is True  # Saturday
    assert rows[dt.date(2027, 1, 4)][10] == 1 and rows[dt.date(2027, 1, 4)][12] is False


def test_calendar_knows_moving_holidays():
    rows = {r[1]: r for r in calendar_rows(dt.date(2026, 4, 1), dt.date(2026, 5, 31))}
    holidays = {day for day, row in rows.items() if row[12]}
    # Easter Monday, Labour day, 8 May, Ascension, Whit Monday in 2026
    assert holidays == {
        dt.date(2026, 4, 6),
        dt.date(2026, 5, 1),
        dt.date(2026, 5, 8),
        dt.date(2026, 5, 14),
        dt.date(2026, 5, 25),
    }


def test_calendar_rejects_reversed_range():
    with pytest.raises(ValueError, match="before start"):
        calendar_rows(dt.date(2026, 2, 1), dt.date(2026, 1, 1))


def test_dim_produit_has_one_version_per_price_period_with_stable_keys(spark):
    products = spark.createDataFrame(
        [("P1", "3400930000001", "Doliprane", "N02BE01", "N", "cp", True)],
        "product_id string, cip13 string, name string, atc_code string, atc_class string, "
        "dosage_form string, is_active boolean",
    )
    prices = spark.createDataFrame(
        [
            ("P1", dt.date(2026, 1, 1), dt.date(2026, 6, 1), Decimal("1.0000"), Decimal("2.0000")),
            ("P1", dt.date(2026, 6, 1), None, Decimal("1.2000"), Decimal("2.5000")),
        ],
        "product_id string, valid_from date, valid_to date, unit_cost decimal(12,4), list_price decimal(12,4)",
    )
    dim = build_dim_produit(products, prices)
    rows = sorted(dim.collect(), key=lambda r: r.valid_from)
    assert [(r.valid_to, r.is_current, r.unit_cost) for r in rows] == [
        (dt.date(2026, 6, 1), False, Decimal("1.0000")),
        (OPEN_END, True, Decimal("1.2000")),
    ]
    assert rows[0].product_sk != rows[1].product_sk
    again = sorted(build_dim_produit(products, prices).collect(), key=lambda r: r.valid_from)
    assert [r.product_sk for r in again] == [r.product_sk for r in rows]


def test_dim_site_keys_are_the_hash_of_site_id(spark):
    sites = spark.createDataFrame(
        [("S01", "Usine de Lyon", "Lyon", "Auvergne-Rhône-Alpes", "FR", "plant", None)],
        "site_id string, name string, city string, region string, country string, site_type string, "
        "updated_at timestamp",
    )
    row = build_dim_site(sites).first()
    expected_sk = spark.sql("SELECT xxhash64('S01') AS k").first().k
    assert row.asDict() == {
        "site_sk": expected_sk,
        "site_id": "S01",
        "site_name": "Usine de Lyon",
        "site_type": "plant",
        "city": "Lyon",
        "region": "Auvergne-Rhône-Alpes",
        "country": "FR",
    }


def test_unknown_members_have_key_minus_1_and_typed_nulls(spark):
    calendar = with_unknown_date(build_dim_temps(spark, dt.date(2026, 1, 1), dt.date(2026, 1, 2)))
    assert sorted(r.date_key for r in calendar.collect()) == [-1, 20260101, 20260102]
    unknown_day = calendar.where("date_key = -1").first()
    assert unknown_day.date is None and unknown_day.day_name == "Inconnu" and unknown_day.is_holiday is None
    sites = spark.createDataFrame(
        [(1, "S01", "Lyon", "plant", "Lyon", "ARA", "FR")],
        "site_sk long, site_id string, site_name string, site_type string, city string, region string, "
        "country string",
    )
    unknown_site = with_unknown_site(sites).where("site_sk = -1").first().asDict()
    assert unknown_site == {
        "site_sk": -1, "site_id": "UNKNOWN", "site_name": "Inconnu", "site_type": None, "city": None,
        "region": None, "country": None,
    }  # fmt: skip
    with pytest.raises(ValueError, match=r"\['nope'\] are not in the dimension"):
        with_unknown_member(sites, {"nope": 1})


def test_resolve_key_sends_unmatched_keys_to_minus_1(spark):
    fact = spark.createDataFrame([(1, 20260101), (2, 20300101), (3, None)], "id int, date_key int")
    calendar = with_unknown_date(build_dim_temps(spark, dt.date(2026, 1, 1), dt.date(2026, 1, 2)))
    actual = resolve_key(fact, calendar, "date_key")
    expected = spark.createDataFrame([(1, 20260101), (2, -1), (3, -1)], "id int, date_key int")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_dim_produit_unknown_member_is_valid_at_every_date(spark):
    products = spark.createDataFrame(
        [("P1", "3400930000001", "Doliprane", "N02BE01", "N", "cp", True)],
        "product_id string, cip13 string, name string, atc_code string, atc_class string, "
        "dosage_form string, is_active boolean",
    )
    prices = spark.createDataFrame(
        [("P1", dt.date(2026, 1, 1), None, Decimal("1.0000"), Decimal("2.0000"))],
        "product_id string, valid_from date, valid_to date, unit_cost decimal(12,4), list_price decimal(12,4)",
    )
    dim = with_unknown_product(build_dim_produit(products, prices))
    unknown = dim.where("product_sk = -1").first()
    assert (unknown.product_id, unknown.valid_from, unknown.valid_to, unknown.unit_cost) == (
        "UNKNOWN", dt.date(1900, 1, 1), OPEN_END, None,
    )  # fmt: skip
    assert dim.count() == 2
