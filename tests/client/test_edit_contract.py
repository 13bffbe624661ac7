"""Interactive label edits, every backend: one call per edit, a 409 for a stale state, a
422 naming the bad operation, history with who/when/before/after, undo and redo by
inverse edits, and runs scored against a tagged version that edits do not move."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ocula import BoxAnnotation, BoxPrediction, DatasetItem, PolygonAnnotation
from ocula.client.client import Client
from ocula.client.http import HttpBackend
from ocula.core.services.edits import local_author
from ocula.errors import BatchError, ConflictError, NotFoundError, ValidationError
from tests.conftest import make_images

REF = "cam 1/frame 7.jpg"  # a slash and a space must survive every transport


def _dataset(c: Client, tmp_path: Path, n: int = 2) -> Any:
    paths = make_images(tmp_path / "imgs", n, size=(100, 80))
    ds = c.create_dataset("edits")
    ds.append([DatasetItem(str(p), REF if i == 0 else f"r{i}") for i, p in enumerate(paths)])
    ds.annotate([BoxAnnotation("car", 10, 10, 30, 20, reference_id=REF, annotation_id="car1",
                               metadata={"occluded": False}),
                 PolygonAnnotation("road", [{"x": 0, "y": 60}, {"x": 99, "y": 60},
                                            {"x": 99, "y": 79}],
                                   reference_id=REF, annotation_id="road1")])
    return ds


def _labels(ds: Any, ref: str = REF) -> list[dict[str, Any]]:
    """The item's current labels exactly as stored (ids, geometry, area, metadata), by
    id: a restored annotation is a new row, listed after older ones."""
    return sorted(ds._backend.list_annotations(ds.id, reference_ids=[ref]),
                  key=lambda a: a["id"])


def _scores(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics without the version they name."""
    return {k: v for k, v in metrics.items() if k != "annotation_version"}


def _by_label(item: Any) -> dict[str, dict[str, Any]]:
    return {a["label"]: a for a in item.labels()}


def test_each_operation_round_trips_and_undo_redo_restore_exactly(
        any_client: Client, tmp_path: Path) -> None:
    ds = _dataset(any_client, tmp_path)
    item = ds.item(REF)
    original = _labels(ds)
    car = _by_label(item)["car"]
    assert car["version"] == 1 and car["annotation_id"] == "car1"

    drawn = item.add(BoxAnnotation("person", 50, 5, 12, 40, reference_id="ignored"))
    assert drawn["version"] == 2 and drawn["reference_id"] == REF
    (added,) = drawn["edits"]
    assert added["op"] == "add" and added["before"] is None
    assert added["after"]["geometry"] == {"x": 50, "y": 5, "width": 12, "height": 40}
    assert added["after"]["area"] == 480 and added["after"]["version"] == 2
    assert added["inverse"] == {"op": "delete", "id": added["id"], "expected": 2}

    moved = item.update(car["id"], car["version"],
                        geometry={"x": 20, "y": 15, "width": 40, "height": 25})
    after = moved["edits"][0]["after"]
    assert after["id"] == car["id"] and after["label"] == "car"
    assert after["area"] == 1000 and after["metadata"] == {"occluded": False}
    assert moved["edits"][0]["inverse"] == {
        "op": "update", "id": car["id"], "expected": 3,
        "geometry": car["geometry"], "area": car["area"]}
    nudged = item.update(car["id"], after["version"], geometry={"x": 21})
    assert nudged["edits"][0]["after"]["geometry"] == {"x": 21, "y": 15, "width": 40,
                                                       "height": 25}
    relabelled = item.update(car["id"], nudged["version"], label="truck")
    assert relabelled["edits"][0]["inverse"]["label"] == "car"
    assert _by_label(item)["truck"]["geometry"]["width"] == 40

    gone = item.delete(added["id"], added["after"]["version"])
    assert gone["edits"][0]["after"] is None
    assert "person" not in _by_label(item)
    back = item.undo(gone)  # a restore: the same annotation, same id, same content
    assert back["edits"][0]["op"] == "restore"
    assert _by_label(item)["person"]["id"] == added["id"]

    # Several operations in one call: one version, undone and redone whole.
    labels = _by_label(item)
    batch = item.edit([
        {"op": "update", "id": labels["truck"]["id"], "expected": labels["truck"]["version"],
         "label": "bus", "metadata": {"occluded": True}},
        {"op": "delete", "id": labels["road"]["id"], "expected": labels["road"]["version"]},
        {"op": "add", "annotation": {"type": "box", "label": "sign",
                                     "geometry": {"x": 1, "y": 1, "width": 5, "height": 5}}},
    ], message="review pass")
    assert {e["version"] for e in batch["edits"]} == {batch["version"]}
    edited = _labels(ds)
    assert sorted(a["label"] for a in edited) == ["bus", "person", "sign"]
    undone = item.undo(batch)
    assert sorted(a["label"] for a in _labels(ds)) == ["person", "road", "truck"]
    item.undo(undone)  # redo
    assert _labels(ds) == edited

    # Undo every edit, newest first, then redo them all: exactly the labels of each end.
    steps = [drawn, moved, nudged, relabelled, gone, back, batch]
    undos = [item.undo(step) for step in reversed(steps)]
    assert _labels(ds) == original
    for undo in reversed(undos):
        item.undo(undo)
    assert _labels(ds) == edited
    # Labels of another item and the first version are untouched throughout.
    assert _labels(ds, "r1") == []
    assert [a["label"] for a in ds._backend.list_annotations(ds.id, version=1)] == [
        "car", "road"]


