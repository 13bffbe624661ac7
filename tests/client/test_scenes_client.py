"""Scenes and tracks from the Python client, embedded and through a live server (local
frames and videos travel as uploads), on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocula import BoxAnnotation, DatasetItem, Scene
from ocula.client.client import Client
from ocula.errors import BatchError, ConflictError, NotFoundError
from tests.conftest import make_images


def test_scenes_and_tracks_flow(any_client: Client, tmp_path: Path) -> None:
    paths = make_images(tmp_path / "imgs", 3, size=(64, 48))
    ds = any_client.create_dataset("drive", is_scene=True)
    out = ds.append_scenes([Scene("s1", [DatasetItem(str(p), f"s1/{i}")
                                         for i, p in enumerate(paths)],
                                  frame_rate=10, metadata={"road": "A1"})])
    assert (out["new_scenes"], out["new_items"]) == (1, 3)
    assert ds.append_scenes([Scene("s1", [DatasetItem(str(paths[0]), "s1/0")])]
                            )["ignored_scenes"] == 1
    assert [(s["reference_id"], s["length"]) for s in ds.scenes()] == [("s1", 3)]
    scene = ds.scene("s1")
    assert len(scene) == 3 and scene.frame_rate == 10 and scene.metadata == {"road": "A1"}
    assert [i.reference_id for i in scene.items()] == ["s1/0", "s1/1", "s1/2"]
    assert ds.scene(item_reference_id="s1/2").reference_id == "s1"

    ds.annotate([BoxAnnotation("car", 2 * i, 2, 10, 10, reference_id=f"s1/{i}",
                               track_reference_id="car-1") for i in range(3)])
    assert [t["reference_id"] for t in ds.tracks()] == ["car-1"]
    assert ds.scene("s1").tracks == ["car-1"]
    ds.update_track("car-1", {"color": "red"})
    assert ds.tracks()[0]["metadata"] == {"color": "red"}
    box = ds.refloc("s1/1")["annotations"]["box"][0]
    assert box.track_reference_id == "car-1"
    hits = [o.reference_id for o in ds.query_objects('track = "car-1" and x >= 2')]
    assert hits == ["s1/1", "s1/2"]
    assert [i.reference_id for i in ds.query_items('scene = "s1"')] == [
        "s1/0", "s1/1", "s1/2"]

    ds.update_scene_metadata({"s1": {"lanes": 2}})
    assert ds.scene("s1").metadata == {"road": "A1", "lanes": 2}
    ds.delete_tracks(["car-1"])
    assert ds.tracks() == []
    assert ds.delete_scene("s1")["deleted_items"] == 3
    assert ds.scenes() == [] and len(ds) == 0
    with pytest.raises(NotFoundError):
        ds.scene("s1")


def test_scene_errors_are_the_same_on_every_backend(any_client: Client,
                                                    tmp_path: Path) -> None:
    paths = make_images(tmp_path / "imgs", 2)
    plain = any_client.create_dataset("plain")
    with pytest.raises(ConflictError, match="not a scene dataset"):
        plain.append_scenes([Scene("s", [DatasetItem(str(paths[0]), "f0")])])
    ds = any_client.create_dataset("drive", is_scene=True)
    with pytest.raises(ConflictError, match="is a scene dataset"):
        ds.append([DatasetItem(str(paths[0]), "f0")])
    with pytest.raises(BatchError):
        ds.append_scenes([Scene("s", [DatasetItem(str(paths[0]), "f0"),
                                      DatasetItem(str(tmp_path / "missing.jpg"), "f1")])])
    assert ds.scenes() == []


def test_a_local_video_travels_to_the_server(any_client: Client, tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    import numpy as np

    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 8, (48, 32))
    for i in range(3):
        writer.write(np.full((32, 48, 3), 60 * i, np.uint8))
    writer.release()
    ds = any_client.create_dataset("clips", is_scene=True)
    assert ds.append_scenes([Scene("c", video_location=str(video))])["new_items"] == 3
    scene = ds.scene("c")
    assert scene.frame_rate == 8 and [i.width for i in scene.items()] == [48, 48, 48]
