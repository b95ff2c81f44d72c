"""`gradcam-viewer evaluate --model M --labels labels.csv [--boxes boxes.csv] IMAGES...`:
AUROC with bootstrap intervals and Grad-CAM localisation on the user's own annotations
(trust/evaluate.py), written as a CSV and a one-page report (PNG and PDF)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from gradcam_viewer.cli.common import (
    Command,
    CommandError,
    ExitCode,
    Progress,
    add_method_argument,
    add_model_argument,
    expand_inputs,
)

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


def run(args: argparse.Namespace) -> ExitCode:
    from gradcam_viewer.cam import CamError, Explainer
    from gradcam_viewer.imaging import ImageLoadError, load_image
    from gradcam_viewer.models import ModelLoadError, load_model_bundle
    from gradcam_viewer.outputs.layout import common_root, relative_posix
    from gradcam_viewer.outputs.reports import evaluation_figure, save_report
    from gradcam_viewer.outputs.safe_write import write_bytes_atomic
    from gradcam_viewer.trust.evaluate import (
        AnnotationError,
        Box,
        Evaluation,
        localise,
        match_images,
        read_boxes,
        read_labels,
        table_csv,
    )

    err = sys.stderr
    try:
        bundle = load_model_bundle(args.model)
        explainer = Explainer(bundle.model, layer=bundle.target_layer, method=args.method,
                              output=bundle.output)
    except (ModelLoadError, CamError) as exc:
        raise CommandError(str(exc)) from exc
    try:
        truth, _, notes = read_labels(args.labels, bundle.labels)
        boxes, box_notes = read_boxes(args.boxes, bundle.labels) if args.boxes else ([], [])
    except AnnotationError as exc:
        raise CommandError(str(exc)) from exc
    for note in notes + box_notes:
        err.write(f"note: {note}\n")
    by_image: dict[str, list[Box]] = {}
    for box in boxes:
        by_image.setdefault(box.image, []).append(box)
    paths, problems, notes, _ = expand_inputs(args.images)
    for line in problems + notes:
        err.write(line + "\n")
    root = common_root(list(args.images))
    rels = [relative_posix(path, root) for path in paths]
    try:
        keys = match_images(rels, set(truth))
        box_keys = match_images(rels, set(by_image))
    except AnnotationError as exc:
        raise CommandError(str(exc)) from exc
    evaluation = Evaluation(list(bundle.labels))
    unlabelled: list[str] = []
    failures = len(problems)
    with Progress(len(paths), err) as progress:
        for path, rel in zip(paths, rels, strict=True):
            name, key = path.name, keys[rel]
            if key is None or key not in truth:
                unlabelled.append(rel)
                progress.step(name)
                continue
            try:
                image = load_image(path)
                result = explainer.explain(bundle.prepare(image))
                evaluation.add(bundle.values(result.probabilities[0]), truth[key])
                box_key = box_keys[rel]
                for box in by_image.get(box_key, []) if box_key is not None else []:
                    k = bundle.labels.index(box.label)
                    evaluation.add_box(box.label,
                                       localise(result.heatmaps[0, k], box, image.size))
            except ImageLoadError as exc:
                failures += 1
                progress.say(f"error: cannot open '{path}': {exc.reason}")
            except Exception as exc:  # keep going with the other images
                failures += 1
                log.exception("evaluate failed on %s", name)
                progress.say(f"error: {name}: {type(exc).__name__}: {exc}")
            progress.step(name)
    if unlabelled:
        err.write(f"note: {len(unlabelled)} image(s) have no row in '{args.labels.name}' and "
                  f"were left out (e.g. {unlabelled[0]})\n")
    labelled = {rel: truth[key] for rel, key in keys.items() if key is not None and key in truth}
    listed_unboxed = sorted(rel for rel, row in labelled.items() if box_keys[rel] is None
                            and row.max() == 1) if args.boxes else []
    if listed_unboxed:
        err.write(f"note: {len(listed_unboxed)} image(s) with a positive label have no box in "
                  f"'{args.boxes.name}'; localisation uses boxed findings only "
                  f"(e.g. {listed_unboxed[0]})\n")
    orphan = sorted(set(by_image) - set(box_keys.values()))
    if args.boxes and orphan and len(orphan) < len(by_image):
        err.write(f"note: boxes of {len(orphan)} image(s) not among the inputs were ignored\n")
    if not evaluation.scores:
        raise CommandError("no input image has a row in the labels file",
                           ExitCode.INPUTS_FAILED)
    rows = evaluation.table(args.bootstrap)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(args.out / "evaluation.csv", table_csv(rows).encode("utf-8"), True)
        header = [f"Evaluation of {bundle.name} ({args.method} at {explainer.layer_name}) on "
                  f"{len(evaluation.scores)} images, {sum(r['boxes'] for r in rows)} boxes",
                  f"AUROC with 95% bootstrap interval ({args.bootstrap} resamples); "
                  "maps binarised at 0.5 of their maximum",
                  str(bundle.manifest.get("disclaimer", ""))[:150]]
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
    return ExitCode.OK if failures == 0 else ExitCode.INPUTS_FAILED


COMMAND = Command("evaluate", "AUROC and localisation on your own labels and boxes.",
                  add_arguments, run)
