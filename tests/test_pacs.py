"""Sending to a PACS: C-ECHO and C-STORE against a real Orthanc started by the test
(checked through its REST API), and refusals, timeouts and partial failures against small
pynetdicom SCPs; objects not accepted stay in the outbox until a later send."""

import time
from pathlib import Path

import pydicom
import pytest

from gradcam_viewer.cli import main
from gradcam_viewer.pacs import (
    NodeError,
    Outbox,
    PacsNode,
    echo,
    load_nodes,
    parse_node,
    save_nodes,
    send_files,
)
from gradcam_viewer.resources import samples_dir
from orthanc_server import AET, free_port


@pytest.fixture
def outbox(tmp_path, monkeypatch):
    folder = tmp_path / "outbox"
    monkeypatch.setenv("GRADCAM_VIEWER_OUTBOX", str(folder))
    return Outbox(folder)


@pytest.fixture(scope="module")
def objects(tmp_path_factory):
    """The objects of one sample DICOM (SC, PM, SR) and one PNG (SC only)."""
    out = tmp_path_factory.mktemp("objects")
    inputs = [samples_dir() / "phantom_03_nodule.dcm", samples_dir() / "phantom_05_pneumothorax.png"]
    assert main(["explain", *map(str, inputs), "--out", str(out / "o"), "--overlays", "Nodule",
                 "--dicom-out", str(out / "d")]) == 0
    files = sorted((out / "d").glob("*.dcm"))
    assert len(files) == 4
    return files


# --- settings -----------------------------------------------------------------------------

def test_node_settings_round_trip(tmp_path):
    nodes = [PacsNode("PACS1", "pacs.example", 104, "MYVIEWER", "Radiology"),
             parse_node("ORTHANC@[::1]:4242")]
    path = save_nodes(nodes, tmp_path / "n.json")
    assert load_nodes(path) == nodes
    assert nodes[1].host == "::1" and nodes[1].port == 4242
    assert load_nodes(tmp_path / "absent.json") == []
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(NodeError, match="cannot be read"):
        load_nodes(tmp_path / "bad.json")


@pytest.mark.parametrize("text", ["PACS@host", "@host:104", "PACS@:104", "A\\B@h:104",
                                  "PACS@host:0", "PACS@host:70000", "X" * 17 + "@h:104"])
def test_bad_nodes_are_refused(text):
    with pytest.raises(NodeError):
        parse_node(text)


# --- Orthanc ------------------------------------------------------------------------------

def test_echo_orthanc(orthanc):
    node = PacsNode(AET, "127.0.0.1", orthanc.dicom_port)
    result = echo(node)
    assert result.ok, result.message


def test_echo_wrong_ae_title_is_a_clear_refusal(orthanc):
    result = echo(PacsNode("NOT_ORTHANC", "127.0.0.1", orthanc.dicom_port))
    assert not result.ok and "check both AE titles" in result.message


def test_echo_closed_port_says_no_answer():
    result = echo(PacsNode("NOBODY", "127.0.0.1", free_port()), timeout=2)
    assert not result.ok and "no answer" in result.message


def test_cli_send_arrives_in_orthanc(orthanc, outbox, tmp_path, capsys):
    inputs = [samples_dir() / "phantom_02_cardiomegaly_effusion.dcm",
              samples_dir() / "phantom_01_normal.png"]
    code = main(["explain", *map(str, inputs), "--out", str(tmp_path / "o"),
                 "--overlays", "Cardiomegaly,Effusion", "--dicom-out", str(tmp_path / "d"),
                 "--send", f"{AET}@127.0.0.1:{orthanc.dicom_port}"])
    err = capsys.readouterr().err
    assert code == 0, err
    files = sorted((tmp_path / "d").glob("*.dcm"))
    assert len(files) == 5 + 2  # DICOM: 2 SC, 2 PM, 1 SR; PNG: 2 SC
    assert "7 of 7 object(s) sent" in err
    for f in files:
        ds = pydicom.dcmread(f)
        found = orthanc.lookup(ds.SOPInstanceUID)
        assert [x["Type"] for x in found] == ["Instance"], f.name
        tags = orthanc.rest("GET", f"/instances/{found[0]['ID']}/simplified-tags")
        assert tags["SOPClassUID"] == ds.SOPClassUID
    # the sample's objects are filed under the sample's own study
    src = pydicom.dcmread(inputs[0])
    study = orthanc.lookup(src.StudyInstanceUID)
    assert [x["Type"] for x in study] == ["Study"]
    node = parse_node(f"{AET}@127.0.0.1:{orthanc.dicom_port}")
    assert outbox.pending(node) == []


