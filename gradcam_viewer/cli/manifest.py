"""`gradcam-viewer manifest MODEL ...`: write the manifest of a model that has none, beside it,
so the viewer and `explain` open it with the right labels, preprocessing and output meaning."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gradcam_viewer.cli.common import Command, CommandError, ExitCode
from gradcam_viewer.models.authoring import PRESETS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="the .keras or .h5 model")
    parser.add_argument("--labels", default=None,
                        help="label names in the model's output order, comma-separated")
    parser.add_argument("--labels-file", type=Path, default=None,
                        help="label names from a text file (one per line) or a CSV header row")
    parser.add_argument("--preprocessing", required=True, choices=PRESETS,
                        help="tf: [-1, 1]; torch: ImageNet mean/std; caffe: BGR minus ImageNet "
                             "means; none: raw 0-255; unit: [0, 1]; zscore: per image; "
                             "fixed: --mean/--std")
    parser.add_argument("--activation", choices=["sigmoid", "softmax"], default=None,
                        help="for a model ending in a linear layer (logits): sigmoid for "
                             "multi-label, softmax for one-of-N. Without it, its outputs are "
                             "shown as scores, not probabilities")
    parser.add_argument("--layer", default=None, help="Grad-CAM target layer (default: auto)")
    parser.add_argument("--output", default=None,
                        help="for a model with several outputs: the one that holds the class "
                             "scores (its name, or the name of the layer that produces it)")
    parser.add_argument("--size", default=None,
                        help="HEIGHTxWIDTH, needed when the model accepts any input size")
    parser.add_argument("--name", default=None, help="display name (default: the file name)")
    parser.add_argument("--colour", choices=["grey", "rgb"], default="grey",
                        help="grey: colour images are turned into grey first (default); rgb: "
                             "colour images keep their channels")
    parser.add_argument("--intended-use", default=None)
    parser.add_argument("--mean", type=float, default=None, help="for --preprocessing fixed")
    parser.add_argument("--std", type=float, default=None, help="for --preprocessing fixed")
    parser.add_argument("--force", action="store_true", help="overwrite an existing manifest")


def run(args: argparse.Namespace) -> ExitCode:
    from gradcam_viewer.cam import CamError
    from gradcam_viewer.models import ModelLoadError
    from gradcam_viewer.models.authoring import (
        SetupError,
        build_manifest,
        labels_from_file,
        manifest_path_beside,
        parse_size,
        split_labels,
        write_beside,
    )
    from gradcam_viewer.models.bundle import bundle_for, check_model_path
    from gradcam_viewer.models.loaders import load_keras_model, model_location
    from gradcam_viewer.models.manifest import sha256_of
    from gradcam_viewer.models.suggest import final_activation
    from gradcam_viewer.outputs.safe_write import OutputExistsError

    path: Path = model_location(args.model)  # a SavedModel's saved_model.pb: its folder
    target = manifest_path_beside(path)
    try:
        if args.labels and args.labels_file:
            raise SetupError("Give either --labels or --labels-file, not both.")
        if args.labels_file:
            labels = labels_from_file(args.labels_file)
        elif args.labels:
            labels = split_labels(args.labels)
        else:
            raise SetupError("Name the labels with --labels A,B,... or --labels-file FILE.")
        size = parse_size(args.size) if args.size else None
        check_model_path(path)
        if target.exists() and not args.force:
            raise SetupError(f"'{target.name}' already exists beside the model; use --force to "
                             "replace it.")
        model = load_keras_model(path).model
        from gradcam_viewer.cam.graph import check_model, resolve_target

        index = check_model(model, args.output)
        layer = resolve_target(model, args.layer)[1] if args.layer else "auto"
        shape = tuple(model.inputs[0].shape)
        manifest = build_manifest(
            model_path=path, sha256=sha256_of(path), labels=labels,
            preset=args.preprocessing, n_outputs=int(model.outputs[index].shape[-1]),
            model_size=(shape[1], shape[2]), channels=int(shape[3] or 3),
            final_activation=final_activation(model, index), activation=args.activation,
            size=size, layer=layer, name=args.name, colour=args.colour,
            intended_use=args.intended_use, mean=args.mean, std=args.std, output=args.output)
        bundle = bundle_for(model, manifest, path)  # the checks a later load will make
        written = write_beside(path, manifest, overwrite=args.force)
    except (SetupError, ModelLoadError, CamError) as exc:
        raise CommandError(str(exc)) from exc
    except OutputExistsError as exc:
        raise CommandError(f"'{target.name}' already exists beside the model; use --force.") \
            from exc
    except OSError as exc:
        raise CommandError(f"cannot write '{target.name}': {exc.strerror or exc}") from exc
    for notice in bundle.notices:
        sys.stderr.write(f"note: {notice}\n")
    print(f"wrote {written}")
    print(f"{len(labels)} labels, preprocessing {args.preprocessing}, outputs: "
          f"{bundle.output_kind}"
          + (f" ({bundle.manifest['output_activation']} of logits)"
             if bundle.output_kind == "logits" else ""))
    return ExitCode.OK


COMMAND = Command("manifest", "Write a manifest beside a model that has none.", add_arguments,
                  run)
