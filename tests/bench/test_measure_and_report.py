"""Benchmark plumbing without an engine: memory sampling of children, holding back the
newest drop, scale parsing and the Markdown targets table."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from lakehouse.bench.cli import _scales
from lakehouse.bench.measure import PeakMemory, StageResult, folder_bytes, stage
from lakehouse.bench.report import markdown
from lakehouse.bench.runner import hold_back_day, restore_day

CHILD_MIB = 200


def test_peak_memory_counts_a_child_process():
    allocate = f"import time; block = bytearray({CHILD_MIB} * 2**20); block[::4096] = b'x' * len(block[::4096]); time.sleep(1.5)"
    with PeakMemory(interval_seconds=0.02) as memory:
        baseline = memory.peak
        with stage("child", memory) as measured:
            child = subprocess.Popen([sys.executable, "-c", allocate])
            time.sleep(1.0)
            child.wait(timeout=30)
    # the child's 200 MiB, touched page by page, is resident while it sleeps
    assert measured.peak_rss_bytes - baseline >= (CHILD_MIB - 40) * 2**20
    assert measured.seconds >= 1.0


def test_rows_per_second_is_rows_written_over_wall_time():
    assert StageResult("bronze", seconds=4.0, rows_in=10, rows_out=1000).rows_per_second == 250.0
    assert StageResult("empty", seconds=0.0, rows_out=5).rows_per_second == 0.0


def test_hold_back_moves_only_the_newest_day_and_restores_it(tmp_path: Path):
    landing, held = tmp_path / "landing", tmp_path / "held"
    for folder in ("source=iot/readings/2026-11-25", "source=iot/readings/2026-11-26", "source=erp/order_lines/2026-11-26"):
        (landing / folder).mkdir(parents=True)
        (landing / folder / "f.txt").write_text("x")

    moves = hold_back_day(landing, held, dt.date(2026, 11, 26))

    assert sorted(p.relative_to(landing).as_posix() for p in landing.glob("source=*/*/*")) == ["source=iot/readings/2026-11-25"]
    assert folder_bytes(held) == 2  # two one-byte files held back
    restore_day(moves)
    assert len(list(landing.glob("source=*/*/2026-11-26/f.txt"))) == 2


def test_hold_back_without_a_drop_for_the_day_names_the_day(tmp_path: Path):
    (tmp_path / "landing" / "source=iot" / "readings" / "2026-11-25").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no drop folder for 2026-11-26 under .*landing"):
        hold_back_day(tmp_path / "landing", tmp_path / "held", dt.date(2026, 11, 26))


def test_scales_are_positive_numbers():
    assert _scales("0.1, 1,5") == [0.1, 1.0, 5.0]
    with pytest.raises(click.BadParameter, match="expected numbers"):
        _scales("0.1,x")
    with pytest.raises(click.BadParameter, match="each > 0"):
        _scales("0,1")


def _stage(name: str, seconds: float) -> dict:
    return StageResult(name, seconds=seconds, rows_out=100).to_json()


def test_markdown_reports_each_target_as_met_or_missed():
    record = {
        "started_at": "2026-11-26T11:00:00Z",
        "load_average_at_end": [1.0, 1.0, 1.0],
        "machine": {"logical_cpus": 2, "memory_gib": 23.6, "python": "3.11", "load_average_1_5_15": [1, 1, 1], "packages": {"duckdb": "1.5.6"}},
        "scales": [
            {
                "scale": 1.0, "days_of_history": 30, "run_date": "2026-11-26",
                "stages": [_stage("bronze", 2.0)],
                "downstream": [{**_stage("ml scoring", 1.0), "details": {"error": "LookupError: no champion"}}],
                "incremental": {"daily_update": [_stage("daily bronze", 1.0)], "full_rebuild": [_stage("rebuild bronze", 6.0)], "full_rebuild_over_daily": 6.0, "nothing_new": [_stage("again bronze", 0.25), _stage("again silver", 0.5)]},
                "tables": [{"table": "bronze.iot.readings", "rows": 10, "bytes": 2**20, "version": 1}],
                "comparison": {
                    "input_rows": {"order_lines": 3}, "output_rows": {"fact_ventes": 3},
                    "seconds": {"embedded (Sail)": 2.0, "DuckDB": 0.5, "classic Spark local[2]": 30.0},
                    "classic_start_seconds": 9.0, "classic_over_embedded": 15.0, "embedded_over_duckdb": 4.0, "identical": True,
                },
            }
        ],
    }

    text = markdown(record)

    assert "| embedded engine >= 10x faster than classic local Spark | 1.0 | 15.0x | yes |" in text
    assert "| embedded engine within 2x of DuckDB | 1.0 | 4.0x | no |" in text
    assert "| daily increment >= 5x cheaper than a full rebuild | 1.0 | 6.0x | yes |" in text
    assert "The daily run again, with nothing new (every source and view skipped): 0.75 s" in text
    assert "| bronze.iot.readings | 10 | 1.00 | 1 |" in text
    assert "identical results: **True**" in text
    assert "Failed (not measured): ml scoring: LookupError: no champion" in text
