"""Command line: `gradcam-viewer [FILES...]` opens the viewer (or hands the files to the one
running); `gradcam-viewer COMMAND ...` runs one of the commands (one module each, listed in
COMMANDS): without a window, except `open`, which hands a study to the viewer. Every command
exits with a code from one table (common.ExitCode). No traceback reaches the user: details go
to the log file."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterator, Mapping

from gradcam_viewer.cli import gui
from gradcam_viewer.cli.common import (
    Command,
    CommandError,
    ExitCode,
    command_parser,
    error,
    quiet_tensorflow,
)

log = logging.getLogger("gradcam_viewer.cli")

# name -> the module of gradcam_viewer.cli that holds its COMMAND, in --help's order
_MODULES = {"explain": "explain", "manifest": "manifest", "calibrate": "calibrate",
            "sanity": "sanity", "evaluate": "evaluate", "query": "query", "retrieve": "retrieve",
            "marks": "marks", "open": "open_study"}


class _Commands(Mapping[str, Command]):
    """The commands by name; a command's module (and what it imports: numpy, the models) loads
    when that command is looked up. A second `gradcam-viewer FILE`, which only hands its file to
    the running viewer, must not pay for every command (it exits in a fraction of a second)."""

    def __getitem__(self, name: str) -> Command:
        module = importlib.import_module(f"{__name__}.{_MODULES[name]}")
        command: Command = module.COMMAND
        return command

    def __iter__(self) -> Iterator[str]:
        return iter(_MODULES)

    def __len__(self) -> int:
        return len(_MODULES)


COMMANDS: Mapping[str, Command] = _Commands()


def run_command(name: str, argv: list[str]) -> int:
    command = COMMANDS[name]
    parser = command_parser(f"gradcam-viewer {name}", command.summary)
    command.add_arguments(parser)
    args = parser.parse_args(argv)
    quiet_tensorflow(args.verbose)
    return command.run(args)


def main(argv: list[str] | None = None) -> int:
    from gradcam_viewer.logs import setup_logging

    argv = list(sys.argv[1:] if argv is None else argv)
    log_file = setup_logging()
    try:
        if argv and argv[0] in COMMANDS:
            return run_command(argv[0], argv[1:])
        return gui.run(argv, COMMANDS)
    except CommandError as exc:
        error(str(exc))
        return exc.code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except SystemExit:
        raise
    except BaseException as exc:
        log.exception("unhandled error")
        sys.stderr.write(f"gradcam-viewer: unexpected error ({type(exc).__name__}). "
                         f"Details are in {log_file}\n")
        return ExitCode.INTERNAL
