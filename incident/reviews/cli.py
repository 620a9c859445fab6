"""``incident review``: a month's or a quarter's review as a file; ``incident seed``: a month to review.

``review`` is a thin client of ``GET /api/reviews/monthly|quarterly``. ``seed`` writes to the database
named by ``INCIDENT_DB_URL`` directly, as ``incident db`` does (a demo/test tool, not a service action:
it fabricates closed incidents of a past month, see ``incident.reviews.seed``).
"""

from __future__ import annotations

import re
from pathlib import Path

from incident import environ
from incident.terminal import Args, Group, download, emit, fail, opt, write

commands = Group()
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
QUARTER = re.compile(r"^\d{4}-Q[1-4]$")


@commands.command(
    "review",
    opt("--month", help="YYYY-MM"),
    opt("--quarter", help="YYYY-Qn"),
    opt("--format", choices=("md", "html", "pdf"), default="md", help="md | html | pdf"),
    opt("--lang", choices=("zh", "en"), default=None, help="zh | en (default: INCIDENT_LANG)"),
    opt("--out", type=Path, default=None, help="file to write"),
)
def review(a: Args) -> None:
    """Write the monthly (--month) or quarterly (--quarter) review; prints its path."""
    if (a.month is None) == (a.quarter is None):
        fail("give exactly one of --month YYYY-MM or --quarter YYYY-Qn", a.json)
    if a.month is not None and not MONTH.match(a.month):
        fail(f"month must look like 2026-11, got {a.month!r}", a.json)
    if a.quarter is not None and not QUARTER.match(a.quarter):
        fail(f"quarter must look like 2026-Q4, got {a.quarter!r}", a.json)
    lang = a.lang or environ.lang()
    route, name = ("monthly", a.month) if a.month else ("quarterly", a.quarter)
    params = {"month" if a.month else "quarter": name, "lang": lang, "format": a.format}
    response = download(f"/api/reviews/{route}", params, a.json)
    path = a.out or environ.home() / "reviews" / f"review-{name}.{lang}.{a.format}"
    emit({"path": write(path, response.content)}, a.json)


@commands.command(
    "seed",
    opt("--month", required=True, help="YYYY-MM, a past month"),
    opt("--incidents", type=int, default=60, help="how many closed incidents (default 60)"),
)
def seed(a: Args) -> None:
    """Fill a past month with closed incidents (ORM rows with explicit timestamps) for a review demo."""
    if not MONTH.match(a.month or ""):
        fail(f"month must look like 2026-11, got {a.month!r}", a.json)
    if not 1 <= a.incidents <= 2000:
        fail(f"incidents must be between 1 and 2000, got {a.incidents}", a.json)
    from incident.reviews.seed import seed_month
    from models import session_scope

    with session_scope() as session:
        ids = seed_month(session, a.month, a.incidents)
    emit({"month": a.month, "incidents": len(ids), "first": ids[0], "last": ids[-1]}, a.json)
