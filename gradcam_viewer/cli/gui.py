"""`gradcam-viewer [FILES...]`: the viewer. Its `--help` also lists the commands, one line each,
and the exit codes.

One viewer runs per user: a second `gradcam-viewer FILE` (or `gradcam-viewer open ...`, or a
gradcam-viewer:// link) hands its arguments to the running one and exits 0 (`launch`). The
running viewer reads them with the same parsers (`requests_from`)."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from gradcam_viewer.cli.common import (
    EXIT_CODES_HELP,
    Command,
    CommandError,
    ExitCode,
    add_chexnet_arguments,
    add_model_argument,
    add_verbose_argument,
    error,
    quiet_tensorflow,
)
from gradcam_viewer.launch.handover import Handover
from gradcam_viewer.launch.links import LinkError, file_url_path, is_link, parse_link
from gradcam_viewer.launch.requests import (
    BadLink,
    LaunchRequest,
    ModelChoice,
    OpenFiles,
    OpenStudy,
)

log = logging.getLogger(__name__)


def commands_help(commands: Sequence[Command]) -> str:
    """One line per command, as `gradcam-viewer --help` lists them."""
    width = max(len(c.name) for c in commands) + 2
    return "\n".join(["commands (gradcam-viewer COMMAND --help tells more):",
                      *(f"  {c.name:<{width}}{c.summary}" for c in commands)])


class MessageParser(argparse.ArgumentParser):
    """A parser for the arguments another process handed the running viewer: a mistake is an
    exception to report, never an exit (nor help printed) of the viewer."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(add_help=False, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        raise CommandError(message)


class ViewerParser(argparse.ArgumentParser):
    """The viewer's parser. Its help lists the commands, looked up only when help is shown
    (importing every command is what a hand-over to the running viewer must not pay)."""

    def __init__(self, commands: Mapping[str, Command]) -> None:
        super().__init__(
            prog="gradcam-viewer",
            usage="gradcam-viewer [options] [FILES ...]\n       gradcam-viewer COMMAND ...",
            description="Chest radiographs with the Grad-CAM heatmaps of a classifier: opens "
                        "the\nviewer, or runs one of the commands below without a window.",
            formatter_class=argparse.RawDescriptionHelpFormatter)
        self._commands = commands

    def format_help(self) -> str:
        self.epilog = f"{commands_help(list(self._commands.values()))}\n\n{EXIT_CODES_HELP}"
        return super().format_help()


def parser(commands: Mapping[str, Command], handed: bool = False) -> argparse.ArgumentParser:
    """The viewer's parser; `handed`: for arguments handed over by another process."""
    result = MessageParser(prog="gradcam-viewer") if handed else ViewerParser(commands)
    result.add_argument("files", nargs="*",
                        help="images or folders to open, or a gradcam-viewer:// link")
    add_model_argument(result)
    add_chexnet_arguments(result)
    result.add_argument("--self-test", action="store_true",
                        help="open a bundled sample, explain it, check the result, exit 0/1")
    result.add_argument("--version", action="store_true")
    add_verbose_argument(result)
    return result


def run(argv: list[str], commands: Mapping[str, Command]) -> int:
    options = parser(commands)
    args = options.parse_args(argv)
    if args.reference_images and not args.chexnet_weights:
        options.error("--reference-images goes with --chexnet-weights")
    if args.version:
        from gradcam_viewer import __version__

        print(f"gradcam-viewer {__version__}")
        return ExitCode.OK
    if args.self_test:  # a check of this installation: never hands over, never listens
        quiet_tensorflow(args.verbose)
        from gradcam_viewer.ui.app import run_gui

        return run_gui(args)
    return launch(argv, requests_of(args, Path.cwd()), args.verbose)


def launch(argv: list[str], requests: list[LaunchRequest], verbose: bool = False) -> int:
    """Hand `argv` to the running viewer, or start the viewer and carry out `requests`."""
    from gradcam_viewer.ui.single_instance import Alone, Claimed, claim

    claimed = claim(Handover(tuple(argv), os.getcwd()))
    if not isinstance(claimed, Alone | Claimed):  # the running viewer's reply
        if claimed.accepted:
            return ExitCode.OK
        error(claimed.reason)
        return ExitCode.USAGE
    if isinstance(claimed, Alone):
        log.warning("starting a viewer of its own: %s", claimed.reason)
    quiet_tensorflow(verbose)
    from gradcam_viewer.ui.app import run_gui

    return run_gui(argparse.Namespace(files=[], self_test=False), requests,
                   claimed if isinstance(claimed, Claimed) else None)


def requests_of(args: argparse.Namespace, cwd: Path) -> list[LaunchRequest]:
    """What the viewer's arguments ask for: the files (relative to `cwd`) with the model named,
    then each gradcam-viewer:// link (refused ones as BadLink, for the window to explain)."""
    paths: list[Path] = []
    links: list[LaunchRequest] = []
    for argument in args.files:
        argument = str(argument)
        if is_link(argument):
            try:
                links.append(OpenStudy(parse_link(argument), confirm=True))
            except LinkError as exc:
                links.append(BadLink(str(exc)))
            continue
        paths.append(cwd / (file_url_path(argument) or Path(argument)))
    model = None
    if args.chexnet_weights:
        reference = args.reference_images
        model = ModelChoice("chexnet", cwd / args.chexnet_weights,
                            cwd / reference if reference else None)
    elif args.model:
        model = ModelChoice("keras", cwd / args.model)
    files: list[LaunchRequest] = [OpenFiles(tuple(paths), model)] if paths or model else []
    return files + links


def requests_from(handover: Handover) -> list[LaunchRequest]:
    """What another process's arguments ask the running viewer for (raises CommandError)."""
    argv, cwd = list(handover.argv), Path(handover.cwd)
    if argv[:1] == ["open"]:
        from gradcam_viewer.cli import open_study

        return [OpenStudy(open_study.study_of(open_study.handed_parser().parse_args(argv[1:])))]
    args = parser({}, handed=True).parse_args(argv)
    if args.self_test or args.version:
        raise CommandError("--self-test and --version are not for the running viewer")
    if args.reference_images and not args.chexnet_weights:
        raise CommandError("--reference-images goes with --chexnet-weights")
    return requests_of(args, cwd)
