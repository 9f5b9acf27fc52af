"""Continuous bronze ingestion (a loop over the incremental run) and the iot commands."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from lakehouse.config import load_settings
from lakehouse.context import RunContext
from lakehouse.iot.bridge import LandingBridge
from lakehouse.iot.broker import BrokerProcess
from lakehouse.iot.cli import iot_cli
from lakehouse.iot.stream import ingest_continuously
from lakehouse.lake import read_delta

pytestmark = pytest.mark.slow


def _land(lake, day: str, name: str, readings: list[dict]) -> None:
    folder = Path(lake.landing("iot", "readings")) / day
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in readings))


def _reading(machine: str, ts: str) -> dict:
    return {
        "machine_id": machine,
        "ts": ts,
        "kwh": 0.5,
        "kw": 30.0,
        "temperature_c": 20.0,
        "vibration_mm_s": 1.0,
    }


def test_each_trigger_ingests_only_new_files(spark, lake, tmp_path: Path):
    settings = load_settings(lake_root=lake.root, var_dir=str(tmp_path / "var"))
    context = RunContext(settings, spark, lake, dt.date(2026, 11, 26), "stream", dt.datetime(2026, 11, 26, 8))
    _land(
        lake,
        "2026-11-26",
        "a.jsonl",
        [_reading("M001", "2026-11-26T08:00:00Z"), _reading("M002", "2026-11-26T08:00:00Z")],
    )
    written: list[int] = []
    stop = threading.Event()

    def on_run(run) -> None:
        event = run.event("bronze_iot_readings")
        written.append(event.rows_written or 0)
        if len(written) == 1:  # a file lands between two triggers
            _land(lake, "2026-11-26", "b.jsonl", [_reading("M001", "2026-11-26T08:01:00Z")])

    runs = ingest_continuously(context, trigger_seconds=0.1, stop=stop, max_runs=3, on_run=on_run)
    assert runs == 3 and written == [2, 1, 0]  # 2 readings, then the new file's 1, then nothing
    table = read_delta(spark, f"{lake.root}/bronze/source=iot/table=readings")
    assert table.count() == 3
    assert {r._batch_id for r in table.collect()} == {0, 1}  # one ingestion batch per run with files


def test_simulate_command_publishes_to_the_configured_broker(tmp_path: Path, monkeypatch):
    with BrokerProcess(kind="amqtt") as broker:
        monkeypatch.setenv("LAKEHOUSE_INGESTION__IOT__PORT", str(broker.port))
        bridge = LandingBridge(
            tmp_path / "landing", host=broker.host, port=broker.port, max_seconds=0.2
        ).start()
        try:
            result = CliRunner().invoke(
                iot_cli, ["simulate", "--machines", "2", "--minutes", "3", "--start", "2026-11-26T08:00:00"]
            )
            assert result.exit_code == 0, result.output
            assert "published 6 readings" in result.output  # 2 machines x 3 minutes
            deadline = time.monotonic() + 10
            while bridge.stats.landed < 6 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            bridge.stop()
    lines = [
        json.loads(x) for f in (tmp_path / "landing").rglob("*.jsonl") for x in f.read_text().splitlines()
    ]
    assert sorted((r["machine_id"], r["ts"]) for r in lines) == [
        (m, f"2026-11-26T08:0{i}:00Z") for m in ("M001", "M002") for i in range(3)
    ]


def test_simulate_command_names_the_broker_it_cannot_reach(monkeypatch):
    from lakehouse.iot.broker import free_port

    port = free_port()
    monkeypatch.setenv("LAKEHOUSE_INGESTION__IOT__PORT", str(port))
    result = CliRunner().invoke(iot_cli, ["simulate", "--minutes", "1"])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConnectionError)
    assert f"127.0.0.1:{port}" in str(result.exception) and "lakehouse iot broker" in str(result.exception)
