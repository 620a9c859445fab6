"""Late orders, whoever carries them: a waybill whose promise passes without the delivered scan.

Why one module for SF Express (its scans are pushed) and JD Logistics (its track is polled): the
promise, the alarm a late waybill raises and the once-only guarantee are the same; only how the scans
arrive differs (sf.py, jd.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from incident.errors import Conflict
from incident.feedback import service as intake
from incident.feedback.inputs import FeedbackIn
from models import Waybill, session_scope, utcnow

CARRIERS = {"sf": ("顺丰", "SF Express"), "jd": ("京东物流", "JD Logistics")}
ORDER = 100  # the longest order number a feedback keeps (FeedbackIn.order): longer ones are cut on arrival


def order_no(raw: object) -> str | None:
    """An order number as a carrier sent it, cut to what a feedback keeps (an alarm must never fail on it)."""
    return str(raw or "").strip()[:ORDER] or None


def _alarm(bill: Waybill) -> FeedbackIn:
    zh, en = CARRIERS.get(bill.carrier, (bill.carrier, bill.carrier))
    summary = (f"{zh}运单 {bill.waybill_no} 超过承诺时间 {bill.promised_at.isoformat()} 仍未签收"
               f"（最后扫描：{bill.last_remark or bill.last_op_code or '-'}）")  # fmt: skip
    return FeedbackIn(
        kind="alarm",
        category="service_failure",
        channel="internal",
        summary=summary,
        service=f"{zh}配送 ({en} delivery)",
        order=order_no(bill.order_no) or bill.waybill_no,
        region=bill.last_address,  # late orders where the parcels stopped are one problem (correlation)
    )  # type: ignore[call-arg]


def late(carrier: str, now: datetime | None = None) -> int:
    """Raise one alarm per waybill of ``carrier`` whose promise passed without the delivered scan.

    The alarm goes through intake as any report does (``record_in``: in this transaction); the worker
    handles it from the feedback rows. The waybill rows are locked meanwhile: two sweeps raise it once.
    """
    now = now or utcnow()
    with session_scope() as s:
        query = select(Waybill).where(
            Waybill.carrier == carrier,
            Waybill.delivered_at.is_(None),
            Waybill.alarm_feedback_id.is_(None),
            Waybill.promised_at <= now,
        )
        bills = list(s.scalars(query.with_for_update(skip_locked=True).limit(200)))
        if not bills:
            return 0
        results = intake.record_in(s, [_alarm(b) for b in bills], now)
        for bill, result in zip(bills, results, strict=True):
            bill.alarm_feedback_id = result.feedback_id
    return len(bills)


def register(
    carrier: str, waybill: str, order: str | None, shipped_at: datetime, promise: timedelta
) -> Waybill:
    """Watch a waybill from its shipping time (a carrier that is polled learns of it only so)."""
    with session_scope() as s:
        found = s.get(Waybill, waybill)
        if found is not None and found.carrier != carrier:
            raise Conflict(f"waybill {waybill} is already watched as {found.carrier}'s")
        if found is None:
            found = Waybill(waybill_no=waybill, carrier=carrier, first_scan_at=shipped_at,
                            promised_at=shipped_at + promise)  # fmt: skip
            s.add(found)
        found.order_no = found.order_no or order_no(order)
        s.flush()
        s.expunge(found)
        return found
