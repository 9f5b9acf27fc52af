"""Recall API records mapped onto the notice columns of bronze_recalls (pure function)."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality

from lakehouse.bronze.sources import API_RECALL_SOURCE, notices_from_api_records

AT = dt.datetime(2026, 11, 26, 6, 0)
INPUT = (
    "recall_number string, report_date string, classification string, code_info string, "
    "reason_for_recall string, _rescued_data string, _corrupt_record string, _ingested_at timestamp"
)
OUTPUT = (
    "notice_id string, published_date string, cip13 string, lot_number string, severity string, "
    "reason string, source string, retrieved_at timestamp, _rescued_data string, _corrupt_record string, "
    "_ingested_at timestamp"
)


def test_records_become_notices_and_odd_values_stay_visible(spark):
    records = spark.createDataFrame(
        [
            ("D-1", "20261124", "Class I", "Lot A1", "CGMP", None, None, AT),
            (
                "D-2",
                "2026-11-25",
                "Class IV",
                None,
                "label",
                '{"status":"Ongoing"}',
                None,
                AT,
            ),  # odd date, class
            (None, None, None, None, None, None, '{"recall_number": "D-3", "rep', AT),  # a truncated line
        ],
        INPUT,
    )
    expected = spark.createDataFrame(
        [
            ("D-1", "2026-11-24", None, "Lot A1", "I", "CGMP", API_RECALL_SOURCE, AT, None, None, AT),
            # not YYYYMMDD: kept as sent; an unknown class gives no severity
            (
                "D-2",
                "2026-11-25",
                None,
                None,
                None,
                "label",
                API_RECALL_SOURCE,
                AT,
                '{"status":"Ongoing"}',
                None,
                AT,
            ),
            (None, None, None, None, None, None, None, AT, None, '{"recall_number": "D-3", "rep', AT),
        ],
        OUTPUT,
    )
    assert_df_equality(
        notices_from_api_records(records), expected, ignore_row_order=True, ignore_nullable=True
    )