def test_send_without_dicom_out_leaves_no_files(orthanc, outbox, tmp_path, capsys):
    code = main(["explain", str(samples_dir() / "phantom_04_mass_consolidation.dcm"),
                 "--out", str(tmp_path / "o"), "--overlays", "Mass",
                 "--send", f"{AET}@127.0.0.1:{orthanc.dicom_port}"])
    err = capsys.readouterr().err
    assert code == 0 and "3 of 3 object(s) sent" in err, err
    assert not any(p.suffix == ".dcm" for p in tmp_path.rglob("*") if "outbox" not in p.parts)


# --- refusals, timeouts, partial failures (pynetdicom SCPs) --------------------------------

class FakePacs:
    """A storage SCP whose answer per SOP class the test sets; it can also go silent."""

    def __init__(self):
        from pynetdicom import AE, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import ParametricMapStorage, Verification

        self.refuse: set[str] = set()
        self.delay = 0.0
        self.received: list[str] = []
        self.datasets: dict[str, pydicom.Dataset] = {}  # by SOP Instance UID, as received
        self.port = free_port()
        ae = AE(ae_title="FAKEPACS")
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax)
        ae.add_supported_context(ParametricMapStorage)
        ae.add_supported_context(Verification)
        self.server = ae.start_server(("127.0.0.1", self.port), block=False,
                                      evt_handlers=[(evt.EVT_C_STORE, self._store)])

    def _store(self, event):
        time.sleep(self.delay)
        ds = event.dataset
        if str(ds.SOPClassUID) in self.refuse:
            return 0xA700  # out of resources
        self.received.append(str(ds.SOPInstanceUID))
        self.datasets[str(ds.SOPInstanceUID)] = ds
        return 0x0000

    @property
    def node(self) -> PacsNode:
        return PacsNode("FAKEPACS", "127.0.0.1", self.port)

    def stop(self):
        self.server.shutdown()


@pytest.fixture
def fake_pacs():
    pacs = FakePacs()
    yield pacs
    pacs.stop()


def test_partial_failure_keeps_the_refused_in_the_outbox(fake_pacs, outbox, objects):
    """Outbox.send, the one queue-send-forget sequence of the command and the window."""
    pm = "1.2.840.10008.5.1.4.1.1.30"
    fake_pacs.refuse = {pm}
    told = []
    report = outbox.send(fake_pacs.node, objects, lambda queued, earlier: told.append(
        (sorted(queued), earlier, list(fake_pacs.received))))
    refused = [f for f, _ in report.failed]
    assert len(report.sent) == 3 and len(refused) == 1
    assert told == [(sorted(report.sent + refused), [], [])]  # before anything was sent
    left = pydicom.dcmread(refused[0])
    assert left.SOPClassUID == pm
    assert "refused Parametric Map Storage (status 0xA700" in report.summary(fake_pacs.node)
    assert outbox.pending(fake_pacs.node) == refused
    # the next send delivers what was left first, then its own, and the outbox empties
    fake_pacs.refuse = set()
    fake_pacs.received.clear()
    report = outbox.send(fake_pacs.node, objects[-1:], lambda queued, earlier: told.append(
        (sorted(queued), earlier, list(fake_pacs.received))))
    assert told[1][1] == refused and report.ok and outbox.pending(fake_pacs.node) == []
    assert fake_pacs.received == [str(left.SOPInstanceUID),
                                  str(pydicom.dcmread(objects[-1]).SOPInstanceUID)]


