"""Schedules: fire times with a fixed clock, missed runs, max_concurrent_runs, and a real
scheduler process stopped by SIGTERM."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner
from rich.console import Console

from lakehouse.jobs import JobsFileError, JobState, Schedule, load_jobs, load_run
from lakehouse.jobs.cli import jobs_cli
from lakehouse.jobs.cron import ScheduleError, cron_expression, due, quartz_to_cron
from lakehouse.jobs.scheduler import LaunchRequest, Scheduler, ScheduleState, load_state, save_state

WriteJobs = Callable[[str], Path]
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
DAILY = Schedule(cron="0 6 * * *", timezone="Europe/Paris")


def paris(day: int, hour: int, minute: int = 0, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=PARIS)


def test_due_fire_times_with_a_fixed_clock() -> None:
    assert due(DAILY, None, paris(26, 7)).fire_times == [], "first start: nothing in the past"
    assert due(DAILY, paris(26, 5), paris(26, 5, 59)).run is None
    one = due(DAILY, paris(26, 5, 59), paris(26, 6))
    assert one.run == paris(26, 6) and one.missed == []
    late = due(DAILY, paris(23, 7), paris(26, 7).astimezone(dt.UTC))  # clocks in UTC work too
    assert late.missed == [paris(24, 6), paris(25, 6)] and late.run == paris(26, 6)
    assert late.run.utcoffset() == dt.timedelta(hours=1)
    # the daylight saving change: 06:00 Paris is 04:00 UTC in summer, 05:00 in winter
    dst = due(DAILY, paris(23, 12, month=10), paris(25, 12, month=10))  # change on 25 Oct
    assert [t.astimezone(dt.UTC).hour for t in dst.fire_times] == [4, 5]


def test_quartz_and_invalid_expressions() -> None:
    assert quartz_to_cron("0 30 6 ? * MON-FRI") == "30 6 * * MON-FRI"
    assert quartz_to_cron("0 0 8 ? * 2-6 *") == "0 8 * * 1-5", "Quartz weekdays start at 1 = Sunday"
    assert cron_expression(Schedule(quartz_cron_expression="0 15 2 1 * ?")) == "15 2 1 * *"
    with pytest.raises(ScheduleError, match="seconds field to 0"):
        quartz_to_cron("30 0 6 * * ?")
    with pytest.raises(ScheduleError, match="invalid cron expression '61 6 \\* \\* \\*'"):
        cron_expression(Schedule(cron="61 6 * * *"))


def test_invalid_cron_is_reported_by_validate(write_jobs: WriteJobs) -> None:
    path = write_jobs("""
        jobs:
          job:
            schedule: {cron: "0 25 * * *", timezone: Europe/Paris}
            tasks:
              - {task_key: a, notebook: notebooks/write_params.ipynb}
        """)
    with pytest.raises(
        JobsFileError, match=r"jobs.yaml:3: job 'job': invalid cron expression '0 25 \* \* \*'"
    ):
        load_jobs(path)


@dataclass
class FakeRun:
    job: str
    run_id: str
    code: int | None = None

    def poll(self) -> int | None:
        return self.code

    def terminate(self) -> None:
        self.code = 130

    def kill(self) -> None:
        self.code = -9


class FakeLauncher:
    def __init__(self) -> None:
        self.requests: list[LaunchRequest] = []
        self.runs: list[FakeRun] = []

    def __call__(self, request: LaunchRequest) -> FakeRun:
        self.requests.append(request)
        self.runs.append(FakeRun(request.job, request.run_id))
        return self.runs[-1]


SCHEDULED = """
jobs:
  daily:
    parameters: [{name: run_date, default: ""}]
    max_concurrent_runs: 1
    schedule: {cron: "0 6 * * *", timezone: Europe/Paris}
    tasks:
      - {task_key: a, notebook: notebooks/write_params.ipynb}
  hourly:
    schedule: {cron: "0 * * * *", timezone: UTC, pause_status: PAUSED}
    tasks:
      - {task_key: a, notebook: notebooks/write_params.ipynb}
  manual:
    tasks:
      - {task_key: a, notebook: notebooks/write_params.ipynb}
