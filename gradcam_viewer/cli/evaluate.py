"""`gradcam-viewer evaluate --model M [--labels labels.csv] [--boxes boxes.csv|SR_FOLDER]
[--marks [STORE]] [--operating-points RULE [--write-manifest]] IMAGES...`: AUROC with bootstrap
intervals and Grad-CAM localisation on the user's own annotations (trust/evaluate.py): a labels
file, NIH boxes, DICOM SR reports of marks, the viewer's own marks (trust/marks_truth.py);
operating points chosen on those cases (trust/operating_points.py), stored in the manifest if
asked; written as a CSV and a one-page report (PNG and PDF)."""

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
    from gradcam_viewer.imaging.image import LoadedImage
    from gradcam_viewer.marks.shapes import Mark
    from gradcam_viewer.models.bundle import ModelBundle
    from gradcam_viewer.models.operating_points import OperatingPoints
    from gradcam_viewer.trust.evaluate import Box, Evaluation
    from gradcam_viewer.trust.marks_truth import MarkSources

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", type=Path, help="images or folders")
    add_model_argument(parser)
    parser.add_argument("--labels", type=Path, default=None,
                        help="CSV, one row per image, one 0/1 column per label")
    parser.add_argument("--boxes", type=Path, default=None,
                        help="CSV in the NIH BBox_List_2017 layout (Image Index, Finding Label, "
                             "x, y, w, h), or a folder of DICOM SR reports of marks (TID 1500)")
    parser.add_argument("--marks", nargs="?", const="", default=None, metavar="FOLDER",
                        help="the marks you made on these images in the viewer (its store in "
                             "your data folder, or FOLDER)")
    parser.add_argument("--operating-points", default=None, metavar="RULE",
                        help="choose a threshold per label on these cases: youden, "
                             "sensitivity=X or specificity=X")
    parser.add_argument("--write-manifest", action="store_true",
                        help="with --operating-points: store them in the model's manifest")
    add_method_argument(parser)
    parser.add_argument("--out", type=Path, default=Path("evaluation"), help="output folder")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples (default 1000)")


@dataclass(frozen=True)
class Annotations:
    """The labels and boxes files, which input each of their rows names, and the marks'
    sources (reports, the viewer's store)."""

    truth: dict[str, np.ndarray]  # annotation key -> 0/1/-1 per model label
    boxes: dict[str, list[Box]]  # annotation key -> its boxes
    rels: list[str]  # the inputs' paths relative to their common root
    keys: dict[str, str | None]  # input -> its labels row (None: none)
    box_keys: dict[str, str | None]  # input -> its boxes (None: none)
    sources: MarkSources

    def marks_of(self, rel: str, path: Path, image: LoadedImage,
                 labels: list[str]) -> list[Mark]:
        """Every mark of one loaded input: its NIH boxes, its reports' and its store's."""
        from gradcam_viewer.trust.evaluate import box_mark

        box_key = self.box_keys[rel]
        marks = [box_mark(b) for b in self.boxes.get(box_key, [])] if box_key else []
        found = self.sources.marks_of(path, image)
        self.sources.note_unknown(found, labels)
        return marks + found


def load(args: argparse.Namespace) -> tuple[ModelBundle, Explainer]:
    from gradcam_viewer.cam import CamError, Explainer
    from gradcam_viewer.models import ModelLoadError, load_model_bundle

    try:
        bundle = load_model_bundle(args.model)
        return bundle, Explainer(bundle.model, layer=bundle.target_layer, method=args.method,
                                 output=bundle.output)
    except (ModelLoadError, CamError) as exc:
        raise CommandError(str(exc)) from exc


def reports_given(path: Path | None) -> bool:
    """Whether --boxes names DICOM reports (a folder, or a DICOM file) rather than a CSV."""
    head = b""
    if path is not None and path.is_file():
        try:
            with open(path, "rb") as f:
                head = f.read(132)
        except OSError:
            pass  # read_boxes says why it cannot be read
    return path is not None and (path.is_dir() or head[128:132] == b"DICM")


