"""Lines and multicategory annotations with the pinned ``scale-nucleus`` client against a
live loopback server, on both databases: annotate, predict and read back (``refloc``,
``ungrouped_export``, ``items_and_annotations``), Nucleus' one-per-taxonomy keys for
multicategories, and taxonomy checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_images
from tests.server.conftest import Live

nucleus = pytest.importorskip(
    "nucleus", reason="scale-nucleus is not installed (pip install scale-nucleus==0.22.3)")

TAGS = "[Pytest] MultiCategory Taxonomy 1"


@pytest.fixture
def ds(nc: Any, tmp_path: Path) -> Any:
    ds = nc.create_dataset("anntypes", is_scene=False)
    paths = make_images(tmp_path / "imgs", 2, size=(400, 300))
    ds.append([nucleus.DatasetItem(image_location=str(p), reference_id=f"r{i}")
               for i, p in enumerate(paths)]).sleep_until_complete(verbose_std_out=False)
    ds.add_taxonomy(TAGS, "multicategory", ["a", "b", "c"])
    ds.add_taxonomy("kind", "category", ["x", "y"])
    return ds


def _line(**kw: Any) -> Any:
    body = {"label": "lane", "reference_id": "r0", "annotation_id": "l0",
            "vertices": [nucleus.Point(10, 20), nucleus.Point(11, 21), nucleus.Point(12, 22)]}
    return nucleus.LineAnnotation(**{**body, **kw})


def test_line_annotation_round_trip(ds: Any) -> None:
    answer = ds.annotate([_line()])
    assert (answer["dataset_id"], answer["annotations_processed"],
            answer["annotations_ignored"]) == (ds.id, 1, 0)
    [got] = ds.refloc("r0")["annotations"]["line"]
    assert isinstance(got, nucleus.LineAnnotation)
    assert (got.label, got.annotation_id) == ("lane", "l0")
    assert [(p.x, p.y) for p in got.vertices] == [(10, 20), (11, 21), (12, 22)]
    # update=False keeps the first; update=True replaces it.
    moved = _line(vertices=[nucleus.Point(1, 1), nucleus.Point(5, 5)])
    assert ds.annotate([moved])["annotations_ignored"] == 1
    assert ds.annotate([moved], update=True)["annotations_processed"] == 1
    [got] = ds.refloc("r0")["annotations"]["line"]
    assert [(p.x, p.y) for p in got.vertices] == [(1, 1), (5, 5)]
    # The export for training lists it under "line".
    rows = ds.items_and_annotations()
    lines = [a for row in rows for a in row["annotations"]["line"]]
    assert [a.annotation_id for a in lines] == ["l0"]


def test_line_mistakes_are_refused(ds: Any, live_db: Live) -> None:
    for bad, why in [(_line(vertices=[nucleus.Point(1, 1)]), "at least 2 vertices"),
                     (_line(vertices=[nucleus.Point(1, 1), nucleus.Point(900, 5)]),
                      "outside"),
                     (_line(label=""), "label is missing")]:
        with pytest.raises(nucleus.errors.NucleusAPIError, match=why):
            ds.annotate([bad])
    assert live_db.service.dataset_info(ds.id)["annotation_count"] == 0


def test_multicategory_round_trip_and_keys(ds: Any) -> None:
    first = nucleus.MultiCategoryAnnotation(labels=["a", "b"], reference_id="r0",
                                            taxonomy_name=TAGS)
    answer = ds.annotate([first])
    assert (answer["annotations_processed"], answer["annotations_ignored"]) == (1, 0)
    [got] = ds.refloc("r0")["annotations"]["multicategory"]
    assert isinstance(got, nucleus.MultiCategoryAnnotation)
    assert (set(got.labels), got.taxonomy_name) == ({"a", "b"}, TAGS)
    # One per item and taxonomy: a second is ignored, or with update replaces the first.
    second = nucleus.MultiCategoryAnnotation(labels=["b", "c"], reference_id="r0",
                                             taxonomy_name=TAGS)
    answer = ds.annotate([second])
    assert (answer["annotations_processed"], answer["annotations_ignored"]) == (0, 1)
    answer = ds.annotate([second], update=True)
    assert (answer["annotations_processed"], answer["annotations_ignored"]) == (1, 0)
    [got] = ds.refloc("r0")["annotations"]["multicategory"]
    assert set(got.labels) == {"b", "c"}
    # One that names no taxonomy is not checked, and is a key of its own.
    free = nucleus.MultiCategoryAnnotation(labels=["anything", "else"], reference_id="r0")
    assert ds.annotate([free])["annotations_processed"] == 1
    got = ds.refloc("r0")["annotations"]["multicategory"]
    assert sorted(sorted(g.labels) for g in got) == [["anything", "else"], ["b", "c"]]
    # Dataset reads that list labels take a label-less multicategory in their stride.
    assert ds.info().dataset_id == ds.id
    assert ds.export_class_labels() == []
    assert len(ds.items_and_annotations()[0]["annotations"]["multicategory"]) == 2
    # Deleting the item's annotations takes them with it.
    job = ds.delete_annotations(reference_ids=["r0"])
    job.sleep_until_complete(verbose_std_out=False)
    assert ds.refloc("r0")["annotations"].get("multicategory", []) == []


def test_multicategory_taxonomy_checks(ds: Any, live_db: Live) -> None:
    cases = [
        (nucleus.MultiCategoryAnnotation(labels=["a", "zz"], reference_id="r1",
                                         taxonomy_name=TAGS), "'zz' not in taxonomy"),
        (nucleus.MultiCategoryAnnotation(labels=["a"], reference_id="r1",
                                         taxonomy_name="nope"), "'nope' does not exist"),
        (nucleus.MultiCategoryAnnotation(labels=["x"], reference_id="r1",
                                         taxonomy_name="kind"), "of type 'category'"),
        (nucleus.CategoryAnnotation(label="a", reference_id="r1", taxonomy_name=TAGS),
         "of type 'multicategory'"),
        (nucleus.MultiCategoryAnnotation(labels=[], reference_id="r1"), "non-empty list"),
        (nucleus.MultiCategoryAnnotation(labels=["a", "a"], reference_id="r1"), "repeat"),
    ]
    for bad, why in cases:
        with pytest.raises(nucleus.errors.NucleusAPIError, match=why):
            ds.annotate([bad])
    assert live_db.service.dataset_info(ds.id)["annotation_count"] == 0


def test_line_predictions_and_ungrouped_export(ds: Any, nc: Any) -> None:
    run = nc.create_model("m", "m-ref").create_run("run", ds, [])
    pred = nucleus.LinePrediction(label="lane", reference_id="r0", annotation_id="p0",
                                  vertices=[nucleus.Point(10, 20), nucleus.Point(30, 40)],
                                  confidence=0.0)
    box = nucleus.BoxPrediction(label="car", x=1, y=1, width=5, height=5,
                                reference_id="r1", confidence=0.5)
    answer = run.predict([pred, box])
    assert (answer["predictions_processed"], answer["predictions_ignored"]) == (2, 0)
    [got] = run.refloc("r0")["line"]
    assert isinstance(got, nucleus.LinePrediction)
    assert (got.label, got.annotation_id, got.confidence) == ("lane", "p0", 0.0)
    assert [(p.x, p.y) for p in got.vertices] == [(10, 20), (30, 40)]
    everything = run.ungrouped_export()
    assert sorted(everything) == ["box", "line"]
    assert [p.annotation_id for p in everything["line"]] == ["p0"]
    # update replaces a prediction of the same id; without it, it is ignored.
    moved = nucleus.LinePrediction(label="lane2", reference_id="r0", annotation_id="p0",
                                   vertices=[nucleus.Point(1, 2), nucleus.Point(3, 4)],
                                   confidence=0.3)
    assert run.predict([moved])["predictions_ignored"] == 1
    assert run.predict([moved], update=True)["predictions_processed"] == 1
    assert [p.label for p in run.refloc("r0")["line"]] == ["lane2"]


def test_ungrouped_export_of_an_unknown_run(nc: Any, live_db: Live) -> None:
    import httpx
    answer = httpx.get(f"{live_db.url}/v1/nucleus/modelRun/run_nope/ungrouped",
                       auth=(live_db.key, ""))
    assert answer.status_code == 404
    assert "run_nope" in answer.text  # the run is named, not a route missing
