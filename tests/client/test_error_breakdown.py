"""TIDE's error breakdown of a run, embedded and over HTTP, on SQLite and PostgreSQL:
one constructed error of every type, named by the ids the app opens."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocula import BoxAnnotation, BoxPrediction, DatasetItem
from ocula.client.client import Client
from ocula.errors import NotFoundError, ValidationError
from tests.conftest import make_images

R = 101


def _run(client: Client, tmp_path: Path):  # noqa: ANN202 - a client ModelRun
    paths = make_images(tmp_path / "tide-imgs", 4, size=(200, 200))
    ds = client.create_dataset("tide")
    ds.append([DatasetItem(str(p), f"r{i}") for i, p in enumerate(paths)])
    ds.annotate([
        BoxAnnotation("car", 10, 10, 40, 40, reference_id="r0", annotation_id="g_loc"),
        BoxAnnotation("car", 100, 100, 40, 40, reference_id="r0", annotation_id="g_tp"),
        BoxAnnotation("person", 10, 10, 40, 40, reference_id="r1", annotation_id="g_cls"),
        BoxAnnotation("car", 10, 10, 40, 40, reference_id="r2", annotation_id="g_dupe"),
        BoxAnnotation("car", 100, 100, 40, 40, reference_id="r2", annotation_id="g_miss"),
    ])
    ds.tag_version("v1")
    ds.create_slice("first", ["r0", "r1"])
    model = client.add_model("det", "det")
    preds = [  # label, box, item, confidence, id
        ("car", (10, 10, 40, 12), "r0", 0.9, "p_loc"),  # IoU 0.3 with its own class: Loc
        ("car", (100, 100, 40, 40), "r0", 0.8, "p_tp1"),
        ("car", (10, 10, 40, 40), "r1", 0.85, "p_cls"),  # IoU 1 with a person: Cls
        ("car", (10, 10, 40, 12), "r1", 0.5, "p_both"),  # IoU 0.3 with a person: Both
        ("car", (10, 10, 40, 40), "r2", 0.7, "p_tp2"),
        ("car", (10, 10, 40, 36), "r2", 0.6, "p_dupe"),  # IoU 0.9, car already found
        ("car", (10, 10, 20, 20), "r3", 0.95, "p_bkg"),  # no ground truth there: Bkg
    ]
    run = model.create_run("det", ds, [
        BoxPrediction(label, *box, reference_id=ref, confidence=conf, annotation_id=pid)
        for label, box, ref, conf, pid in preds])
    run.commit()
    return run


def test_error_breakdown_names_every_error_by_its_ids(any_client: Client,
                                                      tmp_path: Path) -> None:
    run = _run(any_client, tmp_path)
    # Public ids -> the ids the test gave, from the committed run's failure lists.
    pred = {f["id"]: f["annotation_id"] for f in run.failures("fp", limit=100)}
    pred |= {f["id"]: f["annotation_id"] for f in run.failures("low_iou", limit=100)}
    ann = {f["id"]: f["annotation_id"] for f in run.failures("fn", limit=100)}

    out = run.error_breakdown()
    assert out["analysis"] == "tide" and out["model_run_id"] == run.id
    assert out["config"] == {"pos_threshold": 0.5, "background_threshold": 0.1,
                             "max_dets": 100}
    assert out["ap"] == run.metrics()["stats"]["AP50"]
    errors = out["errors"]
    named = {k: [pred.get(i) for i in e["prediction_ids"]] for k, e in errors.items()}
    assert named == {"cls": ["p_cls"], "loc": ["p_loc"], "both": ["p_both"],
                     "dupe": ["p_dupe"], "bkg": ["p_bkg"], "miss": [None]}
    assert [ann[i] for i in errors["miss"]["annotation_ids"]] == ["g_miss"]
    assert [ann[i] for i in errors["loc"]["annotation_ids"]] == ["g_loc"]
    assert [ann[i] for i in errors["cls"]["annotation_ids"]] == ["g_cls"]
    assert [pred[i] for i in errors["dupe"]["suppressor_ids"]] == ["p_tp2"]
    assert errors["bkg"]["items"] == ["r3"] and errors["miss"]["items"] == ["r2"]
    assert errors["loc"]["ious"][0] == pytest.approx(0.3)
    assert errors["loc"]["becomes_tp"] == [True] and errors["dupe"]["becomes_tp"] == [False]
    assert {k: e["count"] for k, e in errors.items()} == dict.fromkeys(errors, 1)
    special = out["special"]
    assert special["fp"]["count"] == 5 and special["fn"]["count"] == 3
    assert sorted(pred[i] for i in special["fp"]["prediction_ids"]) == [
        "p_bkg", "p_both", "p_cls", "p_dupe", "p_loc"]
    assert sorted(ann[i] for i in special["fn"]["annotation_ids"]) == [
        "g_cls", "g_loc", "g_miss"]

    # Car: 7 predictions ranked bkg(FP) loc(FP) cls(FP) tp1 tp2 dupe(FP) both(FP), 4 cars;
    # person: one box, never found.
    # Recall 1/4 at precision 1/4, then 2/4 at 2/5: interpolated, 2/5 up to recall 1/2.
    car = 51 * 0.4 / R
    assert out["ap"] == pytest.approx((car + 0.0) / 2)
    per = {c["label"]: c for c in out["per_class"]}
    assert per["car"]["counts"]["loc"] == 1 and per["person"]["counts"]["miss"] == 0
    assert per["car"]["num_ground_truth"] == 4 and per["person"]["ap"] == 0.0
    # Fixing Cls relabels p_cls to person: the person is found first (AP 1), and car
    # loses an FP ranked above its TPs.
    assert per["person"]["delta_ap"]["cls"] == pytest.approx(1.0)
    assert errors["cls"]["delta_ap"] > errors["both"]["delta_ap"] >= 0


def test_error_breakdown_on_a_slice_a_version_and_capped(any_client: Client,
                                                        tmp_path: Path) -> None:
    run = _run(any_client, tmp_path)
    part = run.error_breakdown(slice="first", annotation_version="v1")
    assert part["slice"] == "first" and isinstance(part["annotation_version"], int)
    assert {k: e["count"] for k, e in part["errors"].items()} == {
        "cls": 1, "loc": 1, "both": 1, "dupe": 0, "bkg": 0, "miss": 0}
    assert part["ap"] == run.metrics(slice="first")["stats"]["AP50"]
    capped = run.error_breakdown(max_ids=0)
    assert capped["special"]["fp"]["count"] == 5 and capped["special"]["fp"]["truncated"]
    assert capped["special"]["fp"]["prediction_ids"] == []
    assert capped["errors"]["miss"]["annotation_ids"] == []
    # A stricter background threshold turns the Loc and the Both (IoU 0.3) into Bkg,
    # and the car box the Loc pointed at into a Miss.
    strict = run.error_breakdown(background_threshold=0.35)
    assert {k: e["count"] for k, e in strict["errors"].items()} == {
        "cls": 1, "loc": 0, "both": 0, "dupe": 1, "bkg": 3, "miss": 2}


def test_error_breakdown_on_the_items_a_query_selects(any_client: Client,
                                                     tmp_path: Path) -> None:
    """An item query scopes the breakdown as it scopes the metrics: r1 (the one item
    with a person) holds the Cls and the Both, nothing else."""
    run = _run(any_client, tmp_path)
    query = 'has(label = "person")'
    out = run.error_breakdown(query=query)
    assert out["query"] == query and out["slice"] is None
    assert {k: e["count"] for k, e in out["errors"].items()} == {
        "cls": 1, "loc": 0, "both": 1, "dupe": 0, "bkg": 0, "miss": 0}
    assert out["special"]["fp"]["count"] == 2 and out["special"]["fn"]["count"] == 1
    assert out["ap"] == run.metrics(query=query)["stats"]["AP50"]
    both = run.error_breakdown(slice="first", query=query, annotation_version="v1")
    assert both["errors"] == out["errors"] and both["slice"] == "first"
    assert run.error_breakdown(query="")["query"] is None
    with pytest.raises(ValidationError):
        run.error_breakdown(query=f"{query} limit 1")


def test_error_breakdown_refuses_bad_input(any_client: Client, tmp_path: Path) -> None:
    run = _run(any_client, tmp_path)
    with pytest.raises(ValidationError, match="background_threshold < pos_threshold"):
        run.error_breakdown(pos_threshold=0.3, background_threshold=0.4)
    with pytest.raises(ValidationError):
        run.error_breakdown(iou_type="keypoints")
    with pytest.raises(NotFoundError):
        run.error_breakdown(slice="nope")
    with pytest.raises(NotFoundError):
        any_client.get_model_run(run.id)._backend.run_error_breakdown("run_missing")


def test_error_breakdown_of_masks(any_client: Client, tmp_path: Path) -> None:
    """``iou_type="segm"``: mask IoU; a mask inside a crowd region is no error."""
    import numpy as np

    from ocula import MaskAnnotation, MaskPrediction

    masks = np.zeros((4, 60, 80), dtype=bool)
    masks[0, :20, :20] = True  # a car
    masks[1, 30:, 40:70] = True  # a crowd of cars
    masks[2, :6, :20] = True  # inside the car: mask IoU 0.3 -> Loc
    masks[3, 35:45, 45:55] = True  # inside the crowd: absorbed
    ds = any_client.create_dataset("segm")
    ds.append([DatasetItem(str(make_images(tmp_path / "segm", 1, size=(80, 60))[0]), "s0")])
    ds.annotate([MaskAnnotation("car", masks[0], reference_id="s0"),
                 MaskAnnotation("car", masks[1], reference_id="s0", iscrowd=True)])
    run = any_client.add_model("seg", "seg").create_run("seg", ds, [
        MaskPrediction("car", masks[2], reference_id="s0", confidence=0.9),
        MaskPrediction("car", masks[3], reference_id="s0", confidence=0.8)])
    out = run.error_breakdown(iou_type="segm")
    assert out["iou_type"] == "segm"
    assert {k: e["count"] for k, e in out["errors"].items() if e["count"]} == {"loc": 1}
    assert out["errors"]["loc"]["ious"][0] == pytest.approx(0.3)
    assert out["ap"] == run.metrics(iou_type="segm")["stats"]["AP50"] == 0.0
    assert out["errors"]["loc"]["delta_ap"] == pytest.approx(1.0)
