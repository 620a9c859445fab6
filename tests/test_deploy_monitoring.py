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
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from incident.metrics import prometheus

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
