"""Object queries (annotations and predictions): every field and operator, both backends.

Annotations are named by their annotation_id; predictions ``run:label@item:confidence``
(see ``Scene.ids``)."""

from __future__ import annotations

import pytest

from tests.query.conftest import Scene

GT = ["p0", "p1", "p2", "p3", "c0", "p4", "c1", "c2", "c3", "p5", "p6", "t0", "cat0"]
FRCNN = ["frcnn:pedestrian@img0:0.9", "frcnn:pedestrian@img0:0.8", "frcnn:car@img0:0.9",
         "frcnn:car@img0:0.95", "frcnn:car@img1:0.7", "frcnn:pedestrian@img1:0.85",
         "frcnn:pedestrian@img3:0.6", "frcnn:truck@img5:0.99"]
YOLO = ["yolo:car@img2:0.5"]


@pytest.mark.parametrize(("query", "expected"), [
    # kinds: ground truth unless the query says otherwise
    ("", GT),
    ("type = annotation", GT),
    ("type = prediction", FRCNN + YOLO),
    ("type != annotation", FRCNN + YOLO),
    ("type in [annotation, prediction] and reference_id = \"img2\"",
     ["c3", "yolo:car@img2:0.5"]),
    ("type = prediction or type = annotation and label = \"truck\"", ["t0", *FRCNN, *YOLO]),
    # label, shape, id fields
    ('label = "car"', ["c0", "c1", "c2", "c3"]),
    ('label != "car"', ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "t0", "cat0"]),
    ('label in ["truck", "day"]', ["t0", "cat0"]),
    ('label not in ["pedestrian", "car"]', ["t0", "cat0"]),
    ('label > "pedestrian"', ["t0"]),
    ("shape = category", ["cat0"]),
    ("shape != box", ["cat0"]),
    ('annotation_id = "p4"', ["p4"]),
    ('annotation_id in ["c0", "t0", "nope"]', ["c0", "t0"]),
    ('reference_id = "img3"', ["p5", "p6"]),
    ('reference_id != "img0" and label = "pedestrian"', ["p4", "p5", "p6"]),
    ("iscrowd = false and label = \"truck\"", ["t0"]),
    # geometry
    ("x >= 100", ["c0", "c2", "p6"]),
    ("y > 20", ["c0", "c1", "t0"]),
    ("width = 10", ["p0", "p1", "p2", "p3"]),
    ("height >= 40", ["c0", "t0"]),
    ("area < 150", ["p0", "p1", "p2", "p3", "p5", "p6"]),
    ("area = 2000", ["c0"]),
    ("aspect > 1.5", ["c1", "c3", "t0"]),
    ("aspect < 1", ["p4", "p5", "p6"]),
    ("area = null", ["cat0"]),
    ("x != null and shape = category", []),
    # metadata of objects
    ("metadata.occluded = true", ["p0"]),
    ("metadata.occluded != true", ["p3"]),
    ("not metadata.occluded = true and label = \"pedestrian\"",
     ["p1", "p2", "p3", "p4", "p5", "p6"]),
    # the item of an object
    ('item(metadata.weather = "rain") and label = "car"', ["c0"]),
    ('item(count(label = "pedestrian") > 3) and area > 1000', ["c0"]),
    ('in_slice("train") and label = "pedestrian"', ["p0", "p1", "p2", "p3", "p4"]),
])
def test_annotation_fields(scene: Scene, query: str, expected: list[str]) -> None:
    assert scene.ids(query) == expected


@pytest.mark.parametrize(("query", "expected"), [
    # status of annotations: the only committed run (frcnn) unless one is named
    ("status = fn", ["p2", "p3", "p4", "c2", "c3", "p6"]),
    ("status = tp", ["p0", "p1", "c0", "c1", "p5", "t0"]),
    ("status != tp and shape = box", ["p2", "p3", "p4", "c2", "c3", "p6"]),
    ('run = "frcnn" and status in [fn, ignored]', ["p2", "p3", "p4", "c2", "c3", "p6"]),
    ('type = annotation and label = "pedestrian" and area < 400 and status = fn',
     ["p2", "p3", "p6"]),
    ("iou > 0.99", ["p0", "p1", "c0", "c1", "p5", "t0"]),
    ("iou = 0 and label = \"car\"", ["c2", "c3"]),
    ("status = null", ["cat0"]),
    ('not status = fn', ["p0", "p1", "c0", "c1", "p5", "t0", "cat0"]),
    ('status = "tp" or label = "day"', ["p0", "p1", "c0", "c1", "p5", "t0", "cat0"]),
])
def test_annotation_status(scene: Scene, query: str, expected: list[str]) -> None:
    assert scene.ids(query) == expected


