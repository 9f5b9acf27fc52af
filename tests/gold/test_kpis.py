import datetime as dt
from decimal import Decimal

from chispa import assert_df_equality

from lakehouse.gold.energy_kpis import (
    build_kpi_anomalies_machine,
    build_kpi_energie_machine,
    build_kpi_energie_site,
)
from lakehouse.gold.pharma_kpis import (
    build_kpi_duree_rupture,
    build_kpi_marge_produit_site_mois,
    build_kpi_rappels_en_stock,
)

FACT_VENTES_SCHEMA = (
    "order_id string, order_date date, product_id string, site_id string, quantity int, "
    "net_amount decimal(18,2), cost_amount decimal(18,2), margin_amount decimal(18,2)"
)


def test_margins_per_month_product_and_site_count_lines_without_cost(spark):
    fact = spark.createDataFrame(
        [
            (
                "O1",
                dt.date(2026, 10, 31),
                "P1",
                "S01",
                2,
                Decimal("20.00"),
                Decimal("12.00"),
                Decimal("8.00"),
            ),
            ("O2", dt.date(2026, 11, 1), "P1", "S01", 1, Decimal("10.00"), Decimal("6.00"), Decimal("4.00")),
            (
                "O3",
                dt.date(2026, 11, 30),
                "P1",
                "S01",
                3,
                Decimal("30.00"),
                Decimal("18.00"),
                Decimal("12.00"),
            ),
            ("O4", dt.date(2026, 11, 15), "P1", "S01", 1, Decimal("5.00"), None, None),  # cost unknown
            ("O5", dt.date(2026, 11, 15), "P1", "S02", 1, Decimal("0.00"), Decimal("1.00"), Decimal("-1.00")),
        ],
        FACT_VENTES_SCHEMA,
    )
    expected = spark.createDataFrame(
        [
            (
                202610,
                dt.date(2026, 10, 1),
                "P1",
                "S01",
                1,
                2,
                Decimal("20.00"),
                Decimal("12.00"),
                Decimal("8.00"),
                Decimal("0.4000"),
                0,
            ),  # 8 / 20
            # November S01: net 10 + 30 + 5 = 45, cost 6 + 18 = 24, margin 4 + 12 = 16, rate 16 / 45 = 0.3556
            (
                202611,
                dt.date(2026, 11, 1),
                "P1",
                "S01",
                3,
                5,
                Decimal("45.00"),
                Decimal("24.00"),
                Decimal("16.00"),
                Decimal("0.3556"),
                1,
            ),
            (
                202611,
                dt.date(2026, 11, 1),
                "P1",
                "S02",
                1,
                1,
                Decimal("0.00"),
                Decimal("1.00"),
                Decimal("-1.00"),
                None,
                0,
            ),  # no revenue: no rate
        ],  # fmt: skip
        "month_key int, month date, product_id string, site_id string, order_lines long, units_sold long, "
        "net_revenue decimal(18,2), cost decimal(18,2), margin decimal(18,2), margin_rate decimal(9,4), "
        "lines_without_cost long",
    )
    actual = build_kpi_marge_produit_site_mois(fact)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


STOCK_SCHEMA = "snapshot_date date, site_id string, product_id string, quantity_on_hand int"


def _day(d):
    return dt.date(2026, 11, d)


def test_stockout_episodes_are_consecutive_days_at_zero(spark):
    stock = spark.createDataFrame(
        [
            (_day(1), "S01", "P1", 0),  # episode 1: days 1-2
            (_day(2), "S01", "P1", 0),
            (_day(3), "S01", "P1", 4),
            (_day(4), "S01", "P1", 0),  # episode 2: days 4-5, still out at the latest snapshot
            (_day(5), "S01", "P1", 0),
            (_day(1), "S01", "P2", 0),  # episode: day 1 only; day 2 has no snapshot
            (_day(3), "S01", "P2", 0),  # a new episode after the missing day, ended on day 4
            (_day(4), "S01", "P2", 1),
            (_day(5), "S01", "P2", 1),
            (_day(2), "S02", "P1", 0),  # S02's latest snapshot is day 2: ongoing there
        ],
        STOCK_SCHEMA,
    )
    expected = spark.createDataFrame(
        [
            (20261101, "S01", "P1", _day(1), _day(2), 2, False),
            (20261104, "S01", "P1", _day(4), _day(5), 2, True),
            (20261101, "S01", "P2", _day(1), _day(1), 1, False),
            (20261103, "S01", "P2", _day(3), _day(3), 1, False),
            (20261102, "S02", "P1", _day(2), _day(2), 1, True),
        ],
        "start_date_key int, site_id string, product_id string, start_date date, end_date date, "
        "days_out_of_stock long, is_ongoing boolean",
    )
    assert_df_equality(build_kpi_duree_rupture(stock), expected, ignore_row_order=True, ignore_nullable=True)


RECALL_SCHEMA = (
    "notice_id string, published_date date, product_id string, product_name string, cip13 string, "
    "lot_number string, severity string, reason string, is_our_product boolean"
)