def test_history_records_author_op_before_and_after(any_client: Client,
                                                    tmp_path: Path) -> None:
    ds = _dataset(any_client, tmp_path)
    item = ds.item(REF)
    car = _by_label(item)["car"]
    first = item.update(car["id"], car["version"], label="van", message="it's a van")
    second = item.delete(car["id"], first["version"])
    author = "tests" if isinstance(any_client._backend, HttpBackend) else local_author()
    assert first["author"] == second["author"] == author

    history = item.history()
    assert [(h["op"], h["version"]) for h in history] == [("delete", 3), ("update", 2)]
    newest, oldest = history
    assert {h["author"] for h in history} == {author}
    assert oldest["message"] == "it's a van" and newest["message"] is None
    assert oldest["before"]["label"] == "car" and oldest["after"]["label"] == "van"
    assert oldest["before"]["version"] == 1 and oldest["after"]["version"] == 2
    assert newest["before"] == oldest["after"] and newest["after"] is None
    assert newest["id"] == oldest["id"] == car["id"]
    assert newest["created_at"] >= oldest["created_at"]
    assert item.history(limit=1) == history[:1]
    assert ds.item("r1").history() == []
    # The edits are versions like any other write, named with their message.
    assert [v["message"] for v in ds.versions()] == [None, "it's a van", None]
    with pytest.raises(NotFoundError):
        ds.item("no such item").history()
    with pytest.raises(ValidationError):
        item.history(limit=0)


def test_a_stale_edit_is_a_conflict_and_writes_nothing(any_client: Client,
                                                       tmp_path: Path) -> None:
    ds = _dataset(any_client, tmp_path)
    item = ds.item(REF)
    seen = _by_label(item)  # two people load the item
    road = seen["road"]
    item.update(seen["car"]["id"], seen["car"]["version"], label="truck")  # one saves
    before, versions = _labels(ds), ds.versions()

    with pytest.raises(ConflictError) as err:  # the other saves on what they loaded
        item.edit([{"op": "update", "id": road["id"], "expected": road["version"],
                    "label": "street"},
                   {"op": "update", "id": seen["car"]["id"],
                    "expected": seen["car"]["version"], "label": "bus"}])
    assert "edit #1" in err.value.message
    info = err.value.detail
    assert info["edit"] == 1 and info["expected"] == 1 and info["version"] == 2
    assert info["current"]["label"] == "truck"
    with pytest.raises(ConflictError):
        item.delete(seen["car"]["id"], seen["car"]["version"])
    # A restore of something not deleted, and an edit of a deleted annotation, too.
    with pytest.raises(ConflictError):
        item.edit([{"op": "restore", "id": road["id"], "expected": road["version"]}])
    gone = item.delete(road["id"], road["version"])
    with pytest.raises(ConflictError):  # an edit of what another user deleted
        item.update(road["id"], road["version"], label="street")
    restored = item.undo(gone)
    with pytest.raises(ConflictError):  # a restore of what is not deleted
        item.edit([{"op": "restore", "id": road["id"], "expected": restored["version"]}])
    before, versions = _labels(ds), ds.versions()
    # Adding an annotation id the item already has is a conflict as well.
    with pytest.raises(ConflictError):
        item.add({"type": "box", "label": "x", "annotation_id": "car1",
                  "geometry": {"x": 1, "y": 1, "width": 2, "height": 2}})
    assert _labels(ds) == before and ds.versions() == versions
    assert [h["op"] for h in item.history()] == ["restore", "delete", "update"]


