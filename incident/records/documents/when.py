"""When: the post-mortem's timeline of key moments, from the records and the notable timeline events."""

from __future__ import annotations

from datetime import datetime

from incident.records.documents import i18n
from incident.records.documents.facts import both, first_contact_at
from incident.records.documents.snapshot import EMPTY, Dossier, Label, Milestone, minutes_between
from playbooks import vocabulary


def milestones(d: Dossier) -> tuple[Milestone, ...]:
    """The key moments (from the records) and the notable events (from the timeline), in order."""
    out: list[Milestone] = []

    def add(event: str, at: datetime | None, by: str = "", detail: Label = EMPTY) -> None:
        if at is not None:
            out.append(Milestone(event, at, minutes_between(d.identified_at, at) or 0, by, detail))

    identified = next((t for t in d.timeline if t.event == "identified"), None)
    add("identified", d.identified_at, identified.by if identified else "", both("level", d.level))
    for change in d.level_changes:
        raised = [
            vocabulary.phrase("detail", "raised", lang, from_level=change.from_level or "?",
                              to_level=change.to_level or "?")
            for lang in ("zh", "en")
        ]  # fmt: skip
        detail = Label(*raised)
        add("level_raised", change.at, change.by, detail)
    first = d.first_contact
    add(
        "first_contact",
        first_contact_at(d),
        first.by if first else "",
        both("timing", d.contact_timing),
    )
    if d.measures:
        m = d.measures[0]
        add("measure_taken", m.at, m.by, m.label)
    if d.causes:
        c = d.causes[0]
        add("cause_recorded", c.at, c.by, both("stage", c.stage))
    for s in d.solutions:
        add(
            "solution_proposed",
            s.proposed_at,
            s.proposed_by,
            Label(f"第 {s.round} 轮：{s.label('zh')}", f"round {s.round}: {s.label('en')}"),
        )
        if s.status in ("approved", "rejected") and s.decided_at:
            event = "solution_approved" if s.status == "approved" else "solution_rejected"
            role = (
                i18n.label("role", s.decided_role, "zh"),
                i18n.label("role", s.decided_role, "en"),
            )
            add(
                event,
                s.decided_at,
                s.decided_by,
                Label(
                    f"第 {s.round} 轮：{s.label('zh')}，{role[0]}"
                    + (f"（代理 {s.deputy_of}）" if s.deputy_of else "")
                    + (f"；理由：{s.reason}" if s.reason else ""),
                    f"round {s.round}: {s.label('en')}, {role[1]}"
                    + (f" (deputy for {s.deputy_of})" if s.deputy_of else "")
                    + (f"; reason: {s.reason}" if s.reason else ""),
                ),
            )
    for t in d.timeline:
        if t.event == "approval_refused":
            add("approval_refused", t.at, t.by, t.words)
    for x in d.deadlines:
        if x.state == "missed":
            add("deadline_missed", x.missed_at or x.due_at, "", both("deadline", x.kind))
    escalations = [t for t in d.timeline if t.event == "escalated"]
    for t in escalations:
        to = t.get("to") or ""
        kind = t.get("kind")
        add("escalated", t.at, t.by, _escalation(kind, to) or t.words)
    if not escalations:
        for x in d.deadlines:
            if x.escalated_to:
                add("escalated", x.missed_at or x.due_at, "", _escalation(x.kind, x.escalated_to))
    add("resolved", d.resolved_at)
    for c in d.confirmations:
        add("confirmed", c.at, c.by, both("result", c.result))
    for r in d.survey_rounds:
        share, target = f"{r.share:.0%}", f"{r.target:.0%}"
        surveyors = "、".join(dict.fromkeys(s.by for s in d.surveys if s.round == r.round))
        add(
            "survey_recorded",
            r.at,
            surveyors,
            Label(
                f"第 {r.round} 轮：满意度 {share}（目标 {target}）",
                f"round {r.round}: satisfaction {share} (target {target})",
            ),
        )
        if not r.met:
            add("follow_up_round", r.at, "", Label(f"第 {r.round + 1} 轮", f"round {r.round + 1}"))
    add("closed", d.closed_at)
    return tuple(sorted(out, key=lambda m: m.at))


def _escalation(kind: str | None, to: str | None) -> Label:
    """ "Solution approval → Duty manager" in both languages (empty when nothing is known)."""
    zh, en = (
        " → ".join(filter(None, [i18n.label("deadline", kind, lang), i18n.roles(to, lang)]))
        for lang in ("zh", "en")
    )
    return Label(zh, en)
