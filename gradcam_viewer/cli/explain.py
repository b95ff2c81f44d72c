"""`gradcam-viewer explain`: heatmaps and predictions for many images, without a window."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from gradcam_viewer.outputs.dicom import run as dicom_cmd
from gradcam_viewer.cam.methods import METHOD_TITLES
from gradcam_viewer.render.colormaps import COLORMAPS, DEFAULT_COLORMAP

log = logging.getLogger(__name__)


def add_chexnet_arguments(parser: Any) -> None:
    """--chexnet-weights and --reference-images, shared by the viewer's and explain's parsers."""
    parser.add_argument("--chexnet-weights", type=Path, default=None,
                        help="weights for the CheXNet DenseNet121 preset (.h5 or .weights.h5)")
    parser.add_argument("--reference-images", type=Path, default=None,
                        help="with --chexnet-weights: a folder of training images whose mean/std "
                             "normalise every image (stored beside the weights); default: "
                             "per-image z-score")


def add_arguments(parser: Any) -> None:
    parser.add_argument("images", nargs="+", type=Path, help="PNG, JPEG, TIFF, BMP or DICOM files")
    parser.add_argument("--model", type=Path, default=None,
                        help="a .keras or .h5 model, or a Keras 2 SavedModel folder "
                             "(default: the bundled demo model)")
    add_chexnet_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("gradcam-out"), help="output folder")
    parser.add_argument("--method", default="gradcam",
                        choices=list(METHOD_TITLES))
    parser.add_argument("--overlays", "--labels", dest="labels", default="all",
                        metavar="LABELS",
                        help="comma-separated label names to draw overlays for, 'all' (default) "
                             "or 'none' (predictions and JSON only)")
    parser.add_argument("--layer", default=None, help="target layer (default: manifest or auto)")
    parser.add_argument("--frame", type=int, default=1, help="frame of multi-frame files (1-based)")
    parser.add_argument("--opacity", type=float, default=0.45)
    parser.add_argument("--colormap", default=DEFAULT_COLORMAP, choices=list(COLORMAPS))
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--force", action="store_true", help="overwrite existing outputs")
    again.add_argument("--resume", action="store_true",
                        help="complete an earlier run: skip images whose outputs exist and add "
                             "only their missing rows to predictions.csv")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="images per forward pass (default 8; 1 gives outputs bit-identical "
                             "to explaining each image alone)")
    parser.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                        help="run on a Ray cluster (pip install 'gradcam-viewer[cluster]'): "
                             "ADDRESS of its head (ray://host:10001 or host:6379), or none for "
                             "a Ray instance on this machine")
    parser.add_argument("--ray-workers", type=int, default=None,
                        help="with --ray: how many actors (each holds one model; default: one "
                             "per CPU of the cluster)")
    parser.add_argument("--no-ids", action="store_true",
                        help="leave the DICOM Study/Series/SOP Instance UIDs out of every output "
                             "(for results shared outside the hospital)")
    dicom_cmd.add_arguments(parser)


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


class Inputs(NamedTuple):
    """What the scanner found in the command's inputs."""

    paths: list[Path]  # the images in reading order, then files named that are not images
    errors: list[str]  # "error: ..." lines: missing inputs, empty folders, files a DICOMDIR
    # lacks; each is a failure of the command (exit 1)
    notes: list[str]  # "note: ..." lines: depth limit, a DICOMDIR searched as a folder
    skipped: int  # other files (CSVs, reports, text) found in folders


def expand_inputs(paths: list[Path]) -> Inputs:
    """Files, folders and DICOMDIR media through the scanner."""
    from gradcam_viewer.imaging import scan_media

    result = scan_media(paths)
    # files named on the command line that are not images go to the loader, which says why
    return Inputs(result.images + result.rejected, [f"error: {w}" for w in result.warnings],
                  [f"note: {n}" for n in result.notices], result.skipped)


