"""Checks at the boundary: every item and annotation is validated before any write.

Each check returns the errors it found instead of raising at the first, so a rejected
batch reports every offending entry at once.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from itertools import chain
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

import orjson

from ocula.errors import (
    AnnotationTypeError,
    DuplicateIdError,
    GeometryError,
    MetadataError,
    OculaError,
    ValidationError,
)

# Boxes may overhang the image by this much (pixels): rounding in exporters and
# annotation tools routinely produces x + width = W + 0.5.
EDGE_TOLERANCE = 1.0
_NUM = (int, float)

# PostgreSQL stores no NUL character in text or JSON; refused on every backend alike.
NUL = "\x00"
_JSON_NUL = "\\u0000"  # how json and orjson write it (or a literal "\u0000": checked again)
# A lone surrogate (U+D800..U+DFFF, e.g. JSON's "\ud800") is no Unicode text: it has no
# UTF-8 form, so neither PostgreSQL nor a JSON answer can carry it. A Python string holds
# a pair as two lone halves, so any code point of the range is refused.
SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_SURROGATE = "\\ud"  # how json writes one (ensure_ascii; astral characters too)

# Metadata limits (docs/limits.md). Deeper JSON cannot be written back by the encoders the
# server answers with (pydantic stops at 255 levels), and metadata is not a file store.
MAX_METADATA_DEPTH = 32
MAX_METADATA_BYTES = 64 * 1024  # of an item's, annotation's or prediction's metadata
# Datasets keep whole category lists (COCO, LVIS, CVAT label specs) in theirs.
MAX_CATALOG_METADATA_BYTES = 16 * 1024 * 1024


def unstorable(text: str) -> str | None:
    """Why ``text`` cannot be stored (a NUL character or a lone surrogate); None if it
    can. ``isascii`` costs nothing in CPython, so plain text pays one ``in``."""
    if NUL in text:
        return "a NUL character (U+0000)"
    if not text.isascii() and SURROGATE.search(text):
        return "a lone surrogate (U+D800..U+DFFF), which is not Unicode text"
    return None


def require_name(value: Any, what: str) -> str:
    """A name given by the user (dataset, slice, model, run): a non-empty string that can
    be stored; returned stripped."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{what} must be a non-empty string")
    if (err := text_error(what, value, None)) is not None:
        raise err
    return value.strip()


def text_error(what: str, value: str, reference_id: str | None) -> ValidationError | None:
    """The error for a text that cannot be stored (:func:`unstorable`), None if it can."""
    if (why := unstorable(value)) is None:
        return None
    return ValidationError(f"{what} {value!r} contains {why}, which cannot be stored",
                           reference_id=reference_id)


def _bad_text_in(value: Any) -> str | None:
    """Why some key or string of JSON-able ``value`` cannot be stored (acyclic)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if (why := unstorable(v)) is not None:
                return why
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list | tuple):
            stack.extend(v)
    return None


def too_deep(value: Any, limit: int = MAX_METADATA_DEPTH) -> bool:
    """Whether ``value`` nests objects and arrays more than ``limit`` levels deep (the
    outer object is level 1). Iterative, so a cycle or a million levels end quickly."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            children: Any = v.values()
        elif isinstance(v, list | tuple):
            children = v
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children)
    return False


def json_size(metadata: Any) -> int:
    """The size that the limits measure: bytes of the compact UTF-8 JSON of
    ``metadata``. Python's json writes at least as many (spaces, ASCII escapes)."""
    try:
        return len(orjson.dumps(metadata))
    except TypeError:  # what orjson does not write: a big integer, a key not a string
        return len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False)
                   .encode("utf-8", "surrogatepass"))


def check_metadata(metadata: Any, where: str, reference_id: str | None, *,
                   max_bytes: int = MAX_METADATA_BYTES) -> OculaError | None:
    """The error of a metadata object (not a JSON object, not JSON, deeper than
    ``MAX_METADATA_DEPTH``, longer than ``max_bytes`` as JSON, or holding a text that
    cannot be stored); None if it is fine."""
    ref = reference_id
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        return MetadataError(f"{where}: metadata must be a JSON object, got "
                             f"{type(metadata).__name__}", reference_id=ref)
    if too_deep(metadata):
        return MetadataError(f"{where}: metadata nests more than {MAX_METADATA_DEPTH} "
                             "levels deep", reference_id=ref)
    try:
        text = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        return MetadataError(f"{where}: metadata is not JSON-serialisable: {exc}",
                             reference_id=ref)
    if len(text) > max_bytes and (size := json_size(metadata)) > max_bytes:
        return MetadataError(f"{where}: metadata is {size} bytes as JSON, more than the "
                             f"{max_bytes} allowed", reference_id=ref)
    if (_JSON_NUL in text or _JSON_SURROGATE in text) and \
            (why := _bad_text_in(metadata)) is not None:
        return MetadataError(f"{where}: metadata contains {why}, which cannot be stored",
                             reference_id=ref)
    return None


