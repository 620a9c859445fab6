"""The seven records archived as a real incident moves on, listed and downloaded (md, html, pdf).

Driven through the real service and its Prefect flow runs with the ``incident`` CLI: each record must
appear when its facts do (not later), the customer issue form must follow a joining report, and the
archive must hold all seven kinds after close. PDFs are checked with pypdf: a real PDF whose text has
the incident id and the Chinese title, set in a CJK font.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from models.record import RECORD_KINDS
from tests.conftest import RUN_WAIT, Service

CJK_FONTS = ("notosanscjk", "notoserifcjk", "wenquanyi", "sourcehansans", "droidsansfallback")


def listed(service: Service, incident_id: str) -> dict[str, dict[str, Any]]:
    response = service.api("GET", f"/api/incidents/{incident_id}/records")
    response.raise_for_status()
    return {r["kind"]: r for r in response.json()["records"]}


def available(service: Service, incident_id: str) -> set[str]:
    return {kind for kind, r in listed(service, incident_id).items() if r["available"]}


def wait_records(service: Service, incident_id: str, kinds: set[str], timeout: float = RUN_WAIT) -> set[str]:
    deadline = time.monotonic() + timeout
    while not kinds <= (have := available(service, incident_id)):
        assert time.monotonic() < deadline, f"{incident_id}: records {kinds - have} never archived"
        time.sleep(0.2)
    return have


def record(service: Service, incident_id: str, kind: str, lang: str = "zh", fmt: str = "md") -> Any:
    return service.api(
        "GET", f"/api/incidents/{incident_id}/records/{kind}", params={"lang": lang, "format": fmt}
    )


def pdf_facts(data: bytes) -> tuple[str, set[str]]:
    """The PDF's text and the base names of its fonts."""
    reader = PdfReader(io.BytesIO(data))
    text = "".join(page.extract_text() or "" for page in reader.pages)
    fonts = {  # "/ABCDEF+Noto-Sans-CJK-SC" → "notosanscjksc"
        str(font.get_object().get("/BaseFont", "")).split("+")[-1].replace("-", "").replace(" ", "").lower()
        for page in reader.pages
        for font in (page.get("/Resources", {}).get_object().get("/Font", {}) or {}).values()
    }
    return text, fonts


def test_records_follow_the_incident_and_download_in_three_formats(service: Service, tmp_path: Path) -> None:
    batch = f"R-{tmp_path.name[-10:]}"
    first = service.cli_json(
        "report",
        "--category",
        "product_quality",
        "--summary",
        "冰箱不制冷 fridge not cooling",
        "--product-model",
        "F300",
        "--batch",
        batch,
        "--customer",
        "李雷",
        "--contact",
        "13711112222",
    )
    inc = first["incident_id"]
    assert wait_records(service, inc, {"level_determination", "customer_issue"}) == {
        "level_determination",
        "customer_issue",
    }
    missing = record(service, inc, "cause_analysis")
    assert missing.status_code == 404 and "not available yet" in missing.json()["error"]
    cli_missing = service.cli("records", inc, "--kind", "cause_analysis", "--json", check=False)
    assert cli_missing.returncode == 2 and "尚未生成" in cli_missing.stderr  # zh by default
    assert json.loads(cli_missing.stdout)["code"] == "record_not_yet"

    # A second customer joins: the customer issue form is archived again with their report.
    joined = service.cli_json(
        "report",
        "--category",
        "product_quality",
        "--summary",
        "mine too",
        "--product-model",
        "F300",
        "--batch",
        batch,
        "--customer",
        "韩梅梅",
        "--contact",
        "13733334444",
    )
    assert joined["incident_id"] == inc and joined["level"] == first["level"]
    deadline = time.monotonic() + 60
    while joined["feedback_id"] not in record(service, inc, "customer_issue", "en").text:
        assert time.monotonic() < deadline, "customer issue form not refreshed after the join"
        time.sleep(0.2)
    assert "13733334444" not in record(service, inc, "customer_issue").text  # masked

    for command in (
        ["contact", "--by", "王芳"],
        ["measure", "--kind", "onsite_repair"],
        ["cause", "--root", "compressor relay lot R9", "--direct", "relay sticks", "--stage", "production"],
    ):
        service.cli_json(command[0], inc, *command[1:])
    service.wait_for_point(inc, "proposal-1")
    have = wait_records(service, inc, {"cause_analysis"})
    assert "solution_approval" not in have and "postmortem" not in have
    assert "compressor relay lot R9" in record(service, inc, "cause_analysis", "en").text

    service.cli_json("propose", inc, "--solution", "replace")
    service.wait_for_point(inc, "approval-1")
    wait_records(service, inc, {"solution_approval"})
    service.cli_json("approve", inc, "--by", "Zhou", "--role", "dept_head")
    service.cli_json("confirm", inc, "--result", "unsatisfied")
    service.wait_for_point(inc, "proposal-2")
    assert "resolution_confirmation" in wait_records(service, inc, {"resolution_confirmation"})
    assert "postmortem" not in available(service, inc)  # not resolved yet

    for command in (
        ["propose", "--solution", "repair"],
        ["approve", "--by", "Zhou", "--role", "dept_head"],
        ["confirm", "--result", "satisfied"],
        ["survey", "--speed", "5", "--result", "5", "--attitude", "4"],
    ):
        service.cli_json(command[0], inc, *command[1:])
    closed = service.wait_until(inc, lambda s: s["status"] == "closed", "closed", timeout=90)
    closed_at = next(e["at"] for e in closed["timeline"] if e["event"] == "closed")
    deadline = time.monotonic() + 60  # the close's archive runs after the status is committed
    while (listing := service.cli_json("records", inc)) and any(
        (r["updated_at"] or "") < closed_at for r in listing["records"] if r["kind"] == "postmortem"
    ):
        assert time.monotonic() < deadline, "the post-mortem was not archived again at close"
        time.sleep(0.3)
    assert listing["incident_id"] == inc
    assert [r["kind"] for r in listing["records"]] == list(RECORD_KINDS)
    for r in listing["records"]:
        assert r["available"] and r["languages"] == ["zh", "en"] and r["formats"] == ["md", "html", "pdf"]
        assert r["updated_at"] and r["path"] == f"/api/incidents/{inc}/records/{r['kind']}"
    titles = {r["kind"]: r["title"] for r in listing["records"]}
    assert titles["postmortem"] == {"zh": "复盘报告", "en": "Post-mortem report"}
    by_kind = {r["kind"]: r for r in listing["records"]}
    assert by_kind["postmortem"]["updated_at"] >= closed_at  # archived again at close
    assert by_kind["improvement_measures"]["updated_at"] >= closed_at

    md = tmp_path / "pm.md"
    got = service.cli_json("records", inc, "--kind", "postmortem", "--lang", "en", "--out", str(md))
    assert got["path"] == str(md) and got["format"] == "md" and got["updated_at"]
    text = md.read_text(encoding="utf-8")
    assert inc in text and "## 1. What" in text and "compressor relay lot R9" in text
    assert "13711112222" not in text

    html = record(service, inc, "resolution_confirmation", "zh", "html")
    assert html.headers["content-type"].startswith("text/html") and "问题解决确认单" in html.text

    default = service.cli_json("records", inc, "--kind", "postmortem", "--format", "pdf")
    assert default["path"].endswith(f"{inc}/postmortem.zh.pdf")
    pdf = Path(default["path"]).read_bytes()
    assert pdf.startswith(b"%PDF-")
    text, fonts = pdf_facts(pdf)
    assert inc in text and "复盘报告" in text and "compressor relay lot R9" in text
    assert any(name in font for font in fonts for name in CJK_FONTS), fonts

    api_pdf = record(service, inc, "improvement_measures", "en", "pdf")
    assert api_pdf.headers["content-type"] == "application/pdf" and api_pdf.content.startswith(b"%PDF-")
    assert inc in pdf_facts(api_pdf.content)[0]


