#!/usr/bin/env python
"""Tools used to build Ocula's demo dataset (frames of OpenCV's ``vtest.avi``) and its labels.

The shipped ground truth, ``src/ocula/demo/data/annotations.json``, was made in three steps
(see ``src/ocula/demo/data/LABELS.md``):

1. ``extract``  — sample 60 frames evenly over the 795-frame video, save them as JPEG.
2. ``propose``  — machine proposals per frame: the SSDLite pedestrian model run on the
   whole frame and on overlapping, upscaled square tiles (so small people are seen at a
   useful size), plus OpenCV's HOG people detector on the frame enlarged 2×; merged with
   non-maximum suppression. Written to a working JSON file.
3. Review by eye: ``render`` draws the working boxes with their index numbers (and ``crop``
   zooms into a region) so a person can delete false boxes, add missed people and tighten
   sloppy boxes by editing the working file; ``export`` then writes COCO JSON.

Usage (from the repository root)::

    python scripts/label_demo.py extract
    python scripts/label_demo.py propose --out /tmp/ocula-labels/work.json
    python scripts/label_demo.py render --work /tmp/ocula-labels/work.json --frames 0 13
    python scripts/label_demo.py crop vtest_0000.jpg 150 100 400 300 --zoom 3
    python scripts/label_demo.py export --work /tmp/ocula-labels/work.json

Working file format: ``{"<file_name>": {"boxes": [[x, y, w, h, iscrowd, score, source,
note], ...], "reviewed": bool}}`` with pixel ``x, y, w, h`` in the 768×576 frame.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from ocula.detectors.base import Detection, box_iou  # noqa: E402

DATA = REPO / "src" / "ocula" / "demo" / "data"
IMAGES = DATA / "images"
VIDEO = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
N_FRAMES = 60
JPEG_QUALITY = 88
FPS = 10.0  # vtest.avi's frame rate


def frame_indices(total: int, count: int = N_FRAMES) -> list[int]:
    """``count`` frame numbers spread evenly over ``0 … total-1`` (both ends included)."""
    return [int(round(v)) for v in np.linspace(0, total - 1, count)]


def file_name(frame: int) -> str:
    """Image file name for a frame number."""
    return f"vtest_{frame:04d}.jpg"


# ----------------------------------------------------------------------------- extract


def cmd_extract(args: argparse.Namespace) -> None:
    import gzip
    import shutil
    import tempfile

    import cv2

    video = Path(args.video)
    if not video.exists() and Path(str(video) + ".gz").exists():
        tmp = Path(tempfile.mkdtemp()) / video.name
        with gzip.open(str(video) + ".gz", "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        video = tmp
    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise SystemExit(f"could not read {video}")
    IMAGES.mkdir(parents=True, exist_ok=True)
    for idx in frame_indices(len(frames), args.count):
        rgb = cv2.cvtColor(frames[idx], cv2.COLOR_BGR2RGB)
        out = IMAGES / file_name(idx)
        Image.fromarray(rgb).save(out, quality=JPEG_QUALITY, optimize=True)
    print(f"{len(frames)} frames read, {args.count} written to {IMAGES}")


# ----------------------------------------------------------------------------- propose


def _tiles(width: int, height: int, size: int, step: int) -> list[tuple[int, int, int, int]]:
    xs = list(range(0, max(width - size, 0) + 1, step))
    ys = list(range(0, max(height - size, 0) + 1, step))
    if xs[-1] + size < width:
        xs.append(width - size)
    if ys[-1] + size < height:
        ys.append(height - size)
    return [(x, y, min(size, width), min(size, height)) for y in ys for x in xs]


def ssd_tiled(image: np.ndarray, detector: Any, min_score: float) -> list[tuple[Detection, str]]:
    """SSDLite on the full frame and on overlapping square tiles (192 px and 288 px).

    Detections touching a tile edge that is not an image edge are dropped (cut people).
    """
    height, width = image.shape[:2]
    out: list[tuple[Detection, str]] = []
    for d in detector.detect(image):
        if d.confidence >= min_score:
            out.append((d, "ssd-full"))
    for size, step in ((288, 144), (192, 96)):
        for tx, ty, tw, th in _tiles(width, height, size, step):
            tile = image[ty : ty + th, tx : tx + tw]
            for d in detector.detect(tile):
                if d.confidence < min_score:
                    continue
                margin = 2
                cut = (
                    (d.x <= margin and tx > 0)
                    or (d.y <= margin and ty > 0)
                    or (d.x + d.width >= tw - margin and tx + tw < width)
                    or (d.y + d.height >= th - margin and ty + th < height)
                )
                if cut:
                    continue
                moved = Detection(d.x + tx, d.y + ty, d.width, d.height, d.label, d.confidence)
                out.append((moved, f"ssd-tile{size}"))
    return out


def merge(cands: list[tuple[Detection, str]], iou: float) -> list[tuple[Detection, str, int]]:
    """Greedy NMS; returns kept boxes with their source and how many boxes they absorbed."""
    cands = sorted(cands, key=lambda c: c[0].confidence, reverse=True)
    kept: list[list[Any]] = []
    for det, src in cands:
        box = (det.x, det.y, det.width, det.height)
        for k in kept:
            kd = k[0]
            if box_iou(box, (kd.x, kd.y, kd.width, kd.height)) >= iou:
                k[2] += 1
                break
        else:
            kept.append([det, src, 1])
    return [(k[0], k[1], k[2]) for k in kept]


def cmd_propose(args: argparse.Namespace) -> None:
    from ocula.detectors.hog import HogPeopleDetector
    from ocula.detectors.ssdlite import SsdLitePeopleDetector

    ssd = SsdLitePeopleDetector(score_threshold=0.05)
    hog = HogPeopleDetector(upscale=2.0, hit_threshold=0.0, scale=1.05)
    work: dict[str, Any] = {}
    files = sorted(IMAGES.glob("vtest_*.jpg"))
    for path in files:
        image = np.asarray(Image.open(path).convert("RGB"))
        cands = ssd_tiled(image, ssd, args.min_score)
        cands += [(d, "hog") for d in hog.detect(image) if d.confidence >= args.min_hog]
        merged = merge(cands, args.iou)
        boxes = [
            [round(d.x, 1), round(d.y, 1), round(d.width, 1), round(d.height, 1), 0,
             round(d.confidence, 3), f"{src}x{n}", ""]
            for d, src, n in merged
        ]
        work[path.name] = {"boxes": boxes, "reviewed": False}
        print(path.name, len(boxes))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(work, indent=1))


# ----------------------------------------------------------------------------- refine


def background(video: Path, step: int = 3) -> np.ndarray:
    """Median of every ``step``-th frame of the (static-camera) video, RGB."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    frames, i = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i % step == 0:
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        i += 1
    cap.release()
    return np.median(np.stack(frames), axis=0).astype(np.uint8)


