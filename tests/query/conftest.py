"""A small catalog with known answers, built once per backend (SQLite and PostgreSQL).

Images are 200×100. The run "frcnn" is committed; "yolo" is not. Ground truth and
predictions are exact copies or far-away boxes, so every match result is known:

=====  ========================================  ==========================================
item   ground truth                              frcnn predictions (confidence)
=====  ========================================  ==========================================
img0   4 pedestrian 10×10 (p0..p3), car 50×40    p0, p1 (0.9, 0.8) tp; car tp (0.9);
                                                 car far away fp (0.95) → p2, p3 fn
img1   pedestrian 20×30, car 40×20, car 30×30    car 40×20 tp (0.7); pedestrian fp (0.85)
                                                 → pedestrian and car 30×30 fn
img2   car 60×20                                 none → fn
img3   pedestrian 8×16 ×2                        first tp (0.6) → second fn
img4   (nothing)                                 none
img5   truck 100×50; category "day"              truck tp (0.99)
=====  ========================================  ==========================================
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from ocula import BoxAnnotation, BoxPrediction, CategoryAnnotation, DatasetItem
from ocula.core.services import Service
from tests.conftest import _PG_PROBLEM, PG_URL, make_images

METADATA: list[dict[str, Any]] = [
    {"weather": "rain", "speed": 10, "camera": {"id": 3}, "night": True},
    {"weather": "snow", "speed": 55.5},
    {"weather": "clear", "speed": "fast"},
    {"weather": "rain"},
    {},
    {"weather": "fog", "speed": 30, "tags": ["a"], "night": False},
]


def _ground_truth() -> list[Any]:
    b = BoxAnnotation
    return [
        b("pedestrian", 0, 0, 10, 10, reference_id="img0", annotation_id="p0",
          metadata={"occluded": True}),
        b("pedestrian", 20, 0, 10, 10, reference_id="img0", annotation_id="p1"),
        b("pedestrian", 40, 0, 10, 10, reference_id="img0", annotation_id="p2"),
        b("pedestrian", 60, 0, 10, 10, reference_id="img0", annotation_id="p3",
          metadata={"occluded": False}),
        b("car", 100, 50, 50, 40, reference_id="img0", annotation_id="c0"),
        b("pedestrian", 0, 0, 20, 30, reference_id="img1", annotation_id="p4"),
        b("car", 50, 50, 40, 20, reference_id="img1", annotation_id="c1"),
        b("car", 120, 10, 30, 30, reference_id="img1", annotation_id="c2"),
        b("car", 10, 10, 60, 20, reference_id="img2", annotation_id="c3"),
        b("pedestrian", 0, 0, 8, 16, reference_id="img3", annotation_id="p5"),
        b("pedestrian", 100, 0, 8, 16, reference_id="img3", annotation_id="p6"),
        b("truck", 50, 25, 100, 50, reference_id="img5", annotation_id="t0"),
        CategoryAnnotation("day", reference_id="img5", annotation_id="cat0"),
    ]


def _predictions() -> list[Any]:
    p = BoxPrediction
    return [
        p("pedestrian", 0, 0, 10, 10, reference_id="img0", confidence=0.9),
        p("pedestrian", 20, 0, 10, 10, reference_id="img0", confidence=0.8),
        p("car", 100, 50, 50, 40, reference_id="img0", confidence=0.9),
        p("car", 150, 0, 20, 20, reference_id="img0", confidence=0.95),
        p("car", 50, 50, 40, 20, reference_id="img1", confidence=0.7),
        p("pedestrian", 150, 60, 10, 20, reference_id="img1", confidence=0.85),
        p("pedestrian", 0, 0, 8, 16, reference_id="img3", confidence=0.6),
        p("truck", 50, 25, 100, 50, reference_id="img5", confidence=0.99),
    ]


@dataclass
class Scene:
    service: Service
    dataset: str

    def items(self, query: str, page_size: int = 2, **kw: Any) -> list[str]:
        """Reference ids of every match, fetched in small pages (exercising cursors)."""
        out, cursor = [], None
        while True:
            page = self.service.query_items(self.dataset, query, page_size=page_size,
                                            cursor=cursor, **kw)
            out += [i["reference_id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return out

    def objects(self, query: str, page_size: int = 3, **kw: Any) -> list[dict[str, Any]]:
        out, cursor = [], None
        while True:
            page = self.service.query_objects(self.dataset, query, page_size=page_size,
                                              cursor=cursor, **kw)
            out += page["objects"]
            cursor = page["next_cursor"]
            if cursor is None:
                return out

    def ids(self, query: str, **kw: Any) -> list[str]:
        """``annotation_id`` of annotations; ``<run>:<label>@<ref>:<confidence>`` of
        predictions."""
        return [o["annotation_id"] if o["kind"] == "annotation"
                else f"{o['run']}:{o['label']}@{o['reference_id']}:{o['confidence']}"
                for o in self.objects(query, **kw)]


def build_scene(service: Service, root: Path) -> Scene:
    paths = make_images(root / "images", 6, size=(200, 100))
    service.create_dataset("scene")
    service.append("scene", [DatasetItem(str(p), f"img{i}", METADATA[i])
                             for i, p in enumerate(paths)])
    service.annotate("scene", _ground_truth())
    model = service.add_model("detector", "detector-v1")
    run = service.create_run(model["id"], "scene", "frcnn", _predictions())
    service.commit_run(run["model_run_id"])
    service.create_run(model["id"], "scene", "yolo", [
        BoxPrediction("car", 10, 10, 60, 20, reference_id="img2", confidence=0.5)])
    service.create_slice("scene", "train", ["img0", "img1", "img2"])
    return Scene(service, "scene")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def scene(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Scene]:
    """The catalog above, shared by a test module (tests must not change it)."""
    root = tmp_path_factory.mktemp("scene")
    admin = schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'catalog.db'}"
    else:
        if _PG_PROBLEM is not None:
            if os.environ.get("OCULA_REQUIRE_PG"):
                pytest.fail(f"PostgreSQL required but not reachable: {_PG_PROBLEM}")
            pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {_PG_PROBLEM}")
        schema = f"q_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in PG_URL else "?"
        url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    service = Service.open(root / "home", url)
    try:
        yield build_scene(service, root)
    finally:
        service.close()
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def all_buckets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every bucket of an insights result, each with its query and count."""
    out = list(result["labels"]["annotations"])
    for per_run in result["labels"]["predictions"].values():
        out += per_run
    out += result["annotations_per_item"] + result["area"] + result["aspect"]
    for field in result["metadata"].values():
        out += field.get("values", []) + field.get("buckets", [])
    for run in result["runs"].values():
        for cls in run["classes"]:
            for status, q in cls["queries"].items():
                out.append({**q, "count": cls[status]})
    return out
