"""Segmentations (Nucleus' index masks) on the way in and out of the store.

On the way in, each :class:`~ocula.core.types.SegmentationAnnotation` (or prediction) of
a known item is split into one mask per segment (``segmentation/<index>``), its PNG read
from the bytes sent with it, its URL (through the service's fetcher, which refuses
private addresses unless allowed) or a local path (under the media roots on a server).
An item holds one segmentation, as in Nucleus: a second one is ignored, or replaces the
first with ``update`` (segments it no longer has are removed with it); counts are per
segmentation, not per mask. On the way out, :meth:`item_segmentation_png` paints an
item's masks back into its index PNG.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select

from ocula.core import segmentations as sg
from ocula.core.services.base import ServiceBase
from ocula.core.services.payloads import object_payload
from ocula.core.store import media as m
from ocula.core.store import schema as t
from ocula.core.types import SEGMENT_ID_PREFIX, SegmentationAnnotation
from ocula.errors import NotFoundError, OculaError

_PIXELS = "_ocula_index_pixels"  # the decoded mask, kept on the object across retries


def is_segment_part(obj: Any) -> bool:
    """Whether ``obj`` is one mask split from a segmentation."""
    return getattr(obj, "segment", None) is not None and str(
        obj.annotation_id or "").startswith(SEGMENT_ID_PREFIX)


class SegmentationService(ServiceBase):
    def _split_segmentations(self, objs: Sequence[Any], items: dict[str, Any]
                             ) -> tuple[list[Any], list[OculaError]]:
        """``objs`` with each segmentation of a known item (``items``: reference_id ->
        row with width and height) split into its masks, and every error found on the
        way. A segmentation of an unknown item stays as it is, so the batch check names
        its reference id (its mask is never fetched)."""
        if not any(isinstance(o, SegmentationAnnotation) for o in objs):
            return list(objs), []
        out: list[Any] = []
        errors: list[OculaError] = []
        for obj in objs:
            ref = getattr(obj, "reference_id", None)
            item = items.get(ref) if isinstance(ref, str) else None
            if not isinstance(obj, SegmentationAnnotation) or item is None:
                out.append(obj)
                continue
            where = f"segmentation on {ref!r}"
            bad = sg.segment_errors(obj, where)
            if bad:
                errors += bad
                continue
            try:
                index = self._index_pixels(obj, item, where)
            except OculaError as exc:
                exc.reference_id = exc.reference_id or ref
                errors.append(exc)
                continue
            bad = sg.missing_segments(obj, index, where)
            if bad:
                errors += bad
                continue
            out.extend(obj.to_instances(index))
        return out, errors

    def _index_pixels(self, seg: SegmentationAnnotation, item: Any, where: str) -> np.ndarray:
        """The segmentation's index array at its item's size (read once per object)."""
        cached = getattr(seg, _PIXELS, None)
        if cached is None:
            loc, ref = seg.mask_url, seg.reference_id
            if seg.mask_bytes is not None:
                data, name = seg.mask_bytes, f"the mask file sent for {ref!r}"
            elif m.is_url(loc):
                data, name = self._fetch(loc), loc
            else:
                # A server names the item, never its own paths.
                name = loc if self.real_roots is None else f"the mask of item {ref!r}"
                with m.open_image(os.path.abspath(loc), self.real_roots, name) as fp:
                    data = fp.read()
            cached = sg.decode_index_png(data, f"{where}: {name}", ref)
            setattr(seg, _PIXELS, cached)
        return sg.fit_index_mask(cached, item.width, item.height, resize=seg.fit_to_image,
                                 what=f"{where}: the mask", reference_id=seg.reference_id)

    def item_segmentation_png(self, item_id: str, run: str | None = None) -> bytes:
        """The index PNG of an item's segmentation: its current ground truth's, or the
        predicted one of run ``run`` (an id). A 404 when it has none."""
        with self.db.read() as conn:
            item = conn.execute(select(t.items.c.pk, t.items.c.reference_id).where(
                t.items.c.id == item_id)).first()
            if item is None:
                raise NotFoundError(f"no item {item_id!r}")
            if run is None:
                table = t.annotations
                cond = [table.c.version_to.is_(None)]
            else:
                run_pk = conn.scalar(select(t.model_runs.c.pk).where(
                    t.model_runs.c.id == run))
                if run_pk is None:
                    raise NotFoundError(f"no model run {run!r}")
                table = t.predictions
                cond = [table.c.run_pk == run_pk]
            rows = conn.execute(select(table).where(
                table.c.item_pk == item.pk, table.c.type == "mask",
                table.c.annotation_id.startswith(SEGMENT_ID_PREFIX, autoescape=True), *cond)
                .order_by(table.c.pk)).all()
        parts = [p for p in (object_payload(r, item.reference_id) for r in rows)
                 if sg.is_segment(p)]
        if not parts:
            whose = f"run {run!r}'s predictions" if run else "its ground truth"
            raise NotFoundError(f"item {item_id!r} has no segmentation in {whose}")
        return sg.encode_index_png(sg.index_mask(parts))