def read_annotations(args: argparse.Namespace,
                     labels: list[str]) -> tuple[dict[str, np.ndarray], dict[str, list[Box]]]:
    """The labels file's rows and the boxes file's boxes, by the image they name."""
    from gradcam_viewer.trust.evaluate import AnnotationError, read_boxes, read_labels

    if args.labels is None and args.boxes is None and args.marks is None:
        raise CommandError("give the truth to evaluate against: --labels, --boxes or --marks")
    try:
        truth, _, notes = read_labels(args.labels, labels) if args.labels else ({}, [], [])
        boxes, box_notes = (read_boxes(args.boxes, labels)
                            if args.boxes and not reports_given(args.boxes) else ([], []))
    except AnnotationError as exc:
        raise CommandError(str(exc)) from exc
    for note in notes + box_notes:
        sys.stderr.write(f"note: {note}\n")
    by_image: dict[str, list[Box]] = {}
    for box in boxes:
        by_image.setdefault(box.image, []).append(box)
    return truth, by_image


def read_sources(args: argparse.Namespace) -> MarkSources:
    """The SR reports --boxes names and the store --marks names."""
    from gradcam_viewer.imaging import scan_media
    from gradcam_viewer.marks.sr_read import ReportIndex
    from gradcam_viewer.marks.store import MarkStore
    from gradcam_viewer.trust.marks_truth import MarkSources

    sources = MarkSources()
    if reports_given(args.boxes):
        files = scan_media([args.boxes]).catalogue.reports if args.boxes.is_dir() \
            else [args.boxes]
        if not files:
            raise CommandError(f"'{args.boxes}' holds no DICOM structured report")
        index = ReportIndex.read(files)
        for problem in index.problems:
            sys.stderr.write(f"note: {problem}; left out\n")
        for why in index.left_out():
            sys.stderr.write(f"note: {why}; left out\n")
        if not len(index):
            raise CommandError(f"the reports in '{args.boxes}' hold no marks of image regions")
        sources.reports = index
    if args.marks is not None:
        store = MarkStore(Path(args.marks) if args.marks else None)
        if not store.folder.is_dir():
            raise CommandError(f"no marks are kept in '{store.folder}'")
        sources.store = store
    return sources


def match(args: argparse.Namespace, paths: list[Path], truth: dict[str, np.ndarray],
          boxes: dict[str, list[Box]], sources: MarkSources) -> Annotations:
    """Which labels row and boxes name each input (by its path, or the path's tail)."""
    from gradcam_viewer.outputs.layout import common_root, relative_posix
    from gradcam_viewer.trust.evaluate import AnnotationError, match_images

    root = common_root(list(args.images))
    rels = [relative_posix(path, root) for path in paths]
    try:
        return Annotations(truth, boxes, rels, match_images(rels, set(truth)),
                           match_images(rels, set(boxes)), sources)
    except AnnotationError as exc:
        raise CommandError(str(exc)) from exc


