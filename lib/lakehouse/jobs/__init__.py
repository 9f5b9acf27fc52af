"""Jobs of notebook tasks declared in ``jobs.yaml`` (Databricks jobs vocabulary), run
with papermill, one kernel per task.

>>> from lakehouse.jobs import load_jobs, run_job
>>> jobs = load_jobs("jobs.yaml")                                  # doctest: +SKIP
>>> run = run_job(jobs, "daily", params={"run_date": "2026-11-26"})  # doctest: +SKIP
>>> run.state, run.run_dir                                          # doctest: +SKIP
>>> repair_run(run.run_id, runs_dir="runs")                         # doctest: +SKIP

Also: :func:`backfill_job` (one run per date), :mod:`lakehouse.jobs.scheduler` (cron
schedules), :mod:`lakehouse.jobs.airflow_export` (Airflow DAG), notifications
(:mod:`lakehouse.jobs.notify`) and the run history table (:mod:`lakehouse.jobs.history`).
"""

from __future__ import annotations

import importlib
from typing import Any

# Where each public name lives. They are imported on first use, so that importing one
# module of the package (``lakehouse.jobs.hooks``, ``lakehouse.jobs.records``) stays cheap.
_HOMES = {
    "backfill": ["Backfill", "backfill_job"],
    "loader": ["JobsError", "JobsFileError", "load_jobs"],
    "records": [
        "Attempt",
        "JobFailedError",
        "JobRun",
        "JobState",
        "TaskRun",
        "TaskState",
        "executed_notebooks",
        "find_run",
        "list_runs",
        "load_run",
        "new_run_id",
    ],
    "repair": ["repair_run"],
    "planning": ["JobParameterError", "JobPlan", "plan_job"],
    "runner": ["ConcurrentRunError", "run_job", "should_run"],
    "schema": [
        "Job",
        "JobParameter",
        "JobsFile",
        "RunIf",
        "Schedule",
        "Task",
        "json_schema",
        "write_json_schema",
    ],
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


__all__ = sorted(_MODULE_OF)
