"""One flow, every backend: the same calls give the same results and the same typed
errors whether the catalog is embedded or behind ``ocula serve``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocula import (
    BoxAnnotation,
    BoxPrediction,
    CategoryAnnotation,
    DatasetItem,
    Keypoint,
    KeypointsAnnotation,
    Point,
    PolygonAnnotation,
)
from ocula.client.client import Client
from ocula.errors import (
    AmbiguousNameError,
    BatchError,
    ConflictError,
    GeometryError,
    ImageError,
    NotFoundError,
    ValidationError,
)
from tests.conftest import make_images

# Reference ids with a slash, spaces and a percent sign must survive every transport.
REFS = ["cam 1/frame 0001.jpg", "cam 1/frame 0002.jpg", "plain", "50% off", "ünïcode"]


def _items(tmp_path: Path) -> list[DatasetItem]:
    paths = make_images(tmp_path / "imgs", len(REFS), size=(80, 60))
    return [DatasetItem(str(p), ref, metadata={"i": i, "weather": "rain" if i % 2 else "sun"})
            for i, (p, ref) in enumerate(zip(paths, REFS, strict=True))]


def test_whole_flow(any_client: Client, tmp_path: Path) -> None:
    c = any_client
    ds = c.create_dataset("street", metadata={"owner": "qa"})
    assert c.get_dataset("street") == ds
    assert [d.name for d in c.datasets] == ["street"]

    first = ds.append(_items(tmp_path))
    assert first == {"new_items": 5, "updated_items": 0, "ignored_items": 0, "errors": []}
    again = ds.append(_items(tmp_path))
    assert again["ignored_items"] == 5 and again["new_items"] == 0
    assert len(ds) == 5
    items = ds.items
    assert [i.reference_id for i in items] == REFS
    assert items[0].width == 80 and items[0].height == 60
    assert items[1].metadata == {"i": 1, "weather": "rain"}
    assert Path(items[0].image_location).name == "img_0000.jpg"
    assert [i.reference_id for i in ds.items_iter(page_size=2)] == REFS

    anns = [
        BoxAnnotation("car", 10, 10, 20, 15, reference_id=REFS[0], annotation_id="b1"),
        PolygonAnnotation("road", [Point(0, 0), Point(40, 0), Point(40, 30)],
                          reference_id=REFS[0], annotation_id="p1"),
        KeypointsAnnotation("person", [Keypoint(5, 5), Keypoint(visible=False)],
                            names=["head", "tail"], skeleton=[[0, 1]],
                            reference_id=REFS[1], annotation_id="k1"),
        CategoryAnnotation("day", reference_id=REFS[2], annotation_id="c1"),
    ]
    result = ds.annotate(anns)
    assert result["annotations_processed"] == 4 and result["version"] == 1
    loc = ds.refloc(REFS[0])
    assert loc["item"].reference_id == REFS[0]
    assert sorted(loc["annotations"]) == ["box", "polygon"]
    assert loc["annotations"]["box"][0].x == 10
    assert ds.loc(loc["item"].item_id)["item"].reference_id == REFS[0]
    assert ds.iloc(3)["item"].reference_id == REFS[3]
    kp = ds.refloc(REFS[1])["annotations"]["keypoints"][0]
    assert kp.names == ["head", "tail"] and kp.keypoints[1].visible is False

    fixed = BoxAnnotation("truck", 10, 10, 20, 15, reference_id=REFS[0], annotation_id="b1")
    assert ds.annotate([fixed], update=True)["annotations_replaced"] == 1
    assert [v["version"] for v in ds.versions()] == [1, 2]
    ds.tag_version("v1", 1)
    old = {a.annotation_id: a.label for a in ds.annotations(version="v1")}
    assert old["b1"] == "car"
    assert {a.label for a in ds.annotations(reference_ids=[REFS[0]])} == {"truck", "road"}
    ds.update_item_metadata({REFS[2]: {"checked": True}})
    assert ds.refloc(REFS[2])["item"].metadata == {"i": 2, "weather": "sun", "checked": True}

    sl = ds.create_slice("hard", [REFS[0], REFS[3]], description="look at these")
    assert sl.info()["length"] == 2 and sl.info()["description"] == "look at these"
    assert sl.reference_ids == [REFS[0], REFS[3]]
    assert sl.append([REFS[4]])["added"] == 1
    assert sl.remove([REFS[3]])["removed"] == 1
    assert [s.id for s in ds.slices] == [sl.id]
    assert ds.get_slice("hard").id == sl.id and c.get_slice(sl.id).name == "hard"

    model = c.add_model("detector", "org/detector:v1", metadata={"arch": "ssd"})
    assert c.get_model("org/detector:v1").id == model.id
    preds = [BoxPrediction("car", 11, 10, 20, 15, reference_id=REFS[0], confidence=0.9,
                           class_pdf={"car": 0.9, "truck": 0.1}, annotation_id="x1"),
             BoxPrediction("car", 1, 1, 5, 5, reference_id=REFS[1], confidence=0.2)]
    run = model.create_run("run-1", ds, preds)
    assert run.info()["prediction_count"] == 2
    assert run.predict([BoxPrediction("bus", 2, 2, 4, 4, reference_id=REFS[2],
                                      confidence=0.5)])["predictions_processed"] == 1
    got = run.predictions([REFS[0]])
    assert got[0].class_pdf == {"car": 0.9, "truck": 0.1} and got[0].confidence == 0.9
    assert [r.id for r in ds.model_runs] == [run.id] == [r.id for r in model.runs]
    assert ds.get_run("run-1").id == run.id
    with_preds = ds.refloc(REFS[0], with_predictions=True)
    assert with_preds["predictions"][run.id][0].label == "car"

    assert ds.delete_item(REFS[0])["reference_id"] == REFS[0]
    assert len(ds) == 4
    assert sl.reference_ids == [REFS[4]]
    with pytest.raises(NotFoundError):
        ds.refloc(REFS[0])
    assert ds.delete_annotations(reference_ids=[REFS[1]])["annotations_deleted"] == 1
    assert ds.info()["annotation_count"] == 1
    assert c.delete_model("org/detector:v1")["deleted"] == model.id
    assert c.delete_dataset(ds.id) == {"deleted": ds.id}
    assert c.datasets == []


def test_bad_inputs_raise_the_same_typed_errors(any_client: Client, tmp_path: Path) -> None:
    c = any_client
    ds = c.create_dataset("d")
    with pytest.raises(ValidationError):
        c.create_dataset("  ")
    with pytest.raises(NotFoundError):
        c.get_dataset("missing")
    with pytest.raises(NotFoundError):
        c.get_slice("slc_missing")

    good = make_images(tmp_path / "ok", 1)[0]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good.read_bytes()[:200])
    missing = tmp_path / "nowhere.jpg"
    with pytest.raises(BatchError) as err:
        ds.append([DatasetItem(str(good), "a"), DatasetItem(str(broken), "b"),
                   DatasetItem(str(missing), "c")])
    assert {e.reference_id for e in err.value.errors} == {"b", "c"}
    assert all(isinstance(e, ImageError) for e in err.value.errors)
    assert len(ds) == 0
    skipped = ds.append([DatasetItem(str(good), "a"), DatasetItem(str(broken), "b")],
                        on_error="skip")
    assert skipped["new_items"] == 1 and [e["reference_id"] for e in skipped["errors"]] == ["b"]
    with pytest.raises(BatchError):
        ds.append([DatasetItem(str(good), "x"), DatasetItem(str(good), "x")])

    with pytest.raises(BatchError) as err:
        ds.annotate([BoxAnnotation("car", 1, 1, -5, 5, reference_id="a"),
                     BoxAnnotation("car", 1, 1, 5, 5, reference_id="ghost"),
                     BoxAnnotation("car", float("nan"), 1, 5, 5, reference_id="a")])
    kinds = [type(e) for e in err.value.errors]
    assert kinds == [GeometryError, NotFoundError, GeometryError]
    with pytest.raises(ValidationError):
        ds.annotate(["not an annotation"])
    assert ds.info()["annotation_count"] == 0 and ds.versions() == []
    with pytest.raises(ValidationError):
        ds.iloc(-1)
    with pytest.raises(NotFoundError):
        ds.iloc(7)
    with pytest.raises(NotFoundError):
        ds.create_slice("s", ["a", "ghost"])
    with pytest.raises(NotFoundError):
        ds.annotations(version="no-such-version")

    model = c.add_model("m", "m1")
    with pytest.raises(ConflictError):
        c.add_model("other", "m1")
    with pytest.raises(BatchError):
        model.create_run("r", ds, [BoxAnnotation("car", 1, 1, 5, 5, reference_id="a")])
    with pytest.raises(BatchError):
        model.create_run("r", ds, [BoxPrediction("car", 1, 1, 5, 5, reference_id="a",
                                                 confidence=1.5)])
    model.create_run("r", ds)
    with pytest.raises(ConflictError):
        model.create_run("r", ds)
    with pytest.raises(NotFoundError):
        c.get_model_run("run_missing")


def test_commit_metrics_and_failures(any_client: Client, tmp_path: Path) -> None:
    """Evaluation gives the same answers embedded and over HTTP."""
    from ocula import BoxAnnotation, BoxPrediction, DatasetItem, compare, compare_items

    paths = make_images(tmp_path / "eval-imgs", 4, size=(100, 80))
    ds = any_client.create_dataset("eval")
    ds.append([DatasetItem(str(p), f"r{i}") for i, p in enumerate(paths)])
    ds.annotate([BoxAnnotation("car", 10, 10, 30, 20, reference_id=f"r{i}") for i in range(4)]
                + [BoxAnnotation("person", 60, 10, 10, 30, reference_id="r0")])
    ds.tag_version("v1")
    ds.create_slice("test", ["r0", "r1"])
    model = any_client.add_model("m", "m")
    run = model.create_run("m", ds, [
        BoxPrediction("car", 11, 10, 30, 20, reference_id="r0", confidence=0.9),
        BoxPrediction("car", 10, 10, 30, 20, reference_id="r1", confidence=0.8),
        BoxPrediction("truck", 10, 10, 30, 20, reference_id="r2", confidence=0.7),
        BoxPrediction("car", 70, 50, 20, 20, reference_id="r3", confidence=0.95)])
    res = run.commit()
    assert (res["tp"], res["fp"], res["fn"]) == (2, 2, 3)
    assert res["unknown_labels"] == ["truck"]
    res = run.commit({"allowed_label_matches": [{"ground_truth_label": "car",
                                                 "model_prediction_label": "truck"}]},
                     iou_threshold=0.6)
    assert (res["tp"], res["fp"], res["fn"]) == (3, 1, 2) and res["iou_threshold"] == 0.6
    m = run.metrics(slice="test", annotation_version="v1", confidence_threshold=0.85)
    assert m["slice"] == "test" and m["operating_point"]["tp"] == 1
    assert set(m["stats"]) >= {"AP", "AP50", "AP75", "AR100"}
    fps = run.failures("fp")
    assert [f["reference_id"] for f in fps] == ["r3"] and fps[0]["iou"] == 0
    assert [f["reference_id"] for f in run.failures("fn")] == ["r3", "r0"]
    assert run.failure_summary()["false_positives"]["background"] == 1
    other = model.create_run("m2", ds, [
        BoxPrediction("car", 10, 10, 30, 20, reference_id=f"r{i}", confidence=0.9)
        for i in range(4)])
    other.commit()
    diff = compare(run, other)
    # r2 is right for both (truck may match car), r0 wrong for both (person missed).
    assert diff["only_b_right"] == ["r3"] and diff["only_a_right"] == []
    assert diff["delta"]["AP"] > 0
    assert (diff["only_a_right_count"], diff["only_b_right_count"]) == (0, 1)
    car = next(r for r in diff["per_class"] if r["label"] == "car")
    assert car["delta"]["ap"] == pytest.approx(car["b"]["ap"] - car["a"]["ap"])
    assert compare(run, other, limit=0)["only_b_right"] == []
    fixed = compare_items(run, other, only="b", page_size=1)
    assert [it["reference_id"] for it in fixed["items"]] == ["r3"]
    assert fixed["total"] == 1 and fixed["next_cursor"] is None
    assert compare_items(run, other, only="a")["items"] == []
    with pytest.raises(NotFoundError):
        run.metrics(slice="nope")


def test_segm_commit_and_metrics(any_client: Client, tmp_path: Path) -> None:
    """Mask metrics (iou_type="segm") give the same answers embedded and over HTTP."""
    import numpy as np

    from ocula import MaskAnnotation, MaskPrediction, PolygonPrediction

    def square(y: int, x: int, size: int) -> np.ndarray:
        m = np.zeros((60, 80), dtype=bool)
        m[y:y + size, x:x + size] = True
        return m

    paths = make_images(tmp_path / "segm-imgs", 2, size=(80, 60))
    ds = any_client.create_dataset("segm")
    ds.append([DatasetItem(str(p), f"s{i}") for i, p in enumerate(paths)])
    tri = [Point(40, 10), Point(70, 10), Point(55, 40)]
    ds.annotate([MaskAnnotation("car", square(10, 10, 10), reference_id="s0"),
                 PolygonAnnotation("person", tri, reference_id="s0"),
                 MaskAnnotation("car", square(0, 0, 40), reference_id="s1", iscrowd=True),
                 BoxAnnotation("car", 50, 40, 10, 10, reference_id="s1")])  # not segm GT
    model = any_client.add_model("seg", "seg")
    run = model.create_run("seg", ds, [
        MaskPrediction("car", square(10, 10, 10), reference_id="s0", confidence=0.9),
        PolygonPrediction("person", tri, reference_id="s0", confidence=0.8),
        MaskPrediction("car", square(5, 5, 10), reference_id="s1", confidence=0.95),  # in crowd
        MaskPrediction("car", square(45, 60, 10), reference_id="s1", confidence=0.7)])
    res = run.commit(iou_type="segm")
    assert (res["tp"], res["fp"], res["fn"]) == (2, 1, 0)
    assert res["iou_type"] == "segm" and res["ground_truth"] == 3
    m = run.metrics(iou_type="segm", confidence_threshold=0.5)
    assert m["iou_type"] == "segm" and m["stats"]["AP"] == pytest.approx(1.0)
    assert m["operating_point"]["tp"] == 2 and m["operating_point"]["fp"] == 1
    assert [f["reference_id"] for f in run.failures("fp")] == ["s1"]
    assert run.failure_summary()["iou_type"] == "segm"
    boxes = model.create_run("boxes", ds, [
        BoxPrediction("car", 10, 10, 10, 10, reference_id="s0", confidence=0.9)])
    with pytest.raises(ValidationError, match="no mask or polygon predictions"):
        boxes.commit(iou_type="segm")
    with pytest.raises(ValidationError):
        run.metrics(iou_type="masks")


def test_keypoints_commit_and_metrics(any_client: Client, tmp_path: Path) -> None:
    """Keypoint metrics (iou_type="keypoints", OKS) embedded and over HTTP, with sigmas
    given at commit and kept for metrics; a COCO record's box part gives its area."""
    from ocula import KeypointsAnnotation, KeypointsPrediction

    paths = make_images(tmp_path / "kp-imgs", 1, size=(80, 60))
    ds = any_client.create_dataset("kp")
    ds.append([DatasetItem(str(paths[0]), "k0")])
    hand = [(10.0, 10.0), (20.0, 12.0), (30.0, 30.0)]
    ds.annotate([BoxAnnotation("hand", 5, 5, 30, 30, reference_id="k0", annotation_id="1"),
                 KeypointsAnnotation("hand", hand, reference_id="k0",
                                     annotation_id="1/keypoints")])
    model = any_client.add_model("kp", "kp")
    run = model.create_run("kp", ds, [
        KeypointsPrediction("hand", [(x + 1, y) for x, y in hand], reference_id="k0",
                            confidence=0.9),
        KeypointsPrediction("hand", [(60, 50), (61, 50), (62, 51)], reference_id="k0",
                            confidence=0.5)])
    with pytest.raises(ValidationError, match="3 keypoints"):
        run.commit(iou_type="keypoints")  # COCO's sigmas are for 17 keypoints
    res = run.commit(iou_type="keypoints", kpt_sigmas=[0.05, 0.05, 0.05])
    assert (res["tp"], res["fp"], res["fn"], res["ground_truth"]) == (1, 1, 0, 1)
    m = run.metrics(iou_type="keypoints")
    assert m["iou_type"] == "keypoints" and list(m["stats"]) == [
        "AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]
    # OKS of a 1 px shift on a 900 px² hand with sigma .05: exp(-1/(2·900·.01)) ≈ .946.
    [tp] = run.failures("low_iou")
    assert tp["iou"] == pytest.approx(0.9460, abs=1e-4)
    assert m["stats"]["AP"] > 0.5
    with pytest.raises(ValidationError, match="positive numbers|greater than 0"):
        run.commit(iou_type="keypoints", kpt_sigmas=[0.05, -1, 0.05])


def test_dataset_names_are_labels(any_client: Client) -> None:
    """Two datasets may share a name (as in Nucleus); a look-up by that name is refused
    with both ids, on every backend, and the ids still reach each one."""
    c = any_client
    a = c.create_dataset("shared")
    assert c.get_dataset("shared").id == a.id  # one dataset: the name finds it
    b = c.create_dataset("shared")
    assert a.id != b.id and {d.id for d in c.datasets} == {a.id, b.id}
    with pytest.raises(AmbiguousNameError) as caught:
        c.get_dataset("shared")
    assert isinstance(caught.value, ConflictError)
    assert caught.value.ids == [a.id, b.id]
    assert a.id in str(caught.value) and b.id in str(caught.value)
    assert c.get_dataset(b.id).name == "shared"
    c.delete_dataset(a.id)
    assert c.get_dataset("shared").id == b.id  # unambiguous again
