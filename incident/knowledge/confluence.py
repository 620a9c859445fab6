"""Confluence Cloud: a page in storage format, created or updated to its next version, charts attached.

Documentation followed (developer.atlassian.com):
- REST v2, Page (``/cloud/confluence/rest/v2/api-group-page``): create ``POST /wiki/api/v2/pages`` with
  ``{spaceId, status: "current", title, parentId, body: {representation: "storage", value}}``; get
  ``GET /wiki/api/v2/pages/{id}`` (``version.number``); update ``PUT /wiki/api/v2/pages/{id}`` with
  ``{id, status, title, body, version: {number: current + 1, message}}``; find by title
  ``GET /wiki/api/v2/pages?space-id=…&title=…`` (titles are unique in a space).
- REST v1, Content - attachments (``/cloud/confluence/rest/v1/api-group-content---attachments``): v2
  has no upload, so ``PUT /wiki/rest/api/content/{id}/child/attachment`` ("create or update
  attachments": the same file name becomes the attachment's next version), multipart ``file``, with
  ``X-Atlassian-Token: nocheck``.
- Basic auth with the account's e-mail and an API token (``/cloud/confluence/basic-auth-for-rest-apis``).
- Confluence storage format (``confluence.atlassian.com/doc/confluence-storage-format``): XHTML; an
  attached image is ``<ac:image><ri:attachment ri:filename="…"/></ac:image>``. Storage format takes no
  ``data:`` images, hence the attachments.

Why the page is written from the archive's HTML element by element: storage format must be well-formed
XML, and only what we emit may be markup. Text is XML-escaped here (a customer's ``<script>`` arrives as
text and leaves as ``&lt;script&gt;``); tags outside a short list keep their text only; a link keeps
its target only when it is http(s).
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

import httpx

from incident import settings
from incident.knowledge.markup import Element, tree
from incident.knowledge.pages import Body
from incident.knowledge.remote import Caller, Rejected, Written

TARGET = "confluence"
KEEP = frozenset(
    {"h1", "h2", "h3", "h4", "h5", "h6", "p", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td",
     "strong", "em", "b", "i", "code", "pre", "blockquote"}
)  # fmt: skip
VOID = {"br": "<br />", "hr": "<hr />"}


def storage(markdown: str, images: set[str]) -> str:
    """The page's Markdown as storage-format XHTML; ``images``: the attachment names it may show."""
    return "".join(_xhtml(child, images) for child in tree(markdown).children)


def _xhtml(node: Element | str, images: set[str]) -> str:
    if isinstance(node, str):
        return escape(node)
    inner = "".join(_xhtml(child, images) for child in node.children)
    if node.tag in VOID:
        return VOID[node.tag]
    if node.tag == "img":
        name = node.attrs.get("src", "")
        if name not in images:
            return ""
        alt = quoteattr(node.attrs.get("alt", name))
        return f"<ac:image ac:alt={alt}><ri:attachment ri:filename={quoteattr(name)} /></ac:image>"
    if node.tag == "a":
        href = node.attrs.get("href", "")
        return f"<a href={quoteattr(href)}>{inner}</a>" if href.startswith(("https://", "http://")) else inner
    if node.tag in KEEP:
        return f"<{node.tag}>{inner}</{node.tag}>"
    return inner  # anything else: its text, not its markup


def configured() -> bool:
    cfg = settings.get()
    return bool(
        cfg.confluence_url and cfg.confluence_email and cfg.confluence_token and cfg.confluence_space_id
    )


def credential() -> str:
    """What identifies the credential and the place (a refused one is not tried again until it changes)."""
    cfg = settings.get()
    parts = (cfg.confluence_url, cfg.confluence_email, cfg.confluence_token, cfg.confluence_space_id)
    return "\x00".join(p or "" for p in parts)


def client() -> httpx.AsyncClient:
    cfg = settings.get()
    auth = httpx.BasicAuth(cfg.confluence_email or "", cfg.confluence_token or "")
    base = (cfg.confluence_url or "").rstrip("/")
    return httpx.AsyncClient(base_url=base, auth=auth, timeout=cfg.notify_timeout)


def _url(page: dict[str, Any], base: str) -> str:
    links = page.get("_links") or {}
    if isinstance(links, dict) and links.get("webui"):
        return f"{links.get('base') or base + '/wiki'}{links['webui']}"
    return f"{base}/wiki/api/v2/pages/{page.get('id')}"


async def _find(call: Caller, title: str) -> str | None:
    """A page of this title in the space (made by an earlier push whose answer was lost)."""
    cfg = settings.get()
    found = await call.json(
        "GET", "/wiki/api/v2/pages", params={"space-id": cfg.confluence_space_id, "title": title}
    )
    results = found.get("results") or []
    return str(results[0]["id"]) if results else None


async def _attach(call: Caller, page_id: str, images: dict[str, bytes]) -> None:
    for name, png in sorted(images.items()):
        await call.call(
            "PUT",
            f"/wiki/rest/api/content/{page_id}/child/attachment",
            headers={"X-Atlassian-Token": "nocheck"},
            files={"file": (name, png, "image/png")},
            data={"minorEdit": "true"},
        )


async def write(call: Caller, remote_id: str | None, version: int, title: str, body: Body) -> Written:
    """Create the page (or find it by title), else update it to the version after the one it has there
    (``version``, what we last wrote, is not trusted: someone may have edited the page since); attach
    its charts."""
    cfg = settings.get()
    base = (cfg.confluence_url or "").rstrip("/")
    value = storage(body.markdown, set(body.images))
    remote_id = remote_id or await _find(call, title)
    current = await _current_version(call, remote_id) if remote_id else None
    if remote_id is None or current is None:  # never made, or deleted there since: made anew
        new: dict[str, Any] = {
            "spaceId": cfg.confluence_space_id,
            "status": "current",
            "title": title,
            "body": {"representation": "storage", "value": value},
        }
        if cfg.confluence_parent_id:
            new["parentId"] = cfg.confluence_parent_id
        page = await call.json("POST", "/wiki/api/v2/pages", json=new)
        await _attach(call, str(page["id"]), body.images)
        return Written(str(page["id"]), int(page["version"]["number"]), _url(page, base))
    await _attach(call, remote_id, body.images)
    update = {
        "id": remote_id,
        "status": "current",
        "title": title,
        "body": {"representation": "storage", "value": value},
        "version": {"number": current + 1, "message": "incident: the archive changed"},
    }
    page = await call.json("PUT", f"/wiki/api/v2/pages/{remote_id}", json=update)
    return Written(remote_id, int(page["version"]["number"]), _url(page, base))


async def _current_version(call: Caller, remote_id: str) -> int | None:
    """The page's version number there; None when it is gone (deleted or purged in Confluence)."""
    try:
        page = await call.json("GET", f"/wiki/api/v2/pages/{remote_id}")
    except Rejected as exc:
        if exc.status == 404:
            return None
        raise
    return int(page["version"]["number"])