def test_postmortem_as_pdf_from_cli_and_api(service: Service, tmp_path: Path) -> None:
    inc = service.cli_json(
        "report", "--category", "special_scenario", "--summary", "暴雨导致配送中断", "--cause", "rainstorm"
    )["incident_id"]
    out = tmp_path / "draft.pdf"
    written = service.cli_json("postmortem", inc, "--format", "pdf", "--out", str(out))
    assert written["path"] == str(out) and written["due_at"] is None  # a draft: not resolved yet
    text, fonts = pdf_facts(out.read_bytes())
    assert inc in text and "复盘报告" in text and any(n in f for f in fonts for n in CJK_FONTS)
    response = service.api("GET", f"/api/incidents/{inc}/postmortem", params={"format": "pdf", "lang": "en"})
    assert response.headers["content-type"] == "application/pdf"
    assert "Post-mortem" in pdf_facts(response.content)[0]


def test_records_refuse_unknown_ids_kinds_and_formats(service: Service) -> None:
    assert service.api("GET", "/api/incidents/INC19990101001/records").status_code == 404
    assert record(service, "INC19990101001", "postmortem").status_code == 404
    reported = service.cli_json("report", "--category", "service_failure", "--summary", "rude agent")
    inc = reported["incident_id"]
    wait_records(service, inc, {"level_determination"})
    bad_kind = record(service, inc, "memo")
    assert bad_kind.status_code == 422 and "unknown record kind" in bad_kind.json()["error"]
    assert record(service, inc, "level_determination", fmt="docx").status_code == 422
    for args in (["--kind", "memo"], ["--kind", "postmortem", "--format", "docx"]):
        result = service.cli("records", inc, *args, check=False)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert service.cli("records", "INC19990101001", check=False).returncode == 2
    human = service.cli("records", inc)
    assert "level_determination" in human.stdout and "尚未生成" in human.stdout


def test_a_joining_report_leaves_the_archive_to_a_later_pending_one(any_db: str) -> None:
    """In a storm of reports only the latest pending run re-archives (its dossier holds the others)."""
    from sqlalchemy import update

    from incident.feedback import service as intake
    from incident.records.service import later_report_pending
    from models import Feedback, session_scope, utcnow

    ids = [
        intake.record(
            intake.FeedbackIn(
                category="product_quality",
                summary="battery swelling",
                product_model="P30",
                batch="STORM",
                contact=f"1380000000{n}",
            )
        ).feedback_id
        for n in range(3)
    ]
    assert [later_report_pending(i) for i in ids] == [True, True, False]
    with session_scope() as s:
        s.execute(update(Feedback).where(Feedback.id == ids[2]).values(handled_at=utcnow()))
    assert later_report_pending(ids[1]) is False  # the later one is done: archive again
    assert later_report_pending("FB19990101001") is False

    # One batch (the service's intake in a storm) shares one received_at: the last report archives.
    batch = intake.record_many(
        [
            intake.FeedbackIn(category="product_quality", summary="swelling", product_model="P30",
                              batch="TIED", contact=f"1390000000{n}")
            for n in range(4)
        ]
    )  # fmt: skip
    assert [later_report_pending(r.feedback_id) for r in batch] == [True, True, True, False]
