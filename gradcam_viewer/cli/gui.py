"""`gradcam-viewer [FILES...]`: the viewer. Its `--help` also lists the commands, one line each,
and the exit codes."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from gradcam_viewer.cli.common import (
    EXIT_CODES_HELP,
    Command,
    ExitCode,
    add_chexnet_arguments,
    add_model_argument,
    add_verbose_argument,
    quiet_tensorflow,
)


def commands_help(commands: Sequence[Command]) -> str:
    """One line per command, as `gradcam-viewer --help` lists them."""
    width = max(len(c.name) for c in commands) + 2
    return "\n".join(["commands (gradcam-viewer COMMAND --help tells more):",
                      *(f"  {c.name:<{width}}{c.summary}" for c in commands)])


def parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(
        prog="gradcam-viewer",
        usage="gradcam-viewer [options] [FILES ...]\n       gradcam-viewer COMMAND ...",
        description="Chest radiographs with the Grad-CAM heatmaps of a classifier: opens the\n"
                    "viewer, or runs one of the commands below without a window.",
        epilog=f"{commands_help(commands)}\n\n{EXIT_CODES_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    result.add_argument("files", nargs="*", type=Path, help="images or folders to open")
    add_model_argument(result)
    add_chexnet_arguments(result)
    result.add_argument("--self-test", action="store_true",
                        help="open a bundled sample, explain it, check the result, exit 0/1")
    result.add_argument("--version", action="store_true")
    add_verbose_argument(result)
    return result


def run(argv: list[str], commands: Sequence[Command]) -> int:
    options = parser(commands)
    args = options.parse_args(argv)
    if args.reference_images and not args.chexnet_weights:
        options.error("--reference-images goes with --chexnet-weights")
    if args.version:
        from gradcam_viewer import __version__

        print(f"gradcam-viewer {__version__}")
        return ExitCode.OK
    quiet_tensorflow(args.verbose)
    from gradcam_viewer.ui.app import run_gui

    return run_gui(args)
