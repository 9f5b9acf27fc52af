import datetime as dt
from decimal import Decimal

from chispa import assert_df_equality

from lakehouse.silver.pharma import clean_order_lines

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
