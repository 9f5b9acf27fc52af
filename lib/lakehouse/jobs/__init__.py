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

from lakehouse.jobs.backfill import Backfill, backfill_job
from lakehouse.jobs.loader import JobsError, JobsFileError, load_jobs
from lakehouse.jobs.records import (
    Attempt,
    JobFailedError,
    JobRun,
    JobState,
    TaskRun,
    TaskState,
    executed_notebooks,
    find_run,
    list_runs,
    load_run,
    new_run_id,
)
from lakehouse.jobs.repair import repair_run
from lakehouse.jobs.runner import (
    ConcurrentRunError,
    JobParameterError,
    JobPlan,
    plan_job,
    run_job,
    should_run,
)
from lakehouse.jobs.schema import (
    Job,
    JobParameter,
    JobsFile,
    RunIf,
    Schedule,
    Task,
    json_schema,
    write_json_schema,
)

__all__ = [
    "Attempt",
    "Backfill",
    "ConcurrentRunError",
    "Job",
    "JobFailedError",
    "JobParameter",
    "JobParameterError",
    "JobPlan",
    "JobRun",
    "JobState",
    "JobsError",
    "JobsFile",
    "JobsFileError",
    "RunIf",
    "Schedule",
    "Task",
    "TaskRun",
    "TaskState",
    "backfill_job",
    "find_run",
    "json_schema",
    "list_runs",
    "load_jobs",
    "executed_notebooks",
    "load_run",
    "new_run_id",
    "plan_job",
    "repair_run",
    "run_job",
    "should_run",
    "write_json_schema",
]
