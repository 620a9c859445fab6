"""Monthly and quarterly reviews (issue 13 item 4): figures, sentences, documents, schedule, CLI."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from incident.metrics import service as metrics
from incident.reviews import findings, render, schedule, service
from incident.reviews.seed import seed_month
from models import Deadline, Incident, Record, Survey, session_scope
from models.notification import Delivery


def _add(s, inc_id, category, level, identified, contact_min, resolved_h, score, contact_missed=False):  # noqa: ANN001
    contact = identified + timedelta(minutes=contact_min)
    resolved = identified + timedelta(hours=resolved_h)
    s.add(
        Incident(
            id=inc_id, category=category, level=level, status="closed",
            correlation_key=f"{category}|feedback=FB{inc_id}", open_key=None, summary="s", customers=1,
            level_reasons=[], identified_at=identified, first_contact_at=contact, resolved_at=resolved,
            closed_at=resolved + timedelta(hours=50),
        )
    )  # fmt: skip
    s.flush()
    s.add(
        Deadline(
            incident_id=inc_id, kind="contact", due_at=identified, created_at=identified,
            state="missed" if contact_missed else "met",
        )
    )  # fmt: skip
    s.add(
        Survey(incident_id=inc_id, round=1, at=resolved, by="t", speed=4, result=4, attitude=4, score=score)
    )


@pytest.fixture
def months(db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """October: 5 product-quality incidents; November: 6 product-quality (level 3, 4 of 5 surveys
    good = 80% = target) and 2 service failures (level 2, 1 of 2 good = 50% < 85%), contact missed in
    3 of November's 8."""
    monkeypatch.setenv("INCIDENT_TZ", "UTC")
    oct1, nov1 = datetime(2026, 10, 3, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC)
    with session_scope() as s:
        for n in range(5):
            _add(s, f"O{n}", "product_quality", 3, oct1 + timedelta(days=n), 30, 10, 5.0)
        for n, score in enumerate((5.0, 4.0, 4.5, 4.0, 2.0, 3.0)):
            _add(
                s,
                f"N{n}",
                "product_quality",
                3,
                nov1 + timedelta(days=n),
                60,
                20,
                score,
                contact_missed=n < 2,
            )
        _add(s, "S0", "service_failure", 2, nov1, 90, 30, 5.0, contact_missed=True)
        _add(s, "S1", "service_failure", 2, nov1 + timedelta(days=1), 30, 30, 3.0)
    return db


def _review(period: service.Period) -> dict:
    with session_scope() as s:
        return service.review(s, period)


def test_monthly_figures_sentences_and_targets(months: str) -> None:
    d = _review(service.month("2026-11"))
    assert d["incidents"] == 8
    assert d["by_category"] == {"product_quality": 6, "service_failure": 2, "special_scenario": 0}
    assert d["by_level"] == {"1": 0, "2": 2, "3": 6}
    assert d["by_level_times"]["3"]["response_minutes_p50"] == 60.0
    assert d["limits"]["3"]["contact_minutes"] == 120 and d["limits"]["2"]["satisfaction_target"] == 0.85
    sat = d["satisfaction"]["by_level"]
    assert (sat["3"]["share"], sat["3"]["met"]) == (0.6667, False)  # 4.0, 4.0, 4.5, 5.0 of 6
    assert (sat["2"]["share"], sat["2"]["met"]) == (0.5, False)
    assert d["deadlines"] == {"contact": {"met": 5, "missed": 3, "total": 8}}
    zh = [findings.sentence(c, "zh") for c in d["changes"]]
    assert "本月产品质量类事件增加20%（5 → 6）" in zh
    assert "本月事件总数增加60%（5 → 8）" in zh
    assert not any("服务失误类" in s for s in zh)  # October had none: no percentage of nothing
    en = [findings.sentence(c, "en") for c in d["changes"]]
    assert "Product quality incidents rose 20% this month (5 → 6)" in en
    october = _review(service.month("2026-10"))
    assert october["satisfaction"]["by_level"]["3"]["met"] is True  # 5 of 5 ≥ 80%


