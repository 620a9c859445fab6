"""A local JD JOS gateway for the tests: the track query as JD documents its calls and the method.

Followed: JOS 开发规范 (help.jd.com/jos/question-580.html): system parameters ``method``, ``app_key``,
``access_token``, ``timestamp`` (``yyyy-MM-dd HH:mm:ss``, GMT+8, at most 10 minutes off), ``v`` 2.0,
the business parameters in ``360buy_param_json``, ``sign`` = upper-case MD5 of appSecret + sorted
name-value pairs + appSecret (checked here from that text, not with our code); a wrong one answers
``{"error_response": {"code": "19", "zh_desc": …}}``. The method ``jingdong.ldop.receive.trace.get``
answers ``{"jingdong_ldop_receive_trace_get_responce": {"code": "0", "querytrace_result": {"code":
100, "messsage": "成功", "data": [{"opeTitle", "opeRemark", "opeName", "opeTime", "waybillCode"}]}}}``
as JD's SDKs and integrators quote it (its page needs a login).
"""

from __future__ import annotations

import hashlib
import json
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.fake_http import Answer, Request, running

APP_KEY, APP_SECRET, ACCESS_TOKEN, CUSTOMER = "jd-app-key", "jd-app-secret", "jd-token", "010K123456"
BEIJING = ZoneInfo("Asia/Shanghai")


def _error(code: str, zh: str) -> Answer:
    return 200, {"error_response": {"code": code, "zh_desc": zh, "en_desc": zh}}


@dataclass
class FakeJd:
    url: str = ""
    traces: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # waybill → its scans
    asked: list[str] = field(default_factory=list)  # waybills asked for, in order
    seen: list[Request] = field(default_factory=list)

    def scan(self, waybill: str, title: str, remark: str, at: datetime) -> None:
        at_text = at.astimezone(BEIJING).strftime("%Y/%m/%d %H:%M:%S")
        self.traces.setdefault(waybill, []).append(
            {
                "opeTitle": title,
                "opeRemark": remark,
                "opeName": "京东快递",
                "opeTime": at_text,
                "waybillCode": waybill,
            }
        )

    def answer(self, request: Request) -> Answer:
        params = {**request.query, **(request.form() if request.method == "POST" else {})}
        given = params.pop("sign", "")
        text = APP_SECRET + "".join(f"{k}{params[k]}" for k in sorted(params)) + APP_SECRET
        if given != hashlib.md5(text.encode()).hexdigest().upper():
            return _error("19", "签名无效")
        if params.get("app_key") != APP_KEY or params.get("access_token") != ACCESS_TOKEN:
            return _error("18", "access_token 无效")
        at = datetime.strptime(params.get("timestamp", ""), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
        if abs(datetime.now(BEIJING) - at) > timedelta(minutes=10) or params.get("v") != "2.0":
            return _error("14", "时间戳或版本错误")
        if params.get("method") != "jingdong.ldop.receive.trace.get":
            return _error("22", "无效的方法")
        business: dict[str, Any] = json.loads(params["360buy_param_json"])
        if business.get("customerCode") != CUSTOMER:
            return 200, {"jingdong_ldop_receive_trace_get_responce": {
                "code": "0", "querytrace_result": {"code": -1, "messsage": "商家编码错误"}}}  # fmt: skip
        self.asked.append(business["waybillCode"])
        data = self.traces.get(business["waybillCode"], [])
        return 200, {"jingdong_ldop_receive_trace_get_responce": {
            "code": "0", "querytrace_result": {"code": 100, "messsage": "成功", "data": data}}}  # fmt: skip


def fake_jd() -> AbstractContextManager[FakeJd]:
    return running(FakeJd(), "/routerjson")