def test_a_bad_operation_writes_nothing_and_is_named(any_client: Client,
                                                     tmp_path: Path) -> None:
    ds = _dataset(any_client, tmp_path)
    item = ds.item(REF)
    car = _by_label(item)["car"]
    before, versions = _labels(ds), ds.versions()
    good = {"op": "update", "id": car["id"], "expected": car["version"], "label": "truck"}
    outside = {"op": "add", "annotation": {"type": "box", "label": "p", "geometry": {
        "x": 90, "y": 10, "width": 50, "height": 10}}}
    with pytest.raises(BatchError) as err:
        item.edit([good, outside])
    assert "edit #1" in err.value.message
    assert [e.detail.get("edit") for e in err.value.errors] == [1]

    bad_batches: list[list[Any]] = [
        [good, {"op": "explode"}],
        [good, "not an object"],
        [{"op": "update", "id": car["id"], "label": "x"}],  # no expected token
        [{"op": "update", "id": car["id"], "expected": "1", "label": "x"}],
        [{"op": "update", "id": car["id"], "expected": car["version"]}],  # no change
        [{"op": "update", "id": car["id"], "expected": car["version"], "label": "car"}],
        [{"op": "update", "id": car["id"], "expected": car["version"], "label": "  "}],
        [{"op": "update", "id": car["id"], "expected": car["version"],
          "geometry": {"x": float("nan"), "y": 1, "width": 1, "height": 1}}],
        [{"op": "update", "id": car["id"], "expected": car["version"], "colour": "red"}],
        [good, {**good, "label": "bus"}],  # one annotation twice
        [{"op": "add", "annotation": {"type": "box", "label": "p"}}],  # no geometry
        [],
    ]
    for edits in bad_batches:
        with pytest.raises(ValidationError):
            item.edit(edits)
    with pytest.raises(NotFoundError):  # an id of another item, or none
        item.edit([good, {"op": "delete", "id": "ann_nope", "expected": 1}])
    with pytest.raises(NotFoundError):
        item.accept_prediction("pred_nope")
    with pytest.raises(NotFoundError):
        ds.item("missing").add({"type": "box", "label": "p", "geometry": {
            "x": 1, "y": 1, "width": 2, "height": 2}})
    assert _labels(ds) == before and ds.versions() == versions
    assert item.history() == []


def test_accepting_a_false_positive_makes_it_a_true_positive(any_client: Client,
                                                             tmp_path: Path) -> None:
    """The Nucleus tutorial's 'correct the missing annotations': a confident false
    positive is a person nobody labelled; accept it, re-commit, and it counts as a TP,
    while the run scored against the tagged original labels does not move."""
    ds = _dataset(any_client, tmp_path)
    ds.tag_version("original")
    model = any_client.add_model("det", "det")
    run = model.create_run("det-1", ds, [
        BoxPrediction("car", 11, 10, 30, 20, reference_id=REF, confidence=0.9),
        BoxPrediction("person", 60, 10, 15, 45, reference_id=REF, confidence=0.95)])
    committed = run.commit()
    assert (committed["tp"], committed["fp"]) == (1, 1)
    (fp,) = run.failures("fp")
    assert fp["label"] == "person"
    at_original = _scores(run.metrics(annotation_version="original"))
    assert _scores(run.metrics()) == at_original

    item = ds.item(REF)
    accepted = item.accept_prediction(fp["id"])
    (outcome,) = accepted["edits"]
    assert outcome["op"] == "accept_prediction"
    assert outcome["after"]["label"] == "person" and outcome["after"]["annotation_id"] == (
        f"accepted:{fp['id']}")
    assert outcome["after"]["geometry"] == {"x": 60, "y": 10, "width": 15, "height": 45}
    assert item.history()[0]["prediction_id"] == fp["id"]
    with pytest.raises(ConflictError):  # the same prediction accepted twice
        item.accept_prediction(fp["id"])

    recommitted = run.commit()
    assert (recommitted["tp"], recommitted["fp"]) == (2, 0)
    assert run.failures("fp") == []
    assert _scores(run.metrics(annotation_version="original")) == at_original
    moved = _scores(run.metrics())
    assert moved["stats"]["AP50"] > at_original["stats"]["AP50"]
    # Tag the corrected labels too: the two versions side by side stay as they were.
    ds.tag_version("corrected")
    item.delete(outcome["id"], outcome["version"])
    assert _scores(run.metrics(annotation_version="corrected")) == moved
    assert _scores(run.metrics(annotation_version="original")) == at_original
    assert _scores(run.metrics()) == at_original  # the deletion undid the correction
    assert {v["name"] for v in ds.versions()} >= {"original", "corrected"}
    table = run.version_table(["original", "corrected"])
    assert [(row["version"], row["tp"], row["fp"], row["fn"]) for row in table] == [
        ("original", 1, 1, 1), ("corrected", 2, 0, 1)]
    assert table[0]["AP"] == at_original["stats"]["AP"]
    assert table[1]["AP50"] == moved["stats"]["AP50"] and table[1]["precision"] == 1.0
