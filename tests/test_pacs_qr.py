"""Query/retrieve against a real Orthanc set up as a hospital PACS (only registered AE titles
may query, get or move; tests/pacs_studies.py seeds it by REST), and against small pynetdicom
peers for what Orthanc does not do (answers in other character sets, an object of another
study, ignoring C-CANCEL, silence). What the PACS holds is known from the seed itself, so each
answer is checked against the seeded files, not against what the code returned before."""

import fnmatch
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_charset_files
from pydicom.dataset import Dataset

from gradcam_viewer.pacs import qr, retrieve as retrieve_module
from gradcam_viewer.pacs.dimse import PacsError
from gradcam_viewer.pacs.nodes import PacsNode
from gradcam_viewer.pacs.query import QueryError, StudyQuery, date_range
from gradcam_viewer.pacs.retrieve import (
    MAX_CONTEXTS,
    OTHER_IMAGES,
    RADIOGRAPHS,
    REPORTS,
    decodable_syntaxes,
)
from gradcam_viewer.pacs.store import StudyStore
from orthanc_server import free_port
from pacs_studies import QR_AET, SeedStudy

# --- queries -------------------------------------------------------------------------------


def expected(pacs, *, patient_id="*", name="*", accession="*", dates=("", "99999999"),
             modalities=("CR", "DX"), description="*"):
    """The seeded studies a query must find, computed from the seed (PN case-insensitive, as
    Orthanc matches names)."""
    found = set()
    for s in [*pacs.studies, pacs.big]:
        if (fnmatch.fnmatchcase(s.patient_id, patient_id)
                and fnmatch.fnmatch(s.patient_name.lower(), name.lower())
                and fnmatch.fnmatchcase(s.accession, accession)
                and dates[0] <= s.date <= dates[1]
                and (not modalities or s.modality in modalities)
                and fnmatch.fnmatchcase(s.description, description)):
            found.add(s.accession)
    return found


QUERIES = [
    (StudyQuery(patient_id="QR-001"), dict(patient_id="QR-001")),
    (StudyQuery(patient_id="QR-00*", modalities=()), dict(patient_id="QR-00*", modalities=())),
    (StudyQuery(patient_name="Mül*"), dict(name="Mül*")),
    (StudyQuery(patient_name="smith"), dict(name="smith*")),
    (StudyQuery(accession="ACC2001"), dict(accession="ACC2001")),
    (StudyQuery(study_date="20240312"), dict(dates=("20240312", "20240312"))),
    (StudyQuery(study_date="20240101-20240331"), dict(dates=("20240101", "20240331"))),
    (StudyQuery(study_date="20240601-"), dict(dates=("20240601", "99999999"))),
    (StudyQuery(patient_id="QR*", modalities=("OT",)), dict(modalities=("OT",))),
    (StudyQuery(description="Chest"), dict(description="*Chest*")),
]


@pytest.mark.parametrize("query, keys", QUERIES, ids=lambda x: str(x)[:60])
def test_query_by_each_field(qr_pacs, query, keys):
    want = expected(qr_pacs, **keys)
    assert want, "the seed must hold a match for every query"
    found = qr.find_studies(qr_pacs.node(), query)
    assert {s.accession for s in found.studies} == want
    assert not found.more


def test_a_study_reads_back_as_seeded(qr_pacs):
    seed = qr_pacs.study("ACC1001")
    (study,) = qr.find_studies(qr_pacs.node(), StudyQuery(accession="ACC1001")).studies
    assert (study.study_uid, study.date, study.time, study.description, study.modalities,
            study.n_instances, study.n_series) == (seed.study_uid, seed.date, "101500",
                                                   seed.description, ("CR",), 4, 2)
    assert (study.identifying.patient_name, study.identifying.patient_id) == (
        "Müller^Jürgen", "QR-001")  # UTF-8 in the seed, ISO_IR 192 in our query
    latin = qr.find_studies(qr_pacs.node(), StudyQuery(accession="ACC3001")).studies[0]
    assert latin.identifying.patient_name == "O'Brien^Seán"  # seeded in ISO_IR 100
    series = qr.find_series(qr_pacs.node(), seed.study_uid)
    assert [(s.number, s.modality, s.description, s.n_instances) for s in series] == [
        (1, "CR", "series 1", 2), (2, "CR", "series 2", 2)]


