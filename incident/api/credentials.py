"""The credential a request presents: a bearer token (scheme case-insensitive) or the console's cookie.

Why one function: the API's dependency, the console and the idempotency middleware (which must not
replay a stored answer to a caller without the token) read the credential the same way.
"""

from __future__ import annotations

COOKIE = "incident_token"


def bearer(authorization: str | None) -> str:
    """The token of ``Authorization: Bearer <token>``; the scheme is case-insensitive (RFC 7235 §2.1)."""
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def presented(headers: dict[bytes, bytes], cookie_header: str | None = None) -> str:
    """The token from raw ASGI headers: the bearer header first, else the console's cookie."""
    given = bearer(headers.get(b"authorization", b"").decode("latin-1"))
    if given:
        return given
    from http.cookies import CookieError, SimpleCookie

    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(
            cookie_header if cookie_header is not None else headers.get(b"cookie", b"").decode("latin-1")
        )
    except CookieError:
        return ""
    morsel = jar.get(COOKIE)
    return morsel.value if morsel else ""
