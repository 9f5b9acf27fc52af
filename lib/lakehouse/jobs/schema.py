"""The ``jobs.yaml`` schema: jobs of notebook tasks, in the vocabulary of Databricks jobs.

Structural rules live here (pydantic, unknown keys forbidden everywhere). Rules that span
several fields or the file system (unknown ``depends_on``, cycles, undefined parameter
references, missing notebooks) are checked by :func:`lakehouse.jobs.loader.load_jobs`,
which also names the file and line of each problem.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

JobName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
TaskKey = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]


def _to_text(value: Any) -> Any:
    """YAML scalars to the string a job parameter holds (``true``, ``5``, ``2026-11-26``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _date_to_text(value: Any) -> Any:
    """YAML dates (``2026-11-26`` unquoted) to ISO strings; other scalars unchanged."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


ParameterText = Annotated[str, BeforeValidator(_to_text, json_schema_input_type=str | int | float | bool)]
TaskParameterValue = Annotated[
    str | bool | int | float | None,
    BeforeValidator(_date_to_text, json_schema_input_type=str | bool | int | float | None),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, use_attribute_docstrings=True)


class RunIf(str, Enum):
    """When a task runs, given the outcomes of the tasks it depends on."""

    ALL_SUCCESS = "ALL_SUCCESS"
    ALL_DONE = "ALL_DONE"
    AT_LEAST_ONE_SUCCESS = "AT_LEAST_ONE_SUCCESS"
    NONE_FAILED = "NONE_FAILED"
    ALL_FAILED = "ALL_FAILED"
    AT_LEAST_ONE_FAILED = "AT_LEAST_ONE_FAILED"


class JobParameter(_Model):
    """A job parameter; tasks read it as ``{{job.parameters.<name>}}``."""

    name: Identifier
    """Parameter name (a Python identifier)."""
    default: ParameterText | None = None
    """Value used when the run does not set it. Without a default the parameter is
    required at run time (``--param name=value``). May use ``{{job.start_time.iso_date}}``,
    ``{{job.run_id}}`` and ``{{job.name}}``."""


class TaskDependency(_Model):
    """One upstream task."""

    task_key: TaskKey
    """``task_key`` of a task of the same job."""


class RunJobTask(_Model):
    """Run another job of the same file as one task (Databricks' ``run_job_task``)."""

    job_name: JobName
    """The job to run; its run gets its own folder ``runs/<job_name>/<parent run id>-<task_key>``."""
    job_parameters: dict[Identifier, TaskParameterValue] = Field(default_factory=dict)
    """Values of the child job's parameters; strings may hold references such as
    ``{{job.parameters.run_date}}``. Parameters not given take the child's defaults."""


class Task(_Model):
    """A notebook executed by papermill in its own kernel, or a whole other job."""

    task_key: TaskKey
    """Unique name of the task in its job (letters, digits, ``_``, ``-``, ``.``)."""
    description: str = ""
    notebook: str | None = Field(None, min_length=1)
    """Path of the ``.ipynb`` file, relative to the project root."""
    run_job_task: RunJobTask | None = None
    """Instead of a notebook: run this job (its tasks, retries and timeouts) as the task."""
    parameters: dict[Identifier, TaskParameterValue] = Field(default_factory=dict)
    """Values injected into the notebook's ``parameters`` cell; strings may hold
    references such as ``{{job.parameters.run_date}}``."""
    depends_on: list[TaskDependency] = Field(default_factory=list)
    """Tasks that must finish first."""
    run_if: RunIf = RunIf.ALL_SUCCESS
    """Condition on the outcomes of ``depends_on`` tasks (only with ``depends_on``)."""
    timeout_seconds: int = Field(0, ge=0)
    """Wall-clock limit of one attempt; the kernel is killed when it is reached. 0: none."""
    max_retries: int = Field(0, ge=0)
    """Extra attempts after a failed one."""
    retry_interval_seconds: float = Field(0, ge=0)
    """Wait between attempts."""
    retry_on_timeout: bool = False
    """Retry an attempt that timed out (by default a timeout is final)."""
    kernel: str | None = None
    """Jupyter kernel name; by default the notebook's own kernelspec."""

    _line: int | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _notebook_or_job(self) -> Task:
        if (self.notebook is None) == (self.run_job_task is None):
            raise ValueError("set exactly one of notebook and run_job_task")
        if self.run_job_task is not None and self.parameters:
            raise ValueError("a run_job_task takes run_job_task.job_parameters, not parameters")
        return self

    @property
    def target(self) -> str:
        """What the task runs, for records and messages: the notebook or ``job:<name>``."""
        return self.notebook or f"job:{self.run_job_task.job_name}"  # type: ignore[union-attr]

    @property
    def declared_parameters(self) -> dict[str, str | bool | int | float | None]:
        """The notebook's parameters, or the child job's."""
        return self.run_job_task.job_parameters if self.run_job_task else self.parameters

    @property
    def upstream(self) -> list[str]:
        """The ``task_key`` of each dependency, in declaration order."""
        return [dep.task_key for dep in self.depends_on]

    @property
    def line(self) -> int | None:
        """Line of the task in its jobs file (1-based), when loaded from a file."""
        return self._line


class Schedule(_Model):
    """When the job runs on its own: ``lakehouse jobs scheduler`` starts it at each fire
    time (see :mod:`lakehouse.jobs.scheduler` for the catch-up policy)."""

    quartz_cron_expression: str | None = None
    """Quartz syntax with seconds, e.g. ``0 30 6 * * ?`` (06:30 daily)."""
    cron: str | None = None
    """Classic 5-field cron, e.g. ``30 6 * * *``."""
    timezone: str = "UTC"
    """IANA time zone name, e.g. ``Europe/Paris``."""
    pause_status: Literal["PAUSED", "UNPAUSED"] = "UNPAUSED"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like Europe/Paris") from None
        return value

    @model_validator(mode="after")
    def _one_expression(self) -> Schedule:
        if (self.quartz_cron_expression is None) == (self.cron is None):
            raise ValueError("set exactly one of quartz_cron_expression and cron")
        if self.cron is not None and len(self.cron.split()) != 5:
            raise ValueError(f"cron {self.cron!r} must have 5 fields (min hour day month weekday)")
        quartz = self.quartz_cron_expression
        if quartz is not None and len(quartz.split()) not in (6, 7):
            raise ValueError(
                f"quartz_cron_expression {quartz!r} must have 6 or 7 fields "
                "(sec min hour day month weekday [year])"
            )
        return self


EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+$"
Email = Annotated[str, StringConstraints(pattern=EMAIL_PATTERN)]


class EmailNotifications(_Model):
    """Addresses to e-mail when a run starts, succeeds, fails (FAILED or CANCELED) or
    runs longer than the job's ``health`` rule. Sent through the SMTP server of
    ``notifications.smtp`` in ``conf/``; a sending failure is logged and recorded in
    ``run.json``, never fails the run."""

    on_start: list[Email] = Field(default_factory=list)
    on_success: list[Email] = Field(default_factory=list)
    on_failure: list[Email] = Field(default_factory=list)
    on_duration_warning_threshold_exceeded: list[Email] = Field(default_factory=list)
    """Needs a job ``health`` rule on ``RUN_DURATION_SECONDS``."""
    no_alert_for_skipped_runs: bool = False
    """Accepted for Databricks compatibility; runs are never skipped with an alert here
    (the scheduler logs fires it skips because of ``max_concurrent_runs``)."""


class Webhook(_Model):
    """A webhook destination: ``url`` receives an HTTP POST with a JSON body."""

    url: str = Field(pattern=r"^https?://\S+$")
    """``http://`` or ``https://`` URL."""

    @model_validator(mode="before")
    @classmethod
    def _no_destination_id(cls, value: Any) -> Any:
        if isinstance(value, dict) and "id" in value:
            raise ValueError(
                "webhook destination ids exist only in a Databricks workspace; give the URL "
                "instead: {url: https://...}"
            )
        return value


class WebhookNotifications(_Model):
    """Webhooks to call (HTTP POST, JSON body: job, run_id, state, failed tasks with
    their errors, run_dir, duration). Failures are logged and recorded, never fail the run."""

    on_start: list[Webhook] = Field(default_factory=list)
    on_success: list[Webhook] = Field(default_factory=list)
    on_failure: list[Webhook] = Field(default_factory=list)
    on_duration_warning_threshold_exceeded: list[Webhook] = Field(default_factory=list)
    """Needs a job ``health`` rule on ``RUN_DURATION_SECONDS``."""


class HealthRule(_Model):
    """A run health rule, as in Databricks: only the run duration is supported."""

    metric: Literal["RUN_DURATION_SECONDS"] = "RUN_DURATION_SECONDS"
    op: Literal["GREATER_THAN"] = "GREATER_THAN"
    value: float = Field(gt=0)
    """Seconds; past them the ``on_duration_warning_threshold_exceeded`` notifications
    are sent once, while the run goes on."""


class JobHealth(_Model):
    """Health rules of a job."""

    rules: list[HealthRule] = Field(min_length=1)


class Job(_Model):
    """A graph of notebook tasks run together."""

    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    parameters: list[JobParameter] = Field(default_factory=list)
    """Job parameters with their defaults; override at run time with ``--param``."""
    max_concurrent_runs: int = Field(1, ge=1)
    """Runs of this job allowed at the same time on this machine."""
    tasks: list[Task] = Field(min_length=1)
    schedule: Schedule | None = None
    email_notifications: EmailNotifications | None = None
    webhook_notifications: WebhookNotifications | None = None
    health: JobHealth | None = None
    """``rules: [{metric: RUN_DURATION_SECONDS, op: GREATER_THAN, value: 3600}]``: when a
    run lasts longer, ``on_duration_warning_threshold_exceeded`` notifications go out."""

    _name: str = PrivateAttr(default="")
    _line: int | None = PrivateAttr(default=None)

    @property
    def name(self) -> str:
        """The job's key in ``jobs:``."""
        return self._name

    @property
    def line(self) -> int | None:
        """Line of the job in its jobs file (1-based), when loaded from a file."""
        return self._line

    def task(self, task_key: str) -> Task:
        """Return the task named ``task_key``; ``KeyError`` names the known ones."""
        for task in self.tasks:
            if task.task_key == task_key:
                return task
        known = ", ".join(t.task_key for t in self.tasks)
        raise KeyError(f"job {self.name!r} has no task {task_key!r} (tasks: {known})")

    @property
    def duration_warning_seconds(self) -> float | None:
        """The smallest ``RUN_DURATION_SECONDS`` health threshold, if any."""
        if self.health is None:
            return None
        return min(rule.value for rule in self.health.rules)

    def parameter_defaults(self) -> dict[str, str | None]:
        """Parameter name to default (``None`` when required)."""
        return {p.name: p.default for p in self.parameters}


class JobsFile(_Model):
    """The whole ``jobs.yaml``."""

    jobs: dict[JobName, Job] = Field(default_factory=dict)
    """Jobs by name."""

    _source: Path | None = PrivateAttr(default=None)
    _project_root: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The file this was loaded from."""
        return self._source

    @property
    def project_root(self) -> Path | None:
        """Folder that task notebook paths are relative to."""
        return self._project_root

    def job(self, name: str) -> Job:
        """Return the job ``name``; ``KeyError`` lists the jobs of the file."""
        try:
            return self.jobs[name]
        except KeyError:
            known = ", ".join(self.jobs) or "none"
            where = f" in {self._source}" if self._source else ""
            raise KeyError(f"no job {name!r}{where}; jobs: {known}") from None

    def where(self, task: Task | Job) -> str:
        """``file:line`` of a task or job, for messages."""
        source = str(self._source) if self._source else "jobs.yaml"
        return f"{source}:{task.line}" if task.line else source


def json_schema() -> dict[str, Any]:
    """JSON Schema of ``jobs.yaml`` for editors (e.g. the YAML language server)."""
    schema = JobsFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Lakehouse jobs.yaml"
    return schema


def write_json_schema(path: str | Path) -> Path:
    """Write the JSON Schema of ``jobs.yaml`` to ``path``; return the path.

    Point editors at it with a first line ``# yaml-language-server: $schema=<path>``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_schema(), indent=2) + "\n", encoding="utf-8")
    return path