def test_the_limit_is_kept_and_said(qr_pacs):
    every = expected(qr_pacs, patient_id="QR*")
    found = qr.find_studies(qr_pacs.node(), StudyQuery(patient_id="QR*", limit=2))
    assert len(found.studies) == 2 and found.more and "first 2 studies" in found.note()
    assert {s.accession for s in found.studies} <= every
    whole = qr.find_studies(qr_pacs.node(), StudyQuery(patient_id="QR*", limit=len(every)))
    assert {s.accession for s in whole.studies} == every and not whole.more


def test_an_empty_query_is_refused_before_the_network(no_network):
    node = PacsNode("PACS", "127.0.0.1", 104, query_retrieve=True)
    with pytest.raises(QueryError, match="whole PACS is refused"):
        qr.find_studies(node, StudyQuery())
    with pytest.raises(QueryError, match="whole PACS is refused"):
        qr.find_studies(node, StudyQuery(modalities=("CR",), limit=10))
    assert no_network == []


@pytest.mark.parametrize("bad", [dict(study_date="2024-03-12"), dict(study_date="20241341"),
                                 dict(patient_id="A\\B"), dict(accession="X" * 17),
                                 dict(study_uid="1.2.abc"), dict(patient_id="x", limit=0),
                                 dict(patient_id="x", modalities=("C R;",))])
def test_bad_fields_are_refused(bad):
    with pytest.raises(QueryError):
        StudyQuery(**bad).check()


def test_date_presets():
    from datetime import date

    today = date(2024, 3, 1)
    assert date_range("any", today) == ""
    assert date_range("today", today) == "20240301"
    assert date_range("yesterday", today) == "20240229"
    assert date_range("last 7 days", today) == "20240224-20240301"
    assert date_range("last 30 days", today) == "20240201-20240301"  # 29 February
    assert date_range("range", today, date(2024, 2, 10), date(2024, 1, 5)) == "20240105-20240210"


# --- a pynetdicom peer: what Orthanc does not do -----------------------------------------

class FakeQr:
    """A Study Root Q/R SCP whose answers the test sets: C-FIND `matches`; C-GET and C-MOVE
    send `objects` (datasets) whatever was asked, `delay` seconds apart, ignoring C-CANCEL and
    failures when `stubborn`."""

    def __init__(self):
        from pynetdicom import AE, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import (
            StudyRootQueryRetrieveInformationModelFind,
            StudyRootQueryRetrieveInformationModelGet,
            StudyRootQueryRetrieveInformationModelMove,
        )

        self.matches: list[Dataset] = []
        self.objects: list[Dataset] = []
        self.delay = 0.0
        self.silent = 0.0
        self.asked: list[Dataset] = []
        self.move_to: tuple[str, int] | None = None
        self.port = free_port()
        ae = AE(ae_title="FAKEQR")
        for model in (StudyRootQueryRetrieveInformationModelFind,
                      StudyRootQueryRetrieveInformationModelGet,
                      StudyRootQueryRetrieveInformationModelMove):
            ae.add_supported_context(model)
        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(cx.abstract_syntax, scu_role=False, scp_role=True)
        ae.add_requested_context(pydicom.uid.DigitalXRayImageStorageForPresentation)  # C-MOVE
        self.server = ae.start_server(("127.0.0.1", self.port), block=False, evt_handlers=[
            (evt.EVT_C_FIND, self._find), (evt.EVT_C_GET, self._get),
            (evt.EVT_C_MOVE, self._move)])

    def node(self, **changes) -> PacsNode:
        return PacsNode("FAKEQR", "127.0.0.1", self.port, QR_AET, query_retrieve=True,
                        **changes)

    def _find(self, event):
        self.asked.append(event.identifier)
        time.sleep(self.silent)
        for ds in self.matches:
            yield 0xFF00, ds
        yield 0x0000, None

    def _send(self, event):
        for ds in self.objects:
            time.sleep(self.delay)
            yield 0xFF00, ds

    def _get(self, event):
        self.asked.append(event.identifier)
        yield len(self.objects)
        yield from self._send(event)

    def _move(self, event):
        self.asked.append(event.identifier)
        yield self.move_to
        yield len(self.objects)
        yield from self._send(event)

    def stop(self):
        self.server.shutdown()


