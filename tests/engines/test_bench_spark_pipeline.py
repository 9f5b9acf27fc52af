"""``lakehouse bench run --spark-remote`` at a tiny scale: the whole pipeline's stages
on Apache Spark over Spark Connect beside the embedded engine, from the same landing
files and PostgreSQL (the daily job and what follows the three runs are left out:
minutes more on Spark).

Needs Java 17 and the server's jars: skipped unless LAKEHOUSE_TEST_SPARK=1 (``make test-spark``).
"""

from __future__ import annotations

import datetime as dt
import os

import pytest

if os.environ.get("LAKEHOUSE_TEST_SPARK") != "1":
    pytest.skip(
        "Apache Spark engine tests: set LAKEHOUSE_TEST_SPARK=1 (make test-spark)", allow_module_level=True
    )

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark_engine")]


def test_the_pipeline_stages_run_side_by_side_on_sail_and_spark(spark, spark_url, tmp_path):
    """``spark``: the embedded engine of tests/conftest.py, stopped at the end of the
    session (a Sail server left running keeps the test process from exiting)."""
    from lakehouse import maintenance
    from lakehouse.bench.measure import PeakMemory
    from lakehouse.bench.runner import run_scale
    from lakehouse.config import load_settings
    from lakehouse.engine import get_spark
    from tests.engines.lakes import tables

    spark_connect = get_spark(
        load_settings(spark={"engine": "remote", "remote": spark_url}), app_name="bench-test"
    )
    workdir = tmp_path / "scale=0.05"
    with PeakMemory() as memory:
        result = run_scale(
            spark,
            workdir,
            scale=0.05,
            days=3,
            run_date=dt.date(2026, 11, 26),
            memory=memory,
            classic=False,
            spark_connect=spark_connect,
            extras=False,  # ML, exports, rebuild and the gold subset: tested elsewhere, minutes on Spark
            progress=print,
        )
    record = result.to_json()
    on_spark = record["spark_connect_pipeline"]

    assert [s["stage"] for s in on_spark["history"]] == ["spark bronze", "spark silver", "spark gold"]
    rows = {(r["run"], r["stage"]): r for r in on_spark["side_by_side"]}
    assert len(rows) == 12
    assert all(r["sail_seconds"] > 0 and r["spark_seconds"] > 0 for r in rows.values()), rows
    assert on_spark["daily_update_spark_over_sail"] == rows[("daily update", "total")]["spark_over_sail"]
    # The same data: each engine wrote as many rows in each stage of each run.
    assert on_spark["same_rows_written"] is True, on_spark["side_by_side"]
    assert [s["rows_out"] for s in on_spark["daily_update"]] == [
        s["rows_out"] for s in record["incremental"]["daily_update"]
    ]
    assert on_spark["daily_update"][0]["rows_out"] > 0  # the held-back day's files
    assert on_spark["nothing_new"][0]["rows_out"] == 0  # every source found nothing
    assert "daily_job" not in record

    # The two lakes: every gold table with as many rows (the Spark lake holds the rows
    # the cross-engine test compares; here the same run order on both).
    sail_gold, spark_gold = tables(workdir / "lake", "gold"), tables(workdir / "spark" / "lake", "gold")
    assert sail_gold and sorted(spark_gold) == sorted(sail_gold)
    assert {name: maintenance.row_count(path) for name, path in spark_gold.items()} == {
        name: maintenance.row_count(path) for name, path in sail_gold.items()
    }
