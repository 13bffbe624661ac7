"""What the official client's own test suite needs of datasets, with the pinned
``scale-nucleus`` client on both databases: names are labels, not identities."""

from __future__ import annotations

import httpx
import pytest

from ocula.client.client import Client
from ocula.errors import AmbiguousNameError
from tests.server.conftest import Live

nucleus = pytest.importorskip(
    "nucleus", reason="scale-nucleus is not installed (pip install scale-nucleus==0.22.3)")



def test_two_datasets_may_share_a_name(nc: object, live_db: Live) -> None:
    first = nc.create_dataset("[PyTest] Test Dataset", is_scene=False)
    second = nc.create_dataset("[PyTest] Test Dataset", is_scene=False)
    assert first.id != second.id
    assert first.name == second.name == "[PyTest] Test Dataset"
    assert {d.id for d in nc.datasets} == {first.id, second.id}
    assert nc.get_dataset(second.id).info().name == "[PyTest] Test Dataset"
    # Ocula's own client, which also finds datasets by name, refuses to guess.
    oc = Client(live_db.url, api_key=live_db.key)
    with pytest.raises(AmbiguousNameError) as caught:
        oc.get_dataset("[PyTest] Test Dataset")
    assert caught.value.ids == [first.id, second.id]
    nc.delete_dataset(first.id)
    assert oc.get_dataset("[PyTest] Test Dataset").id == second.id


def test_synchronous_append_answers_counts(live_db: Live) -> None:
    """Clients before 0.19 append synchronously and add ``upload_errors`` to a count:
    it is the number of refused items; ``error_payload`` holds them as sent."""
    base, auth = f"{live_db.url}/v1/nucleus", (live_db.key, "")
    ds = httpx.post(f"{base}/dataset/create", auth=auth, json={"name": "sync"}).json()
    served = f"{live_db.url}/missing.jpg"  # loopback, but the server has no such image
    items = [{"image_url": served, "reference_id": "gone", "metadata": {"k": 1}}]
    answer = httpx.post(f"{base}/dataset/{ds['dataset_id']}/append", auth=auth,
                        json={"items": items}).json()
    assert (answer["new_items"], answer["upload_errors"]) == (0, 1)
    assert answer["error_payload"] == items and answer["errors"][0]["reference_id"] == "gone"
    total = 0
    total += answer["upload_errors"]  # what UploadResponse.update_response does
    assert total == 1