def run(args: Any) -> int:
    from gradcam_viewer.batch.job import (ExplainJob, JobSettings, explainer_for,
                                          failure_message, load_bundle)
    from gradcam_viewer.batch.pipeline import run_pipeline
    from gradcam_viewer.cam import CamError
    from gradcam_viewer.outputs.export import append_csv, write_csv
    from gradcam_viewer.imaging import ImageLoadError
    from gradcam_viewer.models import ModelLoadError
    from gradcam_viewer.outputs.layout import common_root, plan_outputs
    from gradcam_viewer.outputs.records import csv_header, has_uid_like
    from gradcam_viewer.outputs.resume import finished, row_from_record, rows_already_written
    from gradcam_viewer.outputs.safe_write import OutputExistsError
    from gradcam_viewer.trust.ood import check_for

    err = sys.stderr
    if args.reference_images and not args.chexnet_weights:
        err.write("error: --reference-images goes with --chexnet-weights\n")
        return 2
    if args.batch_size < 1:
        err.write("error: --batch-size must be at least 1\n")
        return 2
    if not 0.0 <= args.opacity <= 1.0:
        err.write("error: --opacity must be between 0 and 1\n")
        return 2
    if args.frame < 1:
        err.write("error: --frame counts from 1\n")
        return 2
    if args.ray_workers is not None and (args.ray is None or args.ray_workers < 1):
        err.write("error: --ray-workers goes with --ray and must be at least 1\n")
        return 2
    dicom = dicom_cmd.DicomRun(args)
    if args.ray is not None and dicom.active:
        err.write("error: --dicom-out and --send do not go with --ray yet; run them on this "
                  "machine\n")
        return 2
    if problem := dicom.start(args):
        err.write(f"error: {problem}\n")
        return 2
    settings = JobSettings(model=args.model, chexnet_weights=args.chexnet_weights,
                           reference_images=args.reference_images, layer=args.layer,
                           method=args.method, frame=max(args.frame, 1),
                           opacity=args.opacity, colormap=args.colormap,
                           include_ids=not args.no_ids, overwrite=args.force or args.resume)
    try:
        bundle = load_bundle(settings)
        explainer = explainer_for(bundle, settings)
        ood_check = check_for(bundle, explainer)
    except (ModelLoadError, CamError) as exc:
        err.write(f"error: {exc}\n")
        return 2
    for notice in bundle.notices:
        err.write(f"note: {notice}\n")
    if not ood_check.calibrated:
        err.write(f"note: out-of-distribution warning: {ood_check.status} "
                  "(gradcam-viewer calibrate MODEL FOLDER...)\n")
    choice = args.labels.strip().lower()
    if choice == "all":
        wanted = list(range(len(bundle.labels)))
    elif choice == "none":
        wanted = []
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
    inputs, problems, notes, skipped = expand_inputs(args.images)
    include_ids = not args.no_ids
    overlay_labels = [bundle.labels[k] for k in wanted]
    settings = replace(settings, overlays=tuple(overlay_labels))
    plan = plan_outputs(inputs, common_root(args.images), args.out, overlay_labels)
    header = csv_header(bundle.labels, include_ids)
    csv_path = args.out / "predictions.csv"
    try:
        listed = rows_already_written(csv_path, header, args.force, args.resume)
    except ValueError as exc:
        err.write(f"error: {exc}\n")
        return 2 if args.resume else 1
    progress = Progress(len(plan), err)
    rows: dict[int, list[str]] = {}  # by the image's place in the plan: CSV in input order
    failures = len(problems)
    for line in problems + notes:
        progress.say(line)
    named_by_uid = sum(has_uid_like(item.rel) for item in plan) if args.no_ids else 0
    if named_by_uid:
        progress.say(f"note: {named_by_uid} input path(s) look like they hold DICOM UIDs; "
                     "--no-ids leaves paths as they are, so rename those files before sharing")
    todo: list[tuple[int, Any]] = []
    kept = 0
    for index, item in enumerate(plan):
        done = args.resume and finished(item, overlay_labels, max(args.frame, 1),
                                        args.method, bundle, include_ids)
        if done and dicom.active and not dicom.complete(item, overlay_labels, done[1]):
            done = None  # explained again to make its DICOM objects; its row is kept
        if done:
            if done[0].key not in listed:
                rows[index] = row_from_record(*done, bundle.labels, include_ids)
            kept += 1
            progress.step(item.rel)
        else:
            todo.append((index, item))
    explained = 0

    def finish(index: int, item: Any, row: list[str] | None, error: Any,
               warning: str | None = None) -> None:
        nonlocal explained, failures
        if error is None and row is not None:
            if (row[0], int(row[1])) not in listed:
                rows[index] = row
            explained += 1
            if warning:  # out of distribution
                progress.say(warning)
        else:
            failures += 1
            if isinstance(error, Exception) and not isinstance(error, (OSError, ImageLoadError)):
                log.error("failed to explain %s", item.source.name, exc_info=error)
            progress.say(error if isinstance(error, str) else failure_message(item, error))
        progress.step(item.rel)

    if args.ray is not None and todo:
        from gradcam_viewer.batch.ray_runner import RayUnavailable, explain_on_ray

        try:
            for index, item, row, message in explain_on_ray(
                    todo, settings, args.ray, args.batch_size, args.ray_workers):
                # with a row, the message is the image's warning; without, why it failed
                finish(index, item, row, None if row else message, message if row else None)
        except RayUnavailable as exc:
            err.write(f"error: {exc}\n")
            return 2
        except Exception as exc:  # the cluster failed beyond Ray's retries: keep what is done
            log.error("the Ray run stopped", exc_info=exc)
            progress.say(f"error: the Ray run stopped ({type(exc).__name__}); the images "
                         "done so far are written, --resume completes the run")
            failures += 1
    else:
        job = ExplainJob(bundle, explainer, settings, ood_check=ood_check,
                         dicom=dicom if dicom.active else None)
        for done in run_pipeline(todo, lambda t: job.decode(t[1]), job.explain,
                                 lambda t, d, e: job.write(t[1], d, e),
                                 batch_size=args.batch_size,
                                 write_workers=max(2, (os.cpu_count() or 2) - 1)):
            index, item = done.item
            written = done.result
            finish(index, item, written.row if written else None, done.error,
                   written.warning if written else None)
    ordered = [rows[k] for k in sorted(rows)]
    try:
        if args.resume and csv_path.exists():
            append_csv(csv_path, header, ordered)
        elif ordered:
            write_csv(csv_path, header, ordered, args.force)
    except (OutputExistsError, ValueError) as exc:
        err.write(f"error: predictions.csv: {exc}; use --force to overwrite\n")
        failures += 1
    except OSError as exc:
        err.write(f"error: cannot write predictions.csv ({exc.strerror or exc})\n")
        failures += 1
    if not inputs and not problems:
        err.write("error: no image files were found in the input(s)\n")
        failures += 1
    if kept and dicom.active and not dicom.keeps_files:  # --send alone: nothing tells what
        # an earlier run sent, so the images it finished are not made or sent again
        progress.say(f"note: the {kept} image(s) an earlier run finished get no DICOM objects in "
                     "this run; add --dicom-out DIR to complete those missing there, or use "
                     "--force instead of --resume to make them all again")
    failures += dicom.finish(progress.say)
    kept_note = f", {kept} already done" if kept else ""
    failed = len(plan) - explained - kept
    err.write(f"{explained} images explained, {skipped} other files skipped{kept_note}"
              f"{f', {failed} failed' if failed else ''} (outputs in {args.out})\n")
    return 0 if failures == 0 else 1

