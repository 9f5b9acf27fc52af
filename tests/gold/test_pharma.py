import datetime as dt
from decimal import Decimal

from chispa import assert_df_equality

from lakehouse.gold.pharma_kpis import (
    build_kpi_marge_journaliere,
    build_kpi_performance_livraison,
    build_kpi_rupture_stock,
)
from lakehouse.gold.pharma_star import build_fact_ventes, with_site_sk

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
            ("O3", 20250101, -1, Decimal("10.00"), None, None),  # before any price period: unknown member
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


def test_fact_ventes_gains_site_sk_from_dim_site_unknown_site_to_minus_1(spark):
    fact = spark.createDataFrame(
        [("O1", 1, 11, "S01", Decimal("1.00")), ("O2", 1, None, "S09", Decimal("2.00"))],
        "order_id string, line_number int, product_sk long, site_id string, net_amount decimal(18,2)",
    )
    dim_site = spark.createDataFrame(
        [(101, "S01"), (102, "S02"), (-1, "UNKNOWN")], "site_sk long, site_id string"
    )
    actual = with_site_sk(fact, dim_site)
    expected = spark.createDataFrame(
        [("O1", 1, 11, 101, "S01", Decimal("1.00")), ("O2", 1, None, -1, "S09", Decimal("2.00"))],
        "order_id string, line_number int, product_sk long, site_sk long, site_id string, "
        "net_amount decimal(18,2)",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


STOCK_SCHEMA = "snapshot_date date, site_id string, product_id string, quantity_on_hand int, safety_stock int"
DAY1, DAY2 = dt.date(2026, 11, 2), dt.date(2026, 11, 3)


def test_kpi_rupture_stock_counts_zero_as_out_and_at_safety_stock_as_not_below(spark):
    stock = spark.createDataFrame(
        [
            (DAY1, "S01", "P1", 0, 10),  # out of stock, below safety stock
            (DAY1, "S01", "P2", 10, 10),  # exactly at safety stock: not below
            (DAY1, "S01", "P3", 9, 10),  # just below
            (DAY1, "S01", "P4", 50, 10),
            (DAY2, "S01", "P1", 0, 0),  # out of stock, safety stock 0: not below
            (DAY2, "S01", "P2", 3, 10),
            (DAY2, "S01", "P3", 7, 10),
            (DAY1, "S02", "P1", 5, None),  # no safety stock known: not below
        ],
        STOCK_SCHEMA,
    )
    kpi = build_kpi_rupture_stock(stock)
    expected = spark.createDataFrame(
        [
            (20261102, DAY1, "S01", 4, 1, 2, Decimal("0.2500"), Decimal("0.5000")),
            (20261103, DAY2, "S01", 3, 1, 2, Decimal("0.3333"), Decimal("0.6667")),
            (20261102, DAY1, "S02", 1, 0, 0, Decimal("0.0000"), Decimal("0.0000")),
        ],
        "date_key int, date date, site_id string, products long, products_out_of_stock long, "
        "products_below_safety_stock long, stockout_rate decimal(9,4), below_safety_stock_rate decimal(9,4)",
    )
    assert_df_equality(kpi, expected, ignore_row_order=True, ignore_nullable=True)


DELIVERY_SCHEMA = (
    "delivery_id string, promised_date date, site_id string, actual_date date, "
    "is_on_time boolean, is_complete boolean"
)


def test_kpi_performance_livraison_counts_otif_late_and_pending_per_promised_day(spark):
    deliveries = spark.createDataFrame(
        [
            ("DL1", DAY2, "S01", DAY2, True, True),  # exactly on the promised date, in full: OTIF
            ("DL2", DAY2, "S01", DAY1, True, False),  # early but partial: neither OTIF nor late
            ("DL3", DAY2, "S01", dt.date(2026, 11, 4), False, True),  # late in full
            ("DL4", DAY2, "S01", None, None, None),  # not delivered yet
            ("DL5", DAY1, "S01", DAY2, False, False),  # late and partial
            ("DL6", DAY2, "S02", None, None, None),  # only pending: no rate yet
        ],
        DELIVERY_SCHEMA,
    )
    kpi = build_kpi_performance_livraison(deliveries)
    expected = spark.createDataFrame(
        [
            (20261103, DAY2, "S01", 4, 3, 1, 1, 1, Decimal("0.3333")),
            (20261102, DAY1, "S01", 1, 1, 0, 1, 0, Decimal("0.0000")),
            (20261103, DAY2, "S02", 1, 0, 0, 0, 1, None),
        ],
        "date_key int, date date, site_id string, deliveries_due long, deliveries_delivered long, "
        "deliveries_otif long, deliveries_late long, deliveries_pending long, otif_rate decimal(9,4)",
    )
    assert_df_equality(kpi, expected, ignore_row_order=True, ignore_nullable=True)
