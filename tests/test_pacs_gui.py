"""The window's DICOM export and PACS dialogs: menus, what the confirmation says,
the files written, Settings > PACS nodes with Test connection, and a send that arrives in a
real Orthanc."""


import pydicom
import pytest

from dicom_checks import content_items, dciodvfy
from gradcam_viewer.resources import samples_dir
from gradcam_viewer.ui import pacs_dialogs
from gui_helpers import wait_result, wait_until
from orthanc_server import AET


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADCAM_VIEWER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("GRADCAM_VIEWER_OUTBOX", str(tmp_path / "outbox"))
    return tmp_path


def confirmation(win, open_it):
    """The confirmation `open_it` shows once the objects are built off the GUI thread."""
    win.pacs.dialog = None
    open_it()
    wait_until(lambda: win.pacs.dialog is not None, 60)
    return win.pacs.dialog


def _menu_titles(win):
    return [a.text().replace("&", "") for a in win.menuBar().actions()]


def test_menus(win):
    titles = _menu_titles(win)
    assert titles.index("Settings") == titles.index("Help") - 1
    file_menu = win.menuBar().actions()[0].menu()
    texts = [a.text().replace("&", "") for a in file_menu.actions()]
    assert "Export as DICOM..." in texts and "Send to PACS..." in texts
    assert texts.index("Send to PACS...") < texts.index("Quit")


def test_export_dicom_from_a_dicom(win, tmp_path):
    sample = samples_dir() / "phantom_03_nodule.dcm"
    win.open_file(sample)
    wait_result(win, sample)
    dialog = confirmation(win, lambda: win.pacs.export_dicom(tmp_path / "d"))
    text = dialog.text.text()
    assert "keep the patient module" in text and "PHANTOM^DEMO" in text
    assert "Parametric Map" in text and "Secondary Capture" in text
    assert not (tmp_path / "d").exists()  # nothing before OK
    dialog.accept()
    files = sorted((tmp_path / "d").glob("*.dcm"))
    assert len(files) == 3  # SC and PM of the shown finding, and the SR
    src = pydicom.dcmread(sample)
    label = win.session.model.labels[win.findings.labels.current_label()]
    assert any(f.name.endswith(f"_SC_{label}.dcm") for f in files)
    for f in files:
        assert pydicom.dcmread(f).StudyInstanceUID == src.StudyInstanceUID
        assert dciodvfy(f)[0] == []
    # the calibrated demo model's verdict on this image reaches the window's report
    sr = pydicom.dcmread(next(f for f in files if f.name.endswith("_SR.dcm")))
    verdicts = [i.ConceptCodeSequence[0].CodeMeaning for i in content_items(sr)
                if i.ValueType == "CODE" and "training data" in i.ConceptNameCodeSequence[0]
                .CodeMeaning]
    assert win.session.result.ood["calibrated"]
    assert verdicts == ["Yes" if win.session.result.ood["flagged"] else "No"]
    # one naming rule: the command names the same objects of the same image alike
    from gradcam_viewer.cli import main

    assert main(["explain", str(sample), "--out", str(tmp_path / "o"), "--overlays", label,
                 "--dicom-out", str(tmp_path / "c")]) == 0
    assert [f.name for f in files] == sorted(f.name for f in (tmp_path / "c").glob("*.dcm"))


def test_export_dicom_from_a_png_says_new_study(win, tmp_path):
    sample = samples_dir() / "phantom_02_cardiomegaly_effusion.png"
    win.open_file(sample)
    wait_result(win, sample)
    dialog = confirmation(win, lambda: win.pacs.export_dicom(tmp_path / "d"))
    assert "not a DICOM image" in dialog.text.text() and "patient fields empty" in \
        dialog.text.text()
    dialog.accept()
    files = list((tmp_path / "d").glob("*.dcm"))
    assert len(files) == 1 and str(pydicom.dcmread(files[0]).PatientName) == ""


def test_send_without_node_says_so_and_uses_no_network(win, config, no_network):
    win.messages.last_error = ""
    assert win.pacs.send() is None
    assert "No PACS node is configured" in win.messages.last_error and no_network == []


