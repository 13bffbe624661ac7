"""The few keys of a YOLO ``data.yaml`` the importer needs, read without PyYAML.

Only top-level keys are looked up, and only their own lines are parsed, so the rest
of the file (Ultralytics' ``download:`` scripts, anchors, comments) may hold YAML
this reader does not understand. Values may be flow collections (``[a, 'b c']``,
``{0: a}``, nested, spanning lines) or block collections (``- a`` / ``0: a`` lines,
nested by indentation). Scalars come back as strings; callers convert them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ocula.errors import ValidationError

__all__ = ["PoseSpec", "parse_names_yaml", "parse_pose_yaml", "yaml_value"]

_QUOTED = re.compile(r"""^(?:'((?:[^']|'')*)'|"((?:[^"\\]|\\.)*)")\s*(?:#.*)?$""")
_KEY = re.compile(r"""^('(?:[^']|'')*'|"(?:[^"\\]|\\.)*"|[^'"#][^:#]*?)\s*:(?:\s+(.*))?$""")


class _Unterminated(Exception):
    """A flow collection whose closing bracket is on a later line."""


def _unquote(token: str) -> str:
    """A YAML scalar: quoted (``'a'``, ``"a"``) or plain, trailing ``# comment`` removed."""
    token = token.strip()
    match = _QUOTED.match(token)
    if match:
        if match.group(1) is not None:
            return match.group(1).replace("''", "'")
        return match.group(2).replace('\\"', '"')
    return re.split(r"\s+#", token, maxsplit=1)[0].strip()


class _Flow:
    """Recursive descent over one flow collection (``[...]`` or ``{...}``)."""

    def __init__(self, text: str, key: str):
        self.text, self.pos, self.key = text, 0, key

    def _peek(self) -> str:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        if self.pos >= len(self.text):
            raise _Unterminated
        return self.text[self.pos]

    def value(self) -> Any:
        char = self._peek()
        if char in "[{":
            self.pos += 1
            closing = "]" if char == "[" else "}"
            out: Any = [] if char == "[" else {}
            while self._peek() != closing:
                if isinstance(out, list):
                    out.append(self.value())
                else:
                    key = self.scalar(":")
                    if self._peek() != ":":
                        raise ValidationError(f"data.yaml: '{self.key}' mapping entry "
                                              f"{key!r} has no ':'")
                    self.pos += 1
                    out[key] = self.value()
                if self._peek() == ",":
                    self.pos += 1
                elif self._peek() != closing:
                    raise ValidationError(f"data.yaml: cannot read '{self.key}': expected "
                                          f"',' or '{closing}' at {self.text[self.pos:]!r}")
            self.pos += 1
            return out
        return self.scalar("")

    def scalar(self, stops: str) -> str:
        char = self._peek()
        if char in "'\"":
            match = re.compile(r"'(?:[^']|'')*'" if char == "'" else r'"(?:[^"\\]|\\.)*"'
                               ).match(self.text, self.pos)
            if match is None:
                raise _Unterminated
            self.pos = match.end()
            return _unquote(match.group())
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in ",]}" + stops:
            self.pos += 1
        return self.text[start:self.pos].strip()


def _flow(rest: str, following: list[str], key: str) -> Any:
    """Parse a flow collection that starts with ``rest``, joining later lines as needed."""
    text = rest
    for extra in [None, *following]:
        if extra is not None:
            text += " " + extra.strip()
        parser = _Flow(text, key)
        try:
            value = parser.value()
        except _Unterminated:
            continue
        tail = text[parser.pos:].strip()
        if tail and not tail.startswith("#"):
            raise ValidationError(f"data.yaml: unexpected {tail!r} after '{key}'")
        return value
    raise ValidationError(f"data.yaml: unterminated '{key}' list")


def _scalar_or_flow(text: str, key: str) -> Any:
    text = text.strip()
    return _flow(text, [], key) if text.startswith(("[", "{")) else _unquote(text)


def _is_item(text: str) -> bool:
    return text == "-" or text.startswith("- ")


def _block(rows: list[tuple[int, str]], i: int, key: str) -> tuple[Any, int]:
    """The block collection starting at row ``i``: a ``- x`` list or a ``k: v`` mapping
    at that row's indentation; deeper rows belong to the entry above them."""
    indent = rows[i][0]
    if _is_item(rows[i][1]):
        items: list[Any] = []
        while i < len(rows) and rows[i][0] == indent and _is_item(rows[i][1]):
            rest = rows[i][1][1:].strip()
            i += 1
            if rest:
                items.append(_scalar_or_flow(rest, key))
            elif i < len(rows) and rows[i][0] > indent:
                value, i = _block(rows, i, key)
                items.append(value)
            else:
                items.append(None)
        return items, i
    mapping: dict[str, Any] = {}
    while i < len(rows) and rows[i][0] == indent and not _is_item(rows[i][1]):
        match = _KEY.match(rows[i][1])
        if match is None:
            raise ValidationError(f"data.yaml: cannot read '{key}' line {rows[i][1]!r}")
        name, rest = _unquote(match.group(1)), (match.group(2) or "").strip()
        i += 1
        if rest and not rest.startswith("#"):
            mapping[name] = _scalar_or_flow(rest, key)
        elif i < len(rows) and (rows[i][0] > indent
                                or (rows[i][0] == indent and _is_item(rows[i][1]))):
            mapping[name], i = _block(rows, i, key)
        else:
            mapping[name] = None
    return mapping, i