_ENCODER = json.JSONEncoder(allow_nan=False)
# json.dumps(allow_nan=False) builds this C encoder on every call, which costs three times
# the encoding of a small dict; built once, it writes the very same text. It does not
# check for cycles (a cyclic dict ends in RecursionError), so every failure falls back
# to the full check, which explains.
_c_encoder = (c_make_encoder(None, _ENCODER.default, encode_basestring_ascii, None, ": ", ", ",
                             False, False, False) if c_make_encoder is not None else None)

# Metadata whose values are all of these types is written by orjson, 3-5x faster than
# the standard library. orjson also writes values the standard library refuses (UUIDs,
# enums, datetimes) and NaN as null; limited to these types, and with any "null" in its
# output checked again by the standard library, it accepts exactly what the standard
# library accepts (and the same values: only spacing and escapes differ).
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _stdlib_encode(metadata: dict[str, Any]) -> str:
    if _c_encoder is None:
        return _ENCODER.encode(metadata)
    return "".join(_c_encoder(metadata, 0))


def _encode(metadata: dict[str, Any]) -> str:
    """A dict as JSON text; TypeError/ValueError/RecursionError if not JSON or past the
    limits (:func:`check_metadata` then explains)."""
    if set(map(type, metadata.values())) <= _SCALARS:
        try:
            raw = orjson.dumps(metadata)
        except TypeError:  # a key that is not a string, a big integer, a lone surrogate
            return _checked(_stdlib_encode(metadata), metadata)
        if len(raw) > MAX_METADATA_BYTES:
            raise ValueError("metadata too long")
        text = raw.decode()
        if "null" in text:  # None, or a NaN or infinity that orjson writes as null
            _stdlib_encode(metadata)  # raises for NaN and infinities
        if _JSON_NUL in text:
            raise ValueError("a NUL character, or a string that looks like one")
        return text  # one level deep, and orjson writes no lone surrogate
    return _checked(_stdlib_encode(metadata), metadata)


def _checked(text: str, metadata: dict[str, Any]) -> str:
    """``text``, the standard library's JSON of ``metadata``, if within the limits and
    storable; else ValueError."""
    if len(text) > MAX_METADATA_BYTES and json_size(metadata) > MAX_METADATA_BYTES:
        raise ValueError("metadata too long")
    if _JSON_NUL in text:
        raise ValueError("a NUL character, or a string that looks like one")
    # Only JSON with that many brackets can be that deep; most is not, and pays no walk.
    if text.count("{") + text.count("[") > MAX_METADATA_DEPTH and too_deep(metadata):
        raise ValueError("metadata too deep")
    if _JSON_SURROGATE in text and _bad_text_in(metadata) is not None:
        raise ValueError("a lone surrogate")
    return text


def dump_metadata(metadata: Any, where: str, reference_id: str | None) -> str | None:
    """Serialise metadata for storage; raise MetadataError if it is not a JSON object."""
    if metadata is None or metadata == {}:
        return None
    if type(metadata) is dict:
        try:
            return _encode(metadata)
        except (TypeError, ValueError, RecursionError):
            pass  # fall through to the check, which explains
    if (err := check_metadata(metadata, where, reference_id)) is not None:
        raise err
    return json.dumps(metadata, allow_nan=False)


def dump_metadata_column(metadata: list[Any]) -> list[str | None] | None:
    """:func:`dump_metadata` over a column, C loops only; None if any entry needs the
    full check (which explains)."""
    if not set(map(type, metadata)) <= {dict, type(None)}:
        return None
    present = list(filter(None, metadata))
    try:
        out = _encode_column(present)
    except (TypeError, ValueError, RecursionError):
        return None
    if len(present) == len(metadata):
        return out
    it = iter(out)
    return [next(it) if m else None for m in metadata]


