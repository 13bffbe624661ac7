"""Scenario tests ("model CI") in the service: values equal the evaluation engine's,
pass/fail at threshold boundaries, history with the ids behind the numbers, bad input,
and the rows that go with a dataset, run or slice."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ocula import BoxAnnotation, BoxPrediction, DatasetItem
from ocula.core.evaluation.eval_functions import compare
from ocula.core.types import CategoryAnnotation, CategoryPrediction
from ocula.errors import (
    ConflictError,
    DuplicateIdError,
    NotFoundError,
    NotSupportedError,
    ParameterError,
    ValidationError,
)
from tests.conftest import make_images

W, H = 200, 150
LABELS = ["car", "person"]


def _boxes(seed: int, refs: list[str]):
    rng = random.Random(seed)
    gts, preds = [], []
    for ref in refs:
        for j in range(rng.randint(1, 4)):
            w, h = rng.uniform(10, 60), rng.uniform(10, 60)
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
            label = rng.choice(LABELS)
            gts.append(BoxAnnotation(label, x, y, w, h, reference_id=ref,
                                     annotation_id=f"{ref}-{j}"))
            if rng.random() < 0.75:
                d = rng.uniform(-8, 8)
                preds.append(BoxPrediction(label if rng.random() < 0.85 else rng.choice(LABELS),
                                           max(0.0, x + d), y, w, h, reference_id=ref,
                                           confidence=round(rng.random(), 2)))
        if rng.random() < 0.5:
            preds.append(BoxPrediction(rng.choice(LABELS), 1, 1, 20, 20, reference_id=ref,
                                       confidence=round(rng.random(), 2)))
    return gts, preds


@pytest.fixture
def scene(service, tmp_path: Path):
    refs = [f"img{i}" for i in range(12)]
    paths = make_images(tmp_path / "imgs", len(refs), size=(W, H))
    ds = service.create_dataset("scn")
    service.append(ds["id"], [DatasetItem(str(p), r) for p, r in zip(paths, refs, strict=True)])
    gts, preds = _boxes(3, refs)
    service.annotate(ds["id"], gts)
    slc = service.create_slice(ds["id"], "half", refs[:6])
    service.add_model("det", "det")
    run = service.create_run("det", ds["id"], "r1", preds)
    return ds, slc, run, gts, preds


def test_values_equal_the_engines_numbers(service, scene) -> None:
    ds, slc, run, gts, preds = scene
    test = service.create_scenario_test("ci", slc["id"], [
        {"function": "bbox_map", "threshold": 0.0},
        {"function": "bbox_precision", "arguments": {"enforce_label_match": True,
                                                      "confidence_threshold": 0.3}},
        {"function": "bbox_recall", "arguments": {"enforce_label_match": True,
                                                   "confidence_threshold": 0.3}},
    ])
    assert [c["function"] for c in test["criteria"]] == ["bbox_map", "bbox_precision",
                                                         "bbox_recall"]
    result = service.evaluate_scenario_test("ci", run["id"])
    metrics = service.run_metrics(run["id"], slice=slc["id"], confidence_threshold=0.3)
    by = {r["function"]: r for r in result["results"]}
    assert by["bbox_map"]["value"] == pytest.approx(metrics["stats"]["AP50"], abs=1e-12)
    assert by["bbox_precision"]["value"] == pytest.approx(
        metrics["operating_point"]["precision"], abs=1e-12)
    assert by["bbox_recall"]["value"] == pytest.approx(
        metrics["operating_point"]["recall"], abs=1e-12)
    # The ids behind the numbers: as many true positives as the engine counts.
    assert len(by["bbox_recall"]["ids"]["tp_predictions"]) == metrics["operating_point"]["tp"]
    assert len(by["bbox_recall"]["ids"]["fn_annotations"]) == metrics["operating_point"]["fn"]
    assert all(i.startswith("pred_") for i in by["bbox_recall"]["ids"]["fp_predictions"])
    # One value per item of the slice (and only those).
    assert {i["reference_id"] for i in by["bbox_recall"]["items"]} == {
        f"img{i}" for i in range(6)}
    assert result["passed"] is True  # thresholds None or 0.0


def test_mean_iou_by_hand(service, tmp_path: Path) -> None:
    paths = make_images(tmp_path / "i", 2, size=(W, H))
    ds = service.create_dataset("iou")
    service.append(ds["id"], [DatasetItem(str(p), f"a{i}") for i, p in enumerate(paths)])
    service.annotate(ds["id"], [BoxAnnotation("x", 0, 0, 10, 10, reference_id="a0"),
                                BoxAnnotation("x", 50, 50, 10, 10, reference_id="a0"),
                                BoxAnnotation("x", 0, 0, 10, 10, reference_id="a1")])
    service.add_model("m", "m")
    # a0: one exact match (IoU 1), one miss -> 1/2; a1: IoU 50/150 with 2 predictions.
    service.create_run("m", ds["id"], "r", [
        BoxPrediction("x", 0, 0, 10, 10, reference_id="a0", confidence=0.9),
        BoxPrediction("x", 5, 0, 10, 10, reference_id="a1", confidence=0.9),
        BoxPrediction("y", 100, 100, 5, 5, reference_id="a1", confidence=0.9)])
    slc = service.create_slice(ds["id"], "all", ["a0", "a1"])
    service.create_scenario_test("iou", slc["id"], ["bbox_iou"])
    res = service.evaluate_scenario_test("iou", "r")["results"][0]
    assert res["value"] == pytest.approx((1 + 1 / 3) / 4)
    assert {i["reference_id"]: i["value"] for i in res["items"]} == pytest.approx(
        {"a0": 0.5, "a1": (1 / 3) / 2})
    assert res["counts"]["weight"] == 4


@pytest.mark.parametrize(("comparison", "threshold", "value", "passed"), [
    ("greater_than_equal_to", 0.5, 0.5, True), ("greater_than", 0.5, 0.5, False),
    ("less_than_equal_to", 0.5, 0.5, True), ("less_than", 0.5, 0.5, False),
    ("greater_than", 0.5, 0.5000001, True), (">=", None, 0.0, True),
    ("greater_than_equal_to", 0.5, None, False)])
def test_compare_at_the_boundary(comparison, threshold, value, passed) -> None:
    from ocula.core.evaluation.eval_functions import comparison_name
    assert compare(value, threshold, comparison_name(comparison)) is passed


def test_pass_fail_at_threshold_and_history(service, scene) -> None:
    ds, slc, run, gts, preds = scene
    service.create_scenario_test("gate", slc["id"], [{"function": "bbox_recall"}])
    recall = service.evaluate_scenario_test("gate", "r1")["results"][0]["value"]
    service.set_criterion_threshold("gate", "bbox_recall", recall, ">=")
    assert service.evaluate_scenario_test("gate", "r1")["passed"] is True
    service.set_criterion_threshold("gate", "ef_bbox_recall", recall, ">")
    failed = service.evaluate_scenario_test("gate", run["id"])
    assert failed["passed"] is False and failed["results"][0]["passed"] is False
    history = service.scenario_test_history("gate")
    assert [h["passed"] for h in history] == [False, True, True]  # newest first
    assert history[0]["model_run_id"] == run["id"] and "items" not in history[0]["results"][0]
    one = service.scenario_evaluation(history[0]["results"][0]["id"])
    assert one["id"] == failed["id"] and one["results"][0]["items"]


def test_baseline_is_the_threshold_of_criteria_without_one(service, scene) -> None:
    ds, slc, run, gts, preds = scene
    service.create_scenario_test("base", slc["id"], ["bbox_precision"])
    with pytest.raises(ConflictError, match="evaluate it first"):
        service.set_scenario_baseline("base", "r1")
    service.evaluate_scenario_test("base", "r1")
    assert service.set_scenario_baseline("base", "r1")["baseline_run_id"] == run["id"]
    worse = service.create_run("det", ds["id"], "r2", [
        BoxPrediction("car", 1, 1, 5, 5, reference_id="img0", confidence=0.5)])
    res = service.evaluate_scenario_test("base", worse["id"])
    assert res["results"][0]["threshold"] == pytest.approx(
        service.scenario_test_history("base", run="r1")[0]["results"][0]["value"])
    assert res["passed"] is False


def test_category_f1(service, tmp_path: Path) -> None:
    paths = make_images(tmp_path / "c", 4)
    ds = service.create_dataset("cat")
    refs = [f"c{i}" for i in range(4)]
    service.append(ds["id"], [DatasetItem(str(p), r) for p, r in zip(paths, refs, strict=True)])
    truth = ["a", "a", "b", "b"]
    guess = ["a", "b", "b", "b"]
    service.annotate(ds["id"], [CategoryAnnotation(lab, reference_id=r)
                                for lab, r in zip(truth, refs, strict=True)])
    service.add_model("cls", "cls")
    run = service.create_run("cls", ds["id"], "r", [
        CategoryPrediction(lab, reference_id=r, confidence=0.8)
        for lab, r in zip(guess, refs, strict=True)])
    slc = service.create_slice(ds["id"], "all", refs)
    service.create_scenario_test("f1", slc["id"], [
        {"function": "cat_f1"}, ])
    res = service.evaluate_scenario_test("f1", run["id"])["results"][0]
    # a: tp 1, fn 1 -> 2/3; b: tp 2, fp 1 -> 4/5 (scikit-learn's macro F1).
    assert res["value"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert len(res["ids"]["fp_predictions"]) == 1 and len(res["ids"]["fn_annotations"]) == 1


def test_bad_input_is_refused_and_writes_nothing(service, scene) -> None:
    ds, slc, run, gts, preds = scene
    with pytest.raises(ValidationError, match="at least one"):
        service.create_scenario_test("x", slc["id"], [])
    with pytest.raises(DuplicateIdError, match="once"):
        service.create_scenario_test("x", slc["id"], ["bbox_iou", "ef_bbox_iou"])
    with pytest.raises(NotFoundError, match="unknown evaluation function"):
        service.create_scenario_test("x", slc["id"], ["bbox_nope"])
    with pytest.raises(NotSupportedError, match="cuboid_iou_3d"):
        service.create_scenario_test("x", slc["id"], ["cuboid_iou_3d"])
    with pytest.raises(ParameterError, match="unknown bbox_iou parameter"):
        service.create_scenario_test("x", slc["id"], [{"function": "bbox_iou",
                                                       "arguments": {"iou": 1}}])
    with pytest.raises(ParameterError, match="COCO"):
        service.create_scenario_test("x", slc["id"], [{"function": "bbox_map",
                                                       "arguments": {"iou_threshold": 0.33}}])
    with pytest.raises(ValidationError, match="comparison"):
        service.create_scenario_test("x", slc["id"], [{"function": "bbox_iou",
                                                       "comparison": "=="}])
    with pytest.raises(NotSupportedError, match="annotation_filters"):
        service.create_scenario_test("x", slc["id"], [{"function": "bbox_iou", "arguments": {
            "annotation_filters": [[["label", "==", "car"]]]}}])
    with pytest.raises(NotFoundError):
        service.create_scenario_test("x", "slc_nope", ["bbox_iou"])
    assert service.list_scenario_tests() == []
    service.create_scenario_test("x", slc["id"], ["bbox_iou"])
    with pytest.raises(ConflictError):
        service.create_scenario_test("x", slc["id"], ["bbox_iou"])
    with pytest.raises(ConflictError, match="last criterion"):
        service.remove_scenario_criterion("x", "bbox_iou")
    other = service.create_dataset("other")
    service.add_model("o", "o")
    orun = service.create_run("o", other["id"], "o", [])
    with pytest.raises(ParameterError, match="another dataset"):
        service.evaluate_scenario_test("x", orun["id"])
    assert service.scenario_test_history("x") == []


def test_rows_go_with_their_run_slice_and_dataset(service, scene) -> None:
    ds, slc, run, gts, preds = scene
    service.create_scenario_test("keep", slc["id"], ["bbox_recall"])
    service.evaluate_scenario_test("keep", "r1")
    with pytest.raises(ConflictError, match="keep"):
        service.delete_slice(slc["id"])
    service.delete_run(run["id"])
    assert service.scenario_test_history("keep") == []
    service.delete_dataset(ds["id"])
    assert service.list_scenario_tests() == []


def test_model_run_on_dataset(service, scene) -> None:
    ds, slc, run, gts, preds = scene
    assert service.model_run_on(ds["id"], "det")["id"] == run["id"]
    service.add_model("new", "new-ref")
    with pytest.raises(NotFoundError):
        service.model_run_on(ds["id"], "new-ref")
    made = service.model_run_on(ds["id"], "new-ref", create=True)
    assert made["name"] == "new-ref"
    assert service.model_run_on(ds["id"], "new-ref", create=True)["id"] == made["id"]
