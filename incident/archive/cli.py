"""``incident export``: the archive as a Markdown tree in a folder (for a knowledge base or a wiki)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path, PurePosixPath

from incident import environ
from incident.terminal import Args, Group, download, emit, fail, opt

commands = Group()


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


@commands.command(
    "export",
    opt("--format", choices=("markdown",), default="markdown", help="markdown (a tree with index.md)"),
    opt("--out", type=Path, required=True, help="folder to write"),
    opt("--lang", choices=("zh", "en"), default=None, help="zh | en (default: INCIDENT_LANG)"),
)
def export(a: Args) -> None:
    """Write the records, post-mortems and monthly reviews as Markdown files with an index."""
    response = download("/api/export", {"format": a.format, "lang": a.lang or environ.lang()}, a.json)
    files = _unpack(response.content, a.out, a.json)
    emit({"path": str(a.out.resolve()), "files": len(files)}, a.json)
