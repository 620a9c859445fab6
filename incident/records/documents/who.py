"""Who: each duty of the response, who carried it out, and whether it was on time."""

from __future__ import annotations

from incident.records.documents.facts import both, first_contact_at, kind_rows, minutes
from incident.records.documents.snapshot import EMPTY, Dossier, Duty, Label, minutes_between


def duties(d: Dossier) -> tuple[Duty, ...]:
    """Each duty of the response, who carried it out, and whether it was on time."""
    out: list[Duty] = []
    contact_limit = minutes(d.rules.contact_within)
    first = d.first_contact
    out.append(
        Duty(
            duty="contact",
            role="customer_service",
            people=(first.by,) if first else (),
            at=first_contact_at(d),
            minutes=d.response_minutes,
            outcome="done" if first or d.first_contact_at else "pending",
            timing=d.contact_timing,
            late_minutes=d.contact_late_minutes,
            limit_minutes=contact_limit,
        )
    )
    updates = [c for c in d.contacts if c.progress_update]  # one call to 37 is one
    progress = kind_rows(d, "progress")
    if updates:
        missed = [x for x in progress if x.state == "missed"]
        out.append(
            Duty(
                duty="progress",
                role="customer_service",
                people=tuple(dict.fromkeys(c.by for c in updates)),
                at=updates[-1].at,
                minutes=None,
                outcome="done",
                timing="late" if missed else "on_time",
                late_minutes=max((x.late_minutes or 0 for x in missed), default=None),
                limit_minutes=minutes(d.rules.progress_every),
                detail=Label(f"{len(updates)} 次", f"{len(updates)} update(s)"),
            )
        )
    for m in d.measures:
        out.append(
            Duty(
                duty="measure",
                role=None,
                people=(m.by,),
                at=m.at,
                minutes=m.minutes_after_identified,
                outcome="done",
                detail=m.label,
            )
        )
    cause = d.cause
    out.append(
        Duty(
            duty="cause",
            role=cause.owner_group if cause else d.rules.cause_owner,
            people=(cause.by,) if cause else (),
            at=cause.at if cause else None,
            minutes=cause.minutes_after_identified if cause else None,
            outcome="done" if cause else "pending",
            detail=both("stage", cause.stage) if cause else EMPTY,
        )
    )
    approval_limit = minutes(d.rules.approval_within)
    for s in d.solutions:
        out.append(
            Duty(
                duty="proposal",
                role=None,
                people=(s.proposed_by,),
                at=s.proposed_at,
                minutes=minutes_between(d.identified_at, s.proposed_at),
                outcome="proposed",
                detail=s.label,
                round=s.round,
            )
        )
        out.append(
            Duty(
                duty="approval",
                role=s.decided_role or s.approver_role,
                people=(s.decided_by,) if s.decided_by else (),
                at=s.decided_at,
                minutes=s.decision_minutes,
                outcome=s.status if s.status in ("approved", "rejected") else "pending",
                timing=s.timing,
                late_minutes=s.late_minutes,
                limit_minutes=approval_limit,
                detail=s.label,
                round=s.round,
            )
        )
    for c in d.confirmations:
        out.append(
            Duty(
                duty="confirmation",
                role="customer_service",
                people=(c.by,),
                at=c.at,
                minutes=minutes_between(d.identified_at, c.at),
                outcome=c.result,
                round=c.round,
            )
        )
    for r in d.survey_rounds:
        people = tuple(dict.fromkeys(s.by for s in d.surveys if s.round == r.round))
        share, target = f"{r.share:.0%}", f"{r.target:.0%}"
        out.append(
            Duty(
                duty="survey",
                role="customer_service",
                people=people,
                at=r.at,
                minutes=None,
                outcome="target_met" if r.met else "below_target",
                detail=Label(f"{share}（目标 {target}）", f"{share} (target {target})"),
                round=r.round,
            )
        )
    if d.postmortem_due_at is not None:
        rows = kind_rows(d, "postmortem")
        row = rows[-1] if rows else None
        late = None
        if d.postmortem_timing in ("late", "overdue"):
            late = minutes_between(d.postmortem_due_at, row.met_at if row and row.met_at else d.generated_at)
        out.append(
            Duty(
                duty="postmortem",
                role=d.rules.lead,
                people=tuple(p.name for p in d.meeting.participants) if d.meeting else (),
                at=row.met_at if row else None,
                minutes=None,
                outcome="done" if row and row.met_at else "pending",
                timing=d.postmortem_timing,
                late_minutes=late,
                limit_minutes=minutes(d.rules.postmortem_due),
            )
        )
    return tuple(out)