@pytest.fixture
def fake_qr():
    peer = FakeQr()
    yield peer
    peer.stop()


CHARSET_FILES = ["chrFren.dcm", "chrGerm.dcm", "chrRuss.dcm", "chrGreek.dcm", "chrHbrw.dcm",
                 "chrArab.dcm", "chrH31.dcm", "chrH32.dcm", "chrI2.dcm", "chrX1.dcm",
                 "chrX2.dcm"]


def test_answers_in_other_character_sets_decode_as_pydicom_does(fake_qr):
    """The peer answers with each of pydicom's character set test files' names (Latin-1,
    Cyrillic, Greek, Hebrew, Arabic, Japanese ISO 2022, Korean, UTF-8); each must read as
    pydicom reads that file. Our query goes out in ISO_IR 192."""
    references = []
    for name in CHARSET_FILES:
        source = pydicom.dcmread(get_charset_files(name)[0])
        ds = Dataset()
        ds.SpecificCharacterSet = source.SpecificCharacterSet
        ds.PatientName = source.PatientName
        ds.PatientID = name
        ds.StudyInstanceUID = f"1.2.3.{len(references) + 1}"
        ds.StudyDate = "20240101"
        ds.QueryRetrieveLevel = "STUDY"
        fake_qr.matches.append(ds)
        references.append(str(source.PatientName))
    found = qr.find_studies(fake_qr.node(), StudyQuery(patient_name="Müller*", modalities=()))
    by_id = {s.identifying.patient_id: s.identifying.patient_name for s in found.studies}
    assert [by_id[name] for name in CHARSET_FILES] == references
    asked = fake_qr.asked[0]
    assert asked.SpecificCharacterSet == "ISO_IR 192"
    assert str(asked.PatientName) == "Müller*"


def _image(study_uid: str, series_uid: str) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = pydicom.uid.DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.Modality, ds.PatientID = "DX", "FAKE"
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = np.arange(64, dtype=np.uint16).tobytes()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    return ds


@pytest.mark.parametrize("method", ["get", "move"])
def test_an_object_of_another_study_is_refused(fake_qr, tmp_path, method):
    node = fake_qr.node(retrieve_method=method, move_port=free_port())
    fake_qr.move_to = ("127.0.0.1", node.move_port)
    mine, other = _image("1.2.3.4", "1.2.3.4.1"), _image("9.8.7.6", "9.8.7.6.1")
    fake_qr.objects = [other, mine]
    store = StudyStore(tmp_path / "s", "1.2.3.4")
    report = qr.retrieval(node, store).run()
    assert [p.name for p in report.stored] == [f"{mine.SOPInstanceUID}.dcm"]
    assert report.failed == 1 and not report.ok
    assert report.refused == {"an object of another study than the one asked for": 1}
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [f"{mine.SOPInstanceUID}.dcm"]
    assert fake_qr.asked[0].StudyInstanceUID == "1.2.3.4"


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_an_object_whose_uid_is_a_path_is_refused(fake_qr, tmp_path):
    bad = _image("1.2.3.4", "1.2.3.4.1")
    bad.SOPInstanceUID = "../../1.2"
    fake_qr.objects = [bad]
    folder = tmp_path / "a" / "b" / "study"
    report = qr.retrieval(fake_qr.node(retrieve_method="get"), StudyStore(folder,
                                                                          "1.2.3.4")).run()
    assert report.stored == [] and report.failed == 1
    assert report.refused == {"an object whose SOP Instance UID is not a UID": 1}
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_cancel_aborts_a_peer_that_ignores_it_after_5_s(fake_qr, tmp_path):
    fake_qr.objects = [_image("1.2.3.4", "1.2.3.4.1") for _ in range(400)]
    fake_qr.delay = 0.05
    stored = []
    job = qr.retrieval(fake_qr.node(retrieve_method="get"), StudyStore(tmp_path, "1.2.3.4"),
                       on_stored=stored.append)
    answer = []
    thread = threading.Thread(target=lambda: answer.append(job.run()))
    thread.start()
    deadline = time.monotonic() + 30
    while len(stored) < 3 and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    cancelled_at = time.monotonic()
    job.cancel()
    thread.join(30)
    took = time.monotonic() - cancelled_at
    report = answer[0]
    assert report.cancelled and 3 <= len(report.stored) < 100
    assert 4.5 <= took < 9, took  # the 5 s grace, then the abort
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in report.stored)


