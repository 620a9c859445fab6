"""A local Notion API for the tests: the endpoints the knowledge-base push calls, as Notion documents them.

Followed (developers.notion.com/reference): ``post-page`` (``POST /v1/pages``: ``parent.page_id``,
``properties.title.title``, ``children``), ``patch-page`` (``PATCH /v1/pages/{id}``),
``get-block-children`` (``GET /v1/blocks/{id}/children``: ``page_size`` ≤ 100, ``start_cursor``,
``has_more``, ``next_cursor``), ``patch-block-children`` (≤ 100 children a request), ``delete-a-block``
(``in_trash: true``), ``request-limits`` (429 ``rate_limited`` with ``Retry-After``; 400
``validation_error`` for a rich text's ``text.content`` over 2000 characters or an array over 100
elements), ``status-codes`` (401 ``unauthorized``; 400 ``missing_version`` without ``Notion-Version``;
404 ``object_not_found``), ``block`` (the block types below; a table's rows are its ``children``, each
``table_row`` with ``table_width`` cells), and /docs/uploading-small-files (``POST /v1/file_uploads``,
``POST /v1/file_uploads/{id}/send`` multipart ``file``, an image block of type ``file_upload`` naming an
uploaded one).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN, PARENT = "ntn_integration_secret", "5c6a2821-6bb1-4a7e-b6e1-c50111515c3d"
TEXT_BLOCKS = (
    "paragraph",
    "heading_1",
    "heading_2",
    "heading_3",
    "bulleted_list_item",
    "numbered_list_item",
    "quote",
    "code",
)
CHILDREN = re.compile(r"^/v1/blocks/([0-9a-f-]+)/children$")
BLOCK = re.compile(r"^/v1/blocks/([0-9a-f-]+)$")
PAGE = re.compile(r"^/v1/pages/([0-9a-f-]+)$")
SEND = re.compile(r"^/v1/file_uploads/([0-9a-f-]+)/send$")


class Invalid(Exception):
    """A body Notion would refuse (400 validation_error)."""


@dataclass
class FakeNotion:
    url: str = ""
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → {title, parent, archived}
    blocks: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → block (with parent, in_trash)
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, float, int, int]] = field(default_factory=list)  # …, children sent
    rate_limit_next: int = 0
    retry_after: str = "0"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def content(self, page_id: str) -> list[dict[str, Any]]:
        """The page's blocks not in the trash, in order."""
        return [b for b in self.blocks.values() if b["parent"] == page_id and not b["in_trash"]]

    def text(self, page_id: str) -> str:
        """Every rich text of the page's blocks (table cells too), joined: what a reader sees."""
        out = []
        for block in self.content(page_id):
            body = block[block["type"]]
            out += [r["text"]["content"] for r in body.get("rich_text", [])]
            for row in body.get("children", []):
                out += [r["text"]["content"] for cell in row["table_row"]["cells"] for r in cell]
        return "\n".join(out)


def _rich(items: Any, where: str) -> None:
    if not isinstance(items, list) or len(items) > 100:
        raise Invalid(f"{where} should be an array of at most 100 rich text objects")
    for n, item in enumerate(items):
        content = item.get("text", {}).get("content") if item.get("type") == "text" else None
        if not isinstance(content, str):
            raise Invalid(f"{where}[{n}].text.content should be a string")
        if len(content) > 2000:
            raise Invalid(
                f"{where}[{n}].text.content.length should be ≤ `2000`, instead was `{len(content)}`."
            )


def _check(block: dict[str, Any], fake: FakeNotion, where: str) -> None:
    kind = block.get("type")
    body = block.get(kind) if isinstance(kind, str) else None
    if not isinstance(body, dict):
        raise Invalid(f"{where}: a block needs its type's object")
    if kind in TEXT_BLOCKS:
        _rich(body.get("rich_text"), f"{where}.{kind}.rich_text")
    elif kind == "table":
        rows = body.get("children") or []
        if len(rows) > 100 or not rows:
            raise Invalid(f"{where}.table.children should have 1 to 100 rows")
        for r, row in enumerate(rows):
            cells = row.get("table_row", {}).get("cells")
            if row.get("type") != "table_row" or len(cells) != body.get("table_width"):
                raise Invalid(f"{where}.table.children[{r}] should have table_width cells")
            for c, cell in enumerate(cells):
                _rich(cell, f"{where}.table.children[{r}].cells[{c}]")
    elif kind == "image":
        ref = body.get("file_upload", {}).get("id")
        if body.get("type") != "file_upload" or fake.uploads.get(ref, {}).get("status") != "uploaded":
            raise Invalid(f"{where}.image: a file_upload that was sent")
    elif kind != "divider":
        raise Invalid(f"{where}: unsupported block type {kind}")


def _children(children: Any, fake: FakeNotion) -> None:
    if not isinstance(children, list) or len(children) > 100:
        raise Invalid("body.children should be an array of at most 100 blocks")
    for n, block in enumerate(children):
        _check(block, fake, f"body.children[{n}]")


