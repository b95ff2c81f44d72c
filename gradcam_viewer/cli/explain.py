"""`gradcam-viewer explain`: heatmaps and predictions for many images, without a window.

A run goes through five steps, one function each: `validate` the options, `load` the model,
`plan` where every output goes (and what an earlier run already finished), explain the rest
(`explain_local`, or `explain_on_ray` on a cluster), and `summarise` (predictions.csv, the
DICOM send, the closing line and the exit code).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gradcam_viewer.cli.common import (
    Command,
    CommandError,
    ExitCode,
    Inputs,
    Progress,
    add_chexnet_arguments,
    add_layer_argument,
    add_method_argument,
    add_model_argument,
    add_send_argument,
    error,
    expand_inputs,
)
from gradcam_viewer.render.colormaps import COLORMAPS, DEFAULT_COLORMAP

if TYPE_CHECKING:
    from gradcam_viewer.batch.job import JobSettings
    from gradcam_viewer.cam.explainer import Explainer
    from gradcam_viewer.models.bundle import ModelBundle
    from gradcam_viewer.outputs.dicom.run import DicomRun
    from gradcam_viewer.outputs.layout import Planned
    from gradcam_viewer.trust.ood import OodCheck

log = logging.getLogger(__name__)


class _DeprecatedLabels(argparse.Action):
    """`--labels`, the old name of `--overlays` (in `evaluate` and `manifest` it names label
    columns): still accepted for one release, with a warning."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        sys.stderr.write("warning: explain --labels is deprecated and goes in the next release; "
                         "use --overlays\n")
        setattr(namespace, self.dest, values)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", type=Path, help="PNG, JPEG, TIFF, BMP or DICOM files")
    add_model_argument(parser)
    add_chexnet_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("gradcam-out"), help="output folder")
    add_method_argument(parser)
    parser.add_argument("--overlays", default="all", metavar="LABELS",
                        help="comma-separated label names to draw overlays for, 'all' (default) "
                             "or 'none' (predictions and JSON only)")
    parser.add_argument("--labels", dest="overlays", action=_DeprecatedLabels,
                        help=argparse.SUPPRESS)
    add_layer_argument(parser)
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
    parser.add_argument("--dicom-out", type=Path, default=None, metavar="DIR",
                        help="also write DICOM objects (Secondary Capture, Parametric Map, "
                             "structured report) into DIR; they keep the patient module")
    add_send_argument(parser, "the DICOM objects")


# --- 1. validate -------------------------------------------------------------------------

def validate(args: argparse.Namespace) -> None:
    """Refuse options that cannot work together, before any work (CommandError)."""
    if args.reference_images and not args.chexnet_weights:
        raise CommandError("--reference-images goes with --chexnet-weights")
    if args.batch_size < 1:
        raise CommandError("--batch-size must be at least 1")
    if not 0.0 <= args.opacity <= 1.0:
        raise CommandError("--opacity must be between 0 and 1")
    if args.frame < 1:
        raise CommandError("--frame counts from 1")
    if args.ray_workers is not None and (args.ray is None or args.ray_workers < 1):
        raise CommandError("--ray-workers goes with --ray and must be at least 1")
    if args.ray is not None and (args.dicom_out or args.send):
        raise CommandError("--dicom-out and --send do not go with --ray yet; run them on this "
                           "machine")


def settings_of(args: argparse.Namespace) -> JobSettings:
    from gradcam_viewer.batch.job import JobSettings

    return JobSettings(model=args.model, chexnet_weights=args.chexnet_weights,
                       reference_images=args.reference_images, layer=args.layer,
                       method=args.method, frame=args.frame, opacity=args.opacity,
                       colormap=args.colormap, include_ids=not args.no_ids,
                       overwrite=args.force or args.resume)


# --- 2. load -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Loaded:
    bundle: ModelBundle
    explainer: Explainer
    ood_check: OodCheck


def load(settings: JobSettings) -> Loaded:
    """The model, its explainer and out-of-distribution check; says what the user should know
    of them (no manifest, not calibrated)."""
    from gradcam_viewer.batch.job import explainer_for, load_bundle
    from gradcam_viewer.cam import CamError
    from gradcam_viewer.models import ModelLoadError
    from gradcam_viewer.trust.ood import check_for

    try:
        bundle = load_bundle(settings)
        explainer = explainer_for(bundle, settings)
        ood_check = check_for(bundle, explainer)
    except (ModelLoadError, CamError) as exc:
        raise CommandError(str(exc)) from exc
    for notice in bundle.notices:
        sys.stderr.write(f"note: {notice}\n")
    if not ood_check.calibrated:
        sys.stderr.write(f"note: out-of-distribution warning: {ood_check.status} "
                         "(gradcam-viewer calibrate MODEL FOLDER...)\n")
    return Loaded(bundle, explainer, ood_check)


