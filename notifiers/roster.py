"""Who serves which role: the apprise YAML named by INCIDENT_NOTIFY_CONFIG, tags = role names.

Why apprise parses it: the file is plain apprise configuration, so every apprise URL scheme,
tag group and option works as apprise documents it. We only add two checks apprise does not
make, because a silently dropped channel is the worst failure for an incident system: a URL
apprise cannot load, or one with no role tag, makes the whole file a ``RosterError`` naming it.

The roster is cached by path, mtime and size, so an edited file is picked up on the next notice.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import yaml
from apprise import Apprise, AppriseConfig

from incident import settings
from notifiers import applog
from playbooks.schema import roles as known_roles

log = logging.getLogger(__name__)
DIRECT = "@"  # the pseudo-role of a channel that serves a person named directly, not a role


class RosterError(ValueError):
    """The notification config cannot be used; the message names the file."""


@dataclass(frozen=True)
class Channel:
    """One apprise URL and the roles (tags) it serves."""

    url: str = field(repr=False)  # full URL with secrets: kept in memory only
    redacted: str  # apprise's url(privacy=True): what logs and the delivery table show
    roles: frozenset[str]


@dataclass(frozen=True)
class Roster:
    """The channels of one config file; ``note`` says why it is empty when it is."""

    source: Path | None
    channels: tuple[Channel, ...] = ()
    note: str | None = None

    def for_role(self, role: str) -> list[Channel]:
        return [channel for channel in self.channels if role in channel.roles]


_lock = threading.Lock()
_cache: dict[Path, tuple[tuple[int, int], Roster]] = {}


# Query arguments apprise's privacy mode leaves readable: "+Header" values (e.g. "+X-Token=…" on a
# json:// webhook) and arguments whose name says they hold a secret.
_SECRET_ARG = re.compile(r"^\+|token|secret|passw|apikey|api_key|auth|sign|sig$", re.IGNORECASE)


def redact(url: str) -> str:
    """Hide secrets apprise's ``url(privacy=True)`` keeps: HTTP header values and secret-named args."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = parse_qsl(parts.query, keep_blank_values=True)
    args = [(key, "****" if _SECRET_ARG.search(key) else value) for key, value in query]
    return urlunsplit(parts._replace(query=urlencode(args, safe="*:/@,")))


def _parse(path: Path, content: str) -> Roster:
    try:
        data = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        raise RosterError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or "urls" not in data:
        raise RosterError(f"{path}: expected an apprise YAML config with a 'urls:' list")
    if not data["urls"]:
        log.warning("%s lists no URLs: nobody will be notified", path)
        return Roster(source=path, note=f"{path} lists no URLs")
    config = AppriseConfig()
    with applog.capture() as problems:
        config.add_config(content, format="yaml")
        servers = config.servers()
    if problems:
        raise RosterError(f"{path}: apprise cannot use it: {'; '.join(problems)}")
    channels = []
    for number, server in enumerate(servers, start=1):
        tags = {str(tag) for tag in server.tags}
        redacted = redact(server.url(privacy=True))
        roles = frozenset(tags & set(known_roles()))
        if not roles:
            raise RosterError(
                f"{path}: URL #{number} ({redacted}) has no role tag (tags: "
                f"{', '.join(sorted(tags)) or 'none'}); use one of {', '.join(known_roles())}"
            )
        if extra := tags - roles:
            log.warning("%s: URL #%d has tags that are not roles: %s", path, number, extra)
        channels.append(Channel(url=server.url(privacy=False), redacted=redacted, roles=roles))
    return Roster(source=path, channels=tuple(channels))


def load(path: Path) -> Roster:
    """The roster in ``path``; a missing file is an empty roster, a broken one a RosterError."""
    path = path.expanduser().resolve()
    try:
        stat = path.stat()
    except FileNotFoundError:
        log.warning("notification config %s does not exist: nobody will be notified", path)
        return Roster(source=path, note=f"notification config {path} does not exist")
    key = (stat.st_mtime_ns, stat.st_size)
    with _lock:
        cached = _cache.get(path)
        if cached and cached[0] == key:
            return cached[1]
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError(f"{path}: cannot read notification config: {exc}") from exc
    roster = _parse(path, content)
    with _lock:
        _cache[path] = (key, roster)
    return roster


