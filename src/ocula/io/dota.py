"""DOTA oriented-box label files (``labelTxt/*.txt``), read by :func:`import_yolo`.

One object a line, corners in pixels, clockwise from any corner::

    imagesource:GoogleEarth          (optional header lines, kept as item metadata)
    gsd:0.146343590398
    x1 y1 x2 y2 x3 y3 x4 y4 class difficult

Each line becomes a 4-vertex :class:`PolygonAnnotation` labelled with the class name,
``difficult`` (0/1, optional) as a boolean in its metadata.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from ocula.core.types import PolygonAnnotation
from ocula.errors import GeometryError, ValidationError

__all__ = ["read_dota"]

_HEADER = re.compile(r"^([A-Za-z_]\w*):(\S*)$")


def _header_value(key: str, value: str) -> Any:
    if key == "gsd":  # metres per pixel; DOTA writes "null" when unknown
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return value


def read_dota(path: Path, *, ref: str, stem: str
              ) -> tuple[list[PolygonAnnotation], dict[str, Any]]:
    """The oriented boxes of one DOTA label file and its header values (``imagesource``,
    ``gsd``). Annotation ids are ``"<stem>/<k>"``, ``k`` counting objects from 0."""
    polygons: list[PolygonAnnotation] = []
    header: dict[str, Any] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        where = f"{path.name}:{lineno}"
        match = _HEADER.match(text)
        if match:
            header[match.group(1)] = _header_value(match.group(1), match.group(2))
            continue
        tokens = text.split()
        if len(tokens) not in (9, 10):
            raise ValidationError(f"{where}: expected 'x1 y1 x2 y2 x3 y3 x4 y4 class "
                                  f"difficult', got {len(tokens)} values", reference_id=ref)
        try:
            coords = [float(t) for t in tokens[:8]]
        except ValueError:
            raise GeometryError(f"{where}: non-numeric corner in {text!r}",
                                reference_id=ref) from None
        if not all(math.isfinite(c) for c in coords):
            raise GeometryError(f"{where}: corners must be finite numbers", reference_id=ref)
        meta = None
        if len(tokens) == 10:
            if tokens[9] not in ("0", "1"):
                raise ValidationError(f"{where}: difficult must be 0 or 1, got {tokens[9]!r}",
                                      reference_id=ref)
            meta = {"difficult": tokens[9] == "1"}
        vertices = [(coords[j], coords[j + 1]) for j in range(0, 8, 2)]
        polygons.append(PolygonAnnotation(label=tokens[8], vertices=vertices, reference_id=ref,
                                          annotation_id=f"{stem}/{len(polygons)}",
                                          metadata=meta))
    return polygons, header
