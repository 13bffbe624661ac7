"""Lines and multicategory annotations through Ocula's Python client, embedded and over
HTTP, on SQLite and PostgreSQL: round trips, taxonomies, refusals, queries
(``shape = line``, ``labels = "x"``), and their exclusion from detection metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocula import (
    BoxAnnotation,
    BoxPrediction,
    CategoryAnnotation,
    DatasetItem,
    LineAnnotation,
    LinePrediction,
    MultiCategoryAnnotation,
    MultiCategoryPrediction,
    Point,
)
from ocula.client.client import Client
from ocula.errors import BatchError, QueryError, ValidationError
from tests.conftest import make_images


@pytest.fixture
def ds(any_client: Client, tmp_path: Path) -> object:
    ds = any_client.create_dataset("anntypes")
    paths = make_images(tmp_path / "imgs", 3, size=(200, 100))
    ds.append([DatasetItem(str(p), f"r{i}") for i, p in enumerate(paths)])
    ds.add_taxonomy("scene", "multicategory", ["indoor", "outdoor", "night", "day"])
    ds.add_taxonomy("weather", "category", ["rain", "sun"])
    return ds


def _lane(ref: str = "r0", ann_id: str = "l0", **kw: object) -> LineAnnotation:
    return LineAnnotation("lane", [Point(10, 20), (50, 60), {"x": 90, "y": 20}], ref,
                          annotation_id=ann_id, **kw)


def test_round_trip(ds: object) -> None:
    tagged = MultiCategoryAnnotation(["outdoor", "night"], "r0", taxonomy_name="scene",
                                     metadata={"by": "me"})
    answer = ds.annotate([_lane(track_reference_id="lane-1"), tagged,
                          MultiCategoryAnnotation(["free", "form"], "r1")])
    assert answer["annotations_processed"] == 3
    got = ds.refloc("r0")["annotations"]
    [line] = got["line"]
    assert isinstance(line, LineAnnotation)
    assert [(v.x, v.y) for v in line.vertices] == [(10, 20), (50, 60), (90, 20)]
    assert (line.label, line.annotation_id, line.track_reference_id) == \
        ("lane", "l0", "lane-1")
    [multi] = got["multicategory"]
    assert isinstance(multi, MultiCategoryAnnotation)
    assert (multi.labels, multi.taxonomy_name, multi.metadata, multi.label) == \
        (["outdoor", "night"], "scene", {"by": "me"}, None)
    assert [a.labels for a in ds.refloc("r1")["annotations"]["multicategory"]] == \
        [["free", "form"]]
    assert [t["type"] for t in ds.taxonomies()] == ["multicategory", "category"]
    # Counts and insights take them in: a multicategory has no single label.
    info = ds.info()
    assert (info["annotation_count"], info["labels"].get("lane")) == (3, 1)
    charts = ds.insights()
    assert sum(b["count"] for b in charts["labels"]["annotations"]) == 3


def test_predictions_round_trip(ds: object, any_client: Client) -> None:
    model = any_client.add_model("m", "m-ref")
    run = model.create_run("run", ds, [
        LinePrediction("lane", [(1, 2), (3, 4)], "r0", annotation_id="p", confidence=0.0),
        MultiCategoryPrediction(["day", "outdoor"], "r0", taxonomy_name="scene",
                                confidence=0.7)])
    preds = {p.type: p for p in run.predictions(["r0"])}
    assert isinstance(preds["line"], LinePrediction)
    assert (preds["line"].confidence, [(v.x, v.y) for v in preds["line"].vertices]) == \
        (0.0, [(1, 2), (3, 4)])
    assert isinstance(preds["multicategory"], MultiCategoryPrediction)
    assert (preds["multicategory"].labels, preds["multicategory"].confidence) == \
        (["day", "outdoor"], 0.7)


@pytest.mark.parametrize("bad, why", [
    (LineAnnotation("lane", [(1, 2)], "r0"), "at least 2 vertices"),
    (LineAnnotation("lane", [(1, 2), (float("nan"), 3)], "r0"), "finite numbers"),
    (LineAnnotation("lane", [(1, 2), (300, 3)], "r0"), "outside the 200×100 image"),
    (MultiCategoryAnnotation([], "r0"), "non-empty list"),
    (MultiCategoryAnnotation(["a", " "], "r0"), "non-blank string"),
    (MultiCategoryAnnotation(["a", "a"], "r0"), "repeat"),
    (MultiCategoryAnnotation(["indoor", "attic"], "r0", taxonomy_name="scene"),
     "'attic' not in taxonomy 'scene'"),
    (MultiCategoryAnnotation(["rain"], "r0", taxonomy_name="weather"),
     "of type 'category'"),
    (MultiCategoryAnnotation(["x"], "r0", taxonomy_name="nope"), "'nope' does not exist"),
    (CategoryAnnotation("indoor", "r0", taxonomy_name="scene"), "of type 'multicategory'"),
])
def test_refusals(ds: object, bad: object, why: str) -> None:
    with pytest.raises(BatchError, match=why):
        ds.annotate([_lane(ann_id="good"), bad])
    assert ds.info()["annotation_count"] == 0  # nothing half-written


def test_taxonomy_calls(ds: object) -> None:
    assert ds.add_taxonomy("scene", "multicategory", ["dusk"])["status"] == \
        "Taxonomy already exists"
    assert ds.add_taxonomy("scene", "multicategory", ["dusk"], update=True)["status"] == \
        "Taxonomy updated"
    with pytest.raises(ValidationError, match="of type 'multicategory', not 'category'"):
        ds.add_taxonomy("scene", "category", ["x"], update=True)
    assert ds.annotate([MultiCategoryAnnotation(["dusk"], "r2", taxonomy_name="scene")])[
        "annotations_processed"] == 1
    assert ds.delete_taxonomy("weather")["status"] == "Taxonomy successfully deleted"
    assert [t["name"] for t in ds.taxonomies()] == ["scene"]


def test_queries(ds: object) -> None:
    ds.annotate([_lane("r0"), _lane("r1", "l1"),
                 BoxAnnotation("car", 1, 1, 10, 10, "r1", annotation_id="b"),
                 MultiCategoryAnnotation(["outdoor", "night"], "r0", taxonomy_name="scene"),
                 MultiCategoryAnnotation(["indoor", "day"], "r2", taxonomy_name="scene")])
    lines = list(ds.query_objects("shape = line"))
    assert sorted(a.annotation_id for a in lines) == ["l0", "l1"]
    assert all(isinstance(a, LineAnnotation) for a in lines)
    # A line's box bounds its points; it has no area, so area tests pass it by.
    assert len(list(ds.query_objects("shape = line and width = 80 and height = 40"))) == 2
    assert list(ds.query_objects("shape = line and area < 1000")) == []

    def refs(q: str) -> list[str]:
        return sorted(o["reference_id"] for o in ds.query_objects(q, raw=True))
    assert refs('labels = "night"') == ["r0"]
    assert refs('labels in ["night", "indoor"]') == ["r0", "r2"]
    assert refs('labels = "car"') == []  # a box's label is not a multicategory's
    assert refs('shape = multicategory and not labels = "night"') == ["r2"]
    assert sorted(i.reference_id for i in ds.query_items('has(labels = "day")')) == ["r2"]
    assert sorted(i.reference_id for i in ds.query_items("count(shape = line) = 1")) == \
        ["r0", "r1"]
    with pytest.raises(QueryError, match="quotes"):
        ds.query_items("has(labels = night)")
    assert "label" in ds.describe_query('labels = "night"', "objects")


def test_lines_and_multicategory_take_no_part_in_detection_metrics(
        ds: object, any_client: Client) -> None:
    ds.annotate([BoxAnnotation("car", 10, 10, 20, 20, "r0", annotation_id="b"), _lane(),
                 MultiCategoryAnnotation(["day"], "r0", taxonomy_name="scene")])
    run = any_client.add_model("m", "m-ref").create_run("run", ds, [
        BoxPrediction("car", 10, 10, 20, 20, "r0", confidence=0.9),
        LinePrediction("lane", [(10, 20), (50, 60)], "r0", confidence=0.9),
        MultiCategoryPrediction(["day"], "r0", confidence=0.9)])
    run.commit()
    metrics = run.metrics()
    assert sorted(c["label"] for c in metrics["per_class"]) == ["car"]
    [car] = metrics["per_class"]
    assert (car["num_ground_truth"], car["num_detections"]) == (1, 1)
    assert (car["at_threshold"]["tp"], car["at_threshold"]["fp"]) == (1, 0)


def test_interactive_edits(ds: object, any_client: Client) -> None:
    """A line's vertices and a multicategory's labels are edited in place (new
    versions, checked as uploads are), and a line prediction accepted as ground truth."""
    ds.annotate([_lane(), MultiCategoryAnnotation(["day"], "r0", taxonomy_name="scene")])
    item = ds.item("r0")
    stored = {a["type"]: a for a in item.labels()}
    item.update(stored["line"]["id"], stored["line"]["version"],
                geometry={"vertices": [{"x": 0, "y": 0}, {"x": 5, "y": 5}]})
    item.update(stored["multicategory"]["id"], stored["multicategory"]["version"],
                geometry={"labels": ["night", "indoor"]})
    got = ds.refloc("r0")["annotations"]
    assert [(v.x, v.y) for v in got["line"][0].vertices] == [(0, 0), (5, 5)]
    assert got["multicategory"][0].labels == ["night", "indoor"]
    fresh = {a["type"]: a for a in item.labels()}
    with pytest.raises(ValidationError, match="'attic' not in taxonomy"):
        item.update(fresh["multicategory"]["id"], fresh["multicategory"]["version"],
                    geometry={"labels": ["attic"]})
    with pytest.raises(ValidationError, match="at least 2 vertices"):
        item.update(fresh["line"]["id"], fresh["line"]["version"],
                    geometry={"vertices": [{"x": 0, "y": 0}]})
    run = any_client.add_model("m", "m-ref").create_run("run", ds, [
        LinePrediction("kerb", [(1, 1), (9, 9)], "r0", confidence=0.8)])
    [pred] = run.predictions()
    pid = next(p["id"] for p in any_client._backend.list_predictions(run.id))
    item.accept_prediction(pid)
    kerbs = [a for a in ds.refloc("r0")["annotations"]["line"] if a.label == "kerb"]
    assert [[(v.x, v.y) for v in k.vertices] for k in kerbs] == [[(1, 1), (9, 9)]]
    assert pred.label == "kerb"
