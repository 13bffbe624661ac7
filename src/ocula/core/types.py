"""Domain types: dataset items, ground-truth annotations and model predictions.

Constructors and field names follow Scale Nucleus' Python client, so code written for
Nucleus ports by changing the import. Every type converts to and from one JSON form
(``to_payload`` / ``payload_to_annotation``), which is also Nucleus' wire format; the
REST API, the embedded store and the importers all speak it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ocula.core.masks import index_rles, rle_bbox, rle_encode
from ocula.errors import ValidationError

# Annotation kinds a dataset may hold; a dataset can be restricted to a subset.
ANNOTATION_TYPES = ("box", "polygon", "line", "keypoints", "category", "multicategory",
                    "mask")


# Suffixes appended to a source object's id when it yields several annotations (a COCO
# record with bbox + segmentation + keypoints gives "17", "17/polygon", "17/keypoints").
# The parts are one object: exporters merge them back, and evaluation counts it once.
PART_SUFFIXES = {"polygon": "/polygon", "mask": "/mask", "keypoints": "/keypoints"}


def part_id(base: str | None, kind: str) -> str | None:
    """Annotation id of the ``kind`` part of a source object whose id is ``base``."""
    if base is None:
        return None
    return base + PART_SUFFIXES.get(kind, "")


def base_id(annotation_id: str | None) -> str | None:
    """Inverse of :func:`part_id`: the source object id an annotation came from."""
    if annotation_id is None:
        return None
    for suffix in PART_SUFFIXES.values():
        if annotation_id.endswith(suffix):
            return annotation_id[: -len(suffix)]
    return annotation_id


@dataclass
class Point:
    x: float
    y: float

    def to_payload(self) -> dict[str, float]:
        return {"x": self.x, "y": self.y}


@dataclass
class Keypoint:
    x: float | None = None
    y: float | None = None
    visible: bool = True

    def to_payload(self) -> dict[str, Any]:
        return {"x": self.x, "y": self.y, "visible": self.visible}


@dataclass
class Segment:
    """One instance inside a Nucleus-style index mask: pixels equal to ``index``."""

    label: str
    index: int
    metadata: dict[str, Any] | None = None


@dataclass
class DatasetItem:
    """An image: a local path or an http(s) URL, a reference id unique in its dataset."""

    image_location: str | None = None
    reference_id: str | None = None
    metadata: dict[str, Any] | None = None
    width: int | None = None
    height: int | None = None
    # Set on items read back from a store.
    item_id: str | None = None

    def to_payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "image_url": self.image_location,
            "reference_id": self.reference_id,
            "metadata": self.metadata or {},
        }
        if self.width is not None:
            body["width"] = self.width
            body["height"] = self.height
        if self.item_id is not None:
            body["id"] = self.item_id
        return body

    @classmethod
    def from_payload(cls, body: dict[str, Any]) -> DatasetItem:
        location = next(
            (body[k] for k in ("image_location", "image_url", "original_image_url", "url")
             if body.get(k)),
            None,
        )
        return cls(
            image_location=location,
            reference_id=body.get("reference_id", body.get("ref_id")),
            metadata=body.get("metadata") or {},
            width=body.get("width"),
            height=body.get("height"),
            item_id=body.get("id", body.get("dataset_item_id")),
        )


@dataclass
class Scene:
    """A named, ordered group of a dataset's items: the frames of a video.

    ``frames`` are the items in order (their index is their frame number). A scene may
    instead name a ``video_location`` (a video file or URL), whose frames the service
    cuts into items ``<reference_id>/<n>``. Nucleus calls this a ``VideoScene``.
    """

    reference_id: str
    frames: list[DatasetItem] = field(default_factory=list)
    frame_rate: float | None = None
    video_location: str | None = None
    metadata: dict[str, Any] | None = None

    def to_payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"reference_id": self.reference_id,
                                "metadata": self.metadata or {}}
        if self.frame_rate is not None:
            body["frame_rate"] = self.frame_rate
        if self.video_location is not None:
            body["video_url"] = self.video_location
        else:
            body["frames"] = [f.to_payload() for f in self.frames]
        return body

    @classmethod
    def from_payload(cls, body: dict[str, Any]) -> Scene:
        """A scene from its JSON form (Nucleus' video scene payload: ``frames`` of
        ``{image_url, reference_id, metadata}``, or ``video_url``)."""
        if not isinstance(body, dict):
            raise ValidationError(f"a scene must be an object, got {type(body).__name__}")
        ref = body.get("reference_id")
        frames = body.get("frames") or []
        video = body.get("video_url") or body.get("video_location")
        rate = body.get("frame_rate")
        metadata = body.get("metadata")
        if not isinstance(frames, list) or not all(isinstance(f, dict) for f in frames):
            raise ValidationError("a scene's frames must be a list of items", reference_id=ref)
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)):
            raise ValidationError(f"frame_rate must be a number, got {rate!r}",
                                  reference_id=ref)
        if metadata is not None and not isinstance(metadata, dict):
            raise ValidationError("a scene's metadata must be an object", reference_id=ref)
        return cls(reference_id=ref, frames=[DatasetItem.from_payload(f) for f in frames],
                   frame_rate=rate, video_location=video, metadata=metadata or {})


def _as_point(p: Any) -> Point:
    if isinstance(p, Point):
        return p
    if isinstance(p, dict):
        return Point(float(p["x"]), float(p["y"]))
    x, y = p
    return Point(float(x), float(y))


def _as_keypoint(p: Any) -> Keypoint:
    if isinstance(p, Keypoint):
        return p
    if isinstance(p, dict):
        return Keypoint(p.get("x"), p.get("y"), bool(p.get("visible", True)))
    x, y, *rest = p
    return Keypoint(x, y, bool(rest[0]) if rest else True)


class _Common:
    """Behaviour shared by every annotation and prediction dataclass below."""

    reference_id: str | None
    annotation_id: str | None
    metadata: dict[str, Any] | None
    type: ClassVar[str] = ""
    is_prediction: ClassVar[bool] = False

    def geometry(self) -> dict[str, Any]:
        raise NotImplementedError

    def bbox(self) -> tuple[float, float, float, float] | None:
        """Axis-aligned ``(x, y, width, height)`` or None for whole-image labels."""
        return None

    def computed_area(self) -> float | None:
        return None

    def to_payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "label": getattr(self, "label", None),
            "type": self.type,
            "geometry": self.geometry(),
            "reference_id": self.reference_id,
            "annotation_id": self.annotation_id,
            "metadata": self.metadata or {},
        }
        for extra in ("iscrowd", "area", "confidence", "class_pdf", "track_reference_id"):
            value = getattr(self, extra, None)
            # Identity, not equality: a confidence of 0.0 equals False but is sent.
            if value is not None and value is not False:
                body[extra] = value
        return body


@dataclass
class BoxAnnotation(_Common):
    label: str
    x: float
    y: float
    width: float
    height: float
    reference_id: str | None = None
    annotation_id: str | None = None
    metadata: dict[str, Any] | None = None
    iscrowd: bool = False
    area: float | None = None
    # The track (one object followed across a scene's frames) this box belongs to, by
    # its reference id, as Nucleus names it. Keyword-only, so positional arguments of
    # BoxPrediction (confidence after area) keep their places.
    track_reference_id: str | None = field(default=None, kw_only=True)

    type: ClassVar[str] = "box"

    def geometry(self) -> dict[str, Any]:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}

    def bbox(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.width, self.height)

    def computed_area(self) -> float:
        return float(self.width) * float(self.height)


@dataclass
class PolygonAnnotation(_Common):
    label: str
    vertices: list[Point]
    reference_id: str | None = None
    annotation_id: str | None = None
    metadata: dict[str, Any] | None = None
    iscrowd: bool = False
    area: float | None = None

    type: ClassVar[str] = "polygon"

    def __post_init__(self) -> None:
        self.vertices = [_as_point(v) for v in self.vertices]

    def geometry(self) -> dict[str, Any]:
        return {"vertices": [v.to_payload() for v in self.vertices]}

    def bbox(self) -> tuple[float, float, float, float]:
        xs = [v.x for v in self.vertices]
        ys = [v.y for v in self.vertices]
        return (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))

    def computed_area(self) -> float:
        """Shoelace area, as COCO's tooling reports polygon area."""
        xs = np.array([v.x for v in self.vertices], dtype=float)
        ys = np.array([v.y for v in self.vertices], dtype=float)
        return float(abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))) / 2)


