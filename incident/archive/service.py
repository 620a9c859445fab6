"""The archive as a Markdown tree (issue 13 item 5): records, post-mortems, reviews, an index.

Why a tree of the stored Markdown and not a new rendering: the knowledge base (Confluence, Notion, a wiki,
a git repository) should hold exactly what the product archived, the seven records of each incident as
``incident records`` downloads them (the post-mortem is one of them); the monthly and quarterly reviews
are rendered as ``incident review`` renders them. The service builds the tree as a zip (one HTTP answer),
the CLI unpacks it; every path is made here from ids and codes only, never from customer text.
``incident.knowledge`` pushes the same pages to Confluence or Notion.
"""

from __future__ import annotations

import io
import zipfile
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from incident.metrics import service as metrics
from incident.records.documents import title
from incident.reviews import render
from incident.reviews import service as reviews
from models import Incident, Record, session_scope
from models.record import RECORD_KINDS
from playbooks import vocabulary


def tree(session: Session, lang: str = "zh") -> dict[str, bytes]:
    """Relative path → file bytes: ``index.md``, ``incidents/<ID>/<kind>.md``, ``reviews/<YYYY-MM>.md``
    and ``reviews/<YYYY-Qn>.md`` (every month and quarter with incidents)."""
    files: dict[str, bytes] = {}
    incidents = {
        i.id: i for i in session.scalars(select(Incident).order_by(Incident.identified_at, Incident.id))
    }
    kinds: dict[str, list[str]] = defaultdict(list)
    rows = session.scalars(
        select(Record).where(Record.lang == lang, Record.format == "md").order_by(Record.id)
    )
    for row in rows:
        if row.incident_id in incidents and row.kind in RECORD_KINDS:
            files[f"incidents/{row.incident_id}/{row.kind}.md"] = row.content.encode("utf-8")
            if row.kind not in kinds[row.incident_id]:
                kinds[row.incident_id].append(row.kind)
    tz = metrics.zone()
    months = sorted({metrics.month_of(i.identified_at, tz) for i in incidents.values()})
    quarters = sorted({quarter_of(m) for m in months})
    facts = metrics.load(session)
    for period in [*map(reviews.month, months), *map(reviews.quarter, quarters)]:
        data = reviews.review(session, period, facts)
        files[f"reviews/{period.name}.md"] = render.document(data, lang, "md")
    files["index.md"] = _index(incidents, kinds, months, quarters, lang).encode("utf-8")
    return files


def quarter_of(month: str) -> str:
    """``2026-11`` → ``2026-Q4``."""
    return f"{month[:4]}-Q{(int(month[5:]) - 1) // 3 + 1}"


def _index(
    incidents: dict[str, Incident],
    kinds: dict[str, list[str]],
    months: list[str],
    quarters: list[str],
    lang: str,
) -> str:
    """The entry page: incidents with links to their records, then the monthly and quarterly reviews."""
    en = lang == "en"
    lines = [
        "# " + ("Incident archive" if en else "事件档案"),
        "",
        "## " + ("Incidents" if en else "事件"),
        "",
    ]
    for inc_id, inc in incidents.items():
        if not kinds.get(inc_id):
            continue
        category = vocabulary.label("category", inc.category, lang)
        level = vocabulary.label("level_short", inc.level, lang)
        links = " · ".join(
            f"[{title(k, lang)}](incidents/{inc_id}/{k}.md)" for k in RECORD_KINDS if k in kinds[inc_id]
        )
        lines.append(f"- **{inc_id}** {level} {category} {inc.identified_at:%Y-%m-%d}: {links}")
    lines += ["", "## " + ("Monthly reviews" if en else "月度复盘"), ""]
    lines += [f"- [{m}](reviews/{m}.md)" for m in months]
    lines += ["", "## " + ("Quarterly reviews" if en else "季度复盘"), ""]
    lines += [f"- [{q}](reviews/{q}.md)" for q in quarters]
    return "\n".join(lines) + "\n"


def zipped(lang: str = "zh") -> tuple[bytes, int]:
    """The tree as a zip archive (deflated) and how many files it holds."""
    with session_scope() as session:
        files = tree(session, lang)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, body in sorted(files.items()):
            archive.writestr(path, body)
    return buffer.getvalue(), len(files)
