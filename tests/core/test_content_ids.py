"""Annotations sent without an id get one made from their content, so a retried upload
is not stored twice; plain boxes get theirs from their columns, exactly the same."""

from __future__ import annotations

import random
import string
from pathlib import Path

import numpy as np

from ocula import BoxAnnotation, CategoryAnnotation, DatasetItem
from ocula.core.services.annotations import box_content_ids, content_id
from ocula.core.services.checks import box_columns
from ocula.core.services.service import Service
from tests.conftest import make_images

_CHARS = string.printable + "é☃𝔘\u2028\x7f\"\\/"


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(_CHARS) for _ in range(rng.randint(1, 12)))


def _number(rng: random.Random) -> float | int:
    kind = rng.randrange(6)
    if kind == 0:
        return rng.randint(0, 10**rng.randint(0, 20))
    if kind == 1:
        return rng.uniform(0, 1000)
    if kind == 2:
        return rng.uniform(0, 1) * 10.0 ** rng.randint(-320, 300)
    if kind == 3:
        return float(rng.randint(0, 5000))
    if kind == 4:
        return rng.choice([0, 0.0, -0.0, 1e16, 1e-5, 0.1, 5e-324, 1.7976931348623157e308])
    return round(rng.uniform(0, 100), rng.randint(0, 6))


def _value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(8 if depth < 2 else 5)
    if kind == 0:
        return _text(rng)
    if kind == 1:
        return _number(rng)
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return -rng.randint(0, 2**70)
    if kind == 4:
        return rng.uniform(-1e6, 1e6)
    if kind in (5, 6):
        return {_text(rng): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]


def _box(rng: random.Random) -> BoxAnnotation:
    metadata = rng.choice([None, {}, {_text(rng): _value(rng) for _ in range(rng.randint(1, 5))}])
    return BoxAnnotation(_text(rng), *(_number(rng) for _ in range(4)),
                         reference_id=_text(rng), metadata=metadata,
                         iscrowd=rng.random() < 0.3)


def test_column_ids_equal_content_ids_on_random_boxes() -> None:
    rng = random.Random(7)
    for _ in range(20):
        boxes = [_box(rng) for _ in range(500)]
        assert box_content_ids(box_columns(boxes)) == list(map(content_id, boxes))


def test_values_the_template_does_not_write_fall_back() -> None:
    for odd in (BoxAnnotation("car", np.float64(1.5), 1, 2, 2, "r"),
                BoxAnnotation("car", 1, 1, 2, 2, "r", iscrowd=1),  # type: ignore[arg-type]
                BoxAnnotation("car", True, 1, 2, 2, "r")):  # type: ignore[arg-type]
        assert box_content_ids(box_columns([odd, BoxAnnotation("car", 1, 1, 2, 2, "r")])) is None


def test_an_upload_without_ids_retried_any_way_is_stored_once(service: Service,
                                                              tmp_path: Path) -> None:
    """The ids made by both paths (column-wise; one object at a time, for a batch with
    another type in it) are the same, so a retry by either path is ignored."""
    paths = make_images(tmp_path / "auto", 3, size=(50, 40), fmt="PNG")
    ds = service.create_dataset("auto")["id"]
    service.append(ds, [DatasetItem(str(p), p.stem) for p in paths])
    rng = random.Random(3)
    boxes = [BoxAnnotation(rng.choice(["car", "bus", "é"]), rng.uniform(0, 20),
                           rng.randint(0, 20), rng.uniform(1, 20), rng.uniform(1, 20),
                           reference_id=p.stem, metadata={"k": rng.random(), "n": [1, "x"]},
                           iscrowd=rng.random() < 0.2)
             for p in paths for _ in range(5)]
    first = service.annotate(ds, boxes)
    assert (first["annotations_processed"], first["annotations_ignored"]) == (15, 0)
    mixed = [*boxes, CategoryAnnotation("day", reference_id=paths[0].stem)]
    again = service.annotate(ds, mixed)
    assert (again["annotations_processed"], again["annotations_ignored"]) == (1, 15)
    assert service.annotate(ds, boxes[::-1])["annotations_ignored"] == 15
    stored = service.list_annotations(ds)
    assert len(stored) == 16
    assert sorted(a["annotation_id"] for a in stored if a["type"] == "box") == sorted(
        map(content_id, boxes))
