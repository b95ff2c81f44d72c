"""`gradcam-viewer evaluate --model M --labels labels.csv [--boxes boxes.csv] IMAGES...`:
AUROC with bootstrap intervals and Grad-CAM localisation on the user's own annotations
(trust/evaluate.py), written as a CSV and a one-page report (PNG and PDF)."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gradcam_viewer.cli.common import (
    Command,
    CommandError,
    ExitCode,
    Progress,
    add_method_argument,
    add_model_argument,
    expand_inputs,
)

if TYPE_CHECKING:
    from gradcam_viewer.cam.explainer import Explainer
    from gradcam_viewer.models.bundle import ModelBundle
    from gradcam_viewer.trust.evaluate import Box, Evaluation

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", type=Path, help="images or folders")
    add_model_argument(parser)
    parser.add_argument("--labels", type=Path, required=True,
                        help="CSV, one row per image, one 0/1 column per label")
    parser.add_argument("--boxes", type=Path, default=None,
                        help="CSV in the NIH BBox_List_2017 layout (Image Index, Finding Label, "
                             "x, y, w, h)")
    add_method_argument(parser)
    parser.add_argument("--out", type=Path, default=Path("evaluation"), help="output folder")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples (default 1000)")


@dataclass(frozen=True)
class Annotations:
    """The labels and boxes files, and which input each of their rows names."""

    truth: dict[str, np.ndarray]  # annotation key -> 0/1/-1 per model label
    boxes: dict[str, list[Box]]  # annotation key -> its boxes
    rels: list[str]  # the inputs' paths relative to their common root
    keys: dict[str, str | None]  # input -> its labels row (None: none)
    box_keys: dict[str, str | None]  # input -> its boxes (None: none)


def load(args: argparse.Namespace) -> tuple[ModelBundle, Explainer]:
    from gradcam_viewer.cam import CamError, Explainer
    from gradcam_viewer.models import ModelLoadError, load_model_bundle

    try:
        bundle = load_model_bundle(args.model)
        return bundle, Explainer(bundle.model, layer=bundle.target_layer, method=args.method,
                                 output=bundle.output)
    except (ModelLoadError, CamError) as exc:
        raise CommandError(str(exc)) from exc


def read_annotations(args: argparse.Namespace,
                     labels: list[str]) -> tuple[dict[str, np.ndarray], dict[str, list[Box]]]:
    """The labels file's rows and the boxes file's boxes, by the image they name."""
    from gradcam_viewer.trust.evaluate import AnnotationError, read_boxes, read_labels

    try:
        truth, _, notes = read_labels(args.labels, labels)
        boxes, box_notes = read_boxes(args.boxes, labels) if args.boxes else ([], [])
    except AnnotationError as exc:
        raise CommandError(str(exc)) from exc
    for note in notes + box_notes:
        sys.stderr.write(f"note: {note}\n")
    by_image: dict[str, list[Box]] = {}
    for box in boxes:
        by_image.setdefault(box.image, []).append(box)
    return truth, by_image


def match(args: argparse.Namespace, paths: list[Path], truth: dict[str, np.ndarray],
          boxes: dict[str, list[Box]]) -> Annotations:
    """Which labels row and boxes name each input (by its path, or the path's tail)."""
    from gradcam_viewer.outputs.layout import common_root, relative_posix
    from gradcam_viewer.trust.evaluate import AnnotationError, match_images

    root = common_root(list(args.images))
    rels = [relative_posix(path, root) for path in paths]
    try:
        return Annotations(truth, boxes, rels, match_images(rels, set(truth)),
                           match_images(rels, set(boxes)))
    except AnnotationError as exc:
        raise CommandError(str(exc)) from exc


def measure(bundle: ModelBundle, explainer: Explainer, paths: list[Path], ann: Annotations,
            progress: Progress) -> tuple[Evaluation, list[str], int]:
    """Every labelled input explained: its values and its boxes' localisation. Returns the
    evaluation, the inputs without a labels row and how many failed."""
    from gradcam_viewer.imaging import ImageLoadError, load_image
    from gradcam_viewer.trust.evaluate import Evaluation, localise

    evaluation = Evaluation(list(bundle.labels))
    unlabelled: list[str] = []
    failures = 0
    for path, rel in zip(paths, ann.rels, strict=True):
        name, key = path.name, ann.keys[rel]
        if key is None or key not in ann.truth:
            unlabelled.append(rel)
            progress.step(name)
            continue
        try:
            image = load_image(path)
            result = explainer.explain(bundle.prepare(image))
            evaluation.add(bundle.values(result.probabilities[0]), ann.truth[key])
            box_key = ann.box_keys[rel]
            for box in ann.boxes.get(box_key, []) if box_key is not None else []:
                k = bundle.labels.index(box.label)
                evaluation.add_box(box.label, localise(result.heatmaps[0, k], box, image.size))
        except ImageLoadError as exc:
            failures += 1
            progress.say(f"error: cannot open '{path}': {exc.reason}")
        except Exception as exc:  # keep going with the other images
            failures += 1
            log.exception("evaluate failed on %s", name)
            progress.say(f"error: {name}: {type(exc).__name__}: {exc}")
        progress.step(name)
    return evaluation, unlabelled, failures


def say_what_was_left_out(args: argparse.Namespace, ann: Annotations,
                          unlabelled: list[str]) -> None:
    err = sys.stderr
    if unlabelled:
        err.write(f"note: {len(unlabelled)} image(s) have no row in '{args.labels.name}' and "
                  f"were left out (e.g. {unlabelled[0]})\n")
    if not args.boxes:
        return
    labelled = {rel: ann.truth[key] for rel, key in ann.keys.items()
                if key is not None and key in ann.truth}
    unboxed = sorted(rel for rel, row in labelled.items()
                     if ann.box_keys[rel] is None and row.max() == 1)
    if unboxed:
        err.write(f"note: {len(unboxed)} image(s) with a positive label have no box in "
                  f"'{args.boxes.name}'; localisation uses boxed findings only "
                  f"(e.g. {unboxed[0]})\n")
    orphan = sorted(set(ann.boxes) - set(ann.box_keys.values()))
    if orphan and len(orphan) < len(ann.boxes):
        err.write(f"note: boxes of {len(orphan)} image(s) not among the inputs were ignored\n")


def write_results(args: argparse.Namespace, bundle: ModelBundle, layer: str,
                  evaluation: Evaluation) -> None:
    """evaluation.csv and the report; the figures per label on the terminal."""
    from gradcam_viewer.outputs.reports import evaluation_figure, save_report
    from gradcam_viewer.outputs.safe_write import write_bytes_atomic
    from gradcam_viewer.trust.evaluate import table_csv

    err = sys.stderr
    rows = evaluation.table(args.bootstrap)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(args.out / "evaluation.csv", table_csv(rows).encode("utf-8"), True)
        header = [f"Evaluation of {bundle.name} ({args.method} at {layer}) on "
                  f"{len(evaluation.scores)} images, {sum(r['boxes'] for r in rows)} boxes",
                  f"AUROC with 95% bootstrap interval ({args.bootstrap} resamples); "
                  "maps binarised at 0.5 of their maximum",
                  bundle.identity.disclaimer[:150]]
        save_report(evaluation_figure(rows, evaluation.curves(), header),
                    args.out / "evaluation")
    except OSError as exc:
        raise CommandError(f"cannot write the evaluation ({exc.strerror or exc})",
                           ExitCode.INPUTS_FAILED) from exc
    for r in rows:
        auc = "-" if r["auroc"] != r["auroc"] else f"{r['auroc']:.3f}"
        loc = (f", pointing {r['pointing_game']:.3f}, IoU {r['mean_iou']:.3f} "
               f"({r['boxes']} boxes)") if r["boxes"] else ""
        err.write(f"  {r['label']:16s} AUROC {auc}{loc}\n")
    err.write(f"evaluation.csv, evaluation.png and evaluation.pdf in {args.out}\n")


def run(args: argparse.Namespace) -> ExitCode:
    bundle, explainer = load(args)
    truth, boxes = read_annotations(args, bundle.labels)
    paths, problems, notes, _ = expand_inputs(args.images)
    for line in problems + notes:
        sys.stderr.write(line + "\n")
    ann = match(args, paths, truth, boxes)
    with Progress(len(paths)) as progress:
        evaluation, unlabelled, failures = measure(bundle, explainer, paths, ann, progress)
    say_what_was_left_out(args, ann, unlabelled)
    if not evaluation.scores:
        raise CommandError("no input image has a row in the labels file",
                           ExitCode.INPUTS_FAILED)
    write_results(args, bundle, explainer.layer_name, evaluation)
    return ExitCode.OK if failures + len(problems) == 0 else ExitCode.INPUTS_FAILED


COMMAND = Command("evaluate", "AUROC and localisation on your own labels and boxes.",
                  add_arguments, run)
