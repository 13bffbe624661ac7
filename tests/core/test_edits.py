"""Interactive edits at the service: the insights totals stay exact, every edit is one
transaction, and history goes with its item and dataset."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ocula import (
    BoxAnnotation,
    BoxPrediction,
    DatasetItem,
    Keypoint,
    KeypointsAnnotation,
    LineAnnotation,
    PolygonAnnotation,
)
from ocula.core.services import Service, stats
from ocula.core.store import schema as t
from ocula.errors import BatchError, ConflictError, NotFoundError, ValidationError
from tests.conftest import make_images

LABELS = ["car", "person", "bike"]


def _current(service: Service, ref: str) -> list[dict[str, Any]]:
    return [a for anns in service.get_item("d", reference_id=ref)["annotations"].values()
            for a in anns]


def _random_op(rng: random.Random, service: Service, ref: str,
               run_preds: list[dict[str, Any]]) -> dict[str, Any] | None:
    anns = _current(service, ref)
    choice = rng.choice(["add", "update", "update", "delete", "accept"])
    x, y = rng.uniform(0, 50), rng.uniform(0, 40)
    box = {"x": x, "y": y, "width": rng.uniform(1, 40), "height": rng.uniform(1, 30)}
    if choice == "add" or not anns:
        return {"op": "add", "annotation": {"type": "box", "label": rng.choice(LABELS),
                                            "geometry": box}}
    target = rng.choice(anns)
    if choice == "delete":
        return {"op": "delete", "id": target["id"], "expected": target["version"]}
    if choice == "accept":
        mine = [p for p in run_preds if p["reference_id"] == ref]
        taken = {a["annotation_id"] for a in anns}
        mine = [p for p in mine if f"accepted:{p['id']}" not in taken]
        if not mine:
            return None
        return {"op": "accept_prediction", "prediction_id": rng.choice(mine)["id"]}
    op: dict[str, Any] = {"op": "update", "id": target["id"], "expected": target["version"]}
    if rng.random() < 0.5:
        op["label"] = rng.choice([lb for lb in LABELS if lb != target["label"]])
    else:
        op["geometry"] = box
    return op


@pytest.mark.parametrize("seed", [3, 4])
def test_totals_equal_a_scan_after_edits(service: Service, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    images = make_images(tmp_path / "img", 2, size=(100, 80))
    service.create_dataset("d")
    refs = [f"r{i}" for i in range(8)]
    service.append("d", [DatasetItem(str(images[i % 2]), r, {"i": i})
                         for i, r in enumerate(refs)])
    service.annotate("d", [BoxAnnotation(rng.choice(LABELS), 5, 5, rng.uniform(2, 50), 10,
                                         reference_id=rng.choice(refs), annotation_id=f"a{i}")
                           for i in range(20)])
    model = service.add_model("m", "m")
    run = service.create_run(model["id"], "d", "run", [
        BoxPrediction(rng.choice(LABELS), 10, 10, 20, 20, reference_id=r, confidence=0.5)
        for r in refs])
    service.commit_run(run["model_run_id"])
    preds = service.list_predictions(run["model_run_id"])
    done: set[str] = set()
    for _ in range(40):
        ref = rng.choice(refs)
        ops = [op for op in (_random_op(rng, service, ref, preds)
                             for _ in range(rng.randint(1, 3))) if op is not None]
        ids = [op.get("id") for op in ops if "id" in op]
        if not ops or len(ids) != len(set(ids)):
            continue
        try:
            result = service.edit_annotations("d", ref, ops)
        except ConflictError:  # two adds of the same content, two accepts of one prediction
            continue
        done.update(e["op"] for e in result["edits"])
        if rng.random() < 0.3:
            service.edit_annotations("d", ref, [e["inverse"] for e in reversed(result["edits"])])
        assert service.insights("d") == service.scan_insights("d")
    assert done == {"add", "update", "delete", "accept_prediction"}
    with service.db.read() as conn:
        pk = service._dataset_row(conn, "d").pk
        kept = set(conn.execute(select(t.dataset_stats.c.kind, t.dataset_stats.c.key,
                                       t.dataset_stats.c.count).where(
            t.dataset_stats.c.dataset_pk == pk, t.dataset_stats.c.count != 0)).all())
    with service.db.write() as conn:
        stats.rebuild(conn, pk)
        rebuilt = set(conn.execute(select(t.dataset_stats.c.kind, t.dataset_stats.c.key,
                                          t.dataset_stats.c.count).where(
            t.dataset_stats.c.dataset_pk == pk, t.dataset_stats.c.count != 0)).all())
    assert rebuilt == kept


def _setup(service: Service, tmp_path: Path) -> dict[str, Any]:
    (image,) = make_images(tmp_path / "img", 1, size=(100, 80))
    service.create_dataset("d")
    service.append("d", [DatasetItem(str(image), "a"), DatasetItem(str(image), "b")])
    service.annotate("d", [BoxAnnotation("car", 1, 1, 10, 10, reference_id="a",
                                         annotation_id="c")])
    return _current(service, "a")[0]


def _count(service: Service, table: Any) -> int:
    with service.db.read() as conn:
        return conn.scalar(select(func.count()).select_from(table)) or 0


def test_a_failed_edit_leaves_no_version_row_or_log(service: Service, tmp_path: Path) -> None:
    car = _setup(service, tmp_path)
    rows = (_count(service, t.annotation_versions), _count(service, t.annotation_edits),
            _count(service, t.annotations))
    good = {"op": "update", "id": car["id"], "expected": 1, "label": "bus"}
    with pytest.raises(ConflictError):
        service.edit_annotations("d", "a", [{**good, "expected": 0}])
    with pytest.raises(BatchError):
        service.edit_annotations("d", "a", [good, {"op": "add", "annotation": {
            "type": "box", "label": "p", "geometry": {"x": 1, "y": 1, "width": -3,
                                                      "height": 2}}}])
    with pytest.raises(NotFoundError):  # the annotation is on item "a", not "b"
        service.edit_annotations("d", "b", [good])
    assert (_count(service, t.annotation_versions), _count(service, t.annotation_edits),
            _count(service, t.annotations)) == rows


def test_author_and_message_are_checked(service: Service, tmp_path: Path) -> None:
    car = _setup(service, tmp_path)
    op = {"op": "update", "id": car["id"], "expected": 1, "label": "bus"}
    for author in ("", "   ", "x" * 256, "nul\x00"):
        with pytest.raises(ValidationError):
            service.edit_annotations("d", "a", [op], author=author)
    with pytest.raises(ValidationError):
        service.edit_annotations("d", "a", [op], message="nul\x00")
    done = service.edit_annotations("d", "a", [op], author="ana", message="fix")
    assert done["author"] == "ana"
    assert service.item_history("d", "a")[0]["author"] == "ana"


def test_history_goes_with_its_item_and_dataset(service: Service, tmp_path: Path) -> None:
    car = _setup(service, tmp_path)
    service.edit_annotations("d", "a", [{"op": "delete", "id": car["id"], "expected": 1}])
    service.edit_annotations("d", "b", [{"op": "add", "annotation": {
        "type": "box", "label": "p", "geometry": {"x": 1, "y": 1, "width": 3, "height": 2}}}])
    assert _count(service, t.annotation_edits) == 2
    service.delete_item("d", "a")
    assert _count(service, t.annotation_edits) == 1
    assert service.insights("d") == service.scan_insights("d")
    service.delete_dataset("d")
    assert _count(service, t.annotation_edits) == 0


def test_concurrent_edits_of_one_state_let_exactly_one_through(service: Service,
                                                               tmp_path: Path) -> None:
    car = _setup(service, tmp_path)
    labels = [f"label{i}" for i in range(6)]
    outcomes: dict[str, str] = {}

    def edit(label: str) -> None:
        try:
            service.edit_annotations("d", "a", [{"op": "update", "id": car["id"],
                                                 "expected": car["version"], "label": label}])
            outcomes[label] = "saved"
        except ConflictError:
            outcomes[label] = "conflict"

    threads = [threading.Thread(target=edit, args=(label,)) for label in labels]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    (winner,) = [label for label, what in outcomes.items() if what == "saved"]
    assert sorted(outcomes) == labels
    assert [a["label"] for a in _current(service, "a")] == [winner]
    assert [h["after"]["label"] for h in service.item_history("d", "a")] == [winner]


def test_a_geometry_update_keeps_the_fields_it_does_not_name(service: Service,
                                                            tmp_path: Path) -> None:
    _setup(service, tmp_path)
    service.annotate("d", [KeypointsAnnotation(
        "person", [Keypoint(5, 5), Keypoint(8, 9)], names=["head", "hand"],
        skeleton=[[0, 1]], reference_id="b", annotation_id="k")])
    (person,) = service.get_item("d", reference_id="b")["annotations"]["keypoints"]
    moved = [{**p, "x": p["x"] + 1} for p in person["geometry"]["keypoints"]]
    result = service.edit_annotations("d", "b", [{
        "op": "update", "id": person["id"], "expected": person["version"],
        "geometry": {"keypoints": moved}}])
    after = result["edits"][0]["after"]["geometry"]
    assert after["keypoints"] == moved
    assert after["names"] == ["head", "hand"] and after["skeleton"] == [[0, 1]]


TRIANGLE = [{"x": 10.0, "y": 10.0}, {"x": 50.0, "y": 10.0}, {"x": 30.0, "y": 40.0}]


def _polygon_item(service: Service, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Item "a" (100×80) with a triangle and a two-point line; their JSON."""
    (image,) = make_images(tmp_path / "img", 1, size=(100, 80))
    service.create_dataset("d")
    service.append("d", [DatasetItem(str(image), "a")])
    service.annotate("d", [
        PolygonAnnotation("roof", TRIANGLE, reference_id="a", annotation_id="tri"),
        LineAnnotation("lane", [(1, 1), (20, 30)], reference_id="a", annotation_id="lane")])
    labels = {a["annotation_id"]: a for a in _current(service, "a")}
    return labels["tri"], labels["lane"]


