"""The language an API request asks for, and the API's answers said in it.

Why the API says words at all: the CLI is a thin client (no vocabulary parsing, no pydantic), so what it
prints for people — a refusal, a timeline's details — is said by the service in the language the CLI
asks for (``Accept-Language``, from ``INCIDENT_LANG``). The codes beside the words stay the contract:
``{"error": …, "code": …}``, ``event`` and ``data`` of a timeline entry.

Why an error is English unless asked: scripts have always read ``error`` as it was raised; a request
that sends no ``Accept-Language`` (curl, a script) gets exactly that, while the CLI and browsers ask.
"""

from __future__ import annotations

from fastapi import Request

from incident import settings

LANGS = ("zh", "en")


def code_of(value: str) -> str | None:
    """'zh-CN', 'zh_TW', 'en-GB', 'EN' → 'zh' / 'en'; anything else None."""
    head = value.strip().lower().replace("_", "-").partition("-")[0]
    return head if head in LANGS else None


def from_accept(header: str) -> str | None:
    """The first of zh/en in the browser's Accept-Language by q-order (ties keep the header's order)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        code = code_of(tag)
        if code and q > 0:
            ranked.append((-q, position, code))
    return min(ranked)[2] if ranked else None


def asked(request: Request) -> str:
    """The language for words a person reads: ``?lang``, else Accept-Language, else INCIDENT_LANG."""
    header = request.headers.get("accept-language", "")
    return code_of(request.query_params.get("lang", "")) or from_accept(header) or settings.get().lang


def for_errors(request: Request) -> str:
    """The language of ``error``: what the request asks for (Accept-Language), else English as raised."""
    return from_accept(request.headers.get("accept-language", "")) or "en"
