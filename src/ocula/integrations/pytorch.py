"""A dataset, slice or query result as a ``torch.utils.data.Dataset`` (``to_torch``).

Each sample is ``(image, target)`` in torchvision's detection format, which its
detection models (Faster R-CNN, RetinaNet, SSD, Mask R-CNN, …) take as they are:

- ``image``: a ``float32`` tensor ``[3, H, W]`` with values in ``[0, 1]`` (RGB);
- ``target["boxes"]``: ``float32`` ``[N, 4]``, ``x1, y1, x2, y2`` in pixels;
- ``target["labels"]``: ``int64`` ``[N]``, indices into :attr:`OculaTorchDataset.labels`
  (0 is ``"__background__"``, as torchvision's detectors expect; the dataset's labels,
  sorted, are 1…K);
- ``target["masks"]`` (when the rows hold masks or polygons): ``uint8`` ``[N, H, W]``;
  an object with a box only gets its box filled;
- ``target["area"]``, ``target["iscrowd"]`` (COCO's), ``target["image_id"]`` (the
  sample's index), ``target["reference_id"]`` (the item's) and
  ``target["annotation_ids"]``.

Crowd boxes (``iscrowd``) are left out unless ``include_crowd=True``, as torchvision's
reference training scripts do: a detector must not learn to box a crowd as one object.

One object is one source record: the parts that share an id base (``"17"`` and
``"17/mask"``, :data:`ocula.core.types.PART_SUFFIXES`) form one instance. Whole-image
categories and keypoints are left out.

The dataset holds plain data only: the rows (read in bulk when it is made,
:mod:`ocula.integrations.rows`) and how to open each image: a file path (embedded
catalogs) or the server's image route with the API key (remote ones; an HTTP client is
opened lazily in each process). So it pickles into ``DataLoader(num_workers>0)``
workers with no database handle or socket.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
from PIL import Image

from ocula.core.masks import polygons_to_rle, rle_decode
from ocula.core.types import base_id
from ocula.integrations import require_torch
from ocula.integrations.rows import ItemRows, read_rows

torch = require_torch()

if TYPE_CHECKING:
    from ocula.client.dataset import Dataset, Slice

BACKGROUND = "__background__"
_GEOMETRY_TYPES = ("box", "mask", "polygon")


def collate_fn(batch: Sequence[tuple[Any, Any]]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """``DataLoader(..., collate_fn=collate_fn)``: a batch as ``(images, targets)``
    tuples, since detection images differ in size and targets in length."""
    return tuple(zip(*batch, strict=True))  # type: ignore[return-value]


class _LocalImages:
    """Opens images by file path (embedded catalogs)."""

    def __init__(self, paths: dict[str, str | None]):
        self.paths = paths

    def __call__(self, item: dict[str, Any]) -> Image.Image:
        path = self.paths.get(item["id"])
        if path is None:
            raise FileNotFoundError(f"the image of item {item['reference_id']!r} is not a "
                                    "local file")
        return Image.open(path)


class _RemoteImages:
    """Reads images from a server's image route; the HTTP client is made lazily in each
    process (and never pickled)."""

    def __init__(self, api_url: str, api_key: str | None, timeout: float = 60.0):
        self.api_url = api_url
        self.api_key = api_key
        self.timeout = timeout
        self._http: Any = None
        self._pid: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_http": None, "_pid": None}

    def __call__(self, item: dict[str, Any]) -> Image.Image:
        # A forked worker inherits the parent's client (and its sockets): make its own.
        if self._http is None or self._pid != os.getpid():
            import httpx

            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._http = httpx.Client(base_url=self.api_url, headers=headers,
                                      timeout=self.timeout)
            self._pid = os.getpid()
        answer = self._http.get(f"/items/{quote(item['id'], safe='')}/image")
        if answer.status_code >= 400:  # the server's typed error, as the client raises it
            from ocula.client.http import error_from_dict

            try:
                body = answer.json()
            except ValueError:
                body = {"detail": answer.text[:200]}
            raise error_from_dict(body if isinstance(body, dict) else {}, answer.status_code)
        return Image.open(io.BytesIO(answer.content))


def _instances(anns: list[dict[str, Any]]) -> list[dict[str, dict[str, Any]]]:
    """The annotations with geometry, grouped into objects by id base, in order."""
    grouped: dict[str, dict[str, dict[str, Any]]] = {}
    for a in anns:
        if a["type"] not in _GEOMETRY_TYPES:
            continue
        key = base_id(a.get("annotation_id")) or a["id"]
        grouped.setdefault(key, {}).setdefault(a["type"], a)
    return list(grouped.values())


def _mask_of(parts: dict[str, dict[str, Any]], h: int, w: int) -> np.ndarray | None:
    if "mask" in parts:
        rle = parts["mask"]["geometry"]["rle"]
        return rle_decode(rle).astype(np.uint8)
    if "polygon" in parts:
        xy = [c for v in parts["polygon"]["geometry"]["vertices"] for c in (v["x"], v["y"])]
        return rle_decode(polygons_to_rle([xy], h, w)).astype(np.uint8)
    return None


def _box_of(parts: dict[str, dict[str, Any]], mask: np.ndarray | None
            ) -> tuple[float, float, float, float] | None:
    if "box" in parts:
        g = parts["box"]["geometry"]
        return (g["x"], g["y"], g["x"] + g["width"], g["y"] + g["height"])
    if mask is not None and mask.any():
        ys, xs = np.nonzero(mask)
        return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    return None


class OculaTorchDataset(torch.utils.data.Dataset):
    """Items and their labels as ``(image, target)`` samples (see the module
    docstring for the format). Make one with ``dataset.to_torch(...)``.

    Attributes:
        dataset_id: the Ocula dataset the rows come from.
        labels: index → label name; ``labels[0]`` is ``"__background__"``.
        label_map: label name → index (1…K).
        reference_ids: the items' reference ids, in sample order.
        with_masks: whether targets carry ``masks``.
    """

    def __init__(self, rows: ItemRows, labels: Sequence[str],
                 open_image: Callable[[dict[str, Any]], Image.Image],
                 transform: Callable[[Any, dict[str, Any]], tuple[Any, Any]] | None = None,
                 with_masks: bool | None = None, include_crowd: bool = False,
                 dataset_id: str | None = None):
        self.labels: list[str] = [BACKGROUND, *labels]
        self.label_map: dict[str, int] = {name: i for i, name in enumerate(labels, start=1)}
        self.dataset_id = dataset_id
        self.items = rows.items
        self.reference_ids = [it["reference_id"] for it in rows.items]
        self.objects = [_instances(rows.annotations.get(ref, []))
                        for ref in self.reference_ids]
        self.with_masks = (any("mask" in p or "polygon" in p for objs in self.objects
                               for p in objs) if with_masks is None else with_masks)
        self.open_image = open_image
        self.transform = transform
        self.include_crowd = include_crowd

    collate_fn = staticmethod(collate_fn)

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return (f"OculaTorchDataset({len(self)} items, {len(self.labels) - 1} labels, "
                f"masks={self.with_masks})")

    def target(self, index: int) -> dict[str, Any]:
        """The target of sample ``index`` alone (reads no image)."""
        item = self.items[index]
        h, w = int(item["height"]), int(item["width"])
        boxes, labels, masks, areas, crowd, ids = [], [], [], [], [], []
        for parts in self.objects[index]:
            first = next(iter(parts.values()))
            if first["label"] not in self.label_map or (
                    first.get("iscrowd") and not self.include_crowd):
                continue
            # A mask-only object needs its mask for its box, masks wanted or not.
            mask = _mask_of(parts, h, w) if self.with_masks or "box" not in parts else None
            box = _box_of(parts, mask)
            if box is None:
                continue
            boxes.append(box)
            labels.append(self.label_map[first["label"]])
            areas.append(first.get("area") or (box[2] - box[0]) * (box[3] - box[1]))
            crowd.append(int(bool(first.get("iscrowd"))))
            ids.append(base_id(first.get("annotation_id")) or first["id"])
            if self.with_masks:
                if mask is None:
                    mask = np.zeros((h, w), np.uint8)
                    x1, y1, x2, y2 = (round(v) for v in box)
                    mask[max(y1, 0):y2, max(x1, 0):x2] = 1
                masks.append(mask)
        target: dict[str, Any] = {
            "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "image_id": index,
            "area": torch.tensor(areas, dtype=torch.float32),
            "iscrowd": torch.tensor(crowd, dtype=torch.int64),
            "reference_id": item["reference_id"],
            "annotation_ids": ids,
        }
        if self.with_masks:
            target["masks"] = (torch.from_numpy(np.stack(masks)) if masks
                               else torch.zeros((0, h, w), dtype=torch.uint8))
        return target

    def image(self, index: int) -> Any:
        """The image of sample ``index`` as a ``float32`` tensor ``[3, H, W]`` in [0, 1]."""
        with self.open_image(self.items[index]) as im:
            pixels = np.asarray(im.convert("RGB"))
        return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float().div_(255.0)

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        image, target = self.image(index), self.target(index)
        if self.transform is not None:
            image, target = self.transform(image, target)
        return image, target


def _image_opener(dataset: Dataset, rows: ItemRows) -> Callable[[dict[str, Any]], Any]:
    backend = dataset._backend
    paths = getattr(backend, "local_image_paths", None)
    if paths is not None:  # an embedded catalog: open files by path
        return _LocalImages(paths([it["id"] for it in rows.items]))
    return _RemoteImages(backend.url, backend.api_key)


def to_torch(dataset: Dataset, *, slice: Slice | str | None = None,  # noqa: A002
             query: str | None = None, annotation_version: int | str | None = None,
             transform: Callable[[Any, dict[str, Any]], tuple[Any, Any]] | None = None,
             labels: Sequence[str] | None = None, include_crowd: bool = False,
             with_masks: bool | None = None) -> OculaTorchDataset:
    """What :meth:`ocula.client.dataset.Dataset.to_torch` returns (see there)."""
    rows = read_rows(dataset, slice=slice, query=query,
                     annotation_version=annotation_version)
    if labels is None:
        known = dataset._backend.dataset_info(dataset.id)["labels"]
        labels = sorted({name for name in known if name is not None} | set(rows.labels()))
    elif len(set(labels)) != len(labels) or BACKGROUND in labels:
        raise ValueError(f"labels must be distinct and not {BACKGROUND!r}")
    return OculaTorchDataset(rows, list(labels), _image_opener(dataset, rows), transform,
                             with_masks=with_masks, include_crowd=include_crowd,
                             dataset_id=dataset.id)


__all__ = ["BACKGROUND", "OculaTorchDataset", "collate_fn", "to_torch"]