def test_silence_is_a_timeout_in_words(fake_qr):
    fake_qr.silent = 3.0
    node = fake_qr.node(dimse_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(PacsError, match="no answer from FAKEQR@127.0.0.1.* within 1 s"):
        qr.find_studies(node, StudyQuery(patient_id="X"))
    assert time.monotonic() - started < 3


def test_a_closed_port_is_said(no_network):
    node = PacsNode("PACS", "127.0.0.1", 9, QR_AET, query_retrieve=True, connect_timeout=1)
    with pytest.raises(PacsError, match="cannot reach|no answer"):
        qr.find_studies(node, StudyQuery(patient_id="X"))


# --- retrieving from Orthanc ---------------------------------------------------------------

def same_objects(seed: SeedStudy, files: list[Path]) -> None:
    """The retrieved files are the seeded objects: UIDs, transfer syntax and pixels."""
    sources = {str(pydicom.dcmread(f).SOPInstanceUID): f for f in seed.files}
    assert sorted(p.stem for p in files) == sorted(sources)
    for path in files:
        got, want = pydicom.dcmread(path), pydicom.dcmread(sources[path.stem])
        for keyword in ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID",
                        "SeriesInstanceUID", "PatientID"):
            assert got[keyword].value == want[keyword].value, keyword
        if want.file_meta.TransferSyntaxUID.is_compressed:  # never transcoded
            assert got.file_meta.TransferSyntaxUID == want.file_meta.TransferSyntaxUID
        assert np.array_equal(got.pixel_array, want.pixel_array)


@pytest.mark.parametrize("method", ["get", "move"])
@pytest.mark.parametrize("accession", ["ACC1001", "ACC1002", "ACC2001", "ACC2002"])
def test_retrieve_gives_the_seeded_objects(qr_pacs, tmp_path, method, accession):
    seed = qr_pacs.study(accession)
    progress = []
    store = StudyStore(tmp_path / "study", seed.study_uid)
    report = qr.retrieval(qr_pacs.node(method=method), store, on_progress=progress.append).run()
    assert report.ok and report.method == ("C-GET" if method == "get" else "C-MOVE"), \
        report.details()
    same_objects(seed, report.stored)
    assert sorted(store.files()) == sorted(report.stored)
    assert progress and progress[-1].completed == len(seed.files)
    assert report.summary() == f"{len(seed.files)} objects retrieved, 0 failed"


def test_retrieve_one_series(qr_pacs, tmp_path):
    seed = qr_pacs.study("ACC1001")
    series = qr.find_series(qr_pacs.node(), seed.study_uid)[1]
    store = StudyStore(tmp_path, seed.study_uid, series.series_uid)
    report = qr.retrieval(qr_pacs.node(method="get"), store).run()
    assert report.ok and len(report.stored) == 2
    assert {str(pydicom.dcmread(p).SeriesInstanceUID) for p in report.stored} == {
        series.series_uid}


def test_auto_falls_back_to_c_move_when_c_get_is_refused(qr_pacs, tmp_path):
    """GCV_NOGET is registered with AllowGet false: C-GET is refused, C-MOVE works."""
    seed = qr_pacs.study("ACC1001")
    report = qr.retrieval(qr_pacs.node(method="auto", calling="GCV_NOGET"),
                          StudyStore(tmp_path, seed.study_uid)).run()
    assert report.ok and report.method == "C-MOVE", report.details()
    same_objects(seed, report.stored)