def test_documents_md_html_pdf_zh_and_en(months: str, tmp_path: Path) -> None:
    d = _review(service.month("2026-11"))
    md = render.document(d, "zh", "md").decode()
    assert md.startswith("# 2026-11 月度复盘报告")
    assert "本月产品质量类事件增加20%" in md and md.count("data:image/png;base64,") == 3
    assert "| 三级 | 6 | 4 | 67% | 80% | 否 |" in md
    # the guide's count table, category × level, with each category's medians and a total row
    assert "| 产品质量类 | 0 | 0 | 6 | 6 | 5 | 60 | 20 |" in md
    assert "| 服务失误类 | 0 | 2 | 0 | 2 | 0 | 60 | 30 |" in md
    assert "| 合计 | 0 | 2 | 6 | 8 | 5 | 60 | 20 |" in md
    en = render.document(d, "en", "md").decode()
    assert en.startswith("# Monthly review 2026-11") and "产品质量" not in en
    html = render.document(d, "zh", "html").decode()
    assert '<html lang="zh-CN">' in html and "<table>" in html and 'src="data:image/png;base64,' in html
    pdf = render.document(d, "zh", "pdf")
    assert pdf.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 2
    text = "".join(page.extract_text() or "" for page in reader.pages)
    assert "月度复盘报告" in text and "首次联系客户" in text  # CJK text, not boxes
    assert {img.name for page in reader.pages for img in page.images}  # the charts are images
    (tmp_path / "review.pdf").write_bytes(pdf)


def test_quarterly_findings(months: str) -> None:
    d = _review(service.quarter("2026-Q4"))
    assert d["months"] == ["2026-10", "2026-11", "2026-12"] and d["incidents"] == 13
    assert d["previous"]["incidents"] == 0 and d["changes"] == []
    codes = {(f["code"], f["key"]) for f in d["findings"]}
    assert ("most_missed", "contact") in codes
    assert ("reconsider_deadline", "contact") in codes  # 3 of 13 = 23% > 20%
    assert ("longest_stage", "closing") in codes  # 50 h from resolved to closed
    assert ("satisfaction_below", "2") in codes and ("satisfaction_below", "3") not in codes  # 9/11 ≥ 80%
    zh = [findings.sentence(f, "zh", "quarter") for f in d["findings"]]
    assert "“首次联系客户”时限超时比例 23% 超过 20%，建议复核预案中该时限的设置或人手安排" in zh
    text = render.document(d, "zh", "md").decode()
    assert "## 七、流程问题与建议" in text and "季度" in text
    with pytest.raises(Exception, match="2026-Q4"):
        service.quarter("2026-Q5")


def test_seeded_month_is_meaningful(db: str) -> None:
    with session_scope() as s:
        ids = seed_month(s, "2026-09", 60)
    d = _review(service.month("2026-09"))
    assert len(ids) == 60 and d["incidents"] == 60
    assert sum(d["by_category"].values()) == 60 and all(d["by_category"].values())
    assert sum(v["total"] for v in d["deadlines"].values()) == 120
    assert 0 < d["deadlines"]["contact"]["missed"] < 60 and d["top_recurring"]
    assert d["satisfaction"]["surveys"] == 60
    zh = render.document(d, "zh", "md").decode()
    recurring = zh.split("## 六、重复发生")[1]
    assert "\n1. 产品质量类：型号 P30，批次 B1：4 起（" in recurring  # words, not codes (deterministic seed)
    assert "2. 服务失误类：服务 repair，地区 华南1：3 起" in recurring and "=" not in recurring
    en = render.document(d, "en", "md").decode().split("## 6. Recurrence")[1]
    assert "1. Product quality: product model P30, batch B1: 4 incidents (" in en


def test_problem_labels_in_words_with_customer_text_escaped(db: str) -> None:
    key = "key:product_quality|product_model=P30|batch=<b>B1</b>"
    assert metrics.problem_label(key) == "product_quality: product_model=P30, batch=<b>B1</b>"  # the API's
    assert metrics.problem_label(key, "zh") == "产品质量类：型号 P30，批次 <b>B1</b>"
    assert (
        metrics.problem_label("key:service_failure|service=|region=华东", "en")
        == "Service failure: region 华东"
    )
    assert metrics.problem_label("cause:separator defect", "zh") == "根本原因：separator defect"
    with session_scope() as s:
        for n, day in enumerate((3, 9)):
            _add(s, f"R{n}", "product_quality", 3, datetime(2026, 8, day, tzinfo=UTC), 30, 5, 5.0)
            s.get_one(Incident, f"R{n}").correlation_key = key[4:]
    md = render.document(_review(service.month("2026-08")), "zh", "md").decode()
    assert "1. 产品质量类：型号 P30，批次 &lt;b&gt;B1&lt;/b&gt;：2 起（R0、R1）" in md


