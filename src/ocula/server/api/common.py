"""Bounds shared by the routers' parameters, so absurd values are a 422, not a
database overflow."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import Field

# SQLite integers are 64-bit.
MAX_INT = 2**62
MAX_LIST = 1_000_000
Name = Annotated[str, Field(min_length=1, max_length=255)]
Metadata = dict[str, Any] | None
RefList = Annotated[list[str], Field(max_length=MAX_LIST)]
Index = Annotated[int, Query(ge=0, le=MAX_INT)]


def parse_version(value: str | None) -> int | str | None:
    """A version from a query string: digits are a number, anything else a name."""
    if value is None or value == "":
        return None
    if value.isdecimal():
        number = int(value)
        return number if number <= MAX_INT else value
    return value
