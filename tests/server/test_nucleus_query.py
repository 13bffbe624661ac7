"""The official ``scale-nucleus`` client's query calls against a live Ocula server:
``Dataset.query_items`` (``queryItemsPage``) and ``Dataset.query_objects``
(``queryObjectsPage``), with queries in Ocula's language and pages of any size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from ocula import BoxAnnotation, BoxPrediction, DatasetItem
from ocula.client.client import Client
from tests.conftest import make_images
from tests.server.conftest import Live

nucleus = pytest.importorskip(
    "nucleus", reason="scale-nucleus is not installed (pip install scale-nucleus==0.22.3)")
from nucleus.dataset import ObjectQueryType  # noqa: E402

N = 9


@pytest.fixture
def scene(live: Live, tmp_path: Path) -> dict[str, Any]:
    """9 items; item i has i % 3 cars (all found by run "det") and odd items one
    missed pedestrian; even items one far-away false-positive car."""
    c = Client(live.url, api_key=live.key)
    paths = make_images(tmp_path / "imgs", N, size=(200, 100))
    ds = c.create_dataset("nq")
    ds.append([DatasetItem(str(p), f"img {i}", metadata={"i": i, "odd": i % 2 == 1})
               for i, p in enumerate(paths)])
    anns: list[Any] = []
    preds: list[Any] = []
    for i in range(N):
        for k in range(i % 3):
            anns.append(BoxAnnotation("car", 10 + 40 * k, 10, 30, 20, reference_id=f"img {i}",
                                      annotation_id=f"c{i}-{k}"))
            preds.append(BoxPrediction("car", 10 + 40 * k, 10, 30, 20,
                                       reference_id=f"img {i}", confidence=0.8))
        if i % 2:
            anns.append(BoxAnnotation("pedestrian", 170, 50, 8, 16, reference_id=f"img {i}",
                                      annotation_id=f"p{i}"))
        else:
            preds.append(BoxPrediction("car", 150, 70, 20, 20, reference_id=f"img {i}",
                                       confidence=0.9))
    ds.annotate(anns)
    run = c.add_model("det", "det").create_run("det", ds, preds)
    run.commit()
    c.close()
    return {"dataset_id": ds.id, "run_id": run.id, "anns": anns, "preds": preds}


@pytest.fixture
def nds(live: Live, scene: dict[str, Any]) -> Any:
    nc = nucleus.NucleusClient(live.key, endpoint=f"{live.url}/v1/nucleus")
    return nc.get_dataset(scene["dataset_id"])


def _pages(live: Live, ds_id: str, route: str, body: dict[str, Any], size: int
           ) -> list[Any]:
    """Every page of a query route, by hand, at one page size."""
    out: list[Any] = []
    token = None
    while True:
        resp = requests.post(f"{live.url}/v1/nucleus/dataset/{ds_id}/{route}",
                             json={**body, "pageSize": size, "pageToken": token},
                             auth=(live.key, ""), timeout=30)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert len(page["items"]) <= size
        out += page["items"]
        token = page["nextPageToken"]
        if not token:
            return out


def test_query_items(live: Live, nds: Any, scene: dict[str, Any]) -> None:
    got = [it.reference_id for it in nds.query_items("metadata.odd = true")]
    assert got == [f"img {i}" for i in range(1, N, 2)]
    got = [it.reference_id for it in nds.query_items(
        'count(label = "car") >= 1 order by metadata.i desc')]
    assert got == [f"img {i}" for i in range(N - 1, -1, -1) if i % 3]
    assert len(list(nds.query_items(""))) == N
    q = {"query": "width > 0 order by metadata.i desc"}
    # Compare ids: each page signs its image URLs afresh (the expiry moves with time).
    whole = [it["id"] for it in _pages(live, scene["dataset_id"], "queryItemsPage", q, 100)]
    assert len(whole) == N
    for size in (1, 2, 4):
        assert [it["id"] for it in _pages(live, scene["dataset_id"], "queryItemsPage", q,
                                          size)] == whole
    with pytest.raises(nucleus.errors.NucleusAPIError, match="bad_query|line 1"):
        list(nds.query_items("metadata.i >"))


def test_query_objects_ground_truth_and_predictions(live: Live, nds: Any,
                                                    scene: dict[str, Any]) -> None:
    gt = list(nds.query_objects('label = "pedestrian"', ObjectQueryType.GROUND_TRUTH_ONLY))
    assert all(isinstance(a, nucleus.BoxAnnotation) for a in gt)
    assert sorted(a.annotation_id for a in gt) == sorted(f"p{i}" for i in range(1, N, 2))
    assert {a.reference_id for a in gt} == {f"img {i}" for i in range(1, N, 2)}
    everything = list(nds.query_objects("", ObjectQueryType.GROUND_TRUTH_ONLY))
    assert len(everything) == len(scene["anns"])

    preds = list(nds.query_objects("confidence > 0.85 order by confidence desc",
                                   ObjectQueryType.PREDICTIONS_ONLY))
    assert all(isinstance(p, nucleus.BoxPrediction) for p in preds)
    assert len(preds) == (N + 1) // 2 and {p.confidence for p in preds} == {0.9}
    of_run = list(nds.query_objects("", ObjectQueryType.PREDICTIONS_ONLY,
                                    model_run_id=scene["run_id"]))
    assert len(of_run) == len(scene["preds"])

    # A keyword inside a string literal is not taken for the query's tail.
    assert list(nds.query_objects('label = "order by limit 1"',
                                  ObjectQueryType.GROUND_TRUTH_ONLY)) == []
    limited = list(nds.query_objects('label = "car" order by x desc limit 3',
                                     ObjectQueryType.GROUND_TRUTH_ONLY))
    assert len(limited) == 3 and {a.x for a in limited} == {50}

    body = {"query": 'type in [annotation, prediction] order by area',
            "patch_mode": "predictions_only"}
    whole = _pages(live, scene["dataset_id"], "queryObjectsPage", body, 1000)
    assert len(whole) == len(scene["preds"])
    for size in (1, 3, 5):
        assert _pages(live, scene["dataset_id"], "queryObjectsPage", body, size) == whole


def test_query_objects_evaluation_matches(nds: Any, scene: dict[str, Any]) -> None:
    run_id = scene["run_id"]
    fps = list(nds.query_objects("", ObjectQueryType.FALSE_POSITIVE, model_run_id=run_id))
    assert len(fps) == (N + 1) // 2
    assert all(m.confusion_category == nucleus.evaluation_match.ConfusionCategory
               .FALSE_POSITIVE and m.model_run_id == run_id and m.iou == 0
               and m.model_prediction_label == "car" for m in fps)
    fns = list(nds.query_objects('label = "pedestrian"', ObjectQueryType.FALSE_NEGATIVE,
                                 model_run_id=run_id))
    assert len(fns) == N // 2
    assert all(m.confusion_category.value == "false_negative"
               and m.ground_truth_annotation_label == "pedestrian"
               and m.dataset_item_id.startswith("di_") for m in fns)
    tps = list(nds.query_objects("iou > 0.99", ObjectQueryType.IOU, model_run_id=run_id))
    assert len(tps) == sum(i % 3 for i in range(N))
    assert all(m.confusion_category.value == "true_positive" and m.iou > 0.99 for m in tps)


def test_query_objects_errors(nds: Any, scene: dict[str, Any]) -> None:
    err = nucleus.errors.NucleusAPIError
    with pytest.raises(err, match="model_run_id"):
        list(nds.query_objects("", ObjectQueryType.FALSE_POSITIVE))
    with pytest.raises(err, match="did you mean 'label'"):
        list(nds.query_objects('lable = "car"', ObjectQueryType.GROUND_TRUTH_ONLY))
    with pytest.raises(err):
        list(nds.query_objects("", ObjectQueryType.GROUND_TRUTH_ONLY, model_run_id="run_no"))
