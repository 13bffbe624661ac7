"""Scale's "Getting Started with Nucleus" tutorial, rewritten for Ocula, end to end.

The tutorial (``/work/shared/reference/nucleus-tutorial.md``, summarised in the README)
loads a pedestrian dataset, splits it into ``training_set`` and ``test_set`` slices,
fine-tunes a torchvision Faster R-CNN, uploads its predictions as a model run, commits
the run, looks at the worst false positives, corrects labels and scores the run against
the original and the corrected labels. Here every conversion is one Ocula call:

====================================  ==============================================
Nucleus tutorial                      Ocula
====================================  ==============================================
folders and masks into items, boxes   ``build_demo`` (60 labelled street frames)
random split into two slices          ``ds.split({...}, seed=1)``
a PyTorch dataset of the slice        ``slices["training_set"].to_torch()``
outputs into ``BoxPrediction`` s      ``run_model(...)`` (``to_predictions`` inside)
commit, metrics, worst FPs            ``run.commit()``, ``run.metrics``, ``run.failures``
original vs corrected labels          ``run.version_table(["original", None])``
====================================  ==============================================

Run it (needs ``torchvision``; nothing is downloaded: the detector starts from random
weights and trains briefly on the CPU, so expect low numbers)::

    pip install "ocula[torch]" torchvision
    python examples/tutorial.py [--home DIR] [--iterations 60] [--seed 1]

Each step is a function, so the tests run the same steps on a tiny stand-in model
(``tests/integrations/test_tutorial_example.py``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ocula
from ocula.demo.build import build_demo
from ocula.integrations.torchvision import run_model

DATASET = "pedestrians"
SPLIT = {"training_set": 0.7, "test_set": 0.3}


def log(message: str) -> None:
    print(message, flush=True)


def load(client: ocula.Client) -> Any:
    """Step 1, upload: the demo's 60 frames of a street video with their person boxes
    (the tutorial's PennFudan cannot be downloaded here)."""
    summary = build_demo(client, dataset_name=DATASET, detectors=(), progress=False)
    ds = client.get_dataset(summary["dataset_id"])
    info = ds.info()
    log(f"loaded {info['length']} items, {info['annotation_count']} boxes, "
        f"labels {info['labels']}")
    return ds


def split(ds: Any, seed: int) -> dict[str, Any]:
    """Step 3, the tutorial's random train / test split, as two slices."""
    slices = ds.split(SPLIT, seed=seed)
    log("split: " + ", ".join(f"{name} {len(s.reference_ids)} items"
                              for name, s in slices.items()))
    return slices


def torchvision_detector(num_classes: int) -> Any:
    """A small torchvision detector, initialised locally (no weights downloaded)."""
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn

    return fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=num_classes,
        min_size=320, max_size=480)


