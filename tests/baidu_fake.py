"""A local Baidu AI Cloud 舆情 service for the tests: tasks and their results, signed requests only.

Followed (cloud.baidu.com/doc/TRENDS): 实时舆情 (Vjwvygqpq) — ``POST /v1/tasks`` with ``name``,
``requiredKeywords``, ``optionalKeywords``, ``filterKeywords``, ``geoIds``, ``taskType`` (COMPANY, HUMAN,
PRODUCT, EVENT, OTHERS) answers the task id, ``DELETE /v1/tasks/{taskId}``; 舆情分析 (skmyii9bo) — the
results under ``/v1/tasks/{taskId}/yuqing`` filtered by ``timeFrom``/``timeTo`` (ms), ``start``/``limit``
(1-1000) and ``sort`` (ASC/DESC), items with the fields of API接口参考 (Ujwvygpk6): title, url,
publishTime, source, mediaType, summary, sentiment; errors ``{"code", "message", "requestId"}``.
生成认证字符串 (doc/Reference/s/njwvz1yfu): the ``authorization`` header is checked by computing the
documented signature again here, from the request as received (not with our code).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

from tests.fake_http import Answer, Request, running

AK, SK = "baidu-ak-0123456789", "baidu-sk-abcdef"
TYPES = ("COMPANY", "HUMAN", "PRODUCT", "EVENT", "OTHERS")


def _enc(text: str, safe: str = "") -> str:
    return quote(text, safe="-_.~" + safe)


def _signed(request: Request) -> bool:
    """The documented bce-auth-v1 check, from what arrived."""
    try:
        _, ak, stamp, expiration, names, signature = request.headers["authorization"].split("/")
    except (KeyError, ValueError):
        return False
    at = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if ak != AK or abs(datetime.now(UTC) - at) > timedelta(seconds=int(expiration)):
        return False
    prefix = f"bce-auth-v1/{ak}/{stamp}/{expiration}"
    key = hmac.new(SK.encode(), prefix.encode(), hashlib.sha256).hexdigest()
    query = "&".join(sorted(f"{_enc(k)}={_enc(v)}" for k, v in request.query.items()))
    headers = "\n".join(
        sorted(f"{_enc(n)}:{_enc(request.headers.get(n, '').strip())}" for n in names.split(";"))
    )
    canonical = "\n".join([request.method, _enc(unquote(request.path), "/"), query, headers])
    return hmac.compare_digest(
        signature, hmac.new(key.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    )


def _refused(status: int, code: str, message: str) -> Answer:
    return status, {"code": code, "message": message, "requestId": "fake-request"}


@dataclass
class FakeBaidu:
    url: str = ""
    tasks: dict[int, dict[str, Any]] = field(default_factory=dict)  # task id → its body
    items: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # task id → its results
    deleted: list[int] = field(default_factory=list)
    seen: list[Request] = field(default_factory=list)
    ids: Any = field(default_factory=lambda: itertools.count(699))

    def task_of(self, incident_id: str) -> int | None:
        return next((i for i, task in self.tasks.items() if incident_id in task["name"]), None)

    def publish(self, task_id: int, title: str, url: str, sentiment: str, at: datetime | None = None) -> None:
        at = at or datetime.now(UTC)
        self.items.setdefault(task_id, []).append({
            "title": title, "url": url, "sentiment": sentiment, "publishTime": int(at.timestamp() * 1000),
            "source": "新浪新闻", "mediaType": "NEWS_MEDIA", "summary": f"{title}。网友热议。",
        })  # fmt: skip

    def answer(self, request: Request) -> Answer:
        if not _signed(request):
            return _refused(401, "AccessDenied", "authorization failed")
        parts = request.path.strip("/").split("/")
        if request.method == "POST" and parts == ["v1", "tasks"]:
            body = request.json()
            lists = ("requiredKeywords", "optionalKeywords", "filterKeywords", "geoIds")
            if not body.get("name") or not body.get("requiredKeywords") or body.get("taskType") not in TYPES:
                return _refused(400, "ParamsError", "name, requiredKeywords and taskType are required")
            if not all(isinstance(body.get(name), list) for name in lists):
                return _refused(400, "ParamsError", f"{', '.join(lists)} are lists")
            task_id = next(self.ids)
            self.tasks[task_id] = body
            return 200, task_id
        task_id = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else -1
        if task_id not in self.tasks:
            return _refused(404, "NoSuchTask", "no such task")
        if request.method == "DELETE" and len(parts) == 3:
            del self.tasks[task_id]
            self.deleted.append(task_id)
            return 200, None
        if request.method == "GET" and parts[3:] == ["yuqing"]:
            return 200, self._results(task_id, request.query)
        return _refused(404, "NotFound", request.path)

    def _results(self, task_id: int, query: dict[str, str]) -> dict[str, Any]:
        low, high = int(query.get("timeFrom", 0)), int(query.get("timeTo", 2**62))
        found = [i for i in self.items.get(task_id, []) if low <= i["publishTime"] <= high]
        found.sort(key=lambda i: i["publishTime"], reverse=query.get("sort") != "ASC")
        start, limit = int(query.get("start", 0)), min(int(query.get("limit", 20)), 1000)
        return {"totalCount": len(found), "data": found[start : start + limit]}


def fake_baidu() -> AbstractContextManager[FakeBaidu]:
    return running(FakeBaidu())
