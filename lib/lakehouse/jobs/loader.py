"""Read and validate ``jobs.yaml``; every problem names the file, line, job and task."""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from lakehouse.jobs import templates
from lakehouse.jobs.graph import find_cycle
from lakehouse.jobs.schema import EMAIL_PATTERN, IDENTIFIER_PATTERN, NAME_PATTERN, Job, JobsFile

Loc = tuple[str | int, ...]


class JobsError(Exception):
    """Base class of the errors of jobs and job runs."""


class JobsFileError(JobsError):
    """``jobs.yaml`` cannot be read or is invalid. ``problems`` holds one line per issue."""

    def __init__(self, path: Path, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{path} is invalid ({count} problem{'s' if count != 1 else ''}):"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


@dataclass(frozen=True)
class _Issue:
    loc: Loc
    message: str


def load_jobs(path: str | Path, *, project_root: str | Path | None = None) -> JobsFile:
    """Load and validate a jobs file.

    ``project_root`` (default: the file's folder) is what task ``notebook`` paths are
    relative to. Raises :class:`JobsFileError` listing every problem found, each with
    ``file:line``, the job and the task.
    """
    path = Path(path).resolve()
    root = Path(project_root).resolve() if project_root else path.parent
    document = _read_yaml(path)
    plain = _plain(document)
    if plain is None:
        plain = {}
    try:
        jobs_file = JobsFile.model_validate(plain)
    except ValidationError as exc:
        issues = _issues_from_pydantic(exc.errors())
        raise JobsFileError(path, _describe_all(path, document, plain, issues)) from None
    issues = [issue for name, job in jobs_file.jobs.items() for issue in _check_job(name, job, root)]
    issues += _check_run_job_tasks(jobs_file)
    if issues:
        raise JobsFileError(path, _describe_all(path, document, plain, issues))
    _attach_positions(jobs_file, document, path, root)
    return jobs_file


def _read_yaml(path: Path) -> Any:
    """Parse YAML keeping line numbers; syntax errors and duplicate keys name the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JobsFileError(
            path, [f"{path}: file not found; create it or pass the right path with --file"]
        ) from None
    except OSError as exc:
        raise JobsFileError(path, [f"{path}: cannot read: {exc}"]) from None
    try:
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        detail = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        return _raise(path, f"{path}{line}: YAML syntax error: {detail}")
    except YAMLError as exc:
        return _raise(path, f"{path}: YAML error: {exc}")


def _raise(path: Path, message: str) -> Any:
    raise JobsFileError(path, [message])


def _plain(node: Any) -> Any:
    """ruamel's round-trip nodes to plain dicts, lists and scalars."""
    if isinstance(node, dict):
        return {_plain(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


# --- pydantic errors ------------------------------------------------------------------


def _issues_from_pydantic(errors: list[Any]) -> list[_Issue]:
    """pydantic errors to issues; the errors of one value against each member of a
    union (``str | int | ...``) become one issue."""
    by_loc: dict[Loc, list[Any]] = {}
    for error in errors:
        loc = tuple(part for part in error["loc"] if not _is_type_tag(part))
        by_loc.setdefault(loc, []).append(error)
    issues = []
    for loc, group in by_loc.items():
        if len(group) == 1:
            issues.append(_issue_from_pydantic(loc, group[0]))
            continue
        expected = " or ".join(str(e["msg"]).removeprefix("Input should be ") for e in group)
        found = group[0].get("input")
        issues.append(_Issue(loc, f"{_field_path(loc)}expected {expected} (found {found!r})"))
    return issues


_PATTERN_RULES = {
    NAME_PATTERN: "letters, digits, '_', '-' or '.', starting with a letter or digit",
    IDENTIFIER_PATTERN: "a Python identifier (letters, digits and '_', not starting with a digit)",
    EMAIL_PATTERN: "an email address",
}


def _issue_from_pydantic(loc: Loc, error: Any) -> _Issue:
    """One pydantic error to an issue with a readable message."""
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        return _Issue(loc, f"unknown key {loc[-1]!r}{hint}. Remove it or fix its spelling")
    if kind == "missing":
        return _Issue(loc, f"missing required key {loc[-1]!r}")
    found = error.get("input")
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        rule = _PATTERN_RULES.get(pattern, f"a value matching {pattern}")
        if loc and loc[-1] == "[key]":
            return _Issue(loc, f"{_field_path(loc)}invalid name {found!r}: expected {rule}")
        return _Issue(loc, f"{_field_path(loc)}expected {rule} (found {found!r})")
    message = _field_path(loc) + str(error["msg"]).removeprefix("Value error, ")
    if kind not in {"value_error", "assertion_error"} and not isinstance(found, (dict, list)):
        message = f"{message} (found {found!r})"
    return _Issue(loc, message)


def _field_path(loc: Loc) -> str:
    """``schedule.cron: `` for the part of ``loc`` below the job or task."""
    rest = list(loc)
    if rest[:1] == ["jobs"]:
        rest = rest[2:]
        if len(rest) >= 2 and rest[0] == "tasks" and isinstance(rest[1], int):
            rest = rest[2:]
    if rest and rest[-1] == "[key]":
        rest = rest[:-2]
    text = ""
    for part in rest:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return f"{text}: " if text else ""


def _is_type_tag(part: str | int) -> bool:
    """pydantic adds union member names (``str``, ``function-after[...]``) to locations."""
    return isinstance(part, str) and (
        part in {"str", "int", "float", "bool", "none"} or "[" in part and part != "[key]"
    )


def _allowed_keys(loc: Loc) -> list[str]:
    """Field names of the model found at ``loc`` in :class:`JobsFile`, if any."""
    annotation: Any = JobsFile
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return []
    model = _model_in(annotation)
    return list(model.model_fields) if model else []


def _step(annotation: Any, part: str | int) -> Any:
    """The annotation one location step below ``annotation``."""
    model = _model_in(annotation)
    if model is not None:
        field = model.model_fields.get(str(part))
        return field.annotation if field else None
    for arg in _union_args(annotation):
        origin = typing.get_origin(arg)
        if origin is list and isinstance(part, int):
            return typing.get_args(arg)[0]
        if origin is dict and isinstance(part, str):
            return typing.get_args(arg)[1]
    return None


def _union_args(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return list(typing.get_args(annotation))
    return [annotation]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for arg in _union_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


# --- cross-field checks ---------------------------------------------------------------


def _check_job(name: str, job: Job, root: Path) -> list[_Issue]:
    """Checks pydantic cannot do alone: names, references, dependencies, files."""
    base: Loc = ("jobs", name)
    issues = _check_parameters(base, job) + _check_schedule(base, job) + _check_health(base, job)
    graph_ok = True
    keys = [task.task_key for task in job.tasks]
    parameter_names = {p.name for p in job.parameters}
    for index, task in enumerate(job.tasks):
        loc = (*base, "tasks", index)
        if keys.index(task.task_key) != index:
            graph_ok = False
            first = keys.index(task.task_key) + 1
            issues.append(
                _Issue(
                    (*loc, "task_key"),
                    f"duplicate task_key {task.task_key!r} (task #{first} has it too); "
                    "task keys must be unique in a job",
                )
            )
        dependency_issues = _check_dependencies(loc, task.upstream, keys, task.task_key)
        graph_ok = graph_ok and not dependency_issues
        issues += dependency_issues
        if task.depends_on == [] and task.run_if.value != "ALL_SUCCESS":
            issues.append(_Issue((*loc, "run_if"), "run_if needs depends_on: this task has no dependencies"))
        if task.notebook is not None:
            issues += _check_notebook((*loc, "notebook"), task.notebook, root)
        where = ("parameters",) if task.run_job_task is None else ("run_job_task", "job_parameters")
        for key, value in task.declared_parameters.items():
            if isinstance(value, str):
                problems = templates.check(value, parameters=parameter_names)
                issues += [_Issue((*loc, *where, key), p.message) for p in problems]
    if graph_ok:
        cycle = find_cycle({task.task_key: task.upstream for task in job.tasks})
        if cycle:
            index = keys.index(cycle[0])
            issues.append(
                _Issue(
                    (*base, "tasks", index, "depends_on"),
                    "dependency cycle: " + " -> ".join(cycle) + " (each task depends on the "
                    "next); remove one of these depends_on entries",
                )
            )
    return issues


def _check_parameters(base: Loc, job: Job) -> list[_Issue]:
    """Job parameters: unique names; defaults only use run-level references."""
    issues: list[_Issue] = []
    names = [p.name for p in job.parameters]
    for index, parameter in enumerate(job.parameters):
        loc = (*base, "parameters", index)
        if names.index(parameter.name) != index:
            issues.append(_Issue((*loc, "name"), f"duplicate job parameter {parameter.name!r}"))
        if parameter.default is not None:
            problems = templates.check(
                parameter.default, parameters=set(), allow_parameters=False, allow_task=False
            )
            issues += [_Issue((*loc, "default"), p.message) for p in problems]
    return issues


def _check_schedule(base: Loc, job: Job) -> list[_Issue]:
    """The cron or Quartz expression is one the scheduler can evaluate."""
    if job.schedule is None:
        return []
    from lakehouse.jobs.cron import ScheduleError, cron_expression

    try:
        cron_expression(job.schedule)
    except ScheduleError as exc:
        field = "cron" if job.schedule.cron is not None else "quartz_cron_expression"
        hint = "; see `man 5 crontab` for the syntax" if field == "cron" else ""
        return [_Issue((*base, "schedule", field), f"{exc}{hint}")]
    return []


def _check_health(base: Loc, job: Job) -> list[_Issue]:
    """Duration warnings need a health rule to compare with."""
    wanted = [
        (kind, notifications.on_duration_warning_threshold_exceeded)
        for kind, notifications in (
            ("email_notifications", job.email_notifications),
            ("webhook_notifications", job.webhook_notifications),
        )
        if notifications is not None
    ]
    return [
        _Issue(
            (*base, kind, "on_duration_warning_threshold_exceeded"),
            f"{kind}.on_duration_warning_threshold_exceeded needs a threshold: add to the job "
            "health: {rules: [{metric: RUN_DURATION_SECONDS, op: GREATER_THAN, value: SECONDS}]}",
        )
        for kind, targets in wanted
        if targets and job.duration_warning_seconds is None
    ]


def _check_dependencies(loc: Loc, upstream: list[str], keys: list[str], own: str) -> list[_Issue]:
    """depends_on: known tasks, not itself, no repeats."""
    issues: list[_Issue] = []
    for index, dep in enumerate(upstream):
        dep_loc = (*loc, "depends_on", index, "task_key")
        if dep == own:
            issues.append(_Issue(dep_loc, f"depends_on: task {own!r} depends on itself"))
        elif dep not in keys:
            issues.append(
                _Issue(
                    dep_loc,
                    f"depends_on names unknown task {dep!r}; tasks of this job: {', '.join(keys)}",
                )
            )
        elif upstream.index(dep) != index:
            issues.append(_Issue(dep_loc, f"depends_on lists {dep!r} twice"))
    return issues


def _check_run_job_tasks(jobs_file: JobsFile) -> list[_Issue]:
    """``run_job_task``: a job of the same file, with parameters it declares, and no
    chain of jobs that runs itself."""
    issues: list[_Issue] = []
    children: dict[str, list[str]] = {name: [] for name in jobs_file.jobs}
    for name, job in jobs_file.jobs.items():
        for index, task in enumerate(job.tasks):
            if task.run_job_task is None:
                continue
            loc: Loc = ("jobs", name, "tasks", index, "run_job_task")
            child = task.run_job_task.job_name
            if child not in jobs_file.jobs:
                known = ", ".join(jobs_file.jobs)
                issues.append(
                    _Issue((*loc, "job_name"), f"run_job_task names unknown job {child!r} (jobs: {known})")
                )
                continue
            children[name].append(child)
            declared = {p.name for p in jobs_file.jobs[child].parameters}
            for key in task.run_job_task.job_parameters:
                if key not in declared:
                    issues.append(
                        _Issue(
                            (*loc, "job_parameters", key),
                            f"job {child!r} has no parameter {key!r} (its parameters: "
                            f"{', '.join(sorted(declared)) or 'none'})",
                        )
                    )
    cycle = find_cycle(children)
    if cycle:
        issues.append(
            _Issue(
                ("jobs", cycle[0]), "run_job_task cycle: " + " -> ".join(cycle) + " (each job runs the next)"
            )
        )
    return issues


def _check_notebook(loc: Loc, notebook: str, root: Path) -> list[_Issue]:
    """The notebook is an existing ``.ipynb`` file."""
    if not notebook.endswith(".ipynb"):
        return [_Issue(loc, f"notebook {notebook!r} must be a .ipynb file")]
    path = root / notebook
    if not path.is_file():
        return [
            _Issue(
                loc,
                f"notebook file not found: {notebook} (looked for {path}; notebook paths "
                f"are relative to the project root {root})",
            )
        ]
    return []


# --- positions ------------------------------------------------------------------------


def _describe_all(path: Path, document: Any, plain: Any, issues: list[_Issue]) -> list[str]:
    """``file:line: job 'x', task 'y': message`` for each issue, in line order."""
    described = []
    for issue in issues:
        line = _line_of(document, issue.loc)
        where = f"{path}:{line}" if line else str(path)
        described.append((line or 0, f"{where}: {_context(plain, issue.loc)}{issue.message}"))
    return [text for _, text in sorted(described, key=lambda item: item[0])]


def _context(plain: Any, loc: Loc) -> str:
    """``job 'daily', task 'bronze': `` from a location."""
    if len(loc) < 2 or loc[0] != "jobs":
        return ""
    parts = [f"job {loc[1]!r}"]
    if len(loc) >= 4 and loc[2] == "tasks" and isinstance(loc[3], int):
        try:
            key = plain["jobs"][loc[1]]["tasks"][loc[3]].get("task_key")
        except (KeyError, IndexError, TypeError, AttributeError):
            key = None
        parts.append(f"task {key!r}" if isinstance(key, str) else f"task #{loc[3] + 1}")
    return ", ".join(parts) + ": "


def _line_of(document: Any, loc: Loc) -> int | None:
    """1-based line of the deepest node of ``loc`` found in the ruamel document."""
    node, line = document, None
    for part in loc:
        if part == "[key]":
            break
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    if line is None and isinstance(document, CommentedMap):
        line = document.lc.line + 1
    return line


def _attach_positions(jobs_file: JobsFile, document: Any, path: Path, root: Path) -> None:
    """Record names, lines, source file and project root on the validated models."""
    jobs_file._source = path
    jobs_file._project_root = root
    for name, job in jobs_file.jobs.items():
        job._name = name
        job._line = _line_of(document, ("jobs", name))
        for index, task in enumerate(job.tasks):
            task._line = _line_of(document, ("jobs", name, "tasks", index))
