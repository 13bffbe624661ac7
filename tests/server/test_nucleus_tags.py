"""Dataset and model tags with the pinned client and raw HTTP, on both databases."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.server.conftest import Live

pytest.importorskip(
    "nucleus", reason="scale-nucleus is not installed (pip install scale-nucleus==0.22.3)")


def test_dataset_tags(nc: Any, live_db: Live) -> None:
    ds = nc.create_dataset("tagged", is_scene=False)
    assert ds.get_tags() == []
    assert ds.add_tags(["Labeled by: Scale", "production"]) == ["Labeled by: Scale",
                                                                 "production"]
    assert ds.info().tags == ["Labeled by: Scale", "production"]
    # adding again is a no-op; the order is the order of first addition
    assert ds.add_tags(["production", "v2", "v2"]) == ["Labeled by: Scale", "production", "v2"]
    assert ds.remove_tags(["production", "nonexistent"]) == ["Labeled by: Scale", "v2"]
    assert ds.get_tags() == ["Labeled by: Scale", "v2"]
    url, auth = f"{live_db.url}/v1/nucleus/dataset/{ds.id}/tags", (live_db.key, "")
    for body in ({"tags": "one"}, {"tags": [""]}, {"tags": [3]}, {"tags": ["x" * 256]}, {}):
        answer = httpx.post(url, auth=auth, json=body)
        assert answer.status_code == 422, (body, answer.text)
    assert ds.get_tags() == ["Labeled by: Scale", "v2"]
    nc.delete_dataset(ds.id)
    assert httpx.get(url, auth=auth).status_code == 404


def test_model_tags(nc: Any, live_db: Live) -> None:
    model = nc.create_model("m", "m-ref", tags=["first_tag"])
    model.add_tags(["single tag"])
    model.add_tags(["tag_a", "tag_b"])

    def backend_tags() -> list[str]:
        (found,) = [m for m in nc.models if m.reference_id == "m-ref"]
        return found.tags

    assert backend_tags() == ["first_tag", "single tag", "tag_a", "tag_b"]
    model.remove_tags(["tag_a"])
    model.remove_tags(["first_tag", "tag_b"])
    assert backend_tags() == ["single tag"]
    # removing nothing is a 400 in Nucleus' words, and changes nothing
    with pytest.raises(Exception) as err:  # noqa: PT011 - the client's NucleusAPIError
        model.remove_tags(["tag_a"])
    assert err.value.status_code == 400
    assert ('{"error":"Deleted 0 tags from model. The specified tag(s) were not found."}'
            in err.value.message)
    assert backend_tags() == ["single tag"]
    # a bad tag list at creation leaves no model behind
    answer = httpx.post(f"{live_db.url}/v1/nucleus/models/add", auth=(live_db.key, ""),
                        json={"name": "n", "reference_id": "n-ref", "tags": "one"})
    assert answer.status_code == 422
    assert [m.reference_id for m in nc.models] == ["m-ref"]
    nc.delete_model(model.id)
    assert live_db.service.list_models() == []
