"""The run page's links: each confusion-matrix cell and failure-summary number carries an
object query that selects exactly the objects it counts, on both databases.

The scene is built so every kind of cell occurs: a diagonal too big to list by id (its
committed-match query is checked and used), a background column too big to list whose
committed-match query differs (the dogs are found, but only below the confidence cut:
no link rather than an inexact one), a cross-class confusion and background rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ocula import BoxAnnotation, BoxPrediction, DatasetItem
from ocula.core.services import Service
from ocula.core.services.evaluation_links import MAX_LINK_QUERY
from ocula.errors import QueryError, ValidationError
from tests.conftest import make_images

N = 400  # enough ids that a whole-row cell no longer fits in a link


def _scene(service: Service, folder: Path) -> tuple[str, str]:
    paths = make_images(folder, N, size=(200, 150))
    ds = service.create_dataset("links")["id"]
    service.append(ds, [DatasetItem(str(p), f"r{i}") for i, p in enumerate(paths)])
    anns, preds = [], []
    for i in range(N):
        ref = f"r{i}"
        anns += [BoxAnnotation("person", 10, 10, 40, 80, reference_id=ref),
                 BoxAnnotation("dog", 60, 90, 30, 30, reference_id=ref)]
        preds += [BoxPrediction("person", 11, 10, 40, 80, reference_id=ref, confidence=0.9),
                  BoxPrediction("dog", 60, 91, 30, 30, reference_id=ref, confidence=0.3)]
        if i % 5 == 0:  # a car taken for a person: a confusion, not a plain FP + FN
            anns.append(BoxAnnotation("car", 120, 20, 60, 40, reference_id=ref,
                                      annotation_id=f"car{i}"))
            preds.append(BoxPrediction("person", 121, 21, 60, 40, reference_id=ref,
                                       confidence=0.8))
        if i % 7 == 0:  # a car where there is nothing
            preds.append(BoxPrediction("car", 150, 110, 30, 30, reference_id=ref,
                                       confidence=0.7))
    service.annotate(ds, anns)
    model = service.add_model("m", "m")["id"]
    run = service.create_run(model, ds, "run \"one\"", preds)["id"]
    service.commit_run(run)
    service.create_slice(ds, "first", reference_ids=[f"r{i}" for i in range(100)])
    return ds, run


def _ids(service: Service, ds: str, query: str, slice_id: str | None) -> list[str]:
    out: list[str] = []
    cursor = None
    while True:
        page = service.query_objects(ds, query, slice=slice_id, page_size=1000, cursor=cursor)
        out += [o["id"] for o in page["objects"]]
        cursor = page["next_cursor"]
        if not cursor:
            return out


def _cell_ids(cm: dict[str, Any], r: int, c: int) -> list[str]:
    missed = c == len(cm["labels"]) - 1
    return [e["annotation_id" if missed else "prediction_id"] for e in cm["cells"]
            if e["row"] == r and e["col"] == c]


@pytest.mark.parametrize("scope", [None, "first"])
def test_confusion_cell_queries_select_their_objects(service: Service, tmp_path: Path,
                                                     scope: str | None) -> None:
    ds, run = _scene(service, tmp_path / "img")
    slice_id = None
    if scope:
        slice_id = next(s["id"] for s in service.list_slices(ds) if s["name"] == scope)
    cm = service.run_metrics(run, slice=slice_id, cells=True)["confusion_matrix"]
    labels, counts, queries = cm["labels"], cm["counts"], cm["queries"]
    # What the commit kept (its queries found without running them) is what a fresh
    # computation finds.
    kept = service.run_metrics(run, slice=slice_id)["confusion_matrix"]
    assert kept["queries"] == queries and kept["counts"] == counts
    assert labels == ["car", "dog", "person", "background"]
    n = 100 if scope else N
    assert counts[labels.index("car")][labels.index("person")] == n // 5
    assert counts[2][2] == n and counts[1][3] == n  # every dog missed at 0.5
    linked = 0
    for r, row in enumerate(queries):
        for c, query in enumerate(row):
            if counts[r][c] == 0:
                assert query is None
                continue
            if query is None:
                continue
            assert len(query) <= MAX_LINK_QUERY
            got = _ids(service, ds, query, slice_id)
            assert sorted(got) == sorted(_cell_ids(cm, r, c)), (r, c, query[:80])
            total = service.query_objects(ds, query, slice=slice_id, with_total=True)["total"]
            assert total == counts[r][c]
            linked += 1
    assert linked == (4 if scope else 3)  # on the whole set, not the 400 missed dogs
    # Small cells are listed by id; the big diagonal uses the committed matches, checked.
    assert "id in [" in queries[0][2]
    if not scope:
        assert queries[2][2] is not None and "status = tp" in queries[2][2]
        # The missed dogs were found by the committed (cut-free) matching: no exact
        # committed-match query, and too many ids for a link.
        assert queries[1][3] is None


def test_failure_summary_queries_count_its_numbers(service: Service, tmp_path: Path) -> None:
    ds, run = _scene(service, tmp_path / "img")
    summary = service.failure_summary(run)
    seen = 0
    for part in ("false_positives", "false_negatives"):
        for key, n in summary[part].items():
            query = summary["queries"][part][key]
            assert service.query_objects(ds, query, with_total=True)["total"] == n, (key, query)
            seen += n
    # Every FP is a person taken for a car or a car where there is nothing; every FN
    # a car (the dogs are found below the metrics' cut, but found).
    assert sum(summary["false_positives"].values()) == N // 5 + (N + 6) // 7
    assert sum(summary["false_negatives"].values()) == N // 5
    assert seen > 0


def test_links_after_the_labels_change(service: Service, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Cars moved after the commit: the summary still counts the committed (old) rows,
    which no query sees, so those numbers lose their link; the matrix of the old label
    version keeps only links whose ids still select the very rows it counted."""
    ds, run = _scene(service, tmp_path / "img")
    service.annotate(ds, [BoxAnnotation("car", 124, 20, 60, 40, reference_id=f"r{i}",
                                        annotation_id=f"car{i}") for i in range(0, N, 5)],
                     update=True)
    summary = service.failure_summary(run)
    assert summary["false_negatives"]["medium"] == N // 5  # the committed, now old, cars
    assert summary["queries"]["false_negatives"]["medium"] is None
    assert summary["queries"]["false_positives"]["background"] is not None
    first = next(s["id"] for s in service.list_slices(ds) if s["name"] == "first")
    cm = service.run_metrics(run, slice=first, annotation_version=1,
                             cells=True)["confusion_matrix"]
    labels, queries = cm["labels"], cm["queries"]
    car, dog, bg = labels.index("car"), labels.index("dog"), len(labels) - 1
    assert queries[car][labels.index("person")] is not None  # predictions: unversioned
    assert queries[dog][bg] is not None  # dogs unchanged: the same rows
    for r, row in enumerate(queries):
        for c, query in enumerate(row):
            if query is not None:
                assert sorted(_ids(service, ds, query, first)) == sorted(_cell_ids(cm, r, c))
    # A missed dog moved: at version 1 its cell holds the old row, which its id no longer
    # selects. The missed cells' id queries are checked all at once; one by one, the
    # same links pass.
    dog_box = next(a for a in service.get_item(ds, reference_id="r0")["annotations"]["box"]
                   if a["label"] == "dog")
    service.edit_annotations(ds, "r0", [{"op": "update", "id": dog_box["id"],
                                         "expected": dog_box["version"],
                                         "geometry": {"x": 61}}])
    from ocula.core.services import metrics_body

    def matrix() -> dict[str, Any]:
        return service.run_metrics(run, slice=first, annotation_version=1,
                                   cells=True)["confusion_matrix"]
    moved = matrix()
    assert moved["counts"] == cm["counts"]
    assert queries[dog][bg] is not None and moved["queries"][dog][bg] is None
    assert [q for i, q in enumerate(moved["queries"]) if i != dog] == [
        q for i, q in enumerate(queries) if i != dog]
    real = metrics_body.confusion_queries
    monkeypatch.setattr(metrics_body, "confusion_queries",
                        lambda *a, **kw: real(*a, **{**kw, "by_id": None}))
    assert matrix()["queries"] == moved["queries"]
    assert service.run_metrics(run, slice=first, annotation_version=1, cells=True)[
        "confusion_matrix"]["queries"] == moved["queries"]


