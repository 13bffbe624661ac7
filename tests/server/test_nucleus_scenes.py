"""Nucleus video scenes and tracks with the pinned client, on both databases: scene
datasets, video scenes uploaded (frames as image URLs, or a video URL cut into frames),
read back, updated, deleted; track ids on boxes and predictions; LiDAR refused (501)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.core.test_remote_media import http_root  # noqa: F401  (fixture)
from tests.server.conftest import Live

nucleus = pytest.importorskip(
    "nucleus", reason="scale-nucleus is not installed (pip install scale-nucleus==0.22.3)")


def _video_scenes(base: str) -> list[Any]:
    frames = [nucleus.DatasetItem(image_location=f"{base}/img_000{i}.jpg",
                                  reference_id=f"frame_{i}", metadata={"t": i})
              for i in range(2)]
    return [nucleus.VideoScene("scene_1", frame_rate=15, items=frames,
                               metadata={"weather": "rainy"})]


def test_video_scenes_round_trip(nc: Any, live_db: Live, http_root: Any) -> None:  # noqa: F811
    base, _ = http_root
    ds = nc.create_dataset("video", is_scene=True)
    assert ds.is_scene and live_db.service.get_dataset(ds.id)["is_scene"]
    job = ds.append(_video_scenes(base), asynchronous=True)
    job.sleep_until_complete(verbose_std_out=False)
    status = job.status()
    assert (status["status"], status["job_type"]) == ("Completed", "uploadVideoScene")
    listed = ds.scenes
    assert [(s.reference_id, s.type, s.metadata) for s in listed] == [
        ("scene_1", "video", {"weather": "rainy"})]
    scene = ds.get_scene("scene_1")
    assert isinstance(scene, nucleus.VideoScene) and scene.frame_rate == 15
    assert [i.reference_id for i in scene.items] == ["frame_0", "frame_1"]
    assert scene.items[1].metadata == {"t": 1}
    assert ds.get_scene_from_item_ref_id("frame_1").reference_id == "scene_1"

    ds.update_scene_metadata({"scene_1": {"lanes": 3}})
    assert ds.get_scene("scene_1").metadata == {"weather": "rainy", "lanes": 3}
    # An update re-sends the scene: it completes and keeps one scene.
    ds.append(_video_scenes(base), update=True, asynchronous=True).sleep_until_complete(
        verbose_std_out=False)
    assert len(ds.scenes) == 1 and ds.get_scene("scene_1").metadata == {"weather": "rainy"}

    # A scene dataset takes scenes, not plain items.
    with pytest.raises(nucleus.errors.NucleusAPIError, match="is a scene dataset"):
        ds.append([nucleus.DatasetItem(image_location=f"{base}/img_0000.jpg",
                                       reference_id="plain")])
    ds.delete_scene("scene_1")
    assert ds.scenes == [] and live_db.service.dataset_info(ds.id)["length"] == 0


def test_a_video_url_is_cut_into_frames(nc: Any, http_root: Any) -> None:  # noqa: F811
    cv2 = pytest.importorskip("cv2")
    import numpy as np

    base, root = http_root
    writer = cv2.VideoWriter(str(root / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10,
                             (40, 30))
    for i in range(4):
        writer.write(np.full((30, 40, 3), 50 * i, np.uint8))
    writer.release()
    ds = nc.create_dataset("clips", is_scene=True)
    ds.append([nucleus.VideoScene("clip", video_location=f"{base}/clip.mp4",
                                  metadata={"k": 1})], asynchronous=True
              ).sleep_until_complete(verbose_std_out=False)
    scene = ds.get_scene("clip")
    assert scene.video_location == f"{base}/clip.mp4" and scene.metadata == {"k": 1}
    assert ds.info().length == 4


def test_tracks_on_boxes_and_predictions(nc: Any, live_db: Live,
                                         http_root: Any) -> None:  # noqa: F811
    base, _ = http_root
    ds = nc.create_dataset("tracked", is_scene=True)
    ds.append(_video_scenes(base), asynchronous=True).sleep_until_complete(
        verbose_std_out=False)
    ds.annotate([nucleus.BoxAnnotation("car", 1 + i, 1, 5, 5, reference_id=f"frame_{i}",
                                       annotation_id=f"a{i}", track_reference_id="car_1")
                 for i in range(2)])
    model = nc.create_model("det", "det-ref")
    run = model.create_run("r", ds, [nucleus.BoxPrediction(
        "car", 1, 1, 5, 5, reference_id="frame_0", annotation_id="p0", confidence=0.8,
        track_reference_id="pred_7")])
    assert live_db.service.list_predictions(run.model_run_id)[0]["track_reference_id"] == \
        "pred_7"
    assert sorted(t.reference_id for t in ds.tracks) == ["car_1", "pred_7"]
    assert ds.refloc("frame_1")["annotations"]["box"][0].track_reference_id == "car_1"
    [track] = [t for t in ds.tracks if t.reference_id == "car_1"]
    track.update({"color": "red"})
    track.update({"doors": 4})
    meta = {t.reference_id: t.metadata for t in ds.tracks}
    assert meta["car_1"] == {"color": "red", "doors": 4}
    assert [t.reference_id for t in ds.get_scene("scene_1").tracks] == ["car_1", "pred_7"]
    ds.delete_tracks(["car_1"])
    assert "car_1" not in [t.reference_id for t in ds.tracks]
    assert ds.refloc("frame_1")["annotations"]["box"][0].track_reference_id is None


def test_lidar_scenes_are_not_supported(nc: Any, live_db: Live) -> None:
    ds = nc.create_dataset("lidar", is_scene=True)
    answer = httpx.post(f"{live_db.url}/v1/nucleus/{ds.id}/upload_scenes",
                        auth=(live_db.key, ""), json={"scenes": [], "update": False})
    assert answer.status_code == 501
    assert answer.json()["error"] == "not_supported" and "LiDAR" in answer.json()["detail"]
    frames = [{"url": "http://127.0.0.1:1/f.json", "reference_id": "f", "type": "pointcloud"}]
    answer = httpx.post(f"{live_db.url}/v1/nucleus/{ds.id}/upload_video_scenes",
                        auth=(live_db.key, ""),
                        json={"scenes": [{"reference_id": "s", "frames": frames}]})
    assert answer.status_code == 501 and "LiDAR" in answer.json()["detail"]
    plain = nc.create_dataset("plain", is_scene=False)
    answer = httpx.post(f"{live_db.url}/v1/nucleus/{plain.id}/upload_video_scenes",
                        auth=(live_db.key, ""), json={"scenes": [], "update": False})
    assert answer.status_code == 409 and "not a scene dataset" in answer.json()["detail"]


def test_scene_reads_name_what_is_missing(nc: Any, live_db: Live) -> None:
    ds = nc.create_dataset("empty", is_scene=True)
    for path in (f"dataset/{ds.id}/scene/nope", f"dataset/{ds.id}/scene/nope?from_item=1"):
        answer = httpx.get(f"{live_db.url}/v1/nucleus/{path}", auth=(live_db.key, ""))
        assert answer.status_code == 404 and "nope" in answer.json()["detail"]
    answer = httpx.request("DELETE", f"{live_db.url}/v1/nucleus/dataset/{ds.id}/tracks",
                           auth=(live_db.key, ""), json={"track_reference_ids": ["t"]})
    assert answer.status_code == 404


def test_scene_upload_refuses_bad_scenes(nc: Any, live_db: Live, tmp_path: Path) -> None:
    ds = nc.create_dataset("bad", is_scene=True)
    url = f"{live_db.url}/v1/nucleus/{ds.id}/upload_video_scenes"
    for body in ({"scenes": [{"reference_id": "s", "frames": "x"}]},
                 {"scenes": [{"reference_id": "s", "frame_rate": "fast",
                              "frames": [{"url": "http://127.0.0.1:1/a.png",
                                          "reference_id": "f"}]}]},
                 {"scenes": [{"reference_id": "s"}]},
                 {"scenes": "nope"}):
        answer = httpx.post(url, auth=(live_db.key, ""), json=body)
        assert answer.status_code == 422, (body, answer.text)
    assert live_db.service.list_scenes(ds.id) == []


def test_scene_level_categories_are_not_supported(nc: Any, http_root: Any) -> None:  # noqa: F811
    base, _ = http_root
    ds = nc.create_dataset("categories", is_scene=True)
    ds.append(_video_scenes(base), asynchronous=True).sleep_until_complete(
        verbose_std_out=False)
    with pytest.raises(nucleus.errors.NucleusAPIError, match="annotations on scenes"):
        ds.annotate([nucleus.SceneCategoryAnnotation(label="day", reference_id="scene_1")])
    # Predictions too: refused naming the scene, not dropped as an unknown item.
    run = nc.create_model("cls", "cls-ref").create_run("r", ds, [])
    with pytest.raises(nucleus.errors.NucleusAPIError, match="annotations on scenes"):
        run.predict([nucleus.SceneCategoryPrediction(label="day", reference_id="scene_1")])
    # The scene's frames take categories as any item does.
    answer = ds.annotate([nucleus.CategoryAnnotation(label="day", reference_id="frame_0")])
    assert answer["annotations_processed"] == 1


def test_slices_of_scenes_hold_their_frames(nc: Any, live_db: Live,
                                            http_root: Any) -> None:  # noqa: F811
    base, _ = http_root
    ds = nc.create_dataset("sliced", is_scene=True)
    scenes = _video_scenes(base) + [nucleus.VideoScene(
        "scene_2", frame_rate=15, items=[nucleus.DatasetItem(
            image_location=f"{base}/img_0001.jpg", reference_id="other")])]
    ds.append(scenes, asynchronous=True).sleep_until_complete(verbose_std_out=False)
    ds.annotate([nucleus.BoxAnnotation("car", 1, 1, 5, 5, reference_id="frame_1",
                                       annotation_id="a1", track_reference_id="car_1"),
                 nucleus.BoxAnnotation("bus", 1, 1, 5, 5, reference_id="other",
                                       annotation_id="a2", track_reference_id="bus_1")])
    # A scene's reference id stands for its frames, in frame order.
    slc = ds.create_slice("first scene", reference_ids=["scene_1"])
    assert [i.reference_id for i in slc.items] == ["frame_0", "frame_1"]
    # Items and scenes mix; a frame named twice is in the slice once.
    both = ds.create_slice("mixed", reference_ids=["frame_1", "scene_1", "other"])
    assert sorted(i.reference_id for i in both.items) == ["frame_0", "frame_1", "other"]
    with pytest.raises(nucleus.errors.NucleusAPIError, match="no_scene"):
        ds.create_slice("bad", reference_ids=["scene_1", "no_scene"])
    assert [s.name for s in ds.slices] == ["first scene", "mixed"]
    grown = ds.create_slice("grown", reference_ids=["frame_0"])
    grown.append(reference_ids=["scene_2"])
    assert sorted(i.reference_id for i in grown.items) == ["frame_0", "other"]

    # A scenario test of the slice lists its scenes and their tracks.
    test = nc.validate.create_scenario_test(
        name="scenes gate", slice_id=slc.id,
        evaluation_functions=[nc.validate.eval_functions.bbox_iou()])
    level = nucleus.validate.scenario_test.EntityLevel
    assert [s.reference_id for s in test.get_items(level=level.SCENE)] == ["scene_1"]
    assert [t.reference_id for t in test.get_items(level=level.TRACK)] == ["car_1"]
    assert [i.reference_id for i in test.get_items()] == ["frame_0", "frame_1"]
    # On an image dataset a test has no scenes.
    plain = nc.create_dataset("plain", is_scene=False)
    plain.append([nucleus.DatasetItem(image_location=f"{base}/img_0000.jpg",
                                      reference_id="p")], asynchronous=True
                 ).sleep_until_complete(verbose_std_out=False)
    flat = nc.validate.create_scenario_test(
        name="flat gate", slice_id=plain.create_slice("s", reference_ids=["p"]).id,
        evaluation_functions=[nc.validate.eval_functions.bbox_iou()])
    assert flat.get_items(level=level.SCENE) == []
