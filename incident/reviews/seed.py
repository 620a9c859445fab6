"""``seed_month``: a past month with enough closed incidents for a meaningful review (demo and tests).

Why rows with explicit timestamps and not the report path: a review is about a month that is over,
and driving 60 incidents through their flows with an injected clock would take the service minutes per
incident. These rows are written through the ORM as the flows would leave them once closed (incident,
first contact, deadlines met or missed, surveys), with the same ids (``models.ids``) and the playbooks'
own limits, deterministically (the month seeds the random numbers), so a test can check exact figures.
They carry no timeline or records: ``show`` of such an incident is thin, the review is not.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

import playbooks
from incident.metrics import service as metrics
from models import Deadline, Incident, Survey
from models.ids import next_id
from models.response import Contact

CATEGORY_WEIGHTS = {"product_quality": 5, "service_failure": 3, "special_scenario": 2}
LEVEL_WEIGHTS = {1: 1, 2: 3, 3: 6}
RECURRING_SHARE = 0.3  # the others stand alone (a report with no correlation fields)
PROBLEMS = {  # a few recurring problem keys per category, so recurrence has something to find
    "product_quality": ["product_model=P30|batch=B{n}", "product_model=X9|batch=C{n}"],
    "service_failure": ["service=install|region=华东{n}", "service=repair|region=华南{n}"],
    "special_scenario": ["cause=typhoon|region=东南{n}"],  # the playbook's correlation: cause, region
}


def seed_month(session: Session, month: str, count: int, *, late_share: float = 0.25) -> list[str]:
    """Write ``count`` closed incidents identified in ``month``; return their ids.

    ``late_share`` of them get their first contact after the level's limit (a missed contact deadline).
    """
    year, mon = metrics.check_month(month)
    start = datetime(year, mon, 1, tzinfo=UTC)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=UTC)
    rng = random.Random(f"{month}:{count}")
    books = playbooks.load_all()
    ids = []
    for _ in range(count):
        category = rng.choices(list(CATEGORY_WEIGHTS), list(CATEGORY_WEIGHTS.values()))[0]
        level = rng.choices(list(LEVEL_WEIGHTS), list(LEVEL_WEIGHTS.values()))[0]
        rules = books[category].level(level)
        identified = start + timedelta(seconds=rng.randrange(int((end - start).total_seconds()) - 7 * 86400))
        limit = rules.contact_within
        late = rng.random() < late_share
        contact = identified + (limit * rng.uniform(1.1, 2.0) if late else limit * rng.uniform(0.2, 0.9))
        resolved = contact + timedelta(hours=rng.uniform(2, 60 if level == 3 else 30))
        closed = resolved + timedelta(hours=rng.uniform(4, 70))
        recurring = rng.random() < RECURRING_SHARE
        key = rng.choice(PROBLEMS[category]).format(n=rng.randrange(3)) if recurring else None
        inc_id = next_id(session, "INC", identified)
        inc = Incident(
            id=inc_id,
            category=category,
            level=level,
            status="closed",
            correlation_key=f"{category}|{key or 'feedback=' + inc_id}",
            open_key=None,
            summary=f"seeded incident of {month}",
            customers=rng.randrange(1, 10) if level == 3 else rng.randrange(10, 150),
            level_reasons=[],
            identified_at=identified,
            first_contact_at=contact,
            resolved_at=resolved,
            closed_at=closed,
        )
        session.add(inc)
        session.flush()
        session.add(
            Contact(incident_id=inc.id, at=contact, by="seed", note=None, first=True, on_time=not late)
        )
        _deadline(session, inc.id, "contact", identified, identified + limit, contact, late)
        due = resolved + rules.postmortem_due
        _deadline(session, inc.id, "postmortem", resolved, due, closed, closed > due)
        scores = [rng.choice((5, 5, 4, 4, 3, 2) if late else (5, 5, 5, 4, 4, 3)) for _ in range(3)]
        session.add(
            Survey(
                incident_id=inc.id,
                round=1,
                at=resolved + timedelta(hours=1),
                by="seed",
                speed=scores[0],
                result=scores[1],
                attitude=scores[2],
                suggestion=None,
                score=round(sum(scores) / 3, 2),
            )
        )
        ids.append(inc.id)
    return ids


def _deadline(
    session: Session,
    incident_id: str,
    kind: str,
    created: datetime,
    due: datetime,
    done: datetime,
    missed: bool,
) -> None:
    session.add(
        Deadline(
            incident_id=incident_id,
            kind=kind,
            due_at=due,
            created_at=created,
            state="missed" if missed else "met",
            met_at=None if missed else done,
            missed_at=due if missed else None,
        )
    )
