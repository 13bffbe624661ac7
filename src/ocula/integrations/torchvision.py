"""A torchvision detector's outputs as Ocula predictions, and a model run in one call.

torchvision's detection models return, per image, a dict of tensors: ``boxes``
(``[N, 4]`` xyxy pixels), ``labels`` (``int64`` class indices), ``scores`` and, for
Mask R-CNN, ``masks`` (``[N, 1, H, W]`` probabilities). :func:`to_predictions` turns a
list of those (tensors or numpy arrays) into :class:`~ocula.BoxPrediction` and
:class:`~ocula.MaskPrediction` objects, mapping indices back to label names::

    outputs = model(images)                                   # model.eval()
    preds = to_predictions(outputs, refs, ds_torch.labels)
    ocula_model.create_run("frcnn-v1", dataset, preds).commit()

:func:`run_model` does the whole loop (batches, ``eval()``, ``no_grad``, progress bar,
upload) over an :class:`~ocula.integrations.pytorch.OculaTorchDataset`. The module does
not import torchvision: any model that speaks its output format works.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ocula.core.masks import rle_encode
from ocula.core.types import BoxPrediction, MaskPrediction

if TYPE_CHECKING:
    from ocula.client.dataset import Dataset, Slice
    from ocula.client.model import Model, ModelRun
    from ocula.integrations.pytorch import OculaTorchDataset

MASK_THRESHOLD = 0.5


def _array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, on any device
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _names(label_map: Sequence[str] | Mapping[str, int] | Mapping[int, str]
           ) -> Callable[[int], str]:
    """Index → label name, from ``ds.labels`` (a list), ``ds.label_map`` (name → index)
    or an index → name mapping."""
    if isinstance(label_map, Mapping):
        pairs = list(label_map.items())
        by_index = ({int(i): str(n) for n, i in pairs} if pairs and isinstance(pairs[0][0], str)
                    else {int(i): str(n) for i, n in pairs})
    else:
        by_index = dict(enumerate(label_map))

    def name(index: int) -> str:
        try:
            return by_index[index]
        except KeyError:
            raise ValueError(f"label index {index} is not in the label map") from None
    return name


def to_predictions(outputs: Sequence[Mapping[str, Any]], reference_ids: Sequence[str],
                   label_map: Sequence[str] | Mapping[str, int] | Mapping[int, str], *,
                   score_threshold: float = 0.0, mask_threshold: float = MASK_THRESHOLD,
                   with_masks: bool = True) -> list[BoxPrediction | MaskPrediction]:
    """Ocula predictions from torchvision detection outputs, one dict per image.

    Args:
        outputs: per image, ``boxes`` (``[N, 4]`` xyxy), ``labels`` (indices),
            ``scores`` and optionally ``masks`` (``[N, 1, H, W]`` or ``[N, H, W]``,
            probabilities or booleans): tensors or numpy arrays.
        reference_ids: the item of each output, in the same order
            (``target["reference_id"]`` of the samples).
        label_map: the index ↔ name map the model was trained with:
            ``torch_ds.labels`` (index 0 = background), ``torch_ds.label_map`` or
            ``{index: name}``.
        score_threshold: predictions scoring below it are dropped (commit scores
            every kept prediction, so a low threshold keeps the PR curve whole).
        mask_threshold: a mask pixel is on where its probability is at least this.
        with_masks: also make a :class:`MaskPrediction` per masked detection, sharing
            the box's id base (``"<id>"`` and ``"<id>/mask"``: one object).

    Returns:
        Predictions for :meth:`ocula.client.model.Model.create_run` or
        :meth:`ocula.client.model.ModelRun.predict`. Background (index 0) detections
        are dropped.
    """
    if len(outputs) != len(reference_ids):
        raise ValueError(f"{len(outputs)} outputs for {len(reference_ids)} reference ids")
    name = _names(label_map)
    out: list[BoxPrediction | MaskPrediction] = []
    for output, ref in zip(outputs, reference_ids, strict=True):
        boxes = _array(output["boxes"]).reshape(-1, 4).astype(np.float64)
        labels = _array(output["labels"]).reshape(-1).astype(np.int64)
        scores = (_array(output["scores"]).reshape(-1).astype(np.float64)
                  if "scores" in output else np.ones(len(boxes)))
        masks = _array(output["masks"]) if with_masks and "masks" in output else None
        if masks is not None and masks.ndim == 4:
            masks = masks[:, 0]
        for i in np.flatnonzero((scores >= score_threshold) & (labels != 0)):
            x1, y1, x2, y2 = (float(v) for v in boxes[i])
            label, score = name(int(labels[i])), float(scores[i])
            pred_id = f"{ref}/det-{int(i)}"
            out.append(BoxPrediction(label, x1, y1, x2 - x1, y2 - y1, reference_id=ref,
                                     annotation_id=pred_id, confidence=score))
            if masks is not None:
                binary = masks[i] >= mask_threshold if masks.dtype != bool else masks[i]
                out.append(MaskPrediction(label, rle_encode(np.asarray(binary, bool)),
                                          reference_id=ref, annotation_id=f"{pred_id}/mask",
                                          confidence=score))
    return out


def predict(model: Any, torch_dataset: OculaTorchDataset, *, batch_size: int = 4,
            device: Any = "cpu", score_threshold: float = 0.0, with_masks: bool = True,
            progress: bool | None = None, num_workers: int = 0
            ) -> list[BoxPrediction | MaskPrediction]:
    """Run ``model`` over every sample of ``torch_dataset`` in batches (``eval()``,
    ``torch.no_grad()``, a progress bar) and return its predictions."""
    from ocula.client.progress import progress_bar
    from ocula.integrations import require_torch
    from ocula.integrations.pytorch import collate_fn

    torch = require_torch()
    if progress is None:  # inference is slow per item: a bar whenever there is a terminal
        progress = sys.stderr.isatty()
    loader = torch.utils.data.DataLoader(torch_dataset, batch_size=batch_size,
                                         num_workers=num_workers, collate_fn=collate_fn)
    was_training = model.training
    model.eval()
    preds: list[BoxPrediction | MaskPrediction] = []
    try:
        with torch.no_grad(), progress_bar("Predicting", len(torch_dataset),
                                           progress) as advance:
            for images, targets in loader:
                outputs = model([im.to(device) for im in images])
                preds += to_predictions(outputs, [t["reference_id"] for t in targets],
                                        torch_dataset.labels, score_threshold=score_threshold,
                                        with_masks=with_masks)
                advance(len(images))
    finally:
        model.train(was_training)
    return preds


def run_model(model: Any, data: Dataset | Slice | OculaTorchDataset, ocula_model: Model,
              name: str, *, labels: Sequence[str] | None = None, query: str | None = None,
              batch_size: int = 4, device: Any = "cpu", score_threshold: float = 0.0,
              with_masks: bool = True, metadata: dict[str, Any] | None = None,
              commit: bool = True, progress: bool | None = None, num_workers: int = 0
              ) -> ModelRun:
    """Run a torchvision-style detector over ``data``, upload its predictions as the
    run ``name`` of ``ocula_model`` and (by default) commit it; returns the run::

        run_model(model, slices["test_set"], frcnn, "frcnn-v1", labels=train.labels)

    Args:
        data: a :class:`~ocula.client.dataset.Dataset`, a
            :class:`~ocula.client.dataset.Slice` (optionally narrowed by the item
            ``query``), or an :class:`~ocula.integrations.pytorch.OculaTorchDataset`
            (exactly its samples).
        labels: index → name as the model was trained (``train.labels``, background
            first); default: the dataset's own map, as ``to_torch`` makes it.
        batch_size, device, num_workers: how the images are fed (the model must
            already be on ``device``).
        score_threshold, with_masks: as :func:`to_predictions`.
        metadata: stored on the run.
        commit: match the predictions against the ground truth now.
        progress: draw a progress bar (default: when stderr is a terminal).
    """
    from ocula.integrations.pytorch import BACKGROUND, OculaTorchDataset

    wanted = None
    if labels is not None:
        if not labels or labels[0] != BACKGROUND:
            raise ValueError(f"labels start with {BACKGROUND!r} (index 0), as "
                             "OculaTorchDataset.labels do")
        wanted = list(labels[1:])
    if isinstance(data, OculaTorchDataset):
        if query is not None:
            raise ValueError("a torch dataset holds its samples already: give no query")
        if wanted is not None and data.labels[1:] != wanted:
            raise ValueError("the torch dataset's labels differ from labels")
        samples = data
    else:
        samples = data.to_torch(query=query, labels=wanted)
    preds = predict(model, samples, batch_size=batch_size, device=device,
                    score_threshold=score_threshold, with_masks=with_masks,
                    progress=progress, num_workers=num_workers)
    run = ocula_model.create_run(name, samples.dataset_id, preds, metadata=metadata,
                                 progress=progress)
    if commit:
        run.commit()
    return run


__all__ = ["MASK_THRESHOLD", "predict", "run_model", "to_predictions"]
