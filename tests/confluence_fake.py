"""A local Confluence Cloud for the tests: the endpoints the knowledge-base push calls, as Atlassian
documents them.

Followed (developer.atlassian.com):
- /cloud/confluence/rest/v2/api-group-page: ``POST /wiki/api/v2/pages`` (``spaceId``, ``status``,
  ``title``, ``parentId``, ``body: {representation: "storage", value}``; 200 with the page, version 1),
  ``GET /wiki/api/v2/pages?space-id=&title=`` (``{"results": […]}``), ``GET /wiki/api/v2/pages/{id}``
  (404 when there is none), ``PUT /wiki/api/v2/pages/{id}`` (``version.number`` must be the current
  one + 1, else 409). A title is unique among a space's current pages (400 otherwise).
- /cloud/confluence/rest/v1/api-group-content---attachments: ``PUT /wiki/rest/api/content/{id}/child/
  attachment`` creates or updates (same file name: its next version), multipart ``file``, refused
  without ``X-Atlassian-Token: nocheck`` (403, the XSRF check).
- /cloud/confluence/basic-auth-for-rest-apis: basic auth ``email:api_token``; anything else 401.
- 429 with ``Retry-After`` (/cloud/confluence/rate-limiting): ``rate_limit_next`` answers it.
- Storage format (confluence.atlassian.com/doc/confluence-storage-format): XHTML; the body must parse as
  XML with the ``ac:`` and ``ri:`` namespaces (Confluence refuses a body that does not: 400).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

EMAIL, TOKEN, SPACE, PARENT = "kb@example.com", "atlassian-api-token", "98304", "131073"
NAMESPACES = 'xmlns:ac="http://atlassian.com/content" xmlns:ri="http://atlassian.com/resource/identifier"'
PAGE = re.compile(r"^/wiki/api/v2/pages/(\d+)$")
ATTACH = re.compile(r"^/wiki/rest/api/content/(\d+)/child/attachment$")


def parse_storage(value: str) -> ET.Element:
    """The storage-format body as XML (raises ParseError when it is not well-formed)."""
    return ET.fromstring(f"<root {NAMESPACES}>{value}</root>")


@dataclass
class FakeConfluence:
    url: str = ""
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → page (title, body, version …)
    attachments: dict[str, dict[str, list[bytes]]] = field(default_factory=dict)  # page → name → versions
    requests: list[tuple[str, str, float, int]] = field(default_factory=list)  # method, path, time, status
    rate_limit_next: int = 0
    retry_after: str = "1"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def by_title(self, title: str) -> dict[str, Any]:
        return next(p for p in self.pages.values() if p["title"] == title)

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _, s in self.requests if m in ("POST", "PUT") and s < 300]


def _handler(fake: FakeConfluence) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            fake.requests.append((self.command, urlsplit(self.path).path, time.monotonic(), status))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _gate(self) -> bool:
            """Authentication and rate limiting, as every endpoint answers them."""
            if self.headers.get("Authorization") != expected:
                self._answer(401, {"code": 401, "message": "Unauthorized"})
                return False
            if fake.rate_limit_next > 0:
                fake.rate_limit_next -= 1
                self._answer(429, {"code": 429, "message": "Rate limited"}, {"Retry-After": fake.retry_after})
                return False
            return True

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _page(self, page: dict[str, Any]) -> dict[str, Any]:
            return {
                **{k: page[k] for k in ("id", "status", "title", "spaceId", "parentId")},
                "version": {"number": page["version"], "message": page.get("message", "")},
                "body": {"storage": {"representation": "storage", "value": page["value"]}},
                "_links": {"webui": f"/spaces/KB/pages/{page['id']}", "base": f"{fake.url}/wiki"},
            }

        def _check_body(self, data: dict[str, Any]) -> str | None:
            body = data.get("body") or {}
            if body.get("representation") != "storage" or not isinstance(body.get("value"), str):
                return "body: representation storage and a value are required"
            try:
                parse_storage(body["value"])
            except ET.ParseError as exc:
                return f"Error parsing xhtml: {exc}"
            if data.get("status") != "current" or not str(data.get("title") or "").strip():
                return "status current and a title are required"
            return None

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            with fake.lock:
                if not self._gate():
                    return
                parts = urlsplit(self.path)
                if parts.path == "/wiki/api/v2/pages":
                    query = parse_qs(parts.query)
                    found = [
                        self._page(p)
                        for p in fake.pages.values()
                        if p["title"] == query.get("title", [None])[0]
                        and p["spaceId"] in query.get("space-id", [])
                    ]
                    return self._answer(200, {"results": found, "_links": {}})
                match = PAGE.match(parts.path)
                if match and match[1] in fake.pages:
                    return self._answer(200, self._page(fake.pages[match[1]]))
                self._answer(404, {"errors": [{"status": 404, "title": "Not Found"}]})

        def do_POST(self) -> None:  # noqa: N802
            raw = self._body()
            with fake.lock:
                if not self._gate():
                    return
                if urlsplit(self.path).path != "/wiki/api/v2/pages":
                    return self._answer(404, {"errors": [{"status": 404, "title": "Not Found"}]})
                data = json.loads(raw)
                problem = self._check_body(data)
                if data.get("spaceId") != SPACE:
                    problem = f"no space {data.get('spaceId')}"
                elif data.get("parentId") not in (None, PARENT, *fake.pages):
                    problem = f"no parent {data.get('parentId')}"
                elif any(p["title"] == data.get("title") for p in fake.pages.values()):
                    problem = "A page with this title already exists"
                if problem:
                    return self._answer(400, {"errors": [{"status": 400, "title": problem}]})
                page_id = str(1000 + len(fake.pages))
                fake.pages[page_id] = {
                    "id": page_id,
                    "status": "current",
                    "title": data["title"],
                    "spaceId": SPACE,
                    "parentId": data.get("parentId"),
                    "value": data["body"]["value"],
                    "version": 1,
                }
                self._answer(200, self._page(fake.pages[page_id]))

        def do_PUT(self) -> None:  # noqa: N802
            raw = self._body()
            with fake.lock:
                if not self._gate():
                    return
                path = urlsplit(self.path).path
                if (match := ATTACH.match(path)) is not None:
                    return self._attach(match[1], raw)
                match = PAGE.match(path)
                if match is None or match[1] not in fake.pages:
                    return self._answer(404, {"errors": [{"status": 404, "title": "Not Found"}]})
                page, data = fake.pages[match[1]], json.loads(raw)
                if problem := self._check_body(data):
                    return self._answer(400, {"errors": [{"status": 400, "title": problem}]})
                if (data.get("version") or {}).get("number") != page["version"] + 1:
                    return self._answer(
                        409, {"errors": [{"status": 409, "title": "Version must be incremented"}]}
                    )
                page.update(title=data["title"], value=data["body"]["value"], version=page["version"] + 1)
                page["message"] = data["version"].get("message", "")
                self._answer(200, self._page(page))

        def _attach(self, page_id: str, raw: bytes) -> None:
            if self.headers.get("X-Atlassian-Token") != "nocheck":
                return self._answer(403, {"message": "XSRF check failed"})
            if page_id not in fake.pages:
                return self._answer(404, {"message": "No content with id"})
            head = f"Content-Type: {self.headers.get('Content-Type')}\r\n\r\n".encode()
            message = BytesParser(policy=email_policy).parsebytes(head + raw)
            files = [
                p for p in message.iter_parts() if p.get_param("name", header="content-disposition") == "file"
            ]
            if len(files) != 1 or not files[0].get_filename():
                return self._answer(400, {"message": "a multipart 'file' part is required"})
            name = files[0].get_filename()
            versions = fake.attachments.setdefault(page_id, {}).setdefault(name, [])
            versions.append(files[0].get_payload(decode=True))
            result = {
                "id": f"att{page_id}{len(versions)}",
                "type": "attachment",
                "title": name,
                "version": {"number": len(versions)},
            }
            self._answer(200, {"results": [result], "size": 1})

    return Handler


@contextmanager
def fake_confluence() -> Iterator[FakeConfluence]:
    fake = FakeConfluence()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
