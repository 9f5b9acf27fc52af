import datetime as dt

from lakehouse.silver.recalls import clean_recalls

BRONZE_SCHEMA = (
    "notice_id string, published_date string, cip13 string, lot_number string, severity string, "
    "reason string, source string, retrieved_at timestamp, _corrupt_record string, _rescued_data string, "
    "_source_file string, _ingested_at timestamp"
)
PRODUCTS_SCHEMA = "product_id string, cip13 string, name string"
T1, T2 = dt.datetime(2026, 11, 2, 6), dt.datetime(2026, 11, 3, 6)


def _notice(notice_id, cip13, *, published="2026-11-02", rescued=None, at=T1, file="r1", corrupt=None):
    return (notice_id, published, cip13, "AB12345", "II", "purity", "agency", at, corrupt, rescued, file, at)


def test_recalls_match_our_products_by_cip13_or_name_and_keep_the_latest_copy(spark):
    bronze = spark.createDataFrame(
        [
            _notice("R1", "3400930000001"),  # ours, by CIP13
            _notice("R1", "3400930000001", at=T2, file="r2", published="2026-11-03"),  # re-sent: wins
            _notice("R2", "3400930999999"),  # another laboratory's product
            _notice(
                "R3", None, rescued='{"product_description": "DOLIPRANE 500 mg tablets"}'
            ),  # API, by name
            _notice(
                "R4", None, rescued='{"product_description": "Doliprane and Ibuprofene kit"}'
            ),  # ambiguous
            _notice(None, None, corrupt='{"notice_id": "R5", '),  # corrupt record
            _notice("R6", "3400930000002", published="2026-13-45"),  # impossible date
        ],
        BRONZE_SCHEMA,
    )
    products = spark.createDataFrame(
        [("P1", "3400930000001", "Doliprane"), ("P2", "3400930000002", "Ibuprofene")], PRODUCTS_SCHEMA
    )
    kept, quarantine = clean_recalls(bronze, products)
    rows = sorted(
        (r.notice_id, r.published_date, r.product_id, r.match_method, r.is_our_product)
        for r in kept.collect()
    )
    assert rows == [
        ("R1", dt.date(2026, 11, 3), "P1", "cip13", True),
        ("R2", dt.date(2026, 11, 2), None, None, False),
        ("R3", dt.date(2026, 11, 2), "P1", "name", True),
        ("R4", dt.date(2026, 11, 2), None, None, False),  # two names match: not guessed
    ]
    reasons = sorted((r.notice_id or "", sorted(r._rejection_reasons)) for r in quarantine.collect())
    assert reasons == [
        ("", ["notice_id_present", "well_formed_record"]),
        ("R1", ["latest_version_of_notice"]),
        ("R6", ["valid_published_date"]),
    ]
