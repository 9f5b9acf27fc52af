"""Load test of the internal API: N concurrent clients on a typical KPI query.

By default it starts `lakehouse api serve` on the configured lake (run `make run` first)
in a separate process, with a throw-away token whose hash is passed through the
environment (nothing is written to conf/local/), then runs the clients for a bounded
time or number of requests and prints p50/p95 latency and requests per second.

    .venv/bin/python bench/api_load.py                      # 20 clients, 10 s
    .venv/bin/python bench/api_load.py --clients 50 --duration 30
    .venv/bin/python bench/api_load.py --url http://host:8000 --token "$TOKEN"   # a running server

The query rotates over the sites and weekly date windows of kpi_marge_journaliere, as a
dashboard would ask: "this site, these seven days".
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import click
import httpx

from lakehouse.api.tokens import hash_token, new_token
from lakehouse.config import load_settings

KPI = "kpi_marge_journaliere"


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    errors: dict[int, int] = field(default_factory=dict)


def typical_queries(run_date: dt.date, *, sites: int = 5, weeks: int = 4) -> list[dict[str, str]]:
    queries = []
    for week in range(weeks):
        end = run_date - dt.timedelta(days=7 * week)
        for site in range(1, sites + 1):
            queries.append(
                {"site": f"S{site:02d}", "date_from": str(end - dt.timedelta(days=6)), "date_to": str(end), "limit": "100"}
            )
    return queries


async def client(url: str, token: str, queries: list[dict[str, str]], offset: int, stop_at: float, budget: list[int], results: Results) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
        index = offset
        while time.monotonic() < stop_at and budget[0] > 0:
            budget[0] -= 1
            started = time.perf_counter()
            response = await http.get(f"/v1/kpis/{KPI}", params=queries[index % len(queries)])
            results.latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                results.errors[response.status_code] = results.errors.get(response.status_code, 0) + 1
            index += 1


async def run_load(url: str, token: str, queries: list[dict[str, str]], *, clients: int, duration: float, max_requests: int) -> tuple[Results, float]:
    results = Results()
    budget = [max_requests]
    started = time.monotonic()
    stop_at = started + duration
    await asyncio.gather(*(client(url, token, queries, i, stop_at, budget, results) for i in range(clients)))
    return results, time.monotonic() - started


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def local_server(lake_root: str, role: str) -> Iterator[tuple[str, str]]:
    """`lakehouse api serve` in a child process with a one-off token of ``role``."""
    token, port = new_token(), free_port()
    env = dict(os.environ)
    env["LAKEHOUSE_API__TOKENS"] = json.dumps([{"name": "api-load-test", "role": role, "sha256": hash_token(token)}])
    command = [sys.executable, "-m", "lakehouse.cli", "api", "serve", "--port", str(port), "--lake-root", lake_root, "--no-access-log"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise click.ClickException(f"the API server did not start: {process.stderr.read() if process.stderr else ''}")
            time.sleep(0.1)
        yield url, token
    finally:
        process.terminate()
        process.wait(timeout=30)


def report(results: Results, elapsed: float, clients: int) -> None:
    latencies = sorted(results.latencies)
    if not latencies:
        raise click.ClickException("no request completed")
    p50 = statistics.median(latencies) * 1000
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] * 1000
    click.echo(f"clients            {clients}")
    click.echo(f"requests           {len(latencies)} in {elapsed:.1f} s")
    click.echo(f"throughput         {len(latencies) / elapsed:.0f} requests/s")
    click.echo(f"latency p50        {p50:.1f} ms")
    click.echo(f"latency p95        {p95:.1f} ms")
    click.echo(f"latency max        {latencies[-1] * 1000:.1f} ms")
    click.echo(f"errors             {results.errors or 'none'}")


@click.command()
@click.option("--clients", default=20, show_default=True, help="Concurrent clients.")
@click.option("--duration", default=10.0, show_default=True, help="Seconds of load.")
@click.option("--max-requests", default=20_000, show_default=True, help="Stop after this many requests.")
@click.option("--url", default=None, help="A running API; default: start one on the configured lake.")
@click.option("--token", envvar="LAKEHOUSE_API_TOKEN", default=None, help="Token for --url (or LAKEHOUSE_API_TOKEN).")
@click.option("--role", default="pharma_analyst", show_default=True, help="Role of the one-off token of the local server.")
@click.option("--lake-root", default=None, help="Default: lake_root of the configuration.")
def main(clients: int, duration: float, max_requests: int, url: str | None, token: str | None, role: str, lake_root: str | None) -> None:
    """Run the load test and print p50/p95 latency and requests per second."""
    settings = load_settings(lake_root=lake_root)
    queries = typical_queries(settings.run_date)
    if url:
        if not token:
            raise click.UsageError("--url needs --token (or LAKEHOUSE_API_TOKEN)")
        results, elapsed = asyncio.run(run_load(url, token, queries, clients=clients, duration=duration, max_requests=max_requests))
    else:
        with local_server(settings.lake_root, role) as (local_url, local_token):
            results, elapsed = asyncio.run(
                run_load(local_url, local_token, queries, clients=clients, duration=duration, max_requests=max_requests)
            )
    report(results, elapsed, clients)
    if results.errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
