"""The recall feed end to end: API (a real local HTTP server) -> landing file -> bronze."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from lakehouse import pipelines as dp
from lakehouse.bronze.settings import RegulatorySettings
from lakehouse.lake import read_delta
from lakehouse.sources.regulatory_api import RecallApiError, load_watermark
from lakehouse.sources.regulatory_feed import WATERMARK_FILE, fetch_recalls

from . import test_regulatory_api as canned_api
from .test_regulatory_api import FakeApi, Reply, page

api = canned_api.api  # the local HTTP server fixture, with replies scripted per page

RUN_DATE = dt.date(2026, 11, 26)
RUN_AT = dt.datetime(2026, 11, 26, 6, 0)
NOT_FOUND = Reply(404, {"error": {"code": "NOT_FOUND"}})


def record(number: str, report_date: str, classification: str, lot: str | None) -> dict:
    return {
        "recall_number": number,
        "report_date": report_date,
        "classification": classification,
        "code_info": lot,
        "reason_for_recall": f"reason {number}",
        "recalling_firm": "Acme Pharma",
        "status": "Ongoing",
    }


RECORDS = [
    record("D-0001-2027", "20261124", "Class I", "Lot AB123"),
    record("D-0002-2027", "20261125", "Class II", None),
    record("D-0003-2027", "20261125", "Class III", "Lot CD456"),
]


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _bronze(spark, lake):
    graph = dp.load_graph("pharma", ["lakehouse.bronze.tables"])
    runner = dp.PipelineRunner(spark, graph, lake, parameters={})

    def run(run_id: str) -> dp.FlowEvent:
        result = runner.run(
            refresh=["bronze_recalls"], include_upstreams=False, run_id=run_id, ingested_at=RUN_AT
        )
        return next(e for e in result.events if e.flow == "bronze_recalls_api")

    return runner, run


def test_retries_then_lands_exact_rows_once(spark, lake, api: FakeApi):
    settings = RegulatorySettings(base_url=api.base_url, page_size=10, lookback_days=5)
    api.script = {
        0: [
            Reply(500, {"error": "boom"}),
            Reply(429, {}, headers={"Retry-After": "3"}),
            page(RECORDS, 0, 3, 10),
        ]
    }
    sleeps = Sleeps()

    landed = fetch_recalls(settings, lake, RUN_DATE, sleep=sleeps)
    # 500 -> backoff 0.5 s (0.5 * 2**0); 429 -> the server's Retry-After, 3 s; then the page.
    assert sleeps == [0.5, 3.0] and api.count(0) == 3
    # window: run date - 5 days lookback .. run date
    assert (
        landed
        == Path(lake.landing("regulatory", "recalls_api"))
        / "2026-11-26"
        / "recalls_api_20261121_20261126.jsonl"
    )
    assert [json.loads(line)["recall_number"] for line in landed.read_text().splitlines()] == [
        "D-0001-2027", "D-0002-2027", "D-0003-2027",
    ]  # fmt: skip
    assert load_watermark(lake.system(WATERMARK_FILE)) == dt.date(2026, 11, 25)  # greatest report_date

    runner, run = _bronze(spark, lake)
    event = run("r1")
    assert (event.status, event.rows_read, event.rows_written) == ("COMPLETED", 3, 3)
    columns = [
        "notice_id",
        "published_date",
        "cip13",
        "lot_number",
        "severity",
        "reason",
        "source",
        "retrieved_at",
        "day",
    ]
    rows = sorted(
        tuple(r) for r in read_delta(spark, runner.path("bronze_recalls")).select(columns).collect()
    )
    source = "openFDA drug enforcement API"
    assert rows == [
        ("D-0001-2027", "2026-11-24", None, "Lot AB123", "I", "reason D-0001-2027", source, RUN_AT, "26"),
        ("D-0002-2027", "2026-11-25", None, None, "II", "reason D-0002-2027", source, RUN_AT, "26"),
        ("D-0003-2027", "2026-11-25", None, "Lot CD456", "III", "reason D-0003-2027", source, RUN_AT, "26"),
    ]
    rescued = read_delta(spark, runner.path("bronze_recalls")).where("notice_id = 'D-0001-2027'").first()
    assert json.loads(rescued._rescued_data) == {"recalling_firm": "Acme Pharma", "status": "Ongoing"}

    # Re-run: the next window (2026-11-26 .. 2026-11-26) has no notice (404): an empty file, no row.
    api.script = {0: [NOT_FOUND]}
    again = fetch_recalls(settings, lake, RUN_DATE, sleep=sleeps)
    assert (
        again is not None and again.name == "recalls_api_20261126_20261126.jsonl" and again.read_text() == ""
    )
    assert run("r2").rows_written == 0
    assert fetch_recalls(settings, lake, RUN_DATE, sleep=sleeps) == again  # same empty window, same file
    assert run("r3").rows_written == 0
    assert read_delta(spark, runner.path("bronze_recalls")).count() == 3


def test_a_failed_fetch_lands_nothing_and_keeps_the_watermark(lake, api: FakeApi):
    settings = RegulatorySettings(base_url=api.base_url, max_retries=1, lookback_days=2)
    api.script = {0: [Reply(503, {})]}
    sleeps = Sleeps()
    with pytest.raises(RecallApiError, match=r"after 2 attempts \(HTTP 503\)"):
        fetch_recalls(settings, lake, RUN_DATE, sleep=sleeps)
    assert not Path(lake.landing("regulatory", "recalls_api")).exists() or not any(
        Path(lake.landing("regulatory", "recalls_api")).rglob("*.jsonl")
    )
    assert load_watermark(lake.system(WATERMARK_FILE)) is None


def test_offline_default_fetches_nothing(lake, api: FakeApi):
    assert RegulatorySettings().base_url is None
    assert fetch_recalls(RegulatorySettings(), lake, RUN_DATE) is None
    assert api.count() == 0


def test_fetching_into_a_remote_lake_is_refused_with_the_fix(api: FakeApi):
    from lakehouse.lake import Lake

    with pytest.raises(ValueError, match=r"s3://bucket/lake is remote.*lakehouse.landing"):
        fetch_recalls(RegulatorySettings(base_url=api.base_url), Lake("s3://bucket/lake"), RUN_DATE)
    assert api.count() == 0
