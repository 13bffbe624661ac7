"""Plain-English descriptions of queries, shown next to results ("Predictions where
run is "frcnn-v2" and status is fp ..., highest confidence first")."""

from __future__ import annotations

from ocula.core.query import ast

_OPS = {"=": "is", "!=": "is not", "<": "is less than", "<=": "is at most",
        ">": "is greater than", ">=": "is at least"}
_COUNT_OPS = {"=": "exactly", "!=": "other than", "<": "fewer than", "<=": "at most",
              ">": "more than", ">=": "at least"}
_RUN_ATTRS = {"tp": "true positives", "fp": "false positives", "fn": "false negatives"}


def _operand(node: ast.Field | ast.Call) -> str:
    if isinstance(node, ast.Field):
        return node.name
    if node.name == "run":
        return f"{_RUN_ATTRS.get(node.attr or '', node.attr)} of run {_args(node)}"
    return f"{node.name}({_args(node)})"


def _args(call: ast.Call) -> str:
    return ", ".join(a.text() if isinstance(a, ast.Value) else describe(a) for a in call.args)


def _objects(call: ast.Call) -> str:
    if not call.args:
        return "annotations"
    return f"objects where {describe(call.args[0])}"


def describe(node: ast.Node | None) -> str:
    """One condition in words."""
    if node is None:
        return "everything"
    if isinstance(node, ast.Const):
        return "always" if node.value else "never"
    if isinstance(node, ast.And):
        return " and ".join(_grouped(i) for i in node.items)
    if isinstance(node, ast.Or):
        return " or ".join(_grouped(i) for i in node.items)
    if isinstance(node, ast.Not):
        inner = node.item
        if isinstance(inner, ast.Call) and inner.name == "has":
            return ("it has no annotations" if not inner.args
                    else f"it has no object where {describe(inner.args[0])}")
        return f"not {_grouped(node.item)}"
    if isinstance(node, ast.In):
        values = ", ".join(v.text() for v in node.values)
        verb = "is not one of" if node.negated else "is one of"
        return f"{_operand(node.left)} {verb} {values}"
    if isinstance(node, ast.Compare):
        left = node.left
        if isinstance(left, ast.Call) and left.name == "count":
            return f"{_COUNT_OPS[node.op]} {node.right.text()} {_objects(left)}"
        return f"{_operand(left)} {_OPS[node.op]} {node.right.text()}"
    if isinstance(node, ast.Call):
        if node.name == "in_slice":
            return f"in slice {_args(node)}"
        if node.name == "has":
            if not node.args:
                return "it has annotations"
            return f"it has an object where {describe(node.args[0])}"
        if node.name == "item":
            return f"whose item has {_args(node)}"
    return str(node)


def _grouped(node: ast.Node) -> str:
    text = describe(node)
    return f"({text})" if isinstance(node, ast.And | ast.Or) else text


def describe_query(query: ast.Query, target: str, kinds: list[str] | None = None) -> str:
    """A sentence for a whole query: what it selects, how it is ordered and capped."""
    if target == "items":
        subject = "Items"
    else:
        names = {"annotation": "Annotations", "prediction": "Predictions"}
        subject = " and ".join(names[k] if i == 0 else names[k].lower()
                               for i, k in enumerate(kinds or ["annotation"]))
    text = subject if query.where is None else f"{subject} where {describe(query.where)}"
    if query.order is not None:
        direction = "descending" if query.order.descending else "ascending"
        text += f", ordered by {_operand(query.order.key)} {direction}"
    if query.limit is not None:
        text += f", at most {query.limit}"
    return text + "."
