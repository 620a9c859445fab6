"""What every ticket system's ticket shares on its way to a feedback: category, tags, text, customer.

Why one place: Zendesk and Freshdesk tickets select a category the same way (a tag equal to a category
id, or the team's mapping file of tags and custom-field values), are cut to what intake stores the
same way, and are refused with the same one-line 422 when they name no category.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from incident.errors import BadInput, Unavailable
from incident.feedback.inputs import MAX_TEXT, FeedbackIn
from incident.settings import mapping_shape

log = logging.getLogger("incident.integrations")

CATEGORIES = ("product_quality", "service_failure", "special_scenario")
CUT = "…"  # marks text cut to fit (a long ticket is recorded, not refused: the vendor would not resend it)


@lru_cache(maxsize=8)
def _read(path: Path, mtime: float) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    if (wrong := mapping_shape(data)) is not None:
        raise Unavailable(f"{path}: {wrong}")
    return dict(data)


def mapping(path: Path | None, variable: str) -> dict[str, Any]:
    """The team's mapping file (checked at start-up; one removed or broken since answers 503: retried)."""
    if path is None:
        return {}
    try:
        return _read(path, path.stat().st_mtime)
    except (OSError, yaml.YAMLError) as exc:
        log.error("%s=%s cannot be read: %s", variable, path, exc)
        raise Unavailable(f"{variable} {path} cannot be read; the ticket is not recorded (retry)") from None


def category_of(tags: Iterable[str], fields: dict[str, str], extra: dict[str, Any], variable: str) -> str:
    """A tag equal to a category id wins; then the mapping file's tags, then its custom-field values."""
    tags = list(tags)
    for tag in tags:
        if tag in CATEGORIES:
            return tag
    for tag in tags:
        if (found := (extra.get("tags") or {}).get(tag)) in CATEGORIES:
            return str(found)
    by_field = {str(k): v for k, v in (extra.get("fields") or {}).items() if isinstance(v, dict)}
    for field, value in fields.items():
        values = by_field.get(str(field))
        if values and (found := values.get(str(value))) in CATEGORIES:
            return str(found)
    raise BadInput(
        f"ticket tags {sorted(tags)} select no category: tag it with one of {', '.join(CATEGORIES)}"
        f" (or map a tag or custom field in {variable})"
    )


def tags_of(raw: object) -> list[str]:
    """A list of tags, or the placeholder's rendering: space- (Zendesk) or comma-separated (Freshdesk)."""
    if isinstance(raw, str):
        return [tag for tag in raw.replace(",", " ").split() if tag]
    if isinstance(raw, list) and all(isinstance(t, str | int) for t in raw):
        return [str(t) for t in raw]
    if raw is None:
        return []
    raise BadInput("ticket.tags: a list of tags or a string of them")


def text_of(parts: Iterable[object], fallback: str) -> str:
    """Subject and description as one summary, cut to what intake stores (``MAX_TEXT``) when longer."""
    text = "\n\n".join(str(p).strip() for p in parts if p is not None and str(p).strip())
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - len(CUT)] + CUT
    return text or fallback


def _clean(value: object, most: int) -> str | None:
    text = str(value or "").strip()
    return text[:most] or None


def feedback(ref: str, **fields: Any) -> FeedbackIn:
    """The feedback a ticket becomes; a field intake refuses is a 422 naming it (``ticket: …``)."""
    fields["customer"] = _clean(fields.get("customer"), 200)
    fields["contact"] = _clean(fields.get("contact"), 200)
    try:
        return FeedbackIn(order=ref, **fields)  # type: ignore[call-arg]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadInput(f"ticket: {where}: {first['msg']}") from None
