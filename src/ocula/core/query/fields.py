"""The field registry: what a query can name, its type, and the SQL it stands for.

Two kinds of query exist. *Item* queries select images; *object* queries select
ground-truth annotations and model predictions (one row per box, polygon, ...). Each
field below is registered for one or both, with a value type the compiler checks
comparisons against and a description the docs and error messages reuse.

Metadata (``metadata.a.b``) is free-form JSON, so its comparisons are typed by the
value written in the query: ``metadata.speed > 30`` only considers numbers,
``metadata.weather = "rain"`` only strings. On SQLite this reads ``json_type`` /
``json_extract``; on PostgreSQL ``jsonb_typeof`` / ``#>`` with every cast behind a
``CASE`` on the JSON type, so a string where a number was expected never raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import (
    ARRAY,
    Float,
    String,
    Text,
    bindparam,
    case,
    cast,
    func,
    literal,
    null,
    or_,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

FieldType = Literal["number", "string", "enum", "bool", "json", "run"]
Kind = Literal["annotation", "prediction"]
KINDS: tuple[Kind, ...] = ("annotation", "prediction")

STATUS_VALUES = {"annotation": ("tp", "fn", "ignored"), "prediction": ("tp", "fp", "ignored")}
SHAPES = ("box", "polygon", "line", "keypoints", "category", "multicategory", "mask")


@dataclass(frozen=True)
class FieldSpec:
    """One field: its value type, which query kind has it, and what it means."""

    name: str
    type: FieldType
    description: str
    # "item" and/or "object"
    scopes: tuple[str, ...]
    # For object fields: the object kinds that carry a value.
    kinds: tuple[Kind, ...] = KINDS
    values: tuple[str, ...] = ()
    nullable: bool = True
    example: str = ""


ITEM_FIELDS: dict[str, FieldSpec] = {f.name: f for f in [
    FieldSpec("reference_id", "string", "the item's reference id", ("item",), nullable=False,
              example='reference_id = "img_0001"'),
    FieldSpec("id", "string", "the item's Ocula id (di_…)", ("item",), nullable=False,
              example='id = "di_3f9c1a2b7d4e5f60a1b2"'),
    FieldSpec("width", "number", "image width in pixels", ("item",), nullable=False,
              example="width >= 1920"),
    FieldSpec("height", "number", "image height in pixels", ("item",), nullable=False,
              example="height < 720"),
    FieldSpec("metadata", "json", "a value in the item's metadata, by dotted path",
              ("item",), example='metadata.weather = "rain"'),
    FieldSpec("scene", "string", "reference id of the scene the item is a frame of (items "
              "in no scene never match)", ("item", "object"), nullable=False,
              example='scene = "drive_0042"'),
]}

OBJECT_FIELDS: dict[str, FieldSpec] = {f.name: f for f in [
    FieldSpec("type", "enum", "annotation (ground truth) or prediction", ("object",),
              values=KINDS, nullable=False, example="type = prediction"),
    FieldSpec("shape", "enum", "geometry kind: box, polygon, line, keypoints, category, "
              "multicategory, mask",
              ("object",), values=SHAPES, nullable=False, example="shape = polygon"),
    FieldSpec("label", "string", "class label", ("object",), example='label = "pedestrian"'),
    FieldSpec("labels", "string", "one of a multicategory's labels (true when any of them "
              "passes; other shapes never match)", ("object",), nullable=False,
              example='labels = "outdoor"'),
    FieldSpec("x", "number", "left edge of the bounding box (pixels)", ("object",),
              example="x < 10"),
    FieldSpec("y", "number", "top edge of the bounding box (pixels)", ("object",),
              example="y > 500"),
    FieldSpec("width", "number", "bounding-box width (pixels)", ("object",),
              example="width < 8"),
    FieldSpec("height", "number", "bounding-box height (pixels)", ("object",),
              example="height >= 100"),
    FieldSpec("area", "number", "area in pixels (the mask or polygon area where known, "
              "else width × height)", ("object",), example="area < 400"),
    FieldSpec("aspect", "number", "bounding-box width / height", ("object",),
              example="aspect > 3"),
    FieldSpec("iscrowd", "bool", "COCO crowd region flag", ("object",), nullable=False,
              example="iscrowd = true"),
    FieldSpec("confidence", "number", "prediction score", ("object",),
              kinds=("prediction",), example="confidence > 0.8"),
    FieldSpec("status", "enum", "match result: tp/fp/ignored for predictions (ignored: "
              "absorbed by a crowd region), tp/fn/ignored for annotations (against the "
              "query's run)", ("object",),
              values=("tp", "fp", "fn", "ignored"), example="status = fp"),
    FieldSpec("iou", "number", "IoU with the matched object (0 when unmatched)",
              ("object",), example="iou < 0.5"),
    FieldSpec("run", "run", "model run by name: which run's predictions, and for "
              "annotations which run's match status", ("object",), nullable=False,
              example='run = "frcnn-v2"'),
    FieldSpec("id", "string", "the object's Ocula id", ("object",), nullable=False,
              example='id = "ann_…"'),
    FieldSpec("annotation_id", "string", "the user's own id for the object", ("object",),
              example='annotation_id = "a17"'),
    FieldSpec("reference_id", "string", "reference id of the object's item", ("object",),
              nullable=False, example='reference_id = "img_0001"'),
    FieldSpec("metadata", "json", "a value in the object's metadata, by dotted path",
              ("object",), example='metadata.occluded = true'),
    FieldSpec("track", "string", "reference id of the track the object belongs to (one "
              "object followed across a scene's frames)", ("object",),
              example='track = "pedestrian_7"'),
    FieldSpec("scene", "string", "reference id of the scene the object's item is a frame of",
              ("item", "object"), nullable=False, example='scene = "drive_0042"'),
]}

FUNCTIONS: dict[str, tuple[str, str, str]] = {
    # name: (where, signature, description)
    "count": ("item", 'count(<object condition>) <op> N',
              "number of the item's objects matching the condition (ground truth unless the "
              "condition says type = prediction); count() counts all annotations"),
    "has": ("item", "has(<object condition>)",
            "true when at least one of the item's objects matches (faster than count > 0)"),
    "run": ("item", 'run("name").tp / .fp / .fn <op> N',
            "per-item true positives, false positives or false negatives of a committed run"),
    "in_slice": ("item, object", 'in_slice("name")',
                 "membership of a slice (for objects: their item is in an item slice, or "
                 "the object is in an object slice)"),
    "item": ("object", "item(<item condition>)",
             "the object's item matches an item condition, e.g. item(metadata.weather = "
             '"rain")'),
}


# --- JSON paths -------------------------------------------------------------------------


@dataclass
class JsonRef:
    """A dotted path inside a JSON column, with dialect-specific comparison builders.

    The path always travels as a bound parameter: a key is never spliced into SQL.
    """

    column: ColumnElement
    path: tuple[str, ...]
    dialect: str
    _params: dict[str, Any] = field(default_factory=dict)

    # SQLite: json_extract/json_type take a path string such as $."a"."b".
    def _sqlite_path(self) -> Any:
        text = "$" + "".join('."' + key + '"' for key in self.path)
        return bindparam(None, text, type_=String, unique=True)

    def _pg_path(self) -> Any:
        return bindparam(None, list(self.path), type_=ARRAY(Text), unique=True)

    def json_type(self) -> ColumnElement:
        """'number', 'string', 'boolean', 'null', 'object', 'array' or NULL (missing)."""
        if self.dialect == "postgresql":
            return func.jsonb_typeof(self.column.op("#>", return_type=JSONB)(self._pg_path()))
        raw = func.json_type(self.column, self._sqlite_path())
        return case((raw.in_(["integer", "real"]), literal("number")),
                    (raw == "text", literal("string")),
                    (raw.in_(["true", "false"]), literal("boolean")),
                    else_=raw)

    def number(self) -> ColumnElement:
        """The value as a float where it is a JSON number, else NULL (never an error)."""
        if self.dialect == "postgresql":
            kind = func.jsonb_typeof(self.column.op("#>", return_type=JSONB)(self._pg_path()))
            text_value = self.column.op("#>>", return_type=Text)(self._pg_path())
            return case((kind == "number", cast(text_value, Float)), else_=null())
        kind = func.json_type(self.column, self._sqlite_path())
        return case((kind.in_(["integer", "real"]), func.json_extract(self.column,
                                                                      self._sqlite_path())),
                    else_=null())

    def string(self) -> ColumnElement:
        """The value where it is a JSON string, else NULL."""
        if self.dialect == "postgresql":
            kind = func.jsonb_typeof(self.column.op("#>", return_type=JSONB)(self._pg_path()))
            text_value = self.column.op("#>>", return_type=Text)(self._pg_path())
            return case((kind == "string", text_value), else_=null())
        kind = func.json_type(self.column, self._sqlite_path())
        return case((kind == "text", func.json_extract(self.column, self._sqlite_path())),
                    else_=null())

    def equals_any(self, values: list[Any]) -> ColumnElement:
        """True where the value is one of ``values`` (strings, numbers or booleans; a
        string never equals a number)."""
        if self.dialect == "postgresql":
            # Containment (@>) can use a GIN index on the metadata column.
            docs = []
            for v in values:
                doc: Any = v
                for key in reversed(self.path):
                    doc = {key: doc}
                param = bindparam(None, doc, type_=JSONB, unique=True)
                docs.append(self.column.op("@>", is_comparison=True)(param))
            return or_(*docs) if len(docs) != 1 else docs[0]
        terms = []
        bools = [v for v in values if isinstance(v, bool)]
        plain = [v for v in values if not isinstance(v, bool)]
        if plain:
            extracted = func.json_extract(self.column, self._sqlite_path())
            terms.append(extracted == plain[0] if len(plain) == 1 else extracted.in_(plain))
        for b in dict.fromkeys(bools):
            terms.append(func.json_type(self.column, self._sqlite_path())
                         == ("true" if b else "false"))
        return or_(*terms) if len(terms) != 1 else terms[0]

    def is_null(self) -> ColumnElement:
        """Missing or JSON null."""
        return func.coalesce(self.json_type(), "null") == "null"
