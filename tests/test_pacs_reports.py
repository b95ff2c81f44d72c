"""A study retrieved from the PACS brings its structured reports with its images: the marks of
other readers (TID 1500, as this viewer writes them) and key object selections. Against a real
Orthanc seeded by REST with an image, the report of marks on it and a key object selection;
retrieved with C-GET (through `gradcam-viewer retrieve`), C-MOVE and WADO-RS. The report must
arrive whole and its marks be matched to the image, as the viewer reads a study folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    BasicTextSRStorage,
    Comprehensive3DSRStorage,
    ComprehensiveSRStorage,
    EnhancedSRStorage,
    ExtensibleSRStorage,
    KeyObjectSelectionDocumentStorage,
    generate_uid,
)

from gradcam_viewer.cli import main
from gradcam_viewer.marks.shapes import ImageKey, ImageMarks, Mark
from gradcam_viewer.pacs import qr
from gradcam_viewer.pacs.retrieve import MAX_CONTEXTS, scp_roles, storage_contexts
from gradcam_viewer.pacs.store import StudyStore
from pacs_studies import QR_AET, SeedStudy

REPORT_CLASSES = (BasicTextSRStorage, EnhancedSRStorage, ComprehensiveSRStorage,
                  Comprehensive3DSRStorage, ExtensibleSRStorage,
                  KeyObjectSelectionDocumentStorage)


@dataclass
class ReportPacs:
    server: object
    move_port: int
    seed: SeedStudy
    image_uid: str
    marks: ImageMarks
    report_uid: str
    selection_uid: str
    dicomweb: bool

    def node(self, method: str):
        from gradcam_viewer.pacs.nodes import PacsNode
        from orthanc_server import AET

        return PacsNode(AET, "127.0.0.1", self.server.dicom_port, QR_AET, "Test PACS",
                        query_retrieve=True, retrieve_method=method, move_port=self.move_port)

    def web_node(self):
        from gradcam_viewer.pacs.nodes import PacsNode

        return PacsNode("", "", 0, name="Test DICOMweb", kind="dicomweb",
                        url=self.server.dicomweb_url, send=False, query_retrieve=True)


def _key_object_selection(image: pydicom.Dataset, path: Path) -> Path:
    """A key object selection ("Of Interest") of the image, made with highdicom."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    content = hd.ko.KeyObjectSelection(document_title=codes.DCM.OfInterest,
                                       referenced_objects=[image])
    kos = hd.ko.KeyObjectSelectionDocument(
        evidence=[image], content=content, series_instance_uid=generate_uid(),
        series_number=9100, sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer="test")
    kos.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="module")
def report_pacs(tmp_path_factory):
    from gradcam_viewer.outputs.dicom.marks_sr import marks_objects
    from orthanc_server import DICOMWEB_PLUGIN, free_port, modality, start_orthanc, stop_orthanc

    folder = tmp_path_factory.mktemp("reports")
    move_port = free_port()
    dicomweb = DICOMWEB_PLUGIN.exists()
    server = start_orthanc(folder / "orthanc", {"viewer": modality(QR_AET, move_port)},
                           dicomweb=dicomweb)
    seed = SeedStudy("Report^Carrier", "SR-001", "ACCSR1", "20240801", "Chest PA", "CR")
    (image_path,) = seed.write(folder / "seed")
    image = pydicom.dcmread(image_path)
    uid = str(image.SOPInstanceUID)
    marks = ImageMarks(ImageKey("sop", uid), (
        Mark.rectangle(5.5, 6, 30, 40.25, "Nodule"),
        Mark.ellipse_in(20, 10, 60, 50, "Effusion"),
        Mark.polygon([(40, 40), (60, 42), (50, 62)], "Mass")), image_path.name, (64, 64))
    ((_, report),) = marks_objects(image_path, marks, "Doe^Jane")
    report_path = folder / "seed" / "marks.dcm"
    report.save_as(report_path, enforce_file_format=True)
    selection = pydicom.dcmread(_key_object_selection(image, folder / "seed" / "kos.dcm"))
    for path in (image_path, report_path, folder / "seed" / "kos.dcm"):
        server.upload(path)
    yield ReportPacs(server, move_port, seed, uid, marks, str(report.SOPInstanceUID),
                     str(selection.SOPInstanceUID), dicomweb)
    stop_orthanc(server)