def test_failure_summary_of_a_slice(service: Service, tmp_path: Path) -> None:
    ds, run = _scene(service, tmp_path / "img")
    first = next(s["id"] for s in service.list_slices(ds) if s["name"] == "first")
    whole, part = service.failure_summary(run), service.failure_summary(run, slice=first)
    assert sum(part["false_negatives"].values()) == 100 // 5
    assert sum(part["false_positives"].values()) < sum(whole["false_positives"].values())
    for kind in ("false_positives", "false_negatives"):
        for key, n in part[kind].items():
            query = part["queries"][kind][key]
            assert service.query_objects(ds, query, slice=first, with_total=True)["total"] == n


def test_metrics_on_the_items_a_query_selects(service: Service, tmp_path: Path) -> None:
    """A query scope scores the items it selects: the same numbers as a slice of those
    items, and links that keep to them (``item(...)`` in the committed-match queries)."""
    ds, run = _scene(service, tmp_path / "img")
    query = 'has(label = "car")'  # every 5th item
    service.create_slice(ds, "cars", reference_ids=[f"r{i}" for i in range(0, N, 5)])
    by_query = service.run_metrics(run, query=query, cells=True)
    by_slice = service.run_metrics(run, slice="cars")
    assert by_query["stats"] == by_slice["stats"]
    assert by_query["confusion_matrix"]["counts"] == by_slice["confusion_matrix"]["counts"]
    assert by_query["confusion_matrix"]["counts"] != \
        service.run_metrics(run)["confusion_matrix"]["counts"]
    both = service.run_metrics(run, slice="first", query=query)
    assert both["operating_point"]["tp"] == 100 // 5  # the person on each of the 20 items
    cm = by_query["confusion_matrix"]
    for r, row in enumerate(cm["queries"]):
        for c, q in enumerate(row):
            if q is not None:
                assert sorted(_ids(service, ds, q, None)) == sorted(_cell_ids(cm, r, c))
    summary = service.failure_summary(run, query=query)
    assert summary == {**service.failure_summary(run, slice="cars"), "slice": None,
                       "query": query, "queries": summary["queries"]}
    for part in ("false_positives", "false_negatives"):
        for key, n in summary[part].items():
            q = summary["queries"][part][key]
            assert "item(" in q
            assert service.query_objects(ds, q, with_total=True)["total"] == n
    with pytest.raises(ValidationError):
        service.run_metrics(run, query=f"{query} limit 3")
    with pytest.raises(QueryError):
        service.run_metrics(run, query="label = ")
