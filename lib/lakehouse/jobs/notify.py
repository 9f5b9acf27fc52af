"""Job notifications: ``email_notifications`` and ``webhook_notifications`` of
``jobs.yaml``, in Databricks' shape.

Events: ``on_start`` (before the first task), ``on_success``, ``on_failure`` (the run
ended FAILED or CANCELED) and ``on_duration_warning_threshold_exceeded`` (once, while
the run goes on, when it lasts longer than the job's ``health`` rule).

* webhook: HTTP POST of :func:`payload` as JSON (``Content-Type: application/json``)
* e-mail: one plain-text message per event to all its addresses, through the SMTP
  server of ``notifications.smtp`` in ``conf/`` (password from
  ``LAKEHOUSE_NOTIFICATIONS__SMTP__PASSWORD``; never logged nor recorded)

A notification that cannot be sent is logged as a warning and recorded in the run's
``notifications`` with its error; it never changes the run's state.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage
from typing import Any

from lakehouse.config import SmtpSettings
from lakehouse.jobs.records import JobRun, JobState, NotificationRecord, TaskState
from lakehouse.jobs.schema import Job

log = logging.getLogger(__name__)

ON_START = "on_start"
ON_SUCCESS = "on_success"
ON_FAILURE = "on_failure"
ON_DURATION_WARNING = "on_duration_warning_threshold_exceeded"
EVENTS = (ON_START, ON_SUCCESS, ON_FAILURE, ON_DURATION_WARNING)
TIMEOUT_SECONDS = 10.0


def final_event(run: JobRun) -> str:
    """``on_success`` or ``on_failure`` for a finished run."""
    return ON_SUCCESS if run.state == JobState.SUCCESS else ON_FAILURE


def has_targets(job: Job, event: str) -> bool:
    """Whether the job has any address or webhook for ``event``."""
    return bool(_emails(job, event) or _webhooks(job, event))


def payload(run: JobRun, event: str) -> dict[str, Any]:
    """The JSON body of a webhook (and the facts of an e-mail)."""
    now = dt.datetime.now(dt.UTC)
    duration = run.duration_seconds
    if duration is None:
        duration = round((now - run.start_time).total_seconds(), 3)
    failed = [t for t in run.tasks.values() if t.state in (TaskState.FAILED, TaskState.TIMED_OUT)]
    return {
        "event": event,
        "job": run.job,
        "run_id": run.run_id,
        "state": run.state.value,
        "trigger": run.trigger,
        "repair_of": run.repair_of,
        "host": run.host,
        "run_dir": run.run_dir,
        "params": run.params,
        "start_time": run.start_time.isoformat(),
        "end_time": run.end_time.isoformat() if run.end_time else None,
        "duration_seconds": duration,
        "failed_tasks": [
            {
                "task_key": t.task_key,
                "state": t.state.value,
                "notebook": t.notebook,
                "output_notebook": t.output_notebook,
                "error": t.error,
            }
            for t in failed
        ],
        "tasks": {key: t.state.value for key, t in run.tasks.items()},
        "error": run.error,
    }


class Notifier:
    """Sends a job's notifications for its runs; never raises."""

    def __init__(
        self,
        job: Job,
        smtp: SmtpSettings | None,
        *,
        smtp_problem: str | None = None,
        timeout_seconds: float = TIMEOUT_SECONDS,
    ) -> None:
        self.job = job
        self.smtp = smtp
        self.smtp_problem = smtp_problem
        self.timeout_seconds = timeout_seconds

    def notify(self, run: JobRun, event: str) -> list[NotificationRecord]:
        """Send ``event`` for ``run`` to every target; return one record per message."""
        records: list[NotificationRecord] = []
        body = payload(run, event)
        for url in _webhooks(self.job, event):
            records.append(
                self._send(event, "webhook", redact_url(url), lambda url=url: self._post(url, body))
            )
        emails = _emails(self.job, event)
        if emails:
            records.append(self._send(event, "email", ", ".join(emails), lambda: self._mail(emails, body)))
        return records

    def alert(self, body: dict[str, Any], *, destinations: str = ON_FAILURE) -> list[NotificationRecord]:
        """Send ``body`` (which names its own ``event``) to the job's ``destinations``
        targets, outside the run's own events: how a task reports something people must
        know (e.g. failed quality warnings) without failing the run."""
        event = str(body["event"])
        records = [
            self._send(event, "webhook", redact_url(url), lambda url=url: self._post(url, body))
            for url in _webhooks(self.job, destinations)
        ]
        emails = _emails(self.job, destinations)
        if emails:
            records.append(self._send(event, "email", ", ".join(emails), lambda: self._mail(emails, body)))
        return records

    def _send(self, event: str, channel: str, target: str, send: Any) -> NotificationRecord:
        try:
            send()
        except Exception as exc:  # any failure is recorded, never raised
            error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "job %s: %s notification %s to %s not sent: %s", self.job.name, channel, event, target, error
            )
            return NotificationRecord(
                event=event, channel=channel, target=target, time=_now(), ok=False, error=error
            )
        return NotificationRecord(event=event, channel=channel, target=target, time=_now(), ok=True)

    def _post(self, url: str, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "lakehouse-jobs"},
        )
        with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
            response.read()

    def _mail(self, recipients: list[str], body: dict[str, Any]) -> None:
        smtp = self.smtp
        if smtp is None:
            raise RuntimeError(
                self.smtp_problem
                or "no SMTP server configured: set notifications.smtp (host, port, from, user) in "
                "conf/local/lakehouse.yaml and the password in LAKEHOUSE_NOTIFICATIONS__SMTP__PASSWORD"
            )
        message = email_message(body, sender=smtp.from_address, recipients=recipients)
        timeout = min(smtp.timeout_seconds, self.timeout_seconds)
        if smtp.ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
        with client:
            if smtp.starttls and not smtp.ssl:
                client.starttls(context=ssl.create_default_context())
            if smtp.user:
                client.login(smtp.user, smtp.password.get_secret_value())
            client.send_message(message)