def _encode_column(dicts: list[dict[str, Any]]) -> list[str]:
    """:func:`_encode` over many dicts."""
    if set(map(type, chain.from_iterable(map(dict.values, dicts)))) <= _SCALARS:
        try:
            out = list(map(bytes.decode, map(orjson.dumps, dicts)))
        except TypeError:
            return list(map(_encode, dicts))
        joined = "\n".join(out)
        if "null" in joined:
            for text, md in zip(out, dicts, strict=True):
                if "null" in text:
                    _stdlib_encode(md)  # raises for NaN and infinities
        # Characters, not bytes: only text this long may be too long (then measured).
        if max(map(len, out), default=0) * 4 > MAX_METADATA_BYTES:
            for text in out:
                if len(text.encode()) > MAX_METADATA_BYTES:
                    raise ValueError("metadata too long")
        if _JSON_NUL in joined:
            raise ValueError("a NUL character, or a string that looks like one")
        return out
    return list(map(_encode, dicts))


def find_duplicates(keys: Iterable[Any]) -> list[Any]:
    keys = list(keys)
    if len(set(keys)) == len(keys):
        return []
    seen: set[Any] = set()
    dups: list[Any] = []
    for key in keys:
        if key in seen:
            dups.append(key)
        seen.add(key)
    return dups


def duplicate_errors(keys: Iterable[Any], what: str) -> list[OculaError]:
    def ref(key: Any) -> str | None:
        if isinstance(key, tuple) and key:
            key = key[0]
        return key if isinstance(key, str) else None

    return [
        DuplicateIdError(f"{what} {key!r} appears more than once in this batch",
                         reference_id=ref(key))
        for key in dict.fromkeys(find_duplicates(keys))
    ]


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def check_annotation(
    ann: Any,
    image_size: tuple[int, int] | None,
    allowed_types: list[str] | None,
    *,
    prediction: bool = False,
) -> OculaError | None:
    """Validate one annotation or prediction against its item's size; None if fine.

    Metadata is not checked here: callers serialise it once with :func:`dump_metadata`.
    """
    if ann.type == "box" and _plain_box_ok(ann, image_size, allowed_types, prediction):
        return None
    ref = ann.reference_id
    kind = "prediction" if prediction else "annotation"
    where = f"{ann.type} {kind} {ann.annotation_id or ''} on {ref!r}".replace("  ", " ")
    if not ref:
        return ValidationError(f"{kind} has no reference_id", reference_id=None)
    if isinstance(ref, str) and (err := text_error(f"{kind}: reference_id", ref, ref)):
        return err
    if allowed_types is not None and ann.type not in allowed_types:
        return AnnotationTypeError(
            f"{where}: this dataset does not allow {ann.type!r} annotations "
            f"(allowed: {', '.join(allowed_types)})", reference_id=ref)
    label = getattr(ann, "label", None)
    if ann.type == "multicategory":
        if err := _labels_error(ann.labels, where, ref):
            return err
    elif ann.type != "segmentation" and (not isinstance(label, str) or not label.strip()):
        return ValidationError(f"{where}: label is missing", reference_id=ref)
    # Every text stored with it but metadata (dump_metadata checks that).
    for what, texts in (("label", (label, *(getattr(ann, "labels", None) or ()))),
                        ("annotation_id", (ann.annotation_id,)),
                        ("keypoint name", getattr(ann, "names", None) or ()),
                        ("class_pdf class", getattr(ann, "class_pdf", None) or ())):
        for text in texts:
            if isinstance(text, str) and (err := text_error(f"{where}: {what}", text, ref)):
                return err
    track = getattr(ann, "track_reference_id", None)
    if track is not None:
        if not isinstance(track, str) or not track.strip() or len(track) > 255:
            return ValidationError(f"{where}: track_reference_id must be a non-blank "
                                   f"string of at most 255 characters, got {track!r}",
                                   reference_id=ref)
        if err := text_error(f"{where}: track_reference_id", track, ref):
            return err
    if prediction and ann.type != "segmentation":
        conf = getattr(ann, "confidence", None)
        if conf is not None and (not _is_number(conf) or not 0.0 <= conf <= 1.0):
            return ValidationError(f"{where}: confidence must be in [0, 1], got {conf!r}",
                                   reference_id=ref)
    return _check_geometry(ann, image_size, where)


# A multicategory's labels are stored in one JSON document: bounded like a taxonomy's.
MAX_MULTICATEGORY_LABELS = 1_000


