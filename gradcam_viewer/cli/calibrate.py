"""`gradcam-viewer calibrate MODEL FOLDER...`: the reference for the out-of-distribution
warning, from images like those the model was validated on (see trust/ood.py)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gradcam_viewer.cli.common import Command, CommandError, ExitCode, Progress, expand_inputs

if TYPE_CHECKING:
    from gradcam_viewer.cam.explainer import Explainer
    from gradcam_viewer.models.bundle import ModelBundle

log = logging.getLogger(__name__)
BATCH = 16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="a .keras or .h5 model with a manifest")
    parser.add_argument("folders", nargs="+", type=Path,
                        help="folders (or files) of images like those the model was checked on")
    parser.add_argument("--holdout", type=float, default=0.2,
                        help="share of the images held out to set the threshold (default 0.2)")
    parser.add_argument("--layer", default=None,
                        help="top-level layer whose pooled output is compared (default: the "
                             "model's target layer)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out split")


def image_features(bundle: ModelBundle, explainer: Explainer, paths: list[Path],
                   step: Callable[[str], None] | None = None,
                   say: Callable[[str], None] | None = None) -> np.ndarray:
    """Pooled features of every image that opens (in batches); the others are reported."""
    from gradcam_viewer.imaging import ImageLoadError, load_image

    feats: list[np.ndarray] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        if batch:
            pooled = explainer.explain(np.concatenate(batch)).features
            assert pooled is not None, "the engine pools features on every run"
            feats.append(pooled)
            batch.clear()

    for path in paths:
        try:
            batch.append(bundle.prepare(load_image(path)))
        except ImageLoadError as exc:
            if say:
                say(f"error: cannot open '{path}': {exc.reason}")
        if len(batch) >= BATCH:
            flush()
        if step:
            step(path.name)
    flush()
    return np.concatenate(feats) if feats else np.zeros((0, 0), np.float32)


def run(args: argparse.Namespace) -> ExitCode:
    from gradcam_viewer.cam import CamError, Explainer
    from gradcam_viewer.models import ModelLoadError, load_model_bundle
    from gradcam_viewer.trust.ood import (
        CalibrationError,
        calibrate_features,
        store_calibration,
    )

    err = sys.stderr
    if not 0.0 < args.holdout < 1.0:
        raise CommandError(f"--holdout must be between 0 and 1 (got {args.holdout})")
    try:
        bundle = load_model_bundle(args.model)
        explainer = Explainer(bundle.model, layer=bundle.target_layer,
                              feature_layer=args.layer, output=bundle.output)
    except (ModelLoadError, CamError) as exc:
        raise CommandError(str(exc)) from exc
    if not bundle.has_manifest:
        raise CommandError(f"'{args.model.name}' has no manifest; write one first "
                           "(gradcam-viewer manifest MODEL ...)")
    paths, problems, notes, _ = expand_inputs(args.folders)
    for line in problems + notes:
        err.write(line + "\n")
    with Progress(len(paths), err) as progress:
        features = image_features(bundle, explainer, paths, progress.step, progress.say)
    try:
        reference = calibrate_features(features, holdout=args.holdout, seed=args.seed)
        sidecar = store_calibration(args.model, reference, explainer.feature_layer,
                                    len(features), args.holdout)
    except CalibrationError as exc:
        raise CommandError(str(exc), ExitCode.INPUTS_FAILED) from exc
    except OSError as exc:
        raise CommandError(f"cannot write the calibration beside the model ({exc.strerror})",
                           ExitCode.INPUTS_FAILED) from exc
    err.write(f"calibrated on {len(features)} images at layer '{explainer.feature_layer}': "
              f"k = {reference.k}, threshold {reference.threshold:.4f} (95th percentile of "
              f"{len(reference.holdout_scores)} held-out images); {sidecar.name} "
              f"({sidecar.stat().st_size // 1024} KB) is named in the manifest\n")
    # as for explain: an input named but missing, or an image that did not open, is a failure
    return ExitCode.INPUTS_FAILED if problems or len(features) < len(paths) else ExitCode.OK


COMMAND = Command("calibrate", "Store the out-of-distribution reference of a model.",
                  add_arguments, run)
