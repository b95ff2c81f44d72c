"""What every command shares: the exit codes (one table for all), the parser with that table in
its help, the model options, the inputs (files, folders, DICOMDIR media through the scanner),
the progress bar, and keeping TensorFlow's C++ start-up lines off the terminal."""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.util
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType, TracebackType
from typing import NamedTuple, TextIO


class ExitCode(IntEnum):
    """The exit code of every command; each has one meaning (EXIT_CODES_HELP says it)."""

    OK = 0
    INPUTS_FAILED = 1
    USAGE = 2
    INTERNAL = 3
    FLAGGED = 4
    INTERRUPTED = 130


EXIT_CODES_HELP = """\
exit codes (the same for every command):
  0    done
  1    some inputs or outputs failed (each named on stderr); the rest is done
  2    usage: bad arguments, or a model or annotation file that cannot be used
  3    unexpected error (a bug); the details are in the log file
  4    sanity: the model is flagged (its maps do not depend on what it learned)
  130  interrupted (Ctrl-C)"""


class CommandError(Exception):
    """Stops a command: the message is for the user (printed after "error: "), `code` is the
    exit code."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Command:
    """A command of `gradcam-viewer COMMAND`: its name, its one line in `--help`, its
    options and what it does (returns the exit code, or raises CommandError)."""

    name: str
    summary: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], ExitCode]


def command_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A parser whose help ends with the exit codes, with --verbose."""
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=EXIT_CODES_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_verbose_argument(parser)
    return parser


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true",
                        help="also show TensorFlow's own start-up messages")


# What TensorFlow's C++ libraries print while they load: through absl, before any log level
# applies (TF_CPP_MIN_LOG_LEVEL does not reach the first ones).
TENSORFLOW_NOISE = ("All log messages before absl::InitializeLog()", "oneDNN custom operations",
                    "cpu_feature_guard", "rebuild TensorFlow with the appropriate compiler")


def quiet_tensorflow(verbose: bool) -> None:
    """Keep TensorFlow's C++ start-up lines (oneDNN, cpu_feature_guard, absl) off the terminal,
    unless asked for (--verbose) or the user set TF_CPP_MIN_LOG_LEVEL. Call it before
    TensorFlow is imported: it sets the level for what TensorFlow logs later, and has its
    import run with stderr filtered."""
    if verbose or "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if "tensorflow" not in sys.modules and not any(
            isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` (once, then steps aside) for the import system and makes its loading
    run with stderr filtered."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            load = spec.loader.exec_module

            def exec_module(module: ModuleType) -> None:
                with stderr_filtered(TENSORFLOW_NOISE):
                    load(module)

            spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


@contextmanager
def stderr_filtered(noise: Sequence[str]) -> Iterator[None]:
    """Everything written to the process's stderr (file descriptor 2, where C++ libraries
    write) is held meanwhile, then written out without the lines that contain `noise`."""
    stream = sys.stderr
    try:
        if stream is not None:
            stream.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no stderr at all (a windowed program on Windows)
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            if stream is not None:
                stream.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode("utf-8", "replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not any(n in line for n in noise))
            if kept and stream is not None:
                stream.write(kept)
                stream.flush()


def error(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")


# --- model options ------------------------------------------------------------------------

def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None,
                        help="a .keras or .h5 model, or a Keras 2 SavedModel folder "
                             "(default: the bundled demo model)")


def add_chexnet_arguments(parser: argparse.ArgumentParser) -> None:
    """--chexnet-weights and --reference-images, shared by the viewer's and explain's parsers."""
    parser.add_argument("--chexnet-weights", type=Path, default=None,
                        help="weights for the CheXNet DenseNet121 preset (.h5 or .weights.h5)")
    parser.add_argument("--reference-images", type=Path, default=None,
                        help="with --chexnet-weights: a folder of training images whose mean/std "
                             "normalise every image (stored beside the weights); default: "
                             "per-image z-score")


def add_method_argument(parser: argparse.ArgumentParser) -> None:
    from gradcam_viewer.cam.methods import METHOD_TITLES

    parser.add_argument("--method", default="gradcam", choices=list(METHOD_TITLES),
                        help="the CAM method (default gradcam)")


def add_layer_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layer", default=None, help="target layer (default: manifest or auto)")


def add_send_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """--send AET@HOST:PORT, for the commands that send DICOM objects (through the outbox)."""
    parser.add_argument("--send", default=None, metavar="AET@HOST:PORT",
                        help=f"send {what} to this PACS node (C-STORE); objects not accepted "
                             "stay in the outbox folder until a later send")


# --- inputs ------------------------------------------------------------------------------

class Inputs(NamedTuple):
    """What the scanner found in the command's inputs."""

    paths: list[Path]  # the images in reading order, then files named that are not images
    errors: list[str]  # "error: ..." lines: missing inputs, empty folders, files a DICOMDIR
    # lacks; each is a failure of the command (exit 1)
    notes: list[str]  # "note: ..." lines: depth limit, a DICOMDIR searched as a folder
    skipped: int  # other files (CSVs, reports, text) found in folders


def expand_inputs(paths: list[Path]) -> Inputs:
    """Files, folders and DICOMDIR media through the scanner."""
    from gradcam_viewer.imaging import scan_media

    result = scan_media(paths)
    # files named on the command line that are not images go to the loader, which says why
    return Inputs(result.images + result.rejected, [f"error: {w}" for w in result.warnings],
                  [f"note: {n}" for n in result.notices], result.skipped)


# --- progress ----------------------------------------------------------------------------

class Progress:
    """A tqdm progress bar on a terminal, none when the stream is not one (a pipe, a log
    file); `say` prints a line above the bar. Use it as a context manager: it closes the bar."""

    def __init__(self, total: int, stream: TextIO | None = None, unit: str = "image"):
        self.stream = stream if stream is not None else sys.stderr
        # imported here: the viewer's hand-over to a running viewer imports this module and
        # must not pay for tqdm (about 25 ms, most of it importlib.metadata)
        from tqdm import tqdm  # type: ignore[import-untyped]

        live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar = tqdm(total=total, file=self.stream, unit=unit, disable=not live,
                        dynamic_ncols=True, leave=True)

    def step(self, name: str) -> None:
        self.bar.set_postfix_str(name[:40], refresh=False)
        self.bar.update(1)

    def follow(self, done: int, total: int | None) -> None:
        """Where a job that reports its own counts stands (a retrieve: the PACS says the total
        only once it knows it)."""
        if total is not None and total != self.bar.total:
            self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def say(self, line: str) -> None:
        self.bar.write(line, file=self.stream)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
