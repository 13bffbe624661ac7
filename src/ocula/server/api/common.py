"""Bounds shared by the routers' parameters, so absurd values are a 422, not a
database overflow; and the documented shape of what the service checks itself.

Batch entries (items, annotations, predictions) are parsed by the service, which names
each bad entry by its index (``item #3 must be a JSON object``); their OpenAPI schema is
therefore stated with ``WithJsonSchema`` (:func:`entries`), not enforced by pydantic,
so the answers stay the service's. The same goes for rules the service applies to
names (not blank, no NUL character, which no backend can store).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import Field, WithJsonSchema

from ocula.core.types import ANNOTATION_TYPES

# The largest integer the API takes: JSON readers (a browser's, and the schema
# validators that check requests against the OpenAPI) hold numbers as doubles, and above
# 2**53 neighbouring integers read as one double, so a bound of 2**62 let 2**62 + 1 pass
# as valid against the schema and then fail the route's check (found by schemathesis).
MAX_INT = 2**53 - 1
MAX_LIST = 1_000_000
# Not blank, no NUL (require_name): documented here, checked by the service. Python's
# str.strip() also strips U+001C..U+001F and U+0085, which a JSON-schema (ECMA) \s does
# not match: named here, so a name the schema allows is never blank to the service.
NAME_PATTERN = r"^[^\x00]*[^\s\x00\x1c-\x1f\x85][^\x00]*$"
Name = Annotated[str, Field(min_length=1, max_length=255,
                            json_schema_extra={"pattern": NAME_PATTERN})]
Metadata = dict[str, Any] | None
RefList = Annotated[list[str], Field(max_length=MAX_LIST)]
Index = Annotated[int, Query(ge=0, le=MAX_INT)]


def entries(entry: dict[str, Any]) -> Any:
    """A batch of at most ``MAX_LIST`` JSON entries, each documented as ``entry`` and
    checked by the service (see the module docstring)."""
    return Annotated[list[Any], Field(max_length=MAX_LIST), WithJsonSchema(
        {"type": "array", "maxItems": MAX_LIST, "items": entry})]


REF_STRING = {"type": "string", "minLength": 1, "maxLength": 1024, "pattern": NAME_PATTERN}
_POINT = {"type": "object", "required": ["x", "y"],
          "properties": {"x": {"type": "number"}, "y": {"type": "number"}}}
ITEM_ENTRY: dict[str, Any] = {
    "type": "object", "required": ["reference_id", "image_url"],
    "description": "A dataset item in Nucleus' JSON form; the image must be readable by "
                   "the server (an uploaded file, a path under a media root, a public URL)",
    "properties": {"reference_id": REF_STRING, "image_url": {"type": "string", "minLength": 1},
                   "metadata": {"type": "object"}}}
OBJECT_ENTRY: dict[str, Any] = {
    "type": "object", "required": ["type", "reference_id"],
    "description": "An annotation or prediction in Nucleus' JSON form, on an item of the "
                   "dataset; geometry as its type has it (box: x, y, width, height); a "
                   "multicategory has ``labels`` (and no ``label``)",
    # The geometry each type needs (core/types.py); its values are checked there.
    "allOf": [{"if": {"properties": {"type": {"const": kind}}},
               "then": {"properties": {"geometry": geometry}}}
              for kind, geometry in (
                  ("box", {"required": ["x", "y", "width", "height"]}),
                  ("polygon", {"required": ["vertices"], "properties": {"vertices": {
                      "type": "array", "minItems": 3, "items": _POINT}}}),
                  ("line", {"required": ["vertices"], "properties": {"vertices": {
                      "type": "array", "minItems": 2, "items": _POINT}}}),
                  ("keypoints", {"required": ["keypoints"], "properties": {"keypoints": {
                      "type": "array", "minItems": 1, "items": _POINT}}}),
                  ("mask", {"required": ["rle"]}))]
    + [{"if": {"properties": {"type": {"const": "multicategory"}}},
        "then": {"required": ["labels"]}, "else": {"required": ["label", "geometry"]}}],
    "properties": {"type": {"enum": list(ANNOTATION_TYPES)}, "label": REF_STRING,
                   "labels": {"type": "array", "minItems": 1, "items": REF_STRING},
                   "taxonomy_name": REF_STRING,
                   "reference_id": REF_STRING, "geometry": {"type": "object"},
                   "annotation_id": REF_STRING, "confidence": {"type": "number", "minimum": 0,
                                                         "maximum": 1},
                   "metadata": {"type": "object"}}}
AnnotationType = Annotated[str, WithJsonSchema({"enum": list(ANNOTATION_TYPES)})]


def parse_version(value: str | None) -> int | str | None:
    """A version from a query string: digits are a number, anything else a name."""
    if value is None or value == "":
        return None
    if value.isdecimal():
        number = int(value)
        return number if number <= MAX_INT else value
    return value
