"""The IoT feed end to end on a real MQTT broker: simulator -> broker (restarted
mid-stream) -> bridge -> landing files -> bronze, with duplicates."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from lakehouse import pipelines as dp
from lakehouse.iot.bridge import LandingBridge
from lakehouse.iot.broker import BrokerProcess
from lakehouse.iot.simulator import Machine, Publisher, simulated_readings
from lakehouse.lake import read_delta

pytestmark = pytest.mark.slow  # starts a broker process

START = dt.datetime(2026, 11, 26, 23, 50, tzinfo=dt.UTC)  # crosses midnight: two date folders
MACHINES = [Machine("M001", "S01"), Machine("M002", "S01"), Machine("M003", "S02")]


def _wait(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)


def _bronze(spark, lake):
    graph = dp.load_graph("pharma", ["lakehouse.bronze.tables"])
    runner = dp.PipelineRunner(spark, graph, lake, parameters={})

    def run(run_id: str) -> dp.FlowEvent:
        return runner.run(refresh=["bronze_iot_readings"], include_upstreams=False, run_id=run_id).event(
            "bronze_iot_readings"
        )

    return runner, run


def test_distinct_readings_reach_bronze_once_across_a_broker_restart(spark, lake):
    readings = list(simulated_readings(MACHINES, START, minutes=20))  # 3 machines x 20 minutes = 60
    first, second = readings[:30], readings[30:]
    landing = Path(lake.landing("iot", "readings"))
    with BrokerProcess(kind="amqtt") as broker:
        bridge = LandingBridge(landing, host=broker.host, port=broker.port, max_messages=16, max_seconds=0.3)
        bridge.start()
        publisher = Publisher(broker.host, broker.port, replay_size=40, replay_delay=0.5).connect()
        try:
            for machine, reading in first + first[:5]:  # 5 duplicates
                publisher.publish(machine, reading)
            _wait(lambda: bridge.stats.landed == 30)

            broker.restart()  # the embedded broker keeps nothing: sessions and in-flight messages are gone
            assert publisher.wait_connected() and bridge.wait_subscribed()
            for machine, reading in second + second[-3:]:  # 3 more duplicates
                publisher.publish(machine, reading)
            # replay after the reconnect: the last 40 readings again, all duplicates
            _wait(lambda: bridge.stats.landed == 60 and publisher.replayed == 40)
        finally:
            publisher.close()
            bridge.stop()

    assert bridge.stats.landed == 60 and bridge.stats.duplicates == bridge.stats.received - 60
    assert not list(landing.rglob(".*"))  # no temp file left behind
    days = sorted(p.name for p in landing.iterdir())
    assert days == ["2026-11-26", "2026-11-27"]  # 23:50..23:59 and 00:00..00:09, by reading time

    runner, run = _bronze(spark, lake)
    event = run("r1")
    assert (event.rows_read, event.rows_written) == (60, 60)
    table = read_delta(spark, runner.path("bronze_iot_readings"))
    keys = sorted((r.machine_id, r.ts) for r in table.select("machine_id", "ts").collect())
    expected = sorted(
        (r["machine_id"], dt.datetime.strptime(r["ts"], "%Y-%m-%dT%H:%M:%SZ")) for _, r in readings
    )
    assert keys == expected  # every reading exactly once
    one = table.where("machine_id = 'M003' AND ts = '2026-11-27 00:09:00'").first()
    source = next(r for _, r in readings if r["machine_id"] == "M003" and r["ts"] == "2026-11-27T00:09:00Z")
    assert (one.kwh, one.kw, one.day, one._corrupt_record) == (source["kwh"], source["kw"], "27", None)
    assert table.where("day = '26'").count() == 30  # 10 minutes x 3 machines before midnight

    assert run("r2").status == "SKIPPED"  # re-run: no new file, nothing added
    assert table.count() == 60


def test_batches_close_by_size_and_by_time_and_bad_payloads_are_kept(tmp_path: Path):
    readings = list(simulated_readings(MACHINES[:1], START, minutes=5))
    landing = tmp_path / "landing"
    with BrokerProcess(kind="amqtt") as broker:
        bridge = LandingBridge(landing, host=broker.host, port=broker.port, max_messages=2, max_seconds=0.4)
        bridge.start()
        publisher = Publisher(broker.host, broker.port, client_id="sim-batches").connect()
        try:
            for machine, reading in readings:  # 5 readings, batches of at most 2: 2 + 2 + 1 (by time)
                publisher.publish(machine, reading)
            publisher.client.publish("plants/S01/machines/M001/readings", b"not json", qos=1)
            late = {**readings[0][1], "ts": "2026-11-20T12:00:00Z"}  # six days late
            publisher.publish(MACHINES[0], late)
            _wait(lambda: bridge.stats.landed == 7, timeout=10)
        finally:
            publisher.close()
            bridge.stop()
    files = sorted(landing.rglob("*.jsonl"))
    sizes = sorted(len(f.read_text().splitlines()) for f in files)
    assert sum(sizes) == 7 and max(sizes) == 2  # never more than max_messages per file
    lines = [line for f in files for line in f.read_text().splitlines()]
    assert "not json" in lines  # kept for bronze's _corrupt_record, not lost
    by_folder: dict[str, list[str]] = {}
    for f in files:
        by_folder.setdefault(f.parent.name, []).extend(
            x for x in f.read_text().splitlines() if x != "not json"
        )
    assert sorted(json.loads(x)["ts"] for x in by_folder["2026-11-26"]) == [r["ts"] for _, r in readings]
    assert by_folder["2026-11-20"] == [json.dumps(late, separators=(",", ":"))]  # late: its own day's folder


def test_bridge_refuses_bad_batch_settings(tmp_path: Path):
    with pytest.raises(ValueError, match="max_messages"):
        LandingBridge(tmp_path, host="127.0.0.1", port=1, max_messages=0)