def current() -> Roster:
    """The roster of INCIDENT_NOTIFY_CONFIG; unset means an empty roster (nobody is told)."""
    path = settings.get().notify_config
    if path is None:
        return Roster(source=None, note="INCIDENT_NOTIFY_CONFIG is not set")
    return load(path)


def _person_channel(name: str, url: str, roles: frozenset[str]) -> Channel | None:
    with applog.capture() as problems:
        server = Apprise.instantiate(url)
    if server is None or problems:
        log.warning("person %s: apprise cannot use a notify URL (%s); skipped", name, "; ".join(problems))
        return None
    return Channel(url=server.url(privacy=False), redacted=redact(server.url(privacy=True)), roles=roles)


def with_people(base: Roster) -> Roster:
    """The roster plus the directory's people: each person's URLs serve the roles they hold (for a role
    on a duty rota now, only if they are on duty).

    Read per notice (one small query), so a person added or removed is told, or not, from the next
    notice on. A URL both in the roster and a person's serves the union of their roles (told once).
    A person's URL apprise cannot use is skipped with a warning: one person's typo must not silence
    everyone else's channels.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from models import Person, RotaShift, session_scope, utcnow

    try:
        with session_scope() as s:
            people = [(p.name, list(p.notify or []), frozenset(p.roles or [])) for p in s.query(Person)]
            holds = {name: roles for name, _, roles in people}
            now = utcnow()
            duty: dict[str, set[str]] = {}
            for shift in s.query(RotaShift).filter(RotaShift.starts_at <= now, RotaShift.ends_at > now):
                # Only a shift of someone who holds the role now counts: a shift left by a removed
                # person, or one who lost the role, must not silence the role's other holders.
                if shift.role in holds.get(shift.person, ()):
                    duty.setdefault(shift.role, set()).add(shift.person)
    except SQLAlchemyError as exc:  # the roster's own channels are still told
        log.error("the directory of people cannot be read; only the roster is told: %s", exc)
        return base
    merged: dict[str, Channel] = {channel.url: channel for channel in base.channels}
    for name, urls, roles in people:
        # A role on a rota now is served by who is on duty only (incident/people/rotas.py).
        serves = frozenset(r for r in roles & set(known_roles()) if r not in duty or name in duty[r])
        for url in urls:
            channel = _person_channel(name, url, serves)
            if channel is None or not channel.roles:
                continue
            known = merged.get(channel.url)
            if known is not None:
                channel = Channel(url=known.url, redacted=known.redacted, roles=known.roles | channel.roles)
            merged[channel.url] = channel
    if len(merged) == len(base.channels) and not people:
        return base
    return Roster(source=base.source, channels=tuple(merged.values()), note=base.note if not merged else None)


def people_channels(names: Sequence[str]) -> dict[str, list[Channel]]:
    """The channels of people named directly (an improvement action's owner), as the directory holds
    them; a name not in the directory is left out (an owner may be a supplier, a team: free text)."""
    from sqlalchemy.exc import SQLAlchemyError

    from models import Person, session_scope

    wanted = [n for n in dict.fromkeys(names) if n]
    if not wanted:
        return {}
    try:
        with session_scope() as s:
            found = {p.name: list(p.notify or []) for p in s.query(Person).filter(Person.name.in_(wanted))}
    except SQLAlchemyError as exc:  # the roles are still told
        log.error("the directory of people cannot be read; %s not told directly: %s", wanted, exc)
        return {}
    direct = frozenset({DIRECT})
    out: dict[str, list[Channel]] = {}
    for name, urls in found.items():
        channels = (_person_channel(name, url, direct) for url in urls)
        out[name] = [c for c in channels if c is not None]
    return out


def check() -> Roster:
    """Validate the configured roster now (for service start-up): raises RosterError."""
    return current()
