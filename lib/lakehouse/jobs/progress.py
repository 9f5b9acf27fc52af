"""Live progress of a job run with rich: a refreshing table on a terminal, one line per
event otherwise (CI logs, pipes)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from lakehouse.jobs.records import JobRun, TaskRun, TaskState

STATE_STYLES = {
    TaskState.PENDING: "dim",
    TaskState.RUNNING: "bold cyan",
    TaskState.SUCCESS: "green",
    TaskState.FAILED: "bold red",
    TaskState.TIMED_OUT: "bold red",
    TaskState.UPSTREAM_FAILED: "yellow",
    TaskState.SKIPPED: "dim",
    TaskState.CANCELED: "yellow",
}
STATE_MARKS = {
    TaskState.SUCCESS: "✓",
    TaskState.FAILED: "✗",
    TaskState.TIMED_OUT: "⏱",
    TaskState.UPSTREAM_FAILED: "↯",
    TaskState.SKIPPED: "–",
    TaskState.CANCELED: "■",
    TaskState.RUNNING: "▶",
}


class RunProgress(Protocol):
    """What the runner reports to; calls come from several threads, serialised."""

    def start(self, run: JobRun) -> None: ...

    def task_changed(self, run: JobRun, task_key: str, event: str) -> None: ...

    def stop(self, run: JobRun) -> None: ...


class NullProgress:
    """Reports nothing (``quiet=True``)."""

    def start(self, run: JobRun) -> None:
        """Nothing to show."""

    def task_changed(self, run: JobRun, task_key: str, event: str) -> None:
        """Nothing to show."""

    def stop(self, run: JobRun) -> None:
        """Nothing to show."""


class RichProgress:
    """A live table on terminals; timestamped event lines elsewhere."""

    def __init__(self, *, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._live: Live | None = None
        self._run: JobRun | None = None
        self._started = time.monotonic()

    def start(self, run: JobRun) -> None:
        """Show the run's header and start the live table on a terminal."""
        self._run = run
        self._started = time.monotonic()
        if self.console.is_terminal:
            self._live = Live(console=self.console, get_renderable=self._render, refresh_per_second=4)
            self._live.start()
        else:
            self.console.print(f"job {run.job} run {run.run_id}: {len(run.tasks)} tasks")

    def task_changed(self, run: JobRun, task_key: str, event: str) -> None:
        """Print one line per event unless the live table shows it."""
        if self._live is not None:
            return
        elapsed = format_duration(time.monotonic() - self._started)
        task = run.tasks[task_key]
        mark = STATE_MARKS.get(task.state, "·")
        line = Text(f"[{elapsed}] {mark} {task_key} {event}")
        line.stylize(STATE_STYLES.get(task.state, ""))
        self.console.print(line)

    def stop(self, run: JobRun) -> None:
        """Render the final table and stop refreshing."""
        if self._live is not None:
            self._live.update(self._render(), refresh=True)
            self._live.stop()
            self._live = None

    def _render(self) -> Group:
        run = self._run
        assert run is not None
        done = sum(1 for t in run.tasks.values() if t.state.done)
        failed = sum(1 for t in run.tasks.values() if t.state.failed)
        elapsed = format_duration(time.monotonic() - self._started)
        header = Text(
            f"job {run.job} · run {run.run_id} · {done}/{len(run.tasks)} done · {failed} failed · {elapsed}",
            style="bold",
        )
        return Group(header, task_table(run, live=True))


def task_table(run: JobRun, *, live: bool = False) -> Table:
    """Table of the run's tasks: state, attempts, duration, and error or output."""
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("task")
    table.add_column("state")
    table.add_column("attempts", justify="right")
    table.add_column("duration", justify="right")
    if not live:
        table.add_column("notes", overflow="fold")
    now = dt.datetime.now(dt.UTC)
    for task in run.tasks.values():
        row = [
            task.task_key,
            Text(task.state.value, style=STATE_STYLES.get(task.state, "")),
            str(task.attempts),
            _task_duration(task, now),
        ]
        if not live:
            row.append(_note(task))
        table.add_row(*row)
    return table


def _task_duration(task: TaskRun, now: dt.datetime) -> str:
    if task.duration_seconds is not None:
        return format_duration(task.duration_seconds)
    if task.start_time is not None:
        return format_duration((now - task.start_time).total_seconds())
    return ""


def _note(task: TaskRun) -> str:
    """First line of the error, if any; where a repair's kept task comes from."""
    if task.reused_from:
        return f"kept from run {task.reused_from} (not re-run)"
    if task.error:
        return task.error.splitlines()[0]
    return ""


def format_duration(seconds: float) -> str:
    """``4.2s``, ``3m05s``, ``1h02m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
