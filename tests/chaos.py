"""Tools of the chaos suite: a TCP proxy that can cut a connection, and a storm that counts.

The proxy stands between the service and PostgreSQL (127.0.0.1 only): ``cut()`` drops every open
connection and refuses new ones, as a network partition or a database restart would look to the
service, and ``restore()`` lets them through again.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx


class Proxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.loop = asyncio.new_event_loop()
        self._open = True
        self._writers: set[asyncio.StreamWriter] = set()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()
        started.wait(10)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port))
        started.set()
        self.loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        def drop() -> None:
            self._open = False
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

        self.loop.call_soon_threadsafe(drop)

    def restore(self) -> None:
        self.loop.call_soon_threadsafe(setattr, self, "_open", True)

    def close(self) -> None:
        async def shut() -> None:
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.loop.stop()

        self.cut()
        asyncio.run_coroutine_threadsafe(shut(), self.loop)
        self._thread.join(5)


@dataclass
class Storm:
    """Reports sent at a steady rate from a thread pool; what was accepted, what was refused."""

    url: str
    token: str
    accepted: list[str] = field(default_factory=list)
    refused: dict[int, int] = field(default_factory=dict)
    errors: int = 0

    def send(
        self, bodies: list[dict[str, object]], rate: float, during: Callable[[int], None] | None = None
    ) -> None:
        lock = threading.Lock()
        client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )

        def post(body: dict[str, object]) -> None:
            try:
                response = client.post("/api/feedback", json=body)
            except httpx.HTTPError:
                with lock:
                    self.errors += 1
                return
            with lock:
                if response.status_code == 202:
                    self.accepted.append(response.json()["feedback_id"])
                else:
                    self.refused[response.status_code] = self.refused.get(response.status_code, 0) + 1

        start = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            for i, body in enumerate(bodies):
                if during is not None:
                    during(i)
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(post, body)
        client.close()