def foreground(image: np.ndarray, bg: np.ndarray, threshold: int = 35) -> np.ndarray:
    """Binary foreground mask: max channel difference to the background, cleaned up."""
    import cv2

    diff = np.abs(image.astype(np.int16) - bg.astype(np.int16)).max(axis=2)
    mask = (diff > threshold).astype(np.uint8) * 255
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))


def cmd_refine(args: argparse.Namespace) -> None:
    """Tighten isolated boxes to the foreground, and add foreground blobs nobody boxed.

    A box is tightened only if its enlarged region touches no other box (in groups the
    foreground of neighbours would leak in) and the result keeps IoU >= 0.5 with it.
    Uncovered foreground blobs (area >= ``min_blob`` px) become score-0 ``fg`` proposals.
    """
    import cv2

    work = json.loads(Path(args.work).read_text())
    bg = background(Path(args.video))
    Image.fromarray(bg).save(Path(args.work).with_name("background.png"))
    for name, entry in sorted(work.items()):
        image = np.asarray(Image.open(IMAGES / name).convert("RGB"))
        mask = foreground(image, bg) > 0
        height, width = mask.shape
        boxes = entry["boxes"]
        n_refined = 0
        for i, b in enumerate(boxes):
            x, y, w, h = b[:4]
            ex0, ey0 = int(max(0, x - 0.12 * w)), int(max(0, y - 0.08 * h))
            ex1, ey1 = int(min(width, x + 1.12 * w)), int(min(height, y + 1.08 * h))
            region = (ex0, ey0, ex1 - ex0, ey1 - ey0)
            if any(box_iou(region, o[:4]) > 0 for j, o in enumerate(boxes) if j != i):
                continue
            sub = mask[ey0:ey1, ex0:ex1]
            if sub.mean() < 0.12:
                continue
            rows, cols = np.nonzero(sub.sum(axis=1) >= 2)[0], np.nonzero(sub.sum(axis=0) >= 2)[0]
            if not len(rows) or not len(cols):
                continue
            new = [ex0 + cols[0], ey0 + rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1]
            if box_iou(new, b[:4]) >= 0.5:
                b[:4] = [float(v) for v in new]
                b[6] = b[6] + "+fg"
                n_refined += 1
        n_blobs = 0
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
        for k in range(1, count):
            bx, by, bw, bh, area = (int(v) for v in stats[k])
            if area < args.min_blob:
                continue
            blob = (bx, by, bw, bh)
            covered = 0.0
            for o in boxes:
                ix = max(0.0, min(bx + bw, o[0] + o[2]) - max(bx, o[0]))
                iy = max(0.0, min(by + bh, o[1] + o[3]) - max(by, o[1]))
                covered = max(covered, ix * iy / (bw * bh))
            if covered < 0.3:
                boxes.append([*map(float, blob), 0, 0.0, "fg", ""])
                n_blobs += 1
        print(name, f"refined {n_refined}/{len(boxes) - n_blobs}, new blobs {n_blobs}")
    Path(args.work).write_text(json.dumps(work, indent=1))