def email_message(body: dict[str, Any], *, sender: str, recipients: list[str]) -> EmailMessage:
    """A plain-text message: subject with the job, run and state; failed tasks in the body.
    An :meth:`Notifier.alert` body gives its own ``summary`` and ``details`` lines."""
    if "summary" in body:
        return _text_message(
            f"[lakehouse] job {body['job']} run {body['run_id']}: {body['summary']}",
            [body["summary"], "", *body.get("details", [])],
            sender=sender,
            recipients=recipients,
        )
    subjects = {
        ON_START: "started",
        ON_SUCCESS: "succeeded",
        ON_FAILURE: body["state"],
        ON_DURATION_WARNING: f"still running after {body['duration_seconds']:.0f}s",
    }
    failed = ", ".join(t["task_key"] for t in body["failed_tasks"])
    subject = f"[lakehouse] job {body['job']} run {body['run_id']} {subjects[body['event']]}"
    if failed:
        subject += f": {failed}"
    lines = [
        f"job:       {body['job']}",
        f"run:       {body['run_id']} ({body['trigger']})",
        f"state:     {body['state']}",
        f"started:   {body['start_time']}",
        f"duration:  {body['duration_seconds']:.1f}s",
        f"run folder: {body['run_dir']} (host {body['host']})",
        f"params:    {json.dumps(body['params'])}",
        "",
        "tasks:",
        *(f"  {key}: {state}" for key, state in body["tasks"].items()),
    ]
    for task in body["failed_tasks"]:
        lines += ["", f"task {task['task_key']} {task['state']}:", task["error"] or "(no message)"]
    if body["state"] in (JobState.FAILED.value, JobState.CANCELED.value):
        lines += ["", f"repair it: lakehouse jobs repair {body['run_id']}"]
    return _text_message(subject, lines, sender=sender, recipients=recipients)


def _text_message(subject: str, lines: list[str], *, sender: str, recipients: list[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message.set_content("\n".join(lines) + "\n")
    return message


def redact_url(url: str) -> str:
    """The URL without credentials, query string or fragment (they may hold tokens)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _emails(job: Job, event: str) -> list[str]:
    notifications = job.email_notifications
    return list(getattr(notifications, event)) if notifications is not None else []


def _webhooks(job: Job, event: str) -> list[str]:
    notifications = job.webhook_notifications
    return [hook.url for hook in getattr(notifications, event)] if notifications is not None else []


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
