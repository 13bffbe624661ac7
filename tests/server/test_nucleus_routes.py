"""Nucleus routes the official client's own suite checks word for word, with the pinned
client on both databases: delete answers, the job list, and routes Ocula does not
support answering 501 with the route's name (never a 404 that looks like a bug)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import make_images
from tests.server.conftest import Live

nucleus = pytest.importorskip(
    "nucleus", reason="scale-nucleus is not installed (pip install scale-nucleus==0.22.3)")


def test_delete_answers_are_nucleus_words(nc: object, live_db: Live) -> None:
    ds = nc.create_dataset("gone", is_scene=False)
    assert nc.delete_dataset(ds.id) == {"message": "Beginning dataset deletion..."}
    assert live_db.service.list_datasets() == []  # already gone, despite the words
    model = nc.create_model("m", "m-ref")
    answer = nc.delete_model(model.id)
    assert answer["msg"] == "Model deletion running in an async job"
    assert nc.models == []


def test_job_list(nc: object, live_db: Live, tmp_path: Path) -> None:
    ds = nc.create_dataset("jobs", is_scene=False)
    path = make_images(tmp_path / "imgs", 1)[0]
    job = ds.append([nucleus.DatasetItem(image_location=str(path), reference_id="a")])
    job.sleep_until_complete(verbose_std_out=False)
    listed = nc.list_jobs(show_completed=True)
    assert [j.job_id for j in listed] == [job.job_id]
    assert nc.list_jobs(show_completed=False) == []
    answer = httpx.post(f"{live_db.url}/v1/nucleus/jobs/", auth=(live_db.key, ""),
                        json={"limit": 10**9})
    assert answer.status_code == 422 and "limit must be" in answer.json()["detail"]


def test_unsupported_routes_say_so(live_db: Live) -> None:
    answer = httpx.post(f"{live_db.url}/v1/nucleus/dataset/ds_x/indexing",
                        auth=(live_db.key, ""), json={})
    assert answer.status_code == 501
    assert answer.json() == {"error": "not_supported", "detail": (
        "the Nucleus route 'dataset/ds_x/indexing' is not supported by Ocula "
        "(docs/nucleus.md lists what is)")}
    # An id holding an encoded "/" only misses its route: the caller's mistake, a 404.
    answer = httpx.post(f"{live_db.url}/v1/nucleus/slice/a%2Fb/append",
                        auth=(live_db.key, ""), json={"reference_ids": ["x"]})
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"


def test_class_labels(nc: object, tmp_path: Path) -> None:
    ds = nc.create_dataset("labels", is_scene=False)
    paths = make_images(tmp_path / "imgs", 2)
    ds.append([nucleus.DatasetItem(image_location=str(p), reference_id=f"r{i}")
               for i, p in enumerate(paths)]).sleep_until_complete(verbose_std_out=False)
    assert ds.export_class_labels() == []
    ds.annotate([nucleus.BoxAnnotation(label=label, x=1, y=1, width=5, height=5,
                                       reference_id=ref, annotation_id=f"{ref}-{label}")
                 for ref, label in [("r0", "dog"), ("r0", "cat"), ("r1", "emu")]])
    assert ds.export_class_labels() == ["cat", "dog", "emu"]
    slc = ds.create_slice("one", reference_ids=["r1"])
    assert ds.export_class_labels(slice_id=slc.id) == ["emu"]


def test_one_object_by_reference_and_annotation_id(nc: object, tmp_path: Path) -> None:
    """The client joins both ids with an unencoded "/", and either may hold one."""
    ds = nc.create_dataset("loc", is_scene=False)
    path = make_images(tmp_path / "imgs", 1)[0]
    ref = "cam/1.jpg"
    ds.append([nucleus.DatasetItem(image_location=str(path), reference_id=ref)]
              ).sleep_until_complete(verbose_std_out=False)
    ds.annotate([nucleus.BoxAnnotation(label="car", x=1, y=2, width=5, height=6,
                                       reference_id=ref, annotation_id=aid)
                 for aid in ("a/b", "c")])
    got = ds.ground_truth_loc(ref, "a/b")
    assert (got.label, got.annotation_id, got.x, got.height) == ("car", "a/b", 1, 6)
    with pytest.raises(nucleus.errors.NucleusAPIError, match="no annotation"):
        ds.ground_truth_loc(ref, "zzz")
    run = nc.create_model("m", "m-ref").create_run("run", ds, [nucleus.BoxPrediction(
        label="car", x=1, y=2, width=5, height=6, reference_id=ref, annotation_id="p",
        confidence=0.25)])
    pred = run.prediction_loc(ref, "p")
    assert (pred.label, pred.confidence) == ("car", 0.25)


def test_async_annotate_reports_its_counts(nc: object, tmp_path: Path) -> None:
    ds = nc.create_dataset("counts", is_scene=False)
    path = make_images(tmp_path / "imgs", 1)[0]
    ds.append([nucleus.DatasetItem(image_location=str(path), reference_id="r0")]
              ).sleep_until_complete(verbose_std_out=False)
    job = ds.annotate([nucleus.CategoryAnnotation(label="cat", reference_id="r0")],
                      asynchronous=True)
    job.sleep_until_complete(verbose_std_out=False)
    status = job.status()
    assert status["status"] == "Completed" and status["job_progress"] == "1.00"
    assert status["message"] == {"annotation_upload": {
        "total": 1, "errored": 0, "ignored": 0, "datasetId": ds.id, "processed": 1}}
