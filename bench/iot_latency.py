"""IoT feed benchmark: end-to-end latency (publish -> queryable in bronze, p50/p95)
and sustained throughput (messages/s), on a throw-away lake.

    .venv/bin/python bench/iot_latency.py --messages 5000 --rate 0 --trigger-seconds 1
"""

from __future__ import annotations

import tempfile

import click
from rich.console import Console
from rich.table import Table

from lakehouse.config import load_settings
from lakehouse.engine import stop_embedded_engine
from lakehouse.iot.bench import run_benchmark


@click.command()
@click.option("--messages", type=int, default=5000, show_default=True, help="Readings to publish.")
@click.option("--machines", type=int, default=20, show_default=True, help="Simulated machines.")
@click.option(
    "--rate", type=float, default=0.0, show_default=True, help="Readings per second; 0 = as fast as possible."
)
@click.option(
    "--trigger-seconds", type=float, default=1.0, show_default=True, help="Bronze ingestion interval."
)
@click.option(
    "--batch-seconds", type=float, default=0.5, show_default=True, help="Bridge micro-batch age limit."
)
@click.option(
    "--batch-messages", type=int, default=1000, show_default=True, help="Bridge micro-batch size limit."
)
def main(
    messages: int,
    machines: int,
    rate: float,
    trigger_seconds: float,
    batch_seconds: float,
    batch_messages: int,
) -> None:
    console = Console()
    with tempfile.TemporaryDirectory(prefix="iot-bench-") as root:
        settings = load_settings(lake_root=f"{root}/lake", var_dir=f"{root}/var")
        with console.status(f"publishing {messages:,} readings and ingesting them..."):
            result = run_benchmark(
                settings,
                messages=messages,
                machines=machines,
                rate=rate,
                trigger_seconds=trigger_seconds,
                batch_max_seconds=batch_seconds,
                batch_max_messages=batch_messages,
            )
        stop_embedded_engine()
    table = Table(title=f"IoT feed: {result.messages:,} readings, {result.broker} broker")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("latency p50 (publish -> queryable in bronze)", f"{result.latency_p50:.2f} s")
    table.add_row("latency p95", f"{result.latency_p95:.2f} s")
    table.add_row("latency max", f"{result.latency_max:.2f} s")
    table.add_row("publish rate", f"{result.messages / max(result.publish_seconds, 1e-9):,.0f} msg/s")
    table.add_row("throughput into landing (broker + bridge)", f"{result.landing_throughput:,.0f} msg/s")
    table.add_row("throughput end to end (queryable in bronze)", f"{result.end_to_end_throughput:,.0f} msg/s")
    table.add_row("bronze ingestion runs", str(result.ingestion_runs))
    console.print(table)


if __name__ == "__main__":
    main()