def test_polygon_vertices_move_insert_delete_and_undo(service: Service, tmp_path: Path) -> None:
    tri, _ = _polygon_item(service, tmp_path)
    moved = [{"x": 12, "y": 8}, *TRIANGLE[1:]]
    step = service.edit_annotations("d", "a", [{"op": "update", "id": tri["id"],
                                                "expected": tri["version"],
                                                "geometry": {"vertices": moved}}])["edits"][0]
    assert step["after"]["geometry"]["vertices"] == moved
    assert step["after"]["area"] == 590.0  # recomputed (shoelace) for the new shape
    # A vertex inserted on the first edge.
    square = [moved[0], {"x": 30.5, "y": 9.25}, *moved[1:]]
    step2 = service.edit_annotations("d", "a", [{
        "op": "update", "id": tri["id"], "expected": step["version"],
        "geometry": {"vertices": square}}])["edits"][0]
    assert len(step2["after"]["geometry"]["vertices"]) == 4
    assert step2["after"]["geometry"]["vertices"][1] == {"x": 30.5, "y": 9.25}
    history = service.item_history("d", "a")
    assert [len(h["after"]["geometry"]["vertices"]) for h in history] == [4, 3]
    assert history[1]["before"]["geometry"]["vertices"] == TRIANGLE
    # Undo, newest first: back to the stored triangle exactly, its area too.
    undo = service.edit_annotations("d", "a", [step2["inverse"]])["edits"][0]
    back = service.edit_annotations("d", "a", [{**step["inverse"],
                                                "expected": undo["version"]}])["edits"][0]
    (now,) = [a for a in _current(service, "a") if a["id"] == tri["id"]]
    assert now["geometry"]["vertices"] == TRIANGLE and now["area"] == tri["area"]
    assert back["after"]["version"] == now["version"]
    assert service.insights("d") == service.scan_insights("d")


