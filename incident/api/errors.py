"""Every error the HTTP API answers, each as ``{"error": …}`` with the status that tells the truth.

Why a module of its own: the mapping is the contract scripts rely on (a 503 means "retry later, the
database is unreachable", a 422 means "your input cannot be stored, do not retry"), and it used to be
wrong: a value too long for its column answered 503 every time, so a client retried forever.

- ``DataError`` (a value the column cannot hold) → 422 naming the column where it can be known;
- ``IntegrityError`` → 409 for a unique constraint (a concurrent duplicate lost the race), else 422;
- the database really unavailable → 503 with ``Retry-After`` (``unavailable``: the connection or the
  pool failed, PostgreSQL shutting down or out of resources, SQLite busy, locked, out of disk, unable
  to open its file, an I/O error);
- any other database error → 500 (a fault of ours, logged with its traceback): SQLite raises
  ``OperationalError`` for "no such table" too, which no retry will cure;
- Starlette's and FastAPI's own 404/405/400/422 → the same ``{"error": …}`` shape, never ``detail``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

import models
from incident.api import words
from incident.errors import ActionError

log = logging.getLogger("incident.api.app")

UNPARSED = "There was an error parsing the body"
_TABLE = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE)\s+\"?(\w+)\"?", re.IGNORECASE)
_SQLITE_COLUMNS = re.compile(r"constraint failed: ([\w., ]+)")


def _params(exc: DBAPIError) -> list[dict[str, Any]]:
    params = exc.params
    if isinstance(params, dict):
        return [params]
    if isinstance(params, list | tuple) and all(isinstance(p, dict) for p in params):
        return list(params)
    return []


def overflowing_column(exc: DBAPIError) -> str | None:
    """``table.column`` of the value too long for its column, from the statement and its values.

    Why reconstructed: PostgreSQL's "value too long for type character varying(200)" names the type,
    not the column; the statement names the table and the bound values are keyed by column name.
    """
    match = _TABLE.match(str(exc.statement or ""))
    table = models.Base.metadata.tables.get(match.group(1)) if match else None
    if table is None:
        return None
    for params in _params(exc):
        for name, value in params.items():
            column = table.columns.get(name)
            length = getattr(column.type, "length", None) if column is not None else None
            if isinstance(value, str) and length and len(value) > length:
                return f"{table.name}.{name} (at most {length} characters)"
    return None


def integrity_columns(exc: IntegrityError) -> str | None:
    diag = getattr(exc.orig, "diag", None)  # psycopg
    if diag is not None:
        return getattr(diag, "constraint_name", None) or getattr(diag, "column_name", None)
    found = _SQLITE_COLUMNS.search(str(exc.orig))
    return found.group(1).strip() if found else None


def is_unique_violation(exc: IntegrityError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate == "23505" or "UNIQUE constraint failed" in str(exc.orig)


# SQLite's primary result codes that say "not now" rather than "never": busy, locked, out of memory,
# read-only (a file or mount turned read-only), I/O error, disk full, cannot open the file, lock protocol.
SQLITE_UNAVAILABLE = {5, 6, 7, 8, 10, 13, 14, 15}
# PostgreSQL's SQLSTATE classes (and codes) of the same kind: connection exception, insufficient
# resources (disk full, out of memory, too many connections), operator intervention (shutdown, crash
# recovery, a cancelled statement), system error (I/O), a lock not available.
POSTGRES_UNAVAILABLE = ("08", "53", "57", "58", "55P03")


def unavailable(exc: BaseException) -> bool:
    """Whether a database error means "unavailable now, retry" (503) rather than a fault of ours (500)."""
    if isinstance(exc, InterfaceError | PoolTimeout):
        return True
    if not isinstance(exc, OperationalError):
        return False
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in SQLITE_UNAVAILABLE
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is None:  # psycopg: no server answered at all (refused, reset, timed out)
        return True
    return str(sqlstate).startswith(POSTGRES_UNAVAILABLE)


def validation_message(errors: list[Any]) -> str:
    """The first pydantic error as one line: 'summary: Field required'."""
    first = errors[0]
    loc = list(first.get("loc", ()))
    where = ".".join(str(p) for p in (loc[1:] if loc[:1] in (["body"], ["query"], ["path"]) else loc))
    return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))


MISTAKES = {  # pydantic's error type → the console's word for the mistake
    "missing": "missing", "string_too_short": "missing", "string_too_long": "too_long",
    "literal_error": "not_allowed", "enum": "not_allowed", "int_parsing": "not_a_number",
    "int_type": "not_a_number", "greater_than_equal": "too_small", "greater_than": "too_small",
}  # fmt: skip


def said_invalid(errors: list[Any], lang: str) -> str:
    """The first pydantic error in ``lang``: 'summary: Field required' as raised in English; in Chinese
    '内容（summary）：必填' — the field's and the mistake's words from the vocabulary, the code beside."""
    if lang == "en":
        return validation_message(errors)
    from playbooks import vocabulary

    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    field = ".".join(loc)
    name = vocabulary.label("field", loc[-1], lang) if loc else ""
    where = f"{name}（{field}）" if loc and name != loc[-1] else field
    mistake = MISTAKES.get(str(first.get("type")))
    words = vocabulary.label("console", mistake, lang) if mistake else str(first.get("msg"))
    return vocabulary.phrase("cli", "field", lang, words=False, field=where or "—", mistake=words)


def jsonable(errors: list[Any]) -> list[dict[str, Any]]:
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg")), "type": e.get("type")} for e in errors]


def install(app: FastAPI) -> None:
    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        where = overflowing_column(exc)
        log.warning("refused %s %s: %s (%s)", request.method, request.url.path, exc.orig, where or "?")
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else "value refused"
        message = f"{where}: value too long" if where else f"the database refused a value: {first}"
        return JSONResponse({"error": message + "; nothing was stored"}, status_code=422)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        where = integrity_columns(exc)
        unique = is_unique_violation(exc)
        log.warning("refused %s %s: %s", request.method, request.url.path, str(exc.orig).splitlines()[0])
        if unique:
            message = f"already recorded ({where or 'a unique constraint'}): a concurrent request won"
        else:
            message = f"the database refused the values ({where or 'a constraint'})"
        return JSONResponse({"error": message + "; nothing was stored"}, status_code=409 if unique else 422)

    async def _database_fault(request: Request, exc: Exception) -> JSONResponse:
        log.error("database error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": "internal database error; nothing was stored"}, status_code=500)

    async def _unreachable(request: Request, exc: Exception) -> JSONResponse:
        if not unavailable(exc):  # "no such table", a syntax error: ours, and no retry cures it
            return await _database_fault(request, exc)
        log.warning("database unavailable for %s %s: %s", request.method, request.url.path, exc)
        said = ActionError("database unavailable; nothing was stored, retry shortly")
        return JSONResponse(
            {"error": said.words(words.for_errors(request)), "code": "database_unavailable"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    for unreachable in (OperationalError, InterfaceError, PoolTimeout):
        app.add_exception_handler(unreachable, _unreachable)
    app.add_exception_handler(DBAPIError, _database_fault)

    @app.exception_handler(ActionError)
    async def _action_error(request: Request, exc: ActionError) -> JSONResponse:
        """``error`` in the asked language (English as raised when none is asked), ``code`` for scripts.
        The audit keeps the message as raised (``request.state.refusal``), whatever the asker's language."""
        request.state.refusal = exc.message
        return JSONResponse(
            {"error": exc.words(words.for_errors(request)), "code": exc.code()}, status_code=exc.status
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        message = said_invalid(errors, words.for_errors(request))
        body = {"error": message, "code": "invalid", "errors": jsonable(errors)}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail
        if exc.status_code == 400 and message == UNPARSED:  # FastAPI's words for any unreadable body
            message = "the body is not JSON this API can read (invalid UTF-8, bad syntax or too deep)"
        said = ActionError(str(message))
        return JSONResponse(
            {"error": said.words(words.for_errors(request)), "code": said.code()},
            status_code=exc.status_code,
            headers=exc.headers,
        )
