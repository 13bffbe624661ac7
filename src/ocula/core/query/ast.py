"""Syntax tree of the query language; every node keeps where it starts in the text.

The parser (:mod:`ocula.core.query.parser`) builds these; the compiler
(:mod:`ocula.core.query.compile`) type-checks them against the field registry and turns
them into SQL. Nodes are immutable so the compiler can share and rewrite them freely.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from typing import Literal as TLiteral

ValueKind = TLiteral["string", "number", "bool", "null", "name"]


@dataclass(frozen=True)
class Pos:
    """1-based line and column of the first character of a node."""

    line: int = 1
    column: int = 1


@dataclass(frozen=True)
class Value:
    """A literal: ``"rain"``, ``3.5``, ``true``, ``null`` or a bare word such as ``fp``.

    Bare words (``kind == "name"``) are only accepted where a field has a fixed set of
    values (``type``, ``status``, ``shape``); elsewhere the compiler asks for quotes.
    """

    value: str | float | int | bool | None
    kind: ValueKind
    pos: Pos = field(default_factory=Pos, compare=False)

    def text(self) -> str:
        """The literal as it would be written in a query."""
        if self.kind == "string":
            return '"' + str(self.value).replace("\\", "\\\\").replace('"', '\\"') + '"'
        if self.kind == "bool":
            return "true" if self.value else "false"
        if self.kind == "null":
            return "null"
        return str(self.value)


@dataclass(frozen=True)
class Field:
    """A field name, possibly dotted: ``label``, ``metadata.weather``."""

    path: tuple[str, ...]
    pos: Pos = field(default_factory=Pos, compare=False)

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class Call:
    """A function: ``count(<pred>)``, ``has(<pred>)``, ``item(<pred>)``,
    ``in_slice("name")``, ``run("name").fn``. ``attr`` is the part after the dot."""

    name: str
    args: tuple[Node | Value, ...]
    attr: str | None = None
    pos: Pos = field(default_factory=Pos, compare=False)
    attr_pos: Pos | None = field(default=None, compare=False)


Operand = Field | Call


@dataclass(frozen=True)
class Compare:
    """``<operand> <op> <value>`` with op one of ``= != < <= > >=``."""

    left: Operand
    op: str
    right: Value
    pos: Pos = field(default_factory=Pos, compare=False)


@dataclass(frozen=True)
class In:
    """``<operand> [not] in [v1, v2, ...]``."""

    left: Operand
    values: tuple[Value, ...]
    negated: bool = False
    pos: Pos = field(default_factory=Pos, compare=False)


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]
    pos: Pos = field(default_factory=Pos, compare=False)


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]
    pos: Pos = field(default_factory=Pos, compare=False)


@dataclass(frozen=True)
class Not:
    item: Node
    pos: Pos = field(default_factory=Pos, compare=False)


@dataclass(frozen=True)
class Const:
    """A condition the compiler already knows the answer to (e.g. ``type = annotation``
    while compiling the annotations part of a query)."""

    value: bool
    pos: Pos = field(default_factory=Pos, compare=False)


Node = Compare | In | And | Or | Not | Call | Const


@dataclass(frozen=True)
class OrderBy:
    key: Operand
    descending: bool = False
    pos: Pos = field(default_factory=Pos, compare=False)


@dataclass(frozen=True)
class Query:
    """A parsed query: an optional condition, sort and overall limit."""

    where: Node | None
    order: OrderBy | None = None
    limit: int | None = None
    text: str = ""


def conjuncts(node: Node | None) -> list[Node]:
    """The top-level ``and`` terms of a condition (the whole node if it is no ``and``)."""
    if node is None:
        return []
    if isinstance(node, And):
        out: list[Node] = []
        for item in node.items:
            out.extend(conjuncts(item))
        return out
    return [node]


def walk(node: Node | Value | None, *, into_calls: bool = False) -> Iterator[Any]:
    """Every node below ``node`` (itself included), depth first; ``count(...)`` and
    other calls are entered only with ``into_calls`` since their arguments describe
    other things (objects of an item, items of an object)."""
    if node is None:
        return
    yield node
    if isinstance(node, And | Or):
        for item in node.items:
            yield from walk(item, into_calls=into_calls)
    elif isinstance(node, Not):
        yield from walk(node.item, into_calls=into_calls)
    elif isinstance(node, Compare | In):
        yield node.left
        if into_calls and isinstance(node.left, Call):
            for arg in node.left.args:
                yield from walk(arg, into_calls=True)
    elif isinstance(node, Call) and into_calls:
        for arg in node.args:
            yield from walk(arg, into_calls=True)
