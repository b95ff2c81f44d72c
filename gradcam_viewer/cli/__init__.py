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
    from gradcam_viewer.cli.explain import add_chexnet_arguments

    parser = argparse.ArgumentParser(
        prog="gradcam-viewer",
        description="Chest radiographs with the Grad-CAM heatmaps of a classifier. "
                    "Run 'gradcam-viewer explain --help' for the headless command, "
                    "'gradcam-viewer manifest --help' to set up a model without a manifest.")
    parser.add_argument("files", nargs="*", type=Path, help="images or folders to open")
    parser.add_argument("--model", type=Path, default=None, help="a .keras or .h5 model")
    add_chexnet_arguments(parser)
    parser.add_argument("--self-test", action="store_true",
                        help="open a bundled sample, explain it, check the result, exit 0/1")
    parser.add_argument("--version", action="store_true")
    return parser


# Headless commands: name -> (module under gradcam_viewer, description). Each module has
# add_arguments(parser) and run(args) -> exit code.
COMMANDS = {
    "explain": ("explain", "Explain images without a window."),
    "manifest": ("manifest", "Write the manifest of a model that has none, beside the "
                                 "model."),
    # Can this output be trusted? (issue 13)
    "calibrate": ("calibrate", "Store the reference of the out-of-distribution warning: "
                                   "images like those the model was checked on."),
    "sanity": ("sanity", "Cascading randomisation: do the heatmaps depend on what the "
                             "model learned?"),
    "evaluate": ("evaluate", "AUROC and localisation measured on your own labels and "
                                 "boxes."),
}


def _run_command(argv: list[str]) -> int:
    import importlib

    module_name, description = COMMANDS[argv[0]]
    module = importlib.import_module(f"gradcam_viewer.cli.{module_name}")
    parser = argparse.ArgumentParser(prog=f"gradcam-viewer {argv[0]}", description=description)
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv[1:]))


def main(argv: list[str] | None = None) -> int:
    from gradcam_viewer.logs import setup_logging

    argv = list(sys.argv[1:] if argv is None else argv)
    log_file = setup_logging()
    try:
        if argv and argv[0] in COMMANDS:
            return _run_command(argv)
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
