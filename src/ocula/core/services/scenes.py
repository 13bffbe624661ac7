"""Scenes and tracks.

A scene is a named, ordered group of a scene dataset's items: the frames of a video,
each item's frame number kept in ``scene_frames``. A scene given as a video file is cut
into frames here (OpenCV, when installed), each frame an item ``<scene>/<n>``.

A track is one object followed across frames: annotations and predictions carry its
reference id (``track_id``); the ``tracks`` table only holds what is said about a track
beyond its id (metadata). Unlinking a track clears the id on current ground truth and
on predictions; annotation versions written before keep it, as history.
"""

from __future__ import annotations

import os
import tempfile
from collections import ChainMap
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, select, union, update

from ocula.core.ids import new_id
from ocula.core.services.base import ServiceBase, chunks, iso, now
from ocula.core.services.items import check_items
from ocula.core.services.payloads import item_payload
from ocula.core.store import media as m
from ocula.core.store import schema as t
from ocula.core.types import DatasetItem, Scene
from ocula.core.validation import check_metadata, duplicate_errors, text_error
from ocula.errors import (
    BatchError,
    ConflictError,
    ImageError,
    NotFoundError,
    NotSupportedError,
    OculaError,
    ParameterError,
    ValidationError,
)

# A video is cut into at most this many frames (a longer one is refused, not cut short).
MAX_VIDEO_FRAMES = 2000
MAX_SCENE_FRAMES = 100_000


def _scene_payload(row: Any, length: int) -> dict[str, Any]:
    return {"id": row.id, "reference_id": row.reference_id, "frame_rate": row.frame_rate,
            "video_location": row.video_location, "metadata": row.metadata or {},
            "length": length, "created_at": iso(row.created_at)}


def cut_video(data: bytes, name: str) -> tuple[list[bytes], float | None]:
    """A video's frames as JPEG bytes, and its frame rate (None when unknown)."""
    try:
        import cv2
    except ImportError as exc:
        raise NotSupportedError(
            f"{name}: scenes given as a video need OpenCV on the server (pip install "
            "'ocula[demo]'); give the scene's frames as images instead") from exc
    with tempfile.NamedTemporaryFile(suffix=".video") as tmp:
        tmp.write(data)
        tmp.flush()
        cap = cv2.VideoCapture(tmp.name)
        try:
            if not cap.isOpened():
                raise ImageError(f"{name}: not a video OpenCV can read")
            fps = cap.get(cv2.CAP_PROP_FPS) or None
            frames: list[bytes] = []
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                if len(frames) == MAX_VIDEO_FRAMES:
                    raise ValidationError(f"{name}: a video may have at most "
                                          f"{MAX_VIDEO_FRAMES} frames")
                ok, jpeg = cv2.imencode(".jpg", frame)
                if not ok:
                    raise ImageError(f"{name}: frame {len(frames)} could not be encoded")
                frames.append(jpeg.tobytes())
        finally:
            cap.release()
    if not frames:
        raise ImageError(f"{name}: no frame could be read from the video")
    return frames, fps


def _check_scenes(scenes: Sequence[Any]) -> list[OculaError]:
    errors: list[OculaError] = []
    for i, sc in enumerate(scenes):
        if not isinstance(sc, Scene):
            errors.append(ValidationError(f"scene #{i} is a {type(sc).__name__}, not a Scene"))
            continue
        ref = sc.reference_id
        if not isinstance(ref, str) or not ref.strip() or len(ref) > 1024:
            errors.append(ValidationError(f"scene #{i} needs a reference_id (a non-blank "
                                          "string of at most 1024 characters)"))
            continue
        if err := text_error("scene reference_id", ref, ref):
            errors.append(err)
        elif sc.video_location is not None and sc.frames:
            errors.append(ValidationError(f"scene {ref!r}: give frames or a video, not both",
                                          reference_id=ref))
        elif sc.video_location is None and not sc.frames:
            errors.append(ValidationError(f"scene {ref!r} has no frames", reference_id=ref))
        elif len(sc.frames) > MAX_SCENE_FRAMES:
            errors.append(ValidationError(f"scene {ref!r} has more than {MAX_SCENE_FRAMES} "
                                          "frames", reference_id=ref))
        elif sc.frame_rate is not None and (isinstance(sc.frame_rate, bool) or not (
                isinstance(sc.frame_rate, int | float) and 0 < sc.frame_rate < 1e6)):
            errors.append(ValidationError(f"scene {ref!r}: frame_rate must be a positive "
                                          "number", reference_id=ref))
        elif (err := check_metadata(sc.metadata, f"scene {ref!r}", ref)) is not None:
            errors.append(err)
        elif not all(isinstance(f, DatasetItem) for f in sc.frames):
            errors.append(ValidationError(f"scene {ref!r}: frames must be items",
                                          reference_id=ref))
    if not errors:
        errors += duplicate_errors([sc.reference_id for sc in scenes], "scene reference_id")
        errors += duplicate_errors([f.reference_id for sc in scenes for f in sc.frames],
                                   "frame reference_id")
    return errors


