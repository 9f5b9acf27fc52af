"""Notifications against real local servers: an HTTP server capturing webhook POSTs and
an aiosmtpd SMTP server capturing messages."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from lakehouse.jobs import JobsFileError, JobState, load_jobs, load_run, run_job
from tests.jobs.fakes import FakeExecutor

WriteJobs = Callable[[str], Path]
NB = "notebooks/write_params.ipynb"
PASSWORD = "s3cret-Pa55"


class WebhookServer:
    """``http.server`` on 127.0.0.1 in a thread; keeps the JSON bodies POSTed."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers["Content-Length"])
                server.paths.append(self.path)
                server.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> WebhookServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Mailbox:
    """aiosmtpd handler keeping the messages; logins are checked against PASSWORD."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword) and data.password.decode() == PASSWORD:
            self.logins.append(data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailbox]:
    """A real SMTP server with AUTH on 127.0.0.1; conf/ points at it, the password comes
    from the environment."""
    mailbox = Mailbox()
    port = _free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=mailbox.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    conf = project / "conf" / "base" / "lakehouse.yaml"
    conf.write_text(
        conf.read_text()
        + f"notifications:\n  smtp: {{host: 127.0.0.1, port: {port}, from: lakehouse@example.com, user: bot}}\n"
    )
    monkeypatch.setenv("LAKEHOUSE_NOTIFICATIONS__SMTP__PASSWORD", PASSWORD)
    yield mailbox
    controller.stop()


def test_failing_job_sends_email_and_webhook_on_failure(
    write_jobs: WriteJobs, smtp_server: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    with WebhookServer() as hooks:
        path = write_jobs(f"""
            jobs:
              job:
                email_notifications:
                  on_start: [start@example.com]
                  on_success: [ok@example.com]
                  on_failure: [ops@example.com, lead@example.com]
                webhook_notifications:
                  on_failure: [{{url: "{hooks.url}/hook/failure?token=abc"}}]
                  on_success: [{{url: "{hooks.url}/hook/success"}}]
                tasks:
                  - {{task_key: extract, notebook: {NB}}}
                  - {{task_key: load, notebook: {NB}, depends_on: [{{task_key: extract}}]}}
            """)
        with caplog.at_level(logging.DEBUG):
            run = run_job(
                path, "job", quiet=True, executor=FakeExecutor({"extract": ["fail"]}), run_id="R-fail"
            )
    assert run.state == JobState.FAILED
    [body] = hooks.bodies
    assert hooks.paths == ["/hook/failure?token=abc"]
    assert body["event"] == "on_failure" and body["job"] == "job" and body["run_id"] == "R-fail"
    assert body["state"] == "FAILED" and body["run_dir"] == run.run_dir
    assert body["duration_seconds"] >= 0 and body["tasks"] == {"extract": "FAILED", "load": "UPSTREAM_FAILED"}
    [failed] = body["failed_tasks"]
    assert failed["task_key"] == "extract" and "task 'extract' failed: boom" in failed["error"]

    start, failure = smtp_server.messages
    assert start["To"] == "start@example.com" and "started" in start["Subject"]
    assert failure["Subject"] == "[lakehouse] job job run R-fail FAILED: extract"
    assert failure["From"] == "lakehouse@example.com"
    assert smtp_server.envelopes[1] == ("lakehouse@example.com", ["ops@example.com", "lead@example.com"])
    text = failure.get_payload(decode=True).decode()
    assert "task extract FAILED:" in text and "task 'extract' failed: boom" in text
    assert "lakehouse jobs repair R-fail" in text
    assert smtp_server.logins == ["bot", "bot"]

    stored = load_run(run.run_dir)
    assert [(n.event, n.channel, n.ok) for n in stored.notifications] == [
        ("on_start", "email", True),
        ("on_failure", "webhook", True),
        ("on_failure", "email", True),
    ]
    assert stored.notifications[1].target == f"{hooks.url}/hook/failure", "query string (tokens) dropped"
    assert PASSWORD not in run.run_dir and PASSWORD not in Path(stored.record_path).read_text()
    assert PASSWORD not in caplog.text


def test_unreachable_targets_are_recorded_and_never_fail_the_job(
    write_jobs: WriteJobs, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{_free_port()}/nobody"
    with WebhookServer(status=500) as broken:
        path = write_jobs(f"""
            jobs:
              job:
                email_notifications: {{on_success: [ok@example.com]}}
                webhook_notifications:
                  on_success: [{{url: "{dead}"}}, {{url: "{broken.url}/x"}}]
                tasks:
                  - {{task_key: a, notebook: {NB}}}
            """)
        with caplog.at_level(logging.WARNING):
            run = run_job(path, "job", quiet=True, executor=FakeExecutor())
    assert run.state == JobState.SUCCESS
    refused, server_error, mail = run.notifications
    assert not refused.ok and "Connection refused" in (refused.error or "")
    assert not server_error.ok and "500" in (server_error.error or "")
    assert not mail.ok and "no SMTP server configured" in (mail.error or "")
    assert "not sent" in caplog.text


def test_duration_warning_is_sent_while_the_run_goes_on(write_jobs: WriteJobs) -> None:
    with WebhookServer() as hooks:
        path = write_jobs(f"""
            jobs:
              job:
                health: {{rules: [{{metric: RUN_DURATION_SECONDS, op: GREATER_THAN, value: 0.3}}]}}
                webhook_notifications:
                  on_duration_warning_threshold_exceeded: [{{url: "{hooks.url}/slow"}}]
                tasks:
                  - {{task_key: slow, notebook: {NB}}}
            """)
        run = run_job(path, "job", quiet=True, executor=FakeExecutor(delay=1.0))
    assert run.ok
    [body] = hooks.bodies
    assert body["event"] == "on_duration_warning_threshold_exceeded" and body["state"] == "RUNNING"
    assert body["duration_seconds"] >= 0.3


def test_notification_settings_are_validated(write_jobs: WriteJobs) -> None:
    path = write_jobs(f"""
        jobs:
          job:
            email_notifications: {{on_duration_warning_threshold_exceeded: [ops@example.com]}}
            webhook_notifications:
              on_failure: [{{id: "0481e838-0a59"}}, {{url: "ftp://example.com"}}]
            tasks:
              - {{task_key: a, notebook: {NB}}}
        """)
    with pytest.raises(JobsFileError) as info:
        load_jobs(path)
    problems = "\n".join(info.value.problems)
    assert "webhook destination ids exist only in a Databricks workspace; give the URL" in problems
    assert "jobs.yaml:5: job 'job': webhook_notifications.on_failure[1].url" in problems
    path.write_text(path.read_text().replace('{id: "0481e838-0a59"}, {url: "ftp://example.com"}', ""))
    with pytest.raises(JobsFileError, match=r"jobs.yaml:3: .*needs a threshold: add to the job health"):
        load_jobs(path)
