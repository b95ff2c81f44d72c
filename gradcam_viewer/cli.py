"""Command line: `gradcam-viewer [FILES...]` opens the viewer; `gradcam-viewer explain ...` runs
headless; `gradcam-viewer manifest MODEL ...` writes a model's manifest. No traceback reaches
the user: details go to the log file."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("gradcam_viewer.cli")


def _gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradcam-viewer",
        description="Chest radiographs with the Grad-CAM heatmaps of a classifier. "
                    "Run 'gradcam-viewer explain --help' for the headless command, "
                    "'gradcam-viewer manifest --help' to set up a model without a manifest.")
    parser.add_argument("files", nargs="*", type=Path, help="images or folders to open")
    parser.add_argument("--model", type=Path, default=None, help="a .keras or .h5 model")
    parser.add_argument("--chexnet-weights", type=Path, default=None,
                        help="weights for the CheXNet DenseNet121 preset")
    parser.add_argument("--reference-images", type=Path, default=None,
                        help="with --chexnet-weights: a folder of training images whose mean/std "
                             "normalise every image (stored beside the weights); default: "
                             "per-image z-score")
    parser.add_argument("--self-test", action="store_true",
                        help="open a bundled sample, explain it, check the result, exit 0/1")
    parser.add_argument("--version", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    from gradcam_viewer.logs import setup_logging

    argv = list(sys.argv[1:] if argv is None else argv)
    log_file = setup_logging()
    try:
        if argv and argv[0] == "explain":
            from gradcam_viewer import explain_cmd

            parser = argparse.ArgumentParser(prog="gradcam-viewer explain",
                                             description="Explain images without a window.")
            explain_cmd.add_arguments(parser)
            return explain_cmd.run(parser.parse_args(argv[1:]))
        if argv and argv[0] == "manifest":
            from gradcam_viewer import manifest_cmd

            parser = argparse.ArgumentParser(
                prog="gradcam-viewer manifest",
                description="Write the manifest of a model that has none, beside the model.")
            manifest_cmd.add_arguments(parser)
            return manifest_cmd.run(parser.parse_args(argv[1:]))
        parser = _gui_parser()
        args = parser.parse_args(argv)
        if args.reference_images and not args.chexnet_weights:
            parser.error("--reference-images goes with --chexnet-weights")
        if args.version:
            from gradcam_viewer import __version__

            print(f"gradcam-viewer {__version__}")
            return 0
        from gradcam_viewer.ui.app import run_gui

        return run_gui(args)
    except KeyboardInterrupt:
        return 130
    except SystemExit:
        raise
    except BaseException as exc:
        log.exception("unhandled error")
        sys.stderr.write(f"gradcam-viewer: unexpected error ({type(exc).__name__}). "
                         f"Details are in {log_file}\n")
        return 3
