"""What the application plugs into job runs, registered from outside this package.

The jobs package runs notebooks; it knows nothing of what else the application has.
``lakehouse.wiring`` (loaded with the ``lakehouse`` package, so in every process that
can start a run) registers:

* services to have up before a run: each takes the settings, starts what the task
  kernels connect to, and returns a line to show (or ``None``); it raises with a message
  when it cannot. ``lakehouse jobs run``, ``repair`` and ``backfill`` start them, and
  keep them up for the whole run.
* listeners on a finished run: each gets the final record and the run's
  :class:`~lakehouse.jobs.services.RunServices` (its ``settings`` and ``record_history``)
  after the run history is written; a listener's failure is a warning of the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakehouse.config import Settings
    from lakehouse.jobs.records import JobRun
    from lakehouse.jobs.services import RunServices

Service = Callable[["Settings"], "str | None"]
RunListener = Callable[["JobRun", "RunServices"], None]

_services: list[Service] = []
_run_listeners: list[RunListener] = []


def add_service(start: Service) -> None:
    """Have ``start(settings)`` called before each run the CLI starts (once if added twice)."""
    if start not in _services:
        _services.append(start)


def add_run_listener(listener: RunListener) -> None:
    """Have ``listener(run, services)`` called when each run ends (once if added twice)."""
    if listener not in _run_listeners:
        _run_listeners.append(listener)


def start_services(settings: Settings) -> list[str]:
    """Start every registered service, in registration order; return their lines."""
    lines = [start(settings) for start in _services]
    return [line for line in lines if line]


def run_listeners() -> tuple[RunListener, ...]:
    """The registered listeners, in registration order."""
    return tuple(_run_listeners)
