"""Bad input through the real bronze datasets: every record ends in bronze (its raw text
in ``_corrupt_record``, or unknown/mistyped values in ``_rescued_data``), counted
exactly, and running the ingestion again adds nothing.

The parser-level cases are in tests/pipelines/test_autoloader.py; here each case goes
through the medallion pipeline's own definitions (schemas, encodings, partitions)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from lakehouse import pipelines as dp
from lakehouse.lake import read_delta

RUN_AT = dt.datetime(2026, 11, 3, 6, 0)
HEADER = "order_id;line_number;order_date;customer_id;product_id;product_label;site_id;quantity;unit_price;discount_pct"


@pytest.fixture
def bronze(spark, lake):
    graph = dp.load_graph("pharma", ["lakehouse.bronze.tables"])
    runner = dp.PipelineRunner(spark, graph, lake, parameters={})

    def run(dataset: str, run_id: str, flow: str | None = None) -> dp.FlowEvent:
        result = runner.run(refresh=[dataset], include_upstreams=False, run_id=run_id, ingested_at=RUN_AT)
        return next(e for e in result.events if e.flow == (flow or dataset))

    def table(dataset: str):
        return read_delta(spark, runner.path(dataset))

    return run, table


def _write(lake, source: str, entity: str, day: str, name: str, data: bytes) -> None:
    folder = Path(lake.landing(source, entity)) / day
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def _counts(frame) -> tuple[int, int, int]:
    """(rows, rows with _corrupt_record, rows with _rescued_data)."""
    rows = frame.collect()
    return (
        len(rows),
        sum(r._corrupt_record is not None for r in rows),
        sum(r._rescued_data is not None for r in rows),
    )


def test_iot_json_lines_truncated_undecodable_new_key_and_mistyped(lake, bronze):
    run, table = bronze
    good = {"machine_id": "M001", "ts": "2026-11-02T08:00:00Z", "kwh": 0.5, "kw": 30.0, "temperature_c": 20.0}
    lines = [
        json.dumps(good).encode(),
        json.dumps({**good, "ts": "2026-11-02T08:01:00Z", "firmware": "v2"}).encode(),  # a new key
        json.dumps({**good, "ts": "2026-11-02T08:02:00Z", "kwh": "n/a"}).encode(),  # a mistyped value
        '{"machine_id": "M00é", "ts": "2026-11-02T08:03:00Z"}'.encode("latin-1"),  # not UTF-8
        b'{"machine_id": "M002", "ts": "2026-11-0',  # truncated (the file was cut)
    ]
    _write(lake, "iot", "readings", "2026-11-02", "readings_S01_20261102.jsonl", b"\n".join(lines))

    event = run("bronze_iot_readings", "r1")
    assert (event.rows_read, event.rows_written, event.rows_dropped) == (5, 5, 0)  # nothing lost
    readings = table("bronze_iot_readings")
    # 5 rows: 2 corrupt (undecodable, truncated), 2 rescued (new key, mistyped value)
    assert _counts(readings) == (5, 2, 2)
    rescued = {
        r.ts.minute: json.loads(r._rescued_data)
        for r in readings.where("_rescued_data IS NOT NULL").collect()
    }
    assert rescued == {1: {"firmware": "v2"}, 2: {"kwh": "n/a"}}
    corrupt = sorted(r._corrupt_record for r in readings.where("_corrupt_record IS NOT NULL").collect())
    assert corrupt[0] == '{"machine_id": "M002", "ts": "2026-11-0'  # the raw text, as it arrived
    assert "M00" in corrupt[1] and corrupt[1].startswith(
        '{"machine_id"'
    )  # undecodable byte replaced, line kept
    assert readings.where("_line_number = 5").first()._corrupt_record is not None  # which line of which file
    assert {r.day for r in readings.collect()} == {"02"}

    assert run("bronze_iot_readings", "r2").status == "SKIPPED"
    assert _counts(table("bronze_iot_readings")) == (5, 2, 2)  # re-run adds nothing


def test_erp_csv_ragged_rows_new_column_and_a_utf8_file_in_a_latin1_feed(lake, bronze):
    run, table = bronze
    rows = [
        HEADER,
        "O1;1;01/11/2026;C1;P1;Doliprane;S01;2;1,50;0",
        "O2;1;01/11/2026;C1;P1",  # ragged: too few fields
        "O3;1;01/11/2026;C1;P1;X;S01;1;2,00;0;extra;fields",  # ragged: too many
    ]
    _write(
        lake,
        "erp",
        "order_lines",
        "2026-11-01",
        "order_lines_20261101.csv",
        "\r\n".join(rows).encode("latin-1"),
    )
    new_column = [HEADER + ";sales_channel;loyalty_card", "O4;1;02/11/2026;C1;P1;X;S01;1;2,00;0;web;GOLD"]
    _write(
        lake,
        "erp",
        "order_lines",
        "2026-11-02",
        "order_lines_20261102.csv",
        "\r\n".join(new_column).encode("latin-1"),
    )
    utf8 = [HEADER, "O5;1;02/11/2026;C1;P1;Paracétamol;S01;1;2,00;0"]  # exported as UTF-8 by mistake
    _write(
        lake,
        "erp",
        "order_lines",
        "2026-11-02",
        "order_lines_20261102_b.csv",
        "\r\n".join(utf8).encode("utf-8"),
    )

    event = run("bronze_order_lines", "r1")
    assert (event.rows_read, event.rows_written) == (5, 5)
    lines = table("bronze_order_lines")
    assert _counts(lines) == (5, 2, 1)  # 2 ragged rows kept raw; 1 unknown column rescued
    by_id = {r.order_id: r for r in lines.where("_corrupt_record IS NULL").collect()}
    assert by_id["O4"].sales_channel == "web" and json.loads(by_id["O4"]._rescued_data) == {
        "loyalty_card": "GOLD"
    }
    # latin-1 decodes any byte: the UTF-8 "é" (C3 A9) arrives as "Ã©", kept as text for silver to flag
    assert by_id["O5"].product_label == "ParacÃ©tamol"
    raw = sorted(r._corrupt_record for r in lines.where("_corrupt_record IS NOT NULL").collect())
    assert raw == ["O2;1;01/11/2026;C1;P1", "O3;1;01/11/2026;C1;P1;X;S01;1;2,00;0;extra;fields"]

    assert run("bronze_order_lines", "r2").status == "SKIPPED"
    assert _counts(table("bronze_order_lines")) == (5, 2, 1)


def test_recall_api_records_with_a_truncated_line_and_new_fields(lake, bronze):
    run, table = bronze
    record = {
        "recall_number": "D-1",
        "report_date": "20261101",
        "classification": "Class II",
        "reason_for_recall": "r",
    }
    data = "\n".join(
        [
            json.dumps(record),
            json.dumps({**record, "recall_number": "D-2", "center_classification_date": "20261102"}),
            '{"recall_number": "D-3", "report_da',
        ]
    )
    _write(
        lake, "regulatory", "recalls_api", "2026-11-02", "recalls_api_20261101_20261102.jsonl", data.encode()
    )

    event = run("bronze_recalls", "r1", flow="bronze_recalls_api")
    assert (event.rows_read, event.rows_written) == (3, 3)
    recalls = table("bronze_recalls")
    assert _counts(recalls) == (3, 1, 1)
    passed_failed = {e.name: (e.passed, e.failed) for e in event.expectations}
    assert passed_failed == {"notice_id_present": (3, 0)}  # the corrupt line passes: it is kept raw
    assert run("bronze_recalls", "r2", flow="bronze_recalls_api").status == "SKIPPED"
    assert _counts(table("bronze_recalls")) == (3, 1, 1)
