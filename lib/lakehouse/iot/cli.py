"""``lakehouse iot``: the MQTT feed of the machines' meters, piece by piece."""

from __future__ import annotations

import datetime as dt
import threading
import time

import click
from rich.console import Console

from lakehouse.config import load_settings

EPILOG = """\b
A local feed, in four terminals:
  lakehouse iot broker                          # embedded MQTT broker (mosquitto if on PATH)
  lakehouse iot bridge                          # MQTT -> landing/source=iot/readings/<date>/*.jsonl
  lakehouse iot stream --trigger-seconds 10     # landing -> bronze/source=iot/table=readings, continuously
  lakehouse iot simulate --machines 20 --minutes 60 --rate 200
Host, port, topic and batch sizes: `ingestion.iot` of conf/base/lakehouse.yaml.
"""
console = Console()


@click.group(name="iot", epilog=EPILOG)
def iot_cli() -> None:
    """IoT meter readings over MQTT: broker, simulator, landing bridge, bronze stream."""


@iot_cli.command()
@click.option("--port", type=int, default=None, help="Default: ingestion.iot.port.")
def broker(port: int | None) -> None:
    """Run the MQTT broker on loopback until Ctrl-C."""
    from lakehouse.iot.broker import BrokerProcess, resolve_kind

    iot = load_settings().ingestion.iot
    kind = "auto" if iot.broker == "external" else iot.broker
    process = BrokerProcess(kind=kind, host=iot.host, port=port if port is not None else iot.port).start()
    console.print(f"{resolve_kind(kind)} broker listening on {process.host}:{process.port} (Ctrl-C stops it)")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        process.close()


@iot_cli.command()
@click.option("--machines", type=int, default=20, show_default=True, help="Machines M001.. publishing.")
@click.option("--minutes", type=int, default=60, show_default=True, help="Minutes of readings per machine.")
@click.option("--start", default=None, help="UTC start, ISO 8601 (default: the current minute).")
@click.option(
    "--rate", type=float, default=0.0, show_default=True, help="Readings per second; 0 = as fast as possible."
)
@click.option("--seed", type=int, default=42, show_default=True)
def simulate(machines: int, minutes: int, start: str | None, rate: float, seed: int) -> None:
    """Publish simulated minute readings to the broker (QoS 1)."""
    from lakehouse.iot.simulator import Publisher, default_machines, simulated_readings

    iot = load_settings().ingestion.iot
    begin = (
        dt.datetime.fromisoformat(start)
        if start
        else dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    )
    if begin.tzinfo is None:
        begin = begin.replace(tzinfo=dt.UTC)
    publisher = Publisher(iot.host, iot.port, qos=iot.qos).connect()
    first = time.monotonic()
    try:
        for index, (machine, reading) in enumerate(
            simulated_readings(default_machines(machines), begin, minutes, seed=seed)
        ):
            if rate > 0:
                time.sleep(max(0.0, first + index / rate - time.monotonic()))
            publisher.publish(machine, reading)
    finally:
        publisher.close()
    elapsed = time.monotonic() - first
    console.print(f"published {publisher.published:,} readings in {elapsed:.1f} s to {iot.host}:{iot.port}")


@iot_cli.command()
def bridge() -> None:
    """Land the broker's readings as micro-batch files until Ctrl-C."""
    from lakehouse.iot.bridge import LandingBridge
    from lakehouse.lake import Lake

    settings = load_settings()
    iot = settings.ingestion.iot
    folder = Lake(settings.lake_root).landing("iot", "readings")
    landing = LandingBridge(
        folder,
        host=iot.host,
        port=iot.port,
        topic=iot.topic,
        qos=iot.qos,
        max_messages=iot.batch_max_messages,
        max_seconds=iot.batch_max_seconds,
    ).start()
    console.print(f"bridge: {iot.topic} on {iot.host}:{iot.port} -> {folder} (Ctrl-C stops it)")
    try:
        while True:
            time.sleep(5)
            stats = landing.stats
            console.print(
                f"received {stats.received:,}, duplicates {stats.duplicates:,}, landed {stats.landed:,}"
            )
    except KeyboardInterrupt:
        pass
    finally:
        landing.stop()


@iot_cli.command()
@click.option("--once", is_flag=True, help="One incremental run, then exit.")
@click.option("--trigger-seconds", type=float, default=None, help="Default: ingestion.iot.trigger_seconds.")
@click.option("--lake-root", default=None, help="Default: lake_root of the configuration.")
def stream(once: bool, trigger_seconds: float | None, lake_root: str | None) -> None:
    """Ingest new landing files into bronze, once or every trigger interval."""
    from lakehouse.context import start_run
    from lakehouse.iot.stream import ingest_continuously

    context = start_run(lake_root=lake_root or "", app_name="iot_stream")
    interval = trigger_seconds or context.settings.ingestion.iot.trigger_seconds

    def report(run: object) -> None:
        event = run.event("bronze_iot_readings")  # type: ignore[attr-defined]
        console.print(f"{dt.datetime.now():%H:%M:%S} {event.status}: {event.rows_written or 0:,} readings")

    stop = threading.Event()
    try:
        ingest_continuously(
            context, trigger_seconds=interval, stop=stop, max_runs=1 if once else None, on_run=report
        )
    except KeyboardInterrupt:
        stop.set()
