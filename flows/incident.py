"""``incident_response``: one incident walked through the guide's four stages, in order.

Every ``wait_for`` is a point where a person must act; the run is suspended there (no process held)
and resumed by the CLI/API. A resumed run replays from the top: what is done is found in the
database, and each side effect is guarded by ``once`` so it happens a single time.
"""

from __future__ import annotations

from uuid import UUID

from prefect import flow, get_run_logger, runtime
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from sqlalchemy import update

import playbooks
from flows.marks import once
from flows.notices import archive, deadline_context, level_roles, tell
from flows.waiting import hold, wait_for
from incident import settings
from incident.deadlines.service import active
from incident.incidents import timeline
from incident.response import service as actions
from models import LOCK, Incident, session_scope, utcnow


# Retries: a run that failed on something passing (the database cut, the disk full) replays from the top,
# which is safe by construction (answers in the database, side effects once).
@flow(name="incident_response", persist_result=True, retries=3, retry_delay_seconds=15)
async def incident_response(incident_id: str) -> str:
    """Response start → on-site handling → resolution → follow-up (domain.md §5)."""
    await hold()  # this process runs it: should it die, the sweep knows at once (flows/waiting.py)
    if not await drives(incident_id):
        return incident_id
    await response_start(incident_id)
    await on_site_handling(incident_id)
    await resolution(incident_id)
    await follow_up(incident_id)
    return incident_id


async def drives(incident_id: str) -> bool:
    """Is this run the one that drives the incident? It is when the incident names it, or names no
    run, or a run that has ended (a run made with Prefect's Run button takes over a failed one).
    Any other run (a second Run click) ends at once, and says why; so does a run of a closed one."""
    mine = runtime.flow_run.id
    logger = get_run_logger()
    with session_scope() as s:
        inc = s.get(Incident, incident_id)
        if inc is None or inc.status == "closed":
            logger.info("%s is %s: nothing to do", incident_id, "closed" if inc else "unknown")
            return False
        current = inc.flow_run_id
    if current and current != mine and not await _ended(current):
        logger.info("%s is driven by flow run %s; this run ends", incident_id, current)
        return False
    if current != mine:
        with session_scope() as s:
            s.execute(
                update(Incident)
                .where(Incident.id == incident_id, Incident.flow_run_id == current)
                .values(flow_run_id=mine)
            )
    return True


async def _ended(flow_run_id: str) -> bool:
    async with get_client() as client:
        try:
            run = await client.read_flow_run(UUID(flow_run_id))
        except ObjectNotFound:
            return True
    return run.state is None or run.state.is_final()


async def response_start(incident_id: str) -> None:
    """Stage 1: graded at intake; start the level's response and tell everyone it names."""
    if not await enter(incident_id, "response"):
        return
    with session_scope() as s:
        inc = s.get_one(Incident, incident_id)
        rules = playbooks.get(inc.category).level(inc.level)
        first = active(s, inc, "contact") or active(s, inc, "assess")  # an alarm with no customer
        due = deadline_context(first.due_at, first.kind) if first else {}
    await tell(
        incident_id,
        "incident_opened",
        level_roles(incident_id),
        action=rules.response_start(settings.get().lang),
        **due,
    )


async def on_site_handling(incident_id: str) -> None:
    """Stage 2: contact the customer within the deadline, take a temporary measure."""
    await enter(incident_id, "handling")
    await wait_for(incident_id, "contact")
    await wait_for(incident_id, "measure")


