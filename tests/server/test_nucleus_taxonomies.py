"""Taxonomies and partial batches with the pinned ``scale-nucleus`` client, on both
databases: ``add_taxonomy`` / ``delete_taxonomy``, category labels checked against the
taxonomy they name, and a Nucleus batch with unknown reference ids writing the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ocula import BoxAnnotation
from ocula.client.client import Client
from ocula.errors import BatchError
from tests.conftest import make_images
from tests.server.conftest import Live

nucleus = pytest.importorskip(
    "nucleus", reason="scale-nucleus is not installed (pip install scale-nucleus==0.22.3)")



@pytest.fixture
def ds(nc: object, tmp_path: Path) -> object:
    ds = nc.create_dataset("taxa", is_scene=False)
    paths = make_images(tmp_path / "imgs", 2)
    ds.append([nucleus.DatasetItem(image_location=str(p), reference_id=f"r{i}")
               for i, p in enumerate(paths)]).sleep_until_complete(verbose_std_out=False)
    return ds


def test_taxonomy_statuses(ds: object) -> None:
    answer = ds.add_taxonomy("clothes", "category", ["shirt", "dress"])
    assert answer == {"dataset_id": ds.id, "taxonomy_name": "clothes",
                      "status": "Taxonomy created"}
    assert ds.add_taxonomy("clothes", "category", ["hat"])["status"] == \
        "Taxonomy already exists"
    assert ds.add_taxonomy("clothes", "category", ["hat"], update=True)["status"] == \
        "Taxonomy updated"
    assert ds.add_taxonomy("tags", "multicategory", ["a", "b"])["status"] == \
        "Taxonomy created"
    with pytest.raises(nucleus.errors.NucleusAPIError, match="unknown taxonomy type"):
        ds.add_taxonomy("x", "polygon", ["a"])
    with pytest.raises(nucleus.errors.NucleusAPIError, match="non-empty list"):
        ds.add_taxonomy("x", "category", [])
    deleted = ds.delete_taxonomy("clothes")
    assert deleted["status"] == "Taxonomy successfully deleted"
    with pytest.raises(nucleus.errors.NucleusAPIError, match="no taxonomy 'clothes'"):
        ds.delete_taxonomy("clothes")


def test_category_annotations_follow_their_taxonomy(ds: object, live_db: Live) -> None:
    ds.add_taxonomy("clothes", "category", ["shirt", "dress"])
    good = nucleus.CategoryAnnotation(label="dress", reference_id="r0",
                                      taxonomy_name="clothes")
    answer = ds.annotate([good])
    assert (answer["annotations_processed"], answer["errors"]) == (1, [])
    stored = ds.refloc("r0")["annotations"]["category"]
    assert [(a.label, a.taxonomy_name) for a in stored] == [("dress", "clothes")]
    plain = nucleus.CategoryAnnotation(label="anything", reference_id="r1")
    assert ds.annotate([plain])["annotations_processed"] == 1  # names no taxonomy
    for bad, why in [
        (nucleus.CategoryAnnotation(label="hat", reference_id="r1", taxonomy_name="clothes"),
         "not in taxonomy 'clothes'"),
        (nucleus.CategoryAnnotation(label="hat", reference_id="r1", taxonomy_name="nope"),
         "taxonomy 'nope' does not exist"),
    ]:
        with pytest.raises(nucleus.errors.NucleusAPIError, match=why):
            ds.annotate([bad])
    # The same check on Ocula's own API (one service): refused whole, nothing written.
    assert live_db.service.dataset_info(ds.id)["annotation_count"] == 2


def test_nucleus_batches_with_unknown_reference_ids_write_the_rest(
        ds: object, nc: object, live_db: Live) -> None:
    boxes = [nucleus.BoxAnnotation(label="car", x=1, y=1, width=5, height=5,
                                   reference_id=ref, annotation_id=f"b-{ref}")
             for ref in ("r0", "ghost", "r1")]
    answer = ds.annotate(boxes)
    assert answer["annotations_processed"] == 2
    assert len(answer["errors"]) == 1 and answer["errors"][0].startswith("ghost: ")
    assert [len(ds.refloc(r)["annotations"]["box"]) for r in ("r0", "r1")] == [1, 1]
    model = nc.create_model("m", "m-ref")
    run = model.create_run("run", ds, [])
    preds = [nucleus.BoxPrediction(label="car", x=1, y=1, width=5, height=5,
                                   reference_id=ref, confidence=0.5) for ref in ("ghost", "r0")]
    answer = run.predict(preds)
    assert answer["predictions_processed"] == 1 and "ghost" in answer["errors"][0]
    # Only unknown items are partial: a bad geometry still refuses the whole batch.
    bad = [nucleus.BoxAnnotation(label="car", x=1, y=1, width=-5, height=5,
                                 reference_id="r0", annotation_id="neg"),
           nucleus.BoxAnnotation(label="car", x=1, y=1, width=5, height=5,
                                 reference_id="ghost", annotation_id="g2")]
    with pytest.raises(nucleus.errors.NucleusAPIError):
        ds.annotate(bad)
    # Ocula's own API stays all-or-nothing.
    oc = Client(live_db.url, api_key=live_db.key)
    with pytest.raises(BatchError):
        oc.get_dataset(ds.id).annotate([BoxAnnotation("car", 1, 1, 5, 5, reference_id="r0",
                                                      annotation_id="x"),
                                        BoxAnnotation("car", 1, 1, 5, 5,
                                                      reference_id="ghost")])
    assert live_db.service.dataset_info(ds.id)["annotation_count"] == 2


def test_one_category_per_item_and_taxonomy(ds: object, nc: object) -> None:
    """As in Nucleus: a second category of the same taxonomy on an item, sent without an
    id, is ignored, or with ``update`` replaces the first; predictions alike."""
    ds.add_taxonomy("clothes", "category", ["shirt", "dress"])

    def cat(label: str, cls: Any = nucleus.CategoryAnnotation, **kw: Any) -> Any:
        return cls(label=label, reference_id="r0", taxonomy_name="clothes", **kw)

    assert ds.annotate([cat("shirt")])["annotations_processed"] == 1
    answer = ds.annotate([cat("dress")])
    assert (answer["annotations_processed"], answer["annotations_ignored"]) == (0, 1)
    assert [a.label for a in ds.refloc("r0")["annotations"]["category"]] == ["shirt"]
    answer = ds.annotate([cat("dress")], update=True)
    assert (answer["annotations_processed"], answer["annotations_ignored"]) == (1, 0)
    assert [a.label for a in ds.refloc("r0")["annotations"]["category"]] == ["dress"]
    # A category of no taxonomy is a key of its own.
    plain = nucleus.CategoryAnnotation(label="x", reference_id="r0")
    assert ds.annotate([plain])["annotations_processed"] == 1
    assert len(ds.refloc("r0")["annotations"]["category"]) == 2

    run = nc.create_model("m", "m-ref").create_run("run", ds, [])
    pred = {"cls": nucleus.CategoryPrediction, "confidence": 0.5}
    assert run.predict([cat("shirt", **pred)])["predictions_processed"] == 1
    assert run.predict([cat("dress", **pred)])["predictions_ignored"] == 1
    assert run.predict([cat("dress", **pred)], update=True)["predictions_processed"] == 1
    assert [p.label for p in run.refloc("r0")["category"]] == ["dress"]


def test_asynchronous_predictions_report_unknown_items(ds: object, nc: object,
                                                      live_db: Live) -> None:
    """``predict(asynchronous=True)``: the predictions go up as a signed NDJSON upload
    and are written by a job; an unknown item is reported, the rest written."""
    run = nc.create_model("m", "m-ref").create_run("run", ds, [])
    preds = [nucleus.BoxPrediction(label="car", x=1, y=1, width=5, height=5,
                                   reference_id=ref, confidence=0.5) for ref in ("r0", "ghost")]
    job = run.predict(preds, asynchronous=True)
    # Nucleus ends such a job Completed (the client's wait would raise on an error
    # status); the unknown entry is in its errors, in Nucleus' words.
    job.sleep_until_complete(verbose_std_out=False)
    status = job.status()
    assert (status["status"], status["job_progress"]) == ("Completed", "1.00")
    assert job.errors() == ["ghost: Item with id ghost doesn't exist."]
    # Ocula's own job record keeps the partial outcome.
    assert live_db.service.job_info(job.job_id)["status"] == "Errored_Partial"
    assert [len(run.refloc(r)["box"]) for r in ("r0",)] == [1]


def test_asynchronous_annotations_report_unknown_items(ds: object, nc: object) -> None:
    boxes = [nucleus.BoxAnnotation(label="car", x=1, y=1, width=5, height=5,
                                   reference_id=ref, annotation_id=f"b-{ref}")
             for ref in ("r0", "fake_garbage")]
    job = ds.annotate(boxes, asynchronous=True)
    job.sleep_until_complete(verbose_std_out=False)
    status = job.status()
    assert status["status"] == "Completed"
    assert status["message"]["annotation_upload"]["errored"] == 1
    assert "Item with id fake_garbage doesn't exist." in str(job.errors())
    assert [a.annotation_id for a in ds.refloc("r0")["annotations"]["box"]] == ["b-r0"]
