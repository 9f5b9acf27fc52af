import datetime as dt
from decimal import Decimal

from chispa import assert_df_equality

from lakehouse.silver.pharma import clean_deliveries, clean_order_lines, clean_stock_snapshots

BRONZE_SCHEMA = (
    "order_id string, line_number string, order_date string, customer_id string, "
    "product_id string, product_label string, site_id string, quantity string, "
    "unit_price string, discount_pct string, sales_channel string, _rescued_data string, "
    "_corrupt_record string, _source_file string, _line_number int, _ingested_at timestamp"
)
T1 = dt.datetime(2026, 11, 1, 6, 0)
T2 = dt.datetime(2026, 11, 2, 6, 0)


def _line(order_id, line, date, product, qty, price, discount, *, file="f1", row=2, at=T1, corrupt=None):
    return (
        order_id,
        line,
        date,
        "C1",
        product,
        "Label",
        "S01",
        qty,
        price,
        discount,
        None,
        None,
        corrupt,
        file,
        row,
        at,
    )


def test_order_lines_are_typed_validated_deduplicated_and_all_accounted_for(spark):
    bronze = spark.createDataFrame(
        [
            _line("O1", "1", "01/11/2026", "P1", "2", "10,50", "5", row=2),
            _line("O1", "1", "01/11/2026", "P1", "3", "10,50", "5", file="f2", row=2, at=T2),  # re-sent: wins
            _line("O2", "1", "02/11/2026", "P9", "1", "4,00", "0", row=3),  # unknown product
            _line("O3", "1", "31/02/2026", "P1", "-4", "4,00", "0", row=4),  # bad date + negative qty
            _line(None, None, None, None, None, None, None, row=5, corrupt="O4;1;oops"),
            _line("O5", "2", "03/11/2026", "P2", "1", "1,999", "12,5", row=6),
        ],
        BRONZE_SCHEMA,
    )
    products = spark.createDataFrame([("P1",), ("P2",)], "product_id string")

    silver, quarantine = clean_order_lines(bronze, products)

    expected = spark.createDataFrame(
        [
            (
                "O1",
                1,
                dt.date(2026, 11, 1),
                "C1",
                "P1",
                "S01",
                3,
                Decimal("10.5000"),
                Decimal("5.00"),
                None,
                "f2",
                2,
                T2,
            ),
            (
                "O5",
                2,
                dt.date(2026, 11, 3),
                "C1",
                "P2",
                "S01",
                1,
                Decimal("1.9990"),
                Decimal("12.50"),
                None,
                "f1",
                6,
                T1,
            ),
        ],
        "order_id string, line_number int, order_date date, customer_id string, product_id string, "
        "site_id string, quantity int, unit_price decimal(12,4), discount_pct decimal(5,2), "
        "sales_channel string, _source_file string, _line_number int, _ingested_at timestamp",
    )
    assert_df_equality(silver, expected, ignore_row_order=True, ignore_nullable=True)

    reasons = {(r._source_file, r._line_number): list(r._rejection_reasons) for r in quarantine.collect()}
    assert reasons == {
        ("f1", 2): ["latest_version_of_line"],
        ("f1", 3): ["known_product"],
        ("f1", 4): ["valid_order_date", "positive_quantity"],
        ("f1", 5): [
            "well_formed_row",
            "order_id_present",
            "line_number_is_integer",
            "valid_order_date",
            "positive_quantity",
            "valid_unit_price",
            "discount_between_0_and_100",
            "known_product",
        ],
    }
    # Nothing lost: every bronze row is in silver or in quarantine, exactly once.
    assert silver.count() + quarantine.count() == bronze.count()
    # The quarantine keeps what arrived, as it arrived.
    bad_date = quarantine.where("_line_number = 4").first()
    assert (bad_date._check_raw_order_date, bad_date._check_raw_quantity) == ("31/02/2026", "-4")
    assert quarantine.where("_line_number = 5").first()._check_corrupt_record == "O4;1;oops"


STOCK_BRONZE_SCHEMA = (
    "snapshot_date string, site_id string, product_id string, quantity_on_hand string, "
    "safety_stock string, _rescued_data string, _corrupt_record string, _source_file string, "
    "_line_number int, _ingested_at timestamp"
)


def _stock(date, site, product, qty, safety, *, file="s1", row=2, at=T1, corrupt=None):
    return (date, site, product, qty, safety, None, corrupt, file, row, at)