def overlay_labels(choice: str, labels: list[str]) -> list[str]:
    """The labels `--overlays` names: 'all', 'none' or a comma-separated list."""
    if choice.strip().lower() == "all":
        return list(labels)
    if choice.strip().lower() == "none":
        return []
    names = [x.strip() for x in choice.split(",") if x.strip()]
    unknown = [n for n in names if n not in labels]
    if unknown:
        raise CommandError(f"unknown label(s) {', '.join(unknown)}; the model has: "
                           f"{', '.join(labels)}")
    return names


# --- 3. plan -----------------------------------------------------------------------------

@dataclass
class Plan:
    """Where every output goes, and which images an earlier run already finished."""

    settings: JobSettings  # with the overlays to draw
    inputs: Inputs
    items: list[Planned]
    csv_path: Path  # predictions.csv
    header: list[str]  # its columns
    listed: set[tuple[str, int]]  # (path, frame) of the rows it already has
    todo: list[tuple[int, Planned]] = field(default_factory=list)  # (place in items, item)
    kept: dict[int, list[str] | None] = field(default_factory=dict)  # finished: its row to add


def plan(args: argparse.Namespace, bundle: ModelBundle, settings: JobSettings,
         dicom: DicomRun) -> Plan:
    from gradcam_viewer.outputs.layout import common_root, plan_outputs
    from gradcam_viewer.outputs.records import csv_header
    from gradcam_viewer.outputs.resume import finished, row_from_record, rows_already_written

    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"cannot create the output folder '{args.out}': "
                           f"{exc.strerror}") from exc
    inputs = expand_inputs(args.images)
    overlays = list(settings.overlays)
    items = plan_outputs(inputs.paths, common_root(args.images), args.out, overlays)
    csv_path = args.out / "predictions.csv"
    header = csv_header(bundle.labels, settings.include_ids,
                        calls=bundle.identity.operating_points is not None)
    try:
        listed = rows_already_written(csv_path, header, args.force, args.resume)
    except ValueError as exc:
        raise CommandError(str(exc), ExitCode.USAGE if args.resume
                           else ExitCode.INPUTS_FAILED) from exc
    result = Plan(settings, inputs, items, csv_path, header, listed)
    model = bundle.identity
    for index, item in enumerate(items):
        done = args.resume and finished(item, overlays, settings.frame, settings.method, model,
                                        settings.include_ids)
        if done and dicom.active and not dicom.complete(item, overlays, done[1]):
            done = None  # explained again to make its DICOM objects; its row is kept
        if done:
            result.kept[index] = (None if done[0].key in listed else
                                  row_from_record(*done, bundle.labels, settings.include_ids))
        else:
            result.todo.append((index, item))
    return result


# --- 4. explain --------------------------------------------------------------------------

@dataclass
class Tally:
    """What the run has done, image by image."""

    plan: Plan
    progress: Progress
    rows: dict[int, list[str]] = field(default_factory=dict)  # by place in the plan: the CSV
    # keeps the input order
    failures: int = 0
    explained: int = 0

    def done(self, index: int, item: Planned, row: list[str], warning: str | None) -> None:
        if (row[0], int(row[1])) not in self.plan.listed:
            self.rows[index] = row
        self.explained += 1
        if warning:  # out of distribution
            self.progress.say(warning)
        self.progress.step(item.rel)

    def failed(self, item: Planned, problem: BaseException | str) -> None:
        from gradcam_viewer.batch.job import failure_message
        from gradcam_viewer.imaging import ImageLoadError

        self.failures += 1
        if isinstance(problem, Exception) and not isinstance(problem, (OSError, ImageLoadError)):
            log.error("failed to explain %s", item.source.name, exc_info=problem)
        self.progress.say(problem if isinstance(problem, str) else failure_message(item, problem))
        self.progress.step(item.rel)


def explain_local(tally: Tally, loaded: Loaded, dicom: DicomRun, batch_size: int) -> None:
    """The batch pipeline on this machine: decode and write in threads around the model."""
    from gradcam_viewer.batch.job import ExplainJob
    from gradcam_viewer.batch.pipeline import run_pipeline

    job = ExplainJob(loaded.bundle, loaded.explainer, tally.plan.settings,
                     ood_check=loaded.ood_check, dicom=dicom if dicom.active else None)
    for done in run_pipeline(tally.plan.todo, lambda t: job.decode(t[1]), job.explain,
                             lambda t, d, e: job.write(t[1], d, e), batch_size=batch_size,
                             write_workers=max(2, (os.cpu_count() or 2) - 1)):
        index, item = done.item
        if done.result is not None:
            tally.done(index, item, done.result.row, done.result.warning)
        else:
            tally.failed(item, done.error or RuntimeError("no result"))


