"""`gradcam-viewer query NODE [matching keys]`: the studies a PACS has (C-FIND at STUDY level,
or QIDO-RS for a DICOMweb node), one line each, or one JSON object per line with `--json`.
Patient names and IDs are printed only with `--show-identifiers`.

NODE is `AET@HOST:PORT` (DIMSE), an `http(s)://` base URL (DICOMweb), or the name of a node
configured in the viewer (Settings > PACS nodes)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from gradcam_viewer.cli.common import Command, CommandError, ExitCode

if TYPE_CHECKING:  # imported when a command runs: `gradcam-viewer FILE` starts without them
    from gradcam_viewer.pacs.nodes import PacsNode
    from gradcam_viewer.pacs.query import StudyMatch


def add_node_arguments(parser: argparse.ArgumentParser) -> None:
    """NODE and how to reach it; shared with `retrieve`."""
    from gradcam_viewer.pacs.nodes import DEFAULT_CALLING_AET

    parser.add_argument("node", metavar="NODE",
                        help="AET@HOST:PORT, a DICOMweb base URL (http://...), or the name of a "
                             "node configured in Settings > PACS nodes")
    parser.add_argument("--calling-aet", default=None,
                        help=f"this viewer's AE title (default: the node's, or "
                             f"{DEFAULT_CALLING_AET})")
    parser.add_argument("--token-file", default=None,
                        help="DICOMweb: a file holding a bearer token")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds to wait for each answer (default 30)")


def node_from(args: argparse.Namespace) -> PacsNode:
    from gradcam_viewer.pacs.nodes import (
        NodeError,
        PacsNode,
        find_node,
        load_nodes,
        parse_node,
    )

    text = str(args.node)
    try:
        if text.startswith(("http://", "https://")):
            node = PacsNode("", "", 0, kind="dicomweb", url=text.rstrip("/"), send=False,
                            query_retrieve=True)
        elif "@" in text:
            node = parse_node(text)
        else:
            node = find_node(text, load_nodes())
        changes: dict[str, object] = {}
        if args.calling_aet:
            changes["calling_ae_title"] = args.calling_aet
        if args.token_file:
            changes["token_file"] = args.token_file
        if args.timeout:
            changes["dimse_timeout"] = args.timeout
        for key in ("method", "move_port"):
            value = getattr(args, key, None)
            if value:
                changes["retrieve_method" if key == "method" else key] = value
        return replace(node, **changes)  # type: ignore[arg-type]
    except NodeError as exc:
        raise CommandError(str(exc)) from exc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gradcam_viewer.pacs.query import DEFAULT_LIMIT, DEFAULT_MODALITIES

    add_node_arguments(parser)
    parser.add_argument("--patient-id", default="", help="* and ? are wildcards")
    parser.add_argument("--patient-name", default="",
                        help="* and ? are wildcards; a name without them matches names "
                             "starting with it")
    parser.add_argument("--accession", default="", help="accession number")
    parser.add_argument("--study-date", default="", metavar="YYYYMMDD[-YYYYMMDD]",
                        help="a day, or a range (either end may be left out)")
    parser.add_argument("--description", default="", help="words in the study description")
    parser.add_argument("--modality", default=",".join(DEFAULT_MODALITIES),
                        help="modalities in the study, separated by commas (default CR,DX; "
                             "'any' for all)")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                        help=f"at most this many studies (default {DEFAULT_LIMIT})")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--show-identifiers", action="store_true",
                        help="also print patient names, IDs and birth dates")


def modalities(text: str) -> tuple[str, ...]:
    if text.strip().lower() in ("any", "all", ""):
        return ()
    return tuple(m.strip().upper() for m in text.split(",") if m.strip())


def line(study: StudyMatch, show_identifiers: bool) -> str:
    """One study as the plain listing prints it."""
    count = f"{study.n_instances} image(s)" if study.n_instances is not None else "? image(s)"
    fields = [study.date or "--------", ",".join(study.modalities) or "-",
              study.accession or "-", count, study.description or "-", study.study_uid]
    if show_identifiers:
        who = study.identifying
        fields[1:1] = [who.display_name or "-", who.patient_id or "-"]
    return "  ".join(fields)


def run(args: argparse.Namespace) -> ExitCode:
    from gradcam_viewer.pacs import qr
    from gradcam_viewer.pacs.dimse import PacsError
    from gradcam_viewer.pacs.query import QueryError, StudyQuery

    node = node_from(args)
    query = StudyQuery(patient_id=args.patient_id, patient_name=args.patient_name,
                       accession=args.accession, study_date=args.study_date,
                       modalities=modalities(args.modality), description=args.description,
                       limit=args.limit)
    try:
        query.check()
    except QueryError as exc:
        raise CommandError(str(exc)) from exc
    try:
        found = qr.find_studies(node, query)
    except PacsError as exc:
        raise CommandError(str(exc), ExitCode.INPUTS_FAILED) from exc
    out = sys.stdout
    for study in found.studies:
        if args.json:
            out.write(json.dumps(study.record(args.show_identifiers), ensure_ascii=False) + "\n")
        else:
            out.write(line(study, args.show_identifiers) + "\n")
    out.flush()
    if found.more:
        sys.stderr.write(f"note: {found.note()}\n")
    sys.stderr.write(f"{len(found.studies)} stud{'y' if len(found.studies) == 1 else 'ies'} "
                     f"found on {node.label}\n")
    return ExitCode.OK


COMMAND = Command("query", "List the studies a PACS holds.", add_arguments, run)
