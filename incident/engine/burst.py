"""Whether reports are arriving in a burst: then the worker holds the routine feedback runs back.

Why: in a storm the cores are shared by intake (the 202s callers wait for) and the feedback runs, and
each run keeps the Prefect server busy on its behalf (its API calls: ~0.5–1 core of the server while
the worker ran eight at a time in bench/storm.py). Niceness does not reach that work: the server runs
it for whoever asks. So while reports arrive faster than ``INCIDENT_BURST_RATE`` per second, the
worker starts only the runs of level-1 reports (one that opened a level-1 incident or raised one to
level 1: the leadership is told within a second) and the others wait, ``INCIDENT_BURST_HOLD_SECONDS``
at most, then go on whatever the rate, the urgent ones first (an L2 or L3 opening: its contact is
due within the hour or two, not the second). Nothing is lost by waiting: the rows are the queue.

Why the rate is taken over the last poll, not the last second: a storm's first reports open
incidents by the dozen; over a second, the burst showed only after 0.3–0.4 s, by when the worker had
started those openings' runs, and the Prefect server worked for them through the storm (0.4–0.6 of a
core of 2 while intake needed both; ``bench/storm.py``, 2026-12-07).

The rate is read off the ids' counter row of the day (``models/ids.py``): one primary-key read per
poll, and it counts the reports of every API process on the database.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime

from sqlalchemy import select

from incident import settings
from models import session_scope, utcnow
from models.ids import Counter

WINDOW = 1.0  # seconds of counts kept (and the newest one before them)
LEAST = 0.1  # the rate: since the latest count at least this much older (the worker polls every 0.2 s)


def arrived(now: datetime | None = None) -> int:
    """Reports accepted today so far, on every API process (the ids' counter)."""
    key = f"FB{(now or utcnow()):%Y%m%d}"
    with session_scope() as s:
        return int(s.scalar(select(Counter.value).where(Counter.key == key)) or 0)


class Burst:
    """Fed the counter at each poll (``holding``): whether routine runs wait now."""

    def __init__(self) -> None:
        self.seen: deque[tuple[float, int]] = deque()
        self.since: float | None = None  # when the current hold began

    def rate(self, count: int, at: float) -> float | None:
        """Reports per second since the latest count at least ``LEAST`` before this one; None without."""
        self.seen.append((at, count))
        while len(self.seen) > 1 and at - self.seen[1][0] > WINDOW:  # the newest older one stays: a
            self.seen.popleft()  # poll held up for seconds by SQLite's write lock still has a rate
        earlier = [(then, counted) for then, counted in self.seen if at - then >= LEAST]
        if not earlier:
            return None
        first_at, first = earlier[-1]
        return (count - first) / (at - first_at)

    def rising(self) -> bool:
        """More than one report since the previous poll. The rate over that poll's interval may not show
        a storm that began just now (ten reports in its last 0.05 s read as 50/s over 0.2 s), so the
        reports younger than ``LEAST`` wait for the next poll, whose rate does: before, one storm in four
        had its first reports' runs started, and the Prefect server worked for them through it."""
        return len(self.seen) > 1 and self.seen[-1][1] - self.seen[-2][1] > 1

    def holding(self, count: int, at: float) -> bool:
        limit, longest = settings.get().burst_rate, settings.get().burst_hold_seconds
        rate = self.rate(count, at)
        if limit <= 0 or rate is None or rate <= limit:
            self.since = None
            return False
        if self.since is None:
            self.since = at
        return at - self.since < longest