def test_monthly_schedule_writes_once_and_tells_leadership(
    months: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_of_december = datetime(2026, 12, 1, 0, 5, tzinfo=UTC)
    assert asyncio.run(schedule.monthly(first_of_december)) == {"reviews": 1}
    assert asyncio.run(schedule.monthly(first_of_december + timedelta(hours=1))) == {"reviews": 0}
    monkeypatch.setenv("INCIDENT_HOME", str(tmp_path / "another-machine"))  # a worker with its own home
    assert asyncio.run(schedule.monthly(first_of_december + timedelta(hours=1))) == {"reviews": 0}
    monkeypatch.setenv("INCIDENT_HOME", str(tmp_path))
    pdf = tmp_path / "reviews" / "review-2026-11.zh.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    assert (tmp_path / "reviews" / "review-2026-11.zh.md").read_text().startswith("# 2026-11 月度复盘报告")
    with session_scope() as s:
        rows = s.scalars(select(Delivery).where(Delivery.notice == "review_ready")).all()
    assert [r.role for r in rows] == ["leadership"]  # one notice (no channel configured: no_recipient)


def test_bad_period_is_exit_2_with_one_line() -> None:
    for args in (["--month", "2026-13"], ["--quarter", "2026-Q5"], []):
        result = subprocess.run(
            [sys.executable, "-m", "incident.cli", "review", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, result
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_review_through_the_service(service) -> None:  # noqa: ANN001
    """`incident seed` then `incident review` as a user types them, the document over HTTP."""
    seeded = service.cli_json("seed", "--month", "2026-05", "--incidents", "30")
    assert seeded["incidents"] == 30
    zh = Path(service.cli_json("review", "--month", "2026-05")["path"])
    assert zh.read_text().startswith("# 2026-05 月度复盘报告") and "事件总数 30" in zh.read_text()
    out = service.home / "r.pdf"
    got = service.cli_json(
        "review", "--quarter", "2026-Q2", "--lang", "en", "--format", "pdf", "--out", str(out)
    )
    assert got == {"path": str(out.resolve())} and out.read_bytes().startswith(b"%PDF")
    exported = service.cli_json("export", "--format", "markdown", "--out", str(service.home / "kb"))
    assert exported["path"] == str((service.home / "kb").resolve()) and exported["files"] >= 2
    assert "reviews/2026-05.md" in (service.home / "kb" / "index.md").read_text()
    bad = service.api("GET", "/api/reviews/monthly", params={"month": "2026-5"})
    assert bad.status_code == 422 and "month" in json.loads(bad.text)["error"]


def test_export_tree_has_records_reviews_and_an_index(months: str) -> None:
    from incident.archive.service import tree

    with session_scope() as s:
        s.add(
            Record(
                incident_id="N0", kind="postmortem", lang="zh", format="md",
                content="# 复盘报告\n客户原话 <b>x</b>\n", updated_at=datetime(2026, 11, 9, tzinfo=UTC),
            )
        )  # fmt: skip
    with session_scope() as s:
        files = tree(s, "zh")
    assert set(files) == {
        "index.md",
        "incidents/N0/postmortem.md",
        "reviews/2026-10.md",
        "reviews/2026-11.md",
        "reviews/2026-Q4.md",
    }
    assert files["incidents/N0/postmortem.md"].decode() == "# 复盘报告\n客户原话 <b>x</b>\n"  # as archived
    index = files["index.md"].decode()
    assert "(incidents/N0/postmortem.md)" in index and "[2026-11](reviews/2026-11.md)" in index
    assert "## 季度复盘\n\n- [2026-Q4](reviews/2026-Q4.md)" in index
    assert files["reviews/2026-Q4.md"].decode().startswith("# 2026-Q4 季度复盘报告")
    assert files["reviews/2026-11.md"].decode().startswith("# 2026-11 月度复盘报告")


def test_chinese_chart_labels_find_a_cjk_font_installed_after_matplotlibs_cache() -> None:
    """matplotlib's font cache is built once; a CJK font installed later is found among the system's
    files, so the zh charts keep Chinese labels instead of falling back to English."""
    from matplotlib import font_manager

    from incident.reviews import charts

    if not any(k in Path(p).name.lower() for p in font_manager.findSystemFonts() for k in charts.CJK_FILES):
        pytest.skip("no CJK font on this machine (fonts-noto-cjk or fonts-wqy-microhei)")
    kept = list(font_manager.fontManager.ttflist)
    font_manager.fontManager.ttflist = [f for f in kept if f.name not in charts.CJK_FONTS]  # a stale cache
    charts.cjk_font.cache_clear()
    try:
        assert charts.cjk_font() in charts.CJK_FONTS
        assert charts._lang("zh") == "zh"  # the labels stay Chinese
    finally:
        charts.cjk_font.cache_clear()
