"""``GET /api/v1/runs/{run}/errors`` on the wire: the body its schema documents, and
clear 4xx answers for bad parameters."""

from __future__ import annotations

from pathlib import Path

import httpx

from ocula import BoxAnnotation, BoxPrediction, DatasetItem
from ocula.client.client import Client
from ocula.server.api.schemas import ErrorBreakdown
from tests.conftest import make_images
from tests.server.conftest import Live


def test_errors_route_answers_its_documented_model(live: Live, tmp_path: Path) -> None:
    paths = make_images(tmp_path / "imgs", 2, size=(100, 100))
    with Client(live.url, api_key=live.key) as c:
        ds = c.create_dataset("wire")
        ds.append([DatasetItem(str(p), f"r{i}") for i, p in enumerate(paths)])
        ds.annotate([BoxAnnotation("car", 10, 10, 40, 40, reference_id="r0")])
        run = c.add_model("m", "m").create_run("run", ds, [
            BoxPrediction("car", 10, 10, 40, 12, reference_id="r0", confidence=0.9),
            BoxPrediction("car", 10, 10, 20, 20, reference_id="r1", confidence=0.8)])
    headers = {"Authorization": f"Bearer {live.key}"}
    url = f"{live.url}/api/v1/runs/{run.id}/errors"

    answer = httpx.get(url, headers=headers)
    assert answer.status_code == 200
    body = ErrorBreakdown.model_validate(answer.json())
    assert body.errors["loc"].count == 1 and body.errors["loc"].becomes_tp == [True]
    assert body.errors["bkg"].items == ["r1"]
    assert body.special["fp"].prediction_ids is not None
    assert len(body.special["fp"].prediction_ids) == 2
    assert body.special["fn"].annotation_ids is not None
    assert len(body.special["fn"].annotation_ids) == 1

    conflict = httpx.get(url, headers=headers,
                         params={"pos_threshold": 0.3, "background_threshold": 0.4})
    assert conflict.status_code == 422
    assert conflict.json()["error"] == "conflicting_parameters"
    for params in ({"iou_type": "keypoints"}, {"max_ids": -1}, {"pos_threshold": 0}):
        assert httpx.get(url, headers=headers, params=params).status_code == 422, params
    missing = httpx.get(f"{live.url}/api/v1/runs/run_missing/errors", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"

    schema = httpx.get(f"{live.url}/openapi.json").json()
    ok = schema["paths"]["/api/v1/runs/{run_id}/errors"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBreakdown")
