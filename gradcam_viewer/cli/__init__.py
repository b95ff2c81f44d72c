"""Command line: `gradcam-viewer [FILES...]` opens the viewer; `gradcam-viewer COMMAND ...` runs
one of the commands without a window (one module each, listed in COMMANDS). Every command
exits with a code from one table (common.ExitCode). No traceback reaches the user: details go
to the log file."""

from __future__ import annotations

import logging
import sys

from gradcam_viewer.cli import (
    calibrate,
    evaluate,
    explain,
    gui,
    manifest,
    marks,
    query,
    retrieve,
    sanity,
)
from gradcam_viewer.cli.common import (
    Command,
    CommandError,
    ExitCode,
    command_parser,
    error,
    quiet_tensorflow,
)

log = logging.getLogger("gradcam_viewer.cli")

COMMANDS: dict[str, Command] = {c.name: c for c in (
    explain.COMMAND, manifest.COMMAND, calibrate.COMMAND, sanity.COMMAND, evaluate.COMMAND,
    query.COMMAND, retrieve.COMMAND, marks.COMMAND)}


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
        return gui.run(argv, list(COMMANDS.values()))
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
