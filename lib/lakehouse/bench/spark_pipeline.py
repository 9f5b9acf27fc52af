"""The whole pipeline on Apache Spark over Spark Connect, beside the embedded engine.

With ``lakehouse bench run --spark-remote``, each scale also runs bronze, silver and
gold on a Spark Connect server: the same landing files (a copy in ``spark/lake`` under
the scale's folder), the same PostgreSQL referential, the same three runs as the
embedded engine (history, the held-back day, the same day again with nothing new).
The stages are put side by side, with the ratio Spark / Sail per stage and in total.

Optionally the ``daily`` job itself (``lakehouse jobs run daily``: the notebooks,
quality, scoring, BI exports, catalog) runs for the new day on both engines. It needs
a lake that has the history but not the new day: a copy of each lake taken after its
history run. The autoloader checkpoints record the landing files by absolute path, so
each lake root is a link (``lake -> lake.stages``) and the copy (``lake.job``) takes its
place under the same path when the job runs.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lakehouse.bench.measure import StageResult
from lakehouse.config import Settings

SAIL = "embedded (Sail)"
SPARK_CONNECT = "Apache Spark over Spark Connect"
RUNS = ("history", "daily update", "nothing new")
LAYERS = ("bronze", "silver", "gold")
STAGES_FOLDER, JOB_FOLDER = ".stages", ".job"
JOB_TIMEOUT_SECONDS = 3600


@dataclass
class EngineStages:
    """The three runs of one engine, each a list of bronze, silver and gold stages."""

    history: list[StageResult] = field(default_factory=list)
    daily: list[StageResult] = field(default_factory=list)
    nothing_new: list[StageResult] = field(default_factory=list)

    def by_run(self) -> dict[str, list[StageResult]]:
        layers = [s for s in self.history if s.stage.split()[-1] in LAYERS]  # not "generate"
        return dict(zip(RUNS, (layers, self.daily, self.nothing_new), strict=True))


def side_by_side(sail: EngineStages, spark: EngineStages) -> list[dict[str, object]]:
    """One row per run and layer, then the run's total: seconds on each engine, the
    ratio Spark / Sail and whether both wrote the same number of rows."""
    rows = []
    for run, sail_stages in sail.by_run().items():
        spark_stages = spark.by_run()[run]
        pairs = list(zip(sail_stages, spark_stages, strict=True))
        for layer, (a, b) in zip(LAYERS, pairs, strict=True):
            rows.append(_row(run, layer, a.seconds, b.seconds, a.rows_out == b.rows_out))
        rows.append(
            _row(
                run,
                "total",
                sum(a.seconds for a, _ in pairs),
                sum(b.seconds for _, b in pairs),
                all(a.rows_out == b.rows_out for a, b in pairs),
            )
        )
    return rows


def _row(run: str, stage: str, sail: float, spark: float, same_rows: bool) -> dict[str, object]:
    return {
        "run": run,
        "stage": stage,
        "sail_seconds": round(sail, 3),
        "spark_seconds": round(spark, 3),
        "spark_over_sail": ratio(spark, sail),
        "same_rows_written": same_rows,
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 2) if numerator and denominator else None


# ----------------------------------------------------------------- lakes and their copies


def linked_lake(root: Path) -> None:
    """Make ``root`` a link to ``root.stages`` (created empty), so that a copy of the
    lake can later take its place under the same path."""
    target = root.with_name(root.name + STAGES_FOLDER)
    target.mkdir(parents=True)
    root.symlink_to(target.name)


def snapshot_lake(root: Path) -> Path:
    """Copy the lake behind the link ``root`` to ``root.job`` (file times kept: the
    checkpoints recognise the files they have read by path, size and time)."""
    copy = root.with_name(root.name + JOB_FOLDER)
    shutil.copytree(root.resolve(), copy, symlinks=True)
    return copy


def point_lake_at(root: Path, folder: Path) -> None:
    root.unlink()
    root.symlink_to(folder.name)


def copy_day(landing: Path, target_landing: Path, day: dt.date) -> int:
    """Copy every ``source=*/<entity>/<day>/`` drop folder of ``landing``; returns how many."""
    folders = sorted(landing.glob(f"source=*/*/{day.isoformat()}"))
    for folder in folders:
        shutil.copytree(folder, target_landing / folder.relative_to(landing))
    return len(folders)


# ----------------------------------------------------------------- the daily job


def run_daily_job(
    settings: Settings, lake_root: Path, run_date: dt.date, *, spark_remote: str | None, label: str
) -> dict[str, object]:
    """``lakehouse jobs run daily`` for ``run_date`` on ``lake_root``, in its own process
    (its notebooks' kernels: embedded Sail each, or ``SPARK_REMOTE``); wall time, state
    and the seconds of each task."""
    run_id = f"bench-{label}-{run_date:%Y%m%d}-{time.time_ns() % 10**6:06d}"
    env = {
        **os.environ,
        "LAKEHOUSE_LAKE_ROOT": str(lake_root),
        "LAKEHOUSE_VAR_DIR": str(settings.var_dir),
        "LAKEHOUSE_RUNS_DIR": str(settings.runs_dir),
    }
    env.pop("SPARK_REMOTE", None)
    if spark_remote:
        env["SPARK_REMOTE"] = spark_remote
    command = [
        str(Path(sys.executable).with_name("lakehouse")),
        *("jobs", "run", "daily", "--quiet", "--run-id", run_id),
        *("--param", f"run_date={run_date.isoformat()}", "--param", f"lake_root={lake_root}"),
    ]
    started = time.perf_counter()
    done = subprocess.run(
        command,
        env=env,
        cwd=settings.project_root,
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_SECONDS,
        check=False,
    )
    seconds = time.perf_counter() - started
    tasks, state = _task_seconds(Path(settings.runs_dir) / "daily" / run_id / "run.json")
    return {
        "seconds": round(seconds, 2),
        "state": state or ("SUCCESS" if done.returncode == 0 else "FAILED"),
        "exit_code": done.returncode,
        "tasks_seconds": tasks,
        "load_average_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
        **({"error": (done.stderr or done.stdout).strip()[-600:]} if done.returncode else {}),
    }


def _task_seconds(run_json: Path) -> tuple[dict[str, float], str | None]:
    from lakehouse.jobs.records import load_run

    if not run_json.exists():
        return {}, None
    run = load_run(run_json)
    tasks = {key: round(task.duration_seconds or 0.0, 2) for key, task in run.tasks.items()}
    return tasks, run.state.value


def daily_job_record(
    sail: dict[str, object], spark: dict[str, object], run_date: dt.date
) -> dict[str, object]:
    return {
        "run_date": run_date.isoformat(),
        "engines": {SAIL: sail, SPARK_CONNECT: spark},
        "spark_over_sail": ratio(spark.get("seconds"), sail.get("seconds"))  # type: ignore[arg-type]
        if sail.get("exit_code") == 0 and spark.get("exit_code") == 0
        else None,
    }
