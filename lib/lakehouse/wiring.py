"""What job runs need from the rest of the application, registered with
:mod:`lakehouse.jobs.hooks` (the jobs package knows neither PostgreSQL nor governance).

Importing ``lakehouse`` loads this module, so the hooks are there wherever a run starts:
``lakehouse jobs run | repair | backfill``, the runs the scheduler starts (``lakehouse
jobs run`` processes), the tasks of an exported Airflow DAG (``lakehouse jobs
run-task``), the child process of a ``run_job_task`` and any code calling ``run_job``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakehouse.jobs import hooks

if TYPE_CHECKING:
    from lakehouse.config import Settings
    from lakehouse.jobs.records import JobRun
    from lakehouse.jobs.services import RunServices


def embedded_postgres(settings: Settings) -> str | None:
    """Start the embedded PostgreSQL (if configured) and keep it up while this process
    lives: the task kernels connect to the same server."""
    if settings.postgres.mode != "embedded":
        return None
    from lakehouse.postgres import ensure_server

    try:
        ensure_server(settings)
    except Exception as exc:
        raise RuntimeError(
            f"cannot start the embedded PostgreSQL ({settings.postgres_data_dir}): {exc}"
        ) from exc
    return f"embedded PostgreSQL up (data in {settings.postgres_data_dir})"


def audit_job_run(run: JobRun, services: RunServices) -> None:
    """The run's entry in the audit trail (``job.run``), in the lake of its run history."""
    from lakehouse.governance.audit import record_job_run

    record_job_run(run, services)


hooks.add_service(embedded_postgres)
hooks.add_run_listener(audit_job_run)
