"""Notion: a page of blocks under a parent page, its content replaced when the archive changes.

Documentation followed (developers.notion.com/reference):
- ``post-page``: ``POST /v1/pages`` with ``parent.page_id``, ``properties.title.title`` (rich text) and
  ``children`` (blocks); ``patch-page``: ``PATCH /v1/pages/{id}`` (the title).
- ``get-block-children`` (``GET /v1/blocks/{id}/children``, ``page_size`` ≤ 100, ``start_cursor`` /
  ``has_more`` / ``next_cursor``), ``delete-a-block`` (``DELETE /v1/blocks/{id}``: to the trash) and
  ``patch-block-children`` (``PATCH /v1/blocks/{id}/children``, at most 100 children a request): an
  update trashes the page's blocks and appends the new ones, the way the API documents to change
  content it has no "replace" for.
- ``request-limits``: 429 ``rate_limited`` with ``Retry-After`` (seconds); a rich text's
  ``text.content`` ≤ 2000 characters, ≤ 100 elements in any array (rich text, children).
- ``block`` (paragraph, heading_1-3, bulleted/numbered_list_item, table/table_row, divider, code, quote,
  image), ``rich-text``; ``versioning``: the ``Notion-Version`` header (2022-06-28); ``authentication``:
  ``Authorization: Bearer <integration secret>``.
- Uploading small files (``/docs/uploading-small-files``): ``POST /v1/file_uploads``, then
  ``POST /v1/file_uploads/{id}/send`` (multipart ``file``), then an image block of type ``file_upload``:
  the charts are uploaded, as Notion takes no ``data:`` image either.

Text is sent as JSON strings, never as markup Notion would interpret: a customer's ``<script>`` is
shown as those characters.
"""

from __future__ import annotations

from typing import Any

import httpx

from incident import settings
from incident.knowledge.markup import Element, tree
from incident.knowledge.pages import Body
from incident.knowledge.remote import Caller, Rejected, Written

TARGET = "notion"
VERSION = "2022-06-28"
MAX_CHILDREN = 100  # blocks per request, rich-text objects per array
MAX_TEXT = 2000  # characters per rich-text object
HEADINGS = {"h1": "heading_1", "h2": "heading_2"}  # h3-h6: heading_3
STYLES = {"strong": "bold", "b": "bold", "em": "italic", "i": "italic", "code": "code"}


# --- blocks -----------------------------------------------------------------------------------


def _segments(
    node: Element | str, style: frozenset[str], link: str | None
) -> list[tuple[str, frozenset[str], str | None]]:
    if isinstance(node, str):
        return [(node, style, link)]
    if node.tag == "br":
        return [("\n", style, link)]
    if node.tag in ("ul", "ol", "img"):  # a nested list is its own blocks; an image its own block
        return []
    if node.tag in STYLES:
        style = style | {STYLES[node.tag]}
    if node.tag == "a" and node.attrs.get("href", "").startswith(("https://", "http://")):
        link = node.attrs["href"]
    return [s for child in node.children for s in _segments(child, style, link)]


def _rich_object(text: str, style: frozenset[str], link: str | None) -> dict[str, Any]:
    obj: dict[str, Any] = {"type": "text", "text": {"content": text, "link": {"url": link} if link else None}}
    if style:
        obj["annotations"] = {name: True for name in sorted(style)}
    return obj


def rich(node: Element | str) -> list[list[dict[str, Any]]]:
    """Rich text of an element, in arrays of ≤ 100 objects of ≤ 2000 characters (one array per block)."""
    merged: list[tuple[str, frozenset[str], str | None]] = []
    for text, style, link in _segments(node, frozenset(), None):
        if merged and merged[-1][1:] == (style, link):
            merged[-1] = (merged[-1][0] + text, style, link)
        else:
            merged.append((text, style, link))
    if not "".join(text for text, _, _ in merged).strip():
        return []  # only whitespace (between blocks): no block
    objects = [
        _rich_object(text[i : i + MAX_TEXT], style, link)
        for text, style, link in merged
        for i in range(0, len(text), MAX_TEXT)
    ]
    return [objects[i : i + MAX_CHILDREN] for i in range(0, len(objects), MAX_CHILDREN)]


def _text_blocks(kind: str, node: Element | str) -> list[dict[str, Any]]:
    return [{"type": kind, kind: {"rich_text": chunk}} for chunk in rich(node)]


def _cells(row: Element) -> list[Element]:
    return [c for c in row.children if isinstance(c, Element) and c.tag in ("th", "td")]


def _table(node: Element) -> list[dict[str, Any]]:
    rows = [r for part in node.children if isinstance(part, Element) for r in part.children
            if isinstance(r, Element) and r.tag == "tr"]  # fmt: skip
    if not rows:
        return []
    width = max(len(_cells(r)) for r in rows)

    def row(tr: Element) -> dict[str, Any]:
        cells = [(rich(c) or [[]])[0] for c in _cells(tr)]  # a cell is short: its first 100 objects
        return {"type": "table_row", "table_row": {"cells": cells + [[] for _ in range(width - len(cells))]}}

    head, body = rows[0], rows[1:]
    per = MAX_CHILDREN - 1  # each table repeats the header row
    chunks = [body[i : i + per] for i in range(0, len(body), per)] or [[]]
    return [
        {"type": "table", "table": {"table_width": width, "has_column_header": True,
                                    "has_row_header": False, "children": [row(head), *map(row, chunk)]}}
        for chunk in chunks
    ]  # fmt: skip


