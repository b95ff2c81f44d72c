"""`gradcam-viewer explain`: heatmaps and predictions for many images, without a window."""

from __future__ import annotations

import logging
import re
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from gradcam_viewer.cam.methods import METHOD_TITLES

log = logging.getLogger(__name__)


def add_arguments(parser: Any) -> None:
    parser.add_argument("images", nargs="+", type=Path, help="PNG, JPEG, TIFF, BMP or DICOM files")
    parser.add_argument("--model", type=Path, default=None,
                        help="a .keras or .h5 model (default: the bundled demo model)")
    parser.add_argument("--chexnet-weights", type=Path, default=None,
                        help="weights for the CheXNet DenseNet121 preset (.h5 or .weights.h5)")
    parser.add_argument("--out", type=Path, default=Path("gradcam-out"), help="output folder")
    parser.add_argument("--method", default="gradcam",
                        choices=list(METHOD_TITLES))
    parser.add_argument("--labels", default="all",
                        help="comma-separated label names to draw overlays for (default: all)")
    parser.add_argument("--layer", default=None, help="target layer (default: manifest or auto)")
    parser.add_argument("--frame", type=int, default=1, help="frame of multi-frame files (1-based)")
    parser.add_argument("--opacity", type=float, default=0.45)
    parser.add_argument("--colormap", default="inferno")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")


class Progress:
    """A one-line progress bar on a terminal; silent when stderr is not one."""

    def __init__(self, total: int, stream: TextIO = sys.stderr):
        self.total, self.stream, self.done = total, stream, 0
        self.live = hasattr(stream, "isatty") and stream.isatty()

    def step(self, name: str) -> None:
        self.done += 1
        if self.live:
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] "
                              f"{self.done}/{self.total} {name[:40]:<40}")
            if self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()

    def say(self, line: str) -> None:
        if self.live:
            self.stream.write("\r" + " " * 80 + "\r")
        self.stream.write(line + "\n")
        self.stream.flush()


def safe_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") or "label"


def expand_inputs(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """Folders become their files; an empty folder is reported, not silently skipped."""
    out: list[Path] = []
    problems: list[str] = []
    for p in paths:
        if p.is_dir():
            files = sorted(q for q in p.iterdir() if q.is_file() and not q.name.startswith("."))
            if not files:
                problems.append(f"error: '{p.name}' is a folder with no files in it")
            out.extend(files)
        else:
            out.append(p)
    return out, problems


def run(args: Any) -> int:
    from gradcam_viewer.cam import CamError, Explainer
    from gradcam_viewer.export import prediction_record, write_csv, write_json, write_png
    from gradcam_viewer.imaging import ImageLoadError, load_image, to_display
    from gradcam_viewer.models import ModelLoadError, load_model_bundle
    from gradcam_viewer.models.chexnet import load_chexnet_weights
    from gradcam_viewer.render import OverlayStyle, composite
    from gradcam_viewer.safe_write import OutputExistsError

    err = sys.stderr
    try:
        bundle = (load_chexnet_weights(args.chexnet_weights) if args.chexnet_weights
                  else load_model_bundle(args.model))
        explainer = Explainer(bundle.model, layer=args.layer or bundle.target_layer,
                              method=args.method)
    except (ModelLoadError, CamError) as exc:
        err.write(f"error: {exc}\n")
        return 2
    for notice in bundle.notices:
        err.write(f"note: {notice}\n")
    if args.labels.strip().lower() == "all":
        wanted = list(range(len(bundle.labels)))
    else:
        names = [x.strip() for x in args.labels.split(",") if x.strip()]
        unknown = [n for n in names if n not in bundle.labels]
        if unknown:
            err.write(f"error: unknown label(s) {', '.join(unknown)}; the model has: "
                      f"{', '.join(bundle.labels)}\n")
            return 2
        wanted = [bundle.labels.index(n) for n in names]
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        err.write(f"error: cannot create the output folder '{args.out}': {exc.strerror}\n")
        return 2
    style = OverlayStyle(opacity=args.opacity, colormap=args.colormap)
    inputs, problems = expand_inputs(args.images)
    progress = Progress(len(inputs), err)
    rows: list[tuple[str, np.ndarray]] = []
    failures = len(problems)
    for line in problems:
        progress.say(line)
    used_stems: set[str] = set()
    for path in inputs:
        try:
            started = time.perf_counter()
            image = load_image(path, frame=max(args.frame, 1) - 1)
            display = to_display(image)
            result = explainer.explain(bundle.prepare(image))
            maps, has = result.normalized()
            stem = _unique_stem(path, used_stems)
            record = prediction_record(image, bundle, result.probabilities[0], result.layer_name,
                                       result.method, result.score)
            record["no_positive_evidence"] = [bundle.labels[k] for k in range(len(bundle.labels))
                                              if not has[0, k]]
            for k in wanted:
                heat = result.display_heatmap(0, k, image.size)
                rgb = composite(display, heat, style)
                write_png(args.out / f"{stem}_{safe_name(bundle.labels[k])}.png", rgb,
                          {"Label": bundle.labels[k],
                           "Probability": f"{result.probabilities[0, k]:.4f}",
                           "Model": bundle.name, "Method": result.method,
                           "Notice": bundle.manifest.get("disclaimer", "")}, args.force)
            write_json(args.out / f"{stem}.json", record, args.force)
            rows.append((path.name, result.probabilities[0]))
            log.info("explained %s in %.2f s", path.name, time.perf_counter() - started)
        except ImageLoadError as exc:
            failures += 1
            progress.say(f"error: {exc}")
        except OutputExistsError as exc:
            failures += 1
            progress.say(f"error: {path.name}: output {exc}; use --force to overwrite")
        except Exception as exc:  # keep going with the other images
            failures += 1
            log.exception("failed to explain %s", path.name)
            progress.say(f"error: {path.name}: {type(exc).__name__}: {exc}")
        progress.step(path.name)
    if rows:
        try:
            write_csv(args.out / "predictions.csv", bundle.labels, rows, args.force)
        except OutputExistsError:
            err.write("error: predictions.csv already exists; use --force to overwrite\n")
            failures += 1
    err.write(f"{len(rows)} of {len(inputs)} image(s) explained into {args.out}\n")
    return 0 if failures == 0 else 1


def _unique_stem(path: Path, used: set[str]) -> str:
    stem = safe_name(path.stem)
    candidate, n = stem, 2
    while candidate in used:
        candidate, n = f"{stem}_{n}", n + 1
    used.add(candidate)
    return candidate
