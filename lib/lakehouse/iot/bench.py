"""End-to-end benchmark of the IoT feed: publish -> queryable in bronze.

A broker, the bridge and the continuous bronze ingestion run in this process (the
broker in a child process); the simulator publishes ``messages`` readings at ``rate``
per second (0: as fast as it can). A reading is *queryable* when the ingestion run
that committed it has finished; its latency is that moment minus its publish time.
"""

from __future__ import annotations

import datetime as dt
import statistics
import threading
import time
from dataclasses import dataclass

from lakehouse.config import Settings
from lakehouse.context import RunContext
from lakehouse.engine import get_spark
from lakehouse.iot.bridge import LandingBridge
from lakehouse.iot.broker import BrokerProcess, resolve_kind
from lakehouse.iot.simulator import Publisher, default_machines, simulated_readings
from lakehouse.iot.stream import ingest_continuously
from lakehouse.lake import Lake, delta_exists, read_delta


@dataclass(frozen=True)
class BenchResult:
    messages: int
    broker: str
    publish_seconds: float  # first to last publish
    landed_seconds: float  # first publish to last reading landed as a file
    queryable_seconds: float  # first publish to last reading queryable in bronze
    latency_p50: float
    latency_p95: float
    latency_max: float
    ingestion_runs: int

    @property
    def landing_throughput(self) -> float:
        """Readings per second through broker and bridge into landing files."""
        return self.messages / self.landed_seconds

    @property
    def end_to_end_throughput(self) -> float:
        return self.messages / self.queryable_seconds


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_benchmark(
    settings: Settings,
    *,
    messages: int = 5000,
    machines: int = 20,
    rate: float = 0.0,
    trigger_seconds: float = 1.0,
    batch_max_seconds: float = 0.5,
    batch_max_messages: int = 1000,
) -> BenchResult:
    """Run the feed on ``settings.lake_root`` (use an empty lake) and measure it."""
    lake = Lake(settings.lake_root)
    target = f"{lake.root}/bronze/source=iot/table=readings"
    minutes = -(-messages // machines)
    readings = list(
        simulated_readings(default_machines(machines), dt.datetime(2026, 1, 1, tzinfo=dt.UTC), minutes)
    )
    readings = readings[:messages]
    published_at: dict[tuple[str, str], float] = {}
    queryable_at: dict[tuple[str, str], float] = {}
    spark = get_spark(settings, app_name="iot_bench")
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    context = RunContext(settings, spark, lake, settings.run_date, f"iot-bench-{started:%H%M%S}", started)

    def record(_run: object) -> None:
        done = time.monotonic()
        if not delta_exists(target):
            return
        for row in read_delta(spark, target).select("machine_id", "ts").collect():
            key = (row.machine_id, row.ts.strftime("%Y-%m-%dT%H:%M:%SZ"))
            queryable_at.setdefault(key, done)

    stop = threading.Event()
    iot = settings.ingestion.iot
    with BrokerProcess(kind=iot.broker if iot.broker != "external" else "auto") as broker:
        bridge = LandingBridge(
            lake.landing("iot", "readings"),
            host=broker.host,
            port=broker.port,
            max_messages=batch_max_messages,
            max_seconds=batch_max_seconds,
        ).start()
        runs: list[int] = []
        ingestion = threading.Thread(
            target=lambda: runs.append(
                ingest_continuously(context, trigger_seconds=trigger_seconds, stop=stop, on_run=record)
            ),
            daemon=True,
        )
        ingestion.start()
        publisher = Publisher(broker.host, broker.port).connect()
        first = time.monotonic()
        for index, (machine, reading) in enumerate(readings):
            if rate > 0:
                time.sleep(max(0.0, first + index / rate - time.monotonic()))
            published_at[(reading["machine_id"], reading["ts"])] = time.monotonic()
            publisher.publish(machine, reading)
        last_publish = time.monotonic()
        deadline = last_publish + 120
        while bridge.stats.landed < len(readings) and time.monotonic() < deadline:
            time.sleep(0.01)
        landed = time.monotonic()
        while len(queryable_at) < len(readings) and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        ingestion.join(60)
        publisher.close()
        bridge.stop()
        broker_kind = resolve_kind(broker.kind)
    if len(queryable_at) < len(readings):
        raise TimeoutError(f"only {len(queryable_at)} of {len(readings)} readings reached bronze in time")
    latencies = [queryable_at[key] - published_at[key] for key in published_at]
    return BenchResult(
        messages=len(readings),
        broker=broker_kind,
        publish_seconds=last_publish - first,
        landed_seconds=landed - first,
        queryable_seconds=max(queryable_at.values()) - first,
        latency_p50=statistics.median(latencies),
        latency_p95=percentile(latencies, 0.95),
        latency_max=max(latencies),
        ingestion_runs=runs[0] if runs else 0,
    )
