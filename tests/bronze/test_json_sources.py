"""The bronze JSON datasets (deliveries, production batches, IoT readings, recalls) on
hand-made drops: typed columns, malformed lines, rescued values, partitions, exactly once."""

import datetime as dt
import json
from pathlib import Path

import pytest

from lakehouse import pipelines as dp
from lakehouse.lake import read_delta

RUN_AT = dt.datetime(2026, 11, 3, 6, 0)
DELIVERY = {
    "delivery_id": "DL1",
    "order_id": "O1",
    "site_id": "S05",
    "customer_id": "C00114",
    "promised_date": "2026-10-30",
    "actual_date": "2026-10-31",
    "quantity_ordered": 670,
    "quantity_delivered": 600,
    "carrier": "Geodis",
}


def _drop(lake, source: str, entity: str, day: str, name: str, text: str) -> None:
    folder = Path(lake.landing(source, entity)) / day
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


def _lines(*records) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records)


@pytest.fixture
def bronze(spark, lake):
    graph = dp.load_graph("pharma", ["lakehouse.bronze.tables"])
    runner = dp.PipelineRunner(spark, graph, lake, parameters={})

    def run(dataset: str, run_id: str):
        """The event of the dataset's own flow (bronze_recalls has a second flow, from the API)."""
        result = runner.run(refresh=[dataset], include_upstreams=False, run_id=run_id, ingested_at=RUN_AT)
        return next(e for e in result.events if e.flow == dataset)

    def rows(dataset: str) -> list:
        return read_delta(spark, runner.path(dataset)).collect()

    return run, rows


def test_deliveries_typed_with_corrupt_and_rescued_rows_once(lake, bronze):
    run, rows = bronze
    truncated = '{"delivery_id":"DL3","order_id":"O3","site_id":"S0'
    wrong_type = {
        **DELIVERY,
        "delivery_id": "DL2",
        "quantity_ordered": "lots",
        "actual_date": None,
        "promo": "BF",
    }
    _drop(
        lake,
        "erp",
        "deliveries",
        "2026-11-01",
        "deliveries_20261101.jsonl",
        _lines(DELIVERY, truncated, wrong_type),
    )

    first = run("bronze_deliveries", "r1")
    assert (first.status, first.rows_read, first.rows_written) == ("COMPLETED", 3, 3)
    assert {e.name: e.failed for e in first.expectations} == {"well_formed_line": 1}

    table = {r.delivery_id or "corrupt": r for r in rows("bronze_deliveries")}
    assert set(table) == {"DL1", "DL2", "corrupt"}
    ok = table["DL1"]
    assert (ok.promised_date, ok.actual_date) == (dt.date(2026, 10, 30), dt.date(2026, 10, 31))
    assert (ok.quantity_ordered, ok.quantity_delivered, ok.carrier) == (670, 600, "Geodis")
    assert ok._rescued_data is None and ok._corrupt_record is None and ok._line_number == 1
    assert (ok.year, ok.month, ok.day) == ("2026", "11", "01")
    assert ok._source_file.endswith("landing/source=erp/deliveries/2026-11-01/deliveries_20261101.jsonl")

    corrupt = table["corrupt"]
    assert corrupt._corrupt_record == truncated and corrupt._line_number == 2
    assert corrupt.order_id is None and (corrupt.year, corrupt.month, corrupt.day) == ("2026", "11", "01")

    rescued = table["DL2"]
    assert (
        rescued.quantity_ordered is None and rescued.actual_date is None and rescued.quantity_delivered == 600
    )
    assert json.loads(rescued._rescued_data) == {"promo": "BF", "quantity_ordered": "lots"}

    again = run("bronze_deliveries", "r2")
    assert (again.status, again.rows_written) == ("SKIPPED", 0)
    assert len(rows("bronze_deliveries")) == 3


def test_production_batches_typed_timestamps(lake, bronze):
    run, rows = bronze
    batch = {
        "batch_id": "B1",
        "machine_id": "M001",
        "site_id": "S01",
        "product_id": "P0186",
        "start_ts": "2026-10-28T05:36:00Z",
        "end_ts": "2026-10-28T09:47:00Z",
        "units_produced": 32853,
        "units_rejected": 171,
    }
    bad_time = {**batch, "batch_id": "B2", "end_ts": "soon"}
    _drop(
        lake,
        "erp",
        "production_batches",
        "2026-10-28",
        "production_20261028.jsonl",
        _lines(batch, bad_time, "[1]"),
    )
    assert run("bronze_production_batches", "r1").rows_written == 3
    table = {r.batch_id or "corrupt": r for r in rows("bronze_production_batches")}
    assert table["B1"].start_ts == dt.datetime(2026, 10, 28, 5, 36) and table["B1"].units_produced == 32853
    assert table["B2"].end_ts is None and json.loads(table["B2"]._rescued_data) == {"end_ts": "soon"}
    assert table["corrupt"]._corrupt_record == "[1]"  # valid JSON, but not an object


