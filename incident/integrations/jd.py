"""JD Logistics (京东物流): registered waybills' tracks polled; a late-order alarm as for SF Express.

JD documents no push of its tracks to a merchant's own address that we could find, so the waybills a
team ships are registered here (``POST /api/integrations/jd``) and their track is asked for on a
schedule (``INCIDENT_JD_POLL_SECONDS``) until the delivered scan; logistics.py raises the alarm.

Documentation followed:
- JOS 开发规范 (help.jd.com/jos/question-580.html, and the same rules on kepler.jd.com's "API调用方法
  详解"): every call goes to the gateway ``routerjson`` with the system parameters ``method``,
  ``app_key``, ``access_token``, ``timestamp`` (``yyyy-MM-dd HH:mm:ss``, GMT+8), ``v`` = ``2.0`` and
  the business parameters as ``360buy_param_json``; ``sign`` = upper-case hex MD5 of appSecret + every
  parameter's name and value, sorted by name, + appSecret.
- The track method ``jingdong.ldop.receive.trace.get`` (查询物流跟踪消息; its JOS page needs a login,
  so its request ``{"customerCode", "waybillCode"}`` and answer ``{"jingdong_ldop_receive_trace_get_
  responce": {"code": "0", "querytrace_result": {"code": 100, "data": [{"opeTitle", "opeRemark",
  "opeName", "opeTime" ("yyyy/MM/dd HH:mm:ss", Beijing time), "waybillCode"}]}}}`` are as JD's
  published SDKs and integrators quote them). ``opeTitle`` ``妥投`` is the delivered scan; a gateway
  error is ``{"error_response": {"code", "zh_desc", "en_desc"}}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import or_, select

from incident import settings
from incident.integrations import logistics
from models import Waybill, session_scope, utcnow

log = logging.getLogger("incident.integrations.jd")

SYSTEM = "jd"
METHOD = "jingdong.ldop.receive.trace.get"
BEIJING = ZoneInfo("Asia/Shanghai")
DELIVERED = {"妥投"}
BATCH = 50  # waybills asked for in one pass at most (the rest are due in the next)


class Refused(Exception):
    """JD answered, but not with a track (a gateway error, or a result code other than 100)."""


def sign(params: dict[str, str], secret: str) -> str:
    text = secret + "".join(f"{k}{params[k]}" for k in sorted(params)) + secret
    return hashlib.md5(text.encode()).hexdigest().upper()


def request(waybill: str, now: datetime) -> dict[str, str]:
    """The signed query parameters of one track query."""
    cfg = settings.get()
    params = {
        "method": METHOD,
        "app_key": cfg.jd_app_key or "",
        "access_token": cfg.jd_access_token or "",
        "timestamp": now.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
        "v": "2.0",
        "360buy_param_json": json.dumps(
            {"customerCode": cfg.jd_customer_code or "", "waybillCode": waybill}, ensure_ascii=False
        ),
    }
    return {**params, "sign": sign(params, cfg.jd_app_secret or "")}


def _when(raw: object) -> datetime:
    text = str(raw or "").replace("/", "-")
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING).astimezone(UTC)


def scans(answer: object) -> list[dict[str, Any]]:
    """The scans of one answer, oldest first; Refused when JD answered with an error."""
    if not isinstance(answer, dict) or not answer:
        raise Refused("not a JSON object")
    if "error_response" in answer:
        error = answer["error_response"] or {}
        raise Refused(f"JOS {error.get('code')}: {error.get('zh_desc') or error.get('en_desc')}")
    body = next(iter(answer.values()))
    result = body.get("querytrace_result") if isinstance(body, dict) else None
    if not isinstance(result, dict) or str(result.get("code")) != "100":
        raise Refused(f"querytrace_result: {json.dumps(result, ensure_ascii=False)[:200]}")
    items = [i for i in result.get("data") or [] if isinstance(i, dict)]
    try:
        found = [{"at": _when(i.get("opeTime")), "title": str(i.get("opeTitle") or "")[:16],
                  "remark": str(i.get("opeRemark") or "")[:2000]} for i in items]  # fmt: skip
    except ValueError:
        raise Refused("opeTime: not 'yyyy/MM/dd HH:mm:ss'") from None
    return sorted(found, key=lambda scan: scan["at"])


def _place(remark: str) -> str | None:
    """Where the parcel is, as JD's remarks say it: ``货物已到达【成都青白江分拣中心】``."""
    start, end = remark.find("【"), remark.find("】")
    return remark[start + 1 : end][:200] or None if 0 <= start < end else None


def _due(now: datetime) -> list[str]:
    """Undelivered JD waybills not asked for within the poll period, claimed for this pass."""
    period = timedelta(seconds=settings.get().jd_poll_seconds)
    with session_scope() as s:
        query = (
            select(Waybill)
            .where(
                Waybill.carrier == SYSTEM,
                Waybill.delivered_at.is_(None),
                Waybill.alarm_feedback_id.is_(None),
                or_(Waybill.polled_at.is_(None), Waybill.polled_at <= now - period),
            )
            .order_by(Waybill.polled_at.asc().nulls_first())
            .limit(BATCH)
        )
        bills = list(s.scalars(query.with_for_update(skip_locked=True)))
        for bill in bills:
            bill.polled_at = now
        return [bill.waybill_no for bill in bills]


def record(waybill: str, found: list[dict[str, Any]]) -> None:
    """The track as JD tells it: the last scan, where it was, and the delivered scan's time."""
    with session_scope() as s:
        bill = s.get(Waybill, waybill)
        if bill is None or not found:
            return
        last = found[-1]
        bill.last_op_code, bill.last_remark = last["title"], last["remark"]
        bill.last_address = _place(last["remark"]) or bill.last_address
        delivered = next((scan for scan in found if scan["title"] in DELIVERED), None)
        if delivered is not None and bill.delivered_at is None:
            bill.delivered_at = delivered["at"]


async def _track(http: httpx.AsyncClient, waybill: str, now: datetime) -> list[dict[str, Any]]:
    answer = await http.post(settings.get().jd_url, data=request(waybill, now))
    answer.raise_for_status()
    return scans(answer.json())


async def sweep(now: datetime | None = None) -> int:
    """Ask for the tracks that are due (when JOS is configured), then raise the late-order alarms."""
    cfg, now = settings.get(), now or utcnow()
    asked = 0
    if cfg.jd_app_key and cfg.jd_app_secret:
        async with httpx.AsyncClient(timeout=cfg.notify_timeout) as http:
            for waybill in await asyncio.to_thread(_due, now):
                try:
                    found = await _track(http, waybill, now)
                except (httpx.HTTPError, ValueError, Refused) as exc:
                    log.warning("JD track of %s not read (asked again next period): %s", waybill, exc)
                    continue
                await asyncio.to_thread(record, waybill, found)
                asked += 1
    return asked + await asyncio.to_thread(logistics.late, SYSTEM, now)
