"""Masking of customer contact details: notices, post-mortems, logs and Prefect never see them raw."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# A run of 7+ digits (spaces/dashes allowed) standing alone: not inside ids like FB20261124001.
_PHONE = re.compile(r"(?<![A-Za-z0-9_/:.+-])(\+?\d[\d -]{5,}\d)(?![A-Za-z0-9_/:.-])")
_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}")


def mask_contact(value: str | None) -> str:
    """'13812345678' → '138****5678'; 'li.lei@example.com' → 'l***@example.com'."""
    if not value:
        return ""
    value = value.strip()
    if "@" in value:
        return _EMAIL.sub(lambda m: f"{m[1]}***@{m[2]}", value)
    digits = re.sub(r"\D", "", value)
    if len(digits) >= 7:
        return f"{digits[:3]}****{digits[-4:]}"
    return "****"


def mask_text(text: str | None) -> str:
    """Mask any phone number or e-mail address that appears inside free text."""
    if not text:
        return ""
    text = _EMAIL.sub(lambda m: f"{m[1]}***@{m[2]}", text)
    return _PHONE.sub(_mask_phone, text)


def _mask_phone(match: re.Match[str]) -> str:
    candidate = match[1]
    if _DATE.fullmatch(candidate.strip()) or len(re.sub(r"\D", "", candidate)) < 7:
        return candidate
    return mask_contact(candidate)
