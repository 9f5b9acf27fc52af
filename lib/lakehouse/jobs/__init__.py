"""Jobs of notebook tasks declared in ``jobs.yaml`` (Databricks jobs vocabulary), run
with papermill, one kernel per task.

>>> from lakehouse.jobs import load_jobs, run_job
>>> jobs = load_jobs("jobs.yaml")                                  # doctest: +SKIP
>>> run = run_job(jobs, "daily", params={"run_date": "2026-11-26"})  # doctest: +SKIP
>>> run.state, run.run_dir                                          # doctest: +SKIP
"""

from lakehouse.jobs.loader import JobsError, JobsFileError, load_jobs
from lakehouse.jobs.records import (
    Attempt,
    JobFailedError,
    JobRun,
    JobState,
    TaskRun,
    TaskState,
    list_runs,
    load_run,
    new_run_id,
)
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
    "json_schema",
    "list_runs",
    "load_jobs",
    "load_run",
    "new_run_id",
    "plan_job",
    "run_job",
    "should_run",
    "write_json_schema",
]
