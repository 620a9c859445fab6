"""Business-time deadlines: working hours, the Chinese statutory holidays and 调休, team closures, pauses.

The pure parts (``incident.deadlines.calendar``) are checked with plain datetimes; the end-to-end test
drives intake and the response steps on a real migrated database with an injected ``now`` and reads
``incidents.show`` as the CLI and API do. The 2025 dates follow the State Council's 2025 holiday notice:
National Day 10-01..10-08 off, Sunday 09-28 and Saturday 10-11 worked (调休).
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

import playbooks
from incident.deadlines import calendar
from incident.deadlines.calendar import BusinessCalendar, add, between
from incident.feedback import service as intake
from incident.incidents import service as incidents
from incident.response import service as actions
from models import Deadline, session_scope

BJ = ZoneInfo("Asia/Shanghai")
TEAM = BusinessCalendar(tz=BJ, opens=time(9), closes=time(18))


def bj(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A 2025 Beijing wall-clock time."""
    return datetime(2025, month, day, hour, minute, tzinfo=BJ)


def test_an_l3_contact_window_opened_at_0340_lands_at_1100() -> None:
    assert add(bj(9, 29, 3, 40), timedelta(hours=2), TEAM) == bj(9, 29, 11)


def test_past_the_librarys_data_the_statutory_holidays_still_count_and_a_team_adds_its_调休(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """chinesecalendar ends with the last announced year: the year after it still has its National Day
    off (from the holidays library, logged once), and a make-up day the team lists is worked."""
    year = calendar.last_year() + 1
    with pytest.raises(NotImplementedError):  # the library really does not know it
        calendar.chinese_calendar.is_holiday(date(year, 10, 1))
    calendar._china.cache_clear()
    national = next(date(year, 10, d) for d in range(1, 8) if date(year, 10, d).weekday() < 5)
    saturday = next(date(year, 9, d) for d in range(20, 28) if date(year, 9, d).weekday() == 5)
    with caplog.at_level("WARNING", logger="incident.deadlines.calendar"):
        assert not TEAM.working_day(national)  # a weekday, but a statutory holiday
        assert TEAM.working_day(date(year, 10, 12) + timedelta(days=(7 - date(year, 10, 12).weekday()) % 7))
        assert not TEAM.working_day(saturday)
        team = BusinessCalendar(tz=BJ, opens=time(9), closes=time(18), workdays=frozenset({saturday}))
        assert team.working_day(saturday)  # the announced 调休 day the team listed
        assert not team.working_day(national)
    warnings = [r.getMessage() for r in caplog.records if "no data for" in r.getMessage()]
    assert len(warnings) == 1 and str(year) in warnings[0]


def test_calendar_time_is_plain_addition() -> None:
    assert add(bj(9, 29, 3, 40), timedelta(hours=2), None) == bj(9, 29, 5, 40)


def test_business_hours_skip_the_weekend() -> None:
    # Friday 17:00 + 2 h: one hour on Friday, one on Monday (Sat 09-20 and Sun 09-21 are off)
    assert add(bj(9, 19, 17), timedelta(hours=2), TEAM) == bj(9, 22, 10)


def test_a_make_up_working_day_counts() -> None:
    # Saturday 09-27 is off, Sunday 09-28 is a 调休 working day
    assert add(bj(9, 27, 17), timedelta(hours=2), TEAM) == bj(9, 28, 11)


def test_the_national_day_holiday_is_skipped() -> None:
    assert add(bj(9, 30, 17, 30), timedelta(hours=1), TEAM) == bj(10, 9, 9, 30)
    assert not TEAM.working_day(date(2025, 10, 6))  # a Monday inside the holiday
    assert TEAM.working_day(date(2025, 10, 11))  # the Saturday worked after it


def test_a_team_closure_is_skipped() -> None:
    closed = BusinessCalendar(tz=BJ, opens=time(9), closes=time(18), closures=frozenset({date(2025, 9, 22)}))
    assert add(bj(9, 19, 17), timedelta(hours=2), closed) == bj(9, 23, 10)


def test_without_statutory_holidays_only_the_weekdays_count() -> None:
    plain = BusinessCalendar(tz=BJ, opens=time(9), closes=time(18), statutory=False)
    assert add(bj(9, 30, 17, 30), timedelta(hours=1), plain) == bj(10, 1, 9, 30)
    assert not plain.working_day(date(2025, 9, 28))


def test_past_the_library_data_year_weekdays_still_count() -> None:
    monday = datetime(2099, 6, 1, 9, tzinfo=BJ)  # 2099-06-01 is a Monday
    assert add(monday, timedelta(hours=1), TEAM) == monday + timedelta(hours=1)


def test_between_counts_only_working_hours() -> None:
    assert between(bj(9, 29, 12), bj(9, 29, 14), TEAM) == timedelta(hours=2)
    assert between(bj(9, 19, 17), bj(9, 22, 10), TEAM) == timedelta(hours=2)
    assert between(bj(9, 29, 14), bj(9, 29, 12), TEAM) == timedelta(0)


def _copy(tmp_path: Path, edit: dict[str, Any] | None = None, calendars: str | None = None) -> Path:
    """The built-in playbooks copied, with product_quality's level 3 edited; the folder."""
    folder = tmp_path / "books"
    shutil.copytree(playbooks.BUILTIN, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = folder / "product_quality.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["levels"][3].update(edit or {})
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    if calendars is not None:
        (folder / "calendars.yaml").write_text(calendars, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("edit", "calendars", "error"),
    [
        ({"clock": "office"}, None, "levels.3.clock"),
        ({"clock": {"contcat": "business"}}, None, "levels.3.clock"),
        ({"pause_while": {"progress": ["holiday"]}}, None, "levels.3.pause_while"),
        ({}, "default: t\ncalendars: {t: {hours: '18:00-09:00'}}\n", "open before it closes"),
        ({}, "default: t\ncalendars: {t: {hours: '09:00-18:00', days: fri-mon}}\n", "calendars.t.days"),
        ({}, "default: t\ncalendars: {t: {hours: '9-18'}}\n", "working hours like"),
        ({}, "default: t\ncalendars: {t: {hours: '09:00-18:00', tz: Mars/Base}}\n", "IANA"),
        ({}, "default: x\ncalendars: {t: {hours: '09:00-18:00'}}\n", "names no calendar"),
    ],
)
def test_a_bad_clock_or_calendar_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: dict[str, Any], calendars: str | None, error: str
) -> None:
    monkeypatch.setenv("INCIDENT_PLAYBOOKS", str(_copy(tmp_path, edit, calendars)))
    with pytest.raises(playbooks.PlaybookError, match=error):
        playbooks.load_all()


def test_a_playbook_naming_an_unknown_calendar_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _copy(tmp_path)
    path = folder / "service_failure.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "calendar: night_shift\n", encoding="utf-8")
    monkeypatch.setenv("INCIDENT_PLAYBOOKS", str(folder))
    with pytest.raises(playbooks.PlaybookError, match="service_failure.yaml: field calendar: 'night_shift'"):
        playbooks.load_all()


def test_the_builtin_playbooks_count_calendar_time() -> None:
    for book in playbooks.load_all().values():
        assert all(book.level(n).clock_of("contact") == "calendar" for n in (1, 2, 3))


def _deadline(incident_id: str, kind: str) -> Deadline:
    with session_scope() as s:
        rows = s.query(Deadline).filter_by(incident_id=incident_id, kind=kind).order_by(Deadline.id).all()
        s.expunge_all()
    return rows[-1]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_a_business_time_playbook_gives_business_due_times_and_pauses(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Level 3 on business time: contact at 11:00 for a 03:40 report; progress paused while the
    customer considers the approved solution, then resumed across the National Day holiday."""
    edit = {
        "clock": {"contact": "business", "progress": "business"},
        "progress_every": "4h",
        "pause_while": {"progress": ["waiting_customer"]},
    }
    monkeypatch.setenv("INCIDENT_PLAYBOOKS", str(_copy(tmp_path, edit)))
    body = intake.FeedbackIn(
        category="product_quality", summary="battery swelling", customer="calendars-王芳",
        product_model="CAL-1", batch="CAL-B1",
    )  # fmt: skip
    opened = intake.record(body, now=bj(9, 29, 3, 40))
    iid = opened.incident_id
    shown = incidents.show(iid)
    contact = next(d for d in shown["deadlines"] if d["kind"] == "contact")
    assert shown["level"] == 3
    assert (contact["clock"], datetime.fromisoformat(contact["due_at"])) == ("business", bj(9, 29, 11))
    assert shown["next_deadline"]["clock"] == "business"

    actions.contact(iid, actions.ContactIn(by="客服小李"), now=bj(9, 29, 10))
    assert _utc(_deadline(iid, "progress").due_at) == bj(9, 29, 14)
    cause = actions.CauseIn(root="separator defect", direct="cells overheat", stage="production")
    actions.cause(iid, cause, now=bj(9, 29, 11))
    actions.propose(iid, actions.ProposeIn(solution="repair"), now=bj(9, 29, 11))
    actions.approve(iid, actions.ApproveIn(by="周经理", role="dept_head"), now=bj(9, 29, 12))
    assert _deadline(iid, "progress").state == "paused"  # 2 h of it left

    actions.confirm(iid, actions.ConfirmIn(result="unsatisfied"), now=bj(9, 30, 17))
    progress = _deadline(iid, "progress")
    # 1 h on 09-30 before 18:00, then 1 h after the holiday: 10-09 10:00
    assert (progress.state, _utc(progress.due_at)) == ("pending", bj(10, 9, 10))
    assert next(d for d in incidents.show(iid)["deadlines"] if d["kind"] == "progress")["clock"] == "business"
    assert incidents.show(iid)["deadlines"][0]["clock"] == "business"


def test_show_text_says_which_clock_a_due_time_follows(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``incident show`` prints 工作时间 next to a business-time due time (the CLI's own formatter), and so
    do the post-mortem's deadline table and the board's row."""
    from incident.incidents.cli import _show_human

    monkeypatch.setenv("INCIDENT_PLAYBOOKS", str(_copy(tmp_path, {"clock": {"contact": "business"}})))
    monkeypatch.setenv("INCIDENT_TZ", "Asia/Shanghai")
    body = intake.FeedbackIn(category="product_quality", summary="screen flicker", customer="calendars-赵磊",
                             product_model="CAL-2", batch="CAL-B2")  # fmt: skip
    iid = intake.record(body, now=bj(9, 29, 3, 40)).incident_id
    _show_human(incidents.show(iid))
    row = next(line for line in capsys.readouterr().out.splitlines() if "首次联系客户" in line)
    assert "2025-09-29 11:00" in row and "工作时间" in row
    from incident.console.board import open_rows
    from incident.records.postmortem import render_postmortem

    markdown, _ = render_postmortem(iid, "zh", "md")
    assert "2025-09-29 11:00 +08:00（工作时间）" in markdown
    [board_row] = [r for r in open_rows(now=bj(9, 29, 4)) if r["incident_id"] == iid]
    assert board_row["shown_deadline"]["clock"] == "business"


@pytest.mark.parametrize(("lang", "words"), [("zh", "（按工作时间计）"), ("en", "(business hours)")])
def test_a_notice_says_its_due_time_counts_business_hours(lang: str, words: str) -> None:
    from notifiers.render import render

    due = datetime(2025, 9, 29, 3, tzinfo=UTC)
    context = {"incident_id": "INC20250929001", "level": 3, "category": "product_quality",
               "deadline_kind": "contact", "due_at": due, "minutes_left": 30}  # fmt: skip
    assert words in render("deadline_warning", {**context, "clock": "business"}, lang).text
    assert words not in render("deadline_warning", context, lang).text  # the built-in playbook: calendar
