"""Client-side handles for datasets and slices (Nucleus-style objects over a backend)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ocula.client.item import Item
from ocula.client.model import ModelRun
from ocula.client.progress import batched, progress_bar
from ocula.client.scene import SceneMethods, TaxonomyMethods
from ocula.core.types import DatasetItem, payload_to_annotation
from ocula.errors import ValidationError
from ocula.io import export_coco, export_cvat
from ocula.io.coco import export_slice_contents

if TYPE_CHECKING:
    from ocula.client.client import Client

APPEND_BATCH = 10_000
ANNOTATE_BATCH = 50_000


def _item(body: dict[str, Any]) -> DatasetItem:
    return DatasetItem.from_payload(body)


def _refloc(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "item": _item(body["item"]),
        "annotations": {kind: [payload_to_annotation(a) for a in anns]
                        for kind, anns in body["annotations"].items()},
    }
    if "predictions" in body:
        out["predictions"] = {run: [payload_to_annotation(p, prediction=True) for p in preds]
                              for run, preds in body["predictions"].items()}
    return out


def _paged(first: dict[str, Any], fetch: Callable[[str], dict[str, Any]], key: str
           ) -> Iterator[dict[str, Any]]:
    """The rows of a first page already read, then of each next page, fetched lazily."""
    page = first
    while True:
        yield from page[key]
        cursor = page["next_cursor"]
        if cursor is None:
            return
        page = fetch(cursor)


class Dataset(SceneMethods, TaxonomyMethods):
    """A dataset in a catalog. Get one from :meth:`Client.create_dataset` or
    :meth:`Client.get_dataset`; it holds only its id, every call asks the backend."""

    def __init__(self, client: Client, dataset_id: str, name: str):
        self._client = client
        self._backend = client._backend
        self.id = dataset_id
        self.name = name

    def __repr__(self) -> str:
        return f"Dataset(id={self.id!r}, name={self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dataset) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def info(self) -> dict[str, Any]:
        """Counts (``length`` items, annotations), labels, slices and model runs."""
        return self._backend.dataset_info(self.id)

    def __len__(self) -> int:
        return self.info()["length"]

    # --- items ----------------------------------------------------------------------

    def append(self, items: Sequence[DatasetItem], update: bool = False, *,
               copy_media: bool = False, on_error: Literal["raise", "skip"] = "raise",
               batch_size: int = APPEND_BATCH, progress: bool | None = None) -> dict[str, Any]:
        """Add items; returns ``new_items``, ``updated_items``, ``ignored_items``,
        ``errors``. Existing reference ids are ignored (or replaced with ``update``), so
        a retried append is idempotent. Each batch of ``batch_size`` items is one
        transaction: with ``on_error="raise"`` a bad item raises BatchError and its
        batch writes nothing; ``"skip"`` writes the good items and lists the bad."""
        totals: dict[str, Any] = {"new_items": 0, "updated_items": 0, "ignored_items": 0,
                                  "errors": []}
        with progress_bar("Appending items", len(items), progress) as advance:
            for batch in batched(items, batch_size):
                result = self._backend.append(self.id, batch, update=update,
                                              copy_media=copy_media, on_error=on_error)
                for key in ("new_items", "updated_items", "ignored_items"):
                    totals[key] += result[key]
                totals["errors"] += result["errors"]
                advance(len(batch))
        return totals

    @property
    def items(self) -> list[DatasetItem]:
        """All items, in insertion order (use :meth:`items_iter` for large datasets)."""
        return list(self.items_iter())

    def items_iter(self, page_size: int = 1000) -> Iterator[DatasetItem]:
        cursor = None
        while True:
            page = self._backend.list_items(self.id, limit=page_size, after=cursor)
            yield from (_item(b) for b in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def refloc(self, reference_id: str, *, with_predictions: bool = False) -> dict[str, Any]:
        """``{"item": DatasetItem, "annotations": {type: [annotation, ...]}}``."""
        return _refloc(self._backend.get_item(self.id, reference_id=reference_id,
                                              with_predictions=with_predictions))

    def loc(self, item_id: str) -> dict[str, Any]:
        return _refloc(self._backend.get_item(self.id, item_id=item_id))

    def iloc(self, index: int) -> dict[str, Any]:
        return _refloc(self._backend.get_item(self.id, index=index))

    def delete_item(self, reference_id: str) -> dict[str, Any]:
        return self._backend.delete_item(self.id, reference_id)

    def item(self, reference_id: str) -> Item:
        """One item's labels, to edit interactively and read their history."""
        return Item(self, reference_id)

    def update_item_metadata(self, metadata_by_ref: dict[str, dict[str, Any]], *,
                             replace: bool = False) -> dict[str, Any]:
        """Merge new metadata into items (``replace=True`` overwrites it)."""
        updates = [{"reference_id": r, "metadata": md} for r, md in metadata_by_ref.items()]
        return self._backend.update_metadata(self.id, updates, replace=replace)

    # --- ground truth ---------------------------------------------------------------

    def annotate(self, annotations: Sequence[Any], update: bool = False, *,
                 message: str | None = None, batch_size: int = ANNOTATE_BATCH,
                 progress: bool | None = None) -> dict[str, Any]:
        """Add ground truth (boxes, polygons, lines, keypoints, categories,
        multicategories, masks). Each batch
        is validated whole and written as one transaction and one label version."""
        totals: dict[str, Any] = {"annotations_processed": 0, "annotations_ignored": 0,
                                  "annotations_replaced": 0, "version": None}
        batches = list(batched(annotations, batch_size))
        with progress_bar("Annotating", len(annotations), progress) as advance:
            for batch, result in zip(batches, self._backend.annotate_batches(
                    self.id, batches, update=update, message=message), strict=True):
                for key in ("annotations_processed", "annotations_ignored",
                            "annotations_replaced"):
                    totals[key] += result[key]
                totals["version"] = result["version"] or totals["version"]
                advance(len(batch))
        return totals

    def annotations(self, *, version: int | str | None = None,
                    reference_ids: Sequence[str] | None = None) -> list[Any]:
        """Ground truth now, or at an earlier version (number or name)."""
        return [payload_to_annotation(a) for a in self._backend.list_annotations(
            self.id, version=version, reference_ids=reference_ids)]

    def delete_annotations(self, *, reference_ids: Sequence[str] | None = None,
                           annotation_ids: Sequence[str] | None = None) -> dict[str, Any]:
        return self._backend.delete_annotations(self.id, reference_ids=reference_ids,
                                                annotation_ids=annotation_ids)

    def segmentation_mask(self, reference_id: str, *, run: ModelRun | str | None = None
                          ) -> Any:
        """An item's segmentation as its index mask: ``(index, segmentation)``, the
        H x W array whose pixels hold the segments' indexes (0 elsewhere), rebuilt from
        the masks Ocula split it into, and the :class:`SegmentationAnnotation` (or
        prediction, of ``run``: a run, its name or id) as it was sent."""
        from ocula.core.segmentations import segmentation_mask

        if run is None:
            body = self._backend.get_item(self.id, reference_id=reference_id)
            objects = [a for anns in body["annotations"].values() for a in anns]
        else:
            run_id = run.id if isinstance(run, ModelRun) else self.get_run(run).id
            objects = self._backend.list_predictions(run_id, [reference_id])
        return segmentation_mask(objects, f"item {reference_id!r}", prediction=run is not None)

    def versions(self) -> list[dict[str, Any]]:
        """Every version of the labels: number, name, message, time."""
        return self._backend.list_versions(self.id)

    def tag_version(self, name: str, version: int | None = None) -> dict[str, Any]:
        return self._backend.tag_version(self.id, name, version)

    def export_coco(self, path: str | Path, *, slice: str | None = None,
                    version: int | str | None = None) -> dict[str, int]:
        """Write the dataset (or one slice) with its ground truth, current or at
        ``version``, as a COCO instances JSON file; returns counts. An object slice
        exports exactly its boxes (current labels, predictions with their scores).
        Category records kept in the dataset's ``metadata["coco"]["categories"]`` (set
        by ``ocula import coco``, or ``create_dataset(name, metadata=imported.info)``)
        keep their ids, supercategories and skeletons; ``info`` and ``licenses`` kept
        there are written back too."""
        chosen = self.get_slice(slice) if slice is not None else None
        if chosen is not None and chosen.info()["kind"] == "object":
            if version is not None:
                raise ValidationError("an object slice holds specific label rows; export it "
                                      "without a version")
            coco = export_slice_contents(self._backend.slice_contents(chosen.id))
        else:
            kept = (self._backend.get_dataset(self.id).get("metadata") or {}).get("coco") or {}
            coco = export_coco(*self._ground_truth(chosen, version),
                               categories=kept.get("categories") or None,
                               info=kept.get("info"), licenses=kept.get("licenses"))
        Path(path).write_text(json.dumps(coco))
        return {"images": len(coco["images"]), "annotations": len(coco["annotations"]),
                "categories": len(coco["categories"])}

    def export_cvat(self, path: str | Path, *, slice: str | None = None,
                    version: int | str | None = None) -> dict[str, int]:
        """Write the dataset (or one item slice) with its ground truth, current or at
        ``version``, as a CVAT for images 1.1 XML file; returns counts. Object slices
        hold predictions too and export as COCO only. Label specs kept in the dataset's
        ``metadata["cvat"]["labels"]`` (set by ``ocula import cvat``) are written back."""
        chosen = self.get_slice(slice) if slice is not None else None
        if chosen is not None and chosen.info()["kind"] == "object":
            raise ValidationError("an object slice exports as COCO only (export_coco)")
        items, annotations = self._ground_truth(chosen, version)
        meta = self._backend.get_dataset(self.id).get("metadata") or {}
        export_cvat(items, annotations, path,
                    categories=(meta.get("cvat") or {}).get("labels") or None)
        return {"images": len(items), "annotations": len(annotations),
                "categories": len({label for a in annotations for label in (
                    a.labels if a.type == "multicategory" else [a.label])})}

    def _ground_truth(self, chosen: Slice | None, version: int | str | None
                      ) -> tuple[list[DatasetItem], list[Any]]:
        """The items of the dataset (or of an item slice) and their labels at ``version``."""
        items = chosen.items if chosen is not None else self.items
        refs = [it.reference_id for it in items] if chosen is not None else None
        return items, self.annotations(version=version, reference_ids=refs)

    # --- slices and runs ------------------------------------------------------------

    def create_slice(self, name: str, reference_ids: Sequence[str] = (), *,
                     description: str | None = None, query: str | None = None,
                     target: Literal["items", "objects"] = "items",
                     slice: str | None = None) -> Slice:
        """A slice of the given items, or with ``query`` a snapshot of what the query
        matches now (``target="objects"``: an object slice of annotations/predictions;
        ``slice``: only within that slice, by name or id)."""
        if query is not None:
            if reference_ids:
                raise ValueError("give reference_ids or query, not both")
            body = self._backend.create_slice_from_query(self.id, name, query, target=target,
                                                         slice=slice, description=description)
        else:
            body = self._backend.create_slice(self.id, name, list(reference_ids),
                                              description=description)
        return Slice(self._client, body["slice_id"], body["name"], self.id)

    def combine_slices(self, name: str, operation: Literal["union", "intersection",
                                                           "difference"],
                       slices: Sequence[str]) -> Slice:
        """A new slice: union, intersection or difference (first minus the rest) of
        slices given by name or id."""
        body = self._backend.combine_slices(self.id, name, operation, list(slices))
        return Slice(self._client, body["slice_id"], body["name"], self.id)

    def split(self, fractions: Mapping[str, float], *, seed: int = 0,
              stratify: bool | Mapping[str, str] = False, slice: str | None = None,
              annotation_version: int | str | None = None) -> dict[str, Slice]:
        """Split the items (or those of ``slice``) into new, disjoint slices, e.g.
        ``ds.split({"training_set": 0.7, "test_set": 0.3}, seed=1)``; returns name →
        :class:`Slice`. The same items, fractions and seed always give the same slices
        (items sorted by reference id, then shuffled by ``seed``); sizes are rounded by
        largest remainder, and fractions adding up to less than 1 leave the rest out.
        ``stratify=True`` splits within each group of items with the same most frequent
        label (at ``annotation_version``), so each slice gets its share of each class;
        a mapping reference id → group key stratifies by any key (e.g. a metadata
        field). See :mod:`ocula.client.split`."""
        from ocula.client.split import assign, check_fractions, majority_labels
        from ocula.integrations.rows import read_rows

        check_fractions(fractions)
        if stratify is True:
            rows = read_rows(self, slice=slice, annotation_version=annotation_version)
            refs = [it["reference_id"] for it in rows.items]
            keys: Mapping[str, str] | None = majority_labels(
                {ref: [a["label"] for a in rows.annotations[ref] if a.get("label")]
                 for ref in refs})
        else:
            items = self.get_slice(slice).items if slice is not None else self.items
            refs = [it.reference_id for it in items]
            keys = stratify or None
        chosen = assign(refs, fractions, seed=seed, keys=keys)
        return {name: self.create_slice(name, reference_ids=members,
                                        description=f"split seed={seed}")
                for name, members in chosen.items()}

    def to_torch(self, slice: Slice | str | None = None, query: str | None = None,  # noqa: A002
                 annotation_version: int | str | None = None,
                 transform: Callable[[Any, dict[str, Any]], tuple[Any, Any]] | None = None,
                 *, labels: Sequence[str] | None = None, include_crowd: bool = False,
                 with_masks: bool | None = None) -> Any:
        """The items (or a slice's, or an item query's, within ``slice`` if both) as a
        ``torch.utils.data.Dataset`` of ``(image, target)`` in torchvision's detection
        format, labels at ``annotation_version`` (number or name; None: current).

        ``target`` holds ``boxes`` (``float32 [N, 4]`` xyxy pixels), ``labels``
        (``int64``; 0 is background, the dataset's labels sorted are 1…K: ``.labels``
        and ``.label_map``), ``masks`` (``uint8 [N, H, W]``, when the labels have
        masks or polygons; ``with_masks=False`` never, ``True`` always), ``area``,
        ``iscrowd``, ``image_id`` and ``reference_id``.
        ``transform(image, target)`` returns both (torchvision.transforms.v2 style).
        ``labels`` fixes the index order (default: every label of the dataset, so
        slices of one dataset share one map). Crowd boxes are left out unless
        ``include_crowd`` (torchvision's reference scripts drop them). Rows are read in
        bulk now; images are
        read per sample, from files (embedded) or the server, so it works with
        ``DataLoader(ds, num_workers=4, collate_fn=ds.collate_fn)``. Needs PyTorch:
        ``pip install "ocula[torch]"``. See :mod:`ocula.integrations.pytorch`."""
        from ocula.integrations.pytorch import to_torch

        return to_torch(self, slice=slice, query=query,
                        annotation_version=annotation_version, transform=transform,
                        labels=labels, include_crowd=include_crowd, with_masks=with_masks)

    # --- queries (docs/query-language.md) -------------------------------------------

    def query_items(self, query: str, slice: str | None = None, *,
                    page_size: int = 500) -> Iterator[DatasetItem]:
        """Items matching an item query, e.g.
        ``ds.query_items('metadata.weather = "rain" and count(label = "car") > 3')``.
        The query is checked (and its first page read) at the call, so a bad query
        raises :class:`~ocula.errors.QueryError` here; later pages are read as the
        iterator reaches them."""
        def page(cursor: str | None) -> dict[str, Any]:
            return self._backend.query_items(self.id, query, slice=slice,
                                             page_size=page_size, cursor=cursor)
        return (_item(b) for b in _paged(page(None), page, "items"))

    def query_objects(self, query: str, slice: str | None = None, *, page_size: int = 500,
                      raw: bool = False) -> Iterator[Any]:
        """Annotations/predictions matching an object query, as annotation objects (or,
        with ``raw``, dicts that also carry ``kind``, ``run``, ``status`` and ``iou``).
        Checked at the call, paged lazily, as :meth:`query_items`."""
        def page(cursor: str | None) -> dict[str, Any]:
            return self._backend.query_objects(self.id, query, slice=slice,
                                               page_size=page_size, cursor=cursor)
        bodies = _paged(page(None), page, "objects")
        if raw:
            return bodies
        return (payload_to_annotation(b, prediction=b["kind"] == "prediction") for b in bodies)

    def describe_query(self, query: str,
                       target: Literal["items", "objects"] = "items") -> str:
        """Check a query without running it and return it in plain English; a bad query
        raises :class:`~ocula.errors.QueryError` with line and column."""
        return self._backend.describe_query(self.id, query, target)["description"]

    def insights(self, *, slice: str | None = None, query: str | None = None
                 ) -> dict[str, Any]:
        """Chart data (labels, sizes, metadata, per-class run results) for the dataset,
        a slice and/or an item query; every bucket carries the query selecting it."""
        return self._backend.insights(self.id, slice=slice, query=query)

    def deduplicate(self, threshold: int = 10, *,
                    reference_ids: Sequence[str] | None = None,
                    item_ids: Sequence[str] | None = None,
                    slice: Slice | str | None = None,  # noqa: A002
                    query: str | None = None, max_groups: int | None = None,
                    on_error: Literal["raise", "skip"] = "raise") -> dict[str, Any]:
        """Near-duplicate images by pHash: two images are duplicates when their 64-bit
        hashes differ in at most ``threshold`` bits (0-64). Of each set of duplicates
        one is kept (Nucleus' rule: in order of hash, then reference id). Scope: the
        whole dataset, ``reference_ids`` or ``item_ids``, or a ``slice`` and/or item
        ``query``. Returns ``unique_reference_ids``/``unique_item_ids`` (kept),
        ``groups`` (each kept item with its duplicates and their distances) and
        ``stats``. See ``docs/deduplication.md``."""
        slice_id = slice.id if isinstance(slice, Slice) else slice
        return self._backend.deduplicate(
            self.id, threshold=threshold, reference_ids=reference_ids, item_ids=item_ids,
            slice=slice_id, query=query, max_groups=max_groups, on_error=on_error)

    @property
    def slices(self) -> list[Slice]:
        return [Slice(self._client, s["slice_id"], s["name"], self.id)
                for s in self._backend.list_slices(self.id)]

    def get_slice(self, name_or_id: str) -> Slice:
        body = self._backend.find_slice(self.id, name_or_id)
        return Slice(self._client, body["slice_id"], body["name"], self.id)

    @property
    def model_runs(self) -> list[ModelRun]:
        return [ModelRun(self._client, r) for r in self._backend.list_runs(dataset=self.id)]

    def get_run(self, name_or_id: str) -> ModelRun:
        return ModelRun(self._client, self._backend.find_run(self.id, name_or_id))


