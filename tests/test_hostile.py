"""Hostile and broken input: property-based grading and playbook loading, and explicit API cases.

Customer text is data everywhere: stored literally, never evaluated as a template, escaped in HTML.
"""

from __future__ import annotations

import copy
import html as html_lib
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import playbooks
from incident.feedback.grading import Signals, grade
from playbooks import PlaybookError, load_file
from tests.conftest import Service

signals = st.builds(
    Signals,
    customers=st.integers(1, 100_000),
    media=st.booleans(),
    injury=st.booleans(),
    property_loss=st.booleans(),
    brand_risk=st.booleans(),
    regional_outage=st.booleans(),
    big_loss=st.booleans(),
    compensation_demand=st.booleans(),
)


@settings(max_examples=300)
@given(signals, st.one_of(st.none(), st.integers(1, 3)))
def test_grading_properties(sig: Signals, current: int | None) -> None:
    result = grade(sig, current)
    assert result.level in (1, 2, 3) and result.reasons
    if current is not None:
        assert result.level <= current  # never goes down
    fresh = grade(sig).level
    if sig.customers >= 100 or sig.media or sig.injury or sig.property_loss or sig.brand_risk:
        assert fresh == 1
    elif sig.customers >= 10 or sig.regional_outage or sig.big_loss or sig.compensation_demand:
        assert fresh == 2
    else:
        assert fresh == 3


@settings(max_examples=200)
@given(signals, st.integers(1, 1000))
def test_more_customers_never_lowers_the_level(sig: Signals, extra: int) -> None:
    more = Signals(**{**sig.__dict__, "customers": sig.customers + extra})
    assert grade(more).level <= grade(sig).level


BASE = yaml.safe_load((Path(playbooks.__file__).parent / "product_quality.yaml").read_text())
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.lists(st.text(max_size=8), max_size=3),
    st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


PATHS = _paths(BASE)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(PATHS), junk), min_size=1, max_size=3), st.booleans())
def test_playbook_loading_never_crashes(
    tmp_path: Path, edits: list[tuple[tuple[Any, ...], Any]], delete: bool
) -> None:
    data = copy.deepcopy(BASE)
    for path, value in edits:
        node = data
        try:
            for part in path[:-1]:
                node = node[part]
            if delete and isinstance(node, dict):
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    target = tmp_path / "product_quality.yaml"
    target.write_text(yaml.safe_dump(data, allow_unicode=True))
    try:
        book = load_file(target)
    except PlaybookError as exc:
        assert str(target) in str(exc)  # a clear error naming the file
    else:
        assert book.category == "product_quality"


INJECTION = "{{ 7*7 }} {% for x in y %}{% endfor %} <script>alert(1)</script> '; DROP TABLE feedback; --"
CJK = "电池鼓包了😡，请尽快处理 — 🔋💥"


def test_explicit_api_cases(service: Service) -> None:
    db = sqlite3.connect(service.home / "incident.db")
    count = lambda: db.execute("select count(*) from feedback").fetchone()[0]  # noqa: E731
    before = count()
    raw = service.api(
        "POST", "/api/feedback", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert raw.status_code == 422
    huge = service.api(
        "POST", "/api/feedback", json={"category": "product_quality", "summary": "x" * 1_000_000}
    )
    assert huge.status_code == 413
    long = service.api("POST", "/api/feedback", json={"category": "product_quality", "summary": "x" * 20_000})
    assert long.status_code == 422 and "summary" in long.json()["error"]
    for body in (
        {"category": "weather", "summary": "x"},
        {"category": "product_quality", "summary": "x", "customers": -5},
        {"category": "product_quality", "summary": "nul \x00 inside"},  # PostgreSQL text cannot hold it
    ):
        refused = service.api("POST", "/api/feedback", json=body)
        assert refused.status_code == 422 and refused.json()["error"], body
    contact = {"by": "a\x00b"}
    assert service.api("POST", "/api/incidents/INC19990101001/contact", json=contact).status_code == 422
    assert count() == before  # nothing half-stored

    stored = service.api(
        "POST",
        "/api/feedback",
        json={
            "category": "product_quality",
            "summary": INJECTION + " " + CJK,
            "customer": "Robert'); DROP TABLE--",
            "product_model": "<b>X</b>",
            "batch": "hostile-1",
        },
    ).json()
    assert count() == before + 1
    row = db.execute(
        "select summary, customer_name from feedback where id = ?", (stored["feedback_id"],)
    ).fetchone()
    assert row == (INJECTION + " " + CJK, "Robert'); DROP TABLE--")
    shown = service.show(stored["incident_id"])
    assert INJECTION in shown["summary"] and CJK in shown["summary"]

    inc = stored["incident_id"]
    service.wait_for_point(inc, "contact")
    pm = f"/api/incidents/{inc}/postmortem"
    html = service.api("GET", pm, params={"format": "html", "lang": "en"}).text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "{{ 7*7 }}" in html and CJK in html  # the braces survive: never evaluated
    md = service.api("GET", pm, params={"format": "md", "lang": "zh"}).text
    assert "<script>" not in md  # Markdown escapes too: backslashes for its specials, entities for HTML
    md_text = re.sub(r"\\(.)", r"\1", html_lib.unescape(md))
    assert "{{ 7*7 }}" in md_text and "{% for x in y %}" in md_text and CJK in md_text
    notices = service.inbox.for_incident(inc)
    assert any("{{ 7*7 }}" in m["message"] and "<script>alert(1)</script>" in m["message"] for m in notices)
    assert any(CJK in m["message"] for m in notices)


def test_service_refuses_to_start_with_a_broken_playbook(tmp_path: Path) -> None:
    folder = tmp_path / "books"
    folder.mkdir()
    for path in Path(playbooks.__file__).parent.glob("*.yaml"):
        text = path.read_text().replace("contact_within: 1h", "contat_within: 1h", 1)
        (folder / path.name).write_text(text)
    env = {
        "PATH": "/usr/bin:/bin",
        "INCIDENT_HOME": str(tmp_path / "home"),
        "INCIDENT_PLAYBOOKS": str(folder),
        "PREFECT_API_URL": "http://127.0.0.1:9/api",
    }
    result = subprocess.run(
        [sys.executable, "-m", "incident.cli", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert (
        "service_failure.yaml" in result.stderr
        or "special_scenario.yaml" in result.stderr
        or "product_quality.yaml" in result.stderr
    )
    assert "contat_within" in result.stderr and len(result.stderr.strip().splitlines()) == 1
