"""How late is an escalation, and how long does a notice take? Measured through a real ``incident serve``.

Starts the service (its own Prefect server unless PREFECT_API_URL is set) with playbook copies whose
first-contact window is ``--window`` (default 1m), a local SMTP server (aiosmtpd) and a local webhook
receiver, both tagged ``cs_director`` (who an L3 miss is escalated to). Reports ``--incidents`` L3
complaints ``--spacing`` seconds apart (so their due times fall at different points of the watcher's
period), answers none of them, and waits until each is escalated. Then prints, per incident:

- ``watcher``: due_at → the ``escalated`` timeline event (the watcher flow's ``now``);
- ``smtp`` / ``hook``: due_at → the moment the receiver got the escalation notice;
- ``send smtp`` / ``send hook``: the delivery log's created_at → sent_at, i.e. notify()'s own time
  from the flow's side (render, roster, apprise, retries) per channel.

The copies' escalation chain has two steps and a repeat: cs_director at the miss, leadership
``--step2`` later (default 30s), leadership again every ``--repeat`` (default 30s) until someone acks
(nobody does here). A second table gives, for each firing (step 1, step 2, the first repeat), its
latency after its own due time: the ``escalated`` event (``watcher``) and the webhook's arrival
(``hook``), median and max over the incidents.

The watcher period is the service's default (INCIDENT_WATCH_SECONDS=5) unless ``--watch`` is given.

    python bench/deadline_latency.py [--incidents 6] [--spacing 7] [--window 1m] [--watch 5]
                                     [--step2 30s] [--repeat 30s]
"""

from __future__ import annotations

