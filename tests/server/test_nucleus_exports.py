"""Slice pages and exports, annotation deletion and the (empty) autotag list, with the
pinned client and raw HTTP on both databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_images
from tests.server.conftest import Live

nucleus = pytest.importorskip(
    "nucleus", reason="scale-nucleus is not installed (pip install scale-nucleus==0.22.3)")


def _dataset(nc: Any, tmp_path: Path, n: int) -> Any:
    ds = nc.create_dataset("exports", is_scene=False)
    paths = make_images(tmp_path / "imgs", n)
    ds.append([nucleus.DatasetItem(image_location=str(p), reference_id=f"r{i}",
                                   metadata={"i": i})
               for i, p in enumerate(paths)]).sleep_until_complete(verbose_std_out=False)
    return ds


def test_slice_pages_and_exports(nc: Any, live_db: Live, tmp_path: Path) -> None:
    ds = _dataset(nc, tmp_path, 4)
    ds.annotate([nucleus.BoxAnnotation(label="dog", x=1, y=2, width=3, height=4,
                                       reference_id="r1", annotation_id="b1")])
    slc = ds.create_slice("three", reference_ids=["r0", "r1", "r3"])
    # paged one item at a time: every item once, in order
    assert [i.reference_id for i in slc.items_generator(page_size=1)] == ["r0", "r1", "r3"]
    rows = list(slc.items_and_annotation_generator())
    assert [r["item"].reference_id for r in rows] == ["r0", "r1", "r3"]
    boxes = rows[1]["annotations"]["box"]
    assert [(b.label, b.x, b.y, b.width, b.height) for b in boxes] == [("dog", 1, 2, 3, 4)]
    assert rows[0]["annotations"]["box"] == []
    raw = slc.export_raw_items()["raw_dataset_items"]
    assert [r["ref_id"] for r in raw] == ["r0", "r1", "r3"]
    assert raw[1]["metadata"] == {"i": 1}
    original = (tmp_path / "imgs").glob("*")
    assert raw[0]["original_url"] in {str(p) for p in original}
    # the image Ocula stores, byte for byte what was uploaded
    image = httpx.get(raw[0]["scale_url"])
    assert image.status_code == 200 and image.content == Path(raw[0]["original_url"]).read_bytes()


def test_slice_page_mistakes(live_db: Live, nc: Any, tmp_path: Path) -> None:
    ds = _dataset(nc, tmp_path, 1)
    slc = ds.create_slice("s", reference_ids=["r0"])
    cases = [({"pageSize": -1}, 422, "pageSize must be"),
             ({"pageSize": "2"}, 422, "pageSize must be"),
             ({"pageToken": "x"}, 422, "malformed pageToken"),
             ({"query": "metadata.i > 1"}, 400, "queries are not supported")]
    for body, status, words in cases:
        for route in ("itemsPage", "exportForTrainingPage"):
            answer = httpx.post(f"{live_db.url}/v1/nucleus/slice/{slc.id}/{route}",
                                auth=(live_db.key, ""), json=body)
            assert answer.status_code == status, answer.text
            assert words in answer.json()["detail"]
    answer = httpx.get(f"{live_db.url}/v1/nucleus/slice/slc_nope/exportRawItems",
                       auth=(live_db.key, ""))
    assert answer.status_code == 404


def test_delete_annotations_of_items(nc: Any, live_db: Live, tmp_path: Path) -> None:
    ds = _dataset(nc, tmp_path, 2)
    ds.annotate([nucleus.BoxAnnotation(label="dog", x=1, y=1, width=3, height=3,
                                       reference_id=ref, annotation_id=f"b-{ref}")
                 for ref in ("r0", "r1")])
    job = ds.delete_annotations(reference_ids=["r0"])
    job.sleep_until_complete(verbose_std_out=False)
    assert job.status()["status"] == "Completed"
    left = live_db.service.list_annotations(ds.id)
    assert [a["reference_id"] for a in left] == ["r1"]
    # the items themselves stay; the deleted box stays readable at its version
    assert len(ds.items) == 2
    assert len(live_db.service.list_annotations(ds.id, version=1)) == 2


def test_delete_annotations_mistakes(nc: Any, live_db: Live, tmp_path: Path) -> None:
    ds = _dataset(nc, tmp_path, 1)
    url, auth = f"{live_db.url}/v1/nucleus/annotation/{ds.id}", (live_db.key, "")
    for body, words in [({"reference_ids": []}, "at least one item"),
                        ({"reference_ids": ["r0"], "keep_history": False}, "keep_history"),
                        ({"reference_ids": [3]}, "must be a string")]:
        answer = httpx.request("DELETE", url, auth=auth, json=body)
        assert answer.status_code == 422, answer.text
        assert words in answer.text
    answer = httpx.request("DELETE", f"{live_db.url}/v1/nucleus/annotation/ds_nope",
                           auth=auth, json={"reference_ids": ["r0"]})
    assert answer.status_code == 404
    # an unknown item fails the job, with the reason, and deletes nothing
    job = ds.delete_annotations(reference_ids=["nope"])
    with pytest.raises(nucleus.async_job.JobError):
        job.sleep_until_complete(verbose_std_out=False)
    assert "nope" in str(job.errors())


def test_autotags_are_empty(nc: Any, live_db: Live) -> None:
    ds = nc.create_dataset("tags", is_scene=False)
    assert nc.list_autotags(ds.id) == []
    answer = httpx.get(f"{live_db.url}/v1/nucleus/ds_nope/list_autotags",
                       auth=(live_db.key, ""))
    assert answer.status_code == 404
