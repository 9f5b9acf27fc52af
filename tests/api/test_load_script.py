"""bench/api_load.py: its clients against a real server, bounded by a request budget."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import sys
from pathlib import Path

from tests.api.conftest import Api

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "api_load.py"


def load_script():
    spec = importlib.util.spec_from_file_location("api_load", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_typical_queries_rotate_sites_over_weekly_windows() -> None:
    queries = load_script().typical_queries(dt.date(2026, 11, 26), sites=2, weeks=2)
    assert queries == [
        {"site": "S01", "date_from": "2026-11-20", "date_to": "2026-11-26", "limit": "100"},
        {"site": "S02", "date_from": "2026-11-20", "date_to": "2026-11-26", "limit": "100"},
        {"site": "S01", "date_from": "2026-11-13", "date_to": "2026-11-19", "limit": "100"},
        {"site": "S02", "date_from": "2026-11-13", "date_to": "2026-11-19", "limit": "100"},
    ]


def test_clients_stop_at_the_request_budget_without_errors(api: Api) -> None:
    script = load_script()
    queries = [{"site": "S01", "date_from": "2026-11-01", "date_to": "2026-11-07"}]
    results, elapsed = asyncio.run(
        script.run_load(api.url, api.tokens["pharma_analyst"], queries, clients=4, duration=30, max_requests=40)
    )
    assert len(results.latencies) == 40
    assert results.errors == {}
    assert elapsed < 30
