"""What every command shares: one JSON object with ``--json``, one line and exit 2 for bad input.

Why a module of its own: each domain folder has its ``cli.py`` (a typer sub-app the root ``incident``
command mounts), and all of them must fail, print and call the service in exactly the same way. Only
typer, rich and pydantic are imported here: ``incident --version`` and completion stay fast; each
command imports what it needs when it runs. Colour follows rich, which honours ``NO_COLOR``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    import httpx
    from pydantic import BaseModel

out = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON object.")]


def fail(message: str, as_json: bool, code: int = 2) -> NoReturn:
    if as_json:
        print(json.dumps({"error": message}, ensure_ascii=False))
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def build(model: type[BaseModel], as_json: bool, **fields: Any) -> BaseModel:
    """Validate with the API's own model, so bad input never leaves this machine."""
    from pydantic import ValidationError

    from incident.api.errors import validation_message

    try:
        return model(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        fail(validation_message(list(exc.errors())), as_json)


def call(as_json: bool, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """One JSON request to the service (started if needed); its 4xx is exit 2, the rest exit 1."""
    from incident.client import Client, ServiceError

    try:
        return Client().json(method, path, **kwargs)
    except ServiceError as exc:
        fail(exc.message, as_json, 2 if 400 <= exc.status < 500 else 1)


def download(path: str, params: dict[str, Any], as_json: bool) -> httpx.Response:
    """GET bytes from the service; 4xx → exit 2 with the service's one-line message."""
    from incident.client import Client, ServiceError

    try:
        return Client().call("GET", path, params=params)
    except ServiceError as exc:
        fail(exc.message, as_json, 2 if 400 <= exc.status < 500 else 1)


def write(path: Path, body: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return str(path.resolve())


def emit(data: dict[str, Any], as_json: bool, human: Callable[[dict[str, Any]], None] | None = None) -> None:
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
    elif human:
        human(data)
    else:
        for key, value in data.items():
            out.print(f"[bold]{key}[/]: {value}")