def test_recalled_products_still_in_stock_at_the_latest_snapshot(spark):
    recalls = spark.createDataFrame(
        [
            ("R1", _day(2), "P1", "Doliprane", "3400930000001", "AB1", "II", "purity", True),
            ("R2", _day(2), None, None, "3400930999999", "ZZ9", "I", "label", False),  # another laboratory's
            (
                "R3",
                _day(6),
                "P2",
                "Ibuprofene",
                "3400930000002",
                "CD2",
                "III",
                "label",
                True,
            ),  # after snapshots
            ("R4", _day(1), "P3", "Spasfon", "3400930000003", "EF3", "II", "purity", True),  # sold out
        ],
        RECALL_SCHEMA,
    )
    stock = spark.createDataFrame(
        [
            (_day(4), "S01", "P1", 10),  # S01's earlier snapshot: ignored
            (_day(5), "S01", "P1", 7),  # recalled on day 2, 7 on hand on day 5: listed
            (_day(5), "S02", "P1", 0),  # nothing left at S02: not listed
            (_day(5), "S01", "P2", 3),
            (_day(5), "S01", "P3", 0),
        ],
        STOCK_SCHEMA,
    )
    actual = build_kpi_rappels_en_stock(recalls, stock)
    expected = spark.createDataFrame(
        [("R1", "S01", "P1", "Doliprane", "3400930000001", "AB1", "II", "purity", _day(2), _day(5), 7, 3)],
        "notice_id string, site_id string, product_id string, product_name string, cip13 string, "
        "lot_number string, severity string, reason string, published_date date, snapshot_date date, "
        "quantity_on_hand int, days_since_recall int",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


ENERGY_SCHEMA = (
    "machine_sk long, machine_id string, site_id string, hour_ts timestamp, hour_key int, kwh double, "
    "load_factor double, vibration_mm_s double, anomaly_class string"
)


def _h(day, hour):
    return dt.datetime(2026, 11, day, hour)


def _energy(machine, site, day, hour, kwh, anomaly=None, vibration=1.0, load=0.5, sk=1):
    return (
        sk,
        machine,
        site,
        _h(day, hour),
        int(f"202611{day:02d}{hour:02d}"),
        kwh,
        load,
        vibration,
        anomaly,
    )


def test_rolling_24h_consumption_per_machine_and_site(spark):
    fact = spark.createDataFrame(
        [
            _energy("M1", "S01", 1, 10, 5.0),
            _energy("M1", "S01", 2, 9, 7.0),  # 23 h later: same window
            _energy("M1", "S01", 2, 10, 11.0),  # 24 h after the first: that one leaves the window
            _energy("M2", "S01", 2, 10, 1.0),
            _energy("M3", None, 2, 10, 100.0),  # unknown machine, no site: not in the site table
        ],
        ENERGY_SCHEMA,
    )
    machines = build_kpi_energie_machine(fact).where("machine_id = 'M1'")
    expected = spark.createDataFrame(
        [
            ("M1", "S01", _h(1, 10), 2026110110, 5.0, 5.0, 1, False),
            ("M1", "S01", _h(2, 9), 2026110209, 7.0, 12.0, 2, False),  # 5 + 7
            ("M1", "S01", _h(2, 10), 2026110210, 11.0, 18.0, 2, True),  # 7 + 11
        ],
        "machine_id string, site_id string, hour_ts timestamp, hour_key int, kwh double, "
        "rolling_24h_kwh double, hours_in_window long, is_latest boolean",
    )
    assert_df_equality(machines, expected, ignore_row_order=True, ignore_nullable=True)
    sites = build_kpi_energie_site(fact)
    expected_sites = spark.createDataFrame(
        [
            ("S01", _h(1, 10), 2026110110, 5.0, 1, 5.0, False),
            ("S01", _h(2, 9), 2026110209, 7.0, 1, 12.0, False),
            ("S01", _h(2, 10), 2026110210, 12.0, 2, 19.0, True),  # 11 + 1 this hour; 7 + 12 over 24 h
        ],
        "site_id string, hour_ts timestamp, hour_key int, kwh double, machines long, rolling_24h_kwh double, "
        "is_latest boolean",
    )
    assert_df_equality(sites, expected_sites, ignore_row_order=True, ignore_nullable=True)


def test_anomaly_episodes_join_consecutive_hours_and_take_the_worst_class(spark):
    fact = spark.createDataFrame(
        [
            _energy("M1", "S01", 1, 22, 2.0, "warning", vibration=3.0),
            _energy("M1", "S01", 1, 23, 3.0, "critical", vibration=8.0, load=0.9),  # crosses midnight
            _energy("M1", "S01", 2, 0, 4.0, "warning", vibration=4.0),
            _energy("M1", "S01", 2, 1, 1.0, "normal"),  # ends the episode
            _energy("M1", "S01", 2, 2, 1.0, "warning", vibration=3.5),
            _energy("M1", "S01", 2, 4, 1.0, "warning", vibration=3.1),  # 03:00 missing: a new episode
            _energy("M1", "S01", 2, 5, 1.0, None),  # unclassified: not anomalous
        ],
        ENERGY_SCHEMA,
    )
    actual = build_kpi_anomalies_machine(fact).drop("machine_sk", "site_id")
    expected = spark.createDataFrame(
        [
            # 22:00-01:00: 3 hours, one critical; kWh 2 + 3 + 4 = 9
            ("M1", _h(1, 22), _h(2, 1), 20261101, 3, "critical", 1, 8.0, 0.9, 9.0),
            ("M1", _h(2, 2), _h(2, 3), 20261102, 1, "warning", 0, 3.5, 0.5, 1.0),
            ("M1", _h(2, 4), _h(2, 5), 20261102, 1, "warning", 0, 3.1, 0.5, 1.0),
        ],
        "machine_id string, start_ts timestamp, end_ts timestamp, date_key int, duration_hours long, "
        "anomaly_class string, critical_hours long, peak_vibration_mm_s double, peak_load_factor double, "
        "kwh double",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
