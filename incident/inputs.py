"""The base of every body people and scripts send: strict, trimmed, and storable on any database."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class Input(BaseModel):
    """Unknown fields are refused, text is trimmed, and NUL characters are refused.

    Why NUL: PostgreSQL text cannot hold it. Refused here it is a 422 naming the field; let through,
    it would be a database error on PostgreSQL and stored as-is on SQLite.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL (\\x00) characters")
        return value
