"""Fixtures of the generator tests: small runs (scale 0.05, 5 days) in tmp folders."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lakehouse.config import Settings, load_settings
from lakehouse.generate import GenerationReport, generate_all

RUN_DATE = dt.date(2026, 11, 26)  # a Thursday: 5 days cover a weekend
SMALL = {"seed": 7, "scale": 0.05, "days": 5}


def make_settings(root: Path, **generator: Any) -> Settings:
    """Settings whose lake and var folders live under ``root``."""
    return load_settings(
        lake_root=str(root / "lake"),
        var_dir=str(root / "var"),
        run_date=RUN_DATE,
        generator={**SMALL, **generator},
    )


@dataclass(frozen=True)
class Run:
    settings: Settings
    report: GenerationReport

    @property
    def lake(self) -> Path:
        return Path(self.settings.lake_root)

    @property
    def truth(self) -> Path:
        return self.settings.ground_truth_dir


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One small generation without PostgreSQL, shared by read-only tests."""
    settings = make_settings(tmp_path_factory.mktemp("small"))
    return Run(settings, generate_all(settings))