"""


def test_missed_runs_are_reported_and_only_the_latest_runs(write_jobs: WriteJobs, project: Path) -> None:
    path = write_jobs(SCHEDULED)
    launcher = FakeLauncher()
    out = io.StringIO()
    scheduler = Scheduler(
        path,
        project_root=project,
        runs_dir=project / "runs",
        launcher=launcher,
        console=Console(file=out, width=200),
    )
    assert scheduler.reload()
    first = {d.job: d for d in scheduler.evaluate(paris(23, 7))}
    assert set(first) == {"daily", "hourly"}, "jobs without a schedule are ignored"
    assert first["daily"].action == "first_start" and launcher.requests == []
    assert "next run 2026-11-24 06:00 CET" in first["daily"].message

    # stopped for three days: two fire times missed, the latest one runs
    [decision, paused] = scheduler.evaluate(paris(26, 7))
    assert decision.action == "started" and paused.action == "paused"
    assert decision.message.splitlines()[0] == (
        "missed 2 runs of daily: 2026-11-24 06:00, 2026-11-25 06:00 Europe/Paris; "
        "running the latest only (2026-11-26 06:00)"
    )
    [request] = launcher.requests
    assert request.job == "daily" and request.params == {"run_date": "2026-11-26"}
    assert request.fire_time == paris(26, 6) and request.run_id == decision.run_id
    state = load_state(project / "runs", "daily")
    assert state is not None and state.missed == [paris(24, 6), paris(25, 6)]
    assert state.last_run_id == request.run_id and state.evaluated_until == paris(26, 7)
    stored = json.loads((project / "runs" / "daily" / ".scheduler.json").read_text())
    assert stored["last_fire_time"].startswith("2026-11-26T06:00:00")

    actions = {d.job: d.action for d in scheduler.evaluate(paris(26, 8))}
    assert actions == {"daily": "idle", "hourly": "paused"}
    # the run is still going at the next fire: max_concurrent_runs=1 skips it
    [skipped, _] = scheduler.evaluate(paris(27, 6, 1))
    assert skipped.action == "skipped" and "max_concurrent_runs=1 reached" in skipped.message
    assert request.run_id in skipped.message and len(launcher.requests) == 1
    launcher.runs[0].code = 0
    [started, _] = scheduler.evaluate(paris(28, 6, 0))
    assert started.action == "started" and launcher.requests[-1].params == {"run_date": "2026-11-28"}
    assert len(scheduler.finished) == 1

    path.write_text(SCHEDULED.replace("0 6 * * *", "0 25 * * *"))  # broken while running
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert scheduler.reload() and scheduler.jobs is not None
    assert scheduler.jobs.job("daily").schedule == Schedule(cron="0 6 * * *", timezone="Europe/Paris")
    assert "invalid cron expression '0 25 * * *'" in out.getvalue()
    assert "keeping the previous version; fix the file" in out.getvalue()


def test_once_with_nothing_due_lists_the_schedules(write_jobs: WriteJobs, project: Path) -> None:
    write_jobs(SCHEDULED)
    result = CliRunner().invoke(jobs_cli, ["scheduler", "--once"])
    assert result.exit_code == 0, result.output
    assert "daily: schedule 0 6 * * * (Europe/Paris); next run" in result.stderr
    assert "hourly: schedule 0 * * * * (UTC) is PAUSED" in result.stderr
    assert load_state(project / "runs", "daily") is not None


@pytest.mark.slow
def test_sigterm_stops_the_scheduler_and_cancels_its_run(write_jobs: WriteJobs, project: Path) -> None:
    pid_file = project / "kernel.pid"
    write_jobs(f"""
        jobs:
          sleepy:
            schedule: {{cron: "* * * * *", timezone: UTC}}
            tasks:
              - task_key: nap
                notebook: notebooks/sleep.ipynb
                parameters: {{seconds: 120, pid_path: "{pid_file}"}}
        """)
    now = dt.datetime.now(dt.UTC)
    save_state(project / "runs", ScheduleState(job="sleepy", evaluated_until=now - dt.timedelta(minutes=2)))
    log = project / "scheduler.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "lakehouse.cli", "jobs", "scheduler", "--poll-seconds", "0.2"],
            cwd=project,
            env=dict(os.environ, LAKEHOUSE_HOME=str(project), COLUMNS="200"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        record = _wait_for_running_task(project / "runs" / "sleepy", process, log)
        kernel_pid = _wait_for_kernel(pid_file, process, log)
        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=15)
        stopped_in = time.monotonic() - began
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text()
    assert code == 0, text
    assert stopped_in < 8, f"took {stopped_in:.1f}s to stop"
    assert re.search(r"missed \d+ runs? of sleepy: .* UTC; running the latest only", text), text
    assert "started run" in text
    assert f"canceling run {record.run_id}" in text
    final = load_run(record.run_dir)
    assert final.state == JobState.CANCELED and final.trigger == "schedule"
    assert final.tasks["nap"].state.value == "CANCELED"
    assert not psutil.pid_exists(kernel_pid) or psutil.Process(kernel_pid).status() == psutil.STATUS_ZOMBIE


def _wait_for_kernel(pid_file: Path, process: subprocess.Popen[bytes], log: Path) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        if pid_file.exists() and pid_file.read_text():
            return int(pid_file.read_text())
        time.sleep(0.1)
    raise AssertionError("the kernel did not start:\n" + log.read_text())


def _wait_for_running_task(job_dir: Path, process: subprocess.Popen[bytes], log: Path):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        for path in job_dir.glob("*/run.json"):
            record = load_run(path)
            if record.tasks["nap"].state.value == "RUNNING":
                return record
        time.sleep(0.1)
    raise AssertionError("no scheduled run started:\n" + log.read_text())
