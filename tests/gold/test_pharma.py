import datetime as dt
from decimal import Decimal

from chispa import assert_df_equality

from lakehouse.gold.pharma import build_fact_ventes, build_kpi_marge_journaliere

LINES_SCHEMA = (
    "order_id string, line_number int, order_date date, customer_id string, product_id string, "
    "site_id string, quantity int, unit_price decimal(12,4), discount_pct decimal(5,2), "
    "sales_channel string"
)
DIM_SCHEMA = "product_sk long, product_id string, unit_cost decimal(12,4), valid_from date, valid_to date"


def test_fact_ventes_takes_the_cost_valid_at_the_order_date(spark):
    lines = spark.createDataFrame(
        [
            ("O1", 1, dt.date(2026, 5, 31), "C1", "P1", "S01", 2, Decimal("10.0000"), Decimal("0.00"), None),
            (
                "O2",
                1,
                dt.date(2026, 6, 1),
                "C1",
                "P1",
                "S01",
                2,
                Decimal("10.0000"),
                Decimal("10.00"),
                "direct",
            ),
            ("O3", 1, dt.date(2025, 1, 1), "C2", "P1", "S02", 1, Decimal("10.0000"), Decimal("0.00"), None),
        ],
        LINES_SCHEMA,
    )
    dim = spark.createDataFrame(
        [
            (11, "P1", Decimal("6.0000"), dt.date(2026, 1, 1), dt.date(2026, 6, 1)),
            (12, "P1", Decimal("7.0000"), dt.date(2026, 6, 1), dt.date(9999, 12, 31)),
        ],
        DIM_SCHEMA,
    )
    fact = build_fact_ventes(lines, dim)
    actual = fact.select("order_id", "date_key", "product_sk", "net_amount", "cost_amount", "margin_amount")
    expected = spark.createDataFrame(
        [
            ("O1", 20260531, 11, Decimal("20.00"), Decimal("12.00"), Decimal("8.00")),
            ("O2", 20260601, 12, Decimal("18.00"), Decimal("14.00"), Decimal("4.00")),
            ("O3", 20250101, None, Decimal("10.00"), None, None),  # before any price period: kept
        ],
        "order_id string, date_key int, product_sk long, net_amount decimal(18,2), "
        "cost_amount decimal(18,2), margin_amount decimal(18,2)",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_kpi_marge_journaliere_sums_per_day_and_site(spark):
    fact = spark.createDataFrame(
        [
            (
                20260601,
                dt.date(2026, 6, 1),
                "S01",
                "O1",
                2,
                Decimal("20.00"),
                Decimal("12.00"),
                Decimal("8.00"),
            ),
            (
                20260601,
                dt.date(2026, 6, 1),
                "S01",
                "O1",
                1,
                Decimal("5.00"),
                Decimal("5.00"),
                Decimal("0.00"),
            ),
            (20260601, dt.date(2026, 6, 1), "S01", "O2", 3, Decimal("15.00"), None, None),
            (
                20260601,
                dt.date(2026, 6, 1),
                "S02",
                "O3",
                1,
                Decimal("0.00"),
                Decimal("1.00"),
                Decimal("-1.00"),
            ),
        ],
        "date_key int, order_date date, site_id string, order_id string, quantity int, "
        "net_amount decimal(18,2), cost_amount decimal(18,2), margin_amount decimal(18,2)",
    )
    kpi = build_kpi_marge_journaliere(fact)
    expected = spark.createDataFrame(
        [
            (
                20260601,
                dt.date(2026, 6, 1),
                "S01",
                2,
                3,
                6,
                Decimal("40.00"),
                Decimal("17.00"),
                Decimal("8.00"),
                Decimal("0.2000"),
            ),
            (
                20260601,
                dt.date(2026, 6, 1),
                "S02",
                1,
                1,
                1,
                Decimal("0.00"),
                Decimal("1.00"),
                Decimal("-1.00"),
                None,
            ),
        ],
        "date_key int, date date, site_id string, orders long, order_lines long, units_sold long, "
        "net_revenue decimal(18,2), cost decimal(18,2), margin decimal(18,2), margin_rate decimal(9,4)",
    )
    assert_df_equality(kpi, expected, ignore_row_order=True, ignore_nullable=True)
