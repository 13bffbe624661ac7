"""Nucleus' Model CI (``validate/…``) and ``uploadPredictions`` with the pinned client
against a live server, on both databases: the numbers are Ocula's engine's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_images
from tests.server.conftest import Live

nucleus = pytest.importorskip(
    "nucleus", reason="scale-nucleus is not installed (pip install scale-nucleus==0.22.3)")


@pytest.fixture
def setup(nc: Any, tmp_path: Path) -> Any:
    ds = nc.create_dataset("ci", is_scene=False)
    paths = make_images(tmp_path / "imgs", 3, size=(200, 150))
    # local files go as multipart in a job (client 0.22.3)
    ds.append([nucleus.DatasetItem(image_location=str(p), reference_id=f"r{i}")
               for i, p in enumerate(paths)]).sleep_until_complete(verbose_std_out=False)
    got = ds.annotate([nucleus.BoxAnnotation(label="car", x=10, y=10, width=40, height=40,
                                             reference_id=f"r{i}", annotation_id=f"a{i}")
                       for i in range(3)])
    assert got["annotations_processed"] == 3
    slc = ds.create_slice(name="two", reference_ids=["r0", "r1"])
    model = nc.create_model("det", "det-ref")
    # r0 exact, r1 off by 30 px (IoU 0.25: a miss at 0.5), r2 outside the slice.
    preds = [nucleus.BoxPrediction(label="car", x=10 + 30 * (i == 1), y=10, width=40,
                                   height=40, reference_id=f"r{i}", annotation_id=f"p{i}",
                                   confidence=0.9) for i in range(3)]
    answer = ds.upload_predictions(model, preds)
    assert answer["predictions_processed"] == 3 and answer["predictions_ignored"] == 0
    return ds, slc, model


def test_upload_predictions_and_model_reads(nc: Any, setup: Any, live_db: Live) -> None:
    ds, slc, model = setup
    (run,) = live_db.service.list_runs(ds.id)
    assert run["model_id"] == model.id and run["name"] == "det-ref"
    # again: the same run, duplicates ignored
    again = ds.upload_predictions(model, [nucleus.BoxPrediction(
        label="car", x=10, y=10, width=40, height=40, reference_id="r0",
        annotation_id="p0", confidence=0.9)])
    assert again["predictions_ignored"] == 1 and len(live_db.service.list_runs(ds.id)) == 1
    job = ds.upload_predictions(model, [nucleus.BoxPrediction(
        label="bus", x=1, y=1, width=5, height=5, reference_id="r2", annotation_id="q2",
        confidence=0.5)], asynchronous=True)
    job.sleep_until_complete(verbose_std_out=False)
    assert len(live_db.service.list_runs(ds.id)) == 1
    assert [p.label for p in ds.predictions_refloc(model, "r2")["box"]] == ["car", "bus"]
    assert [p.reference_id for p in ds.export_predictions(model)["box"]] == [
        "r0", "r1", "r2", "r2"]
    assert ds.predictions_iloc(model, 1)["box"][0].annotation_id == "p1"
    assert ds.predictions_refloc(model, "r2")["box"][0].x == 10
    assert ds.prediction_loc(model, "r1", "p1").x == 40
    other = nc.create_model("none", "none-ref")
    with pytest.raises(Exception) as err:  # noqa: PT011 - the client's NucleusAPIError
        ds.predictions_iloc(other, 0)
    assert err.value.status_code == 404


def test_scenario_tests_through_the_client(nc: Any, setup: Any, live_db: Live) -> None:
    ds, slc, model = setup
    e = nc.validate.eval_functions
    assert isinstance(e.bbox_iou() > 0.5, nucleus.validate.EvaluationCriterion)
    test = nc.validate.create_scenario_test(name="gate", slice_id=slc.id,
                                            evaluation_functions=[e.bbox_recall])
    assert test.slice_id == slc.id and test.name == "gate"
    metric = test.add_eval_function(e.bbox_precision)
    assert metric.threshold is None and metric in test.get_eval_functions()
    (recall,) = [m for m in test.get_eval_functions() if m.eval_function_id == "ef_bbox_recall"]
    recall.set_threshold(0.5)
    assert recall.threshold == 0.5
    assert {i.reference_id for i in test.get_items()} == {"r0", "r1"}
    assert [t.id for t in nc.validate.scenario_tests] == [test.id]

    job = nc.validate.evaluate_model_on_scenario_tests(model.id, ["gate"])
    job.sleep_until_complete()
    history = test.get_eval_history()
    by = {h.eval_function_id: h for h in history}
    # r0 found, r1 missed: recall 0.5 passes ">= 0.5"; precision 0.5 has no threshold.
    assert by["ef_bbox_recall"].result == 0.5 and by["ef_bbox_recall"].passed
    assert by["ef_bbox_precision"].result == 0.5 and by["ef_bbox_precision"].model_id == model.id
    items = {i.dataset_item_id: i for i in by["ef_bbox_recall"].item_evals}
    values = sorted((i.result, i.passed) for i in items.values())
    assert values == [(0.0, False), (1.0, True)]
    engine = live_db.service.run_metrics(live_db.service.list_runs(ds.id)[0]["id"],
                                         slice=slc.id, confidence_threshold=0.0)
    assert by["ef_bbox_recall"].result == engine["operating_point"]["recall"]

    # a baseline must have been evaluated; an unknown model is refused
    test.set_baseline_model(model.id)
    with pytest.raises(Exception):  # noqa: B017, PT011 - the client's NucleusAPIError
        test.set_baseline_model("prj_nonexistent")
    assert nc.validate.delete_scenario_test(test.id) is True
    assert nc.validate.scenario_tests == []


def test_validate_errors(nc: Any, setup: Any, live_db: Live) -> None:
    ds, slc, model = setup
    e = nc.validate.eval_functions
    with pytest.raises(nucleus.validate.CreateScenarioTestError):
        nc.validate.create_scenario_test(name="x", slice_id=slc.id, evaluation_functions=[])
    url, auth = f"{live_db.url}/v1/nucleus/validate", (live_db.key, "")
    # cuboids are listed, and refused by name when chosen
    answer = httpx.post(f"{url}/scenario_test", auth=auth, json={
        "name": "c", "slice_id": slc.id,
        "evaluation_functions": [{"id": e.cuboid_iou_3d.id, "eval_func_arguments": {}}]})
    assert answer.status_code == 501 and "cuboid_iou_3d" in answer.json()["detail"]
    for body in ({"name": "c", "slice_id": slc.id, "evaluation_functions": "bbox_iou"},
                 {"name": "c", "slice_id": slc.id, "evaluation_functions": [
                     {"id": "ef_bbox_iou", "eval_func_arguments": {"iou_threshold": 2}}]},
                 ):
        answer = httpx.post(f"{url}/scenario_test", auth=auth, json=body)
        assert answer.status_code == 422, (body, answer.text)
    answer = httpx.post(f"{url}/scenario_test", auth=auth, json={
        "name": "c", "slice_id": slc.id,
        "evaluation_functions": [{"id": "ef_nope", "eval_func_arguments": {}}]})
    assert answer.status_code == 404 and "ef_nope" in answer.text
    assert httpx.post(f"{url}/eval_fn", auth=auth, json={"name": "mine"}).status_code == 501
    assert httpx.post(f"{url}/{model.id}/evaluate", auth=auth,
                      json={"test_names": ["nope"]}).status_code == 404
    assert live_db.service.list_scenario_tests() == []