def train(model: Any, train_ds: Any, *, iterations: int, batch_size: int = 2,
          lr: float = 0.01, seed: int = 1, num_workers: int = 2) -> list[float]:
    """Step 4, fine-tune for ``iterations`` batches (random horizontal flips); returns
    the loss of each batch."""
    import torch

    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(train_ds, batch_size=batch_size, shuffle=True,
                                         num_workers=num_workers,
                                         collate_fn=train_ds.collate_fn,
                                         persistent_workers=num_workers > 0)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-4)
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1,
                                               total_iters=max(1, iterations // 5))
    model.train()
    losses: list[float] = []
    while len(losses) < iterations:
        for images, targets in loader:
            images, targets = _flip(images, targets)
            loss_parts = model(list(images), [{k: t[k] for k in ("boxes", "labels")}
                                              for t in targets])
            loss = sum(loss_parts.values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            warmup.step()
            losses.append(float(loss.detach()))
            if len(losses) % 10 == 0 or len(losses) == 1:
                log(f"  iteration {len(losses):4d}  loss {losses[-1]:.3f}")
            if len(losses) >= iterations:
                break
    return losses


def _flip(images: Sequence[Any], targets: Sequence[dict[str, Any]]
          ) -> tuple[list[Any], list[dict[str, Any]]]:
    import torch

    out_i, out_t = [], []
    for image, target in zip(images, targets, strict=True):
        if torch.rand(()) < 0.5:
            width = image.shape[-1]
            boxes = target["boxes"].clone()
            boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
            image, target = image.flip(-1), {**target, "boxes": boxes}
        out_i.append(image)
        out_t.append(target)
    return out_i, out_t


def upload(client: ocula.Client, test_set: Any, model: Any, labels: Sequence[str]) -> Any:
    """Step 4, the model's predictions on the test slice as a committed run."""
    ocula_model = client.add_model("Pytorch Faster R-CNN", reference_id="faster_r_cnn")
    run = run_model(model, test_set, ocula_model, "faster_r_cnn", labels=labels,
                    batch_size=4, progress=False)
    info = run.info()
    log(f"run {info['name']}: {len(run.predictions())} predictions, committed")
    return run


def report(run: Any, *, worst: int = 5) -> dict[str, Any]:
    """Step 5, the numbers and the worst false positives (most confident first)."""
    metrics = run.metrics(slice="test_set")
    stats, point = metrics["stats"], metrics["operating_point"]
    log("test_set: " + "  ".join(f"{k} {stats[k]:.3f}" for k in ("AP", "AP50", "AP75",
                                                                  "AR100")))
    log(f"at confidence 0.5: precision {point['precision']:.3f}  recall "
        f"{point['recall']:.3f}  TP {point['tp']}  FP {point['fp']}  FN {point['fn']}")
    summary = run.failure_summary(slice="test_set")
    log(f"false positives by cause {summary['false_positives']}, "
        f"misses by size {summary['false_negatives']}")
    fps = run.failures("fp", limit=worst)
    log(f"worst {len(fps)} false positives:")
    for fp in fps:
        g = fp["geometry"]
        log(f"  {fp['reference_id']}  {fp['label']}  confidence {fp['confidence']:.3f}  "
            f"box ({g['x']:.0f}, {g['y']:.0f}, {g['width']:.0f}x{g['height']:.0f})  "
            f"IoU {fp['iou'] if fp['iou'] is None else round(fp['iou'], 2)}")
    return {"metrics": metrics, "false_positives": fps}


def correct_labels(ds: Any) -> list[str]:
    """Step 7, fix labels. The demo's reviewer marked six boxes doubtful (a head behind
    a parked car, a child hidden by an adult, …): people no detector can be asked to
    find. Mark them crowd (COCO's "ignore": neither a miss nor a hit) in a new label
    version, after naming the original labels. Returns the corrected ids."""
    ds.tag_version("original")
    fixed = [a for a in ds.annotations() if (a.metadata or {}).get("doubtful")]
    for a in fixed:
        a.iscrowd = True
    ds.annotate(fixed, update=True, message="doubtful people: ignore (crowd)")
    log(f"corrected {len(fixed)} labels: " + ", ".join(
        f"{a.reference_id}/{a.annotation_id}" for a in fixed))
    return [a.annotation_id for a in fixed]


def compare_versions(run: Any) -> list[dict[str, Any]]:
    """Step 7, the run scored on the original and on the corrected labels."""
    run.commit()  # the match now follows the corrected labels
    rows = run.version_table(["original", None], slice="test_set")
    log(f"{'labels':<10} {'AP':>6} {'AP50':>6} {'AR100':>6} {'P':>6} {'R':>6} "
        f"{'TP':>4} {'FP':>4} {'FN':>4}")
    for row in rows:
        name = row["version"] or "corrected"
        log(f"{name:<10} {row['AP']:6.3f} {row['AP50']:6.3f} {row['AR100']:6.3f} "
            f"{row['precision']:6.3f} {row['recall']:6.3f} {row['tp']:4d} {row['fp']:4d} "
            f"{row['fn']:4d}")
    return rows


def main(argv: Sequence[str] | None = None,
         make_model: Callable[[int], Any] = torchvision_detector) -> dict[str, Any]:
    """The whole tutorial; returns what each step produced."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="Ocula home (default: a new temporary folder)")
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    args = parser.parse_args(argv)
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="ocula-tutorial-"))
    started = time.perf_counter()
    with ocula.Client(home) as client:
        ds = load(client)
        slices = split(ds, args.seed)
        train_ds = slices["training_set"].to_torch()
        log(f"to_torch: {train_ds}, labels {train_ds.labels}")
        import torch

        torch.manual_seed(args.seed)
        model = make_model(len(train_ds.labels))
        t0 = time.perf_counter()
        losses = train(model, train_ds, iterations=args.iterations,
                       batch_size=args.batch_size, seed=args.seed, num_workers=args.workers)
        log(f"trained {len(losses)} iterations in {time.perf_counter() - t0:.0f} s "
            f"(loss {losses[0]:.3f} -> {losses[-1]:.3f})")
        run = upload(client, slices["test_set"], model, train_ds.labels)
        found = report(run)
        corrected = correct_labels(ds)
        table = compare_versions(run)
    log(f"done in {time.perf_counter() - started:.0f} s (home: {home})")
    return {"losses": losses, "report": found, "corrected": corrected, "versions": table}


if __name__ == "__main__":
    main()