import argparse
import contextlib
import email
import email.policy
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[1]
INC = re.compile(r"INC\d{11,}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Arrivals:
    """Wall-clock arrival of the first escalation notice per (incident, channel)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[tuple[str, str], float] = {}
        self.hooks: dict[tuple[str, str], list[float]] = {}  # (incident, role) → every webhook arrival

    def note(self, channel: str, title: str, role: str = "cs_director") -> None:
        now = time.time()
        if "超时升级" not in title and "Escalation" not in title:
            return
        for incident_id in INC.findall(title):
            with self.lock:
                if role == "cs_director":
                    self.times.setdefault((incident_id, channel), now)
                if channel == "hook":
                    self.hooks.setdefault((incident_id, role), []).append(now)


class SmtpHandler:
    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.arrivals.note("smtp", str(message["Subject"]))
        return "250 OK"


def hook_server(arrivals: Arrivals) -> ThreadingHTTPServer:
    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with contextlib.suppress(ValueError):
                arrivals.note("hook", json.loads(body).get("title", ""), self.path.strip("/"))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def playbook_copies(folder: Path, window: str, step2: str, repeat: str) -> None:
    """The built-in playbooks with every level's contact window set to ``window``, no early warning,
    and a two-step chain with a repeat (cs_director, then leadership ``step2`` later, every ``repeat``)."""
    folder.mkdir()
    for path in (ROOT / "playbooks").glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if "levels" not in data:  # the words and the team calendars, not playbooks: copied as they are
            shutil.copy(path, folder / path.name)
            continue
        for rules in data["levels"].values():
            rules["contact_within"], rules["warn_before"] = window, "0m"
            rules["escalation"] = [
                {"after": "0s", "notify": ["cs_director"]},
                {"after": step2, "notify": ["leadership"]},
            ]
            rules["repeat_every"] = repeat
            rules.pop("escalate_to", None)
        (folder / path.name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def start(home: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    log = (home / "serve.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "incident.cli", "serve", "--port", "0"],
        env=env,
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"incident serve exited; see {home / 'serve.log'}")
        try:
            url = json.loads((home / "service.json").read_text())["url"]
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            pass
        time.sleep(0.3)
    proc.terminate()
    raise SystemExit("incident serve did not start in 180 s")


def at(value: str | None) -> float:
    return datetime.fromisoformat(value).timestamp() if value else float("nan")


def measure(api: httpx.Client, incident_id: str, arrivals: Arrivals) -> dict[str, float]:
    shown = api.get(f"/api/incidents/{incident_id}").json()
    due = at(next(d["due_at"] for d in shown["deadlines"] if d["kind"] == "contact"))
    escalated = at(next(e["at"] for e in shown["timeline"] if e["event"] == "escalated"))
    log = api.get(f"/api/incidents/{incident_id}/notifications").json()["deliveries"]
    row = {"watcher": escalated - due}
    for channel, scheme in (("smtp", "mailto"), ("hook", "json")):
        row[channel] = arrivals.times.get((incident_id, channel), float("nan")) - due
        sent = [
            d
            for d in log
            if d["notice"] == "deadline_missed" and d["role"] == "cs_director" and d["url"].startswith(scheme)
        ]
        row[f"send {channel}"] = (
            (at(sent[0]["sent_at"]) - at(sent[0]["created_at"])) * 1000 if sent else float("nan")
        )
    return row


def seconds(duration: str) -> float:
    """'30s', '1m' as the playbooks write them."""
    number, unit = int(duration[:-1]), duration[-1]
    return number * {"s": 1, "m": 60, "h": 3600}[unit]


CHAIN = ("step 1", "step 2", "repeat 1")


def measure_chain(
    api: httpx.Client, incident_id: str, arrivals: Arrivals, step2: float, repeat: float
) -> dict:
    """Each firing's latency after its own due time: the timeline's event and the webhook's arrival."""
    shown = api.get(f"/api/incidents/{incident_id}").json()
    due = at(next(d["due_at"] for d in shown["deadlines"] if d["kind"] == "contact"))
    fired = [at(e["at"]) for e in shown["timeline"] if e["event"] == "escalated"]
    dues = [due, due + step2, due + step2 + repeat]
    hooks = [
        *arrivals.hooks.get((incident_id, "cs_director"), [])[:1],
        *arrivals.hooks.get((incident_id, "leadership"), [])[:2],
    ]
    row = {}
    for n, name in enumerate(CHAIN):
        row[f"{name} watcher"] = fired[n] - dues[n] if n < len(fired) else float("nan")
        row[f"{name} hook"] = hooks[n] - dues[n] if n < len(hooks) else float("nan")
    return row


def chained(arrivals: Arrivals, incident_id: str) -> bool:
    return len(arrivals.hooks.get((incident_id, "leadership"), [])) >= 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--incidents", type=int, default=6)
    parser.add_argument("--spacing", type=float, default=7.0, help="seconds between reports")
    parser.add_argument("--window", default="1m", help="first-contact window of every level")
    parser.add_argument("--watch", help="INCIDENT_WATCH_SECONDS (default: the service's own, 5)")
    parser.add_argument("--step2", default="30s", help="the chain's second step after the miss")
    parser.add_argument("--repeat", default="30s", help="the chain's repeat_every")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="deadline-bench-"))
    arrivals = Arrivals()
    smtp_port = free_port()
    smtp = Controller(SmtpHandler(arrivals), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    hook = hook_server(arrivals)
    roster = home / "roster.yaml"
    roster.write_text(
        "urls:\n"
        f'  - "mailto://127.0.0.1:{smtp_port}?from=bot@example.com&to=director@example.com":\n'
        "      - tag: cs_director\n"
        f'  - "json://127.0.0.1:{hook.server_address[1]}/cs_director":\n'
        "      - tag: cs_director\n"
        f'  - "json://127.0.0.1:{hook.server_address[1]}/leadership":\n'
        "      - tag: leadership\n",
        encoding="utf-8",
    )
    playbook_copies(home / "playbook-copies", args.window, args.step2, args.repeat)
    env = {
        **os.environ,
        "INCIDENT_HOME": str(home),
        "INCIDENT_PLAYBOOKS": str(home / "playbook-copies"),
        "INCIDENT_NOTIFY_CONFIG": str(roster),
        "INCIDENT_API_TOKEN": "bench-token",
        "DO_NOT_TRACK": "1",
    }
    env.pop("INCIDENT_DB_URL", None)
    env.pop("INCIDENT_WATCH_SECONDS", None)
    if args.watch:
        env["INCIDENT_WATCH_SECONDS"] = args.watch
    started = time.monotonic()
    proc, url = start(home, env)
    print(f"service up in {time.monotonic() - started:.1f} s ({home})", file=sys.stderr)
    api = httpx.Client(base_url=url, headers={"Authorization": "Bearer bench-token"}, timeout=60)
    try:
        incidents = []
        for n in range(args.incidents):
            body = {
                "category": "special_scenario",
                "summary": "delivery stopped by rainstorm",
                "cause": "rainstorm",
                "region": f"bench-{n}-{os.getpid()}",
            }
            incidents.append(api.post("/api/feedback", json=body).json()["incident_id"])
            time.sleep(args.spacing)
        print(f"reported {len(incidents)} incidents; waiting for their escalations", file=sys.stderr)
        deadline = time.monotonic() + 300
        pending = set(incidents)
        while pending and time.monotonic() < deadline:
            for incident_id in sorted(pending):
                events = [e["event"] for e in api.get(f"/api/incidents/{incident_id}").json()["timeline"]]
                if events.count("escalated") >= 3 and chained(arrivals, incident_id):
                    pending.discard(incident_id)
            time.sleep(1)
        time.sleep(2)  # the e-mail may land a little after the webhook
        rows = {incident_id: measure(api, incident_id, arrivals) for incident_id in incidents}
        step2, repeat = seconds(args.step2), seconds(args.repeat)
        chains = [measure_chain(api, incident_id, arrivals, step2, repeat) for incident_id in incidents]
    finally:
        api.close()
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        smtp.stop()
        hook.shutdown()

    columns = ["watcher", "smtp", "hook", "send smtp", "send hook"]
    units = ["s", "s", "s", "ms", "ms"]
    watch = args.watch or "5 (default)"
    print(
        f"\nmissed first-contact deadline → escalation; watcher every {watch} s; {datetime.now(UTC):%F %T}Z"
    )
    print(
        f"{'incident':<18}"
        + "".join(f"{c + ' (' + u + ')':>15}" for c, u in zip(columns, units, strict=True))
    )
    for incident_id, row in rows.items():
        print(
            f"{incident_id:<18}"
            + "".join(f"{row[c]:>15.{3 if u == 's' else 1}f}" for c, u in zip(columns, units, strict=True))
        )
    for name, pick in (("median", statistics.median), ("max", max)):
        values = [pick([r[c] for r in rows.values() if r[c] == r[c]] or [float("nan")]) for c in columns]
        print(
            f"{name:<18}"
            + "".join(f"{v:>15.{3 if u == 's' else 1}f}" for v, u in zip(values, units, strict=True))
        )
    print(
        f"\nescalation chain: cs_director at the miss, leadership +{args.step2}, repeat every {args.repeat}"
    )
    print(f"{'latency after due (s)':<24}{'median':>10}{'max':>10}")
    for name in CHAIN:
        for source in ("watcher", "hook"):
            values = [r[f"{name} {source}"] for r in chains if r[f"{name} {source}"] == r[f"{name} {source}"]]
            shown = (statistics.median(values), max(values)) if values else (float("nan"),) * 2
            print(f"{name + ' ' + source:<24}{shown[0]:>10.3f}{shown[1]:>10.3f}")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
