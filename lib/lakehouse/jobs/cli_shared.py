"""What the ``lakehouse jobs`` commands share: the jobs file and parameter options, and
loading the settings and the jobs file or exiting with the error."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console

from lakehouse.config import ConfigError, Settings, find_project_root, load_settings
from lakehouse.jobs.loader import JobsError, load_jobs
from lakehouse.jobs.schema import JobsFile

JOBS_FILE = "jobs.yaml"
file_option = click.option(
    "--file",
    "-f",
    "file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Jobs file. Default: {JOBS_FILE} in the project root.",
)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code``."""
    click.echo(message, err=True)
    sys.exit(code)


def stdout_console() -> Console:
    """Rich console for stdout; wide when piped so paths and run ids stay whole."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def project_root_or_exit() -> Path:
    """The project root, or exit 1 saying why it cannot be found."""
    try:
        return find_project_root()
    except ConfigError as exc:
        fail(f"error: {exc}")


def settings_or_exit() -> Settings:
    """The settings, or exit 1 with the configuration error."""
    try:
        return load_settings()
    except ConfigError as exc:
        fail(f"error: {exc}")


def load_or_exit(file: Path | None, project_root: Path) -> JobsFile:
    """Load the jobs file or exit 1 with the validation errors."""
    try:
        return load_jobs(file or project_root / JOBS_FILE, project_root=project_root)
    except JobsError as exc:
        fail(f"error: {exc}")


def parse_params(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """``('a=1', 'b=x=y')`` to ``{'a': '1', 'b': 'x=y'}``."""
    parsed: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", ctx=ctx, param=param)
        parsed[name.strip()] = value
    return parsed


params_option = click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    callback=parse_params,
    help="Set a job parameter (repeatable); overrides its default in jobs.yaml.",
)


max_parallel_option = click.option(
    "--max-parallel",
    type=click.IntRange(min=1),
    default=None,
    help="Independent tasks run at the same time (each has its own kernel).",
)