def _images(node: Element, uploads: dict[str, str]) -> list[dict[str, Any]]:
    found = [c for c in node.children if isinstance(c, Element) and c.tag == "img"]
    return [
        {
            "type": "image",
            "image": {"type": "file_upload", "file_upload": {"id": uploads[i.attrs.get("src", "")]}},
        }
        for i in found
        if i.attrs.get("src", "") in uploads
    ]


def _list(node: Element) -> list[dict[str, Any]]:
    kind = "numbered_list_item" if node.tag == "ol" else "bulleted_list_item"
    out = []
    for item in node.children:
        if isinstance(item, Element) and item.tag == "li":
            out += _text_blocks(kind, item)
            out += [
                b
                for sub in item.children
                if isinstance(sub, Element) and sub.tag in ("ul", "ol")
                for b in _list(sub)
            ]
    return out


def _block(node: Element | str, uploads: dict[str, str]) -> list[dict[str, Any]]:
    if isinstance(node, str):
        return _text_blocks("paragraph", node) if node.strip() else []
    tag = node.tag
    if tag in HEADINGS or tag in ("h3", "h4", "h5", "h6"):
        return _text_blocks(HEADINGS.get(tag, "heading_3"), node)
    if tag in ("ul", "ol"):
        return _list(node)
    if tag == "table":
        return _table(node)
    if tag == "hr":
        return [{"type": "divider", "divider": {}}]
    if tag == "pre":
        return [
            {"type": "code", "code": {"rich_text": chunk, "language": "plain text"}} for chunk in rich(node)
        ]
    if tag == "blockquote":
        return _text_blocks("quote", node)
    return [*_images(node, uploads), *_text_blocks("paragraph", node)]


def blocks(markdown: str, uploads: dict[str, str]) -> list[dict[str, Any]]:
    """The page's Markdown as Notion blocks; ``uploads``: image name → its file upload's id."""
    return [b for child in tree(markdown).children for b in _block(child, uploads)]


# --- the API -----------------------------------------------------------------------------------


def configured() -> bool:
    cfg = settings.get()
    return bool(cfg.notion_token and cfg.notion_parent_page_id)


def credential() -> str:
    cfg = settings.get()
    return "\x00".join((cfg.notion_url, cfg.notion_token or "", cfg.notion_parent_page_id or ""))


def client() -> httpx.AsyncClient:
    cfg = settings.get()
    headers = {"Authorization": f"Bearer {cfg.notion_token}", "Notion-Version": VERSION}
    return httpx.AsyncClient(base_url=cfg.notion_url.rstrip("/"), headers=headers, timeout=cfg.notify_timeout)


def _title(title: str) -> dict[str, Any]:
    return {"title": {"title": [{"type": "text", "text": {"content": title[:MAX_TEXT]}}]}}


async def _upload(call: Caller, name: str, png: bytes) -> str:
    made = await call.json("POST", "/v1/file_uploads", json={"filename": name, "content_type": "image/png"})
    await call.json("POST", f"/v1/file_uploads/{made['id']}/send", files={"file": (name, png, "image/png")})
    return str(made["id"])


async def _append(call: Caller, page_id: str, children: list[dict[str, Any]]) -> None:
    for i in range(0, len(children), MAX_CHILDREN):
        await call.json(
            "PATCH", f"/v1/blocks/{page_id}/children", json={"children": children[i : i + MAX_CHILDREN]}
        )


async def _clear(call: Caller, page_id: str) -> None:
    """Trash every block of the page (read first, page by page, then deleted)."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"page_size": MAX_CHILDREN, **({"start_cursor": cursor} if cursor else {})}
        page = await call.json("GET", f"/v1/blocks/{page_id}/children", params=params)
        ids += [str(b["id"]) for b in page.get("results", [])]
        cursor = page.get("next_cursor")
        if not page.get("has_more") or not cursor:
            break
    for block_id in ids:
        await call.call("DELETE", f"/v1/blocks/{block_id}")


async def _still_there(call: Caller, remote_id: str, title: str) -> dict[str, Any] | None:
    """The page after setting its title; None when it is gone (deleted, unshared, in the trash)."""
    try:
        page = await call.json("PATCH", f"/v1/pages/{remote_id}", json={"properties": _title(title)})
    except Rejected as exc:
        if exc.status == 404:
            return None
        raise
    return None if page.get("archived") or page.get("in_trash") else page


async def write(call: Caller, remote_id: str | None, version: int, title: str, body: Body) -> Written:
    """Create the page with its first 100 blocks and append the rest; or replace an existing page's."""
    uploads = {name: await _upload(call, name, png) for name, png in sorted(body.images.items())}
    children = blocks(body.markdown, uploads)
    page = await _still_there(call, remote_id, title) if remote_id else None
    if page is None or remote_id is None:
        new = {
            "parent": {"page_id": settings.get().notion_parent_page_id},
            "properties": _title(title),
            "children": children[:MAX_CHILDREN],
        }
        made = await call.json("POST", "/v1/pages", json=new)
        await _append(call, str(made["id"]), children[MAX_CHILDREN:])
        return Written(str(made["id"]), 1, str(made.get("url") or ""))
    await _clear(call, remote_id)
    await _append(call, remote_id, children)
    return Written(remote_id, version + 1, str(page.get("url") or ""))
