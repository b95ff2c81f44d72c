"""`gradcam-viewer open --node NAME (--study-uid UID | --accession AN [--patient-id ID])`: what a
worklist (RIS or PACS) calls to show a study. The running viewer retrieves it from the node and
opens it (started first when none runs); this process exits 0 once the viewer has it."""

from __future__ import annotations

import argparse

from gradcam_viewer.cli.common import Command, CommandError, ExitCode, add_verbose_argument
from gradcam_viewer.launch.requests import OpenStudy, RequestError, StudyRequest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", required=True,
                        help="the PACS node's name, as in Settings > PACS nodes")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--study-uid", help="the study's Study Instance UID")
    which.add_argument("--accession", help="the study's accession number")
    parser.add_argument("--patient-id",
                        help="with --accession: the patient ID, where accession numbers "
                             "repeat across patients")


def handed_parser() -> argparse.ArgumentParser:
    """For these arguments when another process hands them to the running viewer."""
    from gradcam_viewer.cli.gui import MessageParser

    result = MessageParser(prog="gradcam-viewer open")
    add_verbose_argument(result)
    add_arguments(result)
    return result


def study_of(args: argparse.Namespace) -> StudyRequest:
    if args.patient_id and not args.accession:
        raise CommandError("--patient-id goes with --accession")
    try:
        return StudyRequest(args.node, study_uid=args.study_uid or "",
                            accession=args.accession or "", patient_id=args.patient_id or "")
    except RequestError as exc:
        raise CommandError(str(exc)) from None


def run(args: argparse.Namespace) -> ExitCode:
    from gradcam_viewer.cli import gui

    study = study_of(args)
    argv = ["open", "--node", study.node]
    argv += (["--study-uid", study.study_uid] if study.study_uid
             else ["--accession", study.accession])
    if study.patient_id:
        argv += ["--patient-id", study.patient_id]
    return ExitCode(gui.launch(argv, [OpenStudy(study)], args.verbose))


COMMAND = Command("open", "Open a study from a PACS node in the running viewer.",
                  add_arguments, run)
