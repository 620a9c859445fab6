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
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from incident.metrics import prometheus
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
    names = set()
    for family in text_string_to_metric_families(prometheus.exposition().decode()):
        names |= {s.name for s in family.samples}
    return names


def test_queries_use_only_served_metric_names(db: str) -> None:
    served = _served_names(db)
    alerts, panels = _alert_exprs(), _dashboard_exprs()
    assert len(alerts) >= 6 and len(panels) >= 15
    used = {name for expr in alerts + panels for name in NAME.findall(expr)}
    assert {"incident_deadlines_missed_total", "incident_deadline_watch_lag_seconds"} <= used
    assert used - served == set()
    assert any("up{" in e and "== 0" in e for e in alerts)  # service down


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
    """deploy/prometheus/scrape/prometheus.yml pointed at the running service and scraped by Prometheus
    itself; every dashboard query and alert expression evaluated by it: valid, the service's series there."""
    from incident.server import free_port

    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "scrape" / "prometheus.yml").read_text())
    token = tmp_path / "token"
    token.write_text(service.token)
    job = config["scrape_configs"][0]
    job["authorization"]["credentials_file"] = str(token)
    job["static_configs"] = [{"targets": [service.url.removeprefix("http://")]}]
    job["scrape_interval"] = "1s"
    config["rule_files"] = [str(path) for path in RULES]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("w"),
    )  # fmt: skip
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                targets = httpx.get(f"{api}/targets", timeout=5).json()["data"]["activeTargets"]
                if targets and targets[0]["health"] == "up" and _has(api, "incident_build_info"):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()[-2000:]
            time.sleep(0.5)
        for expr in _dashboard_exprs() + _alert_exprs():
            answer = httpx.get(f"{api}/query", params={"query": expr}, timeout=10).json()
            assert answer["status"] == "success", (expr, answer)
        for present in ('up{job="incident"} == 1', "incident_build_info", "process_resident_memory_bytes",
                        "incident_http_responses_total", "incident_open_incidents"):  # fmt: skip
            assert _has(api, present), present
    finally:
        proc.terminate()
        proc.wait(10)


def _has(api: str, expr: str) -> bool:
    answer = httpx.get(f"{api}/query", params={"query": expr}, timeout=10).json()
    return answer["status"] == "success" and bool(answer["data"]["result"])