@pytest.mark.parametrize(("query", "expected"), [
    ('type = prediction and run = "frcnn"', FRCNN),
    ('type = prediction and run != "frcnn"', YOLO),
    ('type = prediction and run in ["yolo"]', YOLO),
    ("type = prediction and confidence > 0.9", ["frcnn:car@img0:0.95",
                                                "frcnn:truck@img5:0.99"]),
    ("type = prediction and confidence <= 0.6", ["frcnn:pedestrian@img3:0.6",
                                                 "yolo:car@img2:0.5"]),
    ("type = prediction and status = fp", ["frcnn:car@img0:0.95",
                                           "frcnn:pedestrian@img1:0.85"]),
    ("type = prediction and status = tp and label = \"pedestrian\"",
     ["frcnn:pedestrian@img0:0.9", "frcnn:pedestrian@img0:0.8", "frcnn:pedestrian@img3:0.6"]),
    # the uncommitted run has no status
    ("type = prediction and status = null", YOLO),
    ("type = prediction and iou < 0.5", ["frcnn:car@img0:0.95", "frcnn:pedestrian@img1:0.85"]),
    ('type = prediction and run = "frcnn" and status = fp and confidence > 0.8 '
     "order by confidence desc", ["frcnn:car@img0:0.95", "frcnn:pedestrian@img1:0.85"]),
    ("type = prediction order by confidence desc",
     ["frcnn:truck@img5:0.99", "frcnn:car@img0:0.95", "frcnn:car@img0:0.9",
      "frcnn:pedestrian@img0:0.9", "frcnn:pedestrian@img1:0.85", "frcnn:pedestrian@img0:0.8",
      "frcnn:car@img1:0.7", "frcnn:pedestrian@img3:0.6", "yolo:car@img2:0.5"]),
    ("type = prediction and status = tp order by iou asc limit 2",
     ["frcnn:pedestrian@img0:0.9", "frcnn:pedestrian@img0:0.8"]),
    ('type = prediction and item(run("frcnn").fn = 0)', ["frcnn:truck@img5:0.99"]),
])
def test_prediction_fields(scene: Scene, query: str, expected: list[str]) -> None:
    assert scene.ids(query) == expected


@pytest.mark.parametrize(("query", "expected"), [
    ("order by area desc limit 3", ["t0", "c0", "c3"]),
    ("shape = box order by area asc limit 3", ["p0", "p1", "p2"]),
    ('label = "car" order by width', ["c2", "c1", "c0", "c3"]),
    # missing values last in both directions
    ("order by x desc limit 2", ["c2", "p6"]),
    ("label in [\"day\", \"truck\"] order by x", ["t0", "cat0"]),
    ("label in [\"day\", \"truck\"] order by x desc", ["t0", "cat0"]),
    ("order by label limit 3", ["c0", "c1", "c2"]),
    ("order by metadata.occluded desc limit 2", ["p3", "p0"]),
    ("status = fn order by area desc", ["c3", "c2", "p4", "p6", "p3", "p2"]),
    ('type in [annotation, prediction] and label = "truck" order by confidence desc',
     ["frcnn:truck@img5:0.99", "t0"]),
    ('type in [annotation, prediction] and confidence > 0.9 order by confidence desc',
     ["frcnn:truck@img5:0.99", "frcnn:car@img0:0.95"]),
    ('type in [annotation, prediction] and area >= 2000 order by area desc',
     ["frcnn:truck@img5:0.99", "t0", "frcnn:car@img0:0.9", "c0"]),
    # equal areas: annotations before predictions, then by key
    ('type in [annotation, prediction] and reference_id = "img3" order by area',
     ["p5", "p6", "frcnn:pedestrian@img3:0.6"]),
])
def test_object_order(scene: Scene, query: str, expected: list[str]) -> None:
    for page_size in (1, 2, 50):
        assert scene.ids(query, page_size=page_size) == expected