def yaml_value(text: str, key: str) -> Any:
    """The value of the top-level ``key`` of a YAML document, or None when it is absent.

    Raises :class:`ValidationError` when the value's lines cannot be read.
    """
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(rf"^{re.escape(key)}\s*:(.*)$", line)
        if not match:
            continue
        rest = match.group(1).strip()
        if rest.startswith(("[", "{")):
            return _flow(rest, lines[i + 1:], key)
        if rest and not rest.startswith("#"):
            return _unquote(rest)
        rows = []
        for nxt in lines[i + 1:]:
            if not nxt.strip() or nxt.strip().startswith("#"):
                continue
            if not nxt[0].isspace() and not _is_item(nxt):
                break
            rows.append((len(nxt) - len(nxt.lstrip()), nxt.strip()))
        if not rows:
            return None
        value, end = _block(rows, 0, key)
        if end != len(rows):
            raise ValidationError(f"data.yaml: cannot read '{key}': inconsistent "
                                  f"indentation at {rows[end][1]!r}")
        return value
    return None


def _index_list(value: Any, key: str) -> list[Any]:
    """A list, or a ``{0: a, 1: b}`` mapping turned into one (keys must be 0..N-1)."""
    if isinstance(value, list):
        return value
    if not isinstance(value, dict):
        raise ValidationError(f"data.yaml: cannot read '{key}: {value}'")
    if not all(k.isdecimal() for k in value):
        raise ValidationError(f"data.yaml: '{key}' mapping keys must be class indices")
    mapping = {int(k): v for k, v in value.items()}
    if sorted(mapping) != list(range(len(mapping))):
        raise ValidationError(f"data.yaml: '{key}' indices must be 0..N-1")
    return [mapping[k] for k in range(len(mapping))]


def _strings(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"data.yaml: '{key}' must list names, got {value!r}")
    return value


def parse_names_yaml(text: str) -> list[str] | None:
    """Class names from the top-level ``names:`` key of a YOLO ``data.yaml``.

    Understands ``names: [a, 'b c']``, ``names: {0: a, 1: b}`` and block lists
    (``- a``) or mappings (``0: a``) on the following indented lines. Returns None when
    there is no ``names`` key; raises :class:`ValidationError` when it is malformed.
    """
    value = yaml_value(text, "names")
    if value is None:
        return None
    if isinstance(value, str):
        raise ValidationError(f"data.yaml: cannot read 'names: {value}'")
    return _strings(_index_list(value, "names"), "names")


@dataclass
class PoseSpec:
    """What a pose ``data.yaml`` says of its keypoints: ``kpt_shape: [count, dims]``
    (``dims`` 3 when each point has a visibility) and the names of each class's points."""

    count: int
    dims: int
    names: dict[int, list[str]]
    default_names: list[str]

    def names_of(self, cls: int) -> list[str]:
        return self.names.get(cls, self.default_names)


def parse_pose_yaml(text: str) -> PoseSpec | None:
    """``kpt_shape`` and ``kpt_names`` of a YOLO pose ``data.yaml``; None when there is no
    ``kpt_shape``. ``kpt_names`` may map class indices to name lists (Ultralytics),
    list one name list per class, or be one flat list for every class. ``flip_idx``
    (an augmentation setting) is not read."""
    shape = yaml_value(text, "kpt_shape")
    if shape is None:
        return None
    if (not isinstance(shape, list) or len(shape) != 2
            or not all(isinstance(v, str) and v.isdecimal() for v in shape)
            or int(shape[0]) < 1 or shape[1] not in ("2", "3")):
        raise ValidationError(f"data.yaml: kpt_shape must be [count, 2] or [count, 3], "
                              f"got {shape!r}")
    spec = PoseSpec(int(shape[0]), int(shape[1]), {}, [])
    raw = yaml_value(text, "kpt_names")
    if raw is None:
        return spec
    if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
        spec.default_names = raw
    elif isinstance(raw, dict):  # {class index: names}; classes without points are left out
        if not all(k.isdecimal() for k in raw):
            raise ValidationError("data.yaml: 'kpt_names' keys must be class indices")
        spec.names = {int(k): _strings(v, "kpt_names") for k, v in raw.items()}
    else:
        per_class = _index_list(raw, "kpt_names")
        spec.names = {i: _strings(v, "kpt_names") for i, v in enumerate(per_class)}
    for names in [spec.default_names, *spec.names.values()]:
        if names and len(names) != spec.count:
            raise ValidationError(f"data.yaml: kpt_names lists {len(names)} names but "
                                  f"kpt_shape has {spec.count} keypoints")
    return spec
