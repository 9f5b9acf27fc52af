"""Dynamic value references in task parameters, in the vocabulary of Databricks jobs.

A reference is ``{{job.parameters.run_date}}`` (spaces inside the braces are allowed).
Supported references:

* ``job.parameters.<name>``: a job parameter (its default or the value given at run time)
* ``job.name``, ``job.run_id``
* ``job.start_time.<field>``: the run's start in UTC; ``<field>`` is one of
  :data:`START_TIME_FIELDS` (``iso_date`` is ``2026-11-26``)
* ``task.name``: the task's ``task_key``

Job parameter defaults may use every reference except ``job.parameters.*`` and ``task.*``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

REFERENCE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_PARAMETER_REF = re.compile(r"^job\.parameters\.([A-Za-z_][A-Za-z0-9_]*)$")
START_TIME_FIELDS = (
    "iso_date",
    "iso_datetime",
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "timestamp_ms",
    "iso_weekday",
    "is_weekday",
)
FIXED_REFERENCES = (
    "job.name",
    "job.run_id",
    "task.name",
    *(f"job.start_time.{field}" for field in START_TIME_FIELDS),
)
SYNTAX_HELP = (
    "write references as {{job.parameters.NAME}}, {{job.name}}, {{job.run_id}}, "
    "{{task.name}} or {{job.start_time.iso_date}}"
)


@dataclass(frozen=True)
class TemplateProblem:
    """One problem in a string holding references; ``message`` says how to fix it."""

    message: str


def references(text: str) -> list[str]:
    """Return the references in ``text`` (without braces or spaces), in order."""
    return [match.group(1) for match in REFERENCE.finditer(text)]


def parameter_name(reference: str) -> str | None:
    """Return ``x`` for ``job.parameters.x``; ``None`` for any other reference."""
    match = _PARAMETER_REF.match(reference)
    return match.group(1) if match else None


def check(
    text: str, *, parameters: set[str], allow_parameters: bool = True, allow_task: bool = True
) -> list[TemplateProblem]:
    """Check the references in ``text``: well formed, known, naming defined parameters."""
    problems: list[TemplateProblem] = []
    leftover = REFERENCE.sub("", text)
    if "{{" in leftover or "}}" in leftover:
        problems.append(
            TemplateProblem(f"malformed reference in {text!r}: unbalanced '{{{{' or '}}}}'; {SYNTAX_HELP}")
        )
    for ref in references(text):
        name = parameter_name(ref)
        if name is not None:
            if not allow_parameters:
                problems.append(
                    TemplateProblem(
                        f"{{{{{ref}}}}} is not allowed here: a job parameter default cannot "
                        "reference job parameters"
                    )
                )
            elif name not in parameters:
                known = ", ".join(sorted(parameters)) or "none"
                problems.append(
                    TemplateProblem(
                        f"{{{{{ref}}}}} references undefined job parameter {name!r} "
                        f"(defined: {known}); add it to the job's parameters or fix the name"
                    )
                )
        elif ref == "task.name" and not allow_task:
            problems.append(TemplateProblem("{{task.name}} is not allowed in a job parameter default"))
        elif ref not in FIXED_REFERENCES:
            problems.append(TemplateProblem(f"unknown reference {{{{{ref}}}}}; {SYNTAX_HELP}"))
    return problems


def start_time_values(start: dt.datetime) -> dict[str, str]:
    """Return the ``job.start_time.*`` references for a run started at ``start`` (UTC)."""
    start = start.astimezone(dt.UTC)
    return {
        "job.start_time.iso_date": start.date().isoformat(),
        "job.start_time.iso_datetime": start.replace(microsecond=0).isoformat(),
        "job.start_time.year": str(start.year),
        "job.start_time.month": str(start.month),
        "job.start_time.day": str(start.day),
        "job.start_time.hour": str(start.hour),
        "job.start_time.minute": str(start.minute),
        "job.start_time.second": str(start.second),
        "job.start_time.timestamp_ms": str(int(start.timestamp() * 1000)),
        "job.start_time.iso_weekday": str(start.isoweekday()),
        "job.start_time.is_weekday": "true" if start.isoweekday() <= 5 else "false",
    }


def render(text: str, values: Mapping[str, str]) -> str:
    """Replace every reference in ``text`` by its value in ``values`` (keys as in
    ``job.parameters.x``). Raises ``KeyError`` naming a reference without a value."""

    def _value(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref not in values:
            raise KeyError(f"no value for {{{{{ref}}}}}")
        return values[ref]

    return REFERENCE.sub(_value, text)
