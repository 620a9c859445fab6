"""The workers' roll (incident/engine/roll.py): when a run's possible claimants are known gone.

Real processes: a worker is "gone" only once no process of its process group is left, because the
runs' processes a runner starts are in its group and outlive a SIGKILLed worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

from incident.engine import roll
from incident.engine.queue import HOST
from models import utcnow
from tests.conftest import dead_pid

# A group leader that starts a long child (as a runner starts a run's process) and exits at once.
LEADER = "import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])"


def _worker(
    pid: int, started_minutes_ago: float = 10, host: str = HOST, pgid: int | None = None
) -> roll.Enrolled:
    started = utcnow() - timedelta(minutes=started_minutes_ago)
    return roll.Enrolled(host=host, pid=pid, pgid=pid if pgid is None else pgid, started_at=started)


def test_a_worker_is_gone_only_when_its_whole_process_group_is() -> None:
    leader = subprocess.Popen([sys.executable, "-c", LEADER], start_new_session=True)
    leader.wait()
    worker = _worker(leader.pid)
    try:
        assert not worker.gone(), "its run process still lives in its group"
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not worker.gone():
        assert time.monotonic() < deadline, "the group's last process was killed but the worker is not gone"
        time.sleep(0.05)


def test_a_run_is_stranded_only_when_every_worker_that_could_have_claimed_it_is_known_gone() -> None:
    since = utcnow() - timedelta(minutes=1)  # the run went Pending a minute ago
    gone = _worker(dead_pid())
    assert gone.gone()
    assert roll.stranded([gone], since)
    # a worker that serves still (this process), enrolled before: it may be starting the run
    assert not roll.stranded([gone, _worker(os.getpid())], since)
    # one enrolled after the run's state (beyond the clocks' skew) could not have claimed it
    assert roll.stranded([gone, _worker(os.getpid(), started_minutes_ago=0)], since)
    # nothing can be known of another host's worker, nor of one that did not lead its process group
    assert not roll.stranded([gone, _worker(dead_pid(), host="elsewhere")], since)
    assert not roll.stranded([_worker(dead_pid(), pgid=os.getpgid(0))], since)
    # a run from before the roll (no worker enrolled by then) goes by the clock
    assert not roll.stranded([], since)
    assert not roll.stranded([_worker(dead_pid(), started_minutes_ago=0)], since)
