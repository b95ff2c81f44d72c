"""C-ECHO and C-STORE with pynetdicom, with presentation contexts made from the files themselves
(pynetdicom's default storage contexts leave out Parametric Map Storage, and a list of 120 is
more than a PACS need accept). Every failure comes back as words, never as an exception."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pydicom
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from gradcam_viewer.pacs.nodes import PacsNode

if TYPE_CHECKING:
    from pydicom.dataset import Dataset
    from pynetdicom import AE
    from pynetdicom.association import Association

log = logging.getLogger(__name__)
VERIFICATION = "1.2.840.10008.1.1"


@dataclass
class EchoResult:
    ok: bool
    message: str


@dataclass
class SendReport:
    sent: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)  # (file, why)
    problem: str = ""  # the association itself failed

    @property
    def ok(self) -> bool:
        return not self.failed and not self.problem

    def summary(self, node: PacsNode) -> str:
        total = len(self.sent) + len(self.failed)
        text = f"{len(self.sent)} of {total} object(s) sent to {node.label}"
        if self.problem:
            text += f"; {self.problem}"
        reasons = sorted({why for _, why in self.failed} - {self.problem})
        if reasons:
            text += "; " + "; ".join(reasons)
        return text


def _ae(node: PacsNode, timeout: float) -> AE:
    from pynetdicom import AE

    ae = AE(ae_title=node.calling_ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.connection_timeout = timeout
    return ae


def _associate(ae: AE, node: PacsNode) -> tuple[Association, bool]:
    """The association, and whether a TCP connection was opened at all."""
    from pynetdicom import evt

    opened: list[bool] = []
    assoc = ae.associate(node.host, node.port, ae_title=node.ae_title,
                         evt_handlers=[(evt.EVT_CONN_OPEN, lambda event: opened.append(True))])
    return assoc, bool(opened)


def _association_problem(assoc: Association, node: PacsNode, connected: bool) -> str:
    if not connected:
        return (f"no answer from {node.host}:{node.port} (the host is unreachable or the port "
                "closed)")
    if assoc.is_rejected:
        return (f"{node.label} rejected the association (check both AE titles and that the "
                "PACS knows this computer)")
    if assoc.is_aborted:  # some PACS (Orthanc at times) abort instead of rejecting
        return (f"{node.label} aborted the association (check both AE titles and that the "
                "PACS knows this computer)")
    return f"no answer from {node.label} to the association request (timeout)"


def echo(node: PacsNode, timeout: float = 10.0) -> EchoResult:
    """C-ECHO: does the node answer, and accept us?"""
    ae = _ae(node, timeout)
    ae.add_requested_context(VERIFICATION)
    try:
        assoc, connected = _associate(ae, node)
    except Exception as exc:  # noqa: BLE001 - bad host names, refused sockets...: said in words
        return EchoResult(False, f"cannot reach {node.label}: {exc}")
    if not assoc.is_established:
        return EchoResult(False, _association_problem(assoc, node, connected))
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    if status and int(status.get("Status", -1)) == 0:
        return EchoResult(True, f"{node.label} answered the echo")
    return EchoResult(False, f"{node.label} did not confirm the echo")


def send_files(node: PacsNode, files: list[Path], timeout: float = 30.0) -> SendReport:
    """C-STORE each file; the report says which were accepted and why the others were not.
    Only the headers are read first (for the presentation contexts); each file is read whole
    when it is sent, so a large outbox is never in memory at once."""
    report = SendReport()
    datasets: list[tuple[Path, Dataset]] = []
    for f in files:
        try:
            datasets.append((f, pydicom.dcmread(f, stop_before_pixels=True)))
        except Exception as exc:  # noqa: BLE001 - a damaged file (any kind) is reported, not sent
            report.failed.append((f, f"'{Path(f).name}' is not a readable DICOM file ({exc})"))
    if not datasets:
        return report
    ae = _ae(node, timeout)
    contexts: dict[str, set[str]] = {}
    for _, ds in datasets:
        syntaxes = contexts.setdefault(str(ds.SOPClassUID), set())
        syntaxes.update({str(ds.file_meta.TransferSyntaxUID), ExplicitVRLittleEndian,
                         ImplicitVRLittleEndian})
    for sop_class, syntaxes in contexts.items():
        ae.add_requested_context(sop_class, sorted(syntaxes))
    try:
        assoc, connected = _associate(ae, node)
    except Exception as exc:  # noqa: BLE001 - bad host names, refused sockets...: said in words
        report.problem = f"cannot reach {node.label}: {exc}"
    else:
        if not assoc.is_established:
            report.problem = _association_problem(assoc, node, connected)
    if report.problem:
        report.failed.extend((f, report.problem) for f, _ in datasets)
        return report
    try:
        for f, ds in datasets:
            why = _store(assoc, f, str(ds.SOPClassUID), node)
            if why:
                report.failed.append((f, why))
            else:
                report.sent.append(f)
    finally:
        if assoc.is_established:
            assoc.release()
    log.info("sent %d of %d object(s) to a PACS node", len(report.sent), len(files))
    return report


def _store(assoc: Association, path: Path, sop_class: str, node: PacsNode) -> str:
    name = UID(sop_class).name
    if not assoc.is_established:
        return f"the association with {node.label} ended early"
    try:
        status = assoc.send_c_store(Path(path))  # pynetdicom reads the file now
    except ValueError:  # no accepted presentation context for this SOP class
        return f"{node.label} does not accept {name}"
    except Exception as exc:  # noqa: BLE001 - the network or the file, any kind: said in words
        return f"sending {name} failed ({exc})"
    if not status:
        return f"no answer from {node.label} for {name} (timeout or connection lost)"
    code = int(status.get("Status", -1))
    if code == 0 or 0xB000 <= code <= 0xBFFF:  # success, or success with a warning
        return ""
    comment = status.get("ErrorComment", "")
    return (f"{node.label} refused {name} (status 0x{code:04X}{': ' + str(comment) if comment else ''})")
