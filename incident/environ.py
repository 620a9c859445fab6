"""The few settings a terminal command reads, without pydantic, and where the home keeps the service's files.

Why not ``incident.settings``: importing pydantic-settings costs more than a whole command may take
(issue 12: every command answers within 3× a bare Python start), and a command that talks to the
service needs only its address, a credential, the home and how people read. The names and defaults are
``Settings``' own — ``tests/test_steps.py`` holds them equal — and a wrong value is one line naming
the variable, as there.
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime, tzinfo
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


def machine_zone() -> tzinfo:
    """The machine's own time zone, by its IANA name when it can be found (``TZ``, ``/etc/localtime``,
    ``/etc/timezone``), else the fixed offset the C library reports (what ``datetime.astimezone()`` uses).

    Why the name and not only the offset: a zone keeps its daylight-saving rules, so a due time next
    summer is shown with next summer's offset.
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        target = str(Path("/etc/localtime").resolve())
        candidates.append(target.partition("/zoneinfo/")[2])
    except OSError:
        pass
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text().strip())
    for name in candidates:
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return datetime.now().astimezone().tzinfo or UTC


def named_zone(name: str | None) -> tzinfo:
    """The zone ``name`` (INCIDENT_TZ's value), or the machine's for None; a wrong name is one line."""
    if not name:
        return machine_zone()
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"INCIDENT_TZ={name!r}: not an IANA time zone such as Asia/Shanghai") from None


def zone() -> tzinfo:
    """INCIDENT_TZ, else the machine's own zone: where the people who read the times are."""
    return named_zone(_text("tz"))


def stamp(moment: datetime, where: tzinfo | None = None) -> str:
    """A time as people read it: local, to the minute, with the zone's offset ("2026-12-06 10:30 +08:00").

    Why the offset and not the zone's abbreviation: "CST" is China, Central US and Cuba; "+08:00" is
    one thing, and it is what the ISO 8601 times of the JSON carry too.
    """
    local = moment.astimezone(where or zone())
    offset = local.strftime("%z") or "+0000"
    return f"{local:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


def write_whole(path: Path, text: str, mode: int = 0o666) -> None:
    """Write the file whole or not at all: a reader (a command, the service, another process writing
    it too) finds the old file or the whole new one, never a half-written one. ``mode`` as ``os.open``
    takes it (the umask applies); a temporary file left by a crash is made anew, so it gets that mode."""
    written = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    written.unlink(missing_ok=True)
    fd = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    written.replace(path)


def service_file() -> Path:
    """Where ``incident serve`` says how to reach it (url, pid, and the token it made)."""
    return home() / "service.json"


def token_file() -> Path:
    """The service token kept across restarts when INCIDENT_API_TOKEN is unset (mode 0600)."""
    return home() / TOKEN_FILE