def test_every_element_arrives_pixels_included(fake_pacs, objects):
    """The headers are read first for the contexts; the node gets each whole file."""
    report = send_files(fake_pacs.node, objects)
    assert report.ok and len(fake_pacs.datasets) == len(objects)
    for f in objects:
        sent = pydicom.dcmread(f)
        got = fake_pacs.datasets[str(sent.SOPInstanceUID)]
        assert [e.tag for e in got] == [e.tag for e in sent]
        for keyword in ("PixelData", "FloatPixelData", "ContentSequence"):
            if keyword in sent:
                assert got[keyword].value == sent[keyword].value, (f.name, keyword)


def test_an_outbox_that_cannot_be_written_sends_nothing(fake_pacs, tmp_path, objects):
    (tmp_path / "box").write_text("a file where the outbox should be")
    with pytest.raises(OSError):
        Outbox(tmp_path / "box").send(fake_pacs.node, objects)
    assert fake_pacs.received == []


def test_a_queue_that_fails_half_way_leaves_nothing(fake_pacs, outbox, objects, monkeypatch):
    """The disk fills on the second copy: nothing is sent and nothing stays queued (a
    repeated send would otherwise deliver the first object twice)."""
    import shutil

    real, copies = shutil.copyfile, []

    def copy_then_fail(src, dst):
        copies.append(src)
        if len(copies) == 2:
            real(src, dst)  # a partial file is left behind, as a full disk would
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(shutil, "copyfile", copy_then_fail)
    with pytest.raises(OSError):
        outbox.send(fake_pacs.node, objects)
    assert fake_pacs.received == [] and len(copies) == 2
    assert list(outbox.node_folder(fake_pacs.node).iterdir()) == []


def test_timeout_is_named_and_nothing_is_lost(fake_pacs, outbox, objects):
    fake_pacs.delay = 3.0
    queued = outbox.add(fake_pacs.node, objects[:1])
    report = send_files(fake_pacs.node, queued, timeout=1.0)
    outbox.remove(report.sent)
    assert not report.ok
    assert "no answer" in report.summary(fake_pacs.node) or "ended early" in \
        report.summary(fake_pacs.node)
    assert outbox.pending(fake_pacs.node) == queued


def test_cli_send_to_a_closed_port_fails_clearly_and_keeps_the_objects(outbox, tmp_path, capsys):
    node = f"NOBODY@127.0.0.1:{free_port()}"
    code = main(["explain", str(samples_dir() / "phantom_03_nodule.dcm"), "--out",
                 str(tmp_path / "o"), "--overlays", "Nodule", "--send", node])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "0 of 3 object(s) sent" in err and "no answer from 127.0.0.1" in err
    assert "stay in" in err
    assert len(outbox.pending(parse_node(node))) == 3


def test_outbox_property_nothing_lost_nothing_twice(objects):
    """Hypothesis: whatever the node refuses, round after round, each object is delivered
    exactly once, and the outbox holds exactly what has not been accepted yet."""
    import tempfile

    from hypothesis import HealthCheck, given, settings, strategies as st

    classes = sorted({str(pydicom.dcmread(f).SOPClassUID) for f in objects})
    uid_of = {f.name: str(pydicom.dcmread(f).SOPInstanceUID) for f in objects}
    pacs = FakePacs()
    try:
        @settings(max_examples=6, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(st.lists(st.sets(st.sampled_from(classes)), min_size=1, max_size=3))
        def rounds(refusals):
            pacs.received.clear()
            with tempfile.TemporaryDirectory() as tmp:
                box = Outbox(Path(tmp))
                box.add(pacs.node, objects)
                for refused in [*refusals, set()]:  # the last round accepts everything
                    pacs.refuse = refused
                    report = send_files(pacs.node, box.pending(pacs.node), timeout=10)
                    box.remove(report.sent)
                    left = box.pending(pacs.node)
                    assert all(str(pydicom.dcmread(f).SOPClassUID) in refused for f in left)
                    assert len(pacs.received) == len(set(pacs.received))
                assert box.pending(pacs.node) == []
                assert sorted(pacs.received) == sorted(uid_of.values())

        rounds()
    finally:
        pacs.stop()