class Slice:
    """A named subset of a dataset's items."""

    def __init__(self, client: Client, slice_id: str, name: str, dataset_id: str):
        self._client = client
        self._backend = client._backend
        self.id = slice_id
        self.name = name
        self.dataset_id = dataset_id

    def __repr__(self) -> str:
        return f"Slice(id={self.id!r}, name={self.name!r})"

    def info(self) -> dict[str, Any]:
        return self._backend.slice_info(self.id)

    @property
    def items(self) -> list[DatasetItem]:
        return [_item(b) for b in self._backend.slice_items(self.id)]

    @property
    def reference_ids(self) -> list[str]:
        return [b["reference_id"] for b in self._backend.slice_items(self.id)]

    def append(self, reference_ids: Sequence[str]) -> dict[str, Any]:
        return self._backend.slice_append(self.id, list(reference_ids))

    def to_torch(self, query: str | None = None, annotation_version: int | str | None = None,
                 transform: Callable[[Any, dict[str, Any]], tuple[Any, Any]] | None = None,
                 *, labels: Sequence[str] | None = None, include_crowd: bool = False,
                 with_masks: bool | None = None) -> Any:
        """This slice's items as a PyTorch dataset: :meth:`Dataset.to_torch` with
        ``slice`` set (the label map is still the whole dataset's)."""
        dataset = Dataset(self._client, self.dataset_id, "")
        return dataset.to_torch(self, query, annotation_version, transform, labels=labels,
                                include_crowd=include_crowd, with_masks=with_masks)

    def objects(self, *, page_size: int = 500) -> Iterator[dict[str, Any]]:
        """The boxes of an object slice (annotation or prediction JSON with ``kind``,
        ``reference_id``, ``run``, ``status`` and ``iou``), a page at a time."""
        cursor = None
        while True:
            page = self._backend.slice_objects(self.id, page_size=page_size, cursor=cursor)
            yield from page["objects"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def remove(self, reference_ids: Sequence[str]) -> dict[str, Any]:
        return self._backend.slice_remove(self.id, list(reference_ids))

    def append_query(self, query: str, *, within: str | None = None) -> dict[str, Any]:
        """Add the items ``query`` matches now (within the slice ``within``, if given);
        the server selects them, so no ids travel. To an object slice, the annotations
        and predictions an object query matches. ``{"slice_id", "added"}``."""
        return self._backend.slice_append_query(self.id, query, within=within)

    def remove_query(self, query: str, *, within: str | None = None) -> dict[str, Any]:
        """Take out the items (of an object slice: the objects) ``query`` matches now.
        ``{"slice_id", "removed"}``."""
        return self._backend.slice_remove_query(self.id, query, within=within)
