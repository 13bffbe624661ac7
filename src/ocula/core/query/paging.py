"""Keyset pagination: sort keys, opaque cursors and the "after this row" condition.

A page is ``WHERE <query> AND (keys) > (cursor) ORDER BY keys LIMIT n + 1``: the
database seeks straight to the cursor through an index instead of counting past
``OFFSET`` rows, so page 1,000 costs what page 1 costs. The last key is always the row's
primary key, so the order is total and a page boundary can never drop or repeat a row.

A cursor is base64url JSON ``{"v": [key values], "q": <query fingerprint>, "n": rows
served so far}``. It is validated on the way back in: wrong shape, wrong value types or
a cursor minted for another query are rejected rather than silently misread.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_, false, or_, true
from sqlalchemy.sql.elements import ColumnElement

from ocula.errors import ValidationError

KeyType = Literal["number", "string"]
_NO_CONST = object()


@dataclass
class SortKey:
    """One ORDER BY term. ``const`` is set where a branch of a union knows the value
    (e.g. the kind rank), so the keyset condition can be decided in Python."""

    expr: ColumnElement | None
    desc: bool
    type: KeyType
    const: Any = _NO_CONST
    #: On a "missing last" key (1 where a value is missing, else 0): the value it ranks.
    #: A page then reads the rows with a value and those without as two parts, each
    #: ordered by bare columns an index can serve (see ``ObjectsPlan``).
    ranks: ColumnElement | None = None

    @property
    def is_const(self) -> bool:
        return self.const is not _NO_CONST

    def ordered(self, expr: ColumnElement | None = None) -> ColumnElement:
        e = expr if expr is not None else self.expr
        return e.desc() if self.desc else e.asc()


def fingerprint(*parts: Any) -> str:
    """A short hash tying a cursor to the query (and scope) that produced it."""
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def encode_cursor(values: list[Any], query_fp: str, served: int) -> str:
    body = json.dumps({"v": values, "q": query_fp, "n": served}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, keys: list[SortKey], query_fp: str) -> tuple[list[Any], int]:
    """The key values and served count of a cursor, checked against the query's keys."""
    if not isinstance(cursor, str) or len(cursor) > 8192:
        raise ValidationError("malformed page cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValidationError("malformed page cursor") from exc
    if not isinstance(body, dict) or not isinstance(body.get("v"), list):
        raise ValidationError("malformed page cursor")
    if body.get("q") != query_fp:
        raise ValidationError("this page cursor was made for a different query, slice or "
                              "dataset; start again without a cursor")
    values, served = body["v"], body.get("n", 0)
    if len(values) != len(keys) or not isinstance(served, int) or served < 0:
        raise ValidationError("malformed page cursor")
    for key, value in zip(keys, values, strict=True):
        ok = (isinstance(value, int | float) and not isinstance(value, bool)
              if key.type == "number" else isinstance(value, str))
        if not ok:
            raise ValidationError("malformed page cursor")
    return values, served


def after(keys: list[SortKey], values: list[Any]) -> ColumnElement:
    """Rows strictly after ``values`` in the order of ``keys`` (lexicographic)."""
    terms: list[ColumnElement] = []
    prefix: list[ColumnElement] = []
    bound = None
    for key, value in zip(keys, values, strict=True):
        if key.is_const:
            if (key.const < value) if key.desc else (key.const > value):
                terms.append(and_(*prefix) if prefix else true())
            if key.const != value:
                break  # no row of this branch ties on this key: later keys are moot
            continue
        cmp = key.expr < value if key.desc else key.expr > value
        if not prefix and not terms:
            # A redundant bound on the first real key lets the database seek its index
            # to the cursor instead of filtering every row before it.
            bound = key.expr <= value if key.desc else key.expr >= value
        terms.append(and_(*prefix, cmp) if prefix else cmp)
        prefix.append(key.expr == value)
    if not terms:
        return false()
    cond = or_(*terms) if len(terms) > 1 else terms[0]
    return and_(bound, cond) if bound is not None else cond
