"""``incident export``: the archive as a Markdown tree in a folder, or pushed to a knowledge base now."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from incident import environ
from incident.terminal import Args, Group, call, download, emit, fail, opt, say, word

commands = Group()
COUNTS = ("pushed", "unchanged", "failed", "remaining")


def _unpack(body: bytes, out: Path, as_json: bool) -> list[str]:
    """Write the zip's files under ``out``; a name that would leave ``out`` is refused, not written."""
    names = []
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        for info in archive.infolist():
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts:
                fail(f"export: refusing the path {info.filename!r}", as_json, 1)
            target = out.joinpath(*name.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
            names.append(str(name))
    return names


def _pushed(data: dict[str, Any]) -> None:
    say(f"{data['target']}: " + ", ".join(f"{word('field', k)} {data[k]}" for k in COUNTS))
    if data.get("refused"):
        say(f"{word('field', 'refused')}: {data['refused']}")
    for page in data.get("pages", []):
        detail = (
            f"v{page['version']} {page.get('url') or ''}" if page["status"] == "sent" else page.get("error")
        )
        say(f"  {page['path']}  {word('delivery', page['status'])}  {detail}")


@commands.command(
    "export",
    opt("--format", choices=("markdown",), default="markdown", help="markdown (a tree with index.md)"),
    opt("--out", type=Path, default=None, help="folder to write"),
    opt("--to", choices=("confluence", "notion"), default=None, help="push to this knowledge base now"),
    opt("--lang", choices=("zh", "en"), default=None, help="zh | en (default: INCIDENT_LANG)"),
)
def export(a: Args) -> None:
    """Write the records, post-mortems and reviews as Markdown files with an index (--out), or push the
    pages that changed to Confluence or Notion now (--to; the worker's sweep pushes them anyway)."""
    if (a.out is None) == (a.to is None):
        fail("give exactly one of --out FOLDER or --to confluence|notion", a.json)
    if a.to is not None:
        emit(call(a.json, "POST", "/api/knowledge/push", params={"to": a.to}), a.json, _pushed)
        return
    response = download("/api/export", {"format": a.format, "lang": a.lang or environ.lang()}, a.json)
    files = _unpack(response.content, a.out, a.json)
    emit({"path": str(a.out.resolve()), "files": len(files)}, a.json)