@dataclass
class LineAnnotation(_Common):
    """A polyline: an ordered list of points, open (unlike a polygon). It has no area
    (stored as none, so ``area`` queries pass it by); its box bounds its points.

    Lines are stored, queried (``shape = line``), drawn and exported to CVAT, but take
    no part in detection metrics: COCO's protocol has no IoU for an open curve."""

    label: str
    vertices: list[Point]
    reference_id: str | None = None
    annotation_id: str | None = None
    metadata: dict[str, Any] | None = None
    track_reference_id: str | None = field(default=None, kw_only=True)

    type: ClassVar[str] = "line"

    def __post_init__(self) -> None:
        self.vertices = [_as_point(v) for v in self.vertices]

    def geometry(self) -> dict[str, Any]:
        return {"vertices": [v.to_payload() for v in self.vertices]}

    def bbox(self) -> tuple[float, float, float, float] | None:
        if not self.vertices:
            return None
        xs = [v.x for v in self.vertices]
        ys = [v.y for v in self.vertices]
        return (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


@dataclass
class KeypointsAnnotation(_Common):
    label: str
    keypoints: list[Keypoint]
    names: list[str] = field(default_factory=list)
    skeleton: list[list[int]] = field(default_factory=list)
    reference_id: str | None = None
    annotation_id: str | None = None
    metadata: dict[str, Any] | None = None

    type: ClassVar[str] = "keypoints"

    def __post_init__(self) -> None:
        self.keypoints = [_as_keypoint(k) for k in self.keypoints]

    def geometry(self) -> dict[str, Any]:
        return {
            "keypoints": [k.to_payload() for k in self.keypoints],
            "names": list(self.names),
            "skeleton": [list(s) for s in self.skeleton],
        }

    def bbox(self) -> tuple[float, float, float, float] | None:
        pts = [(k.x, k.y) for k in self.keypoints if k.visible and k.x is not None]
        if not pts:
            return None
        xs, ys = zip(*pts, strict=True)
        return (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


@dataclass
class CategoryAnnotation(_Common):
    label: str
    reference_id: str | None = None
    taxonomy_name: str | None = None
    metadata: dict[str, Any] | None = None
    annotation_id: str | None = None

    type: ClassVar[str] = "category"

    def geometry(self) -> dict[str, Any]:
        return {} if self.taxonomy_name is None else {"taxonomy_name": self.taxonomy_name}


@dataclass
class MultiCategoryAnnotation(_Common):
    """Several labels on one item at once (tags), from a taxonomy of type
    ``multicategory`` when ``taxonomy_name`` names one. Stored as one object whose
    ``labels`` are queried with ``labels = "x"``; it has no single ``label``."""

    labels: list[str]
    reference_id: str | None = None
    taxonomy_name: str | None = None
    metadata: dict[str, Any] | None = None
    annotation_id: str | None = None

    type: ClassVar[str] = "multicategory"

    def __post_init__(self) -> None:
        if isinstance(self.labels, tuple | set | frozenset):
            self.labels = list(self.labels)

    @property
    def label(self) -> None:
        """None: a multicategory's labels are in ``labels``."""
        return None

    def geometry(self) -> dict[str, Any]:
        body: dict[str, Any] = {"labels": self.labels}
        if self.taxonomy_name is not None:
            body["taxonomy_name"] = self.taxonomy_name
        return body

    def to_payload(self) -> dict[str, Any]:
        body = super().to_payload()  # its "label" is None
        body["labels"] = self.labels
        if self.taxonomy_name is not None:
            body["taxonomy_name"] = self.taxonomy_name
        return body


@dataclass
class MaskAnnotation(_Common):
    """One instance mask, stored as COCO run-length encoding (uncompressed counts).

    ``mask`` may be given as a boolean ``H×W`` array or an RLE dict
    ``{"size": [h, w], "counts": [...]}`` (column-major counts, starting with zeros).
    ``segment`` is set on the masks a :class:`SegmentationAnnotation` was split into:
    where it came from (``mask_url``, ``index``, the segmentation's ``annotation_id``
    and ``annotation_metadata``, the segment's own ``metadata``), so the segmentation can be rebuilt
    (``ocula.core.segmentations``).
    """

    label: str
    mask: Any
    reference_id: str | None = None
    annotation_id: str | None = None
    metadata: dict[str, Any] | None = None
    iscrowd: bool = False
    area: float | None = None
    segment: dict[str, Any] | None = field(default=None, kw_only=True)

    type: ClassVar[str] = "mask"

    def __post_init__(self) -> None:
        if isinstance(self.mask, np.ndarray):
            self.mask = rle_encode(self.mask)

    def geometry(self) -> dict[str, Any]:
        if self.segment is not None:
            return {"rle": self.mask, "segmentation": self.segment}
        return {"rle": self.mask}

    def bbox(self) -> tuple[float, float, float, float] | None:
        return rle_bbox(self.mask)

    def computed_area(self) -> float:
        return float(sum(self.mask["counts"][1::2]))


@dataclass
class SegmentationAnnotation(_Common):
    """Nucleus-style index mask: a PNG whose pixel values name the segments.

    ``mask_url`` is an http(s) URL or a local path; ``mask_bytes``, when given, is the
    PNG itself (a file uploaded with the request), read instead. Ocula stores instances:
    on ingest this is split into one :class:`MaskAnnotation` per segment, with the
    annotation id ``"segmentation/<index>"`` (one segmentation per item, as in Nucleus),
    each remembering its source (``MaskAnnotation.segment``). A mask whose size differs
    from its image's is refused, unless ``fit_to_image`` (set by the Nucleus routes,
    where Nucleus resizes it) asks for a nearest-neighbour resize.
    """

    mask_url: str
    annotations: list[Segment]
    reference_id: str | None = None
    annotation_id: str | None = None
    metadata: dict[str, Any] | None = None
    mask_bytes: bytes | None = field(default=None, kw_only=True, repr=False, compare=False)
    fit_to_image: bool = field(default=False, kw_only=True, compare=False)

    type: ClassVar[str] = "segmentation"

    def __post_init__(self) -> None:
        self.annotations = [
            s if isinstance(s, Segment) else Segment(s["label"], s["index"], s.get("metadata"))
            for s in self.annotations
        ]

    def geometry(self) -> dict[str, Any]:
        return {
            "mask_url": self.mask_url,
            "annotations": [{"label": s.label, "index": s.index,
                             **({"metadata": s.metadata} if s.metadata else {})}
                            for s in self.annotations],
        }

    def to_instances(self, index_mask: np.ndarray) -> list[MaskAnnotation]:
        """One mask (prediction) per segment: the pixels of ``index_mask`` equal to its
        index."""
        cls = MaskPrediction if self.is_prediction else MaskAnnotation
        rles = index_rles(index_mask, [seg.index for seg in self.annotations])
        return [
            cls(label=seg.label, mask=rles[seg.index],
                reference_id=self.reference_id,
                annotation_id=f"{SEGMENT_ID_PREFIX}{seg.index}",
                metadata={**(self.metadata or {}), **(seg.metadata or {})} or None,
                segment={"mask_url": self.mask_url, "index": seg.index,
                         "annotation_id": self.annotation_id,
                         **({"metadata": seg.metadata} if seg.metadata else {}),
                         **({"annotation_metadata": self.metadata} if self.metadata else {})})
            for seg in self.annotations
        ]


# The annotation id of each mask a segmentation is split into: "segmentation/<index>".
SEGMENT_ID_PREFIX = "segmentation/"
# A segmentation's PNG inlined in its JSON (base64), as the HTTP client sends a local one.
MASK_PNG_KEY = "mask_png_base64"


def _mask_png(value: Any) -> bytes | None:
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{MASK_PNG_KEY} must be a PNG in base64: {exc}") from exc


# --- predictions: the same shapes plus a confidence and an optional class_pdf -------


@dataclass
class BoxPrediction(BoxAnnotation):
    confidence: float | None = None
    class_pdf: dict[str, float] | None = None
    is_prediction: ClassVar[bool] = True


@dataclass
class PolygonPrediction(PolygonAnnotation):
    confidence: float | None = None
    class_pdf: dict[str, float] | None = None
    is_prediction: ClassVar[bool] = True


@dataclass
class LinePrediction(LineAnnotation):
    confidence: float | None = None
    class_pdf: dict[str, float] | None = None
    is_prediction: ClassVar[bool] = True


@dataclass
class KeypointsPrediction(KeypointsAnnotation):
    confidence: float | None = None
    class_pdf: dict[str, float] | None = None
    is_prediction: ClassVar[bool] = True


@dataclass
class CategoryPrediction(CategoryAnnotation):
    confidence: float | None = None
    class_pdf: dict[str, float] | None = None
    is_prediction: ClassVar[bool] = True


@dataclass
class MultiCategoryPrediction(MultiCategoryAnnotation):
    confidence: float | None = None
    class_pdf: dict[str, float] | None = None
    is_prediction: ClassVar[bool] = True


@dataclass
class MaskPrediction(MaskAnnotation):
    confidence: float | None = None
    class_pdf: dict[str, float] | None = None
    is_prediction: ClassVar[bool] = True


@dataclass
class SegmentationPrediction(SegmentationAnnotation):
    is_prediction: ClassVar[bool] = True


Annotation = (
    BoxAnnotation | PolygonAnnotation | LineAnnotation | KeypointsAnnotation
    | CategoryAnnotation | MultiCategoryAnnotation | MaskAnnotation | SegmentationAnnotation
)

_ANNOTATION_CLASSES: dict[str, type] = {
    "box": BoxAnnotation,
    "polygon": PolygonAnnotation,
    "line": LineAnnotation,
    "keypoints": KeypointsAnnotation,
    "category": CategoryAnnotation,
    "multicategory": MultiCategoryAnnotation,
    "mask": MaskAnnotation,
    "segmentation": SegmentationAnnotation,
}
_PREDICTION_CLASSES: dict[str, type] = {
    "box": BoxPrediction,
    "polygon": PolygonPrediction,
    "line": LinePrediction,
    "keypoints": KeypointsPrediction,
    "category": CategoryPrediction,
    "multicategory": MultiCategoryPrediction,
    "mask": MaskPrediction,
    "segmentation": SegmentationPrediction,
}


def payload_to_annotation(body: dict[str, Any], *, prediction: bool = False) -> Any:
    """Build an annotation (or prediction) from its JSON form; raise on bad shape."""
    if not isinstance(body, dict):
        raise ValidationError(f"annotation must be an object, got {type(body).__name__}")
    kind = body.get("type") or ("box" if "geometry" in body else "category")
    classes = _PREDICTION_CLASSES if prediction else _ANNOTATION_CLASSES
    cls = classes.get(kind) if isinstance(kind, str) else None
    ref = body.get("reference_id")
    if cls is None:
        raise ValidationError(
            f"unknown annotation type {kind!r}; expected one of {sorted(classes)}",
            reference_id=ref,
        )
    geometry = body.get("geometry") or {}
    if not isinstance(geometry, dict):
        raise ValidationError(f"{kind} annotation's geometry must be an object, got "
                              f"{type(geometry).__name__}", reference_id=ref)
    if kind == "mask" and "rle" not in geometry and (body.get("mask_url")
                                                     or geometry.get("mask_url")):
        # Nucleus sends its index masks as type "mask" with a mask_url.
        kind, cls = "segmentation", classes["segmentation"]
    common: dict[str, Any] = {
        "reference_id": ref,
        "annotation_id": body.get("annotation_id"),
        "metadata": body.get("metadata") or None,
    }
    if kind not in ("segmentation", "multicategory"):
        common["label"] = body.get("label")
    if prediction and kind != "segmentation":
        common["confidence"] = body.get("confidence")
        common["class_pdf"] = body.get("class_pdf")
    if kind in ("box", "line") and body.get("track_reference_id") is not None:
        common["track_reference_id"] = body["track_reference_id"]
    if kind in ("box", "polygon", "mask") and "iscrowd" in body:
        common["iscrowd"] = bool(body["iscrowd"])
    try:
        if kind in ("box", "polygon", "mask") and body.get("area") is not None:
            common["area"] = float(body["area"])
        if kind == "box":
            return cls(**common, x=geometry["x"], y=geometry["y"],
                       width=geometry["width"], height=geometry["height"])
        if kind in ("polygon", "line"):
            vertices = geometry["vertices"]
            if not isinstance(vertices, list):
                raise TypeError(f"vertices must be a list of points, got {vertices!r}")
            return cls(**common, vertices=vertices)
        if kind == "keypoints":
            return cls(**common, keypoints=geometry["keypoints"],
                       names=geometry.get("names") or [], skeleton=geometry.get("skeleton") or [])
        if kind == "category":
            return cls(**common, taxonomy_name=body.get("taxonomy_name")
                       or geometry.get("taxonomy_name"))
        if kind == "multicategory":
            # Nucleus sends them beside the geometry; Ocula's own form (and an edit of
            # it) keeps them in it too, and there they win.
            labels = geometry.get("labels", body.get("labels"))
            if not isinstance(labels, list):
                raise TypeError(f"labels must be a list of strings, got {labels!r}")
            return cls(**common, labels=labels, taxonomy_name=body.get("taxonomy_name")
                       or geometry.get("taxonomy_name"))
        if kind == "mask":
            return cls(**common, mask=geometry["rle"], segment=geometry.get("segmentation"))
        return cls(**common, mask_url=geometry.get("mask_url") or body.get("mask_url"),
                   annotations=geometry.get("annotations") or body.get("annotations") or [],
                   mask_bytes=_mask_png(body.get(MASK_PNG_KEY)))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(
            f"{kind} annotation is missing or has a malformed field: {exc}", reference_id=ref
        ) from exc

