"""What happens around a run besides its tasks: notifications (start, end, duration
warning), the run history table and the listeners on a finished run the application
registered (:mod:`lakehouse.jobs.hooks`: the audit trail entry). Nothing here may change
a run's state: failures are logged as warnings and kept in the record."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from lakehouse.config import ConfigError, Settings, load_settings
from lakehouse.jobs import history, hooks, notify
from lakehouse.jobs.records import JobRun, write_run
from lakehouse.jobs.schema import Job

log = logging.getLogger(__name__)


@dataclass
class RunServices:
    """Notifications and run history of one run of ``job``."""

    job: Job
    settings: Settings | None = None
    record_history: bool = True
    notify: bool = True
    _settings_problem: str | None = field(default=None, init=False)
    _settings_loaded: bool = field(default=False, init=False)
    _timer: threading.Timer | None = field(default=None, init=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False)

    def started(self, run: JobRun, lock: threading.RLock) -> None:
        """Send ``on_start`` and arm the duration warning; never raises."""
        self._lock = lock
        try:
            if self.notify:
                self._send(run, notify.ON_START)
                self._arm_duration_warning(run)
        except Exception as exc:  # a bug here must not stop the run
            self._warn(run, f"notifications at start failed: {exc!r}")

    def finished(self, run: JobRun, lock: threading.RLock) -> None:
        """Write the history rows, send the final notifications, rewrite ``run.json``;
        never raises."""
        self._lock = lock
        if self._timer is not None:
            self._timer.cancel()
        if self.record_history:
            self._append_history(run)
        self._tell_listeners(run)
        if self.notify:
            try:
                self._send(run, notify.final_event(run))
            except Exception as exc:
                self._warn(run, f"notifications at the end failed: {exc!r}")
        with self._lock:
            write_run(run)

    # --- history ------------------------------------------------------------------

    def _append_history(self, run: JobRun) -> None:
        settings = self._load_settings()
        default_root = settings.lake_root if settings else None
        path = history.table_path(run, default_root)
        if path is None:
            self._warn(
                run,
                f"run history not written to the lake: no lake_root ({self._settings_problem}); "
                "set lake_root in conf/ or pass --param lake_root=...",
            )
            return
        try:
            history.append_run(run, path)
        except Exception as exc:  # the run's own outcome matters more
            self._warn(run, f"run history not written to {path}: {type(exc).__name__}: {exc}")

    def _tell_listeners(self, run: JobRun) -> None:
        """Call the registered listeners on the finished run; a failure is a warning."""
        for listener in hooks.run_listeners():
            try:
                listener(run, self)
            except Exception as exc:  # the run's own outcome matters more
                self._warn(
                    run, f"{getattr(listener, '__name__', listener)} failed: {type(exc).__name__}: {exc}"
                )

    # --- notifications --------------------------------------------------------------

    def _send(self, run: JobRun, event: str) -> None:
        """Send ``event`` on a snapshot of the record; record the outcomes."""
        if not notify.has_targets(self.job, event):
            return
        with self._lock:
            snapshot = run.model_copy(deep=True)
        notifier = self._notifier()
        records = notifier.notify(snapshot, event)
        with self._lock:
            run.notifications.extend(records)
            write_run(run)

    def _notifier(self) -> notify.Notifier:
        needs_smtp = any(getattr(self.job.email_notifications, event, None) for event in notify.EVENTS)
        settings = self._load_settings() if needs_smtp else None
        smtp = settings.notifications.smtp if settings else None
        problem = None
        if needs_smtp and settings is None:
            problem = f"cannot read the SMTP settings: {self._settings_problem}"
        return notify.Notifier(self.job, smtp, smtp_problem=problem)

    def _arm_duration_warning(self, run: JobRun) -> None:
        threshold = self.job.duration_warning_seconds
        if threshold is None or not notify.has_targets(self.job, notify.ON_DURATION_WARNING):
            return

        def fire() -> None:
            try:
                if run.end_time is None:
                    self._send(run, notify.ON_DURATION_WARNING)
            except Exception as exc:
                self._warn(run, f"duration warning not sent: {exc!r}")

        self._timer = threading.Timer(threshold, fire)
        self._timer.daemon = True
        self._timer.start()

    # --- helpers ----------------------------------------------------------------------

    def _load_settings(self) -> Settings | None:
        """The given settings, else ``conf/`` (once); ``None`` if it cannot be read."""
        if self.settings is None and not self._settings_loaded:
            self._settings_loaded = True
            try:
                self.settings = load_settings()
            except ConfigError as exc:
                self._settings_problem = str(exc)
        return self.settings

    def _warn(self, run: JobRun, message: str) -> None:
        text = f"job {run.job!r} run {run.run_id}: {message}"
        log.warning(text)
        with self._lock:
            run.warnings.append(text)
