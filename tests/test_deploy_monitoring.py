"""The alert rules and the Grafana dashboard under ``deploy/`` against what ``/metrics`` serves.

Every metric name they query must be one the exposition has (a renamed metric would leave an alert
silently empty); the dashboard file must be what its generator writes; and, with ``promtool``
installed (``.ci/run`` installs Debian's prometheus), the rules pass ``promtool check rules`` and
their unit tests, and every dashboard query is valid PromQL (checked as recording rules).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from incident.metrics import process, prometheus
from tests.conftest import Service

ROOT = Path(__file__).resolve().parents[1]
RULES = sorted((ROOT / "deploy" / "prometheus").glob("*.yml"))
RULE_TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.yml"))
DASHBOARD = ROOT / "deploy" / "grafana" / "incident-dashboard.json"
NAME = re.compile(r"\b((?:incident|process|python)_[a-z_]+)")
PROMTOOL = shutil.which("promtool")


def _alert_exprs() -> list[str]:
    exprs = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            exprs += [rule["expr"] for rule in group["rules"]]
    return exprs


def _dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def _served_names(db: str) -> set[str]:
    """Every sample name the service's /metrics and a worker's /metrics serve."""
    names = set()
    worker = generate_latest(process.worker_registry()).decode()
    for text in (prometheus.exposition().decode(), worker):
        for family in text_string_to_metric_families(text):
            names |= {s.name for s in family.samples}
    return names


def test_queries_use_only_served_metric_names(db: str) -> None:
    served = _served_names(db)
    alerts, panels = _alert_exprs(), _dashboard_exprs()
    assert len(alerts) >= 6 and len(panels) >= 15
    used = {name for expr in alerts + panels for name in NAME.findall(expr)}
    assert {"incident_deadlines_missed_total", "incident_deadline_watch_lag_seconds"} <= used
    assert {"incident_worker_loop_passes_total", "incident_database_up"} <= used
    assert used - served == set()
    assert any("up{" in e and "== 0" in e for e in alerts)  # service down
    assert any('up{job="incident-worker"}' in e and "== 0" in e for e in alerts)  # a worker down


def test_dashboard_file_is_what_the_generator_writes(tmp_path: Path) -> None:
    sys.path.insert(0, str(DASHBOARD.parent))
    try:
        import build_dashboard
    finally:
        sys.path.pop(0)
    assert json.loads(DASHBOARD.read_text()) == build_dashboard.dashboard()
    ids = [p["id"] for p in build_dashboard.dashboard()["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.skipif(PROMTOOL is None, reason="promtool missing (apt-get install prometheus)")
def test_promtool_checks_and_unit_tests_pass() -> None:
    check = subprocess.run([PROMTOOL, "check", "rules", *map(str, RULES)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    tested = subprocess.run(
        [PROMTOOL, "test", "rules", *map(str, RULE_TESTS)], capture_output=True, text=True, cwd=ROOT
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.skipif(PROMTOOL is None, reason="promtool missing (apt-get install prometheus)")
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    def check(exprs: list[str]) -> subprocess.CompletedProcess[str]:
        rules = {
            "groups": [
                {
                    "name": "dashboard",
                    "rules": [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)],
                }
            ]
        }
        path = tmp_path / "dashboard-rules.yml"
        path.write_text(yaml.safe_dump(rules))
        return subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True)

    done = check(_dashboard_exprs())
    assert done.returncode == 0, done.stdout + done.stderr
    assert check(["max by (kind (incident_deadlines_missed_total)"]).returncode != 0  # the check can fail


PROMETHEUS = shutil.which("prometheus")


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus missing (apt-get install prometheus)")
def test_a_real_prometheus_scrapes_the_service_and_every_panel_answers(
    service: Service, tmp_path: Path
) -> None:
    """deploy/prometheus/scrape/prometheus.yml pointed at the running service and its worker and scraped
    by Prometheus itself; every dashboard query and alert expression evaluated by it: valid, the service's
    series there; and the panels that total over label sets give the total of what happened meanwhile."""
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "scrape" / "prometheus.yml").read_text())
    token = tmp_path / "token"
    token.write_text(service.token)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"incident", "incident-worker"}
    jobs["incident"]["authorization"]["credentials_file"] = str(token)
    jobs["incident"]["static_configs"] = [{"targets": [service.url.removeprefix("http://")]}]
    worker = json.loads((service.home / "worker.ready").read_text())["metrics_url"]
    jobs["incident-worker"]["static_configs"] = [{"targets": [worker.split("/")[2]]}]
    for job in jobs.values():
        job["scrape_interval"] = "1s"
    config["rule_files"] = [str(path) for path in RULES]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    with _prometheus(tmp_path) as api:
        _wait(api, lambda: _has(api, 'up{job="incident"} == 1') and _has(api, "incident_build_info"))
        started = time.time()
        for expr in _dashboard_exprs() + _alert_exprs():
            answer = httpx.get(f"{api}/query", params={"query": expr}, timeout=10).json()
            assert answer["status"] == "success", (expr, answer)
        for present in ('up{job="incident"} == 1', 'up{job="incident-worker"} == 1', "incident_build_info",
                        "process_resident_memory_bytes", "incident_http_responses_total",
                        "incident_open_incidents", "incident_worker_loop_passes_total"):  # fmt: skip
            _wait(api, lambda e=present: _has(api, e))  # type: ignore[misc]
        _report_two_notice_kinds_and_two_feedback_kinds(service, tmp_path.name[-10:])
        _wait(api, lambda: time.time() - started > 12)  # extrapolation of increase() stays within 15 %
        _panel_totals_what_happened(api)


def _report_two_notice_kinds_and_two_feedback_kinds(service: Service, tag: str) -> None:
    """An incident opened and raised (two notice kinds), and a suggestion, all on the app channel."""
    base = {"category": "service_failure", "summary": "no show", "service": "install", "region": f"P-{tag}"}
    opened = service.api("POST", "/api/feedback", json={**base, "channel": "app"}).json()
    raised = service.api("POST", "/api/feedback", json={**base, "channel": "app", "customers": 20}).json()
    assert raised["incident_id"] == opened["incident_id"] and raised["level"] == 2, raised
    idea = {"kind": "suggestion", "channel": "app", "summary": "a bigger font in the app"}
    assert service.api("POST", "/api/feedback", json=idea).status_code == 202
    service.wait_until(
        opened["incident_id"],
        lambda s: any(e["event"] == "level_raised" for e in s["timeline"]) and s.get("waiting_for"),
        "the raise recorded and the run waiting",
    )
    _wait_for_notices(service, opened["incident_id"], {"incident_opened", "level_raised"})


def _wait_for_notices(service: Service, incident_id: str, kinds: set[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        logged = service.api("GET", f"/api/incidents/{incident_id}/notifications").json()
        if kinds <= {d["notice"] for d in logged["deliveries"] if d["status"] == "sent"}:
            return
        assert time.monotonic() < deadline, logged
        time.sleep(0.5)


def _panel_totals_what_happened(api: str) -> None:
    """The panels "Notice deliveries per hour" and "Feedback accepted per hour" against raw samples.

    What each series grew by while Prometheus scraped (last sample minus first, summed over the label
    it totals) is the truth; the panel's ``increase()`` extrapolates a little past the samples, never
    less. A panel taking the largest series (``max by (status)``) instead of the total stays below."""
    time.sleep(2)  # two scrapes more: the last deliveries are in Prometheus
    panels = {p["title"]: p["targets"][0]["expr"] for p in json.loads(DASHBOARD.read_text())["panels"]
              if p.get("targets")}  # fmt: skip
    checks = [
        ("Notice deliveries per hour", 'incident_notices_total{status="sent"}', "notice", ("status", "sent")),
        ("Feedback accepted per hour", 'incident_feedback_accepted_total{channel="app"}', "kind",
         ("channel", "app")),
    ]  # fmt: skip
    for title, raw, over, (label, wanted) in checks:
        grew = _growth(api, raw, over)
        total, largest = sum(grew.values()), max(grew.values())
        assert total >= 2 and largest * 1.3 < total, (title, grew)  # the check can tell a sum from a max
        answer = httpx.get(f"{api}/query", params={"query": panels[title]}, timeout=10).json()
        shown = {r["metric"].get(label): float(r["value"][1]) for r in answer["data"]["result"]}
        print(f"{title}: {panels[title]} -> {shown} (raw growth {grew})")  # what -s shows
        assert total <= shown[wanted] <= total * 1.3, (title, shown, grew)


def _growth(api: str, selector: str, by: str) -> dict[str, float]:
    """Per value of ``by``: the last sample minus the first of the series in the last hour (max over
    instances, as every replica reports the same database)."""
    answer = httpx.get(f"{api}/query", params={"query": f"{selector}[1h]"}, timeout=10).json()
    grew: dict[str, float] = {}
    for series in answer["data"]["result"]:
        values = [float(v) for _, v in series["values"]]
        key = series["metric"][by]
        grew[key] = max(grew.get(key, 0.0), values[-1] - values[0])
    return grew


@contextmanager
def _prometheus(tmp_path: Path) -> Iterator[str]:
    """A real Prometheus with ``tmp_path/prometheus.yml``: its API's URL while it runs."""
    from incident.server import free_port

    port = free_port()
    log = tmp_path / "prometheus.log"
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=log.open("w"),
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        proc.terminate()
        proc.wait(10)


def _wait(api: str, ready: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"Prometheus at {api}: not ready within {timeout:.0f} s"
        time.sleep(0.5)


def _has(api: str, expr: str) -> bool:
    answer = httpx.get(f"{api}/query", params={"query": expr}, timeout=10).json()
    return answer["status"] == "success" and bool(answer["data"]["result"])
