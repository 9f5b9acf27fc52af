"""jobs.yaml validation: every error names the file, line, job and task."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from lakehouse.jobs import JobsFileError, RunIf, load_jobs, write_json_schema

WriteJobs = Callable[[str], Path]

VALID = """
jobs:
  daily:
    description: ingest and clean one day
    parameters:
      - {name: run_date, default: ""}
      - {name: lake_root, default: ""}
    max_concurrent_runs: 1
    schedule: {quartz_cron_expression: "0 30 6 * * ?", timezone: Europe/Paris}
    email_notifications: {on_failure: [ops@example.com]}
    webhook_notifications: {on_failure: [{url: "https://hooks.example.com/x"}]}
    tasks:
      - task_key: bronze
        notebook: notebooks/write_params.ipynb
        parameters: {run_date: "{{job.parameters.run_date}}", label: "{{ task.name }}", count: 2}
        timeout_seconds: 1800
        max_retries: 0
        retry_interval_seconds: 0
      - task_key: silver
        notebook: notebooks/write_params.ipynb
        depends_on: [{task_key: bronze}]
        run_if: ALL_DONE
"""


def _error(write_jobs: WriteJobs, text: str) -> JobsFileError:
    path = write_jobs(text)
    with pytest.raises(JobsFileError) as info:
        load_jobs(path)
    return info.value


def test_valid_file_loads_with_positions(write_jobs: WriteJobs) -> None:
    path = write_jobs(VALID)
    jobs = load_jobs(path)
    job = jobs.job("daily")
    assert job.name == "daily" and job.line == 2
    assert [t.task_key for t in job.tasks] == ["bronze", "silver"]
    assert job.task("silver").run_if is RunIf.ALL_DONE
    assert job.task("silver").upstream == ["bronze"]
    assert job.task("bronze").line == 12
    assert job.task("bronze").parameters["count"] == 2
    assert job.schedule is not None and job.schedule.timezone == "Europe/Paris"
    assert jobs.source == path and jobs.project_root == path.parent


def test_unknown_key_names_line_job_task_and_allowed_keys(write_jobs: WriteJobs) -> None:
    error = _error(
        write_jobs,
        """
        jobs:
          daily:
            tasks:
              - task_key: bronze
                notebook: notebooks/write_params.ipynb
                notebok_params: {}
        """,
    )
    message = str(error)
    assert f"{error.path}:6:" in message
    assert "job 'daily', task 'bronze'" in message
    assert "unknown key 'notebok_params'" in message
    assert "allowed keys: task_key" in message


def test_unknown_top_level_and_job_keys(write_jobs: WriteJobs) -> None:
    error = _error(
        write_jobs,
        """
        jobs:
          daily:
            max_concurent_runs: 2
            tasks:
              - {task_key: a, notebook: notebooks/write_params.ipynb}
        job: {}
        """,
    )
    assert len(error.problems) == 2
    assert any(":3: job 'daily': unknown key 'max_concurent_runs'" in p for p in error.problems)
    assert any(":6: unknown key 'job'" in p for p in error.problems)


def test_cycle_is_named(write_jobs: WriteJobs) -> None:
    error = _error(
        write_jobs,
        """
        jobs:
          loop:
            tasks:
              - {task_key: a, notebook: notebooks/write_params.ipynb, depends_on: [{task_key: c}]}
              - {task_key: b, notebook: notebooks/write_params.ipynb, depends_on: [{task_key: a}]}
              - {task_key: c, notebook: notebooks/write_params.ipynb, depends_on: [{task_key: b}]}
        """,
    )
    assert "dependency cycle: a -> c -> b -> a" in str(error)
    assert ":4: job 'loop', task 'a'" in str(error)


def test_unknown_depends_on(write_jobs: WriteJobs) -> None:
    error = _error(
        write_jobs,
        """
        jobs:
          daily:
            tasks:
              - task_key: bronze
                notebook: notebooks/write_params.ipynb
              - task_key: silver
                notebook: notebooks/write_params.ipynb
                depends_on:
                  - task_key: bronz
        """,
    )
    assert ":9: job 'daily', task 'silver': depends_on names unknown task 'bronz'" in str(error)
    assert "tasks of this job: bronze, silver" in str(error)


def test_undefined_and_malformed_parameter_references(write_jobs: WriteJobs) -> None:
    error = _error(
        write_jobs,
        """
        jobs:
          daily:
            parameters: [{name: run_date, default: ""}]
            tasks:
              - task_key: bronze
                notebook: notebooks/write_params.ipynb
                parameters:
                  run_date: "{{job.parameters.rundate}}"
                  label: "{{job.parameters.run_date}"
                  out_path: "{{job.params.x}}"
        """,
    )
    problems = error.problems
    assert len(problems) == 3
    assert (
        ":8: job 'daily', task 'bronze': {{job.parameters.rundate}} references undefined "
        "job parameter 'rundate' (defined: run_date)" in problems[0]
    )
    assert ":9:" in problems[1] and "malformed reference" in problems[1]
    assert ":10:" in problems[2] and "unknown reference {{job.params.x}}" in problems[2]


def test_missing_notebook_and_duplicate_task_key(write_jobs: WriteJobs) -> None:
    error = _error(
        write_jobs,
        """
        jobs:
          daily:
            tasks:
              - {task_key: a, notebook: notebooks/missing.ipynb}
              - {task_key: a, notebook: notebooks/write_params.ipynb}
        """,
    )
    message = str(error)
    assert ":4: job 'daily', task 'a': notebook file not found: notebooks/missing.ipynb" in message
    assert "relative to the project root" in message
    assert ":5: job 'daily', task 'a': duplicate task_key 'a'" in message


def test_type_errors_missing_keys_and_yaml_syntax(write_jobs: WriteJobs) -> None:
    error = _error(
        write_jobs,
        """
        jobs:
          daily:
            tasks:
              - task_key: a
                notebook: notebooks/a.ipynb
                timeout_seconds: soon
                run_if: SOMETIMES
              - task_key: b
        """,
    )
    message = str(error)
    assert ":6:" in message and "'soon'" in message
    assert ":7:" in message and "'SOMETIMES'" in message
    # a task with neither a notebook nor a job to run
    missing = _error(write_jobs, "jobs:\n  daily:\n    tasks:\n      - task_key: b\n")
    assert ":4: job 'daily', task 'b': set exactly one of notebook and run_job_task" in str(missing)
    syntax = _error(write_jobs, "jobs:\n  daily: [\n")
    assert "YAML syntax error" in str(syntax) and f"{syntax.path}:" in str(syntax)
    duplicate = _error(write_jobs, "jobs:\n  a: {tasks: []}\n  a: {tasks: []}\n")
    assert ":3:" in str(duplicate)


def test_json_schema_for_editors(tmp_path: Path) -> None:
    path = write_json_schema(tmp_path / "schema" / "jobs.schema.json")
    schema = json.loads(path.read_text())
    task = schema["$defs"]["Task"]
    assert task["additionalProperties"] is False
    assert {"task_key", "notebook", "run_job_task", "depends_on", "run_if", "timeout_seconds"} <= set(
        task["properties"]
    )
    assert task["required"] == ["task_key"]
