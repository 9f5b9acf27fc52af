"""Dimensions of the star schema.

- ``dim_temps``: one row per calendar day, key ``date_key`` (yyyymmdd); ISO week,
  French public holidays.
- ``dim_produit``: SCD type 2, one row per product and price/cost period, surrogate key
  ``product_sk``; ``valid_to`` exclusive ('9999-12-31' for the current row).
- ``dim_site``: one row per site, surrogate key ``site_sk`` = xxhash64(site_id).

Each stored dimension also holds the unknown member (key -1, ``lakehouse.gold.keys``),
added by the ``with_unknown_*`` functions so the builders stay about real rows.
"""

from __future__ import annotations

import datetime as dt

import holidays
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.gold.keys import UNKNOWN_ID, UNKNOWN_LABEL, UNKNOWN_SK, with_unknown_member

OPEN_END = dt.date(9999, 12, 31)
DIM_TEMPS_SCHEMA = (
    "date_key int, date date, year int, quarter int, month int, month_name string, "
    "day_of_month int, day_of_week int, day_name string, iso_year int, iso_week int, "
    "is_weekend boolean, is_holiday boolean, holiday_name string"
)
_MONTHS_FR = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip
_DAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


def french_public_holidays(start: dt.date, end: dt.date) -> dict[dt.date, str]:
    """Metropolitan France's public holidays between two dates, named in French."""
    years = range(start.year, end.year + 1)
    calendar = holidays.France(years=years, language="fr")
    return {day: name for day, name in calendar.items() if start <= day <= end}


def calendar_rows(start: dt.date, end: dt.date) -> list[tuple]:
    """Rows of ``dim_temps`` from ``start`` to ``end`` inclusive (pure Python)."""
    if end < start:
        raise ValueError(f"dim_temps: end {end} is before start {start}")
    public_holidays = french_public_holidays(start, end)
    rows = []
    for offset in range((end - start).days + 1):
        day = start + dt.timedelta(days=offset)
        iso = day.isocalendar()
        holiday = public_holidays.get(day)
        rows.append(
            (
                int(day.strftime("%Y%m%d")),
                day,
                day.year,
                (day.month - 1) // 3 + 1,
                day.month,
                _MONTHS_FR[day.month - 1],
                day.day,
                iso.weekday,
                _DAYS_FR[iso.weekday - 1],
                iso.year,
                iso.week,
                iso.weekday >= 6,
                holiday is not None,
                holiday,
            )
        )
    return rows


def build_dim_temps(spark: SparkSession, start: dt.date, end: dt.date) -> DataFrame:
    return spark.createDataFrame(calendar_rows(start, end), DIM_TEMPS_SCHEMA)


def date_key(col: str) -> F.Column:
    """DATE column -> yyyymmdd INT key of ``dim_temps``."""
    return F.date_format(F.col(col), "yyyyMMdd").cast("int")


def build_dim_produit(products: DataFrame, product_prices: DataFrame) -> DataFrame:
    """SCD2 product dimension: product attributes x price/cost validity periods.

    ``product_sk`` is a hash of the business key and the period start, so rebuilding
    the dimension gives the same keys (facts never need re-keying).
    """
    prices = product_prices.select(
        "product_id",
        "valid_from",
        F.coalesce("valid_to", F.lit(OPEN_END)).alias("valid_to"),
        "unit_cost",
        "list_price",
    )
    attributes = products.select(
        "product_id", "cip13", "name", "atc_code", "atc_class", "dosage_form", "is_active"
    )
    return attributes.join(prices, "product_id", "inner").select(
        F.xxhash64("product_id", "valid_from").alias("product_sk"),
        "product_id",
        "cip13",
        "name",
        "atc_code",
        "atc_class",
        "dosage_form",
        "is_active",
        "unit_cost",
        "list_price",
        "valid_from",
        "valid_to",
        (F.col("valid_to") == F.lit(OPEN_END)).alias("is_current"),
    )


def build_dim_site(sites: DataFrame) -> DataFrame:
    """Site dimension (type 1): ``site_sk`` is a hash of ``site_id``, stable across rebuilds."""
    return sites.select(
        F.xxhash64("site_id").alias("site_sk"),
        "site_id",
        F.col("name").alias("site_name"),
        "site_type",
        "city",
        "region",
        "country",
    )


def with_unknown_date(dim_temps: DataFrame) -> DataFrame:
    """``dim_temps`` plus ``date_key`` -1 (a fact date outside the calendar)."""
    return with_unknown_member(dim_temps, {"date_key": UNKNOWN_SK, "day_name": UNKNOWN_LABEL})


def with_unknown_product(dim_produit: DataFrame) -> DataFrame:
    """``dim_produit`` plus ``product_sk`` -1, valid at every date (an order line of an
    unknown product or outside every price period)."""
    return with_unknown_member(
        dim_produit,
        {
            "product_sk": UNKNOWN_SK,
            "product_id": UNKNOWN_ID,
            "name": UNKNOWN_LABEL,
            "valid_from": dt.date(1900, 1, 1),
            "valid_to": OPEN_END,
            "is_current": True,
        },
    )


def with_unknown_site(dim_site: DataFrame) -> DataFrame:
    """``dim_site`` plus ``site_sk`` -1."""
    return with_unknown_member(
        dim_site, {"site_sk": UNKNOWN_SK, "site_id": UNKNOWN_ID, "site_name": UNKNOWN_LABEL}
    )


def resolve_key(fact: DataFrame, dimension: DataFrame, key: str) -> DataFrame:
    """Replace ``fact``'s ``key`` by -1 where ``dimension`` has no such key (same
    column name on both sides; the column keeps its place)."""
    known = dimension.select(F.col(key).alias("_known_key")).where(F.col("_known_key") != UNKNOWN_SK)
    joined = fact.join(known, fact[key] == known["_known_key"], "left")
    found = F.col("_known_key").isNotNull()
    return joined.withColumn(key, F.when(found, F.col(key)).otherwise(F.lit(UNKNOWN_SK))).drop("_known_key")
