"""The workers' roll: which worker processes could have claimed a run of a deployment, so that the
sweep can tell a run nobody will start.

Why: Prefect's ``Runner`` claims a run (Pending) and then starts its process, which names itself on the
run (``flows.waiting.hold``) only once Prefect and our flows are imported: seconds, over a minute on a
loaded machine. A worker killed in between (``incident serve`` SIGKILLed, its worker's stop cut short)
left the run Pending, rescheduled only after ``STUCK_PENDING``, or Running with no process named, for
Prefect's zombie window; and Prefect knows no claimant (a runner, unlike a work pool's worker, labels
nothing on the runs it takes). So each worker enrols here before it serves. A run in its state since
``since`` is **stranded** when the workers of its deployment enrolled by then (its claimant among them)
all ran on this host and are all gone, each with its whole process group: a runner starts the runs'
processes in its own group, and a worker SIGKILLed leaves them running. Nobody can start such a run,
and the sweep starts it again at once.

What stays unknown, and falls back to the clocks: a worker on another host (its pid tells nothing
here), and one that does not lead its process group (``incident worker`` started from a shell: its
group holds other processes; ``incident serve``'s worker and a systemd unit's lead theirs).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import delete, select, update

from incident.engine.queue import HOST, WORKER_ID
from models import Worker, session_scope, utcnow

# How far a worker's host clock (its start) may run ahead of the Prefect server's (a run's state time):
# a worker enrolled this long after a run's state counts as a possible claimant too. Prefect's own
# windows (schedules, pauses, heartbeats) assume clocks kept in step as well.
SKEW = timedelta(seconds=5)
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Enrolled:
    host: str
    pid: int
    pgid: int
    started_at: datetime

    def gone(self) -> bool:
        """Known gone: it ran here, led its process group, and no process of that group is left."""
        if self.host != HOST or self.pgid != self.pid or self.pid == os.getpid():
            return False
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, someone else's
            return False
        return False


def enrol(deployment_id: UUID) -> None:
    """Put this worker on its deployment's roll; before it serves (a claim by a worker not on the roll
    would let the sweep take an older, gone worker for the only claimant)."""
    now = utcnow()
    with session_scope() as s:
        s.merge(
            Worker(id=WORKER_ID, deployment_id=str(deployment_id), host=HOST, pid=os.getpid(),
                   pgid=os.getpgid(0), started_at=now, seen_at=now)
        )  # fmt: skip


def seen() -> int:
    """Each sweep: this worker is still here; the rows not seen for ``FORGET_AFTER`` are forgotten
    (their number)."""
    now = utcnow()
    with session_scope() as s:
        s.execute(update(Worker).where(Worker.id == WORKER_ID).values(seen_at=now))
        return s.execute(delete(Worker).where(Worker.seen_at < now - FORGET_AFTER)).rowcount or 0


async def of(deployment_id: UUID) -> list[Enrolled]:
    """The deployment's roll. Read *after* the runs it judges: a worker claims only once enrolled, so
    the claimant of every run already read is on it (read before, a worker enrolled meanwhile and
    claiming a run would be missing, and an older, gone worker taken for the only claimant)."""
    return await asyncio.to_thread(_of, deployment_id)


def _of(deployment_id: UUID) -> list[Enrolled]:
    with session_scope() as s:
        rows = s.execute(
            select(Worker.host, Worker.pid, Worker.pgid, Worker.started_at).where(
                Worker.deployment_id == str(deployment_id)
            )
        )
        return [Enrolled(*row) for row in rows]


def stranded(roll: list[Enrolled], since: datetime) -> bool:
    """Whether a run in its state since ``since`` has nobody left who could start it: every worker
    enrolled by then is known gone (and there was one: a run from before the roll goes by the clock)."""
    could = [w for w in roll if w.started_at <= since + SKEW]
    return bool(could) and all(w.gone() for w in could)