@pytest.mark.parametrize("decoders", ["installed", "every compressed syntax"])
def test_c_get_offers_the_report_classes_with_the_storage_role(decoders, monkeypatch):
    """With the decoders installed, and with a decoder for every compressed syntax pydicom
    knows (more contexts than an association holds, so some are left out): the radiographs
    uncompressed and every report class keep their contexts; the compressed ones go first."""
    from pydicom.uid import UID, AllTransferSyntaxes

    from gradcam_viewer.pacs import retrieve

    if decoders != "installed":
        every = tuple(s for s in AllTransferSyntaxes if UID(s).is_compressed)
        monkeypatch.setattr(retrieve, "decodable_syntaxes", lambda: every)
        assert len(retrieve.RADIOGRAPHS) * (1 + len(every)) + len(REPORT_CLASSES) > MAX_CONTEXTS
    contexts = storage_contexts()
    assert len(contexts) + 1 <= MAX_CONTEXTS  # + the C-GET query model's
    for sop_class in (*retrieve.RADIOGRAPHS, *REPORT_CLASSES):  # CR, DX (both), SC; reports
        syntaxes = {s for c, ss in contexts if c == sop_class for s in ss}
        assert {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"} <= syntaxes, sop_class
    offered = {c for c, _ in contexts}
    roles = {str(r.sop_class_uid) for r in scp_roles(contexts) if r.scp_role}
    for sop_class in REPORT_CLASSES:
        assert sop_class in offered and sop_class in roles, sop_class.name
        syntaxes = {s for c, ss in contexts if c == sop_class for s in ss}
        assert {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99"} <= syntaxes


@pytest.mark.parametrize("method", ["get", "move", "wado-rs"])
def test_a_retrieved_study_brings_its_reports_and_their_marks_match(report_pacs, tmp_path,
                                                                     method, capsys):
    from gradcam_viewer.imaging import scan_media
    from gradcam_viewer.marks.sr_read import ReportIndex
    from orthanc_server import AET

    out = tmp_path / "study"
    study_uid = report_pacs.seed.study_uid
    if method == "get":  # as a user would: the retrieve command
        code = main(["retrieve", f"{AET}@127.0.0.1:{report_pacs.server.dicom_port}",
                     "--study-uid", study_uid, "--out", str(out), "--method", "get",
                     "--calling-aet", QR_AET, "--move-port", str(report_pacs.move_port)])
        err = capsys.readouterr().err
        assert code == 0 and "3 objects retrieved, 0 failed" in err, err
    else:
        if method == "wado-rs":
            import requirements
            from orthanc_server import DICOMWEB_PLUGIN

            requirements.file(DICOMWEB_PLUGIN, "orthanc-dicomweb")
        node = report_pacs.web_node() if method == "wado-rs" else report_pacs.node(method)
        report = qr.retrieval(node, StudyStore(out, study_uid)).run()
        assert report.ok and len(report.stored) == 3, report.details()
    files = {p.stem: p for p in out.iterdir()}
    assert set(files) == {report_pacs.image_uid, report_pacs.report_uid,
                          report_pacs.selection_uid}
    assert pydicom.dcmread(files[report_pacs.report_uid]).SOPClassUID == Comprehensive3DSRStorage
    assert pydicom.dcmread(files[report_pacs.selection_uid]).SOPClassUID == \
        KeyObjectSelectionDocumentStorage
    # the study folder as the viewer scans it: one image, one report of marks
    found = scan_media([out])
    assert found.images == [files[report_pacs.image_uid]]
    assert found.catalogue.reports == [files[report_pacs.report_uid]]
    index = ReportIndex.read(found.catalogue.reports)
    assert not index.problems
    marks = index.marks_for(report_pacs.image_uid)
    assert all(m.read_only and "Jane Doe" in m.source for m in marks)
    want = {m.finding: m for m in report_pacs.marks.marks}
    assert sorted(m.finding for m in marks) == sorted(want)
    for mark in marks:
        assert mark.kind is want[mark.finding].kind
        assert np.allclose(mark.points, want[mark.finding].points)
