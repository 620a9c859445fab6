"""The few settings a terminal command reads, without pydantic, and where the home keeps the service's files.

Why not ``incident.settings``: importing pydantic-settings costs more than a whole command may take
(issue 12: every command answers within 3× a bare Python start), and a command that talks to the
service needs only its address, a credential, the home and how people read. The names and defaults are
``Settings``' own — ``tests/test_steps.py`` holds them equal — and a wrong value is one line naming
the variable, as there.
"""

from __future__ import annotations

import os
from datetime import tzinfo
from pathlib import Path

from incident.errors import SettingsError

TOKEN_FILE = "api-token"


def _text(name: str) -> str | None:
    value = os.environ.get(f"INCIDENT_{name.upper()}")
    return value if value else None


def home() -> Path:
    """INCIDENT_HOME (made if missing), as ``settings.home()``."""
    path = Path(_text("home") or ".incident").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def url() -> str | None:
    return _text("url")


def token() -> str | None:
    return _text("token")


def api_token() -> str | None:
    return _text("api_token")


def lang() -> str:
    raw = (_text("lang") or "zh")[:2].lower()
    if raw not in ("zh", "en"):
        raise SettingsError(f"INCIDENT_LANG={os.environ['INCIDENT_LANG']!r}: must be zh or en")
    return raw


def start_timeout() -> float:
    raw = _text("start_timeout") or "180"
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise SettingsError(f"INCIDENT_START_TIMEOUT={raw!r}: must be a number of seconds above 0")
    return value


def zone() -> tzinfo | None:
    """INCIDENT_TZ, or None for the machine's own zone (what ``datetime.astimezone()`` uses)."""
    name = _text("tz")
    if name is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"INCIDENT_TZ={name!r}: not an IANA time zone such as Asia/Shanghai") from None


def service_file() -> Path:
    """Where ``incident serve`` says how to reach it (url, pid, and the token it made)."""
    return home() / "service.json"


def token_file() -> Path:
    """The service token kept across restarts when INCIDENT_API_TOKEN is unset (mode 0600)."""
    return home() / TOKEN_FILE
