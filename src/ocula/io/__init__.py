"""Importers and exporters for common computer-vision label formats.

Importers read files and return plain domain objects (:mod:`ocula.core.types`) in an
:class:`ImportedData`; they never touch a store. Exporters take items + annotations
and return a dict (COCO), write a folder (VOC, YOLO, Penn-Fudan) or a file (CVAT)::

    ImportedData(items, annotations, predictions, categories, info, warnings)
    Prediction = BoxPrediction | PolygonPrediction | ... (union of the prediction types)

    import_coco(annotations_json, images_dir=None, *, kinds=None) -> ImportedData
    import_coco_results(results_json, gt, *, kinds=None) -> list[Prediction]
    import_voc(path, *, image_set=None) -> ImportedData
    import_yolo(path, class_names=None) -> ImportedData   # names: list or {index: name}
    import_pennfudan(path, *, label="pedestrian") -> ImportedData
    import_cvat(path, images_dir=None) -> ImportedData    # annotations.xml or its folder

    export_coco(items, annotations=(), predictions=None, *, categories=None,
                info=None, licenses=None) -> dict
    export_coco_results(items, predictions, *, categories=None) -> list[dict]
    save_coco(items, annotations, out_path, **export_coco_options) -> Path
    export_voc(items, annotations, out_dir, *, copy_images=True) -> Path
    export_yolo(items, annotations, out_dir, *, class_names=None, geometry="auto",
                copy_images=True) -> Path
    export_pennfudan(items, annotations, out_dir, *, copy_images=True) -> Path
    export_cvat(items, annotations, out_path, *, categories=None) -> Path

    REGISTRY = {"coco": import_coco, "voc": import_voc, "yolo": import_yolo,
                "pennfudan": import_pennfudan, "cvat": import_cvat}  # each as f(path)
    EXPORTERS = {"coco": save_coco, "voc": export_voc, "yolo": export_yolo,
                 "pennfudan": export_pennfudan,
                 "cvat": export_cvat}              # each callable as f(items, anns, out)

What each format reads (details in each module's docstring):

========== ================================================================================
coco       instances / person keypoints JSON: boxes, polygons, RLE masks, keypoints;
           results JSON as predictions
voc        ``Annotations/*.xml`` (or a folder of XML files) -> boxes; the image is found by
           ``<filename>`` in ``JPEGImages/``/``images/``..., ``<folder>/<filename>``,
           ``<path>`` or the XML's own name; boxes past the image are clamped (warned)
yolo       ``images/`` + ``labels/`` (or ``Images/`` + ``Annotations/``, or side by side):
           boxes, polygons, pose lines (``kpt_shape``: box + keypoints), ``conf`` ->
           predictions; DOTA ``images/`` + ``labelTxt/`` oriented boxes -> 4-point polygons
pennfudan  ``PNGImages/`` + ``PedMasks/``: a box and an instance mask per pedestrian
========== ================================================================================

Conventions shared by all formats:

* ``DatasetItem.image_location`` is an absolute local path, ``reference_id`` the image
  path relative to the dataset's image folder (COCO ``file_name``), ``width``/``height``
  are always set (read from the image header when the labels do not say).
* One source object that carries several geometries becomes one annotation per
  geometry, with ids ``"<id>"`` (box), ``"<id>/polygon"``, ``"<id>/mask"``,
  ``"<id>/keypoints"``; exporters merge parts with the same base id back together.
* Masks are COCO uncompressed RLE; compressed COCO RLE strings are decoded by
  :mod:`ocula.core.masks` (no pycocotools needed), and multi-part polygons are rasterised
  exactly like pycocotools.
* Errors are typed (:mod:`ocula.errors`): :class:`NotFoundError` for a missing file or
  folder, :class:`ValidationError` for unreadable JSON/XML, unknown image or category
  ids and bad structure, :class:`GeometryError` for malformed boxes, polygons, RLE or
  keypoints, :class:`DuplicateIdError` for repeated ids, :class:`ImageError` for
  missing or unreadable images. Messages name the offending file, line or annotation
  id, and ``reference_id`` is set when the item is known.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._common import ImportedData, Prediction
from .coco import (
    export_coco,
    export_coco_results,
    import_coco,
    import_coco_results,
    save_coco,
)
from .cvat import export_cvat, import_cvat
from .pennfudan import export_pennfudan, import_pennfudan
from .voc import export_voc, import_voc
from .yolo import export_yolo, import_yolo

REGISTRY: dict[str, Callable[..., ImportedData]] = {
    "coco": import_coco,
    "voc": import_voc,
    "yolo": import_yolo,
    "pennfudan": import_pennfudan,
    "cvat": import_cvat,
}

EXPORTERS: dict[str, Callable[..., Any]] = {
    "coco": save_coco,
    "voc": export_voc,
    "yolo": export_yolo,
    "pennfudan": export_pennfudan,
    "cvat": export_cvat,
}

__all__ = [
    "EXPORTERS",
    "REGISTRY",
    "ImportedData",
    "Prediction",
    "export_coco",
    "export_coco_results",
    "export_cvat",
    "export_pennfudan",
    "export_voc",
    "export_yolo",
    "import_coco",
    "import_coco_results",
    "import_cvat",
    "import_pennfudan",
    "import_voc",
    "import_yolo",
    "save_coco",
]
