"""The HTTP backend's scene and track calls (``/api/v1/datasets/{id}/scenes``, ``…/tracks``)
and its taxonomy calls (``…/taxonomies``).

Frames on the client's disk, and videos, are staged as uploads first, as items are."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ocula.core.store.media import is_url
from ocula.core.types import DatasetItem, Scene


def item_payload(item: DatasetItem, uploads: Mapping[str, bytes],
                 local: dict[str, Path]) -> dict[str, Any]:
    """An item's JSON for the server: a local image's path made absolute and noted in
    ``local`` (reference id -> path) to be staged, unless ``uploads`` brings its bytes."""
    body = item.to_payload()
    loc, ref = item.image_location, item.reference_id
    if isinstance(loc, str) and loc and not is_url(loc):
        path = Path(loc).expanduser()
        body["image_url"] = str(path.absolute())
        if isinstance(ref, str) and path.is_file() and ref not in uploads:
            local[ref] = path
    return body


class SceneCalls:
    """Mixed into :class:`~ocula.client.http.HttpBackend` (``_call``, ``_ds``, ``_stage``,
    ``_wait`` are its own)."""

    _call: Any
    _ds: Any
    _stage: Any

    def append_scenes(self, dataset: str, scenes: Sequence[Scene], *, update: bool = False,
                      uploads: Mapping[str, bytes] | None = None) -> dict[str, Any]:
        ds = self._ds(dataset)
        payloads: list[Any] = []
        local: dict[str, Path] = {}
        for sc in scenes:
            if not isinstance(sc, Scene):
                payloads.append(None)
                continue
            body = sc.to_payload()
            if sc.video_location is not None and not is_url(sc.video_location):
                path = Path(sc.video_location).expanduser()
                body["video_url"] = str(path.absolute())
                if path.is_file():
                    local[f"video:{sc.reference_id}"] = path
            elif sc.video_location is None:
                body["frames"] = [item_payload(f, uploads or {}, local) if isinstance(
                    f, DatasetItem) else None for f in sc.frames]
            payloads.append(body)
        staged = self._stage(local, uploads or {})
        return self._call("POST", f"/datasets/{ds}/scenes", body={
            "scenes": payloads, "update": update, "uploads": staged})

    def list_scenes(self, dataset: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/datasets/{self._ds(dataset)}/scenes")

    def get_scene(self, dataset: str, reference_id: str | None = None, *,
                  item_reference_id: str | None = None) -> dict[str, Any]:
        params = {k: v for k, v in (("reference_id", reference_id),
                                    ("item_reference_id", item_reference_id)) if v is not None}
        return self._call("GET", f"/datasets/{self._ds(dataset)}/scene", params=params)

    def update_scene_metadata(self, dataset: str, updates: Mapping[str, Any], *,
                              replace: bool = False) -> dict[str, Any]:
        return self._call("POST", f"/datasets/{self._ds(dataset)}/scenes/metadata",
                          body={"updates": dict(updates), "replace": replace})

    def delete_scene(self, dataset: str, reference_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/datasets/{self._ds(dataset)}/scene",
                          params={"reference_id": reference_id})

    def list_tracks(self, dataset: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/datasets/{self._ds(dataset)}/tracks")

    def update_track(self, dataset: str, reference_id: str, metadata: dict[str, Any], *,
                     replace: bool = False) -> dict[str, Any]:
        return self._call("POST", f"/datasets/{self._ds(dataset)}/tracks/metadata", body={
            "reference_id": reference_id, "metadata": metadata, "replace": replace})

    def delete_tracks(self, dataset: str, reference_ids: Sequence[str]) -> dict[str, Any]:
        return self._call("POST", f"/datasets/{self._ds(dataset)}/tracks/unlink",
                          body={"reference_ids": list(reference_ids)})


class TaxonomyCalls:
    """Mixed into :class:`~ocula.client.http.HttpBackend`: ``/datasets/{id}/taxonomies``."""

    _call: Any
    _ds: Any

    def add_taxonomy(self, dataset: str, name: str, taxonomy_type: str, labels: list[str],
                     *, update: bool = False) -> dict[str, Any]:
        return self._call("POST", f"/datasets/{self._ds(dataset)}/taxonomies", body={
            "name": name, "type": taxonomy_type, "labels": labels, "update": update})

    def list_taxonomies(self, dataset: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/datasets/{self._ds(dataset)}/taxonomies")

    def delete_taxonomy(self, dataset: str, name: str) -> dict[str, Any]:
        return self._call("DELETE", f"/datasets/{self._ds(dataset)}/taxonomy",
                          params={"name": name})
