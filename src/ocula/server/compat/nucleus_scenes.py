"""Nucleus scenes and tracks: video scenes (frames as images, or a video cut into
frames), scene reads, metadata and deletes, and the dataset's tracks.

LiDAR scenes (point clouds, cuboids) answer 501 ``not_supported``: Ocula stores images.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from ocula.core.types import Scene
from ocula.errors import ConflictError, NotSupportedError, ValidationError
from ocula.server.compat import nucleus_format as fmt
from ocula.server.compat.nucleus_exports import UrlsDep
from ocula.server.compat.nucleus_uploads import read_drop
from ocula.server.deps import JobsDep, ServiceDep
from ocula.server.wire import json_strings, scenes_from_json

router = APIRouter()
JsonBody = Annotated[dict[str, Any], Body(default_factory=dict)]
LIDAR = ("LiDAR scenes (point clouds and cuboids) are not supported by Ocula, which "
         "stores images: upload video scenes (frames as images, or a video) instead")


def scenes_of(rows: Any) -> list[Scene]:
    """Scenes from Nucleus' video scene payloads; a LiDAR scene (point cloud frames) is
    a 501 naming what is not supported."""
    if isinstance(rows, list) and any(
            isinstance(row, dict) and isinstance(row.get("frames"), list)
            and any(isinstance(f, dict) and f.get("type") == "pointcloud"
                    for f in row["frames"]) for row in rows):
        raise NotSupportedError(LIDAR)
    return scenes_from_json(rows)


def refuse_scene_labels(service: Any, ds: str, anns: list[Any]) -> None:
    """Annotations on a scene (Nucleus' ``SceneCategoryAnnotation`` names a scene's
    reference id, not an item's) are a 501 naming the scene, not an unknown item."""
    if not service.get_dataset(ds)["is_scene"]:
        return
    scenes = {s["reference_id"] for s in service.list_scenes(ds)}
    named = sorted({a.reference_id for a in anns} & scenes)
    if named:
        raise NotSupportedError(f"annotations on scenes (scene-level categories, on "
                                f"{', '.join(map(repr, named[:5]))}) are not supported by "
                                "Ocula: annotate the scene's frames")


@router.post("/{ds}/upload_video_scenes")
def upload_video_scenes(ds: str, body: JsonBody, service: ServiceDep, jobs: JobsDep,
                        run_async: Annotated[int, Query(alias="async", ge=0, le=1)] = 0
                        ) -> dict[str, Any]:
    """``{requestId, update}`` naming a signed NDJSON upload of scenes, or
    ``{scenes, update}``; as a job (``uploadVideoScene``) with ``?async=1``."""
    dataset = service.get_dataset(ds)
    if not dataset["is_scene"]:
        raise ConflictError(f"dataset {dataset['name']!r} is not a scene dataset: create "
                              "it with is_scene=True")
    update = bool(body.get("update"))
    if body.get("requestId") is not None:
        rows = read_drop(service, dataset["id"], str(body["requestId"]))
    else:
        rows = body.get("scenes")
    scenes = scenes_of(rows)

    def work(progress: Any) -> dict[str, Any]:
        result = service.append_scenes(dataset["id"], scenes, update=update)
        return {"dataset_id": result["dataset_id"], "new_scenes": result["new_scenes"],
                "updated_scenes": result["updated_scenes"],
                "ignored_scenes": result["ignored_scenes"], "new_items": result["new_items"],
                "updated_items": result["updated_items"], "ignored_items": 0,
                "upload_errors": 0}

    if run_async:
        return fmt.job_ref(jobs.submit("uploadVideoScene", work, total_steps=len(scenes)))
    return work(None)


@router.post("/{ds}/upload_scenes")
def upload_lidar_scenes(ds: str, service: ServiceDep) -> dict[str, Any]:
    service.get_dataset(ds)
    raise NotSupportedError(LIDAR)


@router.get("/dataset/{ds}/scenes_list")
def scenes_list(ds: str, service: ServiceDep) -> dict[str, Any]:
    return {"scenes": [{"id": s["id"], "reference_id": s["reference_id"], "type": "video",
                        "metadata": s["metadata"]} for s in service.list_scenes(ds)]}


def video_scene(scene: dict[str, Any], tracks: list[dict[str, Any]],
                urls: Any) -> dict[str, Any]:
    """A scene as Nucleus' ``VideoScene.from_json`` reads it: a scene cut from a video
    names the video (its client refuses frames or a frame rate next to one)."""
    body: dict[str, Any] = {"id": scene["id"], "reference_id": scene["reference_id"],
                            "metadata": scene["metadata"], "length": scene["length"],
                            "tracks": tracks}
    if scene["video_location"] is not None:
        body["video_url"] = scene["video_location"]
    else:
        body["frame_rate"] = scene["frame_rate"]
        body["frames"] = [{**fmt.item(f, urls), "type": "image"} for f in scene["frames"]]
    return body


@router.get("/dataset/{ds}/scene/{ref:ref}")
def get_scene(ds: str, ref: str, service: ServiceDep, urls: UrlsDep,
              from_item: Annotated[int, Query(ge=0, le=1)] = 0) -> dict[str, Any]:
    """A scene by reference id, or (``?from_item=1``) the scene of an item."""
    scene = (service.get_scene(ds, item_reference_id=ref) if from_item
             else service.get_scene(ds, ref))
    mine = set(scene["tracks"])
    tracks = [tr for tr in service.list_tracks(ds) if tr["reference_id"] in mine]
    return video_scene(scene, tracks, urls)


@router.delete("/dataset/{ds}/scene/{ref:ref}")
def delete_scene(ds: str, ref: str, service: ServiceDep) -> dict[str, Any]:
    return service.delete_scene(ds, ref)


def update_scene_metadata(ds: str, updates: list[Any], service: Any) -> dict[str, Any]:
    """``dataset/{id}/metadata`` with ``level: "scene"``: ``[{reference_id, metadata}]``."""
    mapping: dict[str, Any] = {}
    for i, u in enumerate(updates):
        if not (isinstance(u, dict) and isinstance(u.get("reference_id"), str)
                and isinstance(u.get("metadata"), dict)):
            raise ValidationError(f"metadata #{i} must be {{reference_id, metadata}}")
        if u["reference_id"] in mapping:
            raise ValidationError(f"scene {u['reference_id']!r} appears more than once")
        mapping[u["reference_id"]] = u["metadata"]
    return service.update_scene_metadata(ds, mapping)


# --- tracks -----------------------------------------------------------------------


@router.get("/dataset/{ds}/tracks")
def list_tracks(ds: str, service: ServiceDep) -> dict[str, Any]:
    return {"tracks": service.list_tracks(ds)}


@router.post("/dataset/{ds}/tracks")
def update_track(ds: str, body: JsonBody, service: ServiceDep) -> dict[str, Any]:
    """``{reference_id, metadata, overwrite}``: merge or replace a track's metadata."""
    ref, metadata = body.get("reference_id"), body.get("metadata")
    if not isinstance(ref, str) or not ref:
        raise ValidationError("give the track's reference_id")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise ValidationError("a track's metadata must be an object")
    return service.update_track(ds, ref, metadata, replace=bool(body.get("overwrite")))


@router.delete("/dataset/{ds}/tracks")
def delete_tracks(ds: str, body: JsonBody, service: ServiceDep) -> dict[str, Any]:
    return service.delete_tracks(ds, json_strings(body, "track_reference_ids"))