def test_iot_readings_typed_with_machine_id_expectation(lake, bronze):
    run, rows = bronze
    reading = {
        "machine_id": "M001",
        "ts": "2026-10-28T00:01:00Z",
        "kwh": 0.03545,
        "kw": 2.127,
        "temperature_c": 22.69,
        "vibration_mm_s": 0.782,
    }
    odd = {**reading, "machine_id": "press-7", "kw": "n/a"}
    _drop(
        lake,
        "iot",
        "readings",
        "2026-10-28",
        "readings_S01_20261028.jsonl",
        _lines(reading, odd, '{"machine_id":'),
    )
    _drop(
        lake, "iot", "readings", "2026-10-29", "readings_S01_20261029.jsonl", _lines({**reading, "ts": "x"})
    )

    event = run("bronze_iot_readings", "r1")
    assert (event.rows_read, event.rows_written) == (4, 4)
    assert {e.name: e.failed for e in event.expectations} == {
        "known_machine_id_format": 1,
        "reading_time_present": 1,
    }
    table = sorted(rows("bronze_iot_readings"), key=lambda r: (r.day, r._line_number))
    first, second, corrupt, no_time = table
    assert first.ts == dt.datetime(2026, 10, 28, 0, 1) and first.kwh == pytest.approx(0.03545)
    assert (first.kw, first.temperature_c, first.vibration_mm_s) == (2.127, 22.69, 0.782)
    assert second.machine_id == "press-7" and second.kw is None
    assert json.loads(second._rescued_data) == {"kw": "n/a"}
    assert corrupt._corrupt_record == '{"machine_id":' and corrupt.machine_id is None
    assert no_time.ts is None and json.loads(no_time._rescued_data) == {"ts": "x"}
    assert [(r.year, r.month, r.day) for r in table] == [("2026", "10", "28")] * 3 + [("2026", "10", "29")]

    assert run("bronze_iot_readings", "r2").status == "SKIPPED"


def _recalls(day: str, notices: list[dict]) -> str:
    document = {"source": "ANSM", "retrieved_at": f"{day}T06:08:13Z", "notices": notices}
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def _notice(notice_id: str) -> dict:
    return {
        "notice_id": notice_id,
        "published_date": "2026-10-28",
        "cip13": "3400965665318",
        "lot_number": "HW26908",
        "severity": "II",
        "reason": "Présence d'impuretés",
    }


def test_recalls_one_row_per_notice_with_document_fields(lake, bronze):
    run, rows = bronze
    _drop(lake, "regulatory", "recalls", "2026-10-28", "recalls_20261028.json", _recalls("2026-10-28", [
        _notice("RAP-1"), _notice("RAP-2"),
    ]))  # fmt: skip
    _drop(lake, "regulatory", "recalls", "2026-10-29", "recalls_20261029.json", _recalls("2026-10-29", []))
    _drop(lake, "regulatory", "recalls", "2026-10-30", "recalls_20261030.json", '{"source": "ANSM", "noti')

    event = run("bronze_recalls", "r1")
    assert event.status == "COMPLETED" and event.rows_written == 3
    table = {r.notice_id or "corrupt": r for r in rows("bronze_recalls")}
    assert set(table) == {"RAP-1", "RAP-2", "corrupt"}  # the empty document gives no row
    notice = table["RAP-2"]
    assert (notice.source, notice.retrieved_at) == ("ANSM", dt.datetime(2026, 10, 28, 6, 8, 13))
    assert (notice.cip13, notice.lot_number, notice.reason) == (
        "3400965665318",
        "HW26908",
        "Présence d'impuretés",
    )
    assert (notice.year, notice.month, notice.day) == ("2026", "10", "28")
    assert notice._corrupt_record is None and notice._line_number == 1
    assert "notices" not in read_columns(rows("bronze_recalls"))
    corrupt = table["corrupt"]
    assert corrupt._corrupt_record == '{"source": "ANSM", "noti' and corrupt.day == "30"

    assert run("bronze_recalls", "r2").status == "SKIPPED"
    _drop(
        lake,
        "regulatory",
        "recalls",
        "2026-10-31",
        "recalls_20261031.json",
        _recalls("2026-10-31", [_notice("RAP-3")]),
    )
    assert run("bronze_recalls", "r3").rows_written == 1
    assert len(rows("bronze_recalls")) == 4


def read_columns(table_rows: list) -> set[str]:
    return set(table_rows[0].asDict())
