"""Bodies are bounded while they are read, chunked included, on every route, before authentication.

The real web app (API + console) served by uvicorn in its own process, so the process's memory is
what the kernel reports for it (``VmRSS``), not this test's.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

LIMIT = 256 * 1024
MB = 1024 * 1024
SERVE = (
    "import sys, uvicorn; from incident.api.web import create_web_app; "
    "uvicorn.run(create_web_app('secret-token'), host='127.0.0.1', port=int(sys.argv[1]), "
    "log_level='warning')"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    home = tmp_path_factory.mktemp("bodylimit")
    port = _free_port()
    env = {**os.environ, "INCIDENT_HOME": str(home), "INCIDENT_MAX_BODY_BYTES": str(LIMIT)}
    env.pop("INCIDENT_DB_URL", None)
    # The schema first, as `incident serve` would make it: /login counts failures in its own table.
    subprocess.run([sys.executable, "-m", "incident.cli", "db", "upgrade"], env=env, cwd=home, check=True,
                   capture_output=True)  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(port)], env=env, cwd=home)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("uvicorn did not start")
    yield url, proc.pid
    proc.terminate()
    proc.wait(20)


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    piece = b"x" * size
    for _ in range(total // size):
        yield piece


def _post_chunked(url: str, total: int) -> int | str:
    """The status answered, or the transport error's name when the server hung up mid-upload."""
    try:
        response = httpx.post(
            url, content=_chunks(total), headers={"Content-Type": "application/json"}, timeout=60
        )
    except httpx.TransportError as exc:
        return type(exc).__name__
    assert "error" in response.json(), response.text
    return response.status_code


@pytest.mark.parametrize("path", ["/login", "/api/feedback", "/api/incidents/INC1/contact"])
def test_a_chunked_body_over_the_limit_is_refused_without_a_token(served: tuple[str, int], path: str) -> None:
    url, _ = served
    response = httpx.post(url + path, content=_chunks(LIMIT * 4), timeout=30)
    assert "content-length" not in response.request.headers  # really chunked
    assert response.status_code == 413, response.text
    assert response.json() == {"error": f"request body over {LIMIT} bytes"}


def test_a_declared_length_over_the_limit_is_refused_at_once(served: tuple[str, int]) -> None:
    url, _ = served
    response = httpx.post(url + "/api/feedback", content=b"x" * (LIMIT + 1), timeout=30)
    assert response.status_code == 413 and response.json().keys() == {"error"}


def test_a_chunked_body_under_the_limit_still_reaches_the_app(served: tuple[str, int]) -> None:
    url, _ = served
    response = httpx.post(url + "/api/feedback", content=_chunks(LIMIT // 2), timeout=30)
    assert response.status_code == 401  # read whole, then refused for want of a token


def test_twenty_concurrent_50_mb_chunked_bodies_keep_the_process_small(served: tuple[str, int]) -> None:
    url, pid = served
    httpx.post(url + "/login", content=b"token=wrong", timeout=10)  # warm every code path once
    before = rss_kb(pid)
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kb(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    results: list[tuple[str, int | str]] = []
    paths = ["/login", "/api/feedback", "/api/incidents/INC1/approve", "/logout", "/"]

    def post(path: str) -> None:
        results.append((path, _post_chunked(url + path, 50 * MB)))

    threads = [threading.Thread(target=post, args=(paths[i % len(paths)],)) for i in range(20)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    sampler.join()
    grown_mb = (peak - before) / 1024
    print(
        f"\nRSS before {before / 1024:.1f} MB, peak {peak / 1024:.1f} MB, grown {grown_mb:.1f} MB; "
        f"20 x 50 MB chunked in {time.monotonic() - started:.2f} s; "
        f"answers {sorted(str(r) for _, r in results)}"
    )
    assert len(results) == 20
    hung_up = ("WriteError", "RemoteProtocolError", "ReadError")
    assert all(r == 405 for p, r in results if p == "/"), results  # GET-only: refused unread, as JSON
    assert all(r == 413 or r in hung_up for p, r in results if p != "/"), results
    assert sum(r == 413 for _, r in results) >= 8
    assert grown_mb < 50