def test_nodes_dialog_test_connection_and_send_to_orthanc(win, config, orthanc):
    from gradcam_viewer.pacs import Outbox, load_nodes

    dialog = pacs_dialogs.NodesDialog(win, win.pacs.network, win.messages)
    dialog.aet.setText("WRONG_AET")
    dialog.host.setText("127.0.0.1")
    dialog.port.setValue(orthanc.dicom_port)
    dialog.test_connection()
    wait_until(lambda: hasattr(dialog, "last_echo"), 30)
    assert not dialog.last_echo.ok and "check both AE titles" in dialog.status.text()
    del dialog.last_echo
    dialog.aet.setText(AET)
    dialog.name.setText("Test Orthanc")
    dialog.test_connection()
    wait_until(lambda: hasattr(dialog, "last_echo"), 30)
    assert dialog.last_echo.ok and "Connection works" in dialog.status.text()
    dialog.add_current()
    dialog.save()
    nodes = load_nodes()
    assert [n.ae_title for n in nodes] == [AET]

    sample = samples_dir() / "phantom_05_pneumothorax.dcm"
    win.open_file(sample)
    wait_result(win, sample)
    confirm = confirmation(win, lambda: win.pacs.send())
    assert "PHANTOM^DEMO" in confirm.text.text() and confirm.chosen_node() == nodes[0]
    win.pacs.last_send_report = None
    confirm.accept()
    wait_until(lambda: win.pacs.last_send_report is not None, 60)
    report = win.pacs.last_send_report
    assert report.ok and len(report.sent) == 3
    assert Outbox().pending(nodes[0]) == []
    src = pydicom.dcmread(sample)
    study = orthanc.lookup(src.StudyInstanceUID)
    assert study and study[0]["Type"] == "Study"
    series = orthanc.rest("GET", f"/studies/{study[0]['ID']}/series")
    descriptions = {s["MainDicomTags"].get("SeriesDescription", "") for s in series}
    assert any(d.startswith("Grad-CAM ") for d in descriptions)


def test_a_failing_network_job_becomes_a_message_and_lets_go_of_its_relay(win):
    def boom():
        raise ConnectionResetError("peer reset the association")

    got = []
    win.messages.last_error = ""
    win.pacs.network.run(boom, got.append)
    wait_until(lambda: win.messages.last_error != "", 10)
    assert "peer reset the association" in win.messages.last_error and got == []
    win.pacs.network.run(lambda: 7, got.append)
    wait_until(lambda: got == [7], 10)
    assert not win.pacs.network.relays


def test_objects_are_built_off_the_gui_thread_once_per_press_in_flight(win, tmp_path,
                                                                      monkeypatch):
    import threading

    import gradcam_viewer.outputs.dicom as dicom_out

    real, threads = dicom_out.build_objects, []

    def spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(dicom_out, "build_objects", spy)
    sample = samples_dir() / "phantom_03_nodule.dcm"
    win.open_file(sample)
    wait_result(win, sample)
    dialog = confirmation(win, lambda: [win.pacs.export_dicom(tmp_path / "d")
                                        for _ in range(3)])  # pressed again while building
    assert threads and threading.main_thread() not in threads
    assert len(threads) == 1 and "Secondary Capture" in dialog.text.text()
    dialog.reject()


def test_a_closed_confirmation_lets_go_of_its_objects(win, tmp_path):
    """Each confirmation holds the built objects (tens of MB for a radiograph): once
    answered it must not stay among the window's children."""
    from PySide6.QtCore import QCoreApplication, QEvent

    sample = samples_dir() / "phantom_03_nodule.dcm"
    win.open_file(sample)
    wait_result(win, sample)
    for answer in ("reject", "accept"):
        dialog = confirmation(win, lambda: win.pacs.export_dicom(tmp_path / "d"))
        getattr(dialog, answer)()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert win.findChildren(pacs_dialogs.ConfirmDialog) == []
    assert len(list((tmp_path / "d").glob("*.dcm"))) == 3  # OK still wrote before it went


def test_an_outbox_that_cannot_be_written_says_nothing_was_sent(win, config, monkeypatch,
                                                                no_network):
    from gradcam_viewer.pacs import Outbox, parse_node

    def refuse(self, node, files):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Outbox, "add", refuse)
    win.messages.last_error = ""
    prepared = pacs_dialogs.Prepared([], "x_gradcam", False)
    win.pacs.send_prepared(prepared, parse_node("PACS@127.0.0.1:11112"))
    wait_until(lambda: win.messages.last_error != "", 10)
    assert "Permission denied" in win.messages.last_error and "Nothing was sent" in win.messages.last_error
    assert no_network == []