def test_c_get_contexts_fit_and_cover_the_radiographs():
    from gradcam_viewer.pacs.retrieve import storage_contexts

    contexts = storage_contexts()
    compressed = decodable_syntaxes()
    # with the decoders installed all fit: none left out, the query model's beside them
    everything = len(RADIOGRAPHS) * (1 + len(compressed)) + len(REPORTS) + len(OTHER_IMAGES)
    assert len(contexts) == everything and everything + 1 <= MAX_CONTEXTS
    for syntax in ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80",
                   "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.5",
                   "1.2.840.10008.1.2.4.201"):
        assert syntax in compressed
    for sop_class in RADIOGRAPHS:
        offered = {s for c, syntaxes in contexts if c == sop_class for s in syntaxes}
        assert set(compressed) | {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"} <= offered


# --- refusals: what the PACS administrator must add ----------------------------------------

def names_what_to_add(text: str, pacs, aet: str) -> None:
    assert f"AE title {aet}" in text and "host 127.0.0.1" in text, text
    assert f"port {pacs.move_port}" in text, text


def test_unknown_calling_ae_is_told_what_to_register(qr_pacs, tmp_path):
    stranger = qr_pacs.node(calling="STRANGER")
    with pytest.raises(PacsError) as refused:
        qr.find_studies(stranger, StudyQuery(patient_id="QR-001"))
    names_what_to_add(str(refused.value), qr_pacs, "STRANGER")
    seed = qr_pacs.study("ACC1001")
    for method in ("get", "move", "auto"):
        report = qr.retrieval(replace(stranger, retrieve_method=method),
                              StudyStore(tmp_path / method, seed.study_uid)).run()
        assert report.stored == [] and not report.ok
        names_what_to_add(report.problem, qr_pacs, "STRANGER")


def test_c_get_without_roles_says_so(qr_pacs, tmp_path, monkeypatch):
    monkeypatch.setattr(retrieve_module, "scp_roles", lambda contexts: [])
    seed = qr_pacs.study("ACC1001")
    report = qr.retrieval(qr_pacs.node(method="get"), StudyStore(tmp_path, seed.study_uid)).run()
    assert report.stored == [] and "role selection" in report.problem
    names_what_to_add(report.problem, qr_pacs, QR_AET)
    # Auto goes on with C-MOVE
    report = qr.retrieval(qr_pacs.node(method="auto"), StudyStore(tmp_path, seed.study_uid)).run()
    assert report.ok and report.method == "C-MOVE"


@pytest.fixture
def open_move_pacs(tmp_path):
    """An Orthanc where anyone may C-MOVE (DicomAlwaysAllowMove) but no destination is
    registered: the move destination is unknown to it."""
    from orthanc_server import start_orthanc, stop_orthanc

    server = start_orthanc(tmp_path / "open", {}, always_allow_move=True)
    seed = SeedStudy("Open^Move", "QR-500", "ACC5000", "20240101", "Chest", "CR")
    for path in seed.write(tmp_path / "seed"):
        server.upload(path)
    yield server, seed
    stop_orthanc(server)


def test_unknown_move_destination_is_told_what_to_register(open_move_pacs, tmp_path):
    from orthanc_server import AET

    server, seed = open_move_pacs
    node = PacsNode(AET, "127.0.0.1", server.dicom_port, "NOT_REGISTERED", query_retrieve=True,
                    retrieve_method="move", move_port=free_port())
    report = qr.retrieval(node, StudyStore(tmp_path / "s", seed.study_uid)).run()
    assert report.stored == [] and "move destination" in report.problem, report.problem
    assert "AE title NOT_REGISTERED" in report.problem and "host 127.0.0.1" in report.problem
    assert f"port {node.move_port}" in report.problem


# --- cancel --------------------------------------------------------------------------------

@pytest.mark.parametrize("refuse", [True, False], ids=["refusing", "c-cancel-alone"])
@pytest.mark.parametrize("method", ["get", "move"])
def test_cancel_during_a_40_instance_retrieve(qr_pacs, tmp_path, method, refuse, monkeypatch):
    """Cancel after 5 objects of 40: the retrieve stops, C-CANCEL went out, every file left
    is a whole object of the study (no partial file, no temporary file). Orthanc stops on
    C-CANCEL alone (`c-cancel-alone`: what still comes is not refused)."""
    if not refuse:
        monkeypatch.setattr(StudyStore, "closed", property(lambda self: False,
                                                           lambda self, value: None),
                            raising=False)
    put = StudyStore.put_encoded

    def slow_disk(self, ds, data):
        time.sleep(0.05)
        return put(self, ds, data)

    monkeypatch.setattr(StudyStore, "put_encoded", slow_disk)
    sent = []
    cancel = retrieve_module.Canceller.cancel
    monkeypatch.setattr(retrieve_module.Canceller, "cancel",
                        lambda self: (sent.append(self.model), cancel(self)))
    seed = qr_pacs.big
    stored = []
    job = qr.retrieval(qr_pacs.node(method=method), StudyStore(tmp_path, seed.study_uid),
                       on_stored=stored.append)
    answer = []
    thread = threading.Thread(target=lambda: answer.append(job.run()))
    thread.start()
    deadline = time.monotonic() + 60
    while len(stored) < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    job.cancel()
    thread.join(30)
    report = answer[0]
    assert report.cancelled and 5 <= len(report.stored) < 40, len(report.stored)
    assert sent, "C-CANCEL was not sent"
    assert sorted(tmp_path.iterdir()) == sorted(report.stored)
    sources = {str(pydicom.dcmread(f).SOPInstanceUID): f for f in seed.files}
    for path in report.stored:
        got = pydicom.dcmread(path)
        want = pydicom.dcmread(sources[path.stem])
        assert np.array_equal(got.pixel_array, want.pixel_array)
    assert report.failed == 0  # objects refused after Cancel are not failures


# --- DICOMweb ------------------------------------------------------------------------------

def test_dicomweb_query_and_retrieve(qr_pacs, tmp_path):
    import requirements
    from orthanc_server import DICOMWEB_PLUGIN

    requirements.file(DICOMWEB_PLUGIN, "orthanc-dicomweb")
    node = qr_pacs.web_node()
    for query, keys in [(StudyQuery(patient_id="QR-001"), dict(patient_id="QR-001")),
                        (StudyQuery(patient_name="smith"), dict(name="smith*")),
                        (StudyQuery(accession="ACC2001"), dict(accession="ACC2001")),
                        (StudyQuery(study_date="20240101-20240331"),
                         dict(dates=("20240101", "20240331"))),
                        (StudyQuery(description="Chest"), dict(description="*Chest*"))]:
        found = qr.find_studies(node, query)
        assert {s.accession for s in found.studies} == expected(qr_pacs, **keys), query
    limited = qr.find_studies(node, StudyQuery(patient_id="QR*", limit=2))
    assert len(limited.studies) == 2 and limited.more
    for accession in ("ACC1001", "ACC1002", "ACC2001"):
        seed = qr_pacs.study(accession)
        store = StudyStore(tmp_path / accession, seed.study_uid)
        report = qr.retrieval(node, store).run()
        assert report.ok and report.method == "WADO-RS", report.details()
        same_objects(seed, report.stored)
    series = qr.find_series(node, qr_pacs.study("ACC1001").study_uid)
    assert [s.number for s in series] == [1, 2]


def test_dicomweb_token_comes_from_its_file_and_is_never_stored(tmp_path):
    from gradcam_viewer.pacs import load_nodes, save_nodes
    from gradcam_viewer.pacs.dicomweb import client

    token = tmp_path / "token"
    token.write_text("s3cr3t-t0ken\n")
    node = PacsNode("", "", 0, kind="dicomweb", url="https://pacs.example/dicom-web",
                    send=False, query_retrieve=True, token_file=str(token))
    assert client(node)._session.headers["Authorization"] == "Bearer s3cr3t-t0ken"
    saved = save_nodes([node], tmp_path / "nodes.json")
    assert "s3cr3t" not in saved.read_text() and load_nodes(saved) == [node]
    token.unlink()
    with pytest.raises(PacsError, match="token file .* cannot be read"):
        client(node)
    with pytest.raises(ValueError, match="user name or password"):
        replace(node, url="https://user:pw@pacs.example/dicom-web")
