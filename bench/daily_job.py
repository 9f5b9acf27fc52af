"""Daily job benchmark: `lakehouse jobs run daily` for one new day on a lake with its
history, each run on a fresh copy of that lake; prints start-up against work per task,
the work on the job's critical path and the pipelines' time, and the ratios.

    .venv/bin/python bench/daily_job.py --runs 3

The first call generates the sources (scale 1, 30 days of history by default) and runs
the history into a snapshot under --workdir (about two minutes); later calls reuse it.
To compare two revisions, run the script from a worktree of each, alternately, on the
same --workdir (the lake is the same; only the code differs).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click
import psutil
from rich.console import Console
from rich.table import Table

from lakehouse.bench.job_times import RunTimes, run_times
from lakehouse.bench.runner import hold_back_day, restore_day

LAKEHOUSE = str(Path(sys.executable).with_name("lakehouse"))


@click.command()
@click.option("--runs", type=int, default=3, show_default=True, help="Runs of the job, each on a fresh copy.")
@click.option(
    "--scale", type=float, default=1.0, show_default=True, help="Data scale of the generated sources."
)
@click.option(
    "--days", type=int, default=30, show_default=True, help="Days of history before the measured day."
)
@click.option("--run-date", default="2026-11-26", show_default=True, help="The measured day (YYYY-MM-DD).")
@click.option("--max-parallel", type=int, default=2, show_default=True, help="As `make run` runs the job.")
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=Path("var/bench-daily-job"),
    show_default=True,
    help="Snapshot and copies (kept between calls; delete it to start over).",
)
def main(runs: int, scale: float, days: int, run_date: str, max_parallel: int, workdir: Path) -> None:
    day = dt.date.fromisoformat(run_date)
    workdir = workdir.resolve()
    console = Console()
    if not (workdir / "snapshot").exists():
        _make_snapshot(workdir, scale, days, day, console)
    for number in range(1, runs + 1):
        times = _measure(workdir, day, max_parallel, f"bench-{number}-{time.strftime('%H%M%S')}")
        _print(console, number, times)


def _env(workdir: Path, lake: Path) -> dict[str, str]:
    return os.environ | {
        "LAKEHOUSE_LAKE_ROOT": str(lake),
        "LAKEHOUSE_VAR_DIR": str(workdir / "var"),
        "LAKEHOUSE_RUNS_DIR": str(workdir / "runs"),
    }


def _make_snapshot(workdir: Path, scale: float, days: int, day: dt.date, console: Console) -> None:
    """Sources for ``days`` + 1 days, the history run (the day before), set aside."""
    shutil.rmtree(workdir, ignore_errors=True)
    lake = workdir / "lake"
    env = _env(workdir, lake)
    console.print(f"generating scale {scale}, {days + 1} days, and running the history (once)")
    generate = [LAKEHOUSE, "generate", "--scale", str(scale), "--days", str(days + 1), "--run-date", str(day)]
    subprocess.run(generate, env=env, check=True)
    held = hold_back_day(lake / "landing", workdir / "held", day)
    history = [LAKEHOUSE, "jobs", "run", "daily", "-q", "--run-id", "history"]
    history += ["-p", f"run_date={day - dt.timedelta(days=1)}", "-p", f"lake_root={lake}"]
    subprocess.run(history, env=env, check=True)
    restore_day(held)
    _stop_postgres(workdir / "var")
    _copy(lake, workdir / "snapshot")
    _copy(workdir / "var", workdir / "snapshot-var")


def _measure(workdir: Path, day: dt.date, max_parallel: int, run_id: str) -> RunTimes:
    """One run of the job for ``day`` on a fresh copy of the snapshot."""
    lake, var = workdir / "lake", workdir / "var"
    _stop_postgres(var)
    for target, source in ((lake, "snapshot"), (var, "snapshot-var")):
        shutil.rmtree(target, ignore_errors=True)
        _copy(workdir / source, target)
    for pid_file in var.rglob("postmaster.pid"):
        pid_file.unlink()
    command = [
        LAKEHOUSE,
        "jobs",
        "run",
        "daily",
        "-q",
        "--run-id",
        run_id,
        "--max-parallel",
        str(max_parallel),
    ]
    command += ["-p", f"run_date={day}", "-p", f"lake_root={lake}"]
    subprocess.run(command, env=_env(workdir, lake), check=True, stdout=subprocess.DEVNULL)
    return run_times(workdir / "runs" / "daily" / run_id)


def _copy(source: Path, target: Path) -> None:
    """A copy with owners kept: the embedded PostgreSQL's files belong to its own user
    when the benchmark runs as root, and it refuses a data folder that does not."""
    subprocess.run(["cp", "-a", str(source), str(target)], check=True)


def _stop_postgres(var: Path) -> None:
    """Stop the embedded PostgreSQL a run left behind, if any (its files are copied next)."""
    for pid_file in var.rglob("postmaster.pid"):
        try:
            server = psutil.Process(int(pid_file.read_text().split()[0]))
            if "postgres" not in server.name():
                continue  # a stale file: that pid is another process now
            server.terminate()
            server.wait(timeout=30)
        except (OSError, ValueError, IndexError, psutil.Error):
            continue


def _print(console: Console, number: int, times: RunTimes) -> None:
    table = Table(title=f"run {number}: {times.seconds:.2f} s", title_justify="left")
    for column in ("task", "wall s", "start-up s", "set-up cell s", "work s", "run_layer s"):
        table.add_column(column, justify="left" if column == "task" else "right")
    for task in times.tasks:
        cells = [task.wall, task.start_up] + (
            [] if task.child_job else [task.setup, task.work, task.pipelines]
        )
        table.add_row("  " * task.depth + task.task, *(f"{value:.2f}" for value in cells))
    console.print(table)
    console.print(
        f"job {times.seconds:.2f} s | critical-path work {times.critical_work:.2f} s -> "
        f"{times.over_critical_work:.2f}x | run_layer cells {times.pipelines:.2f} s -> {times.over_pipelines:.2f}x"
    )


if __name__ == "__main__":
    main()
