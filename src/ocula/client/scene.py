"""Client-side scenes and tracks (a mixin for :class:`~ocula.client.dataset.Dataset` and
a handle on one scene), and the dataset's taxonomies (a mixin too)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ocula.core.types import DatasetItem, Scene


class SceneView:
    """One scene of a dataset as read: its reference id, frame rate, metadata and
    frames (items in order). Reads are snapshots; call :meth:`Dataset.scene` again
    after a change."""

    def __init__(self, body: dict[str, Any]):
        self.id: str = body["id"]
        self.reference_id: str = body["reference_id"]
        self.frame_rate: float | None = body.get("frame_rate")
        self.video_location: str | None = body.get("video_location")
        self.metadata: dict[str, Any] = body.get("metadata") or {}
        self.tracks: list[str] = body.get("tracks") or []
        self._frames = [DatasetItem.from_payload(f) for f in body.get("frames", [])]

    def __repr__(self) -> str:
        return f"SceneView(reference_id={self.reference_id!r}, length={len(self)})"

    def __len__(self) -> int:
        return len(self._frames)

    def items(self) -> list[DatasetItem]:
        """The scene's frames, in order (frame ``n`` is ``items()[n]``)."""
        return list(self._frames)


class SceneMethods:
    """Scene and track calls of a dataset (``self.id`` and ``self._backend`` are the
    dataset's)."""

    id: str
    _backend: Any

    def append_scenes(self, scenes: Sequence[Scene], update: bool = False) -> dict[str, Any]:
        """Add scenes (the dataset must be a scene dataset): ``new_scenes``,
        ``updated_scenes``, ``ignored_scenes``, ``new_items``, ``updated_items``. A scene
        whose reference id exists is ignored, or replaced with ``update``. One
        transaction: a bad scene or frame raises BatchError and nothing is written."""
        return self._backend.append_scenes(self.id, scenes, update=update)

    def scenes(self) -> list[dict[str, Any]]:
        """The dataset's scenes (reference id, frame rate, metadata, length)."""
        return self._backend.list_scenes(self.id)

    def scene(self, reference_id: str | None = None, *,
              item_reference_id: str | None = None) -> SceneView:
        """A scene with its frames, by reference id or by one of its items'."""
        return SceneView(self._backend.get_scene(self.id, reference_id,
                                                 item_reference_id=item_reference_id))

    def update_scene_metadata(self, metadata_by_ref: dict[str, dict[str, Any]], *,
                              replace: bool = False) -> dict[str, Any]:
        """Merge new metadata into scenes (``replace=True`` overwrites it)."""
        return self._backend.update_scene_metadata(self.id, metadata_by_ref, replace=replace)

    def delete_scene(self, reference_id: str) -> dict[str, Any]:
        """Delete a scene with its items and their labels."""
        return self._backend.delete_scene(self.id, reference_id)

    def tracks(self) -> list[dict[str, Any]]:
        """Tracks on the dataset's current ground truth and predictions, with metadata."""
        return self._backend.list_tracks(self.id)

    def update_track(self, reference_id: str, metadata: dict[str, Any], *,
                     replace: bool = False) -> dict[str, Any]:
        return self._backend.update_track(self.id, reference_id, metadata, replace=replace)

    def delete_tracks(self, reference_ids: Sequence[str]) -> dict[str, Any]:
        """Unlink tracks from current ground truth and predictions."""
        return self._backend.delete_tracks(self.id, reference_ids)


class TaxonomyMethods:
    """A dataset's taxonomies: named label sets that category (type ``category``) and
    multicategory (type ``multicategory``) annotations may name, their labels then
    checked against it (``self.id`` and ``self._backend`` are the dataset's)."""

    id: str
    _backend: Any

    def add_taxonomy(self, name: str, taxonomy_type: str, labels: list[str],
                     update: bool = False) -> dict[str, Any]:
        """Create a taxonomy of type ``category`` or ``multicategory``; one of that name
        is left as it is, or with ``update`` gains the new labels (``status`` says
        which)."""
        return self._backend.add_taxonomy(self.id, name, taxonomy_type, labels,
                                          update=update)

    def taxonomies(self) -> list[dict[str, Any]]:
        """The dataset's taxonomies, oldest first: ``{name, type, labels}``."""
        return self._backend.list_taxonomies(self.id)

    def delete_taxonomy(self, name: str) -> dict[str, Any]:
        """Delete a taxonomy (annotations that named it keep the name)."""
        return self._backend.delete_taxonomy(self.id, name)
