"""Text to syntax tree: the query grammar (lark, LALR) and readable syntax errors.

A syntax error names the line and column and what could have come there, e.g.
``line 1, col 8: expected a value after '>'``. Parsing only builds a tree: nothing here
knows about fields or SQL (see :mod:`ocula.core.query.compile`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from ocula.core.query import ast
from ocula.errors import QueryError

# Longer texts are almost certainly not typed by a person; refuse them before parsing.
MAX_QUERY_LENGTH = 10_000

GRAMMAR = r"""
start: [expr] [order] [limit]

?expr: or_expr
?or_expr: and_expr
        | and_expr (_OR and_expr)+ -> or_
?and_expr: not_expr
         | not_expr (_AND not_expr)+ -> and_
?not_expr: _NOT not_expr -> not_
         | atom
?atom: operand COMP value -> compare
     | operand _IN list -> in_
     | operand _NOT _IN list -> not_in
     | call
     | "(" expr ")"

?operand: field | call
field: NAME ("." key)*
?key: NAME | STRING
call: NAME "(" [arg ("," arg)*] ")" ["." NAME]
?arg: expr | STRING -> string | NUMBER -> number

value: STRING -> string
     | NUMBER -> number
     | TRUE -> true
     | FALSE -> false
     | NULL -> null
     | NAME -> bare
list: "[" [value ("," value)*] "]"

order: _ORDER _BY operand [ASC | DESC]
limit: _LIMIT NUMBER

