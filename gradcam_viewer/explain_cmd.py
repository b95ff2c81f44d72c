"""`gradcam-viewer explain`: heatmaps and predictions for many images, without a window."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from gradcam_viewer import dicom_cmd
from gradcam_viewer.cam.methods import METHOD_TITLES

log = logging.getLogger(__name__)


def add_arguments(parser: Any) -> None:
    parser.add_argument("images", nargs="+", type=Path, help="PNG, JPEG, TIFF, BMP or DICOM files")
    parser.add_argument("--model", type=Path, default=None,
                        help="a .keras or .h5 model, or a Keras 2 SavedModel folder "
                             "(default: the bundled demo model)")
    parser.add_argument("--chexnet-weights", type=Path, default=None,
                        help="weights for the CheXNet DenseNet121 preset (.h5 or .weights.h5)")
    parser.add_argument("--reference-images", type=Path, default=None,
                        help="with --chexnet-weights: a folder of training images whose mean/std "
                             "normalise every image (stored beside the weights); default: "
                             "per-image z-score")
    parser.add_argument("--out", type=Path, default=Path("gradcam-out"), help="output folder")
    parser.add_argument("--method", default="gradcam",
                        choices=list(METHOD_TITLES))
    parser.add_argument("--labels", default="all",
                        help="comma-separated label names to draw overlays for (default: all)")
    parser.add_argument("--layer", default=None, help="target layer (default: manifest or auto)")
    parser.add_argument("--frame", type=int, default=1, help="frame of multi-frame files (1-based)")
    parser.add_argument("--opacity", type=float, default=0.45)
    parser.add_argument("--colormap", default="inferno")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--force", action="store_true", help="overwrite existing outputs")
    again.add_argument("--resume", action="store_true",
                        help="complete an earlier run: skip images whose outputs exist and add "
                             "only their missing rows to predictions.csv")
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


def expand_inputs(paths: list[Path]) -> tuple[list[Path], list[str], int]:
    """Files, folders and DICOMDIR media through the scanner: the images in reading order,
    the problems to report (missing inputs, empty folders, files a DICOMDIR lacks) and how
    many other files (CSVs, reports, text found in folders) were skipped."""
    from gradcam_viewer.imaging import scan_media

    result = scan_media(paths)
    # files named on the command line that are not images go to the loader, which says why
    return (result.images + result.rejected, [f"error: {w}" for w in result.warnings],
            result.skipped)


def run(args: Any) -> int:
    from gradcam_viewer.cam import CamError, Explainer
    from gradcam_viewer.export import (append_csv, prediction_record, write_csv, write_json,
                                       write_png)
    from gradcam_viewer.imaging import ImageLoadError, load_image, to_display
    from gradcam_viewer.models import ModelLoadError, load_model_bundle
    from gradcam_viewer.models.chexnet import load_chexnet_weights
    from gradcam_viewer.output_layout import common_root, plan_outputs
    from gradcam_viewer.records import csv_header, csv_row, has_uid_like, source_id
    from gradcam_viewer.resume import finished, row_from_record, rows_already_written
    from gradcam_viewer.render import OverlayStyle, composite
    from gradcam_viewer.safe_write import OutputExistsError
    from gradcam_viewer.trust.ood import check_for, csv_flag, feature_layer_of

    err = sys.stderr
    if args.reference_images and not args.chexnet_weights:
        err.write("error: --reference-images goes with --chexnet-weights\n")
        return 2
    dicom = dicom_cmd.DicomRun(args)
    if problem := dicom.start(args):
        err.write(f"error: {problem}\n")
        return 2
    try:
        bundle = (load_chexnet_weights(args.chexnet_weights, args.reference_images)
                  if args.chexnet_weights
                  else load_model_bundle(args.model))
        explainer = Explainer(bundle.model, layer=args.layer or bundle.target_layer,
                              method=args.method, output=bundle.output,
                              feature_layer=feature_layer_of(bundle.manifest))
        ood_check = check_for(bundle, explainer)
    except (ModelLoadError, CamError) as exc:
        err.write(f"error: {exc}\n")
        return 2
    for notice in bundle.notices:
        err.write(f"note: {notice}\n")
    if not ood_check.calibrated:
        err.write(f"note: out-of-distribution warning: {ood_check.status} "
                  "(gradcam-viewer calibrate MODEL FOLDER...)\n")
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
    value_key = "Score" if bundle.output_kind == "scores" else "Probability"
    inputs, problems, skipped = expand_inputs(args.images)
    include_ids = not args.no_ids
    overlay_labels = [bundle.labels[k] for k in wanted]
    plan, repeated = plan_outputs(inputs, common_root(args.images), args.out, overlay_labels)
    header = csv_header(bundle.labels, include_ids)
    csv_path = args.out / "predictions.csv"
    try:
        listed = rows_already_written(csv_path, header, args.force, args.resume)
    except ValueError as exc:
        err.write(f"error: {exc}\n")
        return 2 if args.resume else 1
    progress = Progress(len(plan), err)
    rows: list[list[str]] = []
    failures = len(problems)
    for line in problems:
        progress.say(line)
    for path in repeated:
        progress.say(f"note: '{path}' was listed more than once; it is explained once")
    named_by_uid = sum(has_uid_like(item.rel) for item in plan) if args.no_ids else 0
    if named_by_uid:
        progress.say(f"note: {named_by_uid} input path(s) look like they hold DICOM UIDs; "
                     "--no-ids leaves paths as they are, so rename those files before sharing")
    explained = kept = 0
    for item in plan:
        try:
            started = time.perf_counter()
            done = args.resume and finished(item, overlay_labels, max(args.frame, 1),
                                            args.method, bundle, include_ids)
            if done:
                if done[0].key not in listed:
                    rows.append(row_from_record(*done, bundle.labels, include_ids))
                kept += 1
                progress.step(item.rel)
                continue
            overwrite = args.force or args.resume
            image = load_image(item.source, frame=max(args.frame, 1) - 1)
            display = to_display(image)
            result = explainer.explain(bundle.prepare(image))
            values = bundle.values(result.probabilities[0])  # probabilities, or raw scores
            _, has = result.normalized()
            source = source_id(image, item.rel, include_ids)
            ood = ood_check.record(result.features[0])
            record = prediction_record(source, image, bundle, values, result.layer_name,
                                       result.method, result.score, has[0], ood=ood)
            item.folder.mkdir(parents=True, exist_ok=True)
            for k in wanted:
                heat = result.display_heatmap(0, k, image.size)
                rgb = composite(display, heat, style)
                write_png(item.overlay_path(bundle.labels[k]), rgb,
                          {"Label": bundle.labels[k],
                           value_key: f"{values[k]:.4f}",
                           "Source": item.rel, "Frame": str(source.frame),
                           "Model": bundle.name, "Method": result.method,
                           "OutOfDistribution": csv_flag(ood),
                           "Notice": bundle.manifest.get("disclaimer", "")}, overwrite)
            write_json(item.json_path, record, overwrite)
            if source.key not in listed:
                rows.append(csv_row(source, values, include_ids, bundle.output_kind, ood))
            dicom.after_image(item, image, display, result, values, bundle, wanted, style,
                              overwrite, ood)
            if ood["flagged"]:
                progress.say(f"warning: {item.rel}: unlike the images this model was checked "
                             f"on (distance percentile {ood['percentile']:.1f})")
            explained += 1
            log.info("explained %s in %.2f s", item.source.name, time.perf_counter() - started)
        except ImageLoadError as exc:
            failures += 1
            progress.say(f"error: cannot open '{item.rel}': {exc.reason}")
        except OutputExistsError as exc:
            failures += 1
            progress.say(f"error: {item.rel}: output {exc}; use --force to overwrite or "
                         "--resume to complete an earlier run")
        except OSError as exc:
            failures += 1
            progress.say(f"error: {item.rel}: cannot write its outputs ({exc.strerror or exc})")
        except Exception as exc:  # keep going with the other images
            failures += 1
            log.exception("failed to explain %s", item.source.name)
            progress.say(f"error: {item.rel}: {type(exc).__name__}: {exc}")
        progress.step(item.rel)
    try:
        if args.resume and csv_path.exists():
            append_csv(csv_path, header, rows)
        elif rows:
            write_csv(csv_path, header, rows, args.force)
    except (OutputExistsError, ValueError) as exc:
        err.write(f"error: predictions.csv: {exc}; use --force to overwrite\n")
        failures += 1
    except OSError as exc:
        err.write(f"error: cannot write predictions.csv ({exc.strerror or exc})\n")
        failures += 1
    if not inputs and not problems:
        err.write("error: no image files were found in the input(s)\n")
        failures += 1
    if kept and dicom.active:  # --resume: the images done before are not made or sent again
        progress.say(f"note: the {kept} image(s) an earlier run finished get no DICOM objects in "
                     "this run; use --force instead of --resume to make them all again")
    failures += dicom.finish(progress.say)
    kept_note = f", {kept} already done" if kept else ""
    failed = len(plan) - explained - kept
    err.write(f"{explained} images explained, {skipped} other files skipped{kept_note}"
              f"{f', {failed} failed' if failed else ''} (outputs in {args.out})\n")
    return 0 if failures == 0 else 1

