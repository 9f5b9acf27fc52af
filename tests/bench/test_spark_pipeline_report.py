"""The whole pipeline on Apache Spark beside the embedded engine, without an engine: the
side-by-side figures and ratios of a made-up record, their JSON and Markdown, and the
lake copies the daily job runs on."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from lakehouse.bench import spark_pipeline as on_spark
from lakehouse.bench.measure import StageResult
from lakehouse.bench.report import markdown
from lakehouse.bench.runner import ScaleResult

RUN_DATE = dt.date(2026, 11, 26)


def _stages(prefix: str, seconds: tuple[float, float, float], rows=(100, 50, 10)) -> list[StageResult]:
    return [
        StageResult(f"{prefix}{layer}", seconds=s, rows_out=r)
        for layer, s, r in zip(on_spark.LAYERS, seconds, rows, strict=True)
    ]


def _scale_with_spark() -> ScaleResult:
    result = ScaleResult(1.0, 30, RUN_DATE)
    result.stages = [StageResult("generate", seconds=4.0, rows_out=999), *_stages("", (6.0, 2.0, 1.0))]
    result.daily = _stages("daily ", (0.5, 1.0, 0.5))
    result.nothing_new = _stages("again ", (0.25, 0.25, 0.5), rows=(0, 0, 0))
    result.spark_connect = on_spark.EngineStages(
        history=_stages("spark ", (30.0, 20.0, 10.0)),
        daily=_stages("spark daily ", (5.0, 8.0, 7.0), rows=(100, 50, 11)),  # gold wrote one row more
        nothing_new=_stages("spark again ", (2.0, 2.0, 2.0), rows=(0, 0, 0)),
    )
    result.daily_job = on_spark.daily_job_record(
        {
            "seconds": 40.0,
            "state": "SUCCESS",
            "exit_code": 0,
            "tasks_seconds": {"ingestion": 12.4, "catalog": 3.0},
        },
        {"seconds": 150.0, "state": "SUCCESS", "exit_code": 0, "tasks_seconds": {"ingestion": 50.0}},
        RUN_DATE,
    )
    return result


def test_side_by_side_gives_each_stage_and_each_run_total_with_the_spark_over_sail_ratio():
    spark = _scale_with_spark().to_json()["spark_connect_pipeline"]

    rows = {(r["run"], r["stage"]): r for r in spark["side_by_side"]}
    assert list(rows) == [(run, stage) for run in on_spark.RUNS for stage in (*on_spark.LAYERS, "total")]
    assert rows[("history", "bronze")] == {
        "run": "history",
        "stage": "bronze",
        "sail_seconds": 6.0,
        "spark_seconds": 30.0,
        "spark_over_sail": 5.0,
        "same_rows_written": True,
    }
    assert (rows[("history", "total")]["sail_seconds"], rows[("history", "total")]["spark_seconds"]) == (
        9.0,
        60.0,
    )
    assert rows[("history", "total")]["spark_over_sail"] == 6.67  # generate is not a stage of Spark's
    assert rows[("daily update", "silver")]["spark_over_sail"] == 8.0
    assert rows[("daily update", "total")]["spark_over_sail"] == 10.0  # 20 s / 2 s
    assert spark["daily_update_spark_over_sail"] == 10.0
    assert rows[("nothing new", "total")]["spark_over_sail"] == 6.0
    assert rows[("daily update", "gold")]["same_rows_written"] is False
    assert rows[("daily update", "total")]["same_rows_written"] is False
    assert spark["same_rows_written"] is False
    assert [s["stage"] for s in spark["daily_update"]] == [
        "spark daily bronze",
        "spark daily silver",
        "spark daily gold",
    ]


def test_the_daily_job_ratio_only_when_both_engines_succeeded():
    ok = {"seconds": 40.0, "exit_code": 0}
    assert (
        on_spark.daily_job_record(ok, {"seconds": 150.0, "exit_code": 0}, RUN_DATE)["spark_over_sail"] == 3.75
    )
    failed = on_spark.daily_job_record(ok, {"seconds": 9.0, "exit_code": 1, "error": "boom"}, RUN_DATE)
    assert failed["spark_over_sail"] is None


def test_without_spark_the_record_keeps_its_shape():
    result = ScaleResult(1.0, 30, RUN_DATE)
    result.daily = _stages("daily ", (0.5, 1.0, 0.5))
    record = result.to_json()
    assert "spark_connect_pipeline" not in record and "daily_job" not in record


def _record(scale: dict) -> dict:
    return {
        "started_at": "2026-11-26T11:00:00Z",
        "load_average_at_end": [3.0, 2.0, 1.0],
        "machine": {
            "logical_cpus": 2,
            "memory_gib": 23.6,
            "python": "3.11",
            "load_average_1_5_15": [1, 1, 1],
            "packages": {"pyspark": "4.2.0"},
        },
        "scales": [scale],
    }


def test_markdown_puts_the_engines_side_by_side_and_times_the_daily_job():
    scale = _scale_with_spark().to_json()
    scale["comparison"] = {}

    text = markdown(_record(scale))

    assert "daily update Spark / Sail = **10.0x**" in text
    assert "| run | stage | Sail s | Spark s | Spark / Sail | same rows written |" in text
    assert "| history | bronze | 6.00 | 30.00 | 5.0x | yes |" in text
    assert "| daily update | **total** | 2.00 | 20.00 | 10.0x | **no** |" in text
    assert "| nothing new | **total** | 1.00 | 6.00 | 6.0x | yes |" in text
    assert "`lakehouse jobs run daily` for the new day (2026-11-26)" in text
    assert "Spark / Sail = **3.75x**" in text
    assert "| embedded (Sail) | 40.0 | SUCCESS | ingestion 12, catalog 3 |" in text
    assert "| Apache Spark over Spark Connect | 150.0 | SUCCESS | ingestion 50 |" in text


def test_markdown_reports_a_failed_daily_job():
    scale = _scale_with_spark().to_json()
    scale["comparison"] = {}
    scale["daily_job"] = on_spark.daily_job_record(
        {"seconds": 40.0, "state": "SUCCESS", "exit_code": 0},
        {"seconds": 9.5, "state": "FAILED", "exit_code": 1, "error": "ingestion: Py4J error"},
        RUN_DATE,
    )
    text = markdown(_record(scale))
    assert "(wall time, the notebooks' kernels included); no ratio: a run failed:" in text
    assert "| Apache Spark over Spark Connect | 9.5 | FAILED | - |" in text
    assert "Failed: Apache Spark over Spark Connect: ingestion: Py4J error" in text


def test_a_copy_of_the_lake_takes_its_place_under_the_same_path(tmp_path: Path):
    root = tmp_path / "lake"
    on_spark.linked_lake(root)
    drop = root / "landing" / "source=erp" / "order_lines" / "2026-11-25" / "f.csv"
    drop.parent.mkdir(parents=True)
    drop.write_text("history")
    os.utime(drop, ns=(1_000_000_000, 1_000_000_000))

    copy = on_spark.snapshot_lake(root)
    new_day = root / "landing" / "source=erp" / "order_lines" / "2026-11-26" / "f.csv"
    new_day.parent.mkdir(parents=True)
    new_day.write_text("new day")
    (root / "bronze").mkdir()  # written after the copy: not in it

    assert on_spark.copy_day(root / "landing", copy / "landing", RUN_DATE) == 1
    on_spark.point_lake_at(root, copy)

    assert root.resolve() == copy.resolve() and root.is_symlink()
    assert drop.read_text() == "history" and drop.stat().st_mtime_ns == 1_000_000_000  # same path, size, time
    assert new_day.read_text() == "new day"
    assert not (root / "bronze").exists()
    assert (tmp_path / "lake.stages" / "bronze").is_dir()  # the stages' lake is kept beside it
