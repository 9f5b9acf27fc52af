"""Schedules of ``jobs.yaml``: fire times of a ``cron`` or ``quartz_cron_expression`` in
the schedule's time zone (croniter), and which fire times are due.

Quartz expressions (``sec min hour day month weekday [year]``, Databricks' syntax) are
translated to classic 5-field cron: the seconds must be ``0``, the year ``*`` (or
absent), ``?`` means ``*`` and Quartz weekdays ``1-7`` (Sunday first) become ``0-6``.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass

from croniter import CroniterError, croniter

from lakehouse.jobs.schema import Schedule

_QUARTZ_WEEKDAY_NUMBER = re.compile(r"(?<![#/\d])([1-7])(?!\d)")


class ScheduleError(ValueError):
    """A schedule the scheduler cannot evaluate; the message says how to fix it."""


def cron_expression(schedule: Schedule) -> str:
    """The schedule as a 5-field cron expression (min hour day month weekday)."""
    if schedule.cron is not None:
        expression = " ".join(schedule.cron.split())
    else:
        expression = quartz_to_cron(schedule.quartz_cron_expression or "")
    try:
        croniter(expression)
    except (CroniterError, ValueError) as exc:
        raise ScheduleError(f"invalid cron expression {expression!r}: {exc}") from None
    return expression


def quartz_to_cron(quartz: str) -> str:
    """``0 30 6 ? * MON-FRI`` to ``30 6 * * MON-FRI``; see the module docstring."""
    fields = quartz.split()
    if len(fields) not in (6, 7):
        raise ScheduleError(f"quartz_cron_expression {quartz!r} must have 6 or 7 fields")
    seconds, minute, hour, day, month, weekday = fields[:6]
    if seconds != "0":
        raise ScheduleError(
            f"quartz_cron_expression {quartz!r}: the scheduler fires on whole minutes; set the "
            "seconds field to 0"
        )
    if len(fields) == 7 and fields[6] not in ("*", "?"):
        raise ScheduleError(f"quartz_cron_expression {quartz!r}: a year field other than * is not supported")
    if "L" in weekday.upper() and weekday.upper() != "L":
        raise ScheduleError(f"quartz_cron_expression {quartz!r}: weekday 'nL' is not supported")
    day = "*" if day == "?" else day
    weekday = (
        "*" if weekday == "?" else _QUARTZ_WEEKDAY_NUMBER.sub(lambda m: str(int(m.group(1)) - 1), weekday)
    )
    return f"{minute} {hour} {day} {month} {weekday}"


def timezone(schedule: Schedule) -> zoneinfo.ZoneInfo:
    """The schedule's time zone."""
    return zoneinfo.ZoneInfo(schedule.timezone)


def fire_times_between(schedule: Schedule, after: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
    """Fire times ``t`` with ``after < t <= until``, oldest first, in the schedule's
    time zone. At most 10,000 (a scheduler stopped for a year on ``* * * * *``)."""
    zone = timezone(schedule)
    iterator = croniter(cron_expression(schedule), after.astimezone(zone))
    times: list[dt.datetime] = []
    while len(times) < 10_000:
        fire = iterator.get_next(dt.datetime)
        if fire > until:
            break
        times.append(fire)
    return times


def next_fire_time(schedule: Schedule, after: dt.datetime) -> dt.datetime:
    """The first fire time strictly after ``after``, in the schedule's time zone."""
    zone = timezone(schedule)
    return croniter(cron_expression(schedule), after.astimezone(zone)).get_next(dt.datetime)


@dataclass(frozen=True)
class Due:
    """What a schedule asks for at ``now``, given the time evaluated up to last time.

    Catch-up policy: when several fire times passed (the scheduler was stopped), only
    the latest runs; the older ones are ``missed`` and reported, never run on their own
    (``lakehouse jobs backfill`` runs them on demand).
    """

    fire_times: list[dt.datetime]
    """Every fire time in ``(evaluated_until, now]``, oldest first."""

    @property
    def run(self) -> dt.datetime | None:
        """The fire time to run now (the latest), if any."""
        return self.fire_times[-1] if self.fire_times else None

    @property
    def missed(self) -> list[dt.datetime]:
        """Fire times that passed while nobody evaluated them; not run."""
        return self.fire_times[:-1]


def due(schedule: Schedule, evaluated_until: dt.datetime | None, now: dt.datetime) -> Due:
    """Fire times due at ``now``. Without ``evaluated_until`` (first start of the
    scheduler) nothing is due: like cron, a new schedule only fires in the future."""
    if evaluated_until is None or evaluated_until >= now:
        return Due([])
    return Due(fire_times_between(schedule, evaluated_until, now))


def format_fire_times(times: list[dt.datetime], schedule: Schedule) -> str:
    """``2026-11-24 06:00, 2026-11-25 06:00 Europe/Paris``."""
    zone = timezone(schedule)
    text = ", ".join(f"{t.astimezone(zone):%Y-%m-%d %H:%M}" for t in times)
    return f"{text} {schedule.timezone}"
