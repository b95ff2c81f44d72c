"""The demo model's localisation table in docs/trust.md, made by the documented command: 150
fresh phantoms (seed 888888, the demo model's input size) written as PNGs with a labels file and
their masks turned into NIH-layout boxes, then

    gradcam-viewer evaluate --labels labels.csv --boxes boxes.csv PHANTOMS --out OUT

and the same on the real NIH PNGs beside the checkout (`../shared/data/cxr-png`, when there:
its labels file and NIH's box file).
Prints the Markdown table and the NIH AUROC range.
Run: .venv/bin/python docs/make_evaluation_table.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from gradcam_viewer.cli import main as gradcam_viewer
from gradcam_viewer.demo.phantoms import LABELS, make_phantoms
from gradcam_viewer.models import load_model_bundle

SEED, N = 888888, 150
NIH = Path(__file__).resolve().parents[2] / "shared" / "data" / "cxr-png"  # as tests/ find it


def write_phantoms(folder: Path, size: int) -> tuple[Path, Path, Path]:
    ph = make_phantoms(N, seed=SEED, size=size)
    images = folder / "phantoms"
    images.mkdir(parents=True)
    labels = [["Image", *LABELS]]
    boxes = [["Image Index", "Finding Label", "Bbox [x", "y", "w", "h]"]]
    for i in range(N):
        name = f"p{i:03d}.png"
        Image.fromarray(np.rint(ph.images[i] * 255).astype(np.uint8)).save(images / name)
        labels.append([name, *map(str, ph.labels[i])])
        for k, label in enumerate(LABELS):
            if ph.labels[i, k] and ph.masks[i, k].any():
                ys, xs = np.nonzero(ph.masks[i, k])
                boxes.append([name, label, str(xs.min()), str(ys.min()),
                              str(xs.max() - xs.min() + 1), str(ys.max() - ys.min() + 1)])
    paths = folder / "labels.csv", folder / "boxes.csv"
    for path, rows in zip(paths, (labels, boxes), strict=True):
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows(rows)
    return images, *paths


def evaluate(argv: list[str]) -> list[dict[str, str]]:
    print("$ gradcam-viewer " + shlex.join(argv), file=sys.stderr)
    code = gradcam_viewer(argv)
    if code != 0:
        raise SystemExit(f"evaluate exited {code}")
    out = Path(argv[argv.index("--out") + 1])
    with open(out / "evaluation.csv", newline="") as f:
        return list(csv.DictReader(f))


def table(rows: list[dict[str, str]]) -> str:
    lines = ["| finding | AUROC [95% CI] | boxes | pointing | energy | "
             "IoBB acc. 0.1 / 0.25 / 0.5 / 0.75 / 0.9 | mean IoU |",
             "|---|---|---|---|---|---|---|"]
    def f(value: str, digits: int = 3) -> str:
        return f"{float(value):.{digits}f}" if value else "\u2013"

    for r in rows:
        iobb = " / ".join(f(r[f"iobb_acc_{t}"], 2) for t in ("0.1", "0.25", "0.5", "0.75", "0.9"))
        lines.append(f"| {r['label']} | {f(r['auroc'])} [{f(r['auroc_ci_low'])}, "
                     f"{f(r['auroc_ci_high'])}] | {r['boxes']} | {f(r['pointing_game'])} | "
                     f"{f(r['energy_pointing_game'])} | {iobb} | {f(r['mean_iou'])} |")
    return "\n".join(lines)


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None,
                        help="write the phantoms and the reports here (default: a temporary "
                             "folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="evaluation-table-") as tmp:
        folder = args.keep or Path(tmp)
        size = load_model_bundle().input_size[0]
        images, labels, boxes = write_phantoms(folder, size)
        rows = evaluate(["evaluate", "--labels", str(labels), "--boxes", str(boxes),
                         str(images), "--out", str(folder / "evaluation")])
        print(f"Demo model on {N} fresh phantoms (seed {SEED}; {size}x{size}; masks turned into "
              "their bounding boxes):\n")
        print(table(rows))
        if NIH.is_dir():
            nih = evaluate(["evaluate", "--labels", str(NIH / "labels.csv"), "--boxes",
                            str(NIH / "BBox_List_2017.csv"), str(NIH), "--out",
                            str(folder / "nih")])
            aurocs = [float(r["auroc"]) for r in nih if r["auroc"]]
            print(f"\nNIH PNGs ({NIH}): AUROC {min(aurocs):.2f}-{max(aurocs):.2f} over "
                  f"{len(aurocs)} labels")
            print(table(nih))


if __name__ == "__main__":
    run()