def measure(bundle: ModelBundle, explainer: Explainer, paths: list[Path], ann: Annotations,
            progress: Progress) -> tuple[Evaluation, list[str], int]:
    """Every labelled input explained: its values and its boxes' localisation. Returns the
    evaluation, the inputs without a labels row and how many failed."""
    from gradcam_viewer.imaging import ImageLoadError, load_image
    from gradcam_viewer.trust.evaluate import Evaluation, localise_marks
    from gradcam_viewer.trust.marks_truth import by_label, combine, truth_of

    labels = list(bundle.labels)
    evaluation = Evaluation(labels)
    unlabelled: list[str] = []
    failures = 0
    for path, rel in zip(paths, ann.rels, strict=True):
        name, key = path.name, ann.keys[rel]
        labelled = ann.truth.get(key) if key is not None else None
        if labelled is None and ann.box_keys[rel] is None and not ann.sources.active:
            unlabelled.append(rel)  # nothing can say what it shows: not even opened
            progress.step(name)
            continue
        try:
            image = load_image(path)
            marks = ann.marks_of(rel, path, image, labels)
            truth = combine(labelled, truth_of(marks, labels))
            if truth is None:
                unlabelled.append(rel)
                progress.step(name)
                continue
            result = explainer.explain(bundle.prepare(image))
            evaluation.add(bundle.values(result.probabilities[0]), truth)
            for label, shapes in by_label(marks, labels).items():
                k = labels.index(label)
                evaluation.add_case(label, localise_marks(result.heatmaps[0, k], shapes,
                                                          image.size), len(shapes))
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
        where = " and ".join(name for given, name in (
            (args.labels, f"no row in '{args.labels.name if args.labels else ''}'"),
            (args.boxes or args.marks is not None, "no marks or boxes")) if given)
        err.write(f"note: {len(unlabelled)} image(s) have {where} and were left out (e.g. "
                  f"{unlabelled[0]})\n")
    for finding, n in sorted(ann.sources.unknown.items()):
        err.write(f"note: {n} mark(s) of '{finding}', which is not a label of the model, were "
                  "not scored\n")
    if not args.boxes or reports_given(args.boxes):
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
                  evaluation: Evaluation, points: OperatingPoints | None = None) -> None:
    """evaluation.csv and the report; the figures per label on the terminal."""
    from gradcam_viewer.outputs.reports import evaluation_figure, save_report
    from gradcam_viewer.outputs.safe_write import write_bytes_atomic
    from gradcam_viewer.trust.evaluate import table_csv

    err = sys.stderr
    rows = evaluation.table(args.bootstrap)
    if points is not None:
        add_points(rows, points)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(args.out / "evaluation.csv", table_csv(rows).encode("utf-8"), True)
        header = [f"Evaluation of {bundle.name} ({args.method} at {layer}) on "
                  f"{len(evaluation.scores)} images, {sum(r['marked'] for r in rows)} marked "
                  f"cases ({sum(r['boxes'] for r in rows)} boxes or shapes)",
                  f"AUROC and localisation with 95% bootstrap intervals ({args.bootstrap} "
                  "resamples); maps binarised at 0.5 of their maximum"
                  + (f"; operating points: {points.rule}" if points is not None else ""),
                  bundle.identity.disclaimer[:150]]
        save_report(evaluation_figure(rows, evaluation.curves(), header),
                    args.out / "evaluation")
    except OSError as exc:
        raise CommandError(f"cannot write the evaluation ({exc.strerror or exc})",
                           ExitCode.INPUTS_FAILED) from exc
    for r in rows:
        auc = "-" if r["auroc"] != r["auroc"] else f"{r['auroc']:.3f}"
        loc = (f", pointing {r['pointing_game']:.3f}, IoU {r['mean_iou']:.3f} "
               f"({r['marked']} marked)") if r["marked"] else ""
        op = r.get("op_threshold", float("nan"))
        point = (f", positive at >= {op:.3f} (sensitivity {r['op_sensitivity']:.2f}, "
                 f"specificity {r['op_specificity']:.2f})" if op == op else "")
        err.write(f"  {r['label']:16s} AUROC {auc}{loc}{point}\n")
    err.write(f"evaluation.csv, evaluation.png and evaluation.pdf in {args.out}\n")


def add_points(rows: list[dict], points: OperatingPoints) -> None:
    """The operating point of each label into its row of the table (nan: none)."""
    nan = float("nan")
    for row in rows:
        p = points.point(row["label"])
        ci = p.threshold_ci if p is not None and p.threshold_ci is not None else (nan, nan)
        row.update({"op_rule": points.rule,
                    "op_threshold": p.threshold if p is not None else nan,
                    "op_threshold_ci_low": ci[0], "op_threshold_ci_high": ci[1],
                    "op_sensitivity": p.sensitivity if p is not None else nan,
                    "op_specificity": p.specificity if p is not None else nan})