@pytest.mark.parametrize(("geometry", "why"), [
    ({"vertices": TRIANGLE[:2]}, "a polygon needs at least 3 vertices, got 2"),
    ({"vertices": [{"x": float("nan"), "y": 1}, *TRIANGLE[1:]]}, "vertex #0: x and y must be"),
    ({"vertices": [*TRIANGLE[:2], {"x": 1, "y": float("inf")}]}, "vertex #2: x and y must be"),
    ({"vertices": [{"x": "12", "y": 1}, *TRIANGLE[1:]]}, "finite numbers"),
    ({"vertices": [{"x": True, "y": 1}, *TRIANGLE[1:]]}, "finite numbers"),
    ({"vertices": [{"x": 10 ** 400, "y": 1}, *TRIANGLE[1:]]}, "finite numbers"),
    ({"vertices": [[12, 10], *TRIANGLE[1:]]}, 'vertex #0 must be {"x": …, "y": …}'),
    ({"vertices": [{"x": 1, "y": 2, "z": 3}, *TRIANGLE[1:]]}, "vertex #0 must be"),
    ({"vertices": {"x": 1, "y": 2}}, "vertices must be a list"),
    ({"vertices": None}, "vertices must be a list"),
    ({"x": 5}, "a polygon's geometry takes vertices, not x"),
    ({"vertices": [{"x": 500, "y": 1}, *TRIANGLE[1:]]}, "outside the 100×80 image"),
])
def test_bad_polygon_geometry_is_refused_naming_the_edit(service: Service, tmp_path: Path,
                                                         geometry: dict[str, Any],
                                                         why: str) -> None:
    tri, _ = _polygon_item(service, tmp_path)
    rows = (_count(service, t.annotation_versions), _count(service, t.annotation_edits))
    with pytest.raises(BatchError) as caught:
        service.edit_annotations("d", "a", [{"op": "update", "id": tri["id"],
                                             "expected": tri["version"], "geometry": geometry}])
    assert "edit #0: " in str(caught.value) and why in str(caught.value)
    assert (_count(service, t.annotation_versions), _count(service, t.annotation_edits)) == rows
    (now,) = [a for a in _current(service, "a") if a["id"] == tri["id"]]
    assert now["geometry"]["vertices"] == TRIANGLE


