"""Alert on failed *warning* expectations without failing anything.

The severity policy: a failed critical expectation fails the quality gate (and so the
job, whose ``on_failure`` notifications go out, and ``pipeline_load_bi``); a failed
warning only alerts. That alert goes to the ``on_failure`` destinations of the job the
gate runs in (``webhook_notifications`` / ``email_notifications`` of jobs.yaml), as an
``on_quality_warning`` event, while the task and the job succeed.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from lakehouse.config import Settings
from lakehouse.jobs.records import NotificationRecord
from lakehouse.quality.results import describe_failure, failed_expectations, read_results

EVENT = "on_quality_warning"


def warning_alert(path: str, run_date: dt.date, *, job: str, run_id: str) -> dict[str, Any] | None:
    """The alert body for the failed warnings of ``run_date``'s latest quality run, or
    ``None`` when every warning passed."""
    failed = failed_expectations(read_results(path), run_date, severities=("warning",))
    if failed.empty:
        return None
    details = [describe_failure(row).strip() for row in failed.to_dict("records")]
    return {
        "event": EVENT,
        "job": job,
        "run_id": run_id,
        "run_date": run_date.isoformat(),
        "summary": f"{len(details)} failed warning expectation(s) on {run_date}",
        "details": details,
        "results": path,
    }


def notify_warnings(settings: Settings, path: str, run_date: dt.date) -> list[NotificationRecord]:
    """Send the warning alert of ``run_date`` through the running job's on_failure
    destinations (the job runner names the job in ``LAKEHOUSE_JOB``); ``[]`` when there
    is nothing to say or no job to say it for (a notebook run by hand)."""
    from lakehouse.jobs import load_jobs
    from lakehouse.jobs.notify import Notifier

    job_name = os.environ.get("LAKEHOUSE_JOB")
    if not job_name:
        return []
    body = warning_alert(path, run_date, job=job_name, run_id=os.environ.get("LAKEHOUSE_RUN_ID", ""))
    if body is None:
        return []
    home = Path(os.environ.get("LAKEHOUSE_HOME") or settings.project_root)
    job = load_jobs(home / "jobs.yaml", project_root=home).job(job_name)
    return Notifier(job, settings.notifications.smtp).alert(body)
