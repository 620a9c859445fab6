"""A local HTTP server for the vendors' fakes: each fake answers the requests as its vendor documents.

Why one harness: the fakes (Zendesk, Freshdesk, JD, Baidu) differ in what they check and answer, not in
how a test serves them; each supplies ``answer(request) -> (status, JSON)`` and sees every request.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


Answer = tuple[int, Any]  # status, and a JSON value (None: no body)


def _handler(answer: Callable[[Request], Answer], seen: list[Request]) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _any(self) -> None:
            parts = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            headers = {k.lower(): v for k, v in self.headers.items()}
            request = Request(self.command, parts.path, query, headers, raw)
            with lock:
                seen.append(request)
                status, body = answer(request)
            data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _any  # noqa: N815 (http.server's names)

    return Handler


@contextmanager
def serve(answer: Callable[[Request], Answer], seen: list[Request]) -> Iterator[str]:
    """The fake's address while the block runs; every request is appended to ``seen`` in order."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(answer, seen))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Fake(Protocol):
    url: str
    seen: list[Request]

    def answer(self, request: Request) -> Answer: ...


F = TypeVar("F", bound=Fake)


@contextmanager
def running(fake: F, path: str = "") -> Iterator[F]:
    """The fake served; its ``url`` is where (plus ``path``, the vendor's endpoint, if it has one)."""
    with serve(fake.answer, fake.seen) as url:
        fake.url = url + path
        yield fake
