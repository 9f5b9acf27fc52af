"""Fixtures of the quality tests: a clean and a dirty tmp lake, written once per module."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from lakehouse.lake import Lake
from lakehouse.quality.settings import QualitySettings
from tests.quality.dataset import clean_rows, dirty_rows, write_tables


@pytest.fixture(scope="module")
def clean_lake(spark, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    lake = Lake(str(tmp_path_factory.mktemp("clean") / "lake"))
    write_tables(spark, lake, clean_rows())
    return lake


@pytest.fixture(scope="module")
def dirty_lake(spark, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    lake = Lake(str(tmp_path_factory.mktemp("dirty") / "lake"))
    write_tables(spark, lake, dirty_rows())
    return lake


@pytest.fixture
def settings() -> QualitySettings:
    """Settings with a results table of this test only (the lakes are shared)."""
    return QualitySettings(results_table=f"quality_results_{uuid.uuid4().hex[:8]}")


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"
