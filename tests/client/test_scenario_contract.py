"""Scenario tests ("model CI") through ``ocula.Client``, embedded and over HTTP, on both
databases: the same results and typed errors either way."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ocula import BoxAnnotation, BoxPrediction, Client, DatasetItem
from ocula.errors import ConflictError, NotFoundError, NotSupportedError
from tests.conftest import make_images


@pytest.fixture
def setup(any_client: Client, tmp_path: Path):
    paths = make_images(tmp_path / "imgs", 4, size=(100, 100))
    ds = any_client.create_dataset("ci")
    ds.append([DatasetItem(str(p), f"r{i}") for i, p in enumerate(paths)])
    ds.annotate([BoxAnnotation("car", 10, 10, 40, 40, reference_id=f"r{i}") for i in range(4)])
    slc = ds.create_slice("night", ["r0", "r1", "r2"])
    model = any_client.add_model("det", "det")
    # r0, r1 found; r2 missed (off by 30 px); a false positive on r0.
    run = model.create_run("v1", ds, [
        BoxPrediction("car", 10, 10, 40, 40, reference_id="r0", confidence=0.9),
        BoxPrediction("car", 12, 10, 40, 40, reference_id="r1", confidence=0.8),
        BoxPrediction("car", 40, 10, 40, 40, reference_id="r2", confidence=0.7),
        BoxPrediction("car", 60, 60, 20, 20, reference_id="r0", confidence=0.6)])
    return ds, slc, model, run


def test_create_evaluate_history(any_client: Client, setup) -> None:
    ds, slc, model, run = setup
    names = {f["name"]: f for f in any_client.eval_functions()}
    assert names["bbox_recall"]["supported"] and not names["cuboid_recall"]["supported"]
    test = any_client.create_scenario_test("night", slc, [
        {"function": "bbox_recall", "threshold": 2 / 3},
        {"function": "bbox_precision", "threshold": 0.5, "comparison": ">"}])
    assert [c["comparison"] for c in test.criteria] == ["greater_than_equal_to",
                                                        "greater_than"]
    result = test.evaluate(run)
    by = {r["function"]: r for r in result["results"]}
    assert by["bbox_recall"]["value"] == pytest.approx(2 / 3)
    assert by["bbox_recall"]["passed"] is True  # at the threshold, >=
    assert by["bbox_precision"]["value"] == pytest.approx(0.5)
    assert by["bbox_precision"]["passed"] is False  # at the threshold, >
    assert result["passed"] is False
    assert len(by["bbox_precision"]["ids"]["fp_predictions"]) == 2
    test.set_threshold("bbox_precision", 0.5, ">=")
    assert test.evaluate("v1")["passed"] is True
    assert [h["passed"] for h in test.history()] == [True, False]
    assert [h["passed"] for h in any_client.get_scenario_test("night").history(run)] == [
        True, False]
    assert {i["reference_id"] for i in test.items()} == {"r0", "r1", "r2"}
    test.add_criterion("bbox_map", 0.9, arguments={"iou_threshold": 0.5})
    assert [c["function"] for c in test.criteria][-1] == "bbox_map"
    test.remove_criterion("bbox_map")
    test.set_baseline(run)
    assert test.baseline_run_id == run.id
    assert [t.name for t in any_client.scenario_tests] == ["night"]
    test.delete()
    assert any_client.scenario_tests == []


def test_errors_are_typed_on_both_backends(any_client: Client, setup) -> None:
    ds, slc, model, run = setup
    with pytest.raises(NotSupportedError, match="cuboid_iou_2d"):
        any_client.create_scenario_test("x", slc, ["cuboid_iou_2d"])
    with pytest.raises(NotFoundError, match="unknown evaluation function"):
        any_client.create_scenario_test("x", slc, ["nope"])
    with pytest.raises(NotFoundError):
        any_client.get_scenario_test("missing")
    test = any_client.create_scenario_test("x", slc, ["bbox_iou"])
    with pytest.raises(ConflictError):
        any_client.create_scenario_test("x", slc, ["bbox_iou"])
    with pytest.raises(NotFoundError):
        test.evaluate("no-such-run")
    with pytest.raises(ConflictError, match="scenario test"):
        any_client._backend.delete_slice(slc.id)


def test_rest_bad_bodies_are_4xx(tmp_path: Path, database_url: str) -> None:
    """Malformed REST bodies are refused before the service (nothing written)."""
    from ocula.core.services import Service
    from ocula.server.app import create_app
    from ocula.server.background import serve_in_background

    service = Service.open(tmp_path / "home", database_url, local_roots=[])
    with serve_in_background(create_app(service, auth=False)) as url, \
            httpx.Client(base_url=url) as http:
        headers: dict[str, str] = {}
        for body in ({"name": "x", "slice": "slc_x", "criteria": []},
                     {"name": "x", "slice": "slc_x", "criteria": [{"function": "bbox_iou",
                                                                   "comparison": "=="}]},
                     {"name": "x", "slice": "slc_x",
                      "criteria": [{"function": "bbox_iou", "threshold": "high"}]}):
            answer = http.post("/api/v1/scenario_tests", json=body, headers=headers)
            assert answer.status_code == 422, answer.text
        assert http.post("/api/v1/scenario_tests", headers=headers, json={
            "name": "x", "slice": "slc_x", "criteria": ["bbox_iou"]}).status_code == 422
        assert http.get("/api/v1/scenario_tests", headers=headers).json() == []
        assert isinstance(http.get("/api/v1/eval_functions", headers=headers).json(), list)
    service.close()
