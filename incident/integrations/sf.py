"""SF Express (顺丰) route push in; a late-order alarm out when the promise passes undelivered.

Documentation followed (qiao.sf-express.com / open.sf-express.com, 丰桥 developer docs, as quoted by
integrators; the official pages need a login, so the public quotations were used):
- Common parameters: form fields ``partnerID``, ``requestID``, ``serviceCode``, ``timestamp`` (ms),
  ``msgDigest``, ``msgData`` (the JSON business message), ``application/x-www-form-urlencoded``.
- 数字签名: ``msgDigest = base64(md5(URLEncoder.encode(msgData + timestamp + checkWord, "UTF-8")))``;
  the documented example ``{"language":"zh-CN","orderId":"QIAO-20200618-004"}``, ``12312334453453``,
  ``fjcg5PGKaNpPSHFAZ4QsCOkV71R3zVci`` gives ``IIKJtuLVzoFTu4kHI8M8vA==`` (tests hold it).
- 路由推送 (route push): ``msgData`` = ``{"Body": {"WaybillRoute": [{"id", "mailno", "orderid",
  "acceptTime" ("YYYY-MM-DD HH:MM:SS", Beijing time), "acceptAddress", "remark", "opCode"}]}}``;
  opCode ``80`` (and ``8000``) is the delivered scan (签收); the receiver answers
  ``{"return_code": "0000", "return_msg": "成功"}``, anything else makes SF push again (3 times).
The late-order alarm itself is logistics.py's (shared with JD Logistics).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus
from zoneinfo import ZoneInfo

from incident import settings
from incident.errors import BadInput
from incident.integrations import logistics
from models import Waybill, session_scope, utcnow

SYSTEM = "sf"
BEIJING = ZoneInfo("Asia/Shanghai")  # SF writes its scan times in Beijing time, without a zone
DELIVERED = {"80", "8000"}
WINDOW = timedelta(minutes=15)  # a push whose timestamp is further from now is a replay (or a bad clock)
ACCEPTED = {"return_code": "0000", "return_msg": "成功"}


class Unsigned(Exception):
    """Not SF's: missing or wrong msgDigest, or a stale timestamp (401)."""


def digest(msg_data: str, timestamp: str, checkword: str) -> str:
    """SF's 数字签名, Java ``URLEncoder.encode`` included (space as ``+``, ``*`` kept, ``~`` encoded)."""
    text = quote_plus(msg_data + timestamp + checkword, safe="*").replace("~", "%7E")
    return base64.b64encode(hashlib.md5(text.encode()).digest()).decode()


def verify(form: Mapping[str, str], now: datetime | None = None) -> None:
    checkword = settings.get().sf_checkword
    if not checkword:
        raise Unsigned("INCIDENT_SF_CHECKWORD is not set: SF route pushes are refused")
    msg_data, timestamp, given = form.get("msgData"), form.get("timestamp"), form.get("msgDigest")
    if not msg_data or not timestamp or not given:
        raise Unsigned("missing msgData, timestamp or msgDigest")
    if not hmac.compare_digest(digest(msg_data, timestamp, checkword), given):
        raise Unsigned("wrong msgDigest")
    if not timestamp.isdigit():
        raise Unsigned("timestamp: milliseconds since 1970")
    at = datetime.fromtimestamp(int(timestamp) / 1000, UTC)
    if abs((now or utcnow()) - at) > WINDOW:
        raise Unsigned(
            f"stale timestamp (outside {WINDOW.total_seconds() / 60:.0f} min): a replay is refused"
        )


def _scan_time(raw: object) -> datetime:
    try:
        return datetime.strptime(str(raw), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING).astimezone(UTC)
    except ValueError:
        raise BadInput(f"WaybillRoute.acceptTime: 'YYYY-MM-DD HH:MM:SS', not {str(raw)[:40]!r}") from None


def routes(msg_data: str) -> list[dict[str, Any]]:
    """The WaybillRoute items of one push, checked whole before anything is stored."""
    try:
        message = json.loads(msg_data)
    except ValueError:
        raise BadInput("msgData: not JSON") from None
    items = (message.get("Body") or {}).get("WaybillRoute") if isinstance(message, dict) else None
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not items:
        raise BadInput("msgData: no Body.WaybillRoute")
    checked = []
    for item in items:
        if not isinstance(item, dict) or not str(item.get("mailno") or "").strip():
            raise BadInput("WaybillRoute.mailno: missing")
        checked.append({
            "mailno": str(item["mailno"]).strip()[:64],
            "orderid": logistics.order_no(item.get("orderid")),  # cut: a feedback keeps 100 characters
            "at": _scan_time(item.get("acceptTime")),
            "op": str(item.get("opCode") or "").strip()[:16],
            "remark": str(item.get("remark") or "")[:2000],
            "address": (str(item.get("acceptAddress") or "").strip()[:200] or None),
        })  # fmt: skip
    return checked


def record(items: list[dict[str, Any]]) -> int:
    """Store the scans (one transaction): the first scan starts the promise, the delivered scan ends it."""
    promise = timedelta(hours=settings.get().sf_promise_hours)
    with session_scope() as s:
        for item in sorted(items, key=lambda i: i["at"]):
            bill = s.get(Waybill, item["mailno"])
            if bill is None:
                bill = Waybill(waybill_no=item["mailno"], carrier=SYSTEM, first_scan_at=item["at"],
                               promised_at=item["at"] + promise)  # fmt: skip
                s.add(bill)
            bill.order_no = bill.order_no or item["orderid"]
            bill.last_op_code, bill.last_remark = item["op"], item["remark"]
            bill.last_address = item["address"] or bill.last_address
            if item["op"] in DELIVERED and bill.delivered_at is None:
                bill.delivered_at = item["at"]
    return len(items)


def late(now: datetime | None = None) -> int:
    return logistics.late(SYSTEM, now)


async def sweep(now: datetime | None = None) -> int:
    import asyncio

    return await asyncio.to_thread(late, now)
