"""Parameters, references, order and run_if rules: no kernels involved."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from lakehouse.jobs import JobParameterError, JobsError, RunIf, TaskState, load_jobs, plan_job, should_run
from lakehouse.jobs.graph import find_cycle, topological_order
from lakehouse.jobs.runner import not_run_state
from lakehouse.jobs.templates import check, render

WriteJobs = Callable[[str], Path]

JOBS = """
jobs:
  daily:
    parameters:
      - {name: run_date, default: "{{job.start_time.iso_date}}"}
      - {name: lake_root, default: /lake}
      - {name: scale}
    tasks:
      - task_key: gold
        notebook: notebooks/write_params.ipynb
        depends_on: [{task_key: silver}, {task_key: bronze_b}]
        parameters: {label: "{{job.name}}/{{task.name}}", count: 7}
      - task_key: silver
        notebook: notebooks/write_params.ipynb
        depends_on: [{task_key: bronze_a}]
        parameters: {run_date: "{{job.parameters.run_date}}", out_path: "{{ job.parameters.lake_root }}/x"}
      - task_key: bronze_a
        notebook: notebooks/write_params.ipynb
        parameters: {label: "{{job.parameters.scale}}-{{job.run_id}}"}
      - task_key: bronze_b
        notebook: notebooks/write_params.ipynb
"""
START = dt.datetime(2026, 11, 26, 8, 30, 12, tzinfo=dt.UTC)


def test_parameters_defaults_overrides_and_rendering(write_jobs: WriteJobs) -> None:
    jobs = load_jobs(write_jobs(JOBS))
    plan = plan_job(
        jobs, "daily", params={"scale": "2", "lake_root": "/tmp/lake"}, run_id="R1", start_time=START
    )
    assert plan.params == {"run_date": "2026-11-26", "lake_root": "/tmp/lake", "scale": "2"}
    by_key = {p.task.task_key: p for p in plan.tasks}
    assert by_key["silver"].parameters == {"run_date": "2026-11-26", "out_path": "/tmp/lake/x"}
    assert by_key["bronze_a"].parameters == {"label": "2-R1"}
    assert by_key["gold"].parameters == {"label": "daily/gold", "count": 7}
    assert by_key["gold"].input_notebook == jobs.project_root / "notebooks/write_params.ipynb"
    assert by_key["gold"].where.endswith("jobs.yaml:8")


def test_topological_order_keeps_file_order_for_ties(write_jobs: WriteJobs) -> None:
    plan = plan_job(load_jobs(write_jobs(JOBS)), "daily", params={"scale": "1"})
    assert [p.task.task_key for p in plan.tasks] == ["bronze_a", "silver", "bronze_b", "gold"]
    assert topological_order({"c": ["a", "b"], "a": [], "b": ["a"]}) == ["a", "b", "c"]
    assert find_cycle({"a": ["b"], "b": ["a"]}) == ["a", "b", "a"]
    with pytest.raises(ValueError, match="cycle: x -> x"):
        topological_order({"x": ["x"]})


def test_unknown_missing_parameters_and_unknown_job(write_jobs: WriteJobs) -> None:
    jobs = load_jobs(write_jobs(JOBS))
    with pytest.raises(
        JobParameterError, match=r"no parameter 'rundate'.*parameters: run_date, lake_root, scale"
    ):
        plan_job(jobs, "daily", params={"scale": "1", "rundate": "x"})
    with pytest.raises(JobParameterError, match=r"needs parameter 'scale'.*--param scale=VALUE"):
        plan_job(jobs, "daily")
    with pytest.raises(JobsError, match="no job 'weekly'.*jobs: daily"):
        plan_job(jobs, "weekly")


def test_templates() -> None:
    assert (
        render("{{ job.parameters.a }}-{{job.run_id}}", {"job.parameters.a": "1", "job.run_id": "R"}) == "1-R"
    )
    assert check("{{job.parameters.a}}", parameters={"a"}) == []
    assert "undefined job parameter 'b'" in check("{{job.parameters.b}}", parameters={"a"})[0].message
    assert "malformed" in check("x {{job.parameters.a", parameters={"a"})[0].message
    assert "unknown reference" in check("{{job.start_time.week}}", parameters=set())[0].message
    assert check("{{job.parameters.a}}", parameters={"a"}, allow_parameters=False)


S, F, T, U, K = (
    TaskState.SUCCESS,
    TaskState.FAILED,
    TaskState.TIMED_OUT,
    TaskState.UPSTREAM_FAILED,
    TaskState.SKIPPED,
)


@pytest.mark.parametrize(
    ("rule", "runs"),
    [
        (RunIf.ALL_SUCCESS, {(S, S)}),
        (RunIf.ALL_DONE, {(S, S), (S, F), (F, T), (K, K), (U, S), (S, K)}),
        (RunIf.AT_LEAST_ONE_SUCCESS, {(S, S), (S, F), (U, S), (S, K)}),
        (RunIf.NONE_FAILED, {(S, S), (S, K)}),
        (RunIf.ALL_FAILED, {(F, T)}),
        (RunIf.AT_LEAST_ONE_FAILED, {(S, F), (F, T), (U, S)}),
    ],
)
def test_run_if_rules(rule: RunIf, runs: set[tuple[TaskState, TaskState]]) -> None:
    cases = [(S, S), (S, F), (F, T), (K, K), (U, S), (S, K)]
    assert {case for case in cases if should_run(rule, list(case))} == runs


def test_not_run_states() -> None:
    assert not_run_state([S, F]) == TaskState.UPSTREAM_FAILED
    assert not_run_state([S, U]) == TaskState.UPSTREAM_FAILED
    assert not_run_state([S, K]) == TaskState.SKIPPED
