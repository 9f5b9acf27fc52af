"""A flow's rows are computed once into the run's staging folder; the folder goes
when the run ends, whatever the outcome, and crashed runs' folders after a day."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lakehouse import pipelines as dp
from lakehouse.lake import read_delta


def _graph(fail=False):
    with dp.graph("staged") as g:

        @dp.materialized_view(quarantine=True)
        @dp.expect_or_drop("positive", "n > 0")
        @dp.expect_or_fail("not_failing", "n < 100" if fail else "true")
        def numbers():
            return dp.current().spark.createDataFrame([(1,), (-2,), (3,), (200,)], "n int")

    return g


def test_staging_is_removed_after_success_and_failure_and_stale_folders_after_a_day(spark, lake):
    staging = Path(lake.system("staging"))
    crashed, running = staging / "crashed-run", staging / "other-pipeline-run"
    for folder in (crashed, running):
        folder.mkdir(parents=True)
        (folder / "part-0.parquet").write_bytes(b"")
    two_days_ago = time.time() - 2 * 86_400
    os.utime(crashed, (two_days_ago, two_days_ago))

    runner = dp.PipelineRunner(spark, _graph(), lake)
    run = runner.run()

    assert sorted(p.name for p in staging.iterdir()) == ["other-pipeline-run"]
    event = run.event("numbers")
    assert (event.rows_read, event.rows_written, event.rows_quarantined) == (4, 3, 1)
    assert sorted(r.n for r in read_delta(spark, runner.path("numbers")).collect()) == [1, 3, 200]
    assert [r.n for r in read_delta(spark, runner.quarantine_path("numbers")).collect()] == [-2]

    with pytest.raises(dp.PipelineFailed, match="not_failing"):
        dp.PipelineRunner(spark, _graph(fail=True), lake).run()
    assert sorted(p.name for p in staging.iterdir()) == ["other-pipeline-run"]