def test_object_payload(scene: Scene) -> None:
    page = scene.service.query_objects(
        "scene", 'type = prediction and run = "frcnn" and status = fp and confidence > 0.8 '
        "order by confidence desc", page_size=1, with_total=True)
    assert page["total"] == 2
    (obj,) = page["objects"]
    assert obj["kind"] == "prediction" and obj["run"] == "frcnn"
    assert obj["reference_id"] == "img0" and obj["item_id"].startswith("di_")
    assert obj["status"] == "fp" and obj["iou"] < 0.5 and obj["confidence"] == 0.95
    assert obj["geometry"] == {"x": 150, "y": 0, "width": 20, "height": 20}
    assert page["next_cursor"] is not None
    assert page["description"].startswith("Predictions where type is prediction and run is ")

    ann = scene.service.query_objects("scene", 'annotation_id = "p2"')["objects"][0]
    assert (ann["kind"], ann["status"], ann["iou"], ann["run"]) == ("annotation", "fn", 0.0,
                                                                   "frcnn")
    assert ann["label"] == "pedestrian" and ann["reference_id"] == "img0"
    assert obj["match"] is None and ann["match"] is None  # an FP and an FN: no partner


def test_matched_objects_name_their_partner(scene: Scene) -> None:
    """A TP carries the box it matched (a patch draws both); the partner's partner is
    the object itself."""
    (gt,) = scene.objects('annotation_id = "c1" and run = "frcnn"')
    assert gt["status"] == "tp"
    partner = gt["match"]
    assert partner["kind"] == "prediction" and partner["label"] == "car"
    assert partner["geometry"] == {"x": 50, "y": 50, "width": 40, "height": 20}
    preds = scene.objects('type = prediction and run = "frcnn" and status = tp and '
                          'item(reference_id = "img1")')
    assert [p["id"] for p in preds] == [partner["id"]]
    assert preds[0]["match"] == {"id": gt["id"], "kind": "annotation", "type": "box",
                                 "label": "car", "geometry": gt["geometry"]}


def test_objects_within_slice(scene: Scene) -> None:
    assert scene.ids('label = "car"', slice="train") == ["c0", "c1", "c2", "c3"]
    assert scene.ids("status = fn", slice="train") == ["p2", "p3", "p4", "c2", "c3"]


@pytest.mark.parametrize("rest", ["", " and status = fp", " and status = tp and confidence > 0.5",
                                  " and label = \"car\""])
def test_predictions_named_by_id_are_looked_up_by_id(scene: Scene, rest: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """``id in [...]`` selects the same predictions whichever way the run is tested, and
    on SQLite (no statistics) through the ids' unique index, not the run's rows."""
    from sqlalchemy import select, text

    from ocula.core.query import compile as qc

    everyone = scene.objects('type = prediction and run = "frcnn"', page_size=100)
    wanted = [o["id"] for o in everyone[::2]]
    listed = ", ".join(f'"{i}"' for i in wanted)
    query = f'type = prediction and run = "frcnn" and id in [{listed}]{rest}'
    got = sorted(o["id"] for o in scene.objects(query, page_size=100))
    with monkeypatch.context() as m:
        m.setattr(qc, "names_ids", lambda node: False)
        assert got == sorted(o["id"] for o in scene.objects(query, page_size=100))
    if not rest:
        assert got == sorted(wanted)
    with scene.service.db.read() as conn:
        branch = scene.service._objects_plan(conn, scene.dataset, query, None)[1].branches[0]
        assert branch.scope.by_ids == (conn.dialect.name == "sqlite")
        if conn.dialect.name == "sqlite":
            sql = select(branch.scope.pk_col).select_from(branch.scope.from_clause()).where(
                *branch.where).compile(conn, compile_kwargs={"literal_binds": True})
            steps = " ".join(r[3] for r in conn.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
            assert "(id=?)" in steps, steps
