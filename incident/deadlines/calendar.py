"""Business time: add a duration counting only a team's working hours, and measure it back.

Why one small pure module: every due time (contact, progress, approval, post-mortem, assess) goes
through ``add``; it takes no database and no clock, so weekends, statutory holidays, make-up working
days (调休) and closures are unit-tested with plain datetimes. ``calendar=None`` is calendar time
(plain ``start + duration``), today's behaviour and the default.

The Chinese statutory holidays and 调休 come from the kept ``chinesecalendar`` library. Its data ends
with the last year the State Council has announced when it was released (1.11.0: 2026), and the
announcement for next year comes in November, so every December a deployment can meet a year the
library does not know. Past its data, the statutory holidays come from the ``holidays`` library's
China calendar (fixed by law and the lunar calendar, so known years ahead; its make-up days only where
announced), a team lists the announced 调休 days itself (``workdays:`` in calendars.yaml), the fallback is
logged once per year, and ``/metrics`` shows ``incident_holiday_data_last_year`` so an alert fires before
the year turns (deploy/prometheus). Never an error mid-incident.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar

log = logging.getLogger(__name__)

# A calendar with no working day at all cannot give a due time; a bound keeps a bad one finite.
_MAX_DAYS = 3660


@dataclass(frozen=True)
class BusinessCalendar:
    """A team's working hours in its own zone. ``days``: 0 = Monday … 6 = Sunday."""

    tz: ZoneInfo
    opens: time
    closes: time
    days: frozenset[int] = frozenset(range(5))
    statutory: bool = True  # the Chinese statutory holidays and 调休 working days apply
    closures: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)  # the team's own make-up days (调休)

    def working_day(self, day: date) -> bool:
        """A team closure is off, a team make-up day is on; a statutory holiday is off, a 调休 make-up
        day is on; else the weekdays."""
        if day in self.closures:
            return False
        if day in self.workdays:
            return True
        if self.statutory:
            holiday, workday = official(day)
            if holiday and day.weekday() in self.days:
                return False  # a statutory holiday on a usual working day
            if workday and day.weekday() not in self.days:
                return True  # 调休: a weekend day worked to make up for a holiday
        return day.weekday() in self.days

    def _window(self, day: date) -> tuple[datetime, datetime]:
        return (
            datetime.combine(day, self.opens, self.tz),
            datetime.combine(day, self.closes, self.tz),
        )


def official(day: date) -> tuple[bool, bool]:
    """(a statutory holiday, a 调休 make-up working day) in mainland China on ``day``."""
    try:
        return chinese_calendar.is_holiday(day), chinese_calendar.is_workday(day)
    except NotImplementedError:  # past chinesecalendar's data: the holidays library's China
        china = _china(day.year)
        return day in china, day in china.weekend_workdays


@cache
def _china(year: int) -> Any:
    """The ``holidays`` library's China for a year chinesecalendar does not know (logged once)."""
    import holidays  # only past chinesecalendar's data: it costs ~0.2 s to import

    log.warning(
        "chinesecalendar has no data for %d (it ends with %d): statutory holidays from the holidays "
        "library; 调休 make-up days only where it knows them, else list them as workdays: in "
        "calendars.yaml", year, last_year()
    )  # fmt: skip
    return holidays.China(years=year)


@cache
def last_year() -> int:
    """The last year chinesecalendar has the State Council's holidays and 调休 for."""
    year = 2004  # its first
    while True:
        try:
            chinese_calendar.is_holiday(date(year + 1, 1, 1))
        except NotImplementedError:
            return year
        year += 1


def _aware(moment: datetime) -> datetime:
    """The database hands back naive UTC on SQLite; every time here is compared aware."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _days_from(start: datetime, cal: BusinessCalendar):  # type: ignore[no-untyped-def]
    """Working windows from the day of ``start`` on, clipped to start at ``start`` at the earliest."""
    day = start.astimezone(cal.tz).date()
    for _ in range(_MAX_DAYS):
        if cal.working_day(day):
            opens, closes = cal._window(day)
            if closes > start:
                yield max(opens, start), closes
        day += timedelta(days=1)
    raise ValueError("the business calendar has no working hours within ten years")


def add(start: datetime, duration: timedelta, calendar: BusinessCalendar | None) -> datetime:
    """The due time ``duration`` after ``start``: on the wall clock, or counting working hours only.

    Outside hours the count starts when the team opens (03:40 + 2 h on a workday is 11:00 Beijing).
    The answer is in UTC, as every stored time is.
    """
    start = _aware(start)
    if calendar is None or duration <= timedelta(0):
        return start + duration
    left = duration
    for opens, closes in _days_from(start, calendar):
        if left <= closes - opens:
            return (opens + left).astimezone(UTC)
        left -= closes - opens
    raise AssertionError("unreachable: _days_from ends with an error")


def between(start: datetime, end: datetime, calendar: BusinessCalendar | None) -> timedelta:
    """The time counted from ``start`` to ``end`` on this clock (what a paused deadline had left)."""
    start, end = _aware(start), _aware(end)
    if calendar is None or end <= start:
        return max(end - start, timedelta(0))
    total = timedelta(0)
    for opens, closes in _days_from(start, calendar):
        if opens >= end:
            break
        total += min(closes, end) - opens
    return total
