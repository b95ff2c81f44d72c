"""`gradcam-viewer retrieve NODE --study-uid UID [--series-uid UID] --out DIR`: a study (or one
series) from a PACS into DIR, one file per object named by its SOP Instance UID (C-GET, C-MOVE
or WADO-RS), with a progress bar; ends with "N objects retrieved, M failed". `explain` takes
DIR as it takes any folder."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from gradcam_viewer.cli.common import Command, CommandError, ExitCode, Progress
from gradcam_viewer.cli.query import add_node_arguments, node_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gradcam_viewer.pacs.nodes import RETRIEVE_METHODS

    add_node_arguments(parser)
    parser.add_argument("--study-uid", required=True, help="the Study Instance UID")
    parser.add_argument("--series-uid", default="", help="only this series of the study")
    parser.add_argument("--out", type=Path, required=True, help="the folder to write into")
    parser.add_argument("--method", choices=RETRIEVE_METHODS, default=None,
                        help="auto (default): C-GET, then C-MOVE if C-GET gets nothing; get; "
                             "move")
    parser.add_argument("--move-port", type=int, default=None,
                        help="the port this viewer listens on for C-MOVE (default 11112; the "
                             "PACS must know it)")


def run(args: argparse.Namespace) -> ExitCode:
    from gradcam_viewer.pacs import qr
    from gradcam_viewer.pacs.retrieve import Progress as Counts, RetrieveReport
    from gradcam_viewer.pacs.store import StudyStore, private_folder

    node = node_from(args)
    try:
        store = StudyStore(private_folder(args.out), args.study_uid, args.series_uid)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        raise CommandError(f"cannot write into '{args.out}' ({exc.strerror or exc})",
                           ExitCode.INPUTS_FAILED) from exc
    err = sys.stderr
    with Progress(0, err, unit="object") as bar:
        def progressed(counts: Counts) -> None:
            bar.follow(counts.completed + counts.failed + counts.warning, counts.total)

        job = qr.retrieval(node, store, on_progress=progressed)
        answer: list[RetrieveReport] = []
        thread = threading.Thread(target=lambda: answer.append(job.run()), daemon=True,
                                  name="gradcam-retrieve")
        thread.start()
        interrupted = False
        while thread.is_alive():
            try:
                thread.join(0.2)
            except KeyboardInterrupt:
                interrupted = True
                bar.say("interrupted: cancelling the retrieve...")
                job.cancel()
    if not answer:
        raise CommandError("the retrieve ended without a report (see the log)", ExitCode.INTERNAL)
    report = answer[0]
    for problem in report.details():
        err.write(f"error: {problem}\n")
    err.write(f"{report.summary()} into {args.out}\n")
    if interrupted:
        return ExitCode.INTERRUPTED
    return ExitCode.OK if report.ok else ExitCode.INPUTS_FAILED


COMMAND = Command("retrieve", "Copy a study or series from a PACS into a folder.", add_arguments,
                  run)