# ----------------------------------------------------------------------------- review aids


def _font(size: int) -> Any:
    for cand in ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",):
        if Path(cand).exists():
            return ImageFont.truetype(cand, size)
    return ImageFont.load_default()


def render(name: str, boxes: list[list[Any]], out: Path, zoom: float = 1.0,
           region: tuple[int, int, int, int] | None = None) -> None:
    """Draw numbered boxes (crowd boxes dashed-yellow, others colour by score) onto a copy."""
    image = Image.open(IMAGES / name).convert("RGB")
    ox, oy = 0, 0
    if region is not None:
        ox, oy, x1, y1 = region
        image = image.crop(region)
    image = image.resize((int(image.width * zoom), int(image.height * zoom)), Image.LANCZOS)
    draw = ImageDraw.Draw(image)
    font = _font(max(10, int(9 * zoom)))
    for i, b in enumerate(boxes):
        x, y, w, h = ((b[0] - ox) * zoom, (b[1] - oy) * zoom, b[2] * zoom, b[3] * zoom)
        crowd = bool(b[4])
        score = float(b[5]) if len(b) > 5 and b[5] is not None else 1.0
        colour = (255, 255, 0) if crowd else (0, 255, 0) if score >= 0.5 else (255, 64, 64)
        draw.rectangle([x, y, x + w, y + h], outline=colour, width=1)
        draw.text((x + 1, y - 11 * zoom / 1.2 if y > 12 else y + h), str(i), fill=colour,
                  font=font)
    image.save(out)


def cmd_render(args: argparse.Namespace) -> None:
    work = json.loads(Path(args.work).read_text())
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    names = [file_name(int(f)) for f in args.frames] if args.frames else sorted(work)
    for name in names:
        region = tuple(args.region) if args.region else None
        out = outdir / name.replace(".jpg", ".png")
        render(name, work[name]["boxes"], out, zoom=args.zoom, region=region)
        print(out)


