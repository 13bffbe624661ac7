"""``/datasets/{dataset}/scenes`` and ``…/tracks``: scenes (ordered frames of a scene
dataset, or a video cut into frames) and the tracks objects carry across frames."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ocula.core.services.scenes import MAX_SCENE_FRAMES
from ocula.server.api.common import ITEM_ENTRY, MAX_LIST, REF_STRING, Metadata, entries
from ocula.server.api.items import UploadId
from ocula.server.api.schemas import (
    READ,
    WRITE,
    SceneDeleted,
    SceneDetail,
    ScenesAppended,
    SceneSummary,
    ScenesUpdated,
    Track,
    TracksDeleted,
    ok,
)
from ocula.server.deps import ServiceDep, UploadsDep
from ocula.server.wire import scenes_from_json

router = APIRouter(tags=["scenes"])

SCENE_ENTRY: dict[str, Any] = {
    "type": "object", "required": ["reference_id"],
    "description": "A scene: its frames in order (items in Nucleus' JSON form), or a "
                   "video_url whose frames the server cuts into items '<scene>/<n>'",
    "properties": {"reference_id": REF_STRING,
                   "frames": {"type": "array", "items": ITEM_ENTRY, "minItems": 1,
                              "maxItems": MAX_SCENE_FRAMES},
                   "video_url": {"type": "string", "minLength": 1},
                   "frame_rate": {"type": "number", "exclusiveMinimum": 0,
                                  "exclusiveMaximum": 1e6},
                   "metadata": {"type": "object"}},
    "oneOf": [{"required": ["frames"]}, {"required": ["video_url"]}]}
RefId = Annotated[str, Field(min_length=1, max_length=1024)]


class ScenesIn(BaseModel):
    scenes: entries(SCENE_ENTRY)
    update: bool = False
    uploads: dict[str, UploadId] = Field(default_factory=dict, description=(
        "frame reference_id (or 'video:' + scene reference_id) -> upload id"))


class SceneMetadataIn(BaseModel):
    updates: Annotated[dict[str, dict[str, Any]], Field(max_length=MAX_LIST)]
    replace: bool = False


class TrackMetadataIn(BaseModel):
    reference_id: Annotated[str, Field(min_length=1, max_length=255)]
    metadata: Metadata = None
    replace: bool = False


class TracksIn(BaseModel):
    reference_ids: Annotated[list[Annotated[str, Field(max_length=255)]],
                             Field(min_length=1, max_length=MAX_LIST)]


@router.post("/datasets/{dataset}/scenes", **ok(ScenesAppended, *WRITE))
def append_scenes(dataset: str, body: ScenesIn, service: ServiceDep, uploads: UploadsDep
                  ) -> dict[str, Any]:
    """Add scenes to a scene dataset (idempotent by reference id; ``update`` replaces)."""
    scenes = scenes_from_json(body.scenes)
    staged = uploads.resolve(body.uploads)
    try:
        return service.append_scenes(dataset, scenes, update=body.update, uploads=staged)
    finally:
        staged.discard()


@router.get("/datasets/{dataset}/scenes", **ok([SceneSummary], *READ))
def list_scenes(dataset: str, service: ServiceDep) -> list[dict[str, Any]]:
    return service.list_scenes(dataset)


@router.get("/datasets/{dataset}/scene", **ok(SceneDetail, *READ))
def get_scene(dataset: str, service: ServiceDep,
              reference_id: Annotated[str | None, Query(max_length=1024)] = None,
              item_reference_id: Annotated[str | None, Query(max_length=1024)] = None
              ) -> dict[str, Any]:
    """A scene with its frames in order, by its reference id or one of its items'."""
    return service.get_scene(dataset, reference_id, item_reference_id=item_reference_id)


@router.delete("/datasets/{dataset}/scene", **ok(SceneDeleted, *READ))
def delete_scene(dataset: str, reference_id: Annotated[RefId, Query()],
                 service: ServiceDep) -> dict[str, Any]:
    """Delete a scene with its items and everything on them."""
    return service.delete_scene(dataset, reference_id)


@router.post("/datasets/{dataset}/scenes/metadata", **ok(ScenesUpdated, *WRITE))
def update_scene_metadata(dataset: str, body: SceneMetadataIn, service: ServiceDep
                          ) -> dict[str, Any]:
    """Merge (or with ``replace``, overwrite) metadata: ``updates`` maps a scene's
    reference id to its metadata."""
    return service.update_scene_metadata(dataset, body.updates, replace=body.replace)


@router.get("/datasets/{dataset}/tracks", **ok([Track], *READ))
def list_tracks(dataset: str, service: ServiceDep) -> list[dict[str, Any]]:
    return service.list_tracks(dataset)


@router.post("/datasets/{dataset}/tracks/metadata", **ok(Track, *WRITE))
def update_track(dataset: str, body: TrackMetadataIn, service: ServiceDep) -> dict[str, Any]:
    return service.update_track(dataset, body.reference_id, body.metadata or {},
                                replace=body.replace)


@router.post("/datasets/{dataset}/tracks/unlink", **ok(TracksDeleted, *WRITE))
def delete_tracks(dataset: str, body: TracksIn, service: ServiceDep) -> dict[str, Any]:
    """Unlink tracks: their id is cleared from current ground truth and predictions."""
    return service.delete_tracks(dataset, body.reference_ids)
