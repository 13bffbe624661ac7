"""Scenes (ordered frames of a scene dataset, or a video cut into frames) and tracks
(ids on boxes and predictions), through the service, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocula.core.services import Service
from ocula.core.types import BoxAnnotation, BoxPrediction, DatasetItem, Scene
from ocula.errors import BatchError, ConflictError, NotFoundError
from tests.conftest import make_images


def _scene(ref: str, paths: list[Path], **kw: object) -> Scene:
    return Scene(ref, [DatasetItem(str(p), f"{ref}-{i}") for i, p in enumerate(paths)], **kw)


@pytest.fixture
def frames(tmp_path: Path) -> list[Path]:
    return make_images(tmp_path / "frames", 4, size=(64, 48))


@pytest.fixture
def scene_ds(service: Service) -> str:
    return service.create_dataset("drive", is_scene=True)["id"]


def test_frames_keep_their_order_and_scenes_their_metadata(service: Service, scene_ds: str,
                                                           frames: list[Path]) -> None:
    # Frames given out of file order: the scene's order is the list's, not the names'.
    out = service.append_scenes(scene_ds, [
        _scene("a", frames[::-1][:3], frame_rate=12, metadata={"weather": "rain"}),
        _scene("b", frames[3:])])
    assert (out["new_scenes"], out["new_items"]) == (2, 4)
    assert [(s["reference_id"], s["length"]) for s in service.list_scenes(scene_ds)] == [
        ("a", 3), ("b", 1)]
    a = service.get_scene(scene_ds, "a")
    assert [f["reference_id"] for f in a["frames"]] == ["a-0", "a-1", "a-2"]
    assert [f["frame_index"] for f in a["frames"]] == [0, 1, 2]
    assert Path(a["frames"][0]["original_image_url"]).name == frames[3].name
    assert (a["frame_rate"], a["metadata"]) == (12, {"weather": "rain"})
    assert service.get_scene(scene_ds, item_reference_id="b-0")["reference_id"] == "b"
    info = service.dataset_info(scene_ds)
    assert info["is_scene"] and info["length"] == 4


def test_existing_scenes_are_ignored_or_replaced(service: Service, scene_ds: str,
                                                 frames: list[Path]) -> None:
    service.append_scenes(scene_ds, [_scene("a", frames[:3], metadata={"v": 1})])
    again = service.append_scenes(scene_ds, [_scene("a", frames[:2], metadata={"v": 2})])
    assert (again["ignored_scenes"], again["new_items"]) == (1, 0)
    assert service.get_scene(scene_ds, "a")["length"] == 3
    replaced = service.append_scenes(scene_ds, [_scene("a", frames[:2], metadata={"v": 2})],
                                     update=True)
    assert replaced["updated_scenes"] == 1
    a = service.get_scene(scene_ds, "a")
    assert (a["length"], a["metadata"]) == (2, {"v": 2})
    # The frame the new list dropped went with the scene's old version.
    assert service.dataset_info(scene_ds)["length"] == 2
    with pytest.raises(BatchError, match="frame_rate"):
        service.append_scenes(scene_ds, [_scene("b", frames[:1], frame_rate=True)])


def test_scene_writes_are_all_or_nothing(service: Service, scene_ds: str,
                                         frames: list[Path], tmp_path: Path) -> None:
    good = _scene("a", frames[:2])
    bad = Scene("b", [DatasetItem(str(tmp_path / "missing.jpg"), "b-0")])
    with pytest.raises(BatchError):
        service.append_scenes(scene_ds, [good, bad])
    assert service.list_scenes(scene_ds) == [] and service.dataset_info(scene_ds)["length"] == 0
    with pytest.raises(BatchError, match="more than once"):
        service.append_scenes(scene_ds, [good, _scene("a", frames[2:])])
    with pytest.raises(BatchError, match="no frames"):
        service.append_scenes(scene_ds, [Scene("empty")])
    service.append_scenes(scene_ds, [good])
    # A frame has one place: another scene may not claim it.
    with pytest.raises(ConflictError, match="another scene"):
        service.append_scenes(scene_ds, [Scene("c", [DatasetItem(str(frames[0]), "a-0")])])
    assert [s["reference_id"] for s in service.list_scenes(scene_ds)] == ["a"]


def test_scene_and_image_datasets_refuse_each_others_writes(service: Service, scene_ds: str,
                                                            frames: list[Path]) -> None:
    plain = service.create_dataset("plain")["id"]
    assert service.get_dataset(plain)["is_scene"] is False
    with pytest.raises(ConflictError, match="not a scene dataset"):
        service.append_scenes(plain, [_scene("a", frames[:1])])
    with pytest.raises(ConflictError, match="is a scene dataset"):
        service.append(scene_ds, [DatasetItem(str(frames[0]), "x")])


def test_metadata_updates_and_deletes(service: Service, scene_ds: str,
                                      frames: list[Path]) -> None:
    service.append_scenes(scene_ds, [_scene("a", frames[:2], metadata={"k": 1}),
                                     _scene("b", frames[2:])])
    service.annotate(scene_ds, [BoxAnnotation("car", 1, 1, 5, 5, reference_id="a-0")])
    service.update_scene_metadata(scene_ds, {"a": {"new": True}})
    assert service.get_scene(scene_ds, "a")["metadata"] == {"k": 1, "new": True}
    service.update_scene_metadata(scene_ds, {"a": {"only": 1}}, replace=True)
    assert service.get_scene(scene_ds, "a")["metadata"] == {"only": 1}
    with pytest.raises(NotFoundError):
        service.update_scene_metadata(scene_ds, {"a": {"x": 1}, "nope": {}})
    assert service.get_scene(scene_ds, "a")["metadata"] == {"only": 1}
    gone = service.delete_scene(scene_ds, "a")
    assert gone["deleted_items"] == 2
    assert [s["reference_id"] for s in service.list_scenes(scene_ds)] == ["b"]
    info = service.dataset_info(scene_ds)
    assert (info["length"], info["annotation_count"]) == (2, 0)
    with pytest.raises(NotFoundError):
        service.get_scene(scene_ds, "a")
    service.delete_dataset(scene_ds)


def test_a_video_is_cut_into_frames(service: Service, scene_ds: str, tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    import numpy as np

    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 12, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), i * 40, np.uint8))
    writer.release()
    out = service.append_scenes(scene_ds, [Scene("clip", video_location=str(video))])
    assert out["new_items"] == 5
    clip = service.get_scene(scene_ds, "clip")
    assert [f["reference_id"] for f in clip["frames"]] == [f"clip/{n}" for n in range(5)]
    assert (clip["frame_rate"], clip["video_location"]) == (12, str(video))
    assert (clip["frames"][0]["width"], clip["frames"][0]["height"]) == (64, 48)
    (tmp_path / "not-a-video.mp4").write_bytes(b"nothing here")
    with pytest.raises(BatchError, match="not a video"):
        service.append_scenes(scene_ds, [Scene("bad", video_location=str(
            tmp_path / "not-a-video.mp4"))])


def test_tracks_on_boxes_and_predictions(service: Service, scene_ds: str,
                                         frames: list[Path]) -> None:
    service.append_scenes(scene_ds, [_scene("a", frames[:3])])
    service.annotate(scene_ds, [
        BoxAnnotation("car", 1 + i, 1, 5, 5, reference_id=f"a-{i}", track_reference_id="t1")
        for i in range(3)] + [BoxAnnotation("car", 30, 30, 5, 5, reference_id="a-0")])
    model = service.add_model("det", reference_id="det")["id"]
    service.create_run(model, scene_ds, "r1", [
        BoxPrediction("car", 1, 1, 5, 5, reference_id="a-0", confidence=0.9,
                      track_reference_id="p7")])
    item = service.get_item(scene_ds, reference_id="a-1")
    assert [b.get("track_reference_id") for b in item["annotations"]["box"]] == ["t1"]
    assert [t["reference_id"] for t in service.list_tracks(scene_ds)] == ["p7", "t1"]
    assert service.get_scene(scene_ds, "a")["tracks"] == ["p7", "t1"]
    service.update_track(scene_ds, "t1", {"kind": "car"})
    service.update_track(scene_ds, "t1", {"seen": 3})
    meta = {t["reference_id"]: t["metadata"] for t in service.list_tracks(scene_ds)}
    assert meta == {"p7": {}, "t1": {"kind": "car", "seen": 3}}
    with pytest.raises(NotFoundError):
        service.update_track(scene_ds, "nope", {})
    with pytest.raises(BatchError, match="track_reference_id"):
        service.annotate(scene_ds, [BoxAnnotation("car", 1, 1, 5, 5, reference_id="a-0",
                                                  track_reference_id=" ")])
    service.delete_tracks(scene_ds, ["t1"])
    assert [t["reference_id"] for t in service.list_tracks(scene_ds)] == ["p7"]
    item = service.get_item(scene_ds, reference_id="a-1")
    assert "track_reference_id" not in item["annotations"]["box"][0]
    with pytest.raises(NotFoundError):
        service.delete_tracks(scene_ds, ["t1"])


def test_scene_and_track_in_the_query_language(service: Service, scene_ds: str,
                                                frames: list[Path]) -> None:
    service.append_scenes(scene_ds, [_scene("a", frames[:2]), _scene("b", frames[2:])])
    service.annotate(scene_ds, [
        BoxAnnotation("car", 1, 1, 5, 5, reference_id="a-0", track_reference_id="t1"),
        BoxAnnotation("car", 1, 1, 5, 5, reference_id="b-1", track_reference_id="t2"),
        BoxAnnotation("bus", 9, 9, 5, 5, reference_id="b-1")])

    def items(q: str) -> list[str]:
        return [i["reference_id"] for i in service.query_items(scene_ds, q)["items"]]

    def objects(q: str) -> list[tuple[str, str | None]]:
        return [(o["reference_id"], o["label"])
                for o in service.query_objects(scene_ds, q)["objects"]]

    assert items('scene = "a"') == ["a-0", "a-1"]
    assert items('scene != "a"') == ["b-0", "b-1"]
    assert items('scene in ["a", "b"] and has(track = "t2")') == ["b-1"]
    assert objects('track = "t1"') == [("a-0", "car")]
    assert objects('scene = "b" and track = null') == [("b-1", "bus")]
    described = service.describe_query(scene_ds, 'scene = "a" and has(track = "t1")')
    assert described["description"] == (
        'Items where scene is "a" and it has an object where track is "t1".')