def explain_on_ray(tally: Tally, address: str, batch_size: int, workers: int | None) -> None:
    """The same stages on Ray actors; what they finished stays written if the cluster fails."""
    from gradcam_viewer.batch.ray_runner import RayUnavailableError, explain_on_ray as on_ray

    try:
        for index, item, row, message in on_ray(tally.plan.todo, tally.plan.settings, address,
                                                batch_size, workers):
            # with a row, the message is the image's warning; without, why it failed
            if row:
                tally.done(index, item, row, message)
            else:
                tally.failed(item, message or "error: no result")
    except RayUnavailableError as exc:
        raise CommandError(str(exc)) from exc
    except Exception as exc:  # the cluster failed beyond Ray's retries: keep what is done
        log.error("the Ray run stopped", exc_info=exc)
        tally.progress.say(f"error: the Ray run stopped ({type(exc).__name__}); the images "
                           "done so far are written, --resume completes the run")
        tally.failures += 1


# --- 5. summarise ------------------------------------------------------------------------

def summarise(tally: Tally, dicom: DicomRun, resume: bool, force: bool, out: Path) -> ExitCode:
    """predictions.csv, the DICOM send, the closing line; the exit code."""
    from gradcam_viewer.outputs.export import append_csv, write_csv
    from gradcam_viewer.outputs.safe_write import OutputExistsError

    plan, say = tally.plan, tally.progress.say
    ordered = [tally.rows[k] for k in sorted(tally.rows)]
    try:
        if resume and plan.csv_path.exists():
            append_csv(plan.csv_path, plan.header, ordered)
        elif ordered:
            write_csv(plan.csv_path, plan.header, ordered, force)
    except (OutputExistsError, ValueError) as exc:
        error(f"predictions.csv: {exc}; use --force to overwrite")
        tally.failures += 1
    except OSError as exc:
        error(f"cannot write predictions.csv ({exc.strerror or exc})")
        tally.failures += 1
    if not plan.inputs.paths and not plan.inputs.errors:
        error("no image files were found in the input(s)")
        tally.failures += 1
    kept = len(plan.kept)
    if kept and dicom.active and not dicom.keeps_files:  # --send alone: nothing tells what
        # an earlier run sent, so the images it finished are not made or sent again
        say(f"note: the {kept} image(s) an earlier run finished get no DICOM objects in this "
            "run; add --dicom-out DIR to complete those missing there, or use --force "
            "instead of --resume to make them all again")
    tally.failures += dicom.finish(say)
    kept_note = f", {kept} already done" if kept else ""
    failed = len(plan.items) - tally.explained - kept
    sys.stderr.write(f"{tally.explained} images explained, {plan.inputs.skipped} other files "
                     f"skipped{kept_note}{f', {failed} failed' if failed else ''} "
                     f"(outputs in {out})\n")
    return ExitCode.OK if tally.failures == 0 else ExitCode.INPUTS_FAILED


def run(args: argparse.Namespace) -> ExitCode:
    from gradcam_viewer.outputs.dicom.run import DicomRun
    from gradcam_viewer.outputs.records import has_uid_like

    validate(args)
    dicom = DicomRun(args.dicom_out, args.send, args.out)
    if problem := dicom.start(args.no_ids):
        raise CommandError(problem)
    settings = settings_of(args)
    loaded = load(settings)
    settings = replace(settings,
                       overlays=tuple(overlay_labels(args.overlays, loaded.bundle.labels)))
    work = plan(args, loaded.bundle, settings, dicom)
    with Progress(len(work.items)) as progress:
        tally = Tally(work, progress, failures=len(work.inputs.errors))
        for line in work.inputs.errors + work.inputs.notes:
            progress.say(line)
        named_by_uid = sum(has_uid_like(item.rel) for item in work.items) if args.no_ids else 0
        if named_by_uid:
            progress.say(f"note: {named_by_uid} input path(s) look like they hold DICOM UIDs; "
                         "--no-ids leaves paths as they are, so rename those files before "
                         "sharing")
        for index, row in work.kept.items():
            if row is not None:
                tally.rows[index] = row
            progress.step(work.items[index].rel)
        if args.ray is not None and work.todo:
            explain_on_ray(tally, args.ray, args.batch_size, args.ray_workers)
        else:
            explain_local(tally, loaded, dicom, args.batch_size)
        return summarise(tally, dicom, args.resume, args.force, args.out)


COMMAND = Command("explain", "Explain images without a window: overlays, JSON and a CSV.",
                  add_arguments, run)
