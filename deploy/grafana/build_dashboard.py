"""Writes ``incident-dashboard.json`` (run: ``python deploy/grafana/build_dashboard.py``).

Why generated: panel ids, grid positions and the datasource reference stay consistent, and every
query is written once here, where the aggregation rule is visible: database-derived ``incident_*``
families are the same on every replica and take ``max`` over the replicas, by *every* label of the
series (``max by (notice, status)``), and only then are summed into what a panel shows
(``sum by (status) (…)``): a ``max by (status)`` alone would show the largest notice kind, not the
total. Per-process ones (HTTP responses, the workers' counters, ``process_*``) are summed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DS = {"type": "prometheus", "uid": "${datasource}"}
JOB = 'job="incident"'
WORKER = 'job="incident-worker"'
INTAKE = "rate(incident_intake_latency_seconds_bucket[15m])"

# (title, kind, unit, [(expr, legend)]) in rows of panels; laid out as the dashboard is
# fmt: off
ROWS: list[tuple[str, list[tuple[str, str, str, list[tuple[str, str]]]]]] = [
    ("Service", [
        ("Replicas up", "stat", "none", [(f"sum(up{{{JOB}}})", "up")]),
        ("Version per replica", "table", "none",
         [(f"incident_build_info{{{JOB}}}", "{{instance}} {{version}}")]),
        ("CPU per replica (API process)", "timeseries", "percentunit",
         [(f"sum by (instance) (rate(process_cpu_seconds_total{{{JOB}}}[5m]))", "{{instance}}")]),
        ("Resident memory per replica", "timeseries", "bytes",
         [(f"process_resident_memory_bytes{{{JOB}}}", "{{instance}}")]),
    ]),
    ("Workers", [
        ("Workers up", "stat", "none", [(f"sum(up{{{WORKER}}})", "up")]),
        ("Database readable (replicas)", "stat", "none", [(f"min(incident_database_up{{{JOB}}})", "min")]),
        ("Worker loop passes per minute", "timeseries", "none",
         [(f"sum by (loop, outcome) (rate(incident_worker_loop_passes_total{{{WORKER}}}[5m])) * 60",
           "{{loop}} {{outcome}}")]),
        ("Feedback runs per minute (all processes)", "timeseries", "none",
         [("sum by (outcome) (rate(incident_feedback_runs_total[5m])) * 60", "{{outcome}}")]),
    ]),
    ("Incidents", [
        ("Open incidents by level", "timeseries", "none",
         [("max by (level) (incident_open_incidents)", "L{{level}}")]),
        ("Incidents opened per hour", "timeseries", "none",
         [("max by (level, category) (increase(incident_incidents_opened_total[1h]))",
           "L{{level}} {{category}}")]),
        ("Level raises per hour", "timeseries", "none",
         [("max by (to_level) (increase(incident_level_raises_total[1h]))", "to L{{to_level}}")]),
        ("First contact p50 / p90", "timeseries", "s", [
            ("histogram_quantile(0.5, max by (le) (rate(incident_first_contact_seconds_bucket[1h])))", "p50"),
            ("histogram_quantile(0.9, max by (le) (rate(incident_first_contact_seconds_bucket[1h])))", "p90"),
        ]),
    ]),
    ("Deadlines", [
        ("Deadlines missed per hour", "timeseries", "none",
         [("max by (kind) (increase(incident_deadlines_missed_total[1h]))", "{{kind}}")]),
        ("Deadline watcher lag", "timeseries", "s",
         [("max(incident_deadline_watch_lag_seconds)", "oldest past-due deadline not yet escalated")]),
    ]),
    ("Notices", [
        ("Notice deliveries per hour", "timeseries", "none",
         [("sum by (status) (max by (notice, status) (increase(incident_notices_total[1h])))",
           "{{status}}")]),
        ("Failed deliveries by notice (1 h)", "timeseries", "none",
         [('max by (notice) (increase(incident_notices_total{status="failed"}[1h]))', "{{notice}}")]),
    ]),
    ("Intake", [
        ("Intake responses per second (all replicas)", "timeseries", "reqps",
         [(f'sum by (code) (rate(incident_http_responses_total{{{JOB}, handler="intake"}}[5m]))',
           "{{code}}")]),
        ("Feedback accepted per hour", "timeseries", "none",
         [("sum by (channel) (max by (kind, channel) (increase(incident_feedback_accepted_total[1h])))",
           "{{channel}}")]),
        ("Feedback to flow run done p50 / p99", "timeseries", "s", [
            (f"histogram_quantile(0.5, max by (le) ({INTAKE}))", "p50"),
            (f"histogram_quantile(0.99, max by (le) ({INTAKE}))", "p99"),
        ]),
        ("Oldest unhandled feedback", "timeseries", "s",
         [("max(incident_feedback_unhandled_oldest_seconds)", "age")]),
    ]),
]
# fmt: on


def panel(
    pid: int, title: str, kind: str, unit: str, queries: list[tuple[str, str]], x: int, y: int, w: int
) -> dict[str, Any]:
    return {
        "id": pid,
        "type": kind,
        "title": title,
        "datasource": DS,
        "gridPos": {"h": 8, "w": w, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DS,
                "expr": expr,
                "legendFormat": legend,
                **({"instant": True, "format": "table"} if kind == "table" else {}),
            }
            for i, (expr, legend) in enumerate(queries)
        ],
    }


def dashboard() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    pid, y = 1, 0
    for row_title, row in ROWS:
        panels.append(
            {
                "id": pid,
                "type": "row",
                "title": row_title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        pid, y = pid + 1, y + 1
        width = 24 // len(row)
        for i, (title, kind, unit, queries) in enumerate(row):
            panels.append(panel(pid, title, kind, unit, queries, i * width, y, width))
            pid += 1
        y += 8
    return {
        "uid": "incident-ops",
        "title": "incident: emergency response operations",
        "tags": ["incident", "after-sales"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-24h", "to": "now"},
        "editable": True,
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                }
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


if __name__ == "__main__":
    out = Path(__file__).with_name("incident-dashboard.json")
    out.write_text(json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n")
    print(out)