async def resolution(incident_id: str) -> None:
    """Stage 3: cause analysis, an approved solution, and the customer's confirmation.

    A rejected proposal, or an unsatisfied customer, sends it back to a new proposal round.
    """
    await enter(incident_id, "resolution", roles=[_book(incident_id).cause_owner])
    await wait_for(incident_id, "cause")
    if once(incident_id, "archived:cause"):
        await archive(incident_id)  # the cause analysis report, before anyone proposes
    round_ = 1
    while True:
        proposal = await wait_for(incident_id, f"proposal-{round_}")
        if once(incident_id, f"approval_requested-{round_}"):
            approver = _rules(incident_id).approver
            with session_scope() as s:
                deadline = active(s, s.get_one(Incident, incident_id), "approval")
                due = deadline_context(deadline.due_at, "approval") if deadline else {}
            await tell(
                incident_id,
                "approval_requested",
                [approver],
                solution=proposal["solution"],
                approver_role=approver,
                round=round_,
                **due,
            )
            await archive(incident_id)  # the solution approval form, awaiting its decision
        decision = await wait_for(incident_id, f"approval-{round_}")
        if once(incident_id, f"approval_decided-{round_}"):
            await tell(
                incident_id,
                "approval_decided",
                None,
                approved=not decision["reject"],
                decided_by=decision["by"],
                reason=decision["reason"],
                round=round_,
                solution=proposal["solution"],
            )
            await archive(incident_id)
        if decision["reject"]:
            round_ += 1
            continue
        confirmation = await wait_for(incident_id, f"confirmation-{round_}")
        if confirmation["result"] == "unsatisfied":
            if once(incident_id, f"archived:confirmation-{round_}"):
                await archive(incident_id)  # the slip says so (a satisfied one: on entering follow-up)
            round_ += 1
            continue
        return


async def follow_up(incident_id: str) -> None:
    """Stage 4: survey until the level's satisfaction target is met, then the 5W1H post-mortem."""
    await enter(incident_id, "follow_up", notice="resolved")
    round_ = 1
    while True:
        await wait_for(incident_id, f"survey-{round_}")
        with session_scope() as s:
            below_target = s.get_one(Incident, incident_id).follow_up_round > round_
        if not below_target:
            break
        if once(incident_id, f"survey_below_target-{round_}"):
            target = _rules(incident_id).satisfaction_target
            await tell(
                incident_id,
                "survey_below_target",
                ["customer_service", _rules(incident_id).lead],
                round=round_ + 1,
                target=target,
            )
            await archive(incident_id)  # the post-mortem draft shows the survey below target
        round_ += 1
    await close(incident_id)


async def close(incident_id: str) -> None:
    if not once(incident_id, "closed"):
        return
    now = utcnow()
    with session_scope() as s:
        inc = s.get_one(Incident, incident_id, with_for_update=LOCK)
        actions.advance(inc, "closed")
        inc.closed_at, inc.open_key = now, None
        # The post-mortem deadline stays open: the post-mortem meeting meets it (incident.meetings).
        timeline.add(s, incident_id, "postmortem_rendered", "system", "draft", now=now)
        timeline.add(s, incident_id, "closed", "system", None, now=now)
    await archive(incident_id)
    await tell(incident_id, "stage_changed", None, stage="closed")
    get_run_logger().info("%s closed; post-mortem draft archived (final after the meeting)", incident_id)


async def enter(
    incident_id: str, stage: str, roles: list[str] | None = None, notice: str = "stage_changed"
) -> bool:
    """Enter a stage once: status, timeline, records archived, the people told."""
    if not once(incident_id, f"stage:{stage}"):
        return False
    with session_scope() as s:
        inc = s.get_one(Incident, incident_id, with_for_update=LOCK)
        actions.advance(inc, stage)
        timeline.add(s, incident_id, "stage_entered", "system", stage)
    await archive(incident_id)
    if stage != "response":
        await tell(incident_id, notice, [*level_roles(incident_id), *(roles or [])], stage=stage)
    return True


def _book(incident_id: str) -> playbooks.Playbook:
    with session_scope() as s:
        return playbooks.get(s.get_one(Incident, incident_id).category)


def _rules(incident_id: str) -> playbooks.LevelRules:
    with session_scope() as s:
        inc = s.get_one(Incident, incident_id)
        return playbooks.get(inc.category).level(inc.level)