class SceneService(ServiceBase):
    def append_scenes(self, dataset: str, scenes: Sequence[Scene], *, update: bool = False,
                      uploads: Mapping[str, bytes] | None = None) -> dict[str, Any]:
        """Add scenes to a scene dataset, each with its frames as items.

        A scene whose reference id exists is ignored, or with ``update`` replaced (its
        metadata, frame rate and frame list; its frames' items updated). A frame may not
        be an item of another scene. All or nothing: any bad scene or frame refuses the
        batch with a :class:`BatchError` naming each. ``uploads`` maps a frame's
        reference id (or ``"video:" + a scene's``) to the bytes sent with the request.
        """
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
        if not ds.is_scene:
            # The request is well formed; the dataset's kind refuses it.
            raise ConflictError(f"dataset {ds.name!r} is not a scene dataset: create one "
                                "with is_scene=True to append scenes")
        if errors := _check_scenes(scenes):
            raise BatchError(errors)
        given: Mapping[str, bytes] = uploads if uploads is not None else {}
        frame_bytes: dict[str, bytes] = {}
        cut = []
        for sc in scenes:
            if sc.video_location is not None:
                sc, jpegs = self._with_video_frames(sc, given)
                frame_bytes.update(jpegs)
            cut.append(sc)
        scenes = cut
        all_uploads = ChainMap(frame_bytes, given)
        frames = [f for sc in scenes for f in sc.frames]
        errors = check_items(frames)
        if errors:
            raise BatchError(errors)
        probed, errors = self._probe_all(frames, all_uploads, False)  # type: ignore[attr-defined]
        if errors:
            raise BatchError(errors)
        by_ref = {p.item.reference_id: p for p in probed}
        counts = {"new_scenes": 0, "updated_scenes": 0, "ignored_scenes": 0, "new_items": 0,
                  "updated_items": 0}
        with self.db.write() as conn:
            existing = {r.reference_id: r for part in chunks([s.reference_id for s in scenes])
                        for r in conn.execute(select(t.scenes).where(
                            t.scenes.c.dataset_pk == ds.pk,
                            t.scenes.c.reference_id.in_(list(part))))}
            for sc in scenes:
                old = existing.get(sc.reference_id)
                if old is not None and not update:
                    counts["ignored_scenes"] += 1
                    continue
                scene_pk = self._save_scene(conn, ds.pk, sc, old)
                self._claim_frames(conn, ds.pk, scene_pk, sc)
                written = self._write_items(  # type: ignore[attr-defined]
                    conn, ds.pk, [by_ref[f.reference_id] for f in sc.frames], True)
                counts["new_items"] += written["new_items"]
                counts["updated_items"] += written["updated_items"]
                items = self._item_map(conn, ds.pk, [f.reference_id for f in sc.frames])
                conn.execute(t.scene_frames.insert(), [
                    {"scene_pk": scene_pk, "item_pk": items[f.reference_id].pk,
                     "frame_index": n} for n, f in enumerate(sc.frames)])
                counts["updated_scenes" if old is not None else "new_scenes"] += 1
        return {"dataset_id": ds.id, **counts, "errors": []}

    def _with_video_frames(self, sc: Scene, uploads: Mapping[str, bytes]
                           ) -> tuple[Scene, dict[str, bytes]]:
        """The scene with its video cut into frames, and the frames' bytes by reference
        id (given to the probe as uploads). The video's bytes are ``uploads["video:" +
        the scene's reference id]`` when sent with the request (a remote client's file)."""
        location = str(sc.video_location)
        name = f"scene {sc.reference_id!r}"
        if f"video:{sc.reference_id}" in uploads:
            data = uploads[f"video:{sc.reference_id}"]
        elif m.is_url(location):
            data = self._fetch(location)
        else:
            path = os.path.abspath(os.path.expanduser(location))
            with m.open_image(path, self.real_roots, self._local_name(path, sc.reference_id)
                              ) as fp:
                data = fp.read()
        try:
            jpegs, fps = cut_video(data, name)
        except OculaError as exc:
            exc.reference_id = sc.reference_id
            raise BatchError([exc]) from exc
        refs = [f"{sc.reference_id}/{n}" for n in range(len(jpegs))]
        frames = [DatasetItem(image_location=f"{location}#frame={n}", reference_id=ref,
                              metadata={"frame": n}) for n, ref in enumerate(refs)]
        return (Scene(sc.reference_id, frames, sc.frame_rate or fps, location, sc.metadata),
                dict(zip(refs, jpegs, strict=True)))

    def _save_scene(self, conn: Connection, dataset_pk: int, sc: Scene, old: Any) -> int:
        stamp = now()
        values = {"frame_rate": sc.frame_rate, "video_location": sc.video_location,
                  "metadata": sc.metadata or None, "updated_at": stamp}
        if old is not None:
            conn.execute(update(t.scenes).where(t.scenes.c.pk == old.pk).values(**values))
            # Frames the new list drops go with their labels: a scene dataset's items
            # are its scenes' frames, never loose items.
            keep = {f.reference_id for f in sc.frames}
            dropped = conn.execute(select(t.items).join(
                t.scene_frames, t.scene_frames.c.item_pk == t.items.c.pk).where(
                t.scene_frames.c.scene_pk == old.pk)).all()
            for item in dropped:
                if item.reference_id not in keep:
                    self._delete_item_rows(conn, dataset_pk, item)  # type: ignore[attr-defined]
            conn.execute(delete(t.scene_frames).where(t.scene_frames.c.scene_pk == old.pk))
            return int(old.pk)
        return int(conn.execute(t.scenes.insert().values(
            id=new_id("scene"), dataset_pk=dataset_pk, reference_id=sc.reference_id,
            created_at=stamp, **values)).inserted_primary_key[0])

    def _claim_frames(self, conn: Connection, dataset_pk: int, scene_pk: int,
                      sc: Scene) -> None:
        """Refuse frames that are items of another scene (an item has one place)."""
        refs = [f.reference_id for f in sc.frames]
        taken: list[str] = []
        for part in chunks(refs):
            taken += conn.execute(
                select(t.items.c.reference_id)
                .join(t.scene_frames, t.scene_frames.c.item_pk == t.items.c.pk)
                .where(t.items.c.dataset_pk == dataset_pk,
                       t.items.c.reference_id.in_(list(part)),
                       t.scene_frames.c.scene_pk != scene_pk)).scalars().all()
        if taken:
            raise ConflictError(f"scene {sc.reference_id!r}: frame(s) "
                                f"{', '.join(map(repr, taken[:5]))} belong to another scene",
                                reference_id=taken[0])

    # --- reading --------------------------------------------------------------------

    def list_scenes(self, dataset: str) -> list[dict[str, Any]]:
        """A dataset's scenes in the order they were added, with their lengths."""
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
            lengths = dict(conn.execute(
                select(t.scene_frames.c.scene_pk, func.count())
                .join(t.scenes, t.scenes.c.pk == t.scene_frames.c.scene_pk)
                .where(t.scenes.c.dataset_pk == ds.pk)
                .group_by(t.scene_frames.c.scene_pk)).all())
            rows = conn.execute(select(t.scenes).where(t.scenes.c.dataset_pk == ds.pk)
                                .order_by(t.scenes.c.pk)).all()
        return [_scene_payload(r, lengths.get(r.pk, 0)) for r in rows]

    def get_scene(self, dataset: str, reference_id: str | None = None, *,
                  item_reference_id: str | None = None) -> dict[str, Any]:
        """A scene with its frames (items, in order) and the ids of the tracks on them,
        by its reference id or by the reference id of one of its items."""
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
            q = select(t.scenes).where(t.scenes.c.dataset_pk == ds.pk)
            if item_reference_id is not None:
                q = q.join(t.scene_frames, t.scene_frames.c.scene_pk == t.scenes.c.pk).join(
                    t.items, t.items.c.pk == t.scene_frames.c.item_pk).where(
                    t.items.c.reference_id == item_reference_id)
                what = f"with an item {item_reference_id!r}"
            elif reference_id is not None:
                q = q.where(t.scenes.c.reference_id == reference_id)
                what = repr(reference_id)
            else:
                raise ParameterError("give a scene's reference_id or an item's")
            row = conn.execute(q).first()
            if row is None:
                raise NotFoundError(f"no scene {what} in dataset {ds.name!r}",
                                    reference_id=reference_id or item_reference_id)
            items = conn.execute(
                select(t.items, t.scene_frames.c.frame_index)
                .join(t.scene_frames, t.scene_frames.c.item_pk == t.items.c.pk)
                .where(t.scene_frames.c.scene_pk == row.pk)
                .order_by(t.scene_frames.c.frame_index)).all()
            frame_pks = select(t.scene_frames.c.item_pk).where(
                t.scene_frames.c.scene_pk == row.pk)
            a, p = t.annotations, t.predictions
            tracks = sorted(conn.execute(union(
                select(a.c.track_id).where(a.c.item_pk.in_(frame_pks),
                                           a.c.version_to.is_(None), a.c.track_id.is_not(None)),
                select(p.c.track_id).where(p.c.item_pk.in_(frame_pks),
                                           p.c.track_id.is_not(None)))).scalars().all())
        frames = [{**item_payload(i), "frame_index": i.frame_index} for i in items]
        return {**_scene_payload(row, len(frames)), "dataset_id": ds.id, "frames": frames,
                "tracks": tracks}

    # --- changing -------------------------------------------------------------------

    def update_scene_metadata(self, dataset: str, updates: Mapping[str, Any], *,
                              replace: bool = False) -> dict[str, Any]:
        """Merge (or with ``replace``, overwrite) scene metadata, by scene reference id;
        all or nothing."""
        errors: list[OculaError] = []
        for ref, meta in updates.items():
            if not isinstance(meta, dict):
                errors.append(ValidationError(f"metadata for scene {ref!r} must be an object",
                                              reference_id=ref))
            elif (err := check_metadata(meta, f"scene {ref!r}", ref)) is not None:
                errors.append(err)
        if errors:
            raise BatchError(errors)
        with self.db.write() as conn:
            ds = self._dataset_row(conn, dataset)
            rows = {r.reference_id: r for part in chunks(list(updates))
                    for r in conn.execute(select(t.scenes).where(
                        t.scenes.c.dataset_pk == ds.pk,
                        t.scenes.c.reference_id.in_(list(part))))}
            missing = [r for r in updates if r not in rows]
            if missing:
                raise NotFoundError(f"unknown scene(s) in this dataset: "
                                    f"{', '.join(map(repr, missing[:5]))}",
                                    reference_id=missing[0])
            for ref, meta in updates.items():
                merged = meta if replace else {**(rows[ref].metadata or {}), **meta}
                if (err := check_metadata(merged, f"merged metadata of scene {ref!r}", ref)):
                    raise BatchError([err])
                conn.execute(update(t.scenes).where(t.scenes.c.pk == rows[ref].pk).values(
                    metadata=merged, updated_at=now()))
        return {"updated_scenes": len(updates)}

    def delete_scene(self, dataset: str, reference_id: str) -> dict[str, Any]:
        """Delete a scene with its items and everything on them."""
        with self.db.write() as conn:
            ds = self._dataset_row(conn, dataset)
            row = conn.execute(select(t.scenes).where(
                t.scenes.c.dataset_pk == ds.pk, t.scenes.c.reference_id == reference_id)
            ).first()
            if row is None:
                raise NotFoundError(f"no scene {reference_id!r} in dataset {ds.name!r}",
                                    reference_id=reference_id)
            items = conn.execute(select(t.items).join(
                t.scene_frames, t.scene_frames.c.item_pk == t.items.c.pk).where(
                t.scene_frames.c.scene_pk == row.pk)).all()
            for item in items:
                self._delete_item_rows(conn, ds.pk, item)  # type: ignore[attr-defined]
            conn.execute(delete(t.scenes).where(t.scenes.c.pk == row.pk))
        return {"deleted": row.id, "reference_id": reference_id, "deleted_items": len(items)}

    # --- tracks ---------------------------------------------------------------------

    def _track_ids(self, conn: Connection, dataset_pk: int) -> list[str]:
        a, p = t.annotations, t.predictions
        runs = select(t.model_runs.c.pk).where(t.model_runs.c.dataset_pk == dataset_pk)
        q = union(
            select(a.c.track_id.label("ref")).where(
                a.c.dataset_pk == dataset_pk, a.c.version_to.is_(None),
                a.c.track_id.is_not(None)),
            select(p.c.track_id.label("ref")).where(
                p.c.run_pk.in_(runs), p.c.track_id.is_not(None)),
            select(t.tracks.c.reference_id.label("ref")).where(
                t.tracks.c.dataset_pk == dataset_pk))
        return sorted(conn.execute(q).scalars().all())

    def list_tracks(self, dataset: str) -> list[dict[str, Any]]:
        """The dataset's tracks: every track id its current ground truth or its runs'
        predictions carry, with the metadata given to it."""
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
            meta = dict(conn.execute(select(t.tracks.c.reference_id, t.tracks.c.metadata)
                                     .where(t.tracks.c.dataset_pk == ds.pk)).all())
            refs = self._track_ids(conn, ds.pk)
        return [{"reference_id": r, "dataset_id": ds.id, "metadata": meta.get(r) or {}}
                for r in refs]

    def update_track(self, dataset: str, reference_id: str, metadata: dict[str, Any], *,
                     replace: bool = False) -> dict[str, Any]:
        """Merge (or with ``replace``, overwrite) a track's metadata."""
        if (err := check_metadata(metadata, f"track {reference_id!r}", reference_id)):
            raise err
        with self.db.write() as conn:
            ds = self._dataset_row(conn, dataset)
            if reference_id not in self._track_ids(conn, ds.pk):
                raise NotFoundError(f"no track {reference_id!r} in dataset {ds.name!r}",
                                    reference_id=reference_id)
            row = conn.execute(select(t.tracks).where(
                t.tracks.c.dataset_pk == ds.pk, t.tracks.c.reference_id == reference_id)
            ).first()
            merged = metadata if replace or row is None else {**(row.metadata or {}),
                                                              **metadata}
            if (err := check_metadata(merged, f"track {reference_id!r}", reference_id)):
                raise err
            if row is None:
                conn.execute(t.tracks.insert().values(
                    dataset_pk=ds.pk, reference_id=reference_id, metadata=merged,
                    created_at=now()))
            else:
                conn.execute(update(t.tracks).where(t.tracks.c.pk == row.pk).values(
                    metadata=merged))
        return {"reference_id": reference_id, "dataset_id": ds.id, "metadata": merged}

    def delete_tracks(self, dataset: str, reference_ids: Sequence[str]) -> dict[str, Any]:
        """Unlink tracks: their id is cleared from current ground truth and predictions
        (earlier annotation versions keep it) and their metadata dropped."""
        refs = list(dict.fromkeys(reference_ids))
        if not refs or not all(isinstance(r, str) for r in refs):
            raise ValidationError("give a list of track reference ids")
        with self.db.write() as conn:
            ds = self._dataset_row(conn, dataset)
            known = set(self._track_ids(conn, ds.pk))
            missing = [r for r in refs if r not in known]
            if missing:
                raise NotFoundError(f"unknown track(s) in dataset {ds.name!r}: "
                                    f"{', '.join(map(repr, missing[:5]))}",
                                    reference_id=missing[0])
            runs = select(t.model_runs.c.pk).where(t.model_runs.c.dataset_pk == ds.pk)
            for part in chunks(refs):
                conn.execute(update(t.annotations).where(
                    t.annotations.c.dataset_pk == ds.pk,
                    t.annotations.c.version_to.is_(None),
                    t.annotations.c.track_id.in_(list(part))).values(track_id=None))
                conn.execute(update(t.predictions).where(
                    t.predictions.c.run_pk.in_(runs),
                    t.predictions.c.track_id.in_(list(part))).values(track_id=None))
                conn.execute(delete(t.tracks).where(
                    t.tracks.c.dataset_pk == ds.pk, t.tracks.c.reference_id.in_(list(part))))
        return {"deleted_tracks": len(refs)}