def cmd_crop(args: argparse.Namespace) -> None:
    image = Image.open(IMAGES / args.name).convert("RGB")
    crop = image.crop((args.x0, args.y0, args.x1, args.y1))
    crop = crop.resize((crop.width * args.zoom, crop.height * args.zoom), Image.LANCZOS)
    draw = ImageDraw.Draw(crop)
    # A grid every 10 px of the original frame, labelled every 50 px, to read coordinates.
    font = _font(10)
    for gx in range((args.x0 // 10 + 1) * 10, args.x1, 10):
        px = (gx - args.x0) * args.zoom
        draw.line([(px, 0), (px, 4 if gx % 50 else 10)], fill=(255, 0, 255))
        if gx % 50 == 0:
            draw.text((px + 1, 10), str(gx), fill=(255, 0, 255), font=font)
    for gy in range((args.y0 // 10 + 1) * 10, args.y1, 10):
        py = (gy - args.y0) * args.zoom
        draw.line([(0, py), (4 if gy % 50 else 10, py)], fill=(255, 0, 255))
        if gy % 50 == 0:
            draw.text((12, py - 5), str(gy), fill=(255, 0, 255), font=font)
    out = Path(args.out or f"/tmp/ocula-labels/crop_{args.name[:-4]}.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    crop.save(out)
    print(out)


# ----------------------------------------------------------------------------- export


def cmd_export(args: argparse.Namespace) -> None:
    work = json.loads(Path(args.work).read_text())
    images, annotations = [], []
    ann_id = 1
    for image_id, name in enumerate(sorted(work), start=1):
        with Image.open(IMAGES / name) as im:
            width, height = im.size
        frame = int(name[6:10])
        images.append({
            "id": image_id, "file_name": name, "width": width, "height": height,
            "frame_index": frame, "time_s": round(frame / FPS, 1),
            "reviewed": bool(work[name].get("reviewed")),
        })
        for b in sorted(work[name]["boxes"], key=lambda b: (b[0], b[1])):
            x0, y0 = max(0.0, float(b[0])), max(0.0, float(b[1]))
            x1 = min(float(width), float(b[0]) + float(b[2]))
            y1 = min(float(height), float(b[1]) + float(b[3]))
            w, h = round(x1 - x0, 1), round(y1 - y0, 1)
            ann: dict[str, Any] = {
                "id": ann_id, "image_id": image_id, "category_id": 1,
                "bbox": [round(x0, 1), round(y0, 1), w, h], "area": round(w * h, 1),
                "iscrowd": int(bool(b[4])),
            }
            note = str(b[7]).strip() if len(b) > 7 and b[7] else ""
            if "DOUBTFUL" in note:
                ann["doubtful"] = True
                note = note.replace("DOUBTFUL", "").strip(" ,;")
            if note:
                ann["note"] = note
            annotations.append(ann)
            ann_id += 1
    coco = {
        "info": {
            "description": "Ocula demo: 60 frames of OpenCV's vtest.avi, people labelled by "
                           "the Ocula project (see LABELS.md)",
            "version": "1.0",
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "supercategory": "person"}],
    }
    out = Path(args.out)
    out.write_text(json.dumps(coco, indent=1) + "\n")
    print(f"{len(images)} images, {len(annotations)} annotations -> {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("extract", help="sample frames from vtest.avi")
    p.add_argument("--video", default=str(VIDEO))
    p.add_argument("--count", type=int, default=N_FRAMES)
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("propose", help="machine proposals into a working file")
    p.add_argument("--out", default="/tmp/ocula-labels/work.json")
    p.add_argument("--min-score", type=float, default=0.3, help="SSDLite score to keep")
    p.add_argument("--min-hog", type=float, default=0.5, help="HOG confidence to keep")
    p.add_argument("--iou", type=float, default=0.4, help="NMS IoU for merging")
    p.set_defaults(func=cmd_propose)

    p = sub.add_parser("refine", help="tighten isolated boxes to the foreground mask")
    p.add_argument("--work", default="/tmp/ocula-labels/work.json")
    p.add_argument("--video", default=str(VIDEO))
    p.add_argument("--min-blob", type=int, default=150)
    p.set_defaults(func=cmd_refine)

    p = sub.add_parser("render", help="draw numbered working boxes onto copies")
    p.add_argument("--work", default="/tmp/ocula-labels/work.json")
    p.add_argument("--outdir", default="/tmp/ocula-labels/render")
    p.add_argument("--frames", nargs="*", help="frame numbers (default: all)")
    p.add_argument("--zoom", type=float, default=1.0)
    p.add_argument("--region", type=int, nargs=4, metavar=("X0", "Y0", "X1", "Y1"))
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("crop", help="zoom into a region with a coordinate ruler")
    p.add_argument("name")
    p.add_argument("x0", type=int)
    p.add_argument("y0", type=int)
    p.add_argument("x1", type=int)
    p.add_argument("y1", type=int)
    p.add_argument("--zoom", type=int, default=3)
    p.add_argument("--out")
    p.set_defaults(func=cmd_crop)

    p = sub.add_parser("export", help="working file -> COCO annotations.json")
    p.add_argument("--work", default="/tmp/ocula-labels/work.json")
    p.add_argument("--out", default=str(DATA / "annotations.json"))
    p.set_defaults(func=cmd_export)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
