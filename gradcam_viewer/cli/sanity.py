"""`gradcam-viewer sanity --model M IMAGES...`: cascading randomisation (trust/sanity.py): a
table on the terminal, sanity.csv and the report (sanity.png, sanity.pdf) in --out. A flagged
model exits with a code of its own (4), whatever else happened, so that a script can tell it
apart from an input that failed (1)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from gradcam_viewer.cli.common import (
    Command,
    CommandError,
    ExitCode,
    Progress,
    add_layer_argument,
    add_method_argument,
    add_model_argument,
    expand_inputs,
)

MAX_IMAGES = 16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", type=Path, help="images or folders (up to 16 used)")
    add_model_argument(parser)
    add_layer_argument(parser)
    add_method_argument(parser)
    parser.add_argument("--steps", type=int, default=8,
                        help="randomisation steps from the top (default 8; 0: all)")
    parser.add_argument("--out", type=Path, default=Path("sanity"), help="output folder")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> ExitCode:
    from gradcam_viewer.cam import CamError
    from gradcam_viewer.imaging import ImageLoadError, load_image
    from gradcam_viewer.models import ModelLoadError, load_model_bundle
    from gradcam_viewer.outputs.export import write_csv
    from gradcam_viewer.outputs.reports import sanity_figure, save_report
    from gradcam_viewer.trust.sanity import cascading_randomisation, table_rows

    err = sys.stderr
    try:
        bundle = load_model_bundle(args.model)
    except ModelLoadError as exc:
        raise CommandError(str(exc)) from exc
    paths, problems, notes, _ = expand_inputs(args.images)
    for line in problems + notes:
        err.write(line + "\n")
    batch = []
    failures = len(problems)
    for path in paths[:MAX_IMAGES]:
        try:
            batch.append(bundle.prepare(load_image(path)))
        except ImageLoadError as exc:
            err.write(f"error: cannot open '{path}': {exc.reason}\n")
            failures += 1
    if not batch:
        raise CommandError("no image could be opened", ExitCode.INPUTS_FAILED)
    if len(paths) > MAX_IMAGES:
        err.write(f"note: the first {MAX_IMAGES} of {len(paths)} images are used\n")
    try:
        with Progress(args.steps or 1, err, unit="step") as progress:
            result = cascading_randomisation(bundle.model, np.concatenate(batch),
                                             args.layer or bundle.target_layer, args.method,
                                             args.steps or None, args.seed, progress.step,
                                             output=bundle.output)
    except CamError as exc:
        raise CommandError(str(exc)) from exc
    rows = table_rows(result)
    for row in rows:
        err.write(f"  {row[0]:>4}  {row[1][:40]:40s} {row[2]:>9} {row[3]:>9}\n")
    err.write(result.verdict() + "\n")
    if not result.weights_unchanged:  # never expected: the copy is randomised, not the model
        raise CommandError("the loaded model's weights changed during the check; this is a "
                           "bug, please report it", ExitCode.INTERNAL)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        write_csv(args.out / "sanity.csv", rows[0], rows[1:], overwrite=True)
        save_report(sanity_figure(result, f"{bundle.name}: {result.method} at {result.layer}, "
                                          f"{result.images} image(s)"), args.out / "sanity")
    except OSError as exc:
        err.write(f"error: cannot write the results ({exc.strerror or exc})\n")
        failures += 1
    else:
        err.write(f"sanity.csv, sanity.png and sanity.pdf in {args.out}\n")
    if result.flagged:
        return ExitCode.FLAGGED
    return ExitCode.INPUTS_FAILED if failures else ExitCode.OK


COMMAND = Command("sanity", "Check that the heatmaps depend on what the model learned.",
                  add_arguments, run)
