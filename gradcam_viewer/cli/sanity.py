"""`gradcam-viewer sanity --model M IMAGES...`: cascading randomisation (trust/sanity.py): a
table on the terminal, sanity.csv and sanity.png in --out. Exit codes as for explain (0 passed,
1 an input named but missing or unopened, 2 nothing could be checked), 3 the model changed, and
4 flagged: a code of its own, whatever else happened, so that a script can tell it apart."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
MAX_IMAGES = 16
FLAGGED = 4  # the exit code of a flagged model


def add_arguments(parser: Any) -> None:
    parser.add_argument("images", nargs="+", type=Path, help="images or folders (up to 16 used)")
    parser.add_argument("--model", type=Path, default=None,
                        help="a .keras or .h5 model (default: the bundled demo model)")
    parser.add_argument("--layer", default=None, help="target layer (default: manifest or auto)")
    parser.add_argument("--method", default="gradcam",
                        choices=["gradcam", "gradcam++", "hirescam", "layercam"])
    parser.add_argument("--steps", type=int, default=8,
                        help="randomisation steps from the top (default 8; 0: all)")
    parser.add_argument("--out", type=Path, default=Path("sanity"), help="output folder")
    parser.add_argument("--seed", type=int, default=0)


def run(args: Any) -> int:
    from gradcam_viewer.cam import CamError
    from gradcam_viewer.cli.explain import Progress, expand_inputs
    from gradcam_viewer.outputs.export import write_csv
    from gradcam_viewer.imaging import ImageLoadError, load_image
    from gradcam_viewer.models import ModelLoadError, load_model_bundle
    from gradcam_viewer.outputs.safe_write import write_atomic
    from gradcam_viewer.trust.sanity import (
        cascading_randomisation,
        plot_image,
        table_rows,
    )

    err = sys.stderr
    try:
        bundle = load_model_bundle(args.model)
    except ModelLoadError as exc:
        err.write(f"error: {exc}\n")
        return 2
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
        err.write("error: no image could be opened\n")
        return 2
    if len(paths) > MAX_IMAGES:
        err.write(f"note: the first {MAX_IMAGES} of {len(paths)} images are used\n")
    progress = Progress(args.steps or 1, err)
    try:
        result = cascading_randomisation(bundle.model, np.concatenate(batch),
                                         args.layer or bundle.target_layer, args.method,
                                         args.steps or None, args.seed, progress.step,
                                         output=bundle.output)
    except CamError as exc:
        err.write(f"error: {exc}\n")
        return 2
    rows = table_rows(result)
    for row in rows:
        err.write(f"  {row[0]:>4}  {row[1][:40]:40s} {row[2]:>9} {row[3]:>9}\n")
    err.write(result.verdict() + "\n")
    if not result.weights_unchanged:  # never expected: the copy is randomised, not the model
        err.write("error: the loaded model's weights changed during the check\n")
        return 3
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        write_csv(args.out / "sanity.csv", rows[0], rows[1:], overwrite=True)
        image = plot_image(result, f"{bundle.name}: {result.method} at {result.layer}, "
                                   f"{result.images} image(s)")
        write_atomic(args.out / "sanity.png", lambda tmp: image.save(tmp, format="PNG"), True)
    except OSError as exc:
        err.write(f"error: cannot write the results ({exc.strerror or exc})\n")
        failures += 1
    else:
        err.write(f"sanity.csv and sanity.png in {args.out}\n")
    if result.flagged:
        return FLAGGED
    return 1 if failures else 0
