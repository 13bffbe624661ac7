"""Nucleus' deduplication with the pinned client on both databases: ``deduplicate`` and
``deduplicate_by_ids`` as jobs and their results, threshold and id errors, empty and
scene datasets, and the synchronous route of clients before 0.18.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dedup.images import picture, save
from tests.server.conftest import Live

nucleus = pytest.importorskip(
    "nucleus", reason="scale-nucleus is not installed (pip install scale-nucleus==0.22.3)")
from nucleus.async_job import JobError  # noqa: E402
from nucleus.deduplication import DeduplicationJob, DeduplicationResult  # noqa: E402
from nucleus.errors import NucleusAPIError  # noqa: E402


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.startswith("/slow/"):  # the same file, half a second later
            time.sleep(0.5)
            self.path = self.path[len("/slow"):]
        super().do_GET()


@pytest.fixture
def pictures_url(tmp_path: Path) -> Iterator[str]:
    """Pictures served over loopback HTTP: p1..p4 and a smaller copy of p1."""
    root = tmp_path / "www"
    for s in (1, 2, 3, 4):
        save(picture(s), root / f"p{s}.jpg", quality=90)
    save(picture(1).resize((80, 60)), root / "p1_small.jpg", quality=90)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _dataset(nc: Any, base: str) -> Any:
    ds = nc.create_dataset("dedup", is_scene=False)
    # 0.22 appends as a job, always.
    ds.append([nucleus.DatasetItem(f"{base}/p1.jpg", reference_id="img_original"),
               nucleus.DatasetItem(f"{base}/p1.jpg", reference_id="img_duplicate"),
               nucleus.DatasetItem(f"{base}/p1_small.jpg", reference_id="img_small"),
               nucleus.DatasetItem(f"{base}/p2.jpg", reference_id="img_different"),
               nucleus.DatasetItem(f"{base}/p3.jpg", reference_id="img_third")]
              ).sleep_until_complete(verbose_std_out=False)
    return ds


def test_jobs_and_their_results(nc: Any, pictures_url: str) -> None:
    ds = _dataset(nc, pictures_url)
    job = ds.deduplicate(threshold=0)
    assert isinstance(job, DeduplicationJob) and job.job_type == "deduplicate"
    result = job.result()
    assert isinstance(result, DeduplicationResult)
    # The same file twice is one image at threshold 0; the smaller copy is not.
    assert (result.stats.threshold, result.stats.original_count,
            result.stats.deduplicated_count) == (0, 5, 4)
    assert len(result.unique_item_ids) == len(result.unique_reference_ids) == 4
    assert len({"img_original", "img_duplicate"} & set(result.unique_reference_ids)) == 1

    near = ds.deduplicate(threshold=10)
    near.sleep_until_complete(verbose_std_out=False)
    near_result = near.result(wait_for_completion=False)
    assert near_result.stats.deduplicated_count == 3
    assert {"img_different", "img_third"} <= set(near_result.unique_reference_ids)
    # Ids line up: each unique item id is the item of the reference id beside it.
    for item_id, ref in zip(near_result.unique_item_ids, near_result.unique_reference_ids,
                            strict=True):
        assert ds.refloc(ref)["item"].reference_id == ref
        assert ds.loc(item_id)["item"].reference_id == ref
    again = ds.deduplicate(threshold=10).result()
    assert again.unique_item_ids == near_result.unique_item_ids  # idempotent

    by_ids = ds.deduplicate_by_ids(threshold=10,
                                   dataset_item_ids=near_result.unique_item_ids).result()
    assert set(by_ids.unique_item_ids) == set(near_result.unique_item_ids)
    assert by_ids.stats.original_count == 3
    some = ds.deduplicate(threshold=10, reference_ids=["img_original", "img_small"]).result()
    assert (some.stats.original_count, some.stats.deduplicated_count) == (2, 1)
    one = ds.deduplicate(threshold=10, reference_ids=["img_third"]).result()
    assert one.unique_reference_ids == ["img_third"]
    assert ds.deduplicate(threshold=64).result().stats.deduplicated_count == 1


def test_a_deduplication_sent_right_after_an_append_sees_its_items(
        nc: Any, pictures_url: str) -> None:
    ds = nc.create_dataset("racing", is_scene=False)
    # 0.22 appends as a job; the suite's fixtures deduplicate without waiting for it.
    append = ds.append([nucleus.DatasetItem(f"{pictures_url}/slow/{name}.jpg",
                                            reference_id=name)
                        for name in ("p1", "p1_small", "p2")])
    result = ds.deduplicate(threshold=10).result()
    assert append.status()["status"] == "Completed"
    assert (result.stats.original_count, result.stats.deduplicated_count) == (3, 2)


def test_bad_thresholds_and_ids(nc: Any, pictures_url: str) -> None:
    ds = _dataset(nc, pictures_url)
    for bad in (-1, 65, 10.5):
        with pytest.raises(NucleusAPIError, match="between 0 and 64") as caught:
            ds.deduplicate(threshold=bad)
        assert caught.value.status_code == 400
        with pytest.raises(NucleusAPIError, match="between 0 and 64"):
            ds.deduplicate_by_ids(threshold=bad, dataset_item_ids=["di_x"])
    with pytest.raises(JobError, match="nonexistent_ref_id"):
        ds.deduplicate(threshold=10, reference_ids=["nonexistent_ref_id"]).result()
    with pytest.raises(JobError, match="di_nonexistent"):
        ds.deduplicate_by_ids(threshold=10, dataset_item_ids=["di_nonexistent"]).result()
    with pytest.raises(NucleusAPIError) as missing:
        nucleus.Dataset("ds_missing", nc).deduplicate(threshold=10)
    assert missing.value.status_code == 404


def test_empty_and_scene_datasets(nc: Any, pictures_url: str) -> None:
    empty = nc.create_dataset("empty", is_scene=False)
    result = empty.deduplicate(threshold=10).result()
    assert (result.stats.original_count, result.stats.deduplicated_count,
            result.unique_item_ids) == (0, 0, [])
    video = nc.create_dataset("video", is_scene=True)
    frames = [nucleus.DatasetItem(f"{pictures_url}/{name}.jpg", reference_id=f"frame_{i}")
              for i, name in enumerate(("p1", "p1_small", "p4"))]
    video.append([nucleus.VideoScene("scene_1", frame_rate=5, items=frames)]
                 ).sleep_until_complete(verbose_std_out=False)
    scenes = video.deduplicate(threshold=10).result()
    assert scenes.stats.original_count == 3 and scenes.stats.deduplicated_count == 2
    by_frame = video.deduplicate(threshold=10, reference_ids=["frame_0", "frame_2"]).result()
    assert sorted(by_frame.unique_reference_ids) == ["frame_0", "frame_2"]


def test_synchronous_route_of_older_clients(live_db: Live, nc: Any, pictures_url: str) -> None:
    ds = _dataset(nc, pictures_url)
    base, auth = f"{live_db.url}/v1/nucleus", (live_db.key, "")
    answer = httpx.post(f"{base}/dataset/{ds.id}/deduplicate", auth=auth,
                        json={"threshold": 0})
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"unique_item_ids", "unique_reference_ids", "stats"}
    assert body["stats"] == {"threshold": 0, "original_count": 5, "deduplicated_count": 4}
    for bad in ({}, {"threshold": 65}, {"threshold": 10, "reference_ids": []},
                {"threshold": 10, "reference_ids": ["a"], "dataset_item_ids": ["b"]}):
        refused = httpx.post(f"{base}/dataset/{ds.id}/deduplicate", auth=auth, json=bad)
        assert refused.status_code == 400 and refused.json()["detail"], bad
