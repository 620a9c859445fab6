"""People over time, in process on a fresh migrated database: removal and role changes take shifts and
delegations with them, sessions are bound to the credential they were opened with, the login limit's
keys, the audit's readers and pages, the 401 aggregation, and the authority rules' edges (a deputy's
period ending, the lenient rule, a reveal by the level's lead).

The escalation through a rota runs the real deadline watcher flow on an injected clock
(``watch_deadlines(now=…)`` on the session's Prefect harness), told through real local receivers.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from flows.deadlines import watch_deadlines
from incident import settings
from incident.api.audittrail import WrongTokens
from incident.errors import BadInput, Forbidden, SettingsError
from incident.feedback import service as intake
from incident.incidents import reveal
from incident.people import audit, deputies, logins, rotas, sessions
from incident.people import service as people
from incident.people.service import SERVICE, Actor, PersonIn, PersonUpdate
from incident.response import authority
from incident.response.steps import BY_ACTION
from models import AccessEvent, ConsoleSession, Deputy, RotaShift, TimelineEvent, session_scope, utcnow
from notifiers.roster import Roster, with_people
from tests.test_deadlines import T0, Receivers, report, smtp, told

__all__ = ["smtp", "told"]  # the receivers' fixtures, used by name below


def _person(name: str, *roles: str, notify: tuple[str, ...] = ()) -> Actor:
    actor = people.identify(people.add(PersonIn(name=name, roles=list(roles), notify=list(notify)))["token"])
    assert actor is not None
    return actor


def _told(role: str) -> set[str]:
    """The last path segment of every personal URL a notice to ``role`` reaches now."""
    channels = with_people(Roster(source=None)).for_role(role)
    return {c.redacted.split("?")[0].rsplit("/", 1)[-1] for c in channels}


def _shift(person: str, role: str = "duty_manager", hours: float = 8) -> rotas.ShiftIn:
    now = datetime.now(UTC)
    return rotas.ShiftIn(role=role, person=person, starts_at=now - timedelta(hours=1),
                         ends_at=now + timedelta(hours=hours))  # fmt: skip


def _incident(**signals: Any) -> str:
    body = intake.FeedbackIn(category="product_quality", summary="battery swelling", customer="张伟",
                             contact="13812345678", product_model="P30", **signals)  # fmt: skip
    incident_id = intake.record(body).incident_id
    assert incident_id
    return incident_id


# --- removal and role changes ----------------------------------------------------------------------


def test_removing_the_person_on_duty_ends_their_shifts_and_delegations(any_db: str) -> None:
    on_duty = _person("值班 甲", "duty_manager", "leadership", notify=("json://127.0.0.1:9/jia",))
    _person("值班 乙", "duty_manager", notify=("json://127.0.0.1:9/yi",))
    boss = _person("总经理 丙", "leadership")
    rotas.add_many(SERVICE, [_shift("值班 甲")])
    until = utcnow() + timedelta(days=2)
    deputies.add(boss, deputies.DeputyIn(deputy="值班 甲", role="leadership", ends_at=until))
    deputies.add(on_duty, deputies.DeputyIn(deputy="值班 乙", role="leadership", ends_at=until))
    assert _told("duty_manager") == {"jia"}

    removed = people.remove("值班 甲")
    assert (removed["shifts_removed"], removed["delegations_ended"]) == (1, 2)
    assert _told("duty_manager") == {"yi"}  # the role is not silenced
    with session_scope() as s:
        assert s.scalars(select(RotaShift)).all() == []
        assert all(d.ended_at is not None for d in s.scalars(select(Deputy)))
    people.add(PersonIn(name="值班 甲", roles=["duty_manager", "leadership"]))  # a new 甲, same name
    with session_scope() as s:
        assert deputies.acting_for(s, "值班 甲", "leadership", utcnow()) is None  # inherits nothing
    assert rotas.who_is_on_duty("duty_manager") == []


def test_a_stale_shift_silences_nobody(db: str) -> None:
    """A shift whose person no longer holds the role (written before removals released shifts, or
    by hand) does not count: everyone holding the role is told."""
    _person("值班 丁", "duty_manager", notify=("json://127.0.0.1:9/ding",))
    _person("值班 戊", "duty_manager", notify=("json://127.0.0.1:9/wu",))
    now = utcnow()
    with session_scope() as s:
        s.add(RotaShift(role="duty_manager", person="已离职 己", starts_at=now - timedelta(hours=1),
                        ends_at=now + timedelta(hours=1), created_at=now))  # fmt: skip
    assert _told("duty_manager") == {"ding", "wu"}


def test_update_changes_roles_releases_the_lost_ones_and_replaces_a_token(db: str) -> None:
    made = people.add(PersonIn(name="主管 庚", roles=["duty_manager", "cs_manager"]))
    rotas.add_many(SERVICE, [_shift("主管 庚"), _shift("主管 庚", "cs_manager")])
    changed = people.update("主管 庚", PersonUpdate(roles=["cs_manager", "pr"], email="geng@example.com"))
    assert changed["roles"] == ["cs_manager", "pr"] and changed["shifts_removed"] == 1
    assert [r["role"] for r in rotas.list_shifts()] == ["cs_manager"]
    actor = people.identify(made["token"])
    assert actor is not None and actor.roles == ("cs_manager", "pr")  # the cache forgot the old roles
    secret = sessions.open_session(actor, made["token"], "10.0.0.1")
    assert sessions.find(secret, "service-token") == actor
    renewed = people.update("主管 庚", PersonUpdate(new_token=True))
    assert renewed["token"] != made["token"] and renewed["token"].startswith("inc_")
    assert people.identify(made["token"]) is None and people.identify(renewed["token"]) is not None
    assert sessions.find(secret, "service-token") is None  # sessions of the old token end with it
    with pytest.raises(ValueError, match="unknown role"):
        PersonUpdate(roles=["boss"])


# --- sessions and the login limit ------------------------------------------------------------------


def test_sessions_are_bound_to_their_credential_and_scoped_tokens_open_none(any_db: str) -> None:
    secret = sessions.open_session(SERVICE, "service-token-1", "10.0.0.2")
    assert sessions.find(secret, "service-token-1") == SERVICE
    assert sessions.find(secret, "service-token-2") is None  # INCIDENT_API_TOKEN rotated: it ends
    with session_scope() as s:
        stored = s.scalars(select(ConsoleSession)).one()
        assert "service-token-1" not in (stored.credential or "") and stored.credential
    system = Actor("prom (metrics token)", (), person=False, scope="metrics")
    with pytest.raises(Forbidden, match="cannot open a console session"):
        sessions.open_session(system, "inc_0123456789abcdef_x", None)
    token = people.add(PersonIn(name="客服 辛", roles=["customer_service"]))["token"]
    person = people.identify(token)
    assert person is not None
    mine = sessions.open_session(person, token, None)
    people.remove("客服 辛")
    people.add(PersonIn(name="客服 辛", roles=["leadership"]))  # someone else, the same name
    assert sessions.find(mine, "service-token-1") is None


def test_expired_sessions_are_deleted(db: str) -> None:
    old = sessions.open_session(SERVICE, "t", None)
    with session_scope() as s:
        s.scalars(select(ConsoleSession)).one().expires_at = utcnow() - timedelta(seconds=1)
    assert sessions.find(old, "t") is None
    sessions.open_session(SERVICE, "t", None)  # a login purges the expired ones
    with session_scope() as s:
        assert len(s.scalars(select(ConsoleSession)).all()) == 1
    assert sessions.purge() == 0


def test_the_login_limit_is_per_address_and_token_id_shared_and_reset_by_success(any_db: str) -> None:
    mallory = logins.key("10.0.0.9", "inc_00000000000000aa_guess")
    colleague = logins.key("10.0.0.9", "inc_00000000000000bb_right")
    garbage = logins.key("10.0.0.9", "not a token")
    assert mallory != colleague and garbage == logins.key("10.0.0.9", "service token typed wrong")
    for _ in range(logins.LIMIT):
        logins.failed(mallory)
    assert 0 < logins.retry_after(mallory) <= logins.WINDOW.total_seconds() + 1
    assert logins.retry_after(colleague) == 0 and logins.retry_after(garbage) == 0  # not locked out
    assert logins.retry_after(logins.key("10.0.0.10", "inc_00000000000000aa_guess")) == 0
    logins.succeeded(mallory)  # the right token: a clean slate
    assert logins.retry_after(mallory) == 0
    for _ in range(3):
        logins.failed(garbage, now=utcnow() - logins.WINDOW - timedelta(seconds=1))
    assert logins.purge() == 3


def test_trusted_proxies_are_checked_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INCIDENT_TRUSTED_PROXIES", " 10.0.0.0/8, 192.168.1.1 ")
    assert settings.get().trusted_proxies == "10.0.0.0/8,192.168.1.1"
    monkeypatch.setenv("INCIDENT_TRUSTED_PROXIES", "10.0.0.0/8,proxy.local")
    with pytest.raises(SettingsError, match="INCIDENT_TRUSTED_PROXIES"):
        settings.get()


# --- the audit ---------------------------------------------------------------------------------------


def test_the_audit_is_read_by_the_leads_the_duty_manager_and_the_service_token() -> None:
    assert {"leadership", "cs_director", "cs_manager", "duty_manager"} <= set(audit.readers())
    assert audit.may_read(SERVICE) and audit.may_read(Actor("甲", ("cs_manager",)))
    assert not audit.may_read(Actor("乙", ("customer_service", "pr")))
    assert not audit.may_read(Actor("prom (metrics token)", (), person=False, scope="metrics"))


def test_audit_pages_walk_every_event_once_in_order(any_db: str) -> None:
    inc = _incident()
    tech = _person("技术 壬", "technical_support")
    step = BY_ACTION["cause"]
    authority.perform(step, inc, step.model(root="r", direct="d", stage="production"), tech)
    same = utcnow()
    with session_scope() as s:  # ties on the time across both sources: the cursor must keep order
        s.add_all([AccessEvent(at=same, who=f"p{i}", action="login", outcome="ok", channel="console")
                   for i in range(5)])  # fmt: skip
        s.add(TimelineEvent(incident_id=inc, at=same, event="owner_assigned", by="p", detail="x"))
    everything = audit.events()
    assert len(everything) == 7
    walked, since, pages = [], "2000-01-01T00:00:00+00:00", 0
    while since is not None:
        got = audit.page(None, since, limit=2)
        walked += got["events"]
        since, pages = got["next"], pages + 1
    assert walked == everything and pages == 4
    assert audit.page(None, None, limit=3)["events"] == everything[-3:]
    for bad in ("yesterday", "2026-12-01T00:00:00", "2026-12-01T00:00:00+00:00~x1"):
        with pytest.raises(BadInput, match="since"):
            audit.page(None, bad)


def test_a_storm_of_wrong_tokens_is_one_row_per_address_and_minute(db: str) -> None:
    clock = [1000.0]
    aggregate = WrongTokens(clock=lambda: clock[0])
    for i in range(100):
        clock[0] += 0.1  # 100 wrong tokens in ten seconds
        aggregate.seen("203.0.113.7", f"GET /api/incidents/{i}")
    aggregate.seen("198.51.100.1", "GET /api/people")
    clock[0] += 60  # the next minute: a new row
    aggregate.seen("203.0.113.7", "GET /metrics")
    with session_scope() as s:
        rows = s.scalars(select(AccessEvent).order_by(AccessEvent.id)).all()
        seen = [(r.address, r.action, r.outcome, r.detail) for r in rows]
    assert len(seen) == 3 and all(r[1:3] == ("authenticate", "refused") for r in seen)
    # the count is exact once the address's next window opens
    assert seen[0][0] == "203.0.113.7" and seen[0][3].startswith("100 wrong tokens"), seen[0]
    assert seen[2] == ("203.0.113.7", "authenticate", "refused", "wrong token (GET /metrics)")


# --- authority's edges ----------------------------------------------------------------------------


def test_a_deputy_is_refused_one_second_after_the_period_ends(db: str) -> None:
    inc = _incident(injury=True)  # level 1: leadership approves
    boss, stand_in = _person("总经理 癸", "leadership"), _person("助理 子", "customer_service")
    tech = _person("技术 丑", "technical_support")
    for name, body in (("cause", {"root": "r", "direct": "d", "stage": "production"}),
                       ("propose", {"solution": "replace"})):  # fmt: skip
        authority.perform(BY_ACTION[name], inc, BY_ACTION[name].model(**body), tech)
    ends = utcnow() + timedelta(hours=1)
    deputies.add(boss, deputies.DeputyIn(deputy="助理 子", role="leadership", ends_at=ends))
    approve = BY_ACTION["approve"]
    accepted = authority.check(inc, approve, stand_in, approve.model(), now=ends - timedelta(seconds=1))
    assert (accepted.by, accepted.role, accepted.deputy_of) == ("助理 子", "leadership", "总经理 癸")
    with pytest.raises(Forbidden, match="holds no role that may approve"):
        authority.check(inc, approve, stand_in, approve.model(), now=ends + timedelta(seconds=1))
    refused = [e["who"] for e in audit.events(inc) if e["outcome"] == "refused"]
    assert refused == ["助理 子"]


def test_the_lead_and_the_duty_manager_may_record_the_groups_steps(db: str) -> None:
    inc = _incident()  # level 3 of product quality: the lead is cs_manager
    lead, duty = _person("经理 寅", "cs_manager"), _person("值班 卯", "duty_manager")
    outsider = _person("公关 辰", "pr")
    authority.perform(BY_ACTION["contact"], inc, BY_ACTION["contact"].model(by="typed"), lead)
    cause = BY_ACTION["cause"].model(root="r", direct="d", stage="production")
    with pytest.raises(Forbidden, match="公关 辰 may not cause"):
        authority.perform(BY_ACTION["cause"], inc, cause, outsider)
    authority.perform(BY_ACTION["cause"], inc, cause, duty)
    with session_scope() as s:
        rows = s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc)).all()
        by = {(e.event, e.by) for e in rows}
    assert {("contacted", "经理 寅"), ("cause_recorded", "值班 卯"), ("action_refused", "公关 辰")} <= by


def test_the_levels_lead_may_reveal_and_it_is_audited(db: str) -> None:
    inc = _incident()  # level 3: lead cs_manager, not customer_service
    lead = _person("经理 巳", "cs_manager")
    shown = reveal.reveal(inc, lead, "api", "10.1.1.1")
    assert [c["contact"] for c in shown["customers"]] == ["13812345678"]
    with pytest.raises(Forbidden):
        reveal.reveal(inc, _person("法务 午", "legal"), "console", "10.1.1.2")
    seen = [(e["who"], e["action"], e["outcome"], e["channel"], e["address"]) for e in audit.events(inc)]
    assert seen == [("经理 巳", "reveal", "ok", "api", "10.1.1.1"),
                    ("法务 午", "reveal", "refused", "console", "10.1.1.2")]  # fmt: skip


# --- escalation through a rota, through the real watcher ------------------------------------------


def test_an_escalation_to_a_role_on_a_rota_reaches_only_who_is_on_duty(db: str, told: Receivers) -> None:
    """The L3 chain's first step tells cs_director at the miss: of the two directors, only the one on
    duty (and the roster's own cs_director address). Removing them ends their shift: the next
    escalation reaches the other director (a rota's gap silences nobody)."""
    hook = f"json://127.0.0.1:{told.hook.port}"
    _person("总监 未", "cs_director", notify=(f"{hook}/person-wei",))
    _person("总监 申", "cs_director", notify=(f"{hook}/person-shen",))
    rotas.add_many(SERVICE, [_shift("总监 未", "cs_director")])
    first = report(T0, customer="rota-1", batch="ROTA-1").incident_id
    assert first
    assert asyncio.run(watch_deadlines(now=T0 + timedelta(hours=2, minutes=1)))["escalated"] == 1
    roles = {m.role for m in told.all(first) if m.title.startswith("[Escalation]")}
    assert "person-wei" in roles and "person-shen" not in roles and "cs_director" in roles

    people.remove("总监 未")
    later = T0 + timedelta(hours=3)
    second = report(later, customer="rota-2", batch="ROTA-2").incident_id
    assert second
    asyncio.run(watch_deadlines(now=later + timedelta(hours=2, minutes=1)))
    roles = {m.role for m in told.all(second) if m.title.startswith("[Escalation]")}
    assert "person-shen" in roles and "person-wei" not in roles
