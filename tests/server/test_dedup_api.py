"""Deduplication through the REST route (sync and as a job) and the Python client,
embedded and over HTTP, on both databases."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from ocula import DatasetItem
from ocula.client.client import Client
from ocula.errors import BatchError, NotFoundError, ValidationError
from tests.dedup.images import picture, save
from tests.server.conftest import Live


def _items(folder: Path) -> list[DatasetItem]:
    paths = {f"p{s}": save(picture(s), folder / f"p{s}.png") for s in (1, 2)}
    paths["p1_small"] = save(picture(1).resize((80, 60)), folder / "p1_small.png")
    paths["p1_jpeg"] = save(picture(1), folder / "p1_jpeg.jpg", quality=50)
    return [DatasetItem(str(p), ref) for ref, p in paths.items()]


def _check(result: dict, original: int = 4) -> None:
    assert result["stats"]["original_count"] == original
    assert result["stats"]["deduplicated_count"] == 2
    (group,) = result["groups"]
    assert {group["reference_id"]} | {d["reference_id"] for d in group["duplicates"]} == \
        {"p1", "p1_small", "p1_jpeg"}


def test_rest_route_sync_and_as_a_job(live_db: Live, tmp_path: Path) -> None:
    with Client(live_db.url, api_key=live_db.key) as c:
        ds = c.create_dataset("wire")
        ds.append(_items(tmp_path / "imgs"))
    headers = {"Authorization": f"Bearer {live_db.key}"}
    url = f"{live_db.url}/api/v1/datasets/{ds.id}/deduplicate"
    sync = httpx.post(url, headers=headers, json={"threshold": 10})
    assert sync.status_code == 200
    _check(sync.json())
    job = httpx.post(url, headers=headers, params={"async": "true"},
                     json={"threshold": 10, "reference_ids": ["p1", "p2"]}).json()
    assert job["type"] == "deduplicate" and job["status"] in ("Queued", "Running",
                                                              "Completed")
    for _ in range(400):
        done = httpx.get(f"{live_db.url}/api/v1/jobs/{job['job_id']}", headers=headers).json()
        if done["status"] == "Completed":
            break
        time.sleep(0.05)
    assert sorted(done["result"]["unique_reference_ids"]) == ["p1", "p2"]
    assert done["result"]["stats"]["original_count"] == 2
    assert done["result"]["stats"]["hashed"] == 0  # hashed by the first call
    for bad in ({"threshold": 65}, {"threshold": -1}, {"threshold": 10.5},
                {"threshold": "10"}, {"on_error": "ignore"}, {"max_groups": -1}):
        answer = httpx.post(url, headers=headers, json=bad)
        assert answer.status_code == 422, bad
    missing = httpx.post(url, headers=headers, json={"reference_ids": ["nope"]})
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    assert httpx.post(f"{live_db.url}/api/v1/datasets/ds_nope/deduplicate", headers=headers,
                      json={}).status_code == 404
    schema = httpx.get(f"{live_db.url}/openapi.json").json()
    ok = schema["paths"]["/api/v1/datasets/{dataset}/deduplicate"]["post"]["responses"]["200"]
    assert "Deduplication" in json.dumps(ok)


def test_python_client_over_http_and_embedded(live_db: Live, client: Client,
                                              tmp_path: Path) -> None:
    with Client(live_db.url, api_key=live_db.key) as remote:
        answers = []
        for c in (remote, client):
            ds = c.create_dataset("both")
            ds.append(_items(tmp_path / "imgs"))
            some = ds.create_slice("some", ["p1", "p1_small", "p2"])
            answers.append(ds.deduplicate(10))
            _check(answers[-1])
            assert ds.deduplicate(10, slice=some)["stats"]["original_count"] == 3
            assert ds.deduplicate(10, slice="some")["stats"]["original_count"] == 3
            assert ds.deduplicate(0, query='reference_id = "p2"')["unique_reference_ids"] == \
                ["p2"]
            with pytest.raises(NotFoundError, match="nope"):
                ds.deduplicate(10, reference_ids=["nope"])
            with pytest.raises(ValidationError):
                ds.deduplicate(70)
        # Same rule, same pictures: the same answer, ids aside.
        assert [a["unique_reference_ids"] for a in answers][0] == \
            answers[1]["unique_reference_ids"]


def test_unreadable_images_over_http(live_db: Live, tmp_path: Path) -> None:
    with Client(live_db.url, api_key=live_db.key) as c:
        ds = c.create_dataset("broken")
        ds.append(_items(tmp_path / "imgs"))
        (item_id,) = [it["id"] for it in live_db.service.list_items(ds.id)["items"]
                      if it["reference_id"] == "p2"]
        stored = live_db.service.local_image_paths([item_id])[item_id]
        Path(stored).write_bytes(b"not an image any more")
        with pytest.raises(BatchError) as caught:
            ds.deduplicate(10)  # a job that ends Errored_User, raised as sent
        assert [e.reference_id for e in caught.value.errors] == ["p2"]
        skipped = ds.deduplicate(10, on_error="skip")  # Errored_Partial: the result
        assert skipped["stats"]["original_count"] == 3
        assert [e["reference_id"] for e in skipped["errors"]] == ["p2"]
