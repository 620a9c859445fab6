"""Customer text in the Markdown downloads (records, post-mortem) is escaped, through the real renderer.

A ``.md`` download is opened in Markdown viewers that pass raw HTML through; hostile customer text
must show as written there, and must not become HTML, emphasis, code, a link, an image, a heading,
a list or a table cell. Each record is rendered twice from the same dossier (benign text, then
hostile text in every customer-written field) and converted by two real Markdown renderers
(Python-Markdown, and markdown-it-py in CommonMark mode with GFM tables and strikethrough): the
hostile render must produce exactly the same HTML elements as the benign one, and its text must
read as the customer wrote it.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Callable, Iterator

import markdown
import pytest
from markdown_it import MarkdownIt

import models
from incident.records.documents import render
from models import CauseAnalysis, Confirmation, Contact, Feedback, Incident, Measure, Survey, session_scope
from models.record import RECORD_KINDS
from tests.test_documents import INC, dossier, insert_incident

HOSTILE = (
    "# Not a heading <script>alert(1)</script> <b>bold</b> *emphasis* _x_ `code` "
    "[link](javascript:alert(1)) ![img](http://x/i.png) | pipe | ~~gone~~ &amp; <!-- c --> \\*"
)
LEADING = "1. not a list - > not a quote"
BENIGN = "plain words only"
FIELDS: dict[type[models.Base], tuple[str, ...]] = {
    Incident: ("summary",),
    Feedback: ("summary", "customer_name", "order_no", "impact", "evidence", "occurred_at"),
    CauseAnalysis: ("root", "direct"),
    Measure: ("note",),
    Contact: ("note",),
    Confirmation: ("note",),
    Survey: ("suggestion",),
}
TAG = re.compile(r"<\s*([a-zA-Z][a-zA-Z0-9]*)")

_commonmark = MarkdownIt("commonmark").enable(["table", "strikethrough"])
RENDERERS: dict[str, Callable[[str], str]] = {
    "python-markdown": lambda md: markdown.markdown(md, extensions=["tables", "sane_lists"]),
    "commonmark+gfm": _commonmark.render,
}


@pytest.fixture()
def db(tmp_path, monkeypatch) -> Iterator[None]:
    monkeypatch.setenv("INCIDENT_DB_URL", f"sqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("INCIDENT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("INCIDENT_TZ", "UTC")
    models.Base.metadata.create_all(models.get_engine())
    insert_incident()
    yield
    models.reset_engine()


def _set_customer_text(main: str, leading: str) -> None:
    """Every customer-written field of the incident's rows; ``evidence`` gets the leading-marker text."""
    with session_scope() as s:
        for model, columns in FIELDS.items():
            for row in s.query(model).all():
                for column in columns:
                    setattr(row, column, leading if column == "evidence" else main)
    assert dossier().incident_id == INC


def _tags(rendered: str) -> Counter[str]:
    return Counter(name.lower() for name in TAG.findall(rendered))


def _text(rendered: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", rendered)))


def _renders(lang: str) -> dict[str, str]:
    d = dossier()
    return {kind: render(kind, d, lang=lang, fmt="md") for kind in RECORD_KINDS}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_hostile_customer_text_is_inert_in_markdown(db, lang: str) -> None:
    _set_customer_text(BENIGN, BENIGN)
    benign = _renders(lang)
    _set_customer_text(HOSTILE, LEADING)
    hostile = _renders(lang)
    shown_somewhere = {name: False for name in RENDERERS}
    for kind in RECORD_KINDS:
        md = hostile[kind]
        assert "<script" not in md and "<b>" not in md and "<!--" not in md, kind
        assert not re.search(r"(?<!\\)\]\(javascript:", md), kind  # the link syntax is broken up
        for line in md.splitlines():  # no line of customer text begins a heading, list or quote
            assert not line.startswith(("# Not", "1. not", "> not")), (kind, line)
        for name, to_html in RENDERERS.items():
            expected, got = to_html(benign[kind]), to_html(md)
            assert _tags(got) == _tags(expected), (kind, name, _tags(got) - _tags(expected))
            text = _text(got)
            if HOSTILE in text:
                shown_somewhere[name] = True
            if kind == "customer_issue":  # the feedback table: text intact, one row per field
                assert HOSTILE in text and LEADING in text, (kind, name)
                assert got.count("<tr>") == expected.count("<tr>"), (kind, name)
                assert got.count("<td>") == expected.count("<td>"), (kind, name)
    assert all(shown_somewhere.values()), shown_somewhere


def test_the_check_can_fail_on_unescaped_text(db) -> None:
    """The tag comparison sees markup: the same hostile text, unescaped, adds elements."""
    _set_customer_text(BENIGN, BENIGN)
    benign = render("customer_issue", dossier(), lang="en", fmt="md")
    raw = benign.replace(BENIGN, HOSTILE)
    for to_html in RENDERERS.values():
        assert _tags(to_html(raw)) != _tags(to_html(benign))


def test_html_output_still_escapes(db) -> None:
    _set_customer_text(HOSTILE, LEADING)
    page = render("postmortem", dossier(), lang="en", fmt="html")
    assert "<script" not in page and "<b>" not in page and '<a href="javascript' not in page
    assert HOSTILE in _text(page)
