"""Personal tokens: made once, shown once, stored only as an argon2id hash, verified cheaply afterwards.

Format: ``inc_<id>_<secret>``. The id (16 hex characters) is public and indexed, so a request's token is
found with one indexed read; the secret (32 random bytes, URL-safe) is never stored: the database holds
only ``argon2id(whole token)`` (argon2-cffi's ``PasswordHasher``, parameters below).

Why a cache: one argon2 verification costs ~50 ms of CPU (that is the point of argon2) and the intake
must take 200 reports/s. After a token is verified once, this process keeps ``sha256(token) → who``
in memory for ``TTL`` seconds; a repeat costs one SHA-256 and a dict lookup. Only digests are kept,
never the token. Removing a person (``forget``) drops their entries at once in this process (the API
runs in one process; another process would see the removal within ``TTL``). Failed verifications are
not cached (an unbounded cache would be a memory lever); an unknown id costs one indexed read and no
argon2 at all, so a guessed token is cheap to refuse.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Generic, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

PREFIX = "inc_"
TTL = 60.0  # seconds a verified token is trusted without a second argon2 verification
# OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane): the secret has 256 random bits, so the hash
# guards a stolen database, not a guessable password; argon2-cffi's defaults (64 MiB, 3 passes, 4 lanes)
# cost ~8x more per added person, which a 1,000-row contact list import pays 1,000 times.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
T = TypeVar("T")


@dataclass(frozen=True)
class Made:
    token: str  # shown once to whoever added the person
    token_id: str
    token_hash: str


def make() -> Made:
    token_id = secrets.token_hex(8)
    token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    return Made(token, token_id, _hasher.hash(token))


def token_id(token: str) -> str | None:
    """The public id of a well-formed personal token, else None (the service token, garbage)."""
    if not token.startswith(PREFIX):
        return None
    ident, sep, secret = token[len(PREFIX) :].partition("_")
    if not sep or len(ident) != 16 or not secret:
        return None
    return ident


def verify(token: str, token_hash: str) -> bool:
    try:
        return _hasher.verify(token_hash, token)
    except (VerificationError, InvalidHashError):
        return False


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Cache(Generic[T]):
    """``sha256(token) → (expires, who, name)``; thread-safe (verifications run in worker threads)."""

    def __init__(self, ttl: float = TTL) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, T, str]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> T | None:
        key = digest(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            with self._lock:
                self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, token: str, who: T, name: str) -> None:
        with self._lock:
            now = time.monotonic()
            if len(self._entries) > 10_000:  # expired entries go before the cache grows further
                self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}
            self._entries[digest(token)] = (now + self.ttl, who, name)

    def forget(self, name: str) -> None:
        with self._lock:
            self._entries = {k: v for k, v in self._entries.items() if v[2] != name}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