def test_stock_snapshots_are_typed_validated_deduplicated_and_all_accounted_for(spark):
    bronze = spark.createDataFrame(
        [
            _stock("01/11/2026", "S01", "P1", "0", "10", row=2),  # stock-out: kept
            _stock("01/11/2026", "S01", "P2", "12", "10", row=3),  # older version
            _stock("01/11/2026", "S01", "P2", "15", "10", file="s2", row=3, at=T2),  # re-sent: wins
            _stock("01/11/2026", "S01", "P3", "-5", "10", row=4),  # negative quantity
            _stock("01/11/2026", "S09", "P1", "5", "10", row=5),  # unknown site
            _stock("01/11/2026", "S01", "P9", "5", "10", row=6),  # unknown product
            _stock("31/02/2026", "S01", "P1", "5", None, row=7),  # impossible date, no safety stock
            _stock(None, None, None, None, None, row=8, corrupt="01/11/2026;S01"),
        ],
        STOCK_BRONZE_SCHEMA,
    )
    products = spark.createDataFrame([("P1",), ("P2",), ("P3",)], "product_id string")
    sites = spark.createDataFrame([("S01",), ("S02",)], "site_id string")

    silver, quarantine = clean_stock_snapshots(bronze, products, sites)

    expected = spark.createDataFrame(
        [
            (dt.date(2026, 11, 1), "S01", "P1", 0, 10, "s1", 2, T1),
            (dt.date(2026, 11, 1), "S01", "P2", 15, 10, "s2", 3, T2),
        ],
        "snapshot_date date, site_id string, product_id string, quantity_on_hand int, safety_stock int, "
        "_source_file string, _line_number int, _ingested_at timestamp",
    )
    assert_df_equality(silver, expected, ignore_row_order=True, ignore_nullable=True)

    reasons = {(r._source_file, r._line_number): list(r._rejection_reasons) for r in quarantine.collect()}
    assert reasons == {
        ("s1", 3): ["latest_version_of_snapshot"],
        ("s1", 4): ["non_negative_quantity"],
        ("s1", 5): ["known_site"],
        ("s1", 6): ["known_product"],
        ("s1", 7): ["valid_snapshot_date", "valid_safety_stock"],
        ("s1", 8): [
            "well_formed_row",
            "valid_snapshot_date",
            "non_negative_quantity",
            "valid_safety_stock",
            "known_product",
            "known_site",
        ],
    }
    assert silver.count() + quarantine.count() == bronze.count()
    negative = quarantine.where("_line_number = 4").first()
    assert negative._check_raw_quantity_on_hand == "-5"


DELIVERY_BRONZE_SCHEMA = (
    "delivery_id string, order_id string, site_id string, customer_id string, promised_date date, "
    "actual_date date, quantity_ordered bigint, quantity_delivered bigint, carrier string, "
    "_rescued_data string, _corrupt_record string, _source_file string, _line_number int, "
    "_ingested_at timestamp"
)
D1, D2, D3 = dt.date(2026, 11, 2), dt.date(2026, 11, 3), dt.date(2026, 11, 4)


def _delivery(
    delivery_id, promised, actual, ordered, delivered, *, site="S01", file="d1", row=1, at=T1, corrupt=None
):
    return (delivery_id, "O" + (delivery_id or "")[2:], site, "C1", promised, actual, ordered, delivered, "DHL",
            None, corrupt, file, row, at)  # fmt: skip


def test_deliveries_get_their_outcome_null_while_not_delivered(spark):
    bronze = spark.createDataFrame(
        [
            _delivery("DL1", D3, D3, 10, 10, row=1),  # on the promised date, in full
            _delivery("DL2", D3, D2, 10, 7, row=2),  # early but partial
            _delivery("DL3", D2, D3, 10, 12, row=3),  # late, more than ordered
            _delivery("DL4", D3, None, 10, None, row=4),  # in transit at the first export...
            _delivery("DL4", D3, D3, 10, 10, file="d2", row=1, at=T2),  # ...delivered later: wins
            _delivery("DL5", D3, None, 5, None, row=5),  # still in transit
            _delivery("DL6", D3, D3, 5, 5, site="S09", row=6),  # unknown site
            _delivery("DL7", D3, D3, 5, None, row=7),  # delivered date without quantity
            _delivery(None, None, None, None, None, site=None, row=8, corrupt='{"delivery_id": "DL8", "ord'),
        ],
        DELIVERY_BRONZE_SCHEMA,
    )
    sites = spark.createDataFrame([("S01",)], "site_id string")

    silver, quarantine = clean_deliveries(bronze, sites)

    actual = silver.select(
        "delivery_id", "actual_date", "is_delivered", "is_on_time", "is_complete", "_source_file"
    )
    expected = spark.createDataFrame(
        [
            ("DL1", D3, True, True, True, "d1"),
            ("DL2", D2, True, True, False, "d1"),
            ("DL3", D3, True, False, True, "d1"),
            ("DL4", D3, True, True, True, "d2"),
            ("DL5", None, False, None, None, "d1"),
        ],
        "delivery_id string, actual_date date, is_delivered boolean, is_on_time boolean, "
        "is_complete boolean, _source_file string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)

    reasons = {(r._source_file, r._line_number): list(r._rejection_reasons) for r in quarantine.collect()}
    assert reasons == {
        ("d1", 4): ["latest_version_of_delivery"],
        ("d1", 6): ["known_site"],
        ("d1", 7): ["delivered_date_and_quantity_together"],
        ("d1", 8): [
            "well_formed_line",
            "delivery_id_present",
            "valid_promised_date",
            "positive_quantity_ordered",
            "known_site",
        ],
    }
    assert silver.count() + quarantine.count() == bronze.count()