def _handler(fake: FakeNotion) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any], sent: int = 0, retry: str | None = None) -> None:
            fake.requests.append((self.command, urlsplit(self.path).path, time.monotonic(), status, sent))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if retry is not None:
                self.send_header("Retry-After", retry)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, code: str, message: str) -> None:
            self._answer(status, {"object": "error", "status": status, "code": code, "message": message})

        def _gate(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._error(401, "unauthorized", "API token is invalid.")
                return False
            if not self.headers.get("Notion-Version"):
                self._error(400, "missing_version", "Notion-Version header failed validation")
                return False
            if fake.rate_limit_next > 0:
                fake.rate_limit_next -= 1
                self._answer(
                    429,
                    {
                        "object": "error",
                        "status": 429,
                        "code": "rate_limited",
                        "message": "You have been rate limited.",
                    },
                    retry=fake.retry_after,
                )
                return False
            return True

        def _json(self) -> dict[str, Any]:
            return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")

        def _page(self, page_id: str) -> dict[str, Any]:
            page = fake.pages[page_id]
            return {
                "object": "page",
                "id": page_id,
                "url": f"https://www.notion.so/{page_id.replace('-', '')}",
                "archived": page["archived"],
                "in_trash": page["archived"],
                "properties": {"title": {"title": page["title"]}},
            }

        def _append(self, parent: str, children: Any) -> None:
            _children(children, fake)
            for block in children:
                block_id = str(uuid.uuid4())
                fake.blocks[block_id] = {**block, "id": block_id, "parent": parent, "in_trash": False}

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            with fake.lock:
                if not self._gate():
                    return
                parts = urlsplit(self.path)
                match = CHILDREN.match(parts.path)
                query = parse_qs(parts.query)
                size = int(query.get("page_size", ["100"])[0])
                if match is None or (match[1] not in fake.pages and match[1] not in fake.blocks):
                    return self._error(404, "object_not_found", "Could not find block")
                if size > 100:
                    return self._error(400, "validation_error", "page_size should be ≤ 100")
                items = fake.content(match[1])
                start = int(query.get("start_cursor", ["0"])[0])
                chunk = items[start : start + size]
                more = start + size < len(items)
                results = [{"object": "block", "id": b["id"], "type": b["type"]} for b in chunk]
                self._answer(
                    200,
                    {
                        "object": "list",
                        "results": results,
                        "has_more": more,
                        "next_cursor": str(start + size) if more else None,
                    },
                )

        def do_POST(self) -> None:  # noqa: N802
            path = urlsplit(self.path).path
            if (match := SEND.match(path)) is not None:
                return self._send(match[1])
            data = self._json()
            with fake.lock:
                if not self._gate():
                    return
                if path == "/v1/file_uploads":
                    upload_id = str(uuid.uuid4())
                    fake.uploads[upload_id] = {"filename": data.get("filename"), "status": "pending"}
                    return self._answer(
                        200,
                        {
                            "object": "file_upload",
                            "id": upload_id,
                            "status": "pending",
                            "upload_url": f"{fake.url}/v1/file_uploads/{upload_id}/send",
                        },
                    )
                if path != "/v1/pages":
                    return self._error(404, "object_not_found", "no such endpoint")
                parent = (data.get("parent") or {}).get("page_id")
                if parent != PARENT and parent not in fake.pages:
                    return self._error(404, "object_not_found", f"Could not find page with ID: {parent}.")
                try:
                    title = data["properties"]["title"]["title"]
                    _rich(title, "body.properties.title.title")
                    _children(data.get("children", []), fake)
                except (Invalid, KeyError, TypeError) as exc:
                    return self._error(400, "validation_error", f"body failed validation: {exc}")
                page_id = str(uuid.uuid4())
                fake.pages[page_id] = {"title": title, "parent": parent, "archived": False}
                self._append(page_id, data.get("children", []))
                self._answer(200, self._page(page_id), len(data.get("children", [])))

        def _send(self, upload_id: str) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with fake.lock:
                if not self._gate():
                    return
                if upload_id not in fake.uploads:
                    return self._error(404, "object_not_found", "no such file upload")
                head = f"Content-Type: {self.headers.get('Content-Type')}\r\n\r\n".encode()
                parts = list(BytesParser(policy=email_policy).parsebytes(head + raw).iter_parts())
                files = [p for p in parts if p.get_param("name", header="content-disposition") == "file"]
                if len(files) != 1 or not files[0].get_payload(decode=True):
                    return self._error(400, "validation_error", "a multipart 'file' part is required")
                fake.uploads[upload_id].update(status="uploaded", data=files[0].get_payload(decode=True))
                self._answer(200, {"object": "file_upload", "id": upload_id, "status": "uploaded"})

        def do_PATCH(self) -> None:  # noqa: N802
            path = urlsplit(self.path).path
            data = self._json()
            with fake.lock:
                if not self._gate():
                    return
                if (match := PAGE.match(path)) is not None:
                    if match[1] not in fake.pages:
                        return self._error(404, "object_not_found", "Could not find page")
                    if "properties" in data:
                        fake.pages[match[1]]["title"] = data["properties"]["title"]["title"]
                    return self._answer(200, self._page(match[1]))
                match = CHILDREN.match(path)
                if match is None or match[1] not in fake.pages:
                    return self._error(404, "object_not_found", "Could not find block")
                try:
                    self._append(match[1], data.get("children"))
                except Invalid as exc:
                    return self._error(400, "validation_error", f"body failed validation: {exc}")
                self._answer(200, {"object": "list", "results": []}, len(data["children"]))

        def do_DELETE(self) -> None:  # noqa: N802
            with fake.lock:
                if not self._gate():
                    return
                match = BLOCK.match(urlsplit(self.path).path)
                if match is None or match[1] not in fake.blocks:
                    return self._error(404, "object_not_found", "Could not find block")
                fake.blocks[match[1]]["in_trash"] = True
                self._answer(200, {"object": "block", "id": match[1], "in_trash": True, "archived": True})

    return Handler


@contextmanager
def fake_notion() -> Iterator[FakeNotion]:
    fake = FakeNotion()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