def _labels_error(labels: Any, where: str, ref: Any) -> OculaError | None:
    """Why a multicategory's ``labels`` cannot be stored: not a non-empty list of
    distinct, non-blank strings of at most 255 characters."""
    if not isinstance(labels, list) or not labels:
        return ValidationError(f"{where}: labels must be a non-empty list of strings",
                               reference_id=ref)
    if len(labels) > MAX_MULTICATEGORY_LABELS:
        return ValidationError(f"{where}: at most {MAX_MULTICATEGORY_LABELS} labels",
                               reference_id=ref)
    for label in labels:
        if not isinstance(label, str) or not label.strip() or len(label) > 255:
            return ValidationError(f"{where}: each label must be a non-blank string of at "
                                   f"most 255 characters, got {label!r}", reference_id=ref)
    if len(set(labels)) != len(labels):
        return ValidationError(f"{where}: labels repeat a label", reference_id=ref)
    return None


def _plain_box_ok(ann: Any, image_size: tuple[int, int] | None,
                  allowed_types: list[str] | None, prediction: bool) -> bool:
    """The common case, accepted without building messages: a labelled, finite box
    inside its image. Anything else falls through to the full checks, which explain."""
    if (image_size is None or not ann.reference_id
            or getattr(ann, "track_reference_id", None) is not None):
        return False
    if allowed_types is not None and "box" not in allowed_types:
        return False
    label = ann.label
    if type(label) is not str or not label.strip() or unstorable(label):
        return False
    if ann.annotation_id is not None and unstorable(str(ann.annotation_id)):
        return False
    if prediction and getattr(ann, "class_pdf", None):  # its classes: the full checks
        return False
    t = EDGE_TOLERANCE
    x, y, w, h = ann.x, ann.y, ann.width, ann.height
    if not (type(x) in _NUM and type(y) in _NUM and type(w) in _NUM and type(h) in _NUM):
        return False
    try:
        ok = (w >= 0 and h >= 0 and x >= -t and y >= -t and x + w <= image_size[0] + t
              and y + h <= image_size[1] + t and math.isfinite(x + y + w + h))
        if ok and prediction and ann.confidence is not None:
            ok = type(ann.confidence) in _NUM and 0.0 <= ann.confidence <= 1.0
    except (TypeError, ValueError, OverflowError):
        return False
    return ok


def _check_geometry(ann: Any, image_size: tuple[int, int] | None, where: str) -> OculaError | None:
    ref = ann.reference_id
    if ann.type == "box":
        values = (ann.x, ann.y, ann.width, ann.height)
        if not all(_is_number(v) for v in values):
            return GeometryError(f"{where}: box coordinates must be finite numbers, got "
                                 f"{values}", reference_id=ref)
        if ann.width < 0 or ann.height < 0:
            return GeometryError(f"{where}: box has negative size "
                                 f"({ann.width}×{ann.height})", reference_id=ref)
    elif ann.type in ("polygon", "line"):
        fewest = 3 if ann.type == "polygon" else 2
        if len(ann.vertices) < fewest:
            return GeometryError(f"{where}: a {ann.type} needs at least {fewest} vertices",
                                 reference_id=ref)
        if not all(_is_number(v.x) and _is_number(v.y) for v in ann.vertices):
            return GeometryError(f"{where}: {ann.type} vertices must be finite numbers",
                                 reference_id=ref)
    elif ann.type == "keypoints":
        for k in ann.keypoints:
            if k.visible and not (_is_number(k.x) and _is_number(k.y)):
                return GeometryError(f"{where}: visible keypoints need finite x and y",
                                     reference_id=ref)
    elif ann.type == "mask":
        size = ann.mask.get("size") if isinstance(ann.mask, dict) else None
        counts = ann.mask.get("counts") if isinstance(ann.mask, dict) else None
        if not size or not isinstance(counts, list):
            return GeometryError(f"{where}: mask must be RLE {{size, counts}}", reference_id=ref)
        if image_size and tuple(size) != (image_size[1], image_size[0]):
            return GeometryError(f"{where}: mask size {size} does not match the image "
                                 f"({image_size[1]}×{image_size[0]} h×w)", reference_id=ref)
        if sum(counts) != size[0] * size[1]:
            return GeometryError(f"{where}: RLE counts do not cover the mask", reference_id=ref)
    box = ann.bbox() if ann.type != "mask" else None
    if box is not None and image_size is not None:
        x, y, w, h = box
        width, height = image_size
        t = EDGE_TOLERANCE
        if x < -t or y < -t or x + w > width + t or y + h > height + t:
            return GeometryError(
                f"{where}: geometry ({x:g}, {y:g}, {w:g}×{h:g}) lies outside the "
                f"{width}×{height} image", reference_id=ref)
    return None