_AND: "and"i
_OR: "or"i
_NOT: "not"i
_IN: "in"i
_ORDER: "order"i
_BY: "by"i
ASC: "asc"i
DESC: "desc"i
_LIMIT: "limit"i
TRUE: "true"i
FALSE: "false"i
NULL: "null"i
COMP: "==" | "!=" | "<=" | ">=" | "=" | "<" | ">"
NAME: /[A-Za-z_][A-Za-z0-9_\-]*/
STRING: /"(?:[^"\\\n]|\\.)*"/ | /'(?:[^'\\\n]|\\.)*'/
NUMBER: /[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/

%ignore /[ \t\r\n]+/
"""

# How a terminal is named in "expected ..." messages.
_WORDS = {
    "NAME": "a field name", "STRING": "a quoted string", "NUMBER": "a number",
    "TRUE": "true", "FALSE": "false", "NULL": "null", "COMP": "a comparison (=, !=, <, <=, "
    ">, >=)", "_IN": "'in'", "_NOT": "'not'", "_AND": "'and'", "_OR": "'or'",
    "_ORDER": "'order by'", "_BY": "'by'", "ASC": "'asc'", "DESC": "'desc'",
    "_LIMIT": "'limit'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'",
    "COMMA": "','", "DOT": "'.'", "$END": "the end of the query",
}
_VALUES = {"STRING", "NUMBER", "TRUE", "FALSE", "NULL"}
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    # LALR: linear time and a precise set of expected tokens at the error.
    return Lark(GRAMMAR, parser="lalr", lexer="basic", propagate_positions=True,
                maybe_placeholders=True)


def _pos(obj: Any) -> ast.Pos:
    if isinstance(obj, Token):
        return ast.Pos(obj.line or 1, obj.column or 1)
    meta = getattr(obj, "meta", obj)
    return ast.Pos(getattr(meta, "line", 1), getattr(meta, "column", 1))


def unquote(token: str) -> str:
    """The text of a quoted string literal, backslash escapes resolved."""
    body, out, i = token[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _number(token: Token) -> int | float:
    text = str(token)
    return float(text) if any(c in text for c in ".eE") else int(text)


@v_args(meta=True)
class _Build(Transformer):
    """Lark tree → :mod:`ast` nodes (positions from the lark metadata)."""

    def start(self, meta: Any, children: list[Any]) -> ast.Query:
        where, order, limit = children
        return ast.Query(where=where, order=order, limit=limit)

    def or_(self, meta: Any, children: list[Any]) -> ast.Or:
        return ast.Or(tuple(children), _pos(meta))

    def and_(self, meta: Any, children: list[Any]) -> ast.And:
        return ast.And(tuple(children), _pos(meta))

    def not_(self, meta: Any, children: list[Any]) -> ast.Not:
        return ast.Not(children[0], _pos(meta))

    def compare(self, meta: Any, children: list[Any]) -> ast.Compare:
        left, op, right = children
        op = "=" if op == "==" else str(op)
        return ast.Compare(left, op, right, _pos(meta))

    def in_(self, meta: Any, children: list[Any]) -> ast.In:
        return ast.In(children[0], children[1], False, _pos(meta))

    def not_in(self, meta: Any, children: list[Any]) -> ast.In:
        return ast.In(children[0], children[1], True, _pos(meta))

    def field(self, meta: Any, children: list[Any]) -> ast.Field:
        parts = []
        for c in children:
            parts.append(unquote(c) if c.type == "STRING" else str(c))
        return ast.Field(tuple(parts), _pos(meta))

    def call(self, meta: Any, children: list[Any]) -> ast.Call:
        name, *args, attr = children
        args = [a for a in args if a is not None]
        return ast.Call(str(name).lower(), tuple(args), str(attr) if attr else None,
                        _pos(meta), _pos(attr) if attr else None)

    def string(self, meta: Any, children: list[Any]) -> ast.Value:
        return ast.Value(unquote(children[0]), "string", _pos(children[0]))

    def number(self, meta: Any, children: list[Any]) -> ast.Value:
        return ast.Value(_number(children[0]), "number", _pos(children[0]))

    def true(self, meta: Any, children: list[Any]) -> ast.Value:
        return ast.Value(True, "bool", _pos(children[0]))

    def false(self, meta: Any, children: list[Any]) -> ast.Value:
        return ast.Value(False, "bool", _pos(children[0]))

    def null(self, meta: Any, children: list[Any]) -> ast.Value:
        return ast.Value(None, "null", _pos(children[0]))

    def bare(self, meta: Any, children: list[Any]) -> ast.Value:
        return ast.Value(str(children[0]), "name", _pos(children[0]))

    def value(self, meta: Any, children: list[Any]) -> ast.Value:
        return children[0]

    def list(self, meta: Any, children: list[Any]) -> tuple[ast.Value, ...]:
        return tuple(c for c in children if c is not None)

    def order(self, meta: Any, children: list[Any]) -> ast.OrderBy:
        key, direction = children
        desc = direction is not None and str(direction).lower() == "desc"
        return ast.OrderBy(key, desc, _pos(meta))

    def limit(self, meta: Any, children: list[Any]) -> int:
        token = children[0]
        value = _number(token)
        if not isinstance(value, int) or value < 0:
            raise QueryError(f"limit must be a whole number >= 0, got {token}",
                             line=token.line, column=token.column)
        return value


def parse(text: str) -> ast.Query:
    """Parse query text; raises :class:`~ocula.errors.QueryError` with the position."""
    if not isinstance(text, str):
        raise QueryError(f"a query must be text, got {type(text).__name__}")
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"query is {len(text):,} characters long; the limit is "
                         f"{MAX_QUERY_LENGTH:,}")
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    try:
        query = _Build().transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, QueryError):
            raise exc.orig_exc from None
        raise
    return ast.Query(query.where, query.order, query.limit, text)


def _describe(expected: set[str]) -> str:
    names = set(expected)
    parts: list[str] = []
    if names & _VALUES:
        parts.append("a value" if len(names & _VALUES) > 1 else _WORDS[next(iter(names & _VALUES))])
        names -= _VALUES
        if "STRING" in expected:
            names.discard("NAME")
    order = sorted(names, key=lambda n: list(_WORDS).index(n) if n in _WORDS else 99)
    parts += [_WORDS.get(n, n.lower()) for n in order]
    if len(parts) > 1:
        return ", ".join(parts[:-1]) + " or " + parts[-1]
    return parts[0] if parts else "something else"


def _previous_token(text: str, line: int, column: int) -> Token | None:
    """The last complete token before (line, column), found by re-lexing the text."""
    prev = None
    try:
        for tok in _parser().lex(text):
            if (tok.line, tok.column) >= (line, column):
                break
            prev = tok
    except UnexpectedCharacters:
        pass
    return prev


def _syntax_error(text: str, exc: UnexpectedInput) -> QueryError:
    if isinstance(exc, UnexpectedCharacters):
        line, col = exc.line, exc.column
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        if ch in "\"'":
            return QueryError(f"unterminated string: no closing {ch} before the end of the "
                              "line", line=line, column=col)
        prev = _previous_token(text, line, col)
        after = f" after {str(prev)!r}" if prev is not None else ""
        # The basic lexer allows every terminal here, so listing them would not help.
        return QueryError(f"unexpected character {ch!r}{after}", line=line, column=col)
    if isinstance(exc, UnexpectedToken | UnexpectedEOF):
        token = getattr(exc, "token", None)
        expected = set(getattr(exc, "expected", ()) or ())
        at_end = token is None or token.type == "$END"
        if at_end:
            prev = _previous_token(text, 10**9, 0)
            if prev is None:
                line, col = 1, 1
            else:
                # end_column is already one past the token: where the missing part goes.
                line = prev.end_line or prev.line
                col = prev.end_column or prev.column + len(prev)
            what = "the end of the query"
        else:
            line, col = token.line, token.column
            prev = _previous_token(text, line, col)
            what = repr(str(token))
        after = f" after {str(prev)!r}" if prev is not None else ""
        if at_end:
            return QueryError(f"expected {_describe(expected)}{after}", line=line, column=col)
        return QueryError(f"expected {_describe(expected)}{after}, found {what}",
                          line=line, column=col)
    return QueryError(str(exc))


def condition_text(query: ast.Query) -> str:
    """The condition of a parsed query as written, without its ``order by``/``limit``
    tail: the part that can be nested in ``item(...)`` or combined with ``and``."""
    text = query.text
    if query.order is not None:
        line, column = query.order.pos.line, query.order.pos.column
        lines = text.split("\n")
        offset = sum(len(s) + 1 for s in lines[:line - 1]) + column - 1
        text = text[:offset]
    elif query.limit is not None:
        text = text[:text.lower().rfind("limit")]
    return text.strip()
