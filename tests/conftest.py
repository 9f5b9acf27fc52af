"""Shared fixtures: one embedded Spark engine per test process, a fresh lake per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RUST_LOG", "warn")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("LAKEHOUSE_HOME", str(PROJECT_ROOT))


@pytest.fixture(scope="session")
def spark():
    from lakehouse.config import load_settings
    from lakehouse.engine import get_spark, stop_embedded_engine

    session = get_spark(load_settings(spark={"engine": "sail"}), app_name="tests")
    yield session
    stop_embedded_engine()


@pytest.fixture
def lake(tmp_path: Path):
    from lakehouse.lake import Lake

    return Lake(str(tmp_path / "lake"))