def test_lines_keep_two_points_and_adds_are_checked_too(service: Service,
                                                       tmp_path: Path) -> None:
    _, lane = _polygon_item(service, tmp_path)
    with pytest.raises(BatchError, match="a line needs at least 2 vertices, got 1"):
        service.edit_annotations("d", "a", [{"op": "update", "id": lane["id"],
                                             "expected": lane["version"],
                                             "geometry": {"vertices": [{"x": 1, "y": 1}]}}])
    with pytest.raises(BatchError, match=r"edit #1: vertex #1: x and y must be finite"):
        service.edit_annotations("d", "a", [
            {"op": "add", "annotation": {"type": "line", "label": "kerb", "geometry": {
                "vertices": [{"x": 1, "y": 1}, {"x": 5, "y": 5}]}}},
            {"op": "add", "annotation": {"type": "polygon", "label": "zone", "geometry": {
                "vertices": [{"x": 1, "y": 1}, {"x": 5, "y": None}, {"x": 9, "y": 1}]}}}])
    with pytest.raises(BatchError, match="a box's geometry takes height, width, x, y, not"):
        box = service.edit_annotations("d", "a", [{"op": "add", "annotation": {
            "type": "box", "label": "car", "geometry": {"x": 1, "y": 1, "width": 5,
                                                        "height": 5}}}])["edits"][0]
        service.edit_annotations("d", "a", [{"op": "update", "id": box["id"],
                                             "expected": box["version"],
                                             "geometry": {"vertices": TRIANGLE}}])
    drawn = service.edit_annotations("d", "a", [{"op": "add", "annotation": {
        "type": "polygon", "label": "zone", "geometry": {"vertices": TRIANGLE}}}])["edits"][0]
    assert drawn["after"]["type"] == "polygon" and drawn["after"]["area"] == 600.0
    assert drawn["inverse"] == {"op": "delete", "id": drawn["id"], "expected": drawn["version"]}