def operating_points(args: argparse.Namespace, bundle: ModelBundle,
                     evaluation: Evaluation) -> OperatingPoints | None:
    """The points --operating-points asks for, stored in the manifest with --write-manifest."""
    from gradcam_viewer.models.manifest import manifest_path_for, sha256_of
    from gradcam_viewer.trust.operating_points import Rule, choose, store_points

    if args.operating_points is None:
        return None
    rule = Rule.parse(args.operating_points)  # checked in `check_options`
    source = ", ".join(name for given, name in (
        (args.labels, f"labels {args.labels.name if args.labels else ''}"),
        (args.boxes, f"marks {args.boxes.name if args.boxes else ''}"),
        (args.marks is not None, "the viewer's marks")) if given)
    weights = str(bundle.manifest.get("weights_sha256") or "")
    if args.write_manifest and bundle.path is not None:
        weights = sha256_of(bundle.path)  # recomputed: the points belong to these weights
        if weights != bundle.manifest.get("weights_sha256"):
            raise CommandError(f"'{bundle.path.name}' does not match the SHA-256 in its "
                               "manifest: the points would belong to other weights")
    points, notes = choose(evaluation, rule, len(evaluation.scores), source, weights,
                           args.bootstrap)
    for note in notes:
        sys.stderr.write(f"note: {note}\n")
    if args.write_manifest:
        if not points.points:
            raise CommandError("no label has an operating point; the manifest is unchanged",
                               ExitCode.INPUTS_FAILED)
        assert bundle.path is not None  # `check_options`
        manifest_file = manifest_path_for(bundle.path)
        assert manifest_file is not None
        try:
            store_points(manifest_file, points)
        except OSError as exc:
            raise CommandError(f"cannot write the manifest '{manifest_file.name}' "
                               f"({exc.strerror or exc})", ExitCode.INPUTS_FAILED) from exc
        sys.stderr.write(f"operating points ({points.rule}, {points.cases} cases) written "
                         f"into {manifest_file.name}\n")
    return points


def check_options(args: argparse.Namespace, bundle: ModelBundle) -> None:
    """Options that cannot work, said before any image is read."""
    from gradcam_viewer.trust.operating_points import Rule

    if args.write_manifest and args.operating_points is None:
        raise CommandError("--write-manifest stores the points --operating-points chooses: "
                           "give --operating-points too")
    if args.operating_points is not None:
        try:
            Rule.parse(args.operating_points)
        except ValueError as exc:
            raise CommandError(f"--operating-points: {exc}") from exc
    if args.write_manifest and (args.model is None or not bundle.has_manifest):
        raise CommandError("--write-manifest needs --model with a manifest beside it (the "
                           "bundled demo model's manifest is part of the program)")


def run(args: argparse.Namespace) -> ExitCode:
    bundle, explainer = load(args)
    check_options(args, bundle)
    truth, boxes = read_annotations(args, bundle.labels)
    sources = read_sources(args)
    paths, problems, notes, _ = expand_inputs(args.images)
    for line in problems + notes:
        sys.stderr.write(line + "\n")
    ann = match(args, paths, truth, boxes, sources)
    with Progress(len(paths)) as progress:
        evaluation, unlabelled, failures = measure(bundle, explainer, paths, ann, progress)
    say_what_was_left_out(args, ann, unlabelled)
    if not evaluation.scores:
        raise CommandError("no input image has a row in the labels file or marks",
                           ExitCode.INPUTS_FAILED)
    points = operating_points(args, bundle, evaluation)
    write_results(args, bundle, explainer.layer_name, evaluation, points)
    return ExitCode.OK if failures + len(problems) == 0 else ExitCode.INPUTS_FAILED


COMMAND = Command("evaluate", "AUROC, localisation and operating points on your own marks.",
                  add_arguments, run)
